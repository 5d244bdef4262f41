// SPDX-License-Identifier: Apache-2.0
// etcd-hsm and the hsm library against a real SoftHSM2 token (one token directory per test).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>

#include "base/files.h"
#include "hsm/session.h"
#include "pki/certificate_profile.h"
#include "pki/key.h"
#include "test_support.h"

namespace {

using namespace testing_support;

class Token : public ::testing::Test {
 protected:
  void SetUp() override { token_ = std::make_unique<CaToken>(dir_ / "token"); }

  RunResult Hsm(std::vector<std::string> args) {
    args.insert(args.begin(), Binary("etcd-hsm"));
    return testing_support::Run(args, {.env = token_->env(), .timeout = std::chrono::seconds(120)});
  }
  std::vector<std::string> KeyFlags(const std::string& uri, const std::string& pin_file = "") {
    return {"--module", kSoftHsmModule, "--key", uri, "--pin-file", pin_file.empty() ? token_->pin_file : pin_file};
  }
  std::vector<std::string> Concat(std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }

  TempDir dir_;
  std::unique_ptr<CaToken> token_;
};

TEST_F(Token, CaCreatedInTheTokenVerifiesWithOpenSsl) {
  RunResult verify = OpenSsl({"verify", "-CAfile", token_->ca_cert, token_->ca_cert});
  EXPECT_EQ(verify.exit_code, 0) << verify.err;
  RunResult text = OpenSsl({"x509", "-in", token_->ca_cert, "-noout", "-ext", "basicConstraints,keyUsage,subjectKeyIdentifier"});
  EXPECT_NE(text.out.find("CA:TRUE, pathlen:0"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("Certificate Sign, CRL Sign"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("Subject Key Identifier"), std::string::npos) << text.out;
  RunResult check = Hsm(Concat({"check"}, Concat(KeyFlags(token_->key_uri), {"--ca-cert", token_->ca_cert})));
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  auto lines = Lines(check.out);
  EXPECT_EQ(lines.size(), 8u);
  EXPECT_NE(check.out.find("ok   sign-only"), std::string::npos) << check.out;
  for (const auto& line : lines) EXPECT_EQ(line.rfind("ok ", 0), 0u) << line;
}

TEST_F(Token, CheckFailsForAnotherKeysCertificate) {
  ASSERT_EQ(Hsm({"keygen", "--module", kSoftHsmModule, "--token", "etcd-ca", "--pin-file", token_->pin_file,
                 "--label", "other", "--type", "ec-p256"}).exit_code, 0);
  RunResult check = Hsm(Concat({"check"}, Concat(KeyFlags("pkcs11:token=etcd-ca;object=other"), {"--ca-cert", token_->ca_cert})));
  EXPECT_EQ(check.exit_code, 65);
  EXPECT_NE(check.out.find("FAIL key-matches-certificate"), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("FAIL test-signature"), std::string::npos) << check.out;
  EXPECT_NE(check.err.find("etcd-hsm: check-failed: "), std::string::npos) << check.err;
}

TEST_F(Token, CheckFailsForACaKeyThatCanAlsoDecryptUnwrapOrDerive) {
  // A key made outside etcd-hsm with more uses than signing (pkcs11-tool takes its PIN on argv;
  // acceptable only for this throwaway test token).
  RunResult gen = testing_support::Run(
      {"/usr/bin/pkcs11-tool", "--module", kSoftHsmModule, "--token-label", "etcd-ca", "--login", "--pin",
       ReadFile(token_->pin_file), "--keypairgen", "--key-type", "rsa:2048", "--label", "wide", "--id", "7e",
       "--usage-sign", "--usage-decrypt"},
      {.env = token_->env()});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  std::string uri = "pkcs11:token=etcd-ca;object=wide;type=private";
  ASSERT_EQ(Hsm(Concat({"ca", "create"}, Concat(KeyFlags(uri), {"--subject", "CN=wide", "--days", "30", "--out",
                                                               dir_ / "wide.pem"}))).exit_code, 0);
  RunResult check = Hsm(Concat({"check"}, Concat(KeyFlags(uri), {"--ca-cert", dir_ / "wide.pem"})));
  EXPECT_EQ(check.exit_code, 65) << check.out << check.err;
  EXPECT_NE(check.out.find("FAIL sign-only"), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("CKA_DECRYPT=true"), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("ok   key-matches-certificate"), std::string::npos) << check.out;
}

TEST_F(Token, EveryKeyTypeIsGeneratedSensitiveAndNeverExtractable) {
  for (const std::string type : {"ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096"}) {
    RunResult r = Hsm({"keygen", "--module", kSoftHsmModule, "--token", "etcd-ca", "--pin-file", token_->pin_file,
                       "--label", "k-" + type, "--type", type});
    ASSERT_EQ(r.exit_code, 0) << type << ": " << r.err;
  }
  // Read back in-process (the library reads the attributes straight from the token).
  ::setenv("SOFTHSM2_CONF", token_->conf.c_str(), 1);
  hsm::Module module(kSoftHsmModule);
  hsm::Session session(module, {std::string("etcd-ca"), std::nullopt}, false);
  session.Login(base::ReadSecretFile(token_->pin_file));
  std::map<std::string, std::string> want{{"k-ec-p256", "EC P-256"}, {"k-ec-p384", "EC P-384"},
                                          {"k-rsa-2048", "RSA 2048"}, {"k-rsa-3072", "RSA 3072"},
                                          {"k-rsa-4096", "RSA 4096"}};
  for (const auto& [label, type] : want) {
    SCOPED_TRACE(label);
    hsm::TokenKey key = session.FindPrivateKey(label, std::nullopt);
    EXPECT_EQ(pki::DescribeKey(key.public_key.get()).name, type);
    EXPECT_EQ(key.id.size(), 16u);
    const auto& a = key.attributes;
    EXPECT_EQ(a.sensitive, true);
    EXPECT_EQ(a.always_sensitive, true);
    EXPECT_EQ(a.extractable, false);
    EXPECT_EQ(a.never_extractable, true);
    EXPECT_EQ(a.token, true);
    EXPECT_EQ(a.is_private, true);
    EXPECT_EQ(a.sign, true);
    EXPECT_EQ(a.decrypt, false);
    EXPECT_EQ(a.derive, false);
  }
  // An independent reader agrees: OpenSC's pkcs11-tool lists the private keys' access flags.
  // (pkcs11-tool takes its PIN on argv; acceptable only for this throwaway test token.)
  RunResult tool = testing_support::Run({"/usr/bin/pkcs11-tool", "--module", kSoftHsmModule, "--token-label", "etcd-ca",
                                         "--login", "--pin", ReadFile(token_->pin_file), "--list-objects", "--type", "privkey"},
                                        {.env = token_->env()});
  ASSERT_EQ(tool.exit_code, 0) << tool.err;
  std::size_t count = 0;
  for (std::size_t pos = 0; (pos = tool.out.find("never extractable", pos)) != std::string::npos; ++pos) ++count;
  EXPECT_EQ(count, 6u) << tool.out;  // the CA key + the five new ones
}

TEST_F(Token, DuplicateLabelsAndExistingTokensAreRefused) {
  RunResult dup = Hsm({"keygen", "--module", kSoftHsmModule, "--token", "etcd-ca", "--pin-file", token_->pin_file,
                       "--label", "ca-key"});
  EXPECT_EQ(dup.exit_code, 73);
  EXPECT_NE(dup.err.find("key-exists"), std::string::npos) << dup.err;
  RunResult again = Hsm({"init-token", "--module", kSoftHsmModule, "--label", "etcd-ca", "--so-pin-file",
                         token_->dir + "/so.pin", "--pin-file", token_->pin_file});
  EXPECT_EQ(again.exit_code, 73);
  EXPECT_NE(again.err.find("token-exists"), std::string::npos) << again.err;
}

TEST_F(Token, LookupByLabelSerialAndUri) {
  RunResult list = Hsm({"list", "--module", kSoftHsmModule});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto lines = Lines(list.out);
  ASSERT_EQ(lines.size(), 2u) << list.out;
  std::string serial;
  {
    std::istringstream row(lines[1]);
    std::string label;
    row >> label >> serial;
    EXPECT_EQ(label, "etcd-ca");
  }
  RunResult by_serial = Hsm({"list", "--module", kSoftHsmModule, "--serial", serial, "--pin-file", token_->pin_file});
  EXPECT_EQ(by_serial.exit_code, 0) << by_serial.err;
  EXPECT_NE(by_serial.out.find("private-key  ca-key"), std::string::npos) << by_serial.out;
  RunResult by_uri = Hsm(Concat({"ca", "csr"}, KeyFlags("pkcs11:serial=" + serial + ";object=ca-key")));
  ASSERT_EQ(by_uri.exit_code, 0) << by_uri.err;
  RunResult verify = OpenSsl({"req", "-verify", "-noout"}, by_uri.out);
  EXPECT_EQ(verify.exit_code, 0) << verify.err;
  // #24 point 11: without --subject the request names this host, never a subject every signer host
  // would share (the old default CN=etcd-ca).
  char host[256] = {};
  ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
  std::string short_host(host);
  short_host = short_host.substr(0, short_host.find('.'));
  RunResult subject = OpenSsl({"req", "-noout", "-subject", "-nameopt", "RFC2253"}, by_uri.out);
  EXPECT_EQ(subject.out, "subject=CN=etcd-ca " + short_host + "\n");
  RunResult wrong_serial = Hsm(Concat({"ca", "csr"}, KeyFlags("pkcs11:serial=ffff;object=ca-key")));
  EXPECT_EQ(wrong_serial.exit_code, 69);
  EXPECT_NE(wrong_serial.err.find("token-not-found"), std::string::npos);
}

TEST_F(Token, ClearOneLineErrorsForEachUnavailableThing) {
  WriteFile(dir_ / "wrong.pin", "999999\n", 0400);
  WriteFile(dir_ / "open.pin", ReadFile(token_->pin_file), 0644);
  struct Case {
    std::string what;
    std::vector<std::string> args;
    int code;
    std::string reason;
  };
  std::vector<Case> cases{
      {"wrong PIN", Concat({"ca", "csr"}, KeyFlags(token_->key_uri, dir_ / "wrong.pin")), 69, "pin-incorrect"},
      {"missing token", Concat({"ca", "csr"}, KeyFlags("pkcs11:token=nope;object=ca-key")), 69, "token-not-found"},
      {"missing key", Concat({"ca", "csr"}, KeyFlags("pkcs11:token=etcd-ca;object=nope")), 69, "key-not-found"},
      {"missing module", {"ca", "csr", "--module", "/nonexistent/libp11mod.so", "--key", token_->key_uri, "--pin-file", token_->pin_file}, 69, "module-not-found"},
      {"PIN file readable by others", Concat({"ca", "csr"}, KeyFlags(token_->key_uri, dir_ / "open.pin")), 78, "pin-file-permissions"},
      {"malformed URI", Concat({"ca", "csr"}, KeyFlags("pkcs11:token=etcd-ca;object=")), 64, "bad-uri"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    RunResult r = Hsm(c.args);
    EXPECT_EQ(r.exit_code, c.code) << r.err;
    auto lines = Lines(r.err);
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_EQ(lines[0].rfind("etcd-hsm: " + c.reason + ": ", 0), 0u) << lines[0];
    EXPECT_TRUE(r.out.empty());
  }
  RunResult wrong = Hsm(Concat({"ca", "csr"}, KeyFlags(token_->key_uri, dir_ / "wrong.pin")));
  EXPECT_NE(wrong.err.find("CKR_PIN_INCORRECT"), std::string::npos);
  // After the wrong PINs, the right one still works (no retries burnt the token's tries).
  EXPECT_EQ(Hsm(Concat({"ca", "csr"}, KeyFlags(token_->key_uri))).exit_code, 0);
}

TEST_F(Token, BundleKeepsOrderAndRefusesNonCaAndExpired) {
  ASSERT_EQ(Hsm({"keygen", "--module", kSoftHsmModule, "--token", "etcd-ca", "--pin-file", token_->pin_file,
                 "--label", "ca-key-2", "--type", "rsa-3072"}).exit_code, 0);
  RunResult created = Hsm(Concat({"ca", "create"}, Concat(KeyFlags("pkcs11:token=etcd-ca;object=ca-key-2"),
                                                          {"--subject", "CN=etcd-ca 2,O=Test", "--days", "10", "--out", dir_ / "ca2.pem"})));
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_EQ(OpenSsl({"verify", "-CAfile", dir_ / "ca2.pem", dir_ / "ca2.pem"}).exit_code, 0);
  RunResult bundle = Hsm({"ca", "bundle", dir_ / "ca2.pem", token_->ca_cert});
  ASSERT_EQ(bundle.exit_code, 0) << bundle.err;
  EXPECT_EQ(bundle.out, ReadFile(dir_ / "ca2.pem") + ReadFile(token_->ca_cert));
  // A leaf certificate is not a CA.
  ASSERT_EQ(OpenSsl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                     dir_ / "leaf.key", "-out", dir_ / "leaf.pem", "-subj", "/CN=leaf", "-addext",
                     "basicConstraints=critical,CA:FALSE"}).exit_code, 0);
  RunResult not_ca = Hsm({"ca", "bundle", dir_ / "ca2.pem", dir_ / "leaf.pem"});
  EXPECT_EQ(not_ca.exit_code, 65);
  EXPECT_NE(not_ca.err.find("not-a-ca"), std::string::npos);
  {
    // An expired CA (2020-2021), made with a software key.
    pki::EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    auto y2020 = std::chrono::system_clock::from_time_t(1577836800);
    pki::CaCertificateFields f{"CN=old", key.get(), pki::RandomSerial(), y2020, y2020 + std::chrono::hours(24 * 366)};
    pki::X509Ptr old = pki::BuildCaCertificate(f);
    pki::SignCertificate(old.get(), key.get());
    WriteFile(dir_ / "old.pem", pki::ToPem(old.get()));
  }
  RunResult expired = Hsm({"ca", "bundle", dir_ / "ca2.pem", dir_ / "old.pem"});
  EXPECT_EQ(expired.exit_code, 65);
  EXPECT_NE(expired.err.find("ca-expired"), std::string::npos) << expired.err;
  // Output files are never overwritten.
  RunResult clobber = Hsm({"ca", "bundle", dir_ / "ca2.pem", "--out", dir_ / "ca2.pem"});
  EXPECT_EQ(clobber.exit_code, 73);
}

TEST_F(Token, EveryVerbHasHelp) {
  for (const std::vector<std::string>& verb : std::vector<std::vector<std::string>>{
           {"--help"}, {"init-token", "--help"}, {"keygen", "--help"}, {"ca", "create", "--help"},
           {"ca", "csr", "--help"}, {"ca", "bundle", "--help"}, {"list", "--help"}, {"check", "--help"}}) {
    RunResult r = Hsm(verb);
    EXPECT_EQ(r.exit_code, 0) << verb[0];
    EXPECT_NE(r.out.find("Usage:"), std::string::npos) << verb[0];
  }
}

}  // namespace
