// SPDX-License-Identifier: Apache-2.0
// #11: the SSH key that authorizes future certificates lives in the master's token too (SoftHSM,
// and a TPM through swtpm + tpm2-pkcs11), so root on a master cannot copy it. `etcd-requester
// ssh-key` makes it and prints the authorized_keys line; requests authenticate through the real
// sshd with it, and the signer's audit record names it.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "software_tpm.h"
#include "test_support.h"

namespace {

using namespace testing_support;
using namespace std::chrono_literals;

class SshTokenKey : public ::testing::Test {
 protected:
  RunResult Do(std::vector<std::string> args, const std::map<std::string, std::string>& env) {
    return testing_support::Run(args, {.env = env, .timeout = 120s});
  }
  // The master's side lives in its own root-owned directory (the signer deployment's belongs to
  // the signer account).
  std::string Master(const std::string& name) {
    std::string m = dir_ / "master";
    ::mkdir(m.c_str(), 0700);
    return m + "/" + name;
  }
  std::vector<std::string> RequestArgs(const std::string& ssh_key_uri, const std::string& module,
                                       const std::string& pin) {
    return {Binary("etcd-requester"), "request", "--name", "kubemaster-1", "--server",
            d_->ssh.user() + "@127.0.0.1:" + std::to_string(d_->ssh.port()), "--ssh-key", ssh_key_uri,
            "--known-hosts", d_->ssh.known_hosts(), "--key", "pkcs11:token=node;object=etcd-client", "--module",
            module, "--pin-file", pin, "--cert", Master("client.pem"), "--ca-bundle", Master("ca-bundle.pem"),
            "--ca-sha256", RootSha256(d_->ca.ca_cert), "--connect-timeout", "5s"};
  }
  static std::string Fingerprint(const std::string& pub_file) {
    std::string out = testing_support::Run({"/usr/bin/ssh-keygen", "-lf", pub_file}).out;
    std::size_t start = out.find("SHA256:");
    return start == std::string::npos ? "" : out.substr(start, out.find(' ', start) - start);
  }

  // Makes the SSH key in the node token, authorizes its line for kubemaster-1, requests a
  // certificate with both keys in the token, and checks the audit record names the SSH key.
  void ProveWithToken(const std::string& module, const std::string& pin, const std::map<std::string, std::string>& env) {
    std::string uri = "pkcs11:token=node;object=ssh-key";
    RunResult made = Do({Binary("etcd-requester"), "ssh-key", "--key", uri, "--module", module, "--pin-file", pin,
                         "--comment", "kubemaster-1"},
                        env);
    ASSERT_EQ(made.exit_code, 0) << made.err;
    EXPECT_NE(made.err.find("generated a new EC P-256 SSH key in the token"), std::string::npos) << made.err;
    ASSERT_EQ(made.out.rfind("ecdsa-sha2-nistp256 AAAA", 0), 0u) << made.out;
    EXPECT_NE(made.out.find(" kubemaster-1\n"), std::string::npos) << made.out;
    // Idempotent: the same key, nothing generated.
    RunResult again = Do({Binary("etcd-requester"), "ssh-key", "--key", uri, "--module", module, "--pin-file", pin,
                          "--comment", "kubemaster-1"},
                         env);
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_EQ(again.out, made.out);
    EXPECT_EQ(again.err, "");
    // What the operator does with the line: restrict,command="..." <line>.
    WriteFile(Master("token-ssh.pub"), made.out);
    d_->ssh.Authorize(Master("token-ssh"), d_->SignerCommand("kubemaster-1"));

    RunResult r = Do(RequestArgs(uri, module, pin), env);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(OpenSsl({"verify", "-purpose", "sslclient", "-CAfile", d_->ca.ca_cert, Master("client.pem")}).exit_code, 0);
    auto record = nlohmann::json::parse(Lines(ReadFile(dir_ / "audit.log")).back());
    EXPECT_EQ(record["outcome"], "issued");
    EXPECT_EQ(record["ssh_key_sha256"], Fingerprint(Master("token-ssh.pub")));

    // A token key that is not authorized is refused by sshd, and a missing one is named.
    ASSERT_EQ(Do({Binary("etcd-requester"), "ssh-key", "--key", "pkcs11:token=node;object=other-ssh", "--module",
                  module, "--pin-file", pin},
                 env).exit_code, 0);
    RunResult refused = Do(RequestArgs("pkcs11:token=node;object=other-ssh", module, pin), env);
    EXPECT_EQ(refused.exit_code, 77) << refused.err;
    EXPECT_NE(refused.err.find("etcd-requester: auth-failed: "), std::string::npos) << refused.err;
    RunResult missing = Do(RequestArgs("pkcs11:token=node;object=no-such-key", module, pin), env);
    EXPECT_EQ(missing.exit_code, 69) << missing.err;
    EXPECT_NE(missing.err.find("key-not-found"), std::string::npos) << missing.err;
  }

  void SetUp() override {
    d_ = std::make_unique<SignerDeployment>(dir_.path());
    d_->Start();
  }

  TempDir dir_;
  std::unique_ptr<SignerDeployment> d_;
};

TEST_F(SshTokenKey, SoftHsmHoldsTheSshKeyAndTheCertificateKey) {
  std::string node = Master("node-token");
  ::mkdir(node.c_str(), 0700);
  ::mkdir((node + "/tokens").c_str(), 0700);
  WriteFile(node + "/softhsm2.conf", "directories.tokendir = " + node + "/tokens\nobjectstore.backend = file\n");
  WriteFile(node + "/pin", "246810\n", 0400);
  WriteFile(node + "/so.pin", "13579135\n", 0400);
  std::map<std::string, std::string> env{{"SOFTHSM2_CONF", node + "/softhsm2.conf"}};
  ASSERT_EQ(Do({Binary("etcd-hsm"), "init-token", "--module", kSoftHsmModule, "--label", "node", "--so-pin-file",
                node + "/so.pin", "--pin-file", node + "/pin"},
               env).exit_code, 0);
  ProveWithToken(kSoftHsmModule, node + "/pin", env);
  // The SSH key is a token object that cannot be read out.
  RunResult tool = Do({"/usr/bin/pkcs11-tool", "--module", kSoftHsmModule, "--token-label", "node", "--login", "--pin",
                       "246810", "--list-objects", "--type", "privkey"},
                      env);  // pkcs11-tool takes its PIN on argv: acceptable only for this throwaway token
  std::size_t at = tool.out.find("label:      ssh-key");
  ASSERT_NE(at, std::string::npos) << tool.out;
  EXPECT_NE(tool.out.find("never extractable", at), std::string::npos) << tool.out;
}

TEST_F(SshTokenKey, TpmHoldsTheSshKeyAndTheCertificateKey) {
  SoftwareTpm tpm(Master("tpm"));
  ProveWithToken(SoftwareTpm::kModule, tpm.pin_file, tpm.env());
}

}  // namespace
