// SPDX-License-Identifier: Apache-2.0
// #14: revocation that etcd enforces. One root, two signer hosts each with its own intermediate
// (own SoftHSM token, own sshd), masters with certificates from both, and ONE etcd trusting only
// the root with --client-crl-file. Every case runs against that one etcd, which is never restarted:
// etcd re-reads the CRL file on each new TLS connection (pkg/transport/listener_tls.go, checkCRL).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "etcd_fixture.h"
#include "test_support.h"

namespace {

using namespace testing_support;
using namespace std::chrono_literals;

class Revocation : public ::testing::Test {
 protected:
  RunResult Hsm(std::vector<std::string> args, const CaToken& token) { return RunHsm(std::move(args), token); }
  // The root ceremony for one signer host (etcd_fixture.h), and its signer.toml.
  std::string Intermediate(SignerDeployment& d, const std::string& name) {
    std::string pem = MakeIntermediate(d, name, d.ca.key_uri, *root_, root_cert_);
    WriteFile(d.dir + "/signer.toml", "module = \"" + std::string(kSoftHsmModule) + "\"\nkey = \"" +
                                          d.ca.key_uri + "\"\npin_file = \"" + d.ca.pin_file +
                                          "\"\nca_cert = \"" + pem + "\"\nca_chain = \"" + pem +
                                          "\"\nca_bundle = \"" + root_cert_ + "\"\naudit_log = \"" +
                                          d.dir + "/audit.log\"\nlock_file = \"" + d.dir +
                                          "/token.lock\"\nsyslog = false\n");
    return pem;
  }
  // A master `name` with its own key and certificate directory, served by signer `d`.
  struct Master {
    std::string dir;
    std::string cert() const { return dir + "/client.pem"; }
    std::string key() const { return dir + "/client.key"; }
  };
  Master Enroll(const std::string& dir_name, const std::string& name, SignerDeployment& d,
                const std::string& ssh_key) {
    Master m{dir_ / dir_name};
    ::mkdir(m.dir.c_str(), 0700);
    RunResult r = testing_support::Run({Binary("etcd-requester"),
                                        "request",
                                        "--name",
                                        name,
                                        "--ssh-key",
                                        ssh_key,
                                        "--known-hosts",
                                        dir_ / "known_hosts",
                                        "--key-file",
                                        m.key(),
                                        "--cert",
                                        m.cert(),
                                        "--ca-bundle",
                                        root_cert_,
                                        "--server",
                                        d.ssh.user() + "@127.0.0.1:" + std::to_string(d.ssh.port()),
                                        "--connect-timeout",
                                        "2s",
                                        "--io-timeout",
                                        "10s"},
                                       {.timeout = 120s});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return m;
  }
  static std::string Serial(const std::string& pem) {
    std::string out =
        OpenSsl({"x509", "-noout", "-serial"}, pem).out;  // "serial=4A1F…\n", the first block
    EXPECT_EQ(out.rfind("serial=", 0), 0u) << out;
    return out.substr(7, out.find('\n') - 7);
  }
  // etcd-hsm crl with `key` (a token) for the issuer certificate `ca`.
  RunResult Crl(const CaToken& key, const std::string& ca, const std::string& out,
                std::vector<std::string> revoke) {
    std::vector<std::string> args{
        "crl",       "--module", kSoftHsmModule, "--key", key.key_uri, "--pin-file", key.pin_file,
        "--ca-cert", ca,         "--days",       "7",     "--out",     out};
    args.insert(args.end(), revoke.begin(), revoke.end());
    return Hsm(args, key);
  }
  // What an operator's deployment tool does: write next to the target, rename over it.
  void Install(const std::string& contents) {
    WriteFile(crl_file_ + ".new", contents);
    ASSERT_EQ(::rename((crl_file_ + ".new").c_str(), crl_file_.c_str()), 0);
  }
  bool Works(const Master& m, const std::string& value) {
    RunResult put = etcd_->Ctl(m.cert(), m.key(), {"put", "/revocation/" + value, value});
    return put.exit_code == 0;
  }
  // A refused connection: etcdctl gives up after its command timeout (2 s here rather than
  // EtcdServer::Ctl's 5 s keeps the refusals cheap), and etcd must have logged a new rejection
  // naming `cause` (a revoked serial, or the CRL parse error) — a dial that was merely slow does
  // not pass for one.
  bool Refused(const Master& m, const std::string& value, const std::string& cause) {
    auto count = [&] {
      std::string log = etcd_->Log();
      std::size_t n = 0;
      for (std::size_t at = 0; (at = log.find(cause, at)) != std::string::npos; ++at) ++n;
      return n;
    };
    std::size_t before = count();
    RunResult put = testing_support::Run(
        {"/usr/bin/etcdctl", "--endpoints", "https://127.0.0.1:" + std::to_string(etcd_->port()),
         "--cacert", dir_ / "etcd/server-ca.pem", "--cert", m.cert(), "--key", m.key(),
         "--dial-timeout", "1s", "--command-timeout", "2s", "put", "/revocation/" + value, value},
        {.env = {{"ETCDCTL_API", "3"}}, .timeout = 30s});
    if (put.exit_code == 0) return false;
    for (auto until = std::chrono::steady_clock::now() + 5s;
         std::chrono::steady_clock::now() < until;) {
      if (count() > before) return true;
      std::this_thread::sleep_for(50ms);
    }
    ADD_FAILURE() << "etcdctl failed, but etcd logged no new rejection for '" << cause
                  << "': " << put.err;
    return false;
  }
  static std::string Lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }

  TempDir dir_;
  std::unique_ptr<CaToken> root_;
  std::string root_cert_;
  std::string crl_file_;
  std::unique_ptr<SignerDeployment> a_, b_;
  std::unique_ptr<EtcdServer> etcd_;
};

TEST_F(Revocation, EtcdRefusesRevokedMastersAndEverythingUnderARevokedIntermediateWithoutARestart) {
  // The hierarchy: a root (pathlen 1), signer-a and signer-b each with its own intermediate.
  ::mkdir((dir_ / "root").c_str(), 0700);
  root_ = std::make_unique<CaToken>(dir_ / "root/token");
  root_cert_ = dir_ / "root.pem";
  RunResult root = Hsm({"ca", "create", "--module", kSoftHsmModule, "--key", root_->key_uri,
                        "--pin-file", root_->pin_file, "--subject", "CN=etcd client root", "--days",
                        "365", "--path-len", "1", "--out", root_cert_},
                       *root_);
  ASSERT_EQ(root.exit_code, 0) << root.err;
  ::mkdir((dir_ / "a").c_str(), 0755);
  ::mkdir((dir_ / "b").c_str(), 0755);
  a_ = std::make_unique<SignerDeployment>(dir_ / "a");
  b_ = std::make_unique<SignerDeployment>(dir_ / "b");
  std::string intermediate_a = Intermediate(*a_, "signer-a");
  std::string intermediate_b = Intermediate(*b_, "signer-b");
  std::string key1 = a_->AddMaster("kubemaster-1"), key2 = a_->AddMaster("kubemaster-2"),
              key3 = b_->AddMaster("kubemaster-3");
  a_->Start();
  b_->Start();
  WriteFile(dir_ / "known_hosts",
            ReadFile(a_->ssh.known_hosts()) + ReadFile(b_->ssh.known_hosts()));
  Master m1 = Enroll("m1", "kubemaster-1", *a_, key1);    // the master that will be stolen
  Master m2 = Enroll("m2", "kubemaster-2", *a_, key2);    // signer-a, never revoked
  Master m3 = Enroll("m3", "kubemaster-3", *b_, key3);    // signer-b
  Master m3b = Enroll("m3b", "kubemaster-3", *b_, key3);  // a second certificate under signer-b
  ASSERT_FALSE(HasFailure());

  // etcd starts with an empty CRL from the root, made before any incident: --client-crl-file can
  // only be added with a restart, so it is there from the start.
  ::mkdir((dir_ / "etcd").c_str(), 0700);
  crl_file_ = dir_ / "etcd/client-crl.pem";
  std::string root_crl = dir_ / "root-crl.pem", a_crl = dir_ / "a-crl.pem";
  WriteFile(dir_ / "empty.txt", "# nothing revoked yet\n");
  RunResult empty = Crl(*root_, root_cert_, root_crl, {"--revoke-file", dir_ / "empty.txt"});
  ASSERT_EQ(empty.exit_code, 0) << empty.err;
  Install(ReadFile(root_crl));
  etcd_ = std::make_unique<EtcdServer>(dir_ / "etcd");
  etcd_->set_log_level("info");  // rejected connections, with etcd's reason, are logged at info
  etcd_->Start(root_cert_, crl_file_);
  const int etcd_pid = etcd_->pid();
  for (const Master* m : {&m1, &m2, &m3, &m3b}) EXPECT_TRUE(Works(*m, "before")) << m->dir;

  // 1. kubemaster-1 is compromised: its serials, as signer-a's audit log lists them
  //    (etcd-signerctl serials, the runbook's step), are revoked by signer-a's intermediate (in
  //    signer-a's token). New connections with them are refused at once; the others carry on.
  std::string serial1 = Serial(ReadFile(m1.cert()));
  RunResult listed = testing_support::Run({Binary("etcd-signerctl"), "serials", "--identity",
                                           "kubemaster-1", "--valid", a_->dir + "/audit.log"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_EQ(listed.out, serial1 + "\n");
  WriteFile(dir_ / "m1-serials.txt", listed.out);
  RunResult revoked = Crl(a_->ca, intermediate_a, a_crl,
                          {"--revoke-file", dir_ / "m1-serials.txt", "--reason", "keyCompromise"});
  ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
  RunResult verify = OpenSsl({"crl", "-in", a_crl, "-CAfile", intermediate_a, "-verify", "-noout"});
  EXPECT_EQ(verify.exit_code, 0) << verify.err;
  Install(ReadFile(a_crl));
  EXPECT_TRUE(Refused(m1, "stolen", Lower(serial1)));
  EXPECT_TRUE(Works(m2, "after-m1"));
  EXPECT_TRUE(Works(m3, "after-m1"));

  // 2. etcd reads only the first PEM block of the file (Go's x509.ParseCRL): the same CRL after
  //    another one is not enforced, so several issuers' CRLs cannot simply be concatenated.
  Install(ReadFile(root_crl) + ReadFile(a_crl));
  EXPECT_TRUE(Works(m1, "second-block-ignored"));
  Install(ReadFile(a_crl) + ReadFile(root_crl));
  EXPECT_TRUE(Refused(m1, "first-block-read", Lower(serial1)));

  // 3. A connection made before a revocation is not re-checked: a watch opened with
  //    kubemaster-3's certificate keeps receiving events after signer-b's intermediate is revoked.
  std::string watch_log = dir_ / "watch.log";
  Process watch(
      {"/usr/bin/etcdctl", "--endpoints", "https://127.0.0.1:" + std::to_string(etcd_->port()),
       "--cacert", dir_ / "etcd/server-ca.pem", "--cert", m3.cert(), "--key", m3.key(), "watch",
       "/watched/", "--prefix"},
      {{"ETCDCTL_API", "3"}}, watch_log);
  auto wait_for = [&](const std::string& text) {
    for (auto until = std::chrono::steady_clock::now() + 20s;
         std::chrono::steady_clock::now() < until;) {
      if (ReadFile(watch_log).find(text) != std::string::npos) return true;
      RunResult put = etcd_->Ctl(m2.cert(), m2.key(), {"put", "/watched/" + text, text});
      if (put.exit_code != 0) return false;
      std::this_thread::sleep_for(200ms);
    }
    return false;
  };
  ASSERT_TRUE(wait_for("opened")) << ReadFile(watch_log);

  // 4. signer-b's host is compromised: the root revokes signer-b's intermediate. etcd compares the
  //    serial of every certificate the client sends (leaf and chain), so every certificate under
  //    signer-b is refused; signer-a's still work. The file etcd reads is one CRL, so the root's
  //    CRL also carries kubemaster-1's serial (the deployment's whole deny list, continued from
  //    the root's earlier CRL: its number increases).
  std::string serial_b = Serial(ReadFile(intermediate_b));
  WriteFile(dir_ / "deny.txt", "# the deployment's deny list\n" + serial_b + " cACompromise\n" +
                                   serial1 + " keyCompromise\n");
  RunResult cut = Crl(*root_, root_cert_, root_crl, {"--revoke-file", dir_ / "deny.txt"});
  ASSERT_EQ(cut.exit_code, 0) << cut.err;
  EXPECT_NE(cut.err.find("2 entries (2 new)"), std::string::npos) << cut.err;
  Install(ReadFile(root_crl));
  EXPECT_TRUE(Refused(m3, "under-b", Lower(serial_b)));
  EXPECT_TRUE(Refused(m3b, "under-b", Lower(serial_b)));
  EXPECT_TRUE(Refused(m1, "still-revoked", Lower(serial1)));
  EXPECT_TRUE(Works(m2, "signer-a-unaffected"));
  EXPECT_TRUE(wait_for("established"))
      << "the watch opened before the revocation stopped receiving:\n"
      << ReadFile(watch_log);
  watch.Stop();

  // 5. The file is read on every connection and a broken one fails closed: every client is
  //    refused until a good CRL is back (deploy CRLs atomically). A good CRL after a comment line
  //    is broken too: etcd takes a file as PEM only if it starts with the BEGIN line.
  Install("# deny list\n" + ReadFile(root_crl));
  EXPECT_TRUE(Refused(m2, "commented-crl", "CertificateList"));
  Install("not a CRL\n");
  EXPECT_TRUE(Refused(m2, "broken-crl", "CertificateList"));
  Install(ReadFile(root_crl));
  EXPECT_TRUE(Works(m2, "restored"));

  EXPECT_TRUE(etcd_->Running());
  EXPECT_EQ(etcd_->pid(), etcd_pid) << "etcd was restarted";
}

}  // namespace
