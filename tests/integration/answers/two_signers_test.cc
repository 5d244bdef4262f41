// SPDX-License-Identifier: Apache-2.0
// #24: one hostile or broken signer host must not stop a master that another host would serve,
// nor make it store anything but the verified path, nor change its roots. Two real sshd on
// 127.0.0.1, each running a scripted "signer" (a forced command that answers what the test
// chose, `ca` and `sign` apart); the healthy one answers as the real signer would, with a
// certificate from the CA the master trusts.
#include <gtest/gtest.h>
#include <openssl/pem.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "pki/certificate_profile.h"
#include "pki/verify.h"
#include "requester/config.h"
#include "test_support.h"

namespace {

using namespace testing_support;
using namespace std::chrono_literals;

struct ScriptedSigner {
  std::string dir;  // answer files and the call log
  std::unique_ptr<SshServer> ssh;
  std::string server() const { return ssh->user() + "@127.0.0.1:" + std::to_string(ssh->port()); }
  // `sign`: prints `out` on stdout, `err` on stderr and exits `status`; `ca`: prints `ca`.
  void Answer(const std::string& out, int status = 0, const std::string& err = "", const std::string& ca = "") {
    WriteFile(dir + "/out", out);
    WriteFile(dir + "/err", err);
    WriteFile(dir + "/ca", ca);
    WriteFile(dir + "/signer.sh", "echo \"$SSH_ORIGINAL_COMMAND\" >>" + dir + "/calls\n" +
                                      "case \"$SSH_ORIGINAL_COMMAND\" in\n  ca) cat " + dir + "/ca; exit 0;;\nesac\n" +
                                      "cat >/dev/null\ncat " + dir + "/out\ncat " + dir + "/err >&2\nexit " +
                                      std::to_string(status) + "\n");
  }
  int Calls() const {
    if (!std::filesystem::exists(dir + "/calls")) return 0;
    return static_cast<int>(Lines(ReadFile(dir + "/calls")).size());
  }
};

class TwoSigners : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    auto now = std::chrono::system_clock::now();
    ca_key_.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    pki::CaCertificateFields f{"CN=etcd root", ca_key_.get(), pki::RandomSerial(), now - 1h, now + 30 * 24h};
    ca_cert_ = pki::BuildCaCertificate(f);
    pki::SignCertificate(ca_cert_.get(), ca_key_.get());
    other_key_.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    pki::CaCertificateFields g{"CN=etcd root", other_key_.get(), pki::RandomSerial(), now - 1h, now + 30 * 24h};
    other_cert_ = pki::BuildCaCertificate(g);
    pki::SignCertificate(other_cert_.get(), other_key_.get());
    WriteFile(*dir_ / "root.pem", pki::ToPem(ca_cert_.get()));
    signers_ = new std::vector<ScriptedSigner>(2);
    for (int i = 0; i < 2; ++i) {
      ScriptedSigner& s = (*signers_)[static_cast<std::size_t>(i)];
      s.dir = *dir_ / ("signer-" + std::to_string(i));
      std::filesystem::create_directories(s.dir);
      s.ssh = std::make_unique<SshServer>(s.dir);
      if (i == 0) ssh_key_ = new std::string(s.ssh->NewClientKey("master-ssh"));
      s.ssh->Authorize(*ssh_key_, "/bin/sh " + s.dir + "/signer.sh");
      s.Answer("");
      s.ssh->Start();
      std::filesystem::permissions(s.dir, std::filesystem::perms::all);  // the signer account logs calls
    }
    // Which of the two this master asks first (the order is derived from its name).
    requester::RequesterConfig c;
    c.name = "kubemaster-1";
    c.servers = {(*signers_)[0].server(), (*signers_)[1].server()};
    first_ = requester::ServerOrder(c).front() == c.servers[0] ? 0 : 1;
    our_key_.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    pki::BioPtr bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_PrivateKey(bio.get(), our_key_.get(), nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    WriteFile(*dir_ / "client.key", std::string(data, static_cast<std::size_t>(len)), 0600);
  }
  static void TearDownTestSuite() {
    delete signers_;
    delete ssh_key_;
    delete dir_;
    ca_key_.reset();
    ca_cert_.reset();
    other_key_.reset();
    other_cert_.reset();
    our_key_.reset();
  }

  // The signer asked first (the hostile one in these tests) and the other one.
  static ScriptedSigner& Hostile() { return (*signers_)[static_cast<std::size_t>(first_)]; }
  static ScriptedSigner& Healthy() { return (*signers_)[static_cast<std::size_t>(1 - first_)]; }

  // A certificate as the real signer builds it for our key, issued by `issuer` (default: the
  // trusted root).
  static std::string Issue(X509* issuer = nullptr, EVP_PKEY* issuer_key = nullptr) {
    if (issuer == nullptr) {
      issuer = ca_cert_.get();
      issuer_key = ca_key_.get();
    }
    auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    pki::LeafCertificateFields f{"kubemaster-1", our_key_.get(), pki::RandomSerial(), now - 5min, now + 24h};
    pki::X509Ptr c = pki::BuildLeafCertificate(f, issuer);
    pki::SignCertificate(c.get(), issuer_key);
    return pki::ToPem(c.get());
  }

  std::vector<std::string> Args(const std::string& verb, const std::vector<std::string>& servers) {
    std::vector<std::string> a{Binary("etcd-requester"), verb, "--name", "kubemaster-1"};
    for (const auto& s : servers) a.insert(a.end(), {"--server", s});
    a.insert(a.end(), {"--ssh-key", *ssh_key_, "--known-hosts", *dir_ / "known_hosts", "--key-file",
                       *dir_ / "client.key", "--cert", *dir_ / "client.pem", "--ca-bundle", *dir_ / "ca-bundle.pem",
                       "--connect-timeout", "5s", "--io-timeout", "30s"});
    return a;
  }
  RunResult Requester(const std::string& verb, std::vector<std::string> extra = {}, bool both = true) {
    std::vector<std::string> servers{Hostile().server()};
    if (both) servers.push_back(Healthy().server());
    auto a = Args(verb, servers);
    a.insert(a.end(), extra.begin(), extra.end());
    return testing_support::Run(a, {.timeout = 90s});
  }
  nlohmann::json State() { return nlohmann::json::parse(ReadFile(*dir_ / "client.pem.state.json")); }

  void SetUp() override {
    // Both host keys known; the operator's root installed; no certificate and no state yet.
    WriteFile(*dir_ / "known_hosts",
              ReadFile((*signers_)[0].ssh->known_hosts()) + ReadFile((*signers_)[1].ssh->known_hosts()));
    WriteFile(*dir_ / "ca-bundle.pem", pki::ToPem(ca_cert_.get()));
    for (auto f : {"client.pem", "client.pem.state.json"}) std::filesystem::remove(*dir_ / f);
    for (auto& s : *signers_) std::filesystem::remove(s.dir + "/calls");
    Healthy().Answer(Issue(), 0, "", pki::ToPem(ca_cert_.get()));
  }

  static TempDir* dir_;
  static std::vector<ScriptedSigner>* signers_;
  static std::string* ssh_key_;
  static int first_;
  static pki::EvpPkeyPtr ca_key_, other_key_, our_key_;
  static pki::X509Ptr ca_cert_, other_cert_;
};
TempDir* TwoSigners::dir_ = nullptr;
std::vector<ScriptedSigner>* TwoSigners::signers_ = nullptr;
std::string* TwoSigners::ssh_key_ = nullptr;
int TwoSigners::first_ = 0;
pki::EvpPkeyPtr TwoSigners::ca_key_, TwoSigners::other_key_, TwoSigners::our_key_;
pki::X509Ptr TwoSigners::ca_cert_, TwoSigners::other_cert_;

// Point 1: a policy refusal (64, 65, 77) from the first signer used to end the walk.
TEST_F(TwoSigners, ARefusalFromOneSignerIsLoggedAndTheNextAsked) {
  for (int status : {64, 65, 77}) {
    SCOPED_TRACE(status);
    SetUp();
    Hostile().Answer("", status, "etcd-signer: identity-denied: kubemaster-1 is denied on this host\n");
    RunResult r = Requester("request");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("signer " + Hostile().server() + " failed (signer-refused: "), std::string::npos) << r.err;
    EXPECT_EQ(Hostile().Calls(), 1);
    EXPECT_EQ(Healthy().Calls(), 1);
    EXPECT_EQ(State().value("served_by", ""), Healthy().server());
  }
}

TEST_F(TwoSigners, ARefusalIsTheAnswerOnlyWhenEveryReachableSignerRefused) {
  Hostile().Answer("", 77, "etcd-signer: identity-denied: kubemaster-1 is denied on this host\n");
  Healthy().Answer("", 77, "etcd-signer: key-denied: this key is denied\n");
  RunResult r = Requester("request");
  EXPECT_EQ(r.exit_code, 77) << r.err;
  EXPECT_NE(r.err.find("every signer refused or failed"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("key-denied"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(*dir_ / "client.pem"));
}

// A signer whose token refused its PIN rests (its token must not be locked by us); the others
// are still asked, and a forced renewal is the operator asking it again.
TEST_F(TwoSigners, APinProblemRestsThatSignerOnly) {
  Hostile().Answer("", 69, "etcd-signer: pin-incorrect: the token refused the PIN\n");
  RunResult r = Requester("request");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Hostile().Calls(), 1);
  nlohmann::json backoff = State()["signer_pin_backoff"];
  ASSERT_TRUE(backoff.contains(Hostile().server())) << State().dump();
  EXPECT_EQ(backoff[Hostile().server()].value("count", 0), 1);

  RunResult again = Requester("request");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(Hostile().Calls(), 1) << "a resting signer was asked";
  EXPECT_NE(again.err.find("signer " + Hostile().server() + " is not asked until "), std::string::npos) << again.err;
  EXPECT_EQ(Healthy().Calls(), 2);

  RunResult forced = Requester("renew", {"--force"});
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_EQ(Hostile().Calls(), 2);
  EXPECT_EQ(State()["signer_pin_backoff"][Hostile().server()].value("count", 0), 2);
}

// The daemon used to exit (and systemd's RestartPreventExitStatus kept it down) on one signer's
// PIN answer, even with a single signer.
TEST_F(TwoSigners, TheDaemonNeverStopsForOneSignersPinAnswer) {
  Hostile().Answer("", 69, "etcd-signer: pin-incorrect: the token refused the PIN\n");
  std::vector<std::string> args = Args("run", {Hostile().server()});
  Process daemon(args, {}, *dir_ / "daemon.log");
  for (int i = 0; i < 200 && Hostile().Calls() == 0; ++i) std::this_thread::sleep_for(50ms);
  ASSERT_EQ(Hostile().Calls(), 1);
  std::this_thread::sleep_for(2s);
  EXPECT_TRUE(daemon.Running()) << ReadFile(*dir_ / "daemon.log");
  EXPECT_EQ(Hostile().Calls(), 1) << "the resting signer was asked again";
  daemon.Stop();
  EXPECT_NE(ReadFile(*dir_ / "daemon.log").find("signer-pin-backoff"), std::string::npos)
      << ReadFile(*dir_ / "daemon.log");
}

// Point 2: anything after the leaf that is not the verified path is refused, and the next signer
// serves; alone, the signer's extra certificate leaves the current certificate in place.
TEST_F(TwoSigners, OnlyTheVerifiedPathIsStored) {
  const std::string leaf = Issue();
  auto now = std::chrono::system_clock::now();
  pki::EvpPkeyPtr stray_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  pki::CaCertificateFields f{"CN=revoked intermediate", stray_key.get(), pki::RandomSerial(), now - 1h, now + 24h};
  pki::X509Ptr stray = pki::BuildCaCertificate(f);
  pki::SignCertificate(stray.get(), ca_key_.get());
  for (const std::string& extra : {pki::ToPem(ca_cert_.get()), pki::ToPem(stray.get())}) {
    SetUp();
    Hostile().Answer(leaf + extra);
    RunResult r = Requester("request");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("cert-chain"), std::string::npos) << r.err;
    EXPECT_EQ(ReadFile(*dir_ / "client.pem"), ReadFile(Healthy().dir + "/out"));
  }
  // One signer only: refused (65), the stored certificate unchanged.
  SetUp();
  ASSERT_EQ(Requester("request").exit_code, 0);
  const std::string stored = ReadFile(*dir_ / "client.pem");
  Hostile().Answer(leaf + pki::ToPem(stray.get()));
  RunResult alone = Requester("renew", {"--force"}, /*both=*/false);
  EXPECT_EQ(alone.exit_code, 65) << alone.err;
  EXPECT_NE(alone.err.find("etcd-requester: cert-chain: "), std::string::npos) << alone.err;
  EXPECT_EQ(ReadFile(*dir_ / "client.pem"), stored);
}

// Point 3: a certificate from another root (sent with that root) is refused, and neither `sign`
// nor `ca` from a signer replaces the operator's roots.
TEST_F(TwoSigners, ADifferentRootNeverReplacesTheOperatorsRoots) {
  Hostile().Answer(Issue(other_cert_.get(), other_key_.get()) + pki::ToPem(other_cert_.get()), 0, "",
                   pki::ToPem(other_cert_.get()));
  RunResult r = Requester("request");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("cert-untrusted"), std::string::npos) << r.err;
  EXPECT_EQ(ReadFile(*dir_ / "ca-bundle.pem"), pki::ToPem(ca_cert_.get()));

  RunResult ca = Requester("ca", {}, /*both=*/false);
  EXPECT_EQ(ca.exit_code, 65) << ca.err;
  EXPECT_NE(ca.err.find("etcd-requester: ca-changed: "), std::string::npos) << ca.err;
  EXPECT_NE(ca.err.find(pki::CertificateSha256(ca_cert_.get())), std::string::npos) << ca.err;
  EXPECT_NE(ca.err.find(pki::CertificateSha256(other_cert_.get())), std::string::npos) << ca.err;
  EXPECT_EQ(ReadFile(*dir_ / "ca-bundle.pem"), pki::ToPem(ca_cert_.get()));
  // A fingerprint the signer does not offer changes nothing either.
  RunResult wrong = Requester("ca", {"--accept-sha256", pki::CertificateSha256(ca_cert_.get())}, false);
  EXPECT_EQ(wrong.exit_code, 65) << wrong.err;
  EXPECT_NE(wrong.err.find("etcd-requester: ca-mismatch: "), std::string::npos) << wrong.err;
  EXPECT_EQ(ReadFile(*dir_ / "ca-bundle.pem"), pki::ToPem(ca_cert_.get()));
  // The explicit step: the operator names the new root; the output shows old and new.
  WriteFile(*dir_ / "other.pem", pki::ToPem(other_cert_.get()));
  RunResult accepted = Requester("ca", {"--accept-sha256", RootSha256(*dir_ / "other.pem")}, false);
  ASSERT_EQ(accepted.exit_code, 0) << accepted.err;
  EXPECT_NE(accepted.out.find("roots were " + pki::CertificateSha256(ca_cert_.get()) + "; now " +
                              pki::CertificateSha256(other_cert_.get())),
            std::string::npos)
      << accepted.out;
  EXPECT_EQ(ReadFile(*dir_ / "ca-bundle.pem"), pki::ToPem(other_cert_.get()));
}

// Trust anchors are never taken on first use and never absent.
TEST_F(TwoSigners, NoRootMeansNoCertificate) {
  std::filesystem::remove(*dir_ / "ca-bundle.pem");
  RunResult unpinned = Requester("request");
  EXPECT_EQ(unpinned.exit_code, 78) << unpinned.err;
  EXPECT_NE(unpinned.err.find("etcd-requester: no-trust-anchor: "), std::string::npos) << unpinned.err;
  EXPECT_EQ(Healthy().Calls() + Hostile().Calls(), 0);

  auto no_bundle = Args("request", {Healthy().server()});
  auto at = std::find(no_bundle.begin(), no_bundle.end(), "--ca-bundle");
  no_bundle.erase(at, at + 2);
  RunResult none = testing_support::Run(no_bundle, {.timeout = 60s});
  EXPECT_EQ(none.exit_code, 78) << none.err;
  EXPECT_NE(none.err.find("no-trust-anchor"), std::string::npos) << none.err;
  EXPECT_FALSE(std::filesystem::exists(*dir_ / "client.pem"));

  // Pinned: the first signer offers only another root (refused, nothing stored); the next one
  // offers the pinned root among others, and only that root is stored.
  Hostile().Answer(Issue(other_cert_.get(), other_key_.get()), 0, "", pki::ToPem(other_cert_.get()));
  Healthy().Answer(Issue(), 0, "", pki::ToPem(other_cert_.get()) + pki::ToPem(ca_cert_.get()));
  RunResult pinned = Requester("request", {"--ca-sha256", RootSha256(*dir_ / "root.pem")});
  ASSERT_EQ(pinned.exit_code, 0) << pinned.err;
  EXPECT_NE(pinned.err.find("ca-mismatch"), std::string::npos) << pinned.err;
  EXPECT_EQ(ReadFile(*dir_ / "ca-bundle.pem"), pki::ToPem(ca_cert_.get()));
}

}  // namespace
