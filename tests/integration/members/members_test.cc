// SPDX-License-Identifier: Apache-2.0
// Every etcd certificate from the token (#26): a 3-member etcd cluster on 127.0.0.1 whose server
// and peer certificates all came from etcd-signer through sshd and etcd-requester, the master's
// client certificate working on every member and refused on a peer port, a server certificate
// renewed under a running member, the role refusals, and no CA key file anywhere afterwards.
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "pki/certificate_profile.h"
#include "pki/key.h"
#include "pki/verify.h"
#include "test_support.h"

namespace {

using namespace std::chrono_literals;
using namespace testing_support;

// The name every member's server and peer certificate carries besides its own, which etcd's
// --peer-cert-allowed-hostname asks for on the peer port: only member certificates have it.
constexpr const char* kPeerName = "etcd-peers.test";

std::string SignerLine(const std::string& err) {
  auto lines = Lines(err);
  return lines.empty() ? "" : lines.back();
}

class Members : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    d_ = new SignerDeployment(dir_->path());
    std::string members;
    for (const char* m : {"etcd-1", "etcd-2", "etcd-3"}) {
      members += std::string("[members.") + m + "]\ndns = [\"" + m + "\", \"localhost\", \"" + kPeerName +
                 "\"]\nip = [\"127.0.0.1\", \"::1\"]\n";
    }
    d_->WriteSignerConfig(members);
    keys_ = new std::map<std::string, std::string>;
    for (const char* name : {"kubemaster-1", "etcd-1", "etcd-2", "etcd-3", "etcd-9"}) (*keys_)[name] = d_->AddMaster(name);
    // A key bound to no name at all (the operator forgot --identity).
    (*keys_)["unbound"] = d_->AddMaster(
        "unbound", "SOFTHSM2_CONF=" + d_->ca.conf + " " + Binary("etcd-signer") + " --config " + d_->dir +
                       "/signer.toml sign");
    d_->Start();
  }
  static void TearDownTestSuite() {
    delete keys_;
    delete d_;
    delete dir_;
  }

  // etcd-requester for one certificate of `name`: its own key and certificate per profile.
  static RunResult Requester(const std::string& verb, const std::string& name, const std::string& profile,
                             const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = d_->RequesterArgs(verb, name, (*keys_)[name]);
    for (std::size_t i = 0; i + 1 < args.size(); ++i) {
      if (args[i] == "--key-file") args[i + 1] = Key(name, profile);
      if (args[i] == "--cert") args[i + 1] = Cert(name, profile);
    }
    args.insert(args.end(), {"--profile", profile});
    args.insert(args.end(), extra.begin(), extra.end());
    return testing_support::Run(args, {.timeout = 60s});
  }
  static std::string Key(const std::string& name, const std::string& profile) {
    return *dir_ / (name + "-" + profile + ".key");
  }
  static std::string Cert(const std::string& name, const std::string& profile) {
    return *dir_ / (name + "-" + profile + ".pem");
  }

  // A CSR for `cn` made by openssl, base64 as the protocol carries it.
  static std::string CsrB64(const std::string& cn, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                                  "-keyout", *dir_ / "raw.key", "-subj", "/CN=" + cn};
    args.insert(args.end(), extra.begin(), extra.end());
    RunResult req = OpenSsl(args);
    EXPECT_EQ(req.exit_code, 0) << req.err;
    return OpenSsl({"base64"}, req.out).out;
  }
  static RunResult Sign(const std::string& key, const std::string& request, const std::string& b64) {
    return d_->ssh.Ssh((*keys_)[key], request, b64);
  }
  static nlohmann::json LastRecord() {
    auto lines = Lines(ReadFile(*dir_ / "audit.log"));
    return lines.empty() ? nlohmann::json::object() : nlohmann::json::parse(lines.back());
  }
  static std::string Serial(const std::string& pem_text) {
    std::string out = OpenSsl({"x509", "-noout", "-serial"}, pem_text).out;
    return out.rfind("serial=", 0) == 0 ? out.substr(7, out.find('\n') - 7) : out;
  }

  static TempDir* dir_;
  static SignerDeployment* d_;
  static std::map<std::string, std::string>* keys_;
};

TempDir* Members::dir_ = nullptr;
SignerDeployment* Members::d_ = nullptr;
std::map<std::string, std::string>* Members::keys_ = nullptr;

// A member of the cluster: ports, and the etcd process.
struct Member {
  std::string name;
  int client_port = 0;
  int peer_port = 0;
  std::unique_ptr<Process> etcd;
  std::string client_url() const { return "https://127.0.0.1:" + std::to_string(client_port); }
  std::string peer_url() const { return "https://127.0.0.1:" + std::to_string(peer_port); }
};

TEST_F(Members, AThreeMemberClusterRunsOnTokenCertificatesOnlyAndAServerCertificateRotatesWithoutARestart) {
  // Every certificate through the requester: two per member, one for the master.
  for (const char* m : {"etcd-1", "etcd-2", "etcd-3"}) {
    for (const char* profile : {"etcd-server", "etcd-peer"}) {
      RunResult r = Requester("request", m, profile);
      ASSERT_EQ(r.exit_code, 0) << m << " " << profile << ": " << r.err;
    }
  }
  RunResult master = Requester("request", "kubemaster-1", "etcd-client");
  ASSERT_EQ(master.exit_code, 0) << master.err;

  // The profile is what the signer's configuration says, not what anybody asked for.
  std::string server_text = OpenSsl({"x509", "-in", Cert("etcd-2", "etcd-server"), "-noout", "-text"}).out;
  EXPECT_NE(server_text.find("Subject: CN = etcd-2"), std::string::npos) << server_text;
  EXPECT_NE(server_text.find("TLS Web Server Authentication, TLS Web Client Authentication"), std::string::npos);
  EXPECT_NE(server_text.find("DNS:etcd-2, DNS:localhost, DNS:etcd-peers.test, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1"),
            std::string::npos)
      << server_text;
  std::string client_text = OpenSsl({"x509", "-in", Cert("kubemaster-1", "etcd-client"), "-noout", "-text"}).out;
  EXPECT_EQ(client_text.find("Subject Alternative Name"), std::string::npos) << client_text;
  nlohmann::json issued = LastRecord();
  EXPECT_EQ(issued["profile"], "etcd-client");

  // One configuration per certificate; status covers all of a host's at once.
  std::string conf_dir = *dir_ / "etcd-1.conf.d";
  std::filesystem::create_directory(conf_dir);
  for (const char* profile : {"etcd-server", "etcd-peer"}) {
    WriteFile(conf_dir + "/" + std::string(profile).substr(5) + ".toml",
              "name = \"etcd-1\"\nprofile = \"" + std::string(profile) + "\"\ncert = \"" + Cert("etcd-1", profile) +
                  "\"\nkey_file = \"" + Key("etcd-1", profile) + "\"\n");
  }
  RunResult status = testing_support::Run({Binary("etcd-requester"), "status", "--config-dir", conf_dir, "--json",
                                           "--prometheus", *dir_ / "etcd-1.prom"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  nlohmann::json all = nlohmann::json::parse(status.out);
  ASSERT_EQ(all.size(), 2u) << status.out;
  EXPECT_EQ(all[0]["profile"], "etcd-peer");  // peer.toml, then server.toml
  EXPECT_EQ(all[1]["profile"], "etcd-server");
  EXPECT_EQ(all[1]["state"], "fresh") << status.out;
  std::string prom = ReadFile(*dir_ / "etcd-1.prom");
  EXPECT_NE(prom.find("etcd_requester_certificate_valid{name=\"etcd-1\",profile=\"etcd-peer\"} 1\n"
                      "etcd_requester_certificate_valid{name=\"etcd-1\",profile=\"etcd-server\"} 1\n"),
            std::string::npos)
      << prom;
  EXPECT_EQ(prom.find("# HELP etcd_requester_certificate_valid"), prom.rfind("# HELP etcd_requester_certificate_valid"));

  // The cluster: client and peer TLS with client certificates required, trusting only the root.
  std::vector<Member> members(3);
  std::string initial;
  for (int i = 0; i < 3; ++i) {
    members[i].name = "etcd-" + std::to_string(i + 1);
    members[i].client_port = FreePort();
    members[i].peer_port = FreePort();
    initial += (i ? "," : "") + members[i].name + "=" + members[i].peer_url();
  }
  std::string root = *dir_ / "ca-bundle.pem";
  for (Member& m : members) {
    std::vector<std::string> args{"/usr/bin/etcd", "--name", m.name, "--data-dir", *dir_ / (m.name + ".data"),
                                  "--listen-client-urls", m.client_url(), "--advertise-client-urls", m.client_url(),
                                  "--listen-peer-urls", m.peer_url(), "--initial-advertise-peer-urls", m.peer_url(),
                                  "--initial-cluster", initial, "--initial-cluster-state", "new",
                                  "--initial-cluster-token", "members-test",
                                  "--cert-file", Cert(m.name, "etcd-server"), "--key-file", Key(m.name, "etcd-server"),
                                  "--client-cert-auth", "--trusted-ca-file", root,
                                  "--peer-cert-file", Cert(m.name, "etcd-peer"), "--peer-key-file", Key(m.name, "etcd-peer"),
                                  "--peer-client-cert-auth", "--peer-trusted-ca-file", root,
                                  "--peer-cert-allowed-hostname", kPeerName, "--log-level", "warn"};
    m.etcd = std::make_unique<Process>(args, std::map<std::string, std::string>{}, *dir_ / (m.name + ".log"));
  }
  for (Member& m : members) ASSERT_TRUE(WaitForPort(m.client_port, 20s)) << ReadFile(*dir_ / (m.name + ".log"));

  auto ctl = [&](const Member& m, std::vector<std::string> args) {
    std::vector<std::string> argv{"/usr/bin/etcdctl", "--endpoints", m.client_url(), "--cacert", root, "--cert",
                                  Cert("kubemaster-1", "etcd-client"), "--key", Key("kubemaster-1", "etcd-client"),
                                  "--dial-timeout", "3s", "--command-timeout", "10s"};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing_support::Run(argv, {.env = {{"ETCDCTL_API", "3"}}, .timeout = 30s});
  };
  // The members found each other over peer TLS: a write through one is read through each.
  RunResult put = ctl(members[0], {"put", "/members/hello", "from kubemaster-1"});
  for (int i = 0; i < 50 && put.exit_code != 0; ++i) {  // the first leader election
    std::this_thread::sleep_for(200ms);
    put = ctl(members[0], {"put", "/members/hello", "from kubemaster-1"});
  }
  ASSERT_EQ(put.exit_code, 0) << put.err << ReadFile(*dir_ / "etcd-1.log");
  for (const Member& m : members) {
    RunResult get = ctl(m, {"get", "/members/hello", "--print-value-only"});
    EXPECT_EQ(get.out, "from kubemaster-1\n") << m.name << ": " << get.err;
  }
  RunResult list = ctl(members[1], {"member", "list"});
  EXPECT_EQ(Lines(list.out).size(), 3u) << list.out << list.err;

  // The peer port wants a peer's certificate: the master's client certificate (same root) is
  // refused in the handshake; a member's peer certificate, the control, is served.
  auto peer_get = [&](const Member& m, const std::string& who, const std::string& profile) {
    return testing_support::Run({"/usr/bin/curl", "-sS", "--http1.1", "--max-time", "5", "--cacert", root, "--cert", Cert(who, profile), "--key",
                Key(who, profile), m.peer_url() + "/members"});
  };
  for (const Member& m : members) {
    RunResult as_master = peer_get(m, "kubemaster-1", "etcd-client");
    EXPECT_NE(as_master.exit_code, 0) << m.name << " accepted a master on its peer port: " << as_master.out;
    EXPECT_NE(as_master.err.find("bad certificate"), std::string::npos) << m.name << ": " << as_master.err;
    EXPECT_EQ(as_master.out.find("etcd-"), std::string::npos) << as_master.out;
  }
  RunResult as_peer = peer_get(members[0], "etcd-2", "etcd-peer");
  EXPECT_EQ(as_peer.exit_code, 0) << as_peer.err;
  EXPECT_NE(as_peer.out.find("etcd-3"), std::string::npos) << as_peer.out;

  // A server certificate renewed under a running member is served on the next handshake.
  auto served_serial = [&](const Member& m) {
    RunResult s = OpenSsl({"s_client", "-connect", "127.0.0.1:" + std::to_string(m.client_port), "-CAfile", root,
                           "-cert", Cert("kubemaster-1", "etcd-client"), "-key", Key("kubemaster-1", "etcd-client"),
                           "-verify_return_error", "-servername", "localhost"});
    return Serial(s.out);
  };
  std::string before = Serial(ReadFile(Cert("etcd-1", "etcd-server")));
  ASSERT_EQ(served_serial(members[0]), before);
  int pid = members[0].etcd->pid();
  RunResult renew = Requester("renew", "etcd-1", "etcd-server", {"--force"});
  ASSERT_EQ(renew.exit_code, 0) << renew.err;
  std::string after = Serial(ReadFile(Cert("etcd-1", "etcd-server")));
  ASSERT_NE(after, before);
  EXPECT_EQ(served_serial(members[0]), after);
  EXPECT_TRUE(members[0].etcd->Running());
  EXPECT_EQ(members[0].etcd->pid(), pid);
  RunResult still = ctl(members[0], {"get", "/members/hello", "--print-value-only"});
  EXPECT_EQ(still.out, "from kubemaster-1\n") << still.err;

  for (Member& m : members) m.etcd.reset();

  // The signer's report tells a member's two certificates apart: two keys, not a key change.
  RunResult report = testing_support::Run({Binary("etcd-signerctl"), "--config", *dir_ / "signer.toml", "audit",
                                           "report", *dir_ / "audit.log", "--json"});
  ASSERT_EQ(report.exit_code, 0) << report.err << report.out;
  int member_rows = 0;
  nlohmann::json summary = nlohmann::json::parse(report.out);
  for (const auto& row : summary["identities"]) {
    if (row["identity"] != "etcd-2") continue;
    ++member_rows;
    EXPECT_TRUE(row["profile"] == "etcd-server" || row["profile"] == "etcd-peer") << row;
    EXPECT_EQ(row["issued"], 1) << row;
    EXPECT_EQ(row["key_changes"], 0) << row;
  }
  EXPECT_EQ(member_rows, 2) << report.out;

  // No etcd CA key on any disk: no private key anywhere in the tree is the root's.
  pki::X509Ptr ca = pki::ReadCertificateFile(d_->ca.ca_cert);
  int keys_seen = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir_->path())) {
    if (!entry.is_regular_file() || entry.file_size() > 1 << 20) continue;
    std::string text = ReadFile(entry.path().string());
    if (text.find("PRIVATE KEY-----") == std::string::npos) continue;
    BIO* bio = BIO_new_mem_buf(text.data(), static_cast<int>(text.size()));
    EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, const_cast<char*>(""));
    BIO_free(bio);
    if (key == nullptr) continue;  // OpenSSH's own format (the SSH keys)
    ++keys_seen;
    EXPECT_FALSE(pki::SamePublicKey(key, X509_get0_pubkey(ca.get()))) << entry.path() << " holds the CA key";
    EVP_PKEY_free(key);
  }
  EXPECT_GE(keys_seen, 7);  // the six member keys and the master's were looked at
}

TEST_F(Members, TheSignerRefusesWhatARoleMayNotHave) {
  struct Case {
    std::string what, key, request, cn, reason;
    std::vector<std::string> csr_extra;
  };
  std::vector<Case> cases{
      {"a member name not configured", "etcd-9", "sign --profile etcd-server", "etcd-9", "member-unknown", {}},
      {"a master asking for etcd-server", "kubemaster-1", "sign --profile etcd-server", "kubemaster-1",
       "profile-not-allowed", {}},
      {"a master asking for etcd-peer", "kubemaster-1", "sign --profile etcd-peer", "kubemaster-1",
       "profile-not-allowed", {}},
      {"a member asking for etcd-client", "etcd-1", "sign", "etcd-1", "profile-not-allowed", {}},
      {"a member asking for another member's name", "etcd-1", "sign --profile etcd-peer", "etcd-2",
       "identity-mismatch", {}},
      {"a key bound to no member", "unbound", "sign --profile etcd-server", "etcd-1", "member-identity-required", {}},
      {"a CSR asking for SANs", "etcd-1", "sign --profile etcd-server", "etcd-1", "extensions-requested",
       {"-addext", "subjectAltName=DNS:etcd-1,DNS:evil.example"}},
  };
  for (const Case& c : cases) {
    RunResult r = Sign(c.key, c.request, CsrB64(c.cn, c.csr_extra));
    EXPECT_EQ(r.exit_code, 77) << c.what << ": " << r.err;
    EXPECT_EQ(r.out, "") << c.what;
    EXPECT_EQ(SignerLine(r.err).rfind("etcd-signer: " + c.reason + ": ", 0), 0u) << c.what << ": " << r.err;
    nlohmann::json record = LastRecord();
    EXPECT_EQ(record["outcome"], "refused") << c.what;
    EXPECT_EQ(record["reason"], c.reason) << c.what;
    EXPECT_EQ(record["profile"], c.request == "sign" ? "etcd-client" : c.request.substr(15)) << c.what;
  }
  // The control: the same member, the profile it may have.
  RunResult ok = Sign("etcd-1", "sign --profile etcd-server", CsrB64("etcd-1"));
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("BEGIN CERTIFICATE"), std::string::npos);
  // An unknown profile is a usage error, before anything is read.
  RunResult unknown = Sign("etcd-1", "sign --profile etcd-admin", CsrB64("etcd-1"));
  EXPECT_EQ(unknown.exit_code, 64) << unknown.err;
  EXPECT_NE(unknown.err.find("unknown-profile"), std::string::npos) << unknown.err;

  // The requester says the same, and keeps nothing.
  RunResult master = Requester("request", "kubemaster-1", "etcd-server");
  EXPECT_EQ(master.exit_code, 77) << master.err;
  EXPECT_NE(master.err.find("profile-not-allowed"), std::string::npos) << master.err;
  EXPECT_FALSE(std::filesystem::exists(Cert("kubemaster-1", "etcd-server")));
}

}  // namespace
