// SPDX-License-Identifier: Apache-2.0
// Approval of new keys and deny lists (#14) as an operator runs them: the real etcd-signer as
// sshd's forced command with a SoftHSM token, approval = "new-keys", and etcd-signerctl editing the
// files named in the same signer.toml. Key fingerprints are computed with the openssl CLI, not
// with this project's code.
//
// ctest runs each TEST in its own process, so each TEST is one scenario (a handful of requests)
// on the suite's deployment; run directly, the binary shares it between them.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <ctime>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_support.h"

namespace {

using namespace testing_support;
using namespace std::chrono_literals;

std::string TwoDaysFromNow() {
  std::time_t t = std::time(nullptr) + 2 * 86400;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// The signer's one stderr line (sshd may print its own notices before it).
std::string SignerLine(const std::string& err) {
  auto lines = Lines(err);
  return lines.empty() ? "" : lines.back();
}

struct Csr {
  std::string pem, b64, key_sha256;
};

class Approval : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    deployment_ = new SignerDeployment(dir_->path());
    deployment_->WriteSignerConfig("approval = \"new-keys\"\napproved_keys = \"" +
                                   (*dir_ / "approved_keys") + "\"\ndenied_keys = \"" +
                                   (*dir_ / "denied_keys") + "\"\ndenied_identities = \"" +
                                   (*dir_ / "denied_identities") + "\"\n");
    ssh_keys_ = new std::map<std::string, std::string>;
    for (const char* name : {"kubemaster-1", "kubemaster-2"})
      (*ssh_keys_)[name] = deployment_->AddMaster(name);
    deployment_->Start();  // hands what is in the directory so far to the signer account
    // Configuration management puts the (empty) files in place with approval switched on: root's,
    // as the signer trusts no list its own account could change (#24 point 7).
    for (const char* name : {"approved_keys", "denied_keys", "denied_identities"}) {
      WriteFile(*dir_ / name, "# managed by etcd-signerctl\n", 0644);
    }
  }
  static void TearDownTestSuite() {
    delete ssh_keys_;
    delete deployment_;
    delete dir_;
  }

  // A fresh P-256 key and its CSR; the key's SHA-256 of the DER SubjectPublicKeyInfo by openssl.
  static Csr NewCsr(const std::string& cn, const std::string& file) {
    Csr csr;
    std::string key = *dir_ / (file + ".key");
    RunResult req = OpenSsl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                             "-nodes", "-keyout", key, "-subj", "/CN=" + cn});
    EXPECT_EQ(req.exit_code, 0) << req.err;
    csr.pem = req.out;
    csr.b64 = OpenSsl({"base64"}, req.out).out;
    std::string spki = OpenSsl({"pkey", "-in", key, "-pubout", "-outform", "DER"}).out;
    csr.key_sha256 = OpenSsl({"dgst", "-sha256", "-r"}, spki).out.substr(0, 64);
    return csr;
  }

  static RunResult Sign(const std::string& name, const Csr& csr,
                        const std::string& request = "sign") {
    return deployment_->ssh.Ssh((*ssh_keys_)[name], request, csr.b64);
  }

  static RunResult SignK8s(const std::string& name, const Csr& csr) {
    nlohmann::json object = {{"apiVersion", "certificates.k8s.io/v1"},
                             {"kind", "CertificateSigningRequest"},
                             {"metadata", {{"name", name + "-etcd"}}},
                             {"spec",
                              {{"request", OpenSsl({"base64", "-A"}, csr.pem).out},
                               {"signerName", "etcd-hsm-signer.example.com/etcd-client"},
                               {"usages", {"digital signature", "client auth"}}}}};
    return deployment_->ssh.Ssh((*ssh_keys_)[name], "sign --format k8s", object.dump());
  }

  static RunResult Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {Binary("etcd-signerctl"), "--config", *dir_ / "signer.toml"});
    return testing_support::Run(args);
  }

  static nlohmann::json LastRecord() {
    auto lines = Lines(ReadFile(*dir_ / "audit.log"));
    if (lines.empty()) return nlohmann::json::object();
    return nlohmann::json::parse(lines.back());
  }

  static std::string SerialOf(const std::string& pem) {
    WriteFile(*dir_ / "cert.pem", pem);
    std::string out = OpenSsl({"x509", "-in", *dir_ / "cert.pem", "-noout", "-serial"}).out;
    EXPECT_EQ(out.rfind("serial=", 0), 0u) << out;
    return out.substr(7, out.find_last_not_of("\n") - 6);
  }

  static TempDir* dir_;
  static SignerDeployment* deployment_;
  static std::map<std::string, std::string>* ssh_keys_;
};
TempDir* Approval::dir_ = nullptr;
SignerDeployment* Approval::deployment_ = nullptr;
std::map<std::string, std::string>* Approval::ssh_keys_ = nullptr;

TEST_F(Approval, AnUnknownKeyIsPendingUntilApprovedAndANewKeyIsPendingAgain) {
  Csr first = NewCsr("kubemaster-1", "m1-first");

  // Unknown: 75, no certificate, the key's SHA-256 and the command that approves it.
  RunResult pending = Sign("kubemaster-1", first);
  EXPECT_EQ(pending.exit_code, 75) << pending.err;
  EXPECT_TRUE(pending.out.empty()) << pending.out;
  EXPECT_EQ(SignerLine(pending.err).rfind("etcd-signer: pending-approval: ", 0), 0u) << pending.err;
  std::string expected_command = "etcd-signerctl --config " + (*dir_ / "signer.toml") +
                                 " approve kubemaster-1 " + first.key_sha256;
  ASSERT_NE(pending.err.find(expected_command), std::string::npos) << pending.err;
  // Audited as pending, with the key and without a serial.
  nlohmann::json record = LastRecord();
  EXPECT_EQ(record["outcome"], "pending");
  EXPECT_EQ(record["reason"], "pending-approval");
  EXPECT_EQ(record["exit_code"], 75);
  EXPECT_EQ(record["identity"], "kubemaster-1");
  EXPECT_EQ(record["public_key_sha256"], first.key_sha256);
  EXPECT_EQ(record["serial"], "");
  EXPECT_EQ(Ctl({"audit", "verify", *dir_ / "audit.log"}).exit_code, 0);

  // The operator sees it in `pending`: the whole SHA-256, the count and the peer.
  RunResult list = Ctl({"pending"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto rows = Lines(list.out);
  ASSERT_EQ(rows.size(), 2u) << list.out;
  std::istringstream row(rows[1]);
  std::string name, key, first_seen, last_seen, count;
  row >> name >> key >> first_seen >> last_seen >> count;
  EXPECT_EQ(name, "kubemaster-1");
  EXPECT_EQ(key, first.key_sha256);
  EXPECT_EQ(count, "1");
  EXPECT_NE(rows[1].find("127.0.0.1 "), std::string::npos) << rows[1];

  // ... and runs exactly the command the requester was shown.
  std::vector<std::string> words;
  std::istringstream command(expected_command);
  for (std::string w; command >> w;) words.push_back(w);
  words[0] = Binary("etcd-signerctl");
  RunResult approve = testing_support::Run(words);
  ASSERT_EQ(approve.exit_code, 0) << approve.err;
  EXPECT_EQ(approve.out.rfind("approved kubemaster-1 " + first.key_sha256, 0), 0u) << approve.out;
  RunResult issued = Sign("kubemaster-1", first);
  ASSERT_EQ(issued.exit_code, 0) << issued.err;
  EXPECT_EQ(issued.out.rfind("-----BEGIN CERTIFICATE-----", 0), 0u);
  EXPECT_EQ(LastRecord()["outcome"], "issued");
  EXPECT_EQ(Lines(Ctl({"pending"}).out).size(), 1u);  // the header only: nothing is waiting

  // A new key for the same name waits for approval again; --replace retires the old key.
  Csr second = NewCsr("kubemaster-1", "m1-second");
  RunResult again = Sign("kubemaster-1", second);
  EXPECT_EQ(again.exit_code, 75) << again.err;
  EXPECT_NE(again.err.find(second.key_sha256), std::string::npos) << again.err;
  RunResult replace = Ctl({"approve", "kubemaster-1", second.key_sha256, "--replace"});
  ASSERT_EQ(replace.exit_code, 0) << replace.err;
  EXPECT_NE(replace.out.find("removed 1 other line(s) of kubemaster-1"), std::string::npos)
      << replace.out;
  EXPECT_EQ(Sign("kubemaster-1", second).exit_code, 0);
  RunResult old_key = Sign("kubemaster-1", first);
  EXPECT_EQ(old_key.exit_code, 75) << old_key.err;

  // Deny: 77 key-denied, and the key's approval is gone from approved_keys.
  RunResult deny = Ctl({"deny", "kubemaster-1", second.key_sha256});
  ASSERT_EQ(deny.exit_code, 0) << deny.err;
  RunResult denied = Sign("kubemaster-1", second);
  EXPECT_EQ(denied.exit_code, 77) << denied.err;
  EXPECT_TRUE(denied.out.empty());
  EXPECT_EQ(SignerLine(denied.err).rfind("etcd-signer: key-denied: ", 0), 0u) << denied.err;
  EXPECT_EQ(LastRecord()["reason"], "key-denied");
  EXPECT_EQ(ReadFile(*dir_ / "approved_keys").find(second.key_sha256), std::string::npos);
  EXPECT_EQ(Ctl({"audit", "verify", *dir_ / "audit.log"}).exit_code, 0);
}

// #24: the key is one identity whatever its encoding. The same P-256 key sent with its point
// compressed is pending under the fingerprint openssl prints for the key (`openssl pkey -pubout
// -outform DER | sha256sum`), one `pending` row for both encodings, and once that fingerprint is
// denied neither encoding gets a certificate. Before, the compressed CSR had a fingerprint of its
// own and a denied key was issued again.
TEST_F(Approval, ADeniedKeyStaysDeniedWhenItsPointIsSentCompressed) {
  Csr plain = NewCsr("kubemaster-1", "m1-both");
  std::string key = *dir_ / "m1-both.key";
  std::string compressed_key = *dir_ / "m1-both-compressed.key";
  ASSERT_EQ(OpenSsl({"ec", "-in", key, "-conv_form", "compressed", "-out", compressed_key}).exit_code, 0);
  Csr compressed;
  compressed.pem = OpenSsl({"req", "-new", "-key", compressed_key, "-subj", "/CN=kubemaster-1"}).out;
  compressed.b64 = OpenSsl({"base64"}, compressed.pem).out;
  std::string sent_key = OpenSsl({"req", "-noout", "-pubkey"}, compressed.pem).out;
  std::string sent_der = OpenSsl({"pkey", "-pubin", "-outform", "DER"}, sent_key).out;
  ASSERT_EQ(sent_der.size(), 59u) << "the CSR does not carry a compressed point";
  std::string sent_sha256 = OpenSsl({"dgst", "-sha256", "-r"}, sent_der).out.substr(0, 64);

  for (const Csr* csr : {&plain, &compressed}) {
    RunResult pending = Sign("kubemaster-1", *csr);
    EXPECT_EQ(pending.exit_code, 75) << pending.err;
    EXPECT_NE(pending.err.find(" approve kubemaster-1 " + plain.key_sha256), std::string::npos) << pending.err;
    EXPECT_EQ(LastRecord()["public_key_sha256"], plain.key_sha256);
  }
  RunResult list = Ctl({"pending"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  // One row for the key, asked for twice; none under the compressed bytes' hash.
  int rows_for_key = 0;
  for (const std::string& row : Lines(list.out)) {
    EXPECT_EQ(row.find(sent_sha256), std::string::npos) << row;
    if (row.find(plain.key_sha256) == std::string::npos) continue;
    ++rows_for_key;
    std::istringstream fields(row);
    std::string name, sha256, first_seen, last_seen, count;
    fields >> name >> sha256 >> first_seen >> last_seen >> count;
    EXPECT_EQ(count, "2") << row;
  }
  EXPECT_EQ(rows_for_key, 1) << list.out;

  ASSERT_EQ(Ctl({"deny", "kubemaster-1", plain.key_sha256}).exit_code, 0);
  for (const Csr* csr : {&compressed, &plain}) {
    RunResult denied = Sign("kubemaster-1", *csr);
    EXPECT_EQ(denied.exit_code, 77) << denied.err;
    EXPECT_TRUE(denied.out.empty()) << denied.out;
    EXPECT_EQ(SignerLine(denied.err).rfind("etcd-signer: key-denied: ", 0), 0u) << denied.err;
    EXPECT_EQ(LastRecord()["public_key_sha256"], plain.key_sha256);
  }
}

TEST_F(Approval, ADeniedIdentityGetsNothingFromAnyIssuingVerbUntilAllowedAndItsSerialsAreListed) {
  Csr csr = NewCsr("kubemaster-2", "m2");
  ASSERT_EQ(Ctl({"approve", "kubemaster-2", csr.key_sha256}).exit_code, 0);
  RunResult before = Sign("kubemaster-2", csr);
  ASSERT_EQ(before.exit_code, 0) << before.err;
  std::string serial_before = SerialOf(before.out);

  RunResult deny = Ctl({"deny-identity", "kubemaster-2"});
  ASSERT_EQ(deny.exit_code, 0) << deny.err;
  for (const std::string& request : {std::string("sign"), std::string("sign --lifetime 1h")}) {
    RunResult r = Sign("kubemaster-2", csr, request);
    EXPECT_EQ(r.exit_code, 77) << request << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << request;
    EXPECT_EQ(SignerLine(r.err).rfind("etcd-signer: identity-denied: ", 0), 0u) << r.err;
    EXPECT_EQ(LastRecord()["reason"], "identity-denied");
    EXPECT_EQ(LastRecord()["outcome"], "refused");
    // The record names the key that asked (forensics; a rebuilt master's new key).
    EXPECT_EQ(LastRecord()["public_key_sha256"], csr.key_sha256);
  }
  RunResult k8s = SignK8s("kubemaster-2", csr);
  EXPECT_EQ(k8s.exit_code, 77) << k8s.err;
  EXPECT_EQ(SignerLine(k8s.err).rfind("etcd-signer: identity-denied: ", 0), 0u) << k8s.err;
  nlohmann::json object = nlohmann::json::parse(k8s.out);
  EXPECT_FALSE(object["status"].contains("certificate"));
  EXPECT_EQ(object["status"]["conditions"][0]["type"], "Denied");
  EXPECT_EQ(object["status"]["conditions"][0]["reason"], "identity-denied");
  // `ca` and `info` issue nothing and are still served.
  EXPECT_EQ(Sign("kubemaster-2", csr, "info").exit_code, 0);

  RunResult allow = Ctl({"allow-identity", "kubemaster-2"});
  ASSERT_EQ(allow.exit_code, 0) << allow.err;
  RunResult after = Sign("kubemaster-2", csr);
  ASSERT_EQ(after.exit_code, 0) << after.err;
  std::string serial_after = SerialOf(after.out);

  // The serials issued to the name, as openssl prints them (what a CRL is made from).
  RunResult serials = Ctl({"serials", "--identity", "kubemaster-2"});
  ASSERT_EQ(serials.exit_code, 0) << serials.err;
  EXPECT_EQ(serials.out, serial_before + "\n" + serial_after + "\n");
  EXPECT_EQ(Ctl({"serials", "--identity", "kubemaster-2", "--valid"}).out, serials.out);
  // A day later both have expired (24 h certificates).
  RunResult later =
      Ctl({"--now", TwoDaysFromNow(), "serials", "--identity", "kubemaster-2", "--valid"});
  EXPECT_EQ(later.exit_code, 0) << later.err;
  EXPECT_EQ(later.out, "");
  EXPECT_EQ(Ctl({"serials", "--identity", "kubemaster-9"}).out, "");
}

// #24 point 7: a list is trusted only when nobody but root can change it, the file or any directory
// above it (OpenSSH's StrictModes). The signer account owning the lists' directory could approve
// its own requests by rename; the signer then refuses to issue (78 list-unsafe) rather than trust
// the list, and so for a group-writable list, and for list_admin naming the signer's own account.
TEST_F(Approval, AListTheSignerAccountCouldChangeIsNotTrusted) {
  Csr csr = NewCsr("kubemaster-1", "unsafe");
  std::string owned = *dir_ / "signer-owned";
  ASSERT_EQ(::mkdir(owned.c_str(), 0755), 0);
  WriteFile(owned + "/approved_keys", "kubemaster-1 " + csr.key_sha256 + " approved\n", 0644);
  GiveToSigner(owned);
  ASSERT_EQ(::chown((owned + "/approved_keys").c_str(), 0, 0), 0);  // the file root's, its directory not
  auto refused = [&](const std::string& config, const std::string& why) {
    deployment_->WriteSignerConfig(config);
    RunResult r = Sign("kubemaster-1", csr);
    EXPECT_EQ(r.exit_code, 78) << why << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << why;
    EXPECT_EQ(SignerLine(r.err).rfind("etcd-signer: list-unsafe: ", 0), 0u) << why << ": " << r.err;
    EXPECT_EQ(LastRecord()["reason"], "list-unsafe") << why;
  };
  refused("approval = \"new-keys\"\napproved_keys = \"" + owned + "/approved_keys\"\n",
          "a list in a directory the signer account owns");
  EXPECT_NE(Sign("kubemaster-1", csr).err.find("its directory " + owned + " is owned by uid"), std::string::npos);

  std::string group_writable = *dir_ / "group-writable-denied";
  WriteFile(group_writable, "# none\n", 0644);
  ASSERT_EQ(::chmod(group_writable.c_str(), 0664), 0);
  refused("denied_identities = \"" + group_writable + "\"\n", "a group-writable list");

  std::string root_owned = *dir_ / "root-approved";
  WriteFile(root_owned, "kubemaster-1 " + csr.key_sha256 + " approved\n", 0644);
  deployment_->WriteSignerConfig("approval = \"new-keys\"\napproved_keys = \"" + root_owned +
                                 "\"\nlist_admin = \"" + SignerUser() + "\"\n");
  RunResult self = Sign("kubemaster-1", csr);
  EXPECT_EQ(self.exit_code, 78) << self.err;
  EXPECT_NE(self.err.find("is the account the signer runs as"), std::string::npos) << self.err;

  // The same approval, root's in a root directory: issued.
  deployment_->WriteSignerConfig("approval = \"new-keys\"\napproved_keys = \"" + root_owned + "\"\n");
  RunResult ok = Sign("kubemaster-1", csr);
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  deployment_->WriteSignerConfig("approval = \"new-keys\"\napproved_keys = \"" + (*dir_ / "approved_keys") +
                                 "\"\ndenied_keys = \"" + (*dir_ / "denied_keys") + "\"\ndenied_identities = \"" +
                                 (*dir_ / "denied_identities") + "\"\n");
}

}  // namespace
