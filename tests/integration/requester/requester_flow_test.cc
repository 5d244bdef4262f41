// SPDX-License-Identifier: Apache-2.0
// etcd-requester against a real sshd whose forced command runs the real etcd-signer with a
// SoftHSM CA; the requester's own key in a file, a second SoftHSM token, or a TPM (swtpm).
#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/duration.h"
#include "pki/crl.h"
#include "pki/openssl.h"
#include "software_tpm.h"
#include "test_support.h"

namespace {

using namespace testing_support;
using namespace std::chrono_literals;

// #15's checks are about messages and files, not memory: they run in the normal pass only, not
// again in the ASan+UBSan pass (CI's time budget).
bool NormalPassOnly(const std::string& test) {
#if defined(ETCD_SIGNER_SANITIZED)
  for (const char* name : {"StatusWritesMetricsOnlyWhenAskedAndStillPrintsWhenThatFails",
                           "RefusedRequestLeavesNoNewKeyAndNoBundle", "MissingDirectoriesAndRefusedPermissionsSayWhatToDo",
                           "HelpUsageOwnerDaysAndTheNamesSignerTomlUses"}) {
    if (test == name) return true;
  }
#else
  (void)test;
#endif
  return false;
}

class Requester : public ::testing::Test {
 protected:
  void SetUp() override {
    if (NormalPassOnly(::testing::UnitTest::GetInstance()->current_test_info()->name())) {
      GTEST_SKIP() << "runs in the normal pass only";
    }
    ca_ = std::make_unique<CaToken>(dir_ / "ca-token");
    ssh_ = std::make_unique<SshServer>(dir_.path());
    WriteSignerConfig("");
    ssh_key_ = ssh_->NewClientKey("master-ssh");
    ssh_->Authorize(ssh_key_, "SOFTHSM2_CONF=" + ca_->conf + " " + Binary("etcd-signer") + " --config " +
                                  (dir_ / "signer.toml") + " --identity kubemaster-1 sign");
    ssh_->Start();  // hands everything under dir_ to the signer account
    // The key file lives where only root can write, as on a real master: the requester refuses a
    // key in a directory that another account (here the signer's) owns or can write to.
    ASSERT_EQ(::mkdir(Key("").c_str(), 0700), 0);
  }

  std::string Key(const std::string& name = "client.key") const { return dir_ / "master/" + name; }

  void WriteSignerConfig(const std::string& extra) {
    WriteFile(dir_ / "signer.toml", "module = \"" + std::string(kSoftHsmModule) + "\"\nkey = \"" + ca_->key_uri +
                                        "\"\npin_file = \"" + ca_->pin_file + "\"\nca_cert = \"" + ca_->ca_cert +
                                        "\"\naudit_log = \"" + (dir_ / "audit.log") + "\"\nlock_file = \"" + (dir_ / "token.lock") +
                                        "\"\nsyslog = false\n" + extra);
  }

  std::vector<std::string> Args(const std::string& verb, std::vector<std::string> key_flags = {}) {
    if (key_flags.empty()) key_flags = {"--key-file", Key()};
    std::vector<std::string> a{Binary("etcd-requester"), verb, "--name", "kubemaster-1", "--server",
                               ssh_->user() + "@127.0.0.1:" + std::to_string(ssh_->port()), "--ssh-key", ssh_key_,
                               "--known-hosts", ssh_->known_hosts(), "--cert", dir_ / "client.pem",
                               "--ca-bundle", dir_ / "ca-bundle.pem", "--ca-sha256", RootSha256(ca_->ca_cert),
                               "--connect-timeout", "5s"};
    a.insert(a.end(), key_flags.begin(), key_flags.end());
    return a;
  }

  RunResult Do(std::vector<std::string> args, const std::map<std::string, std::string>& env = {}) {
    return testing_support::Run(args, {.env = env, .timeout = 60s});
  }

  std::string PublicKeyOf(const std::string& cert) {
    return OpenSsl({"x509", "-in", cert, "-noout", "-pubkey"}).out;
  }
  std::string SerialOf(const std::string& cert) { return OpenSsl({"x509", "-in", cert, "-noout", "-serial"}).out; }

  TempDir dir_;
  std::unique_ptr<CaToken> ca_;
  std::unique_ptr<SshServer> ssh_;
  std::string ssh_key_;
};

TEST_F(Requester, FileKeyRequestThenRenewOnlyWhenDueWithTheSameKey) {
  RunResult r = Do(Args("request"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(OpenSsl({"verify", "-purpose", "sslclient", "-CAfile", ca_->ca_cert, dir_ / "client.pem"}).exit_code, 0);
  struct stat st {};
  ASSERT_EQ(::stat((Key()).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(ReadFile(dir_ / "ca-bundle.pem"), ReadFile(ca_->ca_cert));

  std::string before = ReadFile(dir_ / "client.pem");
  RunResult not_due = Do(Args("renew"));
  EXPECT_EQ(not_due.exit_code, 0) << not_due.err;
  EXPECT_NE(not_due.out.find("not due"), std::string::npos) << not_due.out;
  EXPECT_EQ(ReadFile(dir_ / "client.pem"), before);
  EXPECT_EQ(Lines(ReadFile(dir_ / "audit.log")).size(), 2u);  // ca + sign; the no-op renew asked nothing

  RunResult forced = Do(Args("renew", {"--key-file", Key(), "--force"}));
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_NE(ReadFile(dir_ / "client.pem"), before);
  WriteFile(dir_ / "before.pem", before);
  EXPECT_EQ(PublicKeyOf(dir_ / "client.pem"), PublicKeyOf(dir_ / "before.pem"));
  EXPECT_NE(SerialOf(dir_ / "client.pem"), SerialOf(dir_ / "before.pem"));

  RunResult status = Do(Args("status", {"--key-file", Key(), "--json"}));
  ASSERT_EQ(status.exit_code, 0) << status.err;
  auto j = nlohmann::json::parse(status.out);
  EXPECT_EQ(j["state"], "fresh");
  EXPECT_EQ(j["consecutive_failures"], 0);
  EXPECT_GT(j["seconds_left"].get<long long>(), 86000);
}

TEST_F(Requester, FailuresLeaveTheCurrentCertificateIntact) {
  ASSERT_EQ(Do(Args("request")).exit_code, 0);
  const std::string good = ReadFile(dir_ / "client.pem");
  const std::string key = ReadFile(Key());

  // The signer refuses (this SSH key is bound to kubemaster-1): its line is shown verbatim.
  auto other = Args("renew", {"--key-file", Key(), "--force"});
  other[3] = "kubemaster-2";
  RunResult refused = Do(other);
  EXPECT_EQ(refused.exit_code, 77);
  EXPECT_NE(refused.err.find("etcd-signer: identity-mismatch: "), std::string::npos) << refused.err;
  EXPECT_EQ(ReadFile(dir_ / "client.pem"), good);

  // The signer's host key changed.
  WriteFile(dir_ / "known_hosts.orig", ReadFile(ssh_->known_hosts()));
  testing_support::Run({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", dir_ / "imposter"});
  std::string imposter = ReadFile(dir_ / "imposter.pub");
  WriteFile(ssh_->known_hosts(), "[127.0.0.1]:" + std::to_string(ssh_->port()) + " " + imposter);
  RunResult mitm = Do(Args("renew", {"--key-file", Key(), "--force"}));
  EXPECT_EQ(mitm.exit_code, 77);
  EXPECT_NE(mitm.err.find("etcd-requester: host-key-changed: "), std::string::npos) << mitm.err;
  EXPECT_EQ(ReadFile(dir_ / "client.pem"), good);
  // An unknown host is refused too, unless trust on first use is asked for explicitly.
  WriteFile(ssh_->known_hosts(), "");
  RunResult unknown = Do(Args("renew", {"--key-file", Key(), "--force"}));
  EXPECT_EQ(unknown.exit_code, 77);
  EXPECT_NE(unknown.err.find("host-key-unknown"), std::string::npos) << unknown.err;
  RunResult tofu = Do(Args("renew", {"--key-file", Key(), "--force", "--accept-new-host-key"}));
  EXPECT_EQ(tofu.exit_code, 0) << tofu.err;
  EXPECT_NE(ReadFile(ssh_->known_hosts()).find("ssh-ed25519"), std::string::npos);
  const std::string renewed = ReadFile(dir_ / "client.pem");

  // The store fails (the certificate's directory does not exist): nothing else is touched.
  auto nowhere = Args("renew", {"--key-file", Key(), "--force"});
  for (auto& a : nowhere) {
    if (a == dir_ / "client.pem") a = dir_ / "missing-dir/client.pem";
  }
  RunResult store = Do(nowhere);
  EXPECT_NE(store.exit_code, 0);
  EXPECT_EQ(Lines(store.err).back().rfind("etcd-requester: write-failed: ", 0), 0u) << store.err;

  // sshd is gone.
  ssh_->Stop();
  RunResult down = Do(Args("renew", {"--key-file", Key(), "--force"}));
  EXPECT_EQ(down.exit_code, 69);
  EXPECT_NE(down.err.find("etcd-requester: connect-failed: "), std::string::npos) << down.err;
  EXPECT_EQ(ReadFile(dir_ / "client.pem"), renewed);
  EXPECT_EQ(ReadFile(Key()), key);

  RunResult status = Do(Args("status", {"--key-file", Key(), "--json"}));
  auto j = nlohmann::json::parse(status.out);
  // The TOFU renewal reset the count; the store failure kept its state next to its own path.
  EXPECT_EQ(j["consecutive_failures"], 1);
  EXPECT_NE(j["last_error"].get<std::string>().find("connect-failed"), std::string::npos);
}

TEST_F(Requester, BadNameFailsBeforeAnyNetworkTraffic) {
  auto args = Args("request");
  args[3] = "Kubemaster_1";
  for (auto& a : args) {
    if (a.find("@127.0.0.1:") != std::string::npos) a = "nobody@127.0.0.1:1";  // nothing listens
  }
  RunResult r = Do(args);
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_EQ(r.err.rfind("etcd-requester: bad-name: ", 0), 0u) << r.err;
  EXPECT_NE(::access((Key()).c_str(), F_OK), 0);  // no key made either
}

TEST_F(Requester, DiagnoseReportsEachCheckAndTheFailingOne) {
  ASSERT_EQ(Do(Args("request")).exit_code, 0);
  RunResult ok = Do(Args("diagnose"));
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  for (const char* check : {"ok   name", "ok   tcp", "ok   ssh", "ok   signer", "ok   identity", "ok   clock",
                            "ok   key", "ok   certificate", "ok   key-match", "ok   ca-bundle"}) {
    EXPECT_NE(ok.out.find(check), std::string::npos) << check << "\n" << ok.out;
  }
  // The signer binds this SSH key to kubemaster-1 (--identity): asking as another name is a
  // failure diagnose finds before any request is refused identity-mismatch.
  auto other = Args("diagnose");
  other[3] = "kubemaster-2";
  RunResult mismatch = Do(other);
  EXPECT_EQ(mismatch.exit_code, 69);
  EXPECT_NE(mismatch.out.find("FAIL identity      this SSH key is bound to 'kubemaster-1', not 'kubemaster-2'"),
            std::string::npos)
      << mismatch.out;
  ssh_->Stop();
  RunResult down = Do(Args("diagnose"));
  EXPECT_EQ(down.exit_code, 69);
  EXPECT_NE(down.out.find("FAIL tcp"), std::string::npos) << down.out;
  EXPECT_NE(down.out.find("     fix: "), std::string::npos) << down.out;
}

TEST_F(Requester, SoftHsmKeyIsMadeInTheTokenAndWrongPinIsNotRetried) {
  // The requester's own token, separate from the CA's.
  std::string node = dir_ / "node-token";
  ::mkdir(node.c_str(), 0755);
  ::mkdir((node + "/tokens").c_str(), 0755);
  WriteFile(node + "/softhsm2.conf", "directories.tokendir = " + node + "/tokens\nobjectstore.backend = file\n");
  WriteFile(node + "/pin", "246810\n", 0400);
  WriteFile(node + "/so.pin", "13579135\n", 0400);
  WriteFile(node + "/wrong.pin", "111111\n", 0400);
  std::map<std::string, std::string> env{{"SOFTHSM2_CONF", node + "/softhsm2.conf"}};
  ASSERT_EQ(Do({Binary("etcd-hsm"), "init-token", "--module", kSoftHsmModule, "--label", "node", "--so-pin-file",
                node + "/so.pin", "--pin-file", node + "/pin"}, env).exit_code, 0);
  std::vector<std::string> key{"--key", "pkcs11:token=node;object=etcd-client", "--module", kSoftHsmModule,
                               "--pin-file", node + "/pin"};
  RunResult r = Do(Args("request", key), env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("generated a new EC P-256 key in token"), std::string::npos) << r.err;
  RunResult list = Do({Binary("etcd-hsm"), "list", "--module", kSoftHsmModule, "--token", "node", "--pin-file", node + "/pin"}, env);
  EXPECT_NE(list.out.find("private-key  etcd-client"), std::string::npos) << list.out;
  std::string first = PublicKeyOf(dir_ / "client.pem");
  auto force = key;
  force.push_back("--force");
  ASSERT_EQ(Do(Args("renew", force), env).exit_code, 0);
  EXPECT_EQ(PublicKeyOf(dir_ / "client.pem"), first);

  std::vector<std::string> wrong{"--key", "pkcs11:token=node;object=etcd-client", "--module", kSoftHsmModule,
                                 "--pin-file", node + "/wrong.pin", "--force"};
  RunResult bad = Do(Args("renew", wrong), env);
  EXPECT_EQ(bad.exit_code, 69);
  EXPECT_EQ(Lines(bad.err).size(), 1u) << bad.err;
  EXPECT_NE(bad.err.find("pin-incorrect"), std::string::npos) << bad.err;
  EXPECT_EQ(Do(Args("renew", force), env).exit_code, 0);  // the right PIN still works

  // The daemon, enrolling a second certificate path with the wrong PIN, stops after one attempt
  // instead of backing off and trying again (which would lock a TPM or HSM out).
  wrong.pop_back();
  auto run = Args("run", wrong);
  std::replace(run.begin(), run.end(), dir_ / "client.pem", dir_ / "second.pem");
  std::string current = ReadFile(dir_ / "client.pem");
  Process daemon(run, env, dir_ / "daemon.log");
  for (int i = 0; i < 300 && daemon.Running(); ++i) std::this_thread::sleep_for(100ms);
  ASSERT_FALSE(daemon.Running()) << ReadFile(dir_ / "daemon.log");
  EXPECT_TRUE(WIFEXITED(daemon.status()) && WEXITSTATUS(daemon.status()) == 69) << daemon.status();
  std::string log = ReadFile(dir_ / "daemon.log");
  EXPECT_NE(log.find("pin-incorrect"), std::string::npos) << log;
  EXPECT_EQ(log.find("pin-incorrect"), log.rfind("pin-incorrect")) << log;  // tried once
  EXPECT_NE(log.find("; stopping"), std::string::npos) << log;
  EXPECT_EQ(log.find("retrying"), std::string::npos) << log;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "second.pem"));
  EXPECT_EQ(ReadFile(dir_ / "client.pem"), current);
}

// A TPM 2.0 (swtpm) holds the requester's key through tpm2-pkcs11.
TEST_F(Requester, TpmKeyEndToEnd) {
  SoftwareTpm tpm(dir_ / "tpm");
  const std::string module = SoftwareTpm::kModule;
  const std::map<std::string, std::string>& env = tpm.env();
  std::vector<std::string> key{"--key", "pkcs11:token=node;object=etcd-client", "--module", module, "--pin-file", tpm.pin_file};
  RunResult r = Do(Args("request", key), env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("generated a new EC P-256 key in token"), std::string::npos) << r.err;
  EXPECT_EQ(OpenSsl({"verify", "-purpose", "sslclient", "-CAfile", ca_->ca_cert, dir_ / "client.pem"}).exit_code, 0);
  RunResult list = Do({Binary("etcd-hsm"), "list", "--module", module, "--token", "node", "--pin-file", tpm.pin_file}, env);
  EXPECT_NE(list.out.find("private-key  etcd-client"), std::string::npos) << list.out;
  std::string first = PublicKeyOf(dir_ / "client.pem");
  key.push_back("--force");
  RunResult renewed = Do(Args("renew", key), env);
  ASSERT_EQ(renewed.exit_code, 0) << renewed.err;
  EXPECT_EQ(PublicKeyOf(dir_ / "client.pem"), first);
}

}  // namespace

namespace {

// #14 from the master's side: a signer with approval = "new-keys" answers 75 pending-approval; the
// requester says what the operator must run, keeps its key (the one to approve), shows the state in
// status, and the daemon gets its certificate with backoff once the key is approved.
TEST_F(Requester, PendingApprovalIsShownKeptAndServedOnceTheKeyIsApproved) {
  WriteFile(dir_ / "approved_keys", "# managed by etcd-signerctl\n", 0644);
  WriteSignerConfig("approval = \"new-keys\"\napproved_keys = \"" + (dir_ / "approved_keys") + "\"\n");
  RunResult r = Do(Args("request"));
  EXPECT_EQ(r.exit_code, 75) << r.err;
  EXPECT_NE(r.err.find("pending-approval"), std::string::npos) << r.err;
  EXPECT_EQ(::access((dir_ / "client.pem").c_str(), F_OK), -1);
  // The key the signer holds for approval is this host's key, and the message says how to approve it.
  std::string spki = OpenSsl({"pkey", "-in", Key(), "-pubout", "-outform", "DER"}).out;
  std::string sha = OpenSsl({"dgst", "-sha256", "-r"}, spki).out.substr(0, 64);
  EXPECT_NE(r.err.find("etcd-signerctl --config " + (dir_ / "signer.toml") + " approve kubemaster-1 " + sha),
            std::string::npos)
      << r.err;
  RunResult status = Do(Args("status"));
  EXPECT_NE(status.out.find("approval        PENDING"), std::string::npos) << status.out;
  auto json = nlohmann::json::parse(Do(Args("status", {"--key-file", Key(), "--json"})).out);
  EXPECT_EQ(json.value("pending_approval", false), true) << json.dump();

  Process daemon(Args("run"), {}, dir_ / "daemon.log");
  for (int i = 0; i < 50 && ReadFile(dir_ / "daemon.log").find("retrying in") == std::string::npos; ++i) {
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_NE(ReadFile(dir_ / "daemon.log").find("pending-approval"), std::string::npos) << ReadFile(dir_ / "daemon.log");
  RunResult approve = Do({Binary("etcd-signerctl"), "--config", dir_ / "signer.toml", "approve", "kubemaster-1", sha});
  ASSERT_EQ(approve.exit_code, 0) << approve.err;
  for (int i = 0; i < 300 && ::access((dir_ / "client.pem").c_str(), F_OK) != 0; ++i) std::this_thread::sleep_for(100ms);
  ASSERT_EQ(::access((dir_ / "client.pem").c_str(), F_OK), 0) << ReadFile(dir_ / "daemon.log");
  std::string issued_key = OpenSsl({"x509", "-in", dir_ / "client.pem", "-noout", "-pubkey"}).out;
  EXPECT_EQ(issued_key, OpenSsl({"pkey", "-in", Key(), "-pubout"}).out);
  ::kill(daemon.pid(), SIGTERM);
  int wstatus = 0;
  ASSERT_EQ(::waitpid(daemon.pid(), &wstatus, 0), daemon.pid());
  EXPECT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) << ReadFile(dir_ / "daemon.log");
  status = Do(Args("status"));
  EXPECT_EQ(status.out.find("PENDING"), std::string::npos) << status.out;
  RunResult metrics = Do(Args("status", {"--key-file", Key(), "--prometheus", dir_ / "metrics.prom"}));
  EXPECT_NE(ReadFile(dir_ / "metrics.prom").find("etcd_requester_pending_approval{name=\"kubemaster-1\"} 0"),
            std::string::npos);
}

}  // namespace

namespace {

// #15: `status` only reads. The configuration's prometheus_file is the daemon's; `status` writes
// metrics only to an explicit --prometheus FILE, and when that fails it still prints the status,
// then one line and a nonzero exit.
TEST_F(Requester, StatusWritesMetricsOnlyWhenAskedAndStillPrintsWhenThatFails) {
  WriteFile(dir_ / "requester.toml", "prometheus_file = \"" + (dir_ / "config.prom") + "\"\n");
  auto args = Args("status");
  args.insert(args.end(), {"--config", dir_ / "requester.toml"});
  RunResult plain = Do(args);
  EXPECT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_NE(plain.out.find("name            kubemaster-1"), std::string::npos) << plain.out;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "config.prom"));

  auto nowhere = args;
  nowhere.insert(nowhere.end(), {"--prometheus", dir_ / "no-such-dir/requester.prom"});
  RunResult failed = Do(nowhere);
  EXPECT_EQ(failed.exit_code, 73) << failed.err;
  EXPECT_NE(failed.out.find("name            kubemaster-1"), std::string::npos) << failed.out;
  ASSERT_EQ(Lines(failed.err).size(), 1u) << failed.err;
  EXPECT_EQ(failed.err.rfind("etcd-requester: write-failed: ", 0), 0u) << failed.err;
  EXPECT_NE(failed.err.find("the metrics directory " + (dir_ / "no-such-dir") + " does not exist"), std::string::npos)
      << failed.err;

  auto asked = args;
  asked.insert(asked.end(), {"--json", "--prometheus", dir_ / "asked.prom"});
  RunResult written = Do(asked);
  EXPECT_EQ(written.exit_code, 0) << written.err;
  EXPECT_EQ(nlohmann::json::parse(written.out)["state"], "missing");
  EXPECT_NE(ReadFile(dir_ / "asked.prom").find("etcd_requester_certificate_valid{name=\"kubemaster-1\"} 0"),
            std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "config.prom"));
}

// #15: a refused first request leaves neither the key it made nor the signer's CA bundle; a key
// that was there before is never touched.
TEST_F(Requester, RefusedRequestLeavesNoNewKeyAndNoBundle) {
  auto other = Args("request");
  other[3] = "kubemaster-2";  // this SSH key is bound to kubemaster-1: identity-mismatch
  RunResult refused = Do(other);
  EXPECT_EQ(refused.exit_code, 77) << refused.err;
  EXPECT_NE(refused.err.find("etcd-signer: identity-mismatch: "), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("removed the key this request made"), std::string::npos) << refused.err;
  EXPECT_FALSE(std::filesystem::exists(Key()));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "ca-bundle.pem"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "client.pem"));

  // With a key of its own already there, the refusal keeps it byte for byte.
  ASSERT_EQ(Do(Args("request")).exit_code, 0);
  const std::string key = ReadFile(Key());
  ASSERT_TRUE(std::filesystem::remove(dir_ / "ca-bundle.pem"));
  RunResult again = Do(other);
  EXPECT_EQ(again.exit_code, 77) << again.err;
  EXPECT_EQ(again.err.find("removed the key"), std::string::npos) << again.err;
  EXPECT_EQ(ReadFile(Key()), key);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "ca-bundle.pem"));
}

// #15: a missing directory says which one to create (before any key is made), and a refused
// permission names the account the program runs as.
TEST_F(Requester, MissingDirectoriesAndRefusedPermissionsSayWhatToDo) {
  auto no_cert_dir = Args("request");
  std::replace(no_cert_dir.begin(), no_cert_dir.end(), dir_ / "client.pem", dir_ / "etcd-client/kubemaster-1.crt");
  RunResult cert = Do(no_cert_dir);
  EXPECT_EQ(cert.exit_code, 73) << cert.err;
  EXPECT_EQ(cert.err, "etcd-requester: write-failed: the certificate directory " + (dir_ / "etcd-client") +
                          " does not exist; create it (mkdir -p " + (dir_ / "etcd-client") +
                          ") writable by the account that runs etcd-requester\n");
  EXPECT_FALSE(std::filesystem::exists(Key()));

  RunResult key = Do(Args("request", {"--key-file", dir_ / "no-key-dir/client.key"}));
  EXPECT_EQ(key.exit_code, 66) << key.err;
  EXPECT_NE(key.err.find("the key directory " + (dir_ / "no-key-dir") + " does not exist; create it (mkdir -m 0700 "),
            std::string::npos)
      << key.err;

  // The key directory is root's (0700); the signer's test account may not enter it.
  const std::string user = SignerUser();
  auto as_user = Args("renew", {"--key-file", Key(), "--force"});
  as_user.insert(as_user.begin(), {"/usr/bin/setpriv", "--reuid=" + user, "--regid=" + user, "--clear-groups"});
  RunResult denied = Do(as_user);
  EXPECT_EQ(Lines(denied.err).size(), 1u) << denied.err;
  EXPECT_NE(denied.err.find("Permission denied (running as " + user + ", uid "), std::string::npos) << denied.err;
  EXPECT_NE(denied.err.find(dir_ / "master: "), std::string::npos) << denied.err;
  // Every verb, down to reading its configuration.
  WriteFile(Key("requester.toml"), "name = \"kubemaster-1\"\n", 0600);
  RunResult config = Do({"/usr/bin/setpriv", "--reuid=" + user, "--regid=" + user, "--clear-groups",
                         Binary("etcd-requester"), "status", "--config", Key("requester.toml")});
  EXPECT_EQ(config.exit_code, 78);
  EXPECT_EQ(config.err, "etcd-requester: bad-config: cannot open " + Key("requester.toml") +
                            ": Permission denied (running as " + user + ", uid " +
                            std::to_string(::getpwnam(user.c_str())->pw_uid) + ")\n");
}

}  // namespace

namespace {

// #15: the lab token script has a usage, takes the account that will use the token, names its
// files as signer.toml expects and says how long its CA lives.
TEST(MakeCaToken, HelpUsageOwnerDaysAndTheNamesSignerTomlUses) {
  if (NormalPassOnly(::testing::UnitTest::GetInstance()->current_test_info()->name())) {
    GTEST_SKIP() << "runs in the normal pass only";
  }
  const std::string script = SourceDir() + "/softhsm-fixtures/make-ca-token";
  RunResult help = testing_support::Run({script, "--help"});
  EXPECT_EQ(help.exit_code, 0) << help.err;
  EXPECT_NE(help.out.find("Usage: make-ca-token [--owner USER] [--days N] DIR [KEY-TYPE]"), std::string::npos)
      << help.out;
  for (std::vector<std::string> bad : {std::vector<std::string>{}, {"--bogus", "x"}, {"--days", "0", "x"},
                                       {"--owner", "no-such-account-here", "x"}, {"x", "dsa-1024"}}) {
    bad.insert(bad.begin(), script);
    RunResult r = testing_support::Run(bad);
    EXPECT_EQ(r.exit_code, 64) << r.err;
    EXPECT_EQ(Lines(r.err).size(), 1u) << r.err;
    EXPECT_EQ(r.err.rfind("make-ca-token: usage: ", 0), 0u) << r.err;
  }

  TempDir tmp;
  ASSERT_EQ(::chmod(tmp.path().c_str(), 0755), 0);
  const std::string user = SignerUser();
  const std::string dir = tmp / "lab";
  RunResult made = testing_support::Run({script, "--owner", user, "--days", "45", dir},
                       {.env = {{"ETCD_HSM", Binary("etcd-hsm")}}, .timeout = std::chrono::seconds(120)});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  EXPECT_NE(made.out.find("valid for 45 days, until "), std::string::npos) << made.out;
  const passwd* pw = ::getpwnam(user.c_str());
  ASSERT_NE(pw, nullptr);
  for (const char* name : {"", "/softhsm2.conf", "/tokens", "/token.pin", "/so.pin", "/etcd-ca.crt",
                           "/etcd-ca-bundle.crt", "/env"}) {
    struct stat st {};
    ASSERT_EQ(::stat((dir + name).c_str(), &st), 0) << name;
    EXPECT_EQ(st.st_uid, pw->pw_uid) << name;
  }
  // The old names still work (the same files).
  EXPECT_EQ(ReadFile(dir + "/user.pin"), ReadFile(dir + "/token.pin"));
  EXPECT_EQ(ReadFile(dir + "/ca.pem"), ReadFile(dir + "/etcd-ca.crt"));
  EXPECT_EQ(OpenSsl({"x509", "-in", dir + "/etcd-ca.crt", "-noout", "-checkend", std::to_string(44 * 86400)}).exit_code, 0);
  EXPECT_NE(OpenSsl({"x509", "-in", dir + "/etcd-ca.crt", "-noout", "-checkend", std::to_string(46 * 86400)}).exit_code, 0);
  // The owner can use the token with the PIN file made for it.
  RunResult list = testing_support::Run({"/usr/bin/setpriv", "--reuid=" + user, "--regid=" + user, "--clear-groups", Binary("etcd-hsm"),
                        "list", "--module", kSoftHsmModule, "--token", "etcd-ca", "--pin-file", dir + "/token.pin"},
                       {.env = {{"SOFTHSM2_CONF", dir + "/softhsm2.conf"}}});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("ca-key"), std::string::npos) << list.out;
}

}  // namespace

namespace {

std::string NotAfterOf(const std::string& cert) {
  return OpenSsl({"x509", "-in", cert, "-noout", "-enddate"}).out;
}

// #28 item 1: a certificate replaced behind the daemon's back (here `renew --force` with a shorter
// lifetime, as an operator does) takes over the daemon's schedule at once, without SIGHUP: the
// daemon renews it before it expires. The old daemon slept on the first certificate's schedule (up
// to an hour) and let the replacement expire.
TEST_F(Requester, DaemonFollowsACertificateReplacedUnderItAndRenewsItBeforeItExpires) {
  WriteSignerConfig("lifetime_min = \"1m\"\nbackdate = \"0s\"\n");
  RunResult first = Do(Args("request"));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const std::string log = dir_ / "daemon.log";
  Process daemon(Args("run"), {}, log);
  for (int i = 0; i < 100 && ReadFile(log).find("running for") == std::string::npos; ++i) std::this_thread::sleep_for(100ms);
  ASSERT_NE(ReadFile(log).find("running for"), std::string::npos) << ReadFile(log);

  RunResult shorter = Do(Args("renew", {"--key-file", Key(), "--force", "--lifetime", "1m"}));
  ASSERT_EQ(shorter.exit_code, 0) << shorter.err;
  const std::string replaced_serial = SerialOf(dir_ / "client.pem");
  const std::string replaced = ReadFile(dir_ / "client.pem");
  WriteFile(dir_ / "replaced.pem", replaced);
  // The replacement lives one minute: the daemon must renew it at 70-90 % of that, 42-54 s in.
  for (int i = 0; i < 900 && SerialOf(dir_ / "client.pem") == replaced_serial; ++i) std::this_thread::sleep_for(100ms);
  ASSERT_NE(SerialOf(dir_ / "client.pem"), replaced_serial) << "the daemon did not renew the replaced certificate\n"
                                                            << ReadFile(log);
  EXPECT_TRUE(daemon.Running()) << ReadFile(log);
  // Renewed while the replacement was still valid: the renewed certificate (no backdate) starts
  // before the replacement ends.
  auto seconds_of = [&](const std::string& field, const std::string& cert) {
    std::string line = OpenSsl({"x509", "-in", cert, "-noout", "-" + field, "-dateopt", "iso_8601"}).out;
    std::string when = line.substr(line.find('=') + 1, 19);  // 2026-12-03 08:05:54
    when[10] = 'T';
    return base::ParseRfc3339(when + "Z");
  };
  EXPECT_LT(seconds_of("startdate", dir_ / "client.pem"), seconds_of("enddate", dir_ / "replaced.pem"))
      << NotAfterOf(dir_ / "replaced.pem");
  std::string text = ReadFile(log);
  EXPECT_NE(text.find("certificate " + (dir_ / "client.pem") + " changed on disk: fresh, serial "), std::string::npos)
      << text;
  EXPECT_NE(text.find("renewed: "), std::string::npos) << text;
}

}  // namespace

namespace {

// #28 item 7: diagnose asks the signer whether it would issue to this name (its `info` answer says
// whether the name is in denied_identities): a denied master gets a red line with cause and fix, not
// all green; nothing is issued for asking.
TEST_F(Requester, DiagnoseShowsADeniedIdentityInRed) {
  ASSERT_EQ(Do(Args("request")).exit_code, 0);
  WriteFile(dir_ / "denied-identities", "# none\n", 0644);
  WriteSignerConfig("denied_identities = \"" + (dir_ / "denied-identities") + "\"\n");
  RunResult allowed = Do(Args("diagnose"));
  EXPECT_EQ(allowed.exit_code, 0) << allowed.out << allowed.err;
  EXPECT_NE(allowed.out.find("ok   issuing       the signer would issue to 'kubemaster-1'"), std::string::npos)
      << allowed.out;

  WriteFile(dir_ / "denied-identities", "kubemaster-1 stolen\n", 0644);
  size_t records = Lines(ReadFile(dir_ / "audit.log")).size();
  RunResult denied = Do(Args("diagnose"));
  EXPECT_EQ(denied.exit_code, 69) << denied.out << denied.err;
  EXPECT_NE(denied.out.find("FAIL issuing       the signer denies 'kubemaster-1' (denied_identities)"), std::string::npos)
      << denied.out;
  EXPECT_NE(denied.out.find("     fix: once this master is trusted again, on every signer host: etcd-signerctl "
                            "allow-identity kubemaster-1"),
            std::string::npos)
      << denied.out;
  // Asking issued nothing: the only new audit records are `info` answers and the `check` that says
  // what sign would have refused.
  auto lines = Lines(ReadFile(dir_ / "audit.log"));
  ASSERT_GT(lines.size(), records);
  for (size_t i = records; i < lines.size(); ++i) {
    auto record = nlohmann::json::parse(lines[i]);
    std::string verb = record.value("verb", "");
    EXPECT_TRUE(verb == "info" || verb == "check") << lines[i];
    EXPECT_EQ(record.value("outcome", ""), verb == "info" ? "served" : "checked") << lines[i];
    EXPECT_EQ(record.value("serial", ""), "") << lines[i];
    if (verb == "check") {
      EXPECT_EQ(record.value("reason", ""), "identity-denied") << lines[i];
    }
  }
}

// #28 item 7, the key half: diagnose sends the signer a `check` with a CSR of the current key, so
// a denied key and a key waiting for approval are red lines with their cause and fix; asking
// neither issues, nor lists the key as pending, nor counts as a refusal in the audit report.
TEST_F(Requester, DiagnoseAsksTheSignerAboutThisKey) {
  ASSERT_EQ(Do(Args("request")).exit_code, 0);
  std::string spki = OpenSsl({"pkey", "-in", Key(), "-pubout", "-outform", "DER"}).out;
  std::string sha = OpenSsl({"dgst", "-sha256", "-r"}, spki).out.substr(0, 64);
  WriteFile(dir_ / "denied_keys", "# none\n", 0644);
  WriteFile(dir_ / "approved_keys", "# none\n", 0644);
  WriteSignerConfig("denied_keys = \"" + (dir_ / "denied_keys") + "\"\n");
  RunResult clean = Do(Args("diagnose"));
  EXPECT_EQ(clean.exit_code, 0) << clean.out << clean.err;
  EXPECT_NE(clean.out.find("ok   issuing       the signer would issue to 'kubemaster-1' for this key"),
            std::string::npos)
      << clean.out;

  RunResult deny = Do({Binary("etcd-signerctl"), "--config", dir_ / "signer.toml", "deny", "kubemaster-1", sha});
  ASSERT_EQ(deny.exit_code, 0) << deny.err;
  RunResult denied = Do(Args("diagnose"));
  EXPECT_EQ(denied.exit_code, 69) << denied.out << denied.err;
  EXPECT_NE(denied.out.find("FAIL issuing       the signer would refuse this key: etcd-signer: key-denied: "),
            std::string::npos)
      << denied.out;
  EXPECT_NE(denied.out.find("     fix: this key was denied on the signer"), std::string::npos) << denied.out;

  // A key the signer has never approved: pending-approval, with the approve command; `pending` on
  // the signer host does not list it, because asking is not requesting.
  WriteFile(dir_ / "denied_keys", "# none\n", 0644);
  WriteSignerConfig("approval = \"new-keys\"\napproved_keys = \"" + (dir_ / "approved_keys") + "\"\n");
  RunResult pending = Do(Args("diagnose"));
  EXPECT_EQ(pending.exit_code, 69) << pending.out << pending.err;
  EXPECT_NE(pending.out.find("FAIL issuing       the signer would refuse this key: etcd-signer: pending-approval: "),
            std::string::npos)
      << pending.out;
  EXPECT_NE(pending.out.find("approve kubemaster-1 " + sha), std::string::npos) << pending.out;
  RunResult listed = Do({Binary("etcd-signerctl"), "--config", dir_ / "signer.toml", "pending"});
  EXPECT_EQ(listed.out.find(sha), std::string::npos) << listed.out;

  // What the signer recorded: checks, never an issuance, a refusal or a pending key; the report
  // counts the one real issuance and no refusal.
  int checks = 0;
  for (const std::string& line : Lines(ReadFile(dir_ / "audit.log"))) {
    auto record = nlohmann::json::parse(line);
    if (record.value("verb", "") != "check") continue;
    ++checks;
    EXPECT_EQ(record.value("outcome", ""), "checked") << line;
    EXPECT_EQ(record.value("serial", ""), "") << line;
    EXPECT_EQ(record.value("public_key_sha256", ""), sha) << line;
  }
  EXPECT_EQ(checks, 3);
  RunResult report =
      Do({Binary("etcd-signerctl"), "--config", dir_ / "signer.toml", "audit", "report", "--json"});
  ASSERT_EQ(report.exit_code, 0) << report.err;
  auto identities = nlohmann::json::parse(report.out);
  ASSERT_FALSE(identities.empty()) << report.out;
  EXPECT_NE(report.out.find("\"issued\":1"), std::string::npos) << report.out;
  EXPECT_EQ(report.out.find("key-denied"), std::string::npos) << report.out;
  EXPECT_EQ(report.out.find("pending-approval"), std::string::npos) << report.out;
}

}  // namespace

namespace {

// A CRL listing `serials` (hex), as etcd reads it: etcd compares serials only, so any issuer does.
void WriteCrl(const std::string& path, const std::string& issuer_pem, const std::vector<std::string>& serials) {
  auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  pki::CrlFields fields;
  for (const auto& s : serials) fields.entries.push_back({pki::ParseSerial(s), pki::RevocationReason::kKeyCompromise, now});
  fields.number = 1;
  fields.this_update = now;
  fields.next_update = now + std::chrono::hours(24);
  pki::X509Ptr issuer = pki::ReadCertificateFile(issuer_pem);
  pki::X509CrlPtr crl = pki::BuildCrl(fields, issuer.get());
  EVP_PKEY* key = EVP_EC_gen("P-256");
  pki::SignCrl(crl.get(), key);
  EVP_PKEY_free(key);
  WriteFile(path, pki::ToPem(crl.get()));
}

// #28 item 7: with crl_file (etcd's --client-crl-file), diagnose compares the stored certificate's
// serial with it, as etcd does: revoked is a red line with cause and fix, not all green.
TEST_F(Requester, DiagnoseShowsARevokedCertificateInRed) {
  ASSERT_EQ(Do(Args("request")).exit_code, 0);
  std::string serial = SerialOf(dir_ / "client.pem");
  serial = serial.substr(serial.find('=') + 1);
  serial.erase(serial.find_last_not_of("\n") + 1);
  auto args = Args("diagnose");
  args.insert(args.end(), {"--crl-file", dir_ / "crl.pem"});

  WriteCrl(dir_ / "crl.pem", ca_->ca_cert, {"0A1B"});
  RunResult clean = Do(args);
  EXPECT_EQ(clean.exit_code, 0) << clean.out << clean.err;
  EXPECT_NE(clean.out.find("ok   revocation    serial " + serial + " is not in " + (dir_ / "crl.pem") + " (1 entries)"),
            std::string::npos)
      << clean.out;

  WriteCrl(dir_ / "crl.pem", ca_->ca_cert, {"0A1B", serial});
  RunResult revoked = Do(args);
  EXPECT_EQ(revoked.exit_code, 69) << revoked.out << revoked.err;
  EXPECT_NE(revoked.out.find("FAIL revocation    the certificate's serial " + serial + " is revoked in " +
                             (dir_ / "crl.pem") + ": etcd refuses this master"),
            std::string::npos)
      << revoked.out;
  EXPECT_NE(revoked.out.find("     fix: a compromised master is rebuilt"), std::string::npos) << revoked.out;

  WriteFile(dir_ / "crl.pem", "# a comment breaks it for etcd\n");
  RunResult broken = Do(args);
  EXPECT_EQ(broken.exit_code, 69) << broken.out;
  EXPECT_NE(broken.out.find("FAIL revocation"), std::string::npos) << broken.out;
}

// #24 point 6: each answer carries the signer's audit head after its record, and the master keeps
// it as a witness of that signer's log. The signer account can rewrite its log and the head it
// records next to it consistently (a recorded head cannot see that); a master's witness can, and
// the master itself notices when a later answer's head goes back.
TEST_F(Requester, KeepsEachSignersAuditHeadAsAWitnessThatCatchesARewrittenLog) {
  ASSERT_EQ(Do(Args("request")).exit_code, 0);
  auto lines = Lines(ReadFile(dir_ / "audit.log"));
  ASSERT_FALSE(lines.empty());
  auto sha = [](const std::string& line) { return OpenSsl({"dgst", "-sha256", "-r"}, line).out.substr(0, 64); };
  std::string head = std::to_string(lines.size()) + ":" + sha(lines.back());
  const std::string server = ssh_->user() + "@127.0.0.1:" + std::to_string(ssh_->port());
  RunResult status = Do(Args("status", {"--key-file", Key(), "--json"}));
  ASSERT_EQ(status.exit_code, 0) << status.err;
  auto j = nlohmann::json::parse(status.out);
  EXPECT_EQ(j["audit_witness"][server]["head"], head) << status.out;
  RunResult human = Do(Args("status"));
  EXPECT_NE(human.out.find("audit witness   " + server + ": " + head), std::string::npos) << human.out;
  std::string ctl = Binary("etcd-signerctl");
  RunResult verified = Do({ctl, "audit", "verify", dir_ / "audit.log", "--head", j["audit_witness"][server]["head"]});
  EXPECT_EQ(verified.exit_code, 0) << verified.err;

  // The signer account drops its last record and records the shorter log's end as its head.
  std::string kept;
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) kept += lines[i] + "\n";
  WriteFile(dir_ / "audit.log", kept, 0640);
  WriteFile(dir_ / "audit.log.lock",
            "etcd-log-head size=" + std::to_string(kept.size()) + " " + std::to_string(lines.size() - 1) + ":" +
                sha(lines[lines.size() - 2]) + "\n",
            0600);
  GiveToSigner(dir_ / "audit.log");
  GiveToSigner(dir_ / "audit.log.lock");
  EXPECT_EQ(Do({ctl, "audit", "verify", dir_ / "audit.log"}).exit_code, 0) << "consistent with its own head";
  RunResult caught = Do({ctl, "audit", "verify", dir_ / "audit.log", "--head", head});
  EXPECT_EQ(caught.exit_code, 65) << caught.out;
  EXPECT_NE(caught.err.find("but the head is seq " + std::to_string(lines.size())), std::string::npos) << caught.err;

  // The next answer's head reuses that seq: the master says its witness went back, and keeps it.
  RunResult again = Do(Args("request"));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.err.find("WARNING: signer " + server + ": at "), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("its audit head went back to " + std::to_string(lines.size()) + ":"), std::string::npos)
      << again.err;
  auto after = nlohmann::json::parse(Do(Args("status", {"--key-file", Key(), "--json"})).out);
  EXPECT_EQ(after["audit_witness"][server]["head"], head);
  EXPECT_NE(after["audit_witness"][server]["warning"].get<std::string>().find("its log was cut or replaced"),
            std::string::npos);
}

}  // namespace
