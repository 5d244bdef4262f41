// SPDX-License-Identifier: Apache-2.0
// #27: attestation = "required" issues only to keys proven to be non-duplicable keys of an
// enrolled TPM. Real swtpm TPMs with EK certificates from swtpm_localca (a private CA per test
// run), a real sshd and the real etcd-signer; the requester's own TPM code on the other side.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "pki/base64.h"
#include "requester/tpm.h"
#include "software_tpm.h"
#include "test_support.h"

namespace {

using namespace testing_support;
using namespace std::chrono_literals;
using nlohmann::json;

std::vector<json> AuditRecords(const std::string& path) {
  std::vector<json> out;
  for (const std::string& line : Lines(ReadFile(path))) out.push_back(json::parse(line));
  return out;
}

class Attestation : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { shared_ = new Shared; }
  static void TearDownTestSuite() {
    delete shared_;
    shared_ = nullptr;
  }

  void SetUp() override {
    ca_ = std::make_unique<CaToken>(dir_ / "ca-token");
    ssh_ = std::make_unique<SshServer>(dir_.path());
    shared_->a();  // the trusted manufacturer's CA comes with its first TPM
    WriteFile(dir_ / "ek_roots.pem", shared_->trusted.RootsPem(), 0644);
    ASSERT_EQ(::mkdir((dir_ / "enrollments").c_str(), 0700), 0);
    WriteSignerConfig("attestation = \"required\"\n");
    for (const char* name : {"kubemaster-1", "kubemaster-2", "kubemaster-3"}) {
      keys_[name] = ssh_->NewClientKey(std::string("ssh-") + name);
      ssh_->Authorize(keys_[name], "SOFTHSM2_CONF=" + ca_->conf + " " + Binary("etcd-signer") + " --config " +
                                       (dir_ / "signer.toml") + " --identity " + name + " sign");
    }
    ssh_->Start();  // hands everything under dir_ to the signer account
    ASSERT_EQ(::mkdir((dir_ / "master").c_str(), 0700), 0);
  }

  void WriteSignerConfig(const std::string& extra) {
    WriteFile(dir_ / "signer.toml",
              "module = \"" + std::string(kSoftHsmModule) + "\"\nkey = \"" + ca_->key_uri + "\"\npin_file = \"" +
                  ca_->pin_file + "\"\nca_cert = \"" + ca_->ca_cert + "\"\naudit_log = \"" + (dir_ / "audit.log") +
                  "\"\nlock_file = \"" + (dir_ / "token.lock") + "\"\nsyslog = false\nek_roots = \"" +
                  (dir_ / "ek_roots.pem") + "\"\nenrollment_dir = \"" + (dir_ / "enrollments") + "\"\n" + extra);
  }

  std::vector<std::string> Args(const std::string& verb, const std::string& name, std::vector<std::string> key) {
    std::vector<std::string> a{Binary("etcd-requester"), verb, "--name", name, "--server",
                               ssh_->user() + "@127.0.0.1:" + std::to_string(ssh_->port()), "--ssh-key", keys_[name],
                               "--known-hosts", ssh_->known_hosts(), "--cert", dir_ / ("master/" + name + ".pem"),
                               "--ca-bundle", dir_ / "ca-bundle.pem", "--ca-sha256", RootSha256(ca_->ca_cert),
                               "--connect-timeout", "5s"};
    a.insert(a.end(), key.begin(), key.end());
    return a;
  }

  std::vector<std::string> TpmKey(const EndorsedTpm& tpm, const std::string& file) {
    return {"--tpm-key", dir_ / ("master/" + file), "--tcti", tpm.tcti(), "--attestation"};
  }

  RunResult Do(const std::vector<std::string>& args) { return testing_support::Run(args, {.env = {{"TSS2_LOG", "all+NONE"}}, .timeout = 60s}); }

  // What etcd-signer answers to `command` with `input` through this master's SSH key.
  RunResult Signer(const std::string& name, const std::string& command, const std::string& input) {
    return ssh_->Ssh(keys_[name], command, input);
  }

  // The TPMs, manufactured on first use (ctest runs each test in a process of its own, so a test
  // pays only for the TPMs it uses): a, b and c of a trusted manufacturer, d of another.
  struct Shared {
    TempDir dir;
    TpmManufacturer trusted{dir / "trusted"};
    TpmManufacturer foreign{dir / "foreign"};
    std::map<std::string, std::unique_ptr<EndorsedTpm>> tpms;
    const EndorsedTpm& Get(const std::string& name) {
      std::unique_ptr<EndorsedTpm>& tpm = tpms[name];
      if (!tpm) tpm = std::make_unique<EndorsedTpm>(dir / ("tpm-" + name), name == "d" ? foreign : trusted);
      return *tpm;
    }
    const EndorsedTpm& a() { return Get("a"); }
    const EndorsedTpm& b() { return Get("b"); }
    const EndorsedTpm& c() { return Get("c"); }
    const EndorsedTpm& d() { return Get("d"); }
  };
  static Shared* shared_;

  TempDir dir_;
  std::unique_ptr<CaToken> ca_;
  std::unique_ptr<SshServer> ssh_;
  std::map<std::string, std::string> keys_;
};

Attestation::Shared* Attestation::shared_ = nullptr;

// The walk: a master enrolls its TPM on first contact and gets certificates for its TPM key; the
// next renewal needs no enrollment; keys that cannot be proven to be TPM-bound get nothing.
TEST_F(Attestation, RequiredIssuesOnlyToANonDuplicableKeyOfTheEnrolledTpm) {
  RunResult r = Do(Args("request", "kubemaster-1", TpmKey(shared_->a(), "a.tpmkey")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("enrolled this TPM with the signer for kubemaster-1"), std::string::npos) << r.err;
  const std::string cert = dir_ / "master/kubemaster-1.pem";
  EXPECT_EQ(OpenSsl({"verify", "-purpose", "sslclient", "-CAfile", ca_->ca_cert, cert}).exit_code, 0);
  std::vector<json> log = AuditRecords(dir_ / "audit.log");
  // sign refused (ak-not-enrolled), enroll, activate, sign issued (attested); `ca` fetches between.
  std::vector<json> steps;
  for (const json& rec : log) {
    if (rec["verb"] != "ca") steps.push_back(rec);
  }
  ASSERT_EQ(steps.size(), 4u) << ReadFile(dir_ / "audit.log");
  EXPECT_EQ(steps[0]["reason"], "ak-not-enrolled") << steps[0].dump();
  EXPECT_EQ(steps[0]["attested"], false);
  EXPECT_EQ(steps[1]["verb"], "enroll");
  EXPECT_EQ(steps[1]["outcome"], "challenged");
  EXPECT_EQ(steps[2]["verb"], "activate");
  EXPECT_EQ(steps[2]["outcome"], "enrolled");
  EXPECT_EQ(steps[2]["ek_sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(steps[3]["outcome"], "issued");
  EXPECT_EQ(steps[3]["attested"], true);
  // The TPM key file holds no private key in the clear, only the TPM's wrapped blob.
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "master/a.tpmkey").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(ReadFile(dir_ / "master/a.tpmkey").rfind("etcd-requester tpm2 key v1\n", 0), 0u);

  // status shows the enrollment; diagnose has the TPM certify the key and the signer check it.
  std::vector<std::string> status = Args("status", "kubemaster-1", TpmKey(shared_->a(), "a.tpmkey"));
  status.push_back("--json");
  RunResult st_json = Do(status);
  ASSERT_EQ(st_json.exit_code, 0) << st_json.err;
  json sj = json::parse(st_json.out);
  EXPECT_EQ(sj["attestation"], true);
  EXPECT_EQ(sj["tpm_enrolled"].size(), 1u) << st_json.out;
  RunResult diagnose = Do(Args("diagnose", "kubemaster-1", TpmKey(shared_->a(), "a.tpmkey")));
  EXPECT_NE(diagnose.out.find("the TPM certifies this key"), std::string::npos) << diagnose.out << diagnose.err;
  EXPECT_NE(diagnose.out.find("the signer would issue to 'kubemaster-1' for this key"), std::string::npos)
      << diagnose.out;

  // A renewal with the same key: evidence again, no second enrollment.
  std::string before = ReadFile(cert);
  std::vector<std::string> renew = Args("renew", "kubemaster-1", TpmKey(shared_->a(), "a.tpmkey"));
  renew.push_back("--force");
  RunResult renewed = Do(renew);
  ASSERT_EQ(renewed.exit_code, 0) << renewed.err;
  EXPECT_EQ(renewed.err.find("enrolled"), std::string::npos) << renewed.err;
  EXPECT_NE(ReadFile(cert), before);
  EXPECT_EQ(AuditRecords(dir_ / "audit.log").back()["attested"], true);
  before = ReadFile(cert);

  // A key file: no evidence, no certificate; the current one stays.
  std::vector<std::string> file_key = Args("request", "kubemaster-1", {"--key-file", dir_ / "master/file.key"});
  RunResult refused = Do(file_key);
  EXPECT_EQ(refused.exit_code, 77) << refused.err;
  EXPECT_NE(refused.err.find("etcd-signer: attestation-required: "), std::string::npos) << refused.err;
  EXPECT_EQ(AuditRecords(dir_ / "audit.log").back()["attested"], false);

  // A TPM key of another, unenrolled TPM for kubemaster-1: evidence by an AK that is not enrolled,
  // then an enrollment of that TPM, which the signer refuses: one TPM per identity.
  RunResult other_tpm = Do(Args("request", "kubemaster-1", TpmKey(shared_->b(), "b.tpmkey")));
  EXPECT_EQ(other_tpm.exit_code, 77) << other_tpm.err;
  EXPECT_NE(other_tpm.err.find("etcd-signer: enrollment-exists: "), std::string::npos) << other_tpm.err;
  log = AuditRecords(dir_ / "audit.log");
  EXPECT_EQ(log[log.size() - 2]["reason"], "ak-not-enrolled") << log[log.size() - 2].dump();
  EXPECT_EQ(ReadFile(cert), before);

  // etcd-signerctl shows and removes enrollments.
  RunResult list = testing_support::Run({Binary("etcd-signerctl"), "--config", dir_ / "signer.toml", "enrollment", "list"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("kubemaster-1"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("issuer CN=swtpm-localca  serial "), std::string::npos) << list.out;
  RunResult removed = testing_support::Run({Binary("etcd-signerctl"), "--config", dir_ / "signer.toml", "enrollment", "remove", "kubemaster-1"});
  EXPECT_EQ(removed.exit_code, 0) << removed.err;
  json removal = AuditRecords(dir_ / "audit.log").back();
  EXPECT_EQ(removal["verb"], "enrollment-remove") << removal.dump();
  EXPECT_EQ(removal["cn"], "kubemaster-1");
  EXPECT_EQ(removal["ek_sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(::access((dir_ / "enrollments/kubemaster-1.json").c_str(), F_OK), -1);
  // Then TPM B may enroll for kubemaster-1 and gets a certificate for its own key.
  RunResult moved = Do(Args("request", "kubemaster-1", TpmKey(shared_->b(), "b.tpmkey")));
  EXPECT_EQ(moved.exit_code, 0) << moved.err;
  EXPECT_NE(ReadFile(cert), before);

  // attestation = "optional": a key file gets its certificate, recorded as not attested, and the
  // report counts both kinds per identity.
  WriteSignerConfig("attestation = \"optional\"\n");
  RunResult optional = Do(Args("request", "kubemaster-1", {"--key-file", dir_ / "master/file.key"}));
  EXPECT_EQ(optional.exit_code, 0) << optional.err;
  EXPECT_EQ(AuditRecords(dir_ / "audit.log").back()["attested"], false);
  RunResult report = testing_support::Run({Binary("etcd-signerctl"), "--config", dir_ / "signer.toml", "audit", "report", "--json"});
  ASSERT_EQ(report.exit_code, 0) << report.err;
  json identities = json::parse(report.out)["identities"];
  ASSERT_EQ(identities.size(), 1u) << report.out;
  EXPECT_EQ(identities[0]["attested"], 3) << report.out;  // request, renewal, then TPM B's key
  EXPECT_EQ(identities[0]["unattested"], 1) << report.out;
}

// approval = "new-keys" (#14): a new TPM enrollment waits for an operator, `pending` shows its EK
// certificate's issuer and serial, and after its approval the key itself is approved as ever.
TEST_F(Attestation, ANewEnrollmentWaitsForApprovalWhenApprovalIsOn) {
  WriteFile(dir_ / "approved_keys", "", 0644);
  WriteSignerConfig("attestation = \"required\"\napproval = \"new-keys\"\napproved_keys = \"" + (dir_ / "approved_keys") +
                    "\"\n");
  RunResult r = Do(Args("request", "kubemaster-2", TpmKey(shared_->a(), "pending.tpmkey")));
  EXPECT_EQ(r.exit_code, 75) << r.err;
  EXPECT_NE(r.err.find("etcd-signer: enrollment-pending: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("enrollment approve kubemaster-2 "), std::string::npos) << r.err;
  std::vector<std::string> ctl{Binary("etcd-signerctl"), "--config", dir_ / "signer.toml"};
  auto with = [&](std::vector<std::string> words) {
    std::vector<std::string> a = ctl;
    a.insert(a.end(), words.begin(), words.end());
    return testing_support::Run(a);
  };
  RunResult pending = with({"pending"});
  EXPECT_EQ(pending.exit_code, 0) << pending.err;
  EXPECT_NE(pending.out.find("TPM kubemaster-2  EK issuer CN=swtpm-localca  serial "), std::string::npos) << pending.out;
  json list = json::parse(with({"enrollment", "list", "--json"}).out);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["approved"], false);
  EXPECT_EQ(with({"enrollment", "approve", "kubemaster-2", std::string(64, '0')}).exit_code, 65);  // another TPM's EK
  RunResult approved = with({"enrollment", "approve", "kubemaster-2", list[0]["ek_sha256"].get<std::string>()});
  EXPECT_EQ(approved.exit_code, 0) << approved.err;
  json approval = AuditRecords(dir_ / "audit.log").back();
  EXPECT_EQ(approval["verb"], "enrollment-approve") << approval.dump();
  EXPECT_EQ(approval["outcome"], "approved");
  EXPECT_EQ(approval["ek_sha256"], list[0]["ek_sha256"]);
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "enrollments/kubemaster-2.json").c_str(), &st), 0);
  EXPECT_NE(st.st_uid, 0u);  // still the signer account's file
  // Now the key's own approval (#14), then the certificate.
  RunResult key_pending = Do(Args("request", "kubemaster-2", TpmKey(shared_->a(), "pending.tpmkey")));
  EXPECT_EQ(key_pending.exit_code, 75) << key_pending.err;
  EXPECT_NE(key_pending.err.find("etcd-signer: pending-approval: "), std::string::npos) << key_pending.err;
  std::string approve_line = key_pending.err.substr(key_pending.err.find("etcd-signerctl"));
  approve_line = approve_line.substr(0, approve_line.find('\n'));
  std::vector<std::string> words;
  for (std::size_t at = 0; at < approve_line.size();) {
    std::size_t end = approve_line.find(' ', at);
    if (end == std::string::npos) end = approve_line.size();
    words.push_back(approve_line.substr(at, end - at));
    at = end + 1;
  }
  ASSERT_EQ(words.back().size(), 64u) << approve_line;
  EXPECT_EQ(with({"approve", "kubemaster-2", words.back()}).exit_code, 0);
  RunResult issued = Do(Args("request", "kubemaster-2", TpmKey(shared_->a(), "pending.tpmkey")));
  EXPECT_EQ(issued.exit_code, 0) << issued.err;
  EXPECT_EQ(AuditRecords(dir_ / "audit.log").back()["attested"], true);
}

// A TPM key created duplicable (no fixedTPM/fixedParent) in an enrolled TPM: key-not-fixed.
TEST_F(Attestation, ADuplicableTpmKeyIsRefusedKeyNotFixed) {
  const EndorsedTpm& tpm = shared_->a();
  std::map<std::string, std::string> env = tpm.env();
  // An SRK at the standard persistent handle, as on a provisioned machine, and a key under it
  // made with tpm2-tools without fixedtpm and fixedparent.
  testing_support::Run({"/usr/bin/tpm2_evictcontrol", "-C", "o", "-c", "0x81000001"}, {.env = env});  // none yet, or a leftover
  ASSERT_EQ(testing_support::Run({"/usr/bin/tpm2_createprimary", "-C", "o", "-g", "sha256", "-G", "ecc256:aes128cfb", "-c",
                 dir_ / "srk.ctx"}, {.env = env}).exit_code, 0);
  ASSERT_EQ(testing_support::Run({"/usr/bin/tpm2_evictcontrol", "-C", "o", "-c", dir_ / "srk.ctx", "0x81000001"}, {.env = env}).exit_code, 0);
  // Without a resource manager, tpm2-tools leave their transient objects loaded.
  testing_support::Run({"/usr/bin/tpm2_flushcontext", "-t"}, {.env = env});
  RunResult created = testing_support::Run({"/usr/bin/tpm2_create", "-C", "0x81000001", "-G", "ecc256", "-a",
                           "sign|userwithauth|sensitivedataorigin", "-u", dir_ / "dup.pub", "-r", dir_ / "dup.priv"},
                          {.env = env});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  testing_support::Run({"/usr/bin/tpm2_flushcontext", "-t"}, {.env = env});
  auto b64 = [&](const std::string& path) {
    std::string raw = ReadFile(path);
    return pki::EncodeBase64(reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
  };
  WriteFile(dir_ / "master/dup.tpmkey",
            "etcd-requester tpm2 key v1\npublic " + b64(dir_ / "dup.pub") + "\nprivate " + b64(dir_ / "dup.priv") + "\n",
            0600);
  RunResult r = Do(Args("request", "kubemaster-2", TpmKey(tpm, "dup.tpmkey")));
  testing_support::Run({"/usr/bin/tpm2_evictcontrol", "-C", "o", "-c", "0x81000001"}, {.env = env});
  EXPECT_EQ(r.exit_code, 77) << r.err;
  EXPECT_NE(r.err.find("etcd-signer: key-not-fixed: "), std::string::npos) << r.err;
  EXPECT_EQ(::access((dir_ / "master/kubemaster-2.pem").c_str(), F_OK), -1);
  EXPECT_EQ(AuditRecords(dir_ / "audit.log").back()["reason"], "key-not-fixed");
}

// An EK certificate from a CA that is not in ek_roots: ek-untrusted, nothing enrolled.
TEST_F(Attestation, AnEkFromAnUntrustedManufacturerIsRefused) {
  RunResult r = Do(Args("request", "kubemaster-3", TpmKey(shared_->d(), "d.tpmkey")));
  EXPECT_EQ(r.exit_code, 77) << r.err;
  EXPECT_NE(r.err.find("etcd-signer: ek-untrusted: "), std::string::npos) << r.err;
  EXPECT_EQ(::access((dir_ / "enrollments/kubemaster-3.json").c_str(), F_OK), -1);
  EXPECT_EQ(::access((dir_ / "enrollments/kubemaster-3.challenge").c_str(), F_OK), -1);
}

// The enrollment protocol driven by hand, as a hostile master would: TPM A's EK certificate with
// TPM B's AK. B cannot open the credential (it is sealed to A's EK); a guessed answer is
// credential-mismatch; the challenge is gone after one answer (a replay is no-challenge); an
// activate without enroll is no-challenge; an AK that is not restricted is ak-not-restricted.
TEST_F(Attestation, EnrollmentAnsweredByAnotherTpmOrReplayedIsRefused) {
  requester::Tpm a(shared_->a().tcti());
  requester::Tpm b(shared_->b().tcti());
  auto b64 = [](const pki::Bytes& bytes) { return pki::EncodeBase64(bytes.data(), bytes.size()); };
  json begin = {{"identity", "kubemaster-1"}, {"ek_certificate", b64(a.EkCertificate())}, {"ak_public", b64(b.AkPublic())}};
  RunResult enrolled = Signer("kubemaster-1", "enroll", begin.dump());
  ASSERT_EQ(enrolled.exit_code, 0) << enrolled.err;
  json cred = json::parse(enrolled.out);
  pki::Credential credential{*pki::DecodeBase64(cred["credential_blob"].get<std::string>()),
                             *pki::DecodeBase64(cred["encrypted_secret"].get<std::string>())};
  try {
    b.ActivateCredential(credential);
    ADD_FAILURE() << "TPM B opened a credential sealed to TPM A's EK";
  } catch (const base::Failure& f) {
    EXPECT_EQ(f.reason(), "credential-not-for-this-tpm") << f.what();
  }
  json guess = {{"identity", "kubemaster-1"}, {"secret", b64(pki::Bytes(32, 0x42))}};
  RunResult mismatch = Signer("kubemaster-1", "activate", guess.dump());
  EXPECT_EQ(mismatch.exit_code, 77);
  EXPECT_NE(mismatch.err.find("etcd-signer: credential-mismatch: "), std::string::npos) << mismatch.err;
  RunResult replay = Signer("kubemaster-1", "activate", guess.dump());
  EXPECT_EQ(replay.exit_code, 77);
  EXPECT_NE(replay.err.find("etcd-signer: no-challenge: "), std::string::npos) << replay.err;
  EXPECT_EQ(::access((dir_ / "enrollments/kubemaster-1.json").c_str(), F_OK), -1);

  // The honest TPM A answers its own challenge: enrolled.
  json honest = {{"identity", "kubemaster-1"}, {"ek_certificate", b64(a.EkCertificate())}, {"ak_public", b64(a.AkPublic())}};
  RunResult ok = Signer("kubemaster-1", "enroll", honest.dump());
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  cred = json::parse(ok.out);
  pki::Bytes secret = a.ActivateCredential({*pki::DecodeBase64(cred["credential_blob"].get<std::string>()),
                                            *pki::DecodeBase64(cred["encrypted_secret"].get<std::string>())});
  RunResult activated = Signer("kubemaster-1", "activate", json({{"identity", "kubemaster-1"}, {"secret", b64(secret)}}).dump());
  EXPECT_EQ(activated.exit_code, 0) << activated.err;
  EXPECT_EQ(json::parse(activated.out)["enrolled"], true);

  // Another name than the SSH key's binding, and an AK that is a plain (unrestricted) key.
  json foreign = honest;
  foreign["identity"] = "kubemaster-2";
  RunResult mismatched = Signer("kubemaster-1", "enroll", foreign.dump());
  EXPECT_EQ(mismatched.exit_code, 77);
  EXPECT_NE(mismatched.err.find("identity-mismatch"), std::string::npos) << mismatched.err;
  requester::TpmKeyBlobs plain = a.CreateSigningKey("");
  json unrestricted = honest;
  unrestricted["ak_public"] = b64(plain.public_area);
  RunResult not_restricted = Signer("kubemaster-1", "enroll", unrestricted.dump());
  EXPECT_EQ(not_restricted.exit_code, 77);
  EXPECT_NE(not_restricted.err.find("etcd-signer: ak-not-restricted: "), std::string::npos) << not_restricted.err;
  RunResult garbage = Signer("kubemaster-1", "enroll", "{\"identity\":\"kubemaster-1\"}");
  EXPECT_EQ(garbage.exit_code, 65);
  EXPECT_NE(garbage.err.find("etcd-signer: attestation-invalid: "), std::string::npos) << garbage.err;
}

}  // namespace
