// SPDX-License-Identifier: Apache-2.0
// #12: no single point of failure. An offline root that etcd trusts, one intermediate per signer
// host (each in its own SoftHSM token), two sshd each running the signer with its intermediate,
// one etcd trusting only the root, and a requester that fails over between the signers.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <csignal>
#include <thread>

#include "etcd_fixture.h"
#include "test_support.h"

namespace {

using namespace testing_support;
using namespace std::chrono_literals;

class TwoTier : public ::testing::Test {
 protected:
  RunResult Hsm(std::vector<std::string> args, const CaToken& token) { return RunHsm(std::move(args), token); }
  // The root ceremony for one signer host: its token's key gets a CSR, the root signs it.
  std::string Intermediate(SignerDeployment& d, const std::string& name, const std::string& key_uri) {
    return MakeIntermediate(d, name, key_uri, *root_, root_cert_);
  }
  void Configure(SignerDeployment& d, const std::string& key_uri, const std::string& intermediate,
                 const std::string& extra = "") {
    WriteFile(d.dir + "/signer.toml",
              "module = \"" + std::string(kSoftHsmModule) + "\"\nkey = \"" + key_uri + "\"\npin_file = \"" +
                  d.ca.pin_file + "\"\nca_cert = \"" + intermediate + "\"\nca_chain = \"" + intermediate +
                  "\"\nca_bundle = \"" + d.dir + "/root.pem\"\naudit_log = \"" + d.dir +
                  "/audit.log\"\nlock_file = \"" + d.dir + "/token.lock\"\nsyslog = false\n" + extra);
  }
  std::string Server(const SignerDeployment& d) { return d.ssh.user() + "@127.0.0.1:" + std::to_string(d.ssh.port()); }
  std::string Master(const std::string& name) { return dir_ / ("master/" + name); }
  RunResult Requester(const std::vector<std::string>& servers, const std::string& verb = "request",
                      std::vector<std::string> extra = {}) {
    std::vector<std::string> args{Binary("etcd-requester"), verb, "--name", "kubemaster-1", "--ssh-key", ssh_key_,
                                  "--known-hosts", Master("known_hosts"), "--key-file", Master("client.key"),
                                  "--cert", Master("client.pem"), "--ca-bundle", Master("root.pem"),
                                  "--connect-timeout", "2s", "--io-timeout", "10s"};
    for (const auto& s : servers) args.insert(args.end(), {"--server", s});
    args.insert(args.end(), extra.begin(), extra.end());
    return testing_support::Run(args, {.timeout = 120s});
  }
  std::string ServedBy() {
    return nlohmann::json::parse(ReadFile(Master("client.pem") + ".state.json")).value("served_by", "");
  }
  RunResult Put(const std::string& value) {
    return etcd_->Ctl(Master("client.pem"), Master("client.key"), {"put", "/two-tier/" + value, value});
  }
  static std::size_t Certificates(const std::string& pem) {
    std::size_t n = 0;
    for (std::size_t at = 0; (at = pem.find("-----BEGIN CERTIFICATE-----", at)) != std::string::npos; ++at) ++n;
    return n;
  }

  void SetUp() override {
    ::mkdir((dir_ / "root").c_str(), 0700);
    root_ = std::make_unique<CaToken>(dir_ / "root/token");
    root_cert_ = dir_ / "root/root.pem";
    // The root of a two-tier CA certifies one level of intermediates: pathLenConstraint 1.
    RunResult root = Hsm({"ca", "create", "--module", kSoftHsmModule, "--key", root_->key_uri, "--pin-file",
                          root_->pin_file, "--subject", "CN=etcd client root", "--days", "365", "--path-len", "1",
                          "--out", root_cert_},
                         *root_);
    ASSERT_EQ(root.exit_code, 0) << root.err;
    ::mkdir((dir_ / "a").c_str(), 0755);
    ::mkdir((dir_ / "b").c_str(), 0755);
    a_ = std::make_unique<SignerDeployment>(dir_ / "a");
    b_ = std::make_unique<SignerDeployment>(dir_ / "b");
    for (auto* d : {a_.get(), b_.get()}) {
      WriteFile(d->dir + "/root.pem", ReadFile(root_cert_));
      Configure(*d, d->ca.key_uri, Intermediate(*d, d == a_.get() ? "signer-a" : "signer-b", d->ca.key_uri));
    }
    ssh_key_ = a_->AddMaster("kubemaster-1");
    b_->ssh.Authorize(ssh_key_, b_->SignerCommand("kubemaster-1"));
    a_->Start();
    b_->Start();
    ::mkdir((dir_ / "master").c_str(), 0700);
    WriteFile(Master("known_hosts"), ReadFile(a_->ssh.known_hosts()) + ReadFile(b_->ssh.known_hosts()));
    WriteFile(Master("root.pem"), ReadFile(root_cert_));
    ::mkdir((dir_ / "etcd").c_str(), 0700);
    etcd_ = std::make_unique<EtcdServer>(dir_ / "etcd");
    etcd_->Start(root_cert_);  // etcd trusts the root only
  }

  TempDir dir_;
  std::unique_ptr<CaToken> root_;
  std::string root_cert_;
  std::unique_ptr<SignerDeployment> a_, b_;
  std::unique_ptr<EtcdServer> etcd_;
  std::string ssh_key_;
};

TEST_F(TwoTier, TwoSignersFailoverAndIntermediateRotationWithEtcdUntouched) {
  // 1. Each signer's certificate works with etcd, which trusts only the root; the stored file is
  //    the leaf followed by the signer's intermediate.
  ASSERT_EQ(Requester({Server(*a_)}, "request").exit_code, 0);  // makes the key
  for (auto* d : {a_.get(), b_.get()}) {
    RunResult r = Requester({Server(*d)}, "renew", {"--force"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::string stored = ReadFile(Master("client.pem"));
    EXPECT_EQ(Certificates(stored), 2u) << stored;
    RunResult issuer = OpenSsl({"x509", "-noout", "-issuer"}, stored);
    EXPECT_NE(issuer.out.find(d == a_.get() ? "signer-a" : "signer-b"), std::string::npos) << issuer.out;
    RunResult put = Put(d == a_.get() ? "a" : "b");
    EXPECT_EQ(put.exit_code, 0) << put.err;
  }
  // Which signer kubemaster-1 tries first is stable: find it, then take it away.
  std::vector<std::string> both{Server(*a_), Server(*b_)};
  ASSERT_EQ(Requester(both, "renew", {"--force"}).exit_code, 0);
  SignerDeployment* first = ServedBy() == Server(*a_) ? a_.get() : b_.get();
  SignerDeployment* second = first == a_.get() ? b_.get() : a_.get();
  ASSERT_EQ(ServedBy(), Server(*first));

  // 2. The first signer's token unusable (PIN file gone: 69): the second serves.
  std::string pin = ReadFile(first->ca.pin_file);
  ::unlink(first->ca.pin_file.c_str());
  RunResult r = Requester(both, "renew", {"--force"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedBy(), Server(*second));
  EXPECT_NE(r.err.find("signer " + Server(*first) + " failed (signer-refused"), std::string::npos) << r.err;
  auto state = nlohmann::json::parse(ReadFile(Master("client.pem") + ".state.json"));
  EXPECT_NE(state["signer_errors"].value(Server(*first), "").find("pin-file"), std::string::npos) << state.dump();
  WriteFile(first->ca.pin_file, pin, 0400);
  GiveToSigner(first->ca.pin_file);

  // 3. A refusal speaks for the signer that made it (#24): the first signer's 77 is logged and the
  //    second serves.
  Configure(*first, first->ca.key_uri, first->dir + "/" + (first == a_.get() ? "signer-a" : "signer-b") + ".pem",
            "name_pattern = \"^nobody$\"\n");
  r = Requester(both, "renew", {"--force"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("name-policy"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("trying " + Server(*second)), std::string::npos) << r.err;
  EXPECT_EQ(ServedBy(), Server(*second));
  Configure(*first, first->ca.key_uri, first->dir + "/" + (first == a_.get() ? "signer-a" : "signer-b") + ".pem");

  // 4. The first signer's sshd stopped: the second serves, and the log says why the first was skipped.
  first->ssh.Stop();
  r = Requester(both, "renew", {"--force"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("signer " + Server(*first) + " failed (connect-failed"), std::string::npos) << r.err;
  EXPECT_EQ(ServedBy(), Server(*second));
  EXPECT_EQ(Put("failover").exit_code, 0);

  // 5. Black-holed: a socket that accepts and never speaks stands in for the first signer.
  int hole = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(first->ssh.port()));
  int one = 1;
  ::setsockopt(hole, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ASSERT_EQ(::bind(hole, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(hole, 8), 0);
  r = Requester(both, "renew", {"--force"});
  ::close(hole);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedBy(), Server(*second));
  first->ssh.Start();

  // 6. Rotate A's intermediate (a new key in A's token, a new intermediate from the root) with etcd
  //    untouched: new certificates work, the old one keeps working.
  std::string old_cert = ReadFile(Master("client.pem"));
  WriteFile(Master("old.pem"), old_cert);
  WriteFile(Master("old.key"), ReadFile(Master("client.key")), 0600);
  ASSERT_EQ(Hsm({"keygen", "--module", kSoftHsmModule, "--token", "etcd-ca", "--pin-file", a_->ca.pin_file, "--label",
                 "ca-key-2", "--type", "ec-p256"},
                a_->ca).exit_code, 0);
  std::string rotated_uri = "pkcs11:token=etcd-ca;object=ca-key-2;type=private";
  std::string rotated = Intermediate(*a_, "signer-a-2", rotated_uri);
  GiveToSigner(a_->dir);
  ::chown(a_->dir.c_str(), 0, 0);
  Configure(*a_, rotated_uri, rotated);
  r = Requester({Server(*a_)}, "renew", {"--force"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(OpenSsl({"x509", "-noout", "-issuer"}, ReadFile(Master("client.pem"))).out.find("signer-a-2"),
            std::string::npos);
  EXPECT_EQ(Put("rotated").exit_code, 0);
  RunResult old_works = etcd_->Ctl(Master("old.pem"), Master("old.key"), {"get", "/two-tier/rotated", "--print-value-only"});
  EXPECT_EQ(old_works.exit_code, 0) << old_works.err;
  EXPECT_EQ(old_works.out, "rotated\n");
}

// 6. Two masters' daemons keep their certificates fresh while the signers go down one at a time:
//    60 s certificates renew at 70-90 % of their life, so each phase sees one renewal per master.
//    Every master's certificate works with etcd at every moment, every renewal keeps the master's
//    key, and the daemons stop cleanly on SIGTERM.
TEST_F(TwoTier, DaemonsKeepEveryMasterFreshWhileSignersGoDownOneAtATime) {
  const std::string short_lived = "lifetime_min = 60\nlifetime_default = 60\nbackdate = 0\n";
  Configure(*a_, a_->ca.key_uri, a_->dir + "/signer-a.pem", short_lived);
  Configure(*b_, b_->ca.key_uri, b_->dir + "/signer-b.pem", short_lived);
  std::string second_key = a_->AddMaster("kubemaster-2");
  b_->ssh.Authorize(second_key, b_->SignerCommand("kubemaster-2"));
  struct Node {
    std::string name, ssh_key, cert, key;
    std::unique_ptr<Process> daemon;
  };
  std::vector<Node> masters(2);
  masters[0] = {"kubemaster-1", ssh_key_, Master("m1.pem"), Master("m1.key"), nullptr};
  masters[1] = {"kubemaster-2", second_key, Master("m2.pem"), Master("m2.key"), nullptr};
  for (auto& m : masters) {
    std::vector<std::string> args{Binary("etcd-requester"), "run", "--name", m.name, "--ssh-key", m.ssh_key,
                                  "--known-hosts", Master("known_hosts"), "--key-file", m.key, "--cert", m.cert,
                                  "--ca-bundle", Master("root.pem"), "--lifetime", "60s", "--connect-timeout", "2s",
                                  "--io-timeout", "10s", "--server", Server(*a_), "--server", Server(*b_)};
    m.daemon = std::make_unique<Process>(args, std::map<std::string, std::string>{}, m.cert + ".log");
  }
  auto serial = [](const Node& m) {
    RunResult r = OpenSsl({"x509", "-in", m.cert, "-noout", "-serial"});
    return r.exit_code == 0 ? r.out : std::string();
  };
  auto served_by = [](const Node& m) {
    try {
      return nlohmann::json::parse(ReadFile(m.cert + ".state.json")).value("served_by", "");
    } catch (const std::exception&) {
      return std::string();
    }
  };
  auto key_of = [](const Node& m) { return OpenSsl({"x509", "-in", m.cert, "-noout", "-pubkey"}).out; };
  auto logs = [&] { return ReadFile(masters[0].cert + ".log") + ReadFile(masters[1].cert + ".log"); };
  // Waits until every master holds a certificate other than `before`, putting through etcd with
  // each one's current certificate every 2 s: an old certificate stays in place until the new one is.
  int puts = 0;
  auto renewed_all = [&](const std::vector<std::string>& before, std::chrono::seconds limit) {
    auto until = std::chrono::steady_clock::now() + limit;
    for (;;) {
      bool all = true;
      for (std::size_t i = 0; i < masters.size(); ++i) {
        std::string now = serial(masters[i]);
        all = all && !now.empty() && now != before[i];
        if (!now.empty()) {
          RunResult put = etcd_->Ctl(masters[i].cert, masters[i].key, {"put", "/fresh/" + masters[i].name, now});
          EXPECT_EQ(put.exit_code, 0) << masters[i].name << ": " << put.err;
          ++puts;
        }
      }
      if (all || std::chrono::steady_clock::now() > until) return all;
      std::this_thread::sleep_for(2s);
    }
  };
  ASSERT_TRUE(renewed_all({"", ""}, 30s)) << logs();
  std::vector<std::string> first{serial(masters[0]), serial(masters[1])};
  std::vector<std::string> preferred{served_by(masters[0]), served_by(masters[1])};
  std::vector<std::string> keys{key_of(masters[0]), key_of(masters[1])};

  // Signer A down: both masters renew through B.
  a_->ssh.Stop();
  ASSERT_TRUE(renewed_all(first, 90s)) << logs();
  for (auto& m : masters) EXPECT_EQ(served_by(m), Server(*b_)) << m.name << "\n" << logs();
  std::vector<std::string> second{serial(masters[0]), serial(masters[1])};

  // A back, B down: both renew through A.
  a_->ssh.Start();
  b_->ssh.Stop();
  ASSERT_TRUE(renewed_all(second, 90s)) << logs();
  for (auto& m : masters) EXPECT_EQ(served_by(m), Server(*a_)) << m.name << "\n" << logs();
  for (std::size_t i = 0; i < masters.size(); ++i) {
    EXPECT_FALSE(keys[i].empty());
    EXPECT_EQ(key_of(masters[i]), keys[i]) << masters[i].name << ": a renewal must keep the key";
  }
  EXPECT_GE(puts, 6);
  // Each master skipped the signer it prefers, while it was down, with a line saying why.
  for (std::size_t i = 0; i < masters.size(); ++i) {
    ASSERT_TRUE(preferred[i] == Server(*a_) || preferred[i] == Server(*b_)) << preferred[i];
    std::string log = ReadFile(masters[i].cert + ".log");
    EXPECT_NE(log.find("signer " + preferred[i] + " failed (connect-failed"), std::string::npos) << log;
  }
  for (auto& m : masters) {
    ::kill(m.daemon->pid(), SIGTERM);
    int status = 0;
    ASSERT_EQ(::waitpid(m.daemon->pid(), &status, 0), m.daemon->pid());
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << logs();
    EXPECT_NE(ReadFile(m.cert + ".log").find("stopping on signal"), std::string::npos) << logs();
  }
  b_->ssh.Start();
}

TEST_F(TwoTier, TheRootCeremonyRefusesWhatItMustNot) {
  // A CSR with extensions (not made by `ca csr`), a weak key, days past the root, a single-tier root.
  std::string bad = dir_ / "master-ext.csr";
  ::mkdir((dir_ / "master").c_str(), 0700);
  ASSERT_EQ(OpenSsl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                     "/dev/null", "-subj", "/CN=x", "-addext", "basicConstraints=critical,CA:TRUE", "-out", bad})
                .exit_code, 0);
  std::string weak = dir_ / "weak.csr";
  ASSERT_EQ(OpenSsl({"req", "-new", "-newkey", "rsa:1024", "-nodes", "-keyout", "/dev/null", "-subj", "/CN=x", "-out", weak})
                .exit_code, 0);
  std::string good = dir_ / "good.csr";
  ASSERT_EQ(OpenSsl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                     "/dev/null", "-subj", "/CN=good", "-out", good})
                .exit_code, 0);
  auto sign = [&](const std::string& csr, const std::string& root_cert, const std::string& days) {
    return Hsm({"ca", "sign-intermediate", "--module", kSoftHsmModule, "--key", root_->key_uri, "--pin-file",
                root_->pin_file, "--ca-cert", root_cert, "--csr", csr, "--days", days},
               *root_);
  };
  RunResult r = sign(bad, root_cert_, "30");
  EXPECT_EQ(r.exit_code, 65) << r.err;
  EXPECT_NE(r.err.find("bad-csr"), std::string::npos) << r.err;
  r = sign(weak, root_cert_, "30");
  EXPECT_EQ(r.exit_code, 77) << r.err;
  r = sign(good, root_cert_, "400");
  EXPECT_EQ(r.exit_code, 64) << r.err;
  EXPECT_NE(r.err.find("past the root"), std::string::npos) << r.err;
  // An intermediate named like its root (#24 point 11): no chain could tell them apart.
  std::string rootlike = dir_ / "rootlike.csr";
  ASSERT_EQ(OpenSsl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                     "/dev/null", "-subj", "/CN=etcd client root", "-out", rootlike})
                .exit_code, 0);
  r = sign(rootlike, root_cert_, "30");
  EXPECT_EQ(r.exit_code, 65) << r.err;
  EXPECT_NE(r.err.find("bad-csr: the CSR's subject 'CN=etcd client root' is the root's own"), std::string::npos) << r.err;
  r = sign(good, root_->ca_cert, "30");  // the fixture's single-tier CA (pathlen 0)
  EXPECT_EQ(r.exit_code, 65) << r.err;
  EXPECT_NE(r.err.find("root-path-length"), std::string::npos) << r.err;
  r = sign(good, root_cert_, "30");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  RunResult text = OpenSsl({"x509", "-noout", "-text"}, r.out);
  EXPECT_NE(text.out.find("CA:TRUE, pathlen:0"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("Certificate Sign, CRL Sign"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("TLS Web Client Authentication"), std::string::npos) << text.out;

  // `etcd-hsm check` with the signer's chain: A's key, its intermediate as CA certificate and chain,
  // the root as bundle; then a chain that is B's, and a bundle that holds another root.
  auto check = [&](const std::string& chain, const std::string& roots) {
    return Hsm({"check", "--module", kSoftHsmModule, "--key", a_->ca.key_uri, "--pin-file", a_->ca.pin_file,
                "--ca-cert", a_->dir + "/signer-a.pem", "--ca-chain", chain, "--ca-bundle", roots},
               a_->ca);
  };
  r = check(a_->dir + "/signer-a.pem", root_cert_);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  for (const char* line : {"ok   chain-starts-with-ca", "ok   chain-links", "ok   chain-ca-profile", "ok   chain-valid",
                           "ok   chain-to-root"}) {
    EXPECT_NE(r.out.find(line), std::string::npos) << line << "\n" << r.out;
  }
  r = check(b_->dir + "/signer-b.pem", root_cert_);
  EXPECT_EQ(r.exit_code, 65) << r.out << r.err;
  EXPECT_NE(r.out.find("FAIL chain-starts-with-ca"), std::string::npos) << r.out;
  r = check(a_->dir + "/signer-a.pem", root_->ca_cert);
  EXPECT_EQ(r.exit_code, 65) << r.out << r.err;
  EXPECT_NE(r.out.find("FAIL chain-to-root"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ok   chain-links"), std::string::npos) << r.out;
}

}  // namespace
