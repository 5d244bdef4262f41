// SPDX-License-Identifier: Apache-2.0
// #29 end to end: one signed governance state for two signer hosts (two sshd on 127.0.0.1, their
// own signer accounts' tokens and intermediates under one root), a governance token the signer
// accounts cannot use, an operators' admin channel per host (root, forced command
// `etcd-signerctl governance agent`), and an etcd member with --client-crl-file that fetches the
// fleet's CRL itself and can be restarted (its admin channel's forced command is
// `etcd-requester member-agent`). etcd runs with its own authentication as the guide sets it up:
// one user per master CN holding only the narrow kube-apiserver role (readwrite on /registry/),
// root held by the operators' own certificate from a CA of theirs.
//
// The incident: kubemaster-1 holds a certificate from the SECOND host. `etcd-signerctl fleet
// deny-master kubemaster-1` makes the next version, pushes it, has the member fetch the CRL and
// proves it; then both hosts refuse kubemaster-1, etcd refuses its certificate on new connections,
// the watch stream it opened before the incident sees no more writes (its role revoked, the member
// restarted), and kubemaster-2 carries on — in well under 60 s. Also: `fleet status` exits 1 while one host
// has an older version and names an unreachable host; `fleet push` names a host it cannot reach.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>
#include <thread>

#include "etcd_fixture.h"
#include "test_support.h"

namespace {

using namespace testing_support;
using namespace std::chrono_literals;

class Fleet : public ::testing::Test {
 protected:
  // One signer host: its deployment (the masters' sshd), its intermediate, and the operators'
  // admin sshd (root) whose forced command is the governance agent.
  struct Host {
    std::unique_ptr<SignerDeployment> d;
    std::unique_ptr<SshServer> admin;
  };

  void MakeHost(Host& h, const std::string& name) {
    ::mkdir((dir_ / name).c_str(), 0755);
    h.d = std::make_unique<SignerDeployment>(dir_ / name);
    std::string pem = MakeIntermediate(*h.d, name, h.d->ca.key_uri, *root_, root_cert_);
    WriteFile(h.d->dir + "/signer.toml",
              "module = \"" + std::string(kSoftHsmModule) + "\"\nkey = \"" + h.d->ca.key_uri + "\"\npin_file = \"" +
                  h.d->ca.pin_file + "\"\nca_cert = \"" + pem + "\"\nca_chain = \"" + pem + "\"\nca_bundle = \"" +
                  root_cert_ + "\"\naudit_log = \"" + h.d->dir + "/audit.log\"\nlock_file = \"" + h.d->dir +
                  "/token.lock\"\nsyslog = false\ngovernance_file = \"" + h.d->dir +
                  "/governance.cms\"\ngovernance_cert = \"" + (dir_ / "governance.crt") + "\"\n");
    ::mkdir((dir_ / (name + "-admin")).c_str(), 0755);
    h.admin = std::make_unique<SshServer>(dir_ / (name + "-admin"), "root");
    h.admin->Authorize(dir_ / "fleet-key", "SOFTHSM2_CONF=" + h.d->ca.conf + " " + Binary("etcd-signerctl") +
                                               " --config " + h.d->dir + "/signer.toml governance agent");
  }

  std::string Server(const Host& h) const { return h.d->ssh.user() + "@127.0.0.1:" + std::to_string(h.d->ssh.port()); }

  // etcd-requester for a master (or the member's CRL fetch) against both hosts, b first.
  std::vector<std::string> RequesterArgs(const std::string& verb, const std::string& name, const std::string& ssh_key) {
    return {Binary("etcd-requester"), verb, "--name", name, "--ssh-key", ssh_key, "--known-hosts",
            dir_ / "known_hosts", "--key-file", dir_ / (name + ".key"), "--cert", dir_ / (name + ".pem"),
            "--ca-bundle", root_cert_, "--server", Server(b_), "--server", Server(a_), "--connect-timeout", "2s",
            "--io-timeout", "10s"};
  }

  RunResult Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), Binary("etcd-signerctl"));
    return testing_support::Run(args, {.env = governance_->env(), .timeout = 120s});
  }

  RunResult SignState(const std::string& name, const std::string& state, const std::string& previous = "") {
    WriteFile(dir_ / (name + ".toml"), state, 0644);
    std::vector<std::string> args{"governance", "sign", "--module", kSoftHsmModule, "--key", governance_->key_uri,
                                  "--pin-file", governance_->pin_file, "--cert", governance_->ca_cert, "--state",
                                  dir_ / (name + ".toml"), "--out", dir_ / (name + ".cms")};
    if (!previous.empty()) args.insert(args.end(), {"--previous", dir_ / (previous + ".cms")});
    return Ctl(args);
  }

  std::vector<std::string> SigningFlags(const std::string& out) {
    return {"--module", kSoftHsmModule, "--governance-key", governance_->key_uri, "--pin-file", governance_->pin_file,
            "--cert", governance_->ca_cert, "--out", dir_ / out};
  }

  bool Works(const std::string& name, const std::string& value = "x") {
    return etcd_->Ctl(dir_ / (name + ".pem"), dir_ / (name + ".key"), {"put", "/registry/" + name, value}).exit_code == 0;
  }
  RunResult Admin(const std::vector<std::string>& args) { return etcd_->Ctl(dir_ / "admin-root.pem", dir_ / "admin-root.key", args); }

  TempDir dir_;
  std::unique_ptr<CaToken> root_, governance_;
  std::string root_cert_;
  Host a_, b_;
  std::unique_ptr<SshServer> member_admin_;
  std::unique_ptr<EtcdServer> etcd_;
};

TEST_F(Fleet, DenyMasterCutsAMasterOffEveryHostAndEveryMemberInOneCommand) {
  ::mkdir((dir_ / "root").c_str(), 0700);
  root_ = std::make_unique<CaToken>(dir_ / "root/token");
  root_cert_ = dir_ / "root.pem";
  RunResult root = RunHsm({"ca", "create", "--module", kSoftHsmModule, "--key", root_->key_uri, "--pin-file",
                           root_->pin_file, "--subject", "CN=etcd client root", "--days", "365", "--path-len", "1",
                           "--out", root_cert_},
                          *root_);
  ASSERT_EQ(root.exit_code, 0) << root.err;
  RunResult fleet_key = testing_support::Run({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", dir_ / "fleet-key"});
  ASSERT_EQ(fleet_key.exit_code, 0) << fleet_key.err;
  // The governance certificate is written before the hosts exist: configuration management puts
  // it on every signer host (root's).
  ::mkdir((dir_ / "gov").c_str(), 0700);
  governance_ = std::make_unique<CaToken>(dir_ / "gov/token");
  WriteFile(dir_ / "governance.crt", ReadFile(governance_->ca_cert), 0644);
  MakeHost(a_, "signer-a");
  MakeHost(b_, "signer-b");
  std::string key1 = b_.d->AddMaster("kubemaster-1");  // the stolen master: served by the SECOND host
  a_.d->ssh.Authorize(key1, a_.d->SignerCommand("kubemaster-1"));
  std::string key2 = a_.d->AddMaster("kubemaster-2");
  b_.d->ssh.Authorize(key2, b_.d->SignerCommand("kubemaster-2"));
  std::string member_key = a_.d->AddMaster("etcd-1");
  b_.d->ssh.Authorize(member_key, b_.d->SignerCommand("etcd-1"));
  for (Host* h : {&a_, &b_}) {
    h->d->Start();
    h->admin->Start();
  }
  // The member's admin channel runs its CRL fetch (the requester's own SSH access to the signers).
  ::mkdir((dir_ / "member-admin").c_str(), 0755);
  member_admin_ = std::make_unique<SshServer>(dir_ / "member-admin", "root");
  ::mkdir((dir_ / "etcd").c_str(), 0700);
  const std::string crl_file = dir_ / "etcd/client-crl.pem";
  std::vector<std::string> member_fetch = RequesterArgs("crl", "etcd-1", member_key);
  member_fetch.insert(member_fetch.end(), {"--crl-file", crl_file, "--governance-cert", dir_ / "governance.crt"});
  etcd_ = std::make_unique<EtcdServer>(dir_ / "etcd");
  etcd_->set_supervised(true);
  std::vector<std::string> agent = RequesterArgs("member-agent", "etcd-1", member_key);
  agent.insert(agent.end(), {"--crl-file", crl_file, "--governance-cert", dir_ / "governance.crt", "--restart-command",
                             "/bin/sh", etcd_->restart_script()});
  std::string forced;
  for (const auto& word : agent) forced += (forced.empty() ? "" : " ") + word;
  member_admin_->Authorize(dir_ / "fleet-key", forced);
  member_admin_->Start();
  WriteFile(dir_ / "known_hosts", ReadFile(a_.d->ssh.known_hosts()) + ReadFile(b_.d->ssh.known_hosts()) +
                                      ReadFile(a_.admin->known_hosts()) + ReadFile(b_.admin->known_hosts()) +
                                      ReadFile(member_admin_->known_hosts()));

  const std::string signers = "ssh_key = \"" + (dir_ / "fleet-key") + "\"\nknown_hosts = \"" + (dir_ / "known_hosts") +
                              "\"\nconnect_timeout = \"3s\"\n[signers.signer-a]\nssh = \"root@127.0.0.1:" +
                              std::to_string(a_.admin->port()) + "\"\n[signers.signer-b]\nssh = \"root@127.0.0.1:" +
                              std::to_string(b_.admin->port()) + "\"\n";
  WriteFile(dir_ / "fleet.toml", signers);
  // Version 1 everywhere, then the member's first CRL, then etcd with it.
  ASSERT_EQ(SignState("v1", "expires = \"" + UtcIn(30 * 86400) + "\"\n").exit_code, 0);
  RunResult push = Ctl({"fleet", "push", "--fleet", dir_ / "fleet.toml", dir_ / "v1.cms"});
  ASSERT_EQ(push.exit_code, 0) << push.out << push.err;
  EXPECT_NE(push.out.find("signer-a: installed governance version 1"), std::string::npos) << push.out;
  EXPECT_NE(push.out.find("signer-b: installed governance version 1"), std::string::npos) << push.out;
  RunResult first_crl = testing_support::Run(member_fetch);
  ASSERT_EQ(first_crl.exit_code, 0) << first_crl.err;
  for (const char* name : {"kubemaster-1", "kubemaster-2"}) {
    RunResult r = testing_support::Run(RequesterArgs("request", name, name == std::string("kubemaster-1") ? key1 : key2),
                                       {.timeout = 120s});
    ASSERT_EQ(r.exit_code, 0) << name << ": " << r.err;
  }
  EXPECT_NE(ReadFile(b_.d->dir + "/audit.log").find("\"cn\":\"kubemaster-1\""), std::string::npos);
  // The operators' etcd root: a certificate (CN=root) from a CA of their own, which etcd trusts
  // besides the masters' root.
  ASSERT_EQ(OpenSsl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                     dir_ / "admin-ca.key", "-out", dir_ / "admin-ca.pem", "-days", "2", "-subj", "/CN=etcd operators CA"})
                .exit_code,
            0);
  ASSERT_EQ(OpenSsl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                     dir_ / "admin-root.key", "-out", dir_ / "admin-root.csr", "-subj", "/CN=root"})
                .exit_code,
            0);
  WriteFile(dir_ / "admin.ext", "extendedKeyUsage=clientAuth\n");
  ASSERT_EQ(OpenSsl({"x509", "-req", "-in", dir_ / "admin-root.csr", "-CA", dir_ / "admin-ca.pem", "-CAkey",
                     dir_ / "admin-ca.key", "-CAcreateserial", "-days", "2", "-extfile", dir_ / "admin.ext", "-out",
                     dir_ / "admin-root.pem"})
                .exit_code,
            0);
  WriteFile(dir_ / "etcd-client-cas.pem", ReadFile(root_cert_) + ReadFile(dir_ / "admin-ca.pem"));
  etcd_->Start(dir_ / "etcd-client-cas.pem", crl_file);
  for (const std::vector<std::string>& step : std::vector<std::vector<std::string>>{
           {"user", "add", "root", "--no-password"},
           {"role", "add", "kube-apiserver"},
           {"role", "grant-permission", "kube-apiserver", "--prefix=true", "readwrite", "/registry/"},
           {"user", "add", "kubemaster-1", "--no-password"},
           {"user", "grant-role", "kubemaster-1", "kube-apiserver"},
           {"user", "add", "kubemaster-2", "--no-password"},
           {"user", "grant-role", "kubemaster-2", "kube-apiserver"},
           {"auth", "enable"}}) {
    RunResult r = Admin(step);
    ASSERT_EQ(r.exit_code, 0) << step[0] << " " << step[1] << ": " << r.err << r.out;
  }
  EXPECT_TRUE(Works("kubemaster-1"));
  EXPECT_TRUE(Works("kubemaster-2"));
  EXPECT_NE(etcd_->Ctl(dir_ / "kubemaster-1.pem", dir_ / "kubemaster-1.key", {"put", "/other", "x"}).exit_code, 0)
      << "the narrow role allows /registry/ only";
  WriteFile(dir_ / "fleet.toml",
            signers + "[members.etcd-1]\nssh = \"root@127.0.0.1:" + std::to_string(member_admin_->port()) +
                "\"\nendpoint = \"https://127.0.0.1:" + std::to_string(etcd_->port()) + "\"\n[etcd]\nendpoints = [\"https://127.0.0.1:" +
                std::to_string(etcd_->port()) + "\"]\ncacert = \"" + (dir_ / "etcd/server-ca.pem") + "\"\ncert = \"" +
                (dir_ / "admin-root.pem") + "\"\nkey = \"" + (dir_ / "admin-root.key") + "\"\nrole = \"kube-apiserver\"\n");

  // fleet status: all agree (exit 0); one host a version ahead (exit 1); one unreachable (exit 1).
  RunResult agreed = Ctl({"fleet", "status", "--fleet", dir_ / "fleet.toml"});
  EXPECT_EQ(agreed.exit_code, 0) << agreed.out << agreed.err;
  ASSERT_EQ(SignState("v2", "expires = \"" + UtcIn(30 * 86400) + "\"\n", "v1").exit_code, 0);
  RunResult only_a = Ctl({"--config", a_.d->dir + "/signer.toml", "governance", "install", dir_ / "v2.cms"});
  ASSERT_EQ(only_a.exit_code, 0) << only_a.err;
  RunResult split = Ctl({"fleet", "status", "--fleet", dir_ / "fleet.toml", "--json"});
  EXPECT_EQ(split.exit_code, 1) << split.out << split.err;
  auto rows = nlohmann::json::parse(split.out);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["governance_version"], 2);
  EXPECT_EQ(rows[1]["governance_version"], 1);
  RunResult table = Ctl({"fleet", "status", "--fleet", dir_ / "fleet.toml"});
  EXPECT_NE(table.out.find("PROBLEM: the signer hosts do not have the same governance document"), std::string::npos)
      << table.out;
  b_.admin->Stop();
  RunResult down = Ctl({"fleet", "status", "--fleet", dir_ / "fleet.toml"});
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_NE(down.out.find("PROBLEM: signer-b is unreachable: "), std::string::npos) << down.out;
  RunResult half = Ctl({"fleet", "push", "--fleet", dir_ / "fleet.toml", dir_ / "v2.cms"});
  EXPECT_EQ(half.exit_code, 69) << half.out << half.err;
  EXPECT_NE(half.out.find("signer-a: already installed: governance version 2"), std::string::npos) << half.out;
  EXPECT_NE(half.out.find("signer-b: UNREACHABLE: "), std::string::npos) << half.out;
  b_.admin->Start();

  // kubemaster-1's kube-apiserver holds a watch stream open, as its watch cache does.
  Process watch({"/usr/bin/etcdctl", "--endpoints", "https://127.0.0.1:" + std::to_string(etcd_->port()), "--cacert",
                 dir_ / "etcd/server-ca.pem", "--cert", dir_ / "kubemaster-1.pem", "--key", dir_ / "kubemaster-1.key",
                 "watch", "--prefix", "/registry/"},
                {{"ETCDCTL_API", "3"}}, dir_ / "watch.log");
  std::this_thread::sleep_for(500ms);
  ASSERT_TRUE(Works("kubemaster-2", "before-incident"));
  for (int i = 0; i < 50 && ReadFile(dir_ / "watch.log").find("before-incident") == std::string::npos; ++i) {
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_NE(ReadFile(dir_ / "watch.log").find("before-incident"), std::string::npos) << ReadFile(dir_ / "watch.log");
  const int etcd_pid = etcd_->pid();

  // The incident, one command.
  const std::string serial1 = OpenSsl({"x509", "-noout", "-serial", "-in", dir_ / "kubemaster-1.pem"}).out.substr(7, 40);
  auto started = std::chrono::steady_clock::now();
  std::vector<std::string> deny{"fleet", "deny-master", "--fleet", dir_ / "fleet.toml", "kubemaster-1"};
  for (const auto& flag : SigningFlags("v3.cms")) deny.push_back(flag);
  RunResult incident = Ctl(deny);
  auto took = std::chrono::steady_clock::now() - started;
  ASSERT_EQ(incident.exit_code, 0) << incident.out << incident.err;
  EXPECT_LT(took, 60s);
  EXPECT_NE(incident.out.find("1. next state: version 3, kubemaster-1 denied, 1 serials revoked"), std::string::npos)
      << incident.out;
  EXPECT_NE(incident.out.find("member etcd-1: its CRL has cRLNumber 3"), std::string::npos) << incident.out;
  EXPECT_NE(incident.out.find("done: kubemaster-1 cut off in "), std::string::npos) << incident.out;
  // The state beside the document, for configuration management, parses to the same content.
  RunResult shown = Ctl({"governance", "show", "--cert", dir_ / "governance.crt", dir_ / "v3.cms", "--json"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  auto v3 = nlohmann::json::parse(shown.out);
  EXPECT_EQ(v3["denied_identities"], nlohmann::json::array({"kubemaster-1"}));
  ASSERT_EQ(v3["revoked"].size(), 1u);
  std::string revoked = v3["revoked"][0]["serial"].get<std::string>();
  EXPECT_EQ(serial1.substr(0, serial1.find('\n')), revoked);
  EXPECT_NE(ReadFile(dir_ / "v3.cms.toml").find("denied_identities = [\"kubemaster-1\"]"), std::string::npos);

  // What holds now: both hosts refuse kubemaster-1 (a renewal through either), etcd refuses its
  // certificate on a new connection, kubemaster-2 is untouched.
  for (const Host* h : {&a_, &b_}) {
    RunResult r = h->d->ssh.Ssh(key1, "info");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["governance_version"], 3);
  }
  std::vector<std::string> renew = RequesterArgs("renew", "kubemaster-1", key1);
  renew.push_back("--force");
  RunResult refused = testing_support::Run(renew, {.timeout = 120s});
  EXPECT_NE(refused.exit_code, 0);
  std::size_t denials = 0;
  for (const Host* h : {&a_, &b_}) {
    auto lines = Lines(ReadFile(h->d->dir + "/audit.log"));
    auto last = nlohmann::json::parse(lines.back());
    if (last.value("reason", "") == "identity-denied" && last.value("cn", "") == "kubemaster-1") ++denials;
  }
  EXPECT_EQ(denials, 2u) << refused.err;
  EXPECT_NE(incident.out.find("etcd: revoked role kube-apiserver from user kubemaster-1"), std::string::npos)
      << incident.out;
  EXPECT_NE(incident.out.find("member etcd-1: restarted, healthy"), std::string::npos) << incident.out;
  EXPECT_NE(etcd_->pid(), etcd_pid);
  EXPECT_FALSE(Works("kubemaster-1"));
  EXPECT_TRUE(Works("kubemaster-2", "after-incident"));
  // The stream kubemaster-1 opened before the incident sees nothing written after it.
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(ReadFile(dir_ / "watch.log").find("after-incident"), std::string::npos) << ReadFile(dir_ / "watch.log");
  RunResult after = Ctl({"fleet", "status", "--fleet", dir_ / "fleet.toml"});
  EXPECT_EQ(after.exit_code, 0) << after.out;
}

}  // namespace
