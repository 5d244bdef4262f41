// SPDX-License-Identifier: Apache-2.0
// etcd-hsm crl against a real SoftHSM2 token, checked with openssl.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>

#include "base/files.h"
#include "test_support.h"

namespace {

using namespace testing_support;

class CrlCommand : public ::testing::Test {
 protected:
  void SetUp() override { token_ = std::make_unique<CaToken>(dir_ / "token"); }

  RunResult Hsm(std::vector<std::string> args) {
    args.insert(args.begin(), Binary("etcd-hsm"));
    return testing_support::Run(args, {.env = token_->env(), .timeout = std::chrono::seconds(120)});
  }
  // etcd-hsm crl with the fixture's CA key and certificate unless `flags` name others.
  RunResult Issue(const std::vector<std::string>& flags, const std::string& key_uri = "",
                  const std::string& ca = "") {
    std::vector<std::string> args{"crl",
                                  "--module",
                                  kSoftHsmModule,
                                  "--key",
                                  key_uri.empty() ? token_->key_uri : key_uri,
                                  "--pin-file",
                                  token_->pin_file,
                                  "--ca-cert",
                                  ca.empty() ? token_->ca_cert : ca};
    args.insert(args.end(), flags.begin(), flags.end());
    return Hsm(args);
  }
  std::string Text(const std::string& crl) {
    return OpenSsl({"crl", "-in", crl, "-noout", "-text"}).out;
  }
  static unsigned long long Number(const std::string& text) {
    auto at = text.find("X509v3 CRL Number:");
    EXPECT_NE(at, std::string::npos) << text;
    if (at == std::string::npos) return 0;
    return std::strtoull(text.c_str() + text.find_first_of("0123456789", at + 18), nullptr, 10);
  }
  static void ExpectOneLine(const RunResult& r, int code, const std::string& reason) {
    EXPECT_EQ(r.exit_code, code) << r.err;
    EXPECT_EQ(r.err.rfind("etcd-hsm: " + reason + ": ", 0), 0u) << r.err;
    EXPECT_EQ(Lines(r.err).size(), 1u) << r.err;
  }

  TempDir dir_;
  std::unique_ptr<CaToken> token_;
};

TEST_F(CrlCommand, SignedInTheTokenVerifiesWithOpensslAndItsNumberOnlyGoesUp) {
  std::string crl = dir_ / "crl.pem";
  // The CA certificate's serial stands in for a leaf's: openssl prints it the way operators copy
  // it.
  std::string printed = OpenSsl({"x509", "-in", token_->ca_cert, "-noout", "-serial"}).out;
  std::string serial = printed.substr(7, printed.find('\n') - 7);
  RunResult first =
      Issue({"--revoke", serial, "--reason", "keyCompromise", "--days", "7", "--out", crl});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  RunResult verify = OpenSsl({"crl", "-in", crl, "-CAfile", token_->ca_cert, "-verify", "-noout"});
  EXPECT_EQ(verify.exit_code, 0) << verify.err;
  EXPECT_NE(verify.err.find("verify OK"), std::string::npos) << verify.err;
  std::string text = Text(crl);
  EXPECT_NE(text.find("Version 2"), std::string::npos) << text;
  EXPECT_NE(text.find("Issuer: CN = etcd-ca test"), std::string::npos) << text;
  EXPECT_NE(text.find("Serial Number: " + serial), std::string::npos) << text;
  EXPECT_NE(text.find("Key Compromise"), std::string::npos) << text;
  EXPECT_NE(text.find("Next Update:"), std::string::npos) << text;
  std::string ski =
      OpenSsl({"x509", "-in", token_->ca_cert, "-noout", "-ext", "subjectKeyIdentifier"}).out;
  std::string ski_value = Lines(ski).back().substr(Lines(ski).back().find_first_not_of(' '));
  EXPECT_NE(text.find(ski_value), std::string::npos)
      << "the AKI is not the CA's SKI " << ski_value << "\n"
      << text;
  unsigned long long n1 = Number(text);
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
      std::chrono::system_clock::now().time_since_epoch());
  EXPECT_GE(n1 + 5, static_cast<unsigned long long>(
                        now.count()));  // time-based, so a fresh file never reuses one
  std::string first_date = text.substr(text.find("Revocation Date:"), 40);

  // Re-issued over the same file (colon-separated lowercase serial, another one added): the old
  // entry keeps its date and reason, the number increases even within the same second.
  RunResult second = Issue({"--revoke", "0a:bc:de", "--days", "7", "--out", crl});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.err.find("2 entries (1 new)"), std::string::npos) << second.err;
  text = Text(crl);
  unsigned long long n2 = Number(text);
  EXPECT_GT(n2, n1);
  EXPECT_NE(text.find("Serial Number: 0ABCDE"), std::string::npos) << text;
  EXPECT_NE(text.find(first_date), std::string::npos) << text;
  EXPECT_NE(text.find("Key Compromise"), std::string::npos) << text;
  EXPECT_EQ(OpenSsl({"crl", "-in", crl, "-CAfile", token_->ca_cert, "-verify", "-noout"}).exit_code,
            0);

  // A number file ahead of the clock wins, is updated, and keeps numbers unique across files.
  std::string numbers = dir_ / "crl-number";
  WriteFile(numbers, "9000000000\n");
  WriteFile(dir_ / "revoked.txt", "# from the audit log\n0ABCDE superseded\n");
  RunResult third = Issue({"--revoke-file", dir_ / "revoked.txt", "--days", "1", "--out",
                           dir_ / "other.pem", "--crl-number-file", numbers});
  ASSERT_EQ(third.exit_code, 0) << third.err;
  EXPECT_EQ(Number(Text(dir_ / "other.pem")), 9000000001ull);
  EXPECT_EQ(ReadFile(numbers), "9000000001\n");
  EXPECT_NE(Text(dir_ / "other.pem").find("Superseded"), std::string::npos);
  RunResult fourth =
      Issue({"--revoke", "0ABCDE", "--days", "1", "--out", crl, "--crl-number-file", numbers});
  ASSERT_EQ(fourth.exit_code, 0) << fourth.err;
  EXPECT_EQ(Number(Text(crl)), 9000000002ull);
}

TEST_F(CrlCommand, RefusesBadInputAnotherKeysCertificateAndAnotherIssuersCrl) {
  std::string crl = dir_ / "crl.pem";
  ExpectOneLine(Issue({"--revoke", "zz", "--days", "7", "--out", crl}), 64, "bad-serial");
  ExpectOneLine(Issue({"--revoke", "serial=4A1F", "--days", "7", "--out", crl}), 64, "bad-serial");
  ExpectOneLine(Issue({"--revoke", "00", "--days", "7", "--out", crl}), 64, "bad-serial");
  ExpectOneLine(
      Issue({"--revoke", "4A1F", "--reason", "certificateHold", "--days", "7", "--out", crl}), 64,
      "bad-reason");
  ExpectOneLine(Issue({"--revoke", "4A1F", "--days", "0", "--out", crl}), 64, "bad-days");
  WriteFile(dir_ / "bad.txt", "4A1F\n4A1G keyCompromise\n");
  RunResult bad_file = Issue({"--revoke-file", dir_ / "bad.txt", "--days", "7", "--out", crl});
  ExpectOneLine(bad_file, 65, "bad-revoke-file");
  EXPECT_NE(bad_file.err.find("line 2"), std::string::npos) << bad_file.err;
  ExpectOneLine(
      Issue({"--revoke", "4A1F", "--revoke-file", dir_ / "bad.txt", "--days", "7", "--out", crl}),
      64, "usage");
  ExpectOneLine(Issue({"--days", "7", "--out", crl}), 64, "usage");
  // A PIN has no command-line option.
  EXPECT_EQ(Issue({"--revoke", "4A1F", "--days", "7", "--out", crl, "--pin", "1234"}).exit_code,
            64);
  EXPECT_NE(::access(crl.c_str(), F_OK), 0) << "nothing may be written on a refusal";

  // The CA certificate must belong to the token key: another key in the same token is refused
  // before it signs anything.
  ASSERT_EQ(Hsm({"keygen", "--module", kSoftHsmModule, "--token", "etcd-ca", "--pin-file",
                 token_->pin_file, "--label", "other", "--type", "ec-p256"})
                .exit_code,
            0);
  std::string other_uri = "pkcs11:token=etcd-ca;object=other;type=private";
  ExpectOneLine(Issue({"--revoke", "4A1F", "--days", "7", "--out", crl}, other_uri), 69,
                "ca-key-mismatch");
  EXPECT_NE(::access(crl.c_str(), F_OK), 0);

  // Another issuer's CRL at --out is neither continued nor overwritten.
  std::string other_ca = dir_ / "other-ca.pem", other_crl = dir_ / "other-crl.pem";
  ASSERT_EQ(Hsm({"ca", "create", "--module", kSoftHsmModule, "--key", other_uri, "--pin-file",
                 token_->pin_file, "--subject", "CN=other CA", "--days", "30", "--out", other_ca})
                .exit_code,
            0);
  ASSERT_EQ(
      Issue({"--revoke", "01", "--days", "7", "--out", other_crl}, other_uri, other_ca).exit_code,
      0);
  std::string before = ReadFile(other_crl);
  ExpectOneLine(Issue({"--revoke", "4A1F", "--days", "7", "--out", other_crl}), 65,
                "crl-issuer-mismatch");
  EXPECT_EQ(ReadFile(other_crl), before);
  WriteFile(dir_ / "junk.pem", "not a CRL\n");
  ExpectOneLine(Issue({"--revoke", "4A1F", "--days", "7", "--out", dir_ / "junk.pem"}), 65,
                "bad-crl");

  // A certificate that is not a CA cannot issue CRLs.
  std::string leaf = dir_ / "leaf.pem";
  ASSERT_EQ(OpenSsl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                     "-nodes", "-keyout", "/dev/null", "-subj", "/CN=leaf", "-addext",
                     "basicConstraints=critical,CA:FALSE", "-days", "1", "-out", leaf})
                .exit_code,
            0);
  ExpectOneLine(Issue({"--revoke", "4A1F", "--days", "7", "--out", crl}, "", leaf), 65,
                "not-a-crl-issuer");
}

TEST_F(CrlCommand, RunsForOneFileAreSerializedSoNoNumberIsIssuedTwice) {
  std::string crl = dir_ / "crl.pem";
  {
    base::PrivateLock held(crl + ".lock", std::chrono::seconds(1));
    RunResult waited = Hsm({"--timeout", "1", "crl", "--module", kSoftHsmModule, "--key",
                            token_->key_uri, "--pin-file", token_->pin_file, "--ca-cert",
                            token_->ca_cert, "--revoke", "4A1F", "--days", "7", "--out", crl});
    EXPECT_EQ(waited.exit_code, 75) << waited.err;
    EXPECT_NE(waited.err.find("deadline"), std::string::npos) << waited.err;
    EXPECT_NE(::access(crl.c_str(), F_OK), 0) << "a run waiting for the lock wrote the CRL";
  }
  RunResult free = Issue({"--revoke", "4A1F", "--days", "7", "--out", crl});
  EXPECT_EQ(free.exit_code, 0) << free.err;
}

}  // namespace
