// SPDX-License-Identifier: Apache-2.0
// etcd-signer behind a real sshd with forced commands, as an operator deploys it.
#include <gtest/gtest.h>

#include "test_support.h"

namespace {

using namespace testing_support;

class SignerOverSsh : public ::testing::Test {
 protected:
  void SetUp() override {
    token_ = std::make_unique<CaToken>(dir_ / "token");
    ssh_ = std::make_unique<SshServer>(dir_.path());
    WriteFile(dir_ / "signer.toml",
              "module = \"" + std::string(kSoftHsmModule) + "\"\nkey = \"" + token_->key_uri +
                  "\"\npin_file = \"" + token_->pin_file + "\"\nca_cert = \"" + token_->ca_cert +
                  "\"\naudit_log = \"" + (dir_ / "audit.log") + "\"\nlock_file = \"" + (dir_ / "token.lock") +
                  "\"\nsyslog = false\n");
  }

  // The forced command an operator writes in authorized_keys.
  std::string ForcedCommand(const std::string& identity) {
    return "SOFTHSM2_CONF=" + token_->conf + " " + Binary("etcd-signer") + " --config " +
           (dir_ / "signer.toml") + " --identity " + identity + " sign";
  }

  std::string CsrBase64(const std::string& name) {
    std::string key = dir_ / (name + ".key");
    RunResult req = OpenSsl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                             "-nodes", "-keyout", key, "-subj", "/CN=" + name});
    EXPECT_EQ(req.exit_code, 0) << req.err;
    RunResult b64 = OpenSsl({"base64"}, req.out);
    return b64.out;
  }

  TempDir dir_;
  std::unique_ptr<CaToken> token_;
  std::unique_ptr<SshServer> ssh_;
};

TEST_F(SignerOverSsh, IssuesAVerifiableCertificateThroughTheForcedCommand) {
  std::string key = ssh_->NewClientKey("master1");
  ssh_->Authorize(key, ForcedCommand("kubemaster-1"));
  ssh_->Start();
  RunResult r = ssh_->Ssh(key, "sign", CsrBase64("kubemaster-1"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("-----BEGIN CERTIFICATE-----", 0), 0u);
  WriteFile(dir_ / "issued.pem", r.out);
  RunResult verify = OpenSsl({"verify", "-purpose", "sslclient", "-CAfile", token_->ca_cert, dir_ / "issued.pem"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  RunResult subject = OpenSsl({"x509", "-in", dir_ / "issued.pem", "-noout", "-subject"});
  EXPECT_NE(subject.out.find("CN = kubemaster-1"), std::string::npos) << subject.out;
  auto audit = Lines(ReadFile(dir_ / "audit.log"));
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_NE(audit[0].find("\"outcome\":\"issued\""), std::string::npos);
  EXPECT_NE(audit[0].find("\"ssh_peer\":\"127.0.0.1 "), std::string::npos) << audit[0];
}

TEST_F(SignerOverSsh, IdentityBindingKeepsKeyAFromObtainingMasterB) {
  std::string key_a = ssh_->NewClientKey("masterA");
  std::string key_b = ssh_->NewClientKey("masterB");
  ssh_->Authorize(key_a, ForcedCommand("kubemaster-a"));
  ssh_->Authorize(key_b, ForcedCommand("kubemaster-b"));
  ssh_->Start();
  RunResult stolen = ssh_->Ssh(key_a, "sign", CsrBase64("kubemaster-b"));
  EXPECT_EQ(stolen.exit_code, 77);
  EXPECT_TRUE(stolen.out.empty());
  EXPECT_NE(stolen.err.find("etcd-signer: identity-mismatch: "), std::string::npos) << stolen.err;
  RunResult own = ssh_->Ssh(key_b, "sign", CsrBase64("kubemaster-b"));
  EXPECT_EQ(own.exit_code, 0) << own.err;
  auto audit = Lines(ReadFile(dir_ / "audit.log"));
  ASSERT_EQ(audit.size(), 2u);
  EXPECT_NE(audit[0].find("\"reason\":\"identity-mismatch\""), std::string::npos);
  EXPECT_NE(audit[0].find("\"identity\":\"kubemaster-a\""), std::string::npos);
  // Each record names the SSH key that asked (sshd's ExposeAuthInfo), as ssh-keygen prints it: the
  // refused request is tied to key A, the issued one to key B (#17).
  auto fingerprint = [](const std::string& key) {
    std::string out = testing_support::Run({"/usr/bin/ssh-keygen", "-lf", key + ".pub"}).out;
    std::size_t start = out.find("SHA256:");
    return out.substr(start, out.find(' ', start) - start);
  };
  EXPECT_NE(audit[0].find("\"ssh_key_sha256\":\"" + fingerprint(key_a) + "\""), std::string::npos) << audit[0];
  EXPECT_NE(audit[1].find("\"ssh_key_sha256\":\"" + fingerprint(key_b) + "\""), std::string::npos) << audit[1];
}

TEST_F(SignerOverSsh, ClientCannotInjectOptionsOrShellThroughItsCommand) {
  std::string key = ssh_->NewClientKey("master1");
  ssh_->Authorize(key, ForcedCommand("kubemaster-1"));
  ssh_->Start();
  for (const std::string& command :
       {std::string("sign --identity kubemaster-2"), std::string("sign; touch ") + (dir_ / "pwned"),
        std::string("$(touch ") + (dir_ / "pwned") + ")", std::string("sign --lifetime 1h --config /etc/passwd")}) {
    RunResult r = ssh_->Ssh(key, command, CsrBase64("kubemaster-2"));
    EXPECT_EQ(r.exit_code, 64) << command << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << command;
  }
  EXPECT_NE(::access((dir_ / "pwned").c_str(), F_OK), 0);
}

}  // namespace
