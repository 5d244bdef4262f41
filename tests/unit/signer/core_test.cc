// SPDX-License-Identifier: Apache-2.0
// The signer's pure pieces: request line, name/lifetime/key policy, validity, certificate profile.
#include <gtest/gtest.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/failure.h"
#include "pki/base64.h"
#include "pki/csr.h"
#include "pki/verify.h"
#include "pki/key.h"
#include "signer/approval.h"
#include "signer/audit.h"
#include "signer/issuance.h"
#include "signer/policy.h"
#include "signer/request_line.h"
#include "signer/service.h"
#include "test_support.h"

namespace {

using namespace std::chrono_literals;
using base::ExitCode;
using base::Failure;
using base::Seconds;

template <typename F>
std::pair<ExitCode, std::string> Caught(F&& f) {
  try {
    f();
  } catch (const Failure& e) {
    return {e.code(), e.reason()};
  }
  return {ExitCode::kOk, ""};
}

pki::EvpPkeyPtr Ec(const char* curve = "P-256") {
  return pki::EvpPkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve));
}

// --- request line -------------------------------------------------------------------------

TEST(RequestLine, AcceptsTheVerbs) {
  EXPECT_EQ(signer::ParseRequestLine("").verb, signer::Verb::kSign);
  EXPECT_EQ(signer::ParseRequestLine("sign").verb, signer::Verb::kSign);
  EXPECT_FALSE(signer::ParseRequestLine("sign").lifetime.has_value());
  EXPECT_EQ(signer::ParseRequestLine("ca").verb, signer::Verb::kCa);
  EXPECT_EQ(signer::ParseRequestLine("info").verb, signer::Verb::kInfo);
  EXPECT_EQ(*signer::ParseRequestLine("sign --lifetime 1h").lifetime, Seconds(3600));
  EXPECT_EQ(*signer::ParseRequestLine("sign --lifetime=600").lifetime, Seconds(600));
  EXPECT_EQ(*signer::ParseRequestLine("  sign\t--lifetime   2d ").lifetime, Seconds(2 * 86400));
  // check (#28) takes sign's --profile and --lifetime, so that it decides what sign would.
  signer::RequestLine check = signer::ParseRequestLine("check --lifetime 1h --profile etcd-server");
  EXPECT_EQ(check.verb, signer::Verb::kCheck);
  EXPECT_EQ(*check.lifetime, Seconds(3600));
  EXPECT_EQ(check.profile, pki::LeafProfile::kServer);
  EXPECT_EQ(signer::VerbName(check.verb), "check");
}

TEST(RequestLine, RefusesEverythingElse) {
  struct Case {
    std::string text;
    std::string reason;
  };
  for (const Case& c : std::vector<Case>{
           {"issue", "unknown-verb"},
           {"SIGN", "unknown-verb"},
           {"ca extra", "bad-request"},
           {"info --json", "bad-request"},
           {"check --format k8s", "bad-request"},
           {"check --format=k8s", "bad-request"},
           {"check --profile etcd-nothing", "unknown-profile"},
           {"check --identity kubemaster-2", "bad-request"},
           {"checkx", "unknown-verb"},
           {"sign --lifetime", "bad-request"},
           {"sign --lifetime 1h --lifetime 2h", "bad-request"},
           {"sign --identity kubemaster-2", "bad-request"},
           {"sign --lifetime 10x", "bad-lifetime"},
           {"sign --lifetime -5", "bad-lifetime"},
           {"sign;id", "bad-request"},
           {"sign | id", "bad-request"},
           {"sign && id", "bad-request"},
           {"sign $(id)", "bad-request"},
           {"sign `id`", "bad-request"},
           {"sign 'x'", "bad-request"},
           {"sign \"x\"", "bad-request"},
           {"sign\nca", "bad-request"},
           {std::string("sign\0ca", 7), "bad-request"},
           {"sign \xc3\xa9", "bad-request"},
           {"sign " + std::string(300, 'a'), "bad-request"},
       }) {
    auto [code, reason] = Caught([&] { signer::ParseRequestLine(c.text); });
    EXPECT_EQ(code, ExitCode::kUsage) << c.text;
    EXPECT_EQ(reason, c.reason) << c.text;
  }
}

// --- names and lifetimes ------------------------------------------------------------------

TEST(NamePolicy, DefaultPatternAndIdentityBinding) {
  signer::SignerConfig config;
  for (const char* ok : {"kubemaster-1", "kubemaster-a-b", "kubemaster-0z9"}) {
    EXPECT_NO_THROW(signer::CheckName(ok, config)) << ok;
  }
  for (const std::string& bad : std::vector<std::string>{"", "Kubemaster-1", "kubemaster-", "kubemaster-1-", "kubemaster_1",
                          "kubemaster-1.example", "master-1", "kubemaster--", " kubemaster-1",
                          std::string("kubemaster-1\0x", 14), "kubemaster-" + std::string(60, 'a')}) {
    auto [code, reason] = Caught([&] { signer::CheckName(bad, config); });
    EXPECT_EQ(code, ExitCode::kNoPerm) << bad;
    EXPECT_EQ(reason, "name-policy") << bad;
  }
  config.identity = "kubemaster-3";
  EXPECT_NO_THROW(signer::CheckName("kubemaster-3", config));
  EXPECT_EQ(Caught([&] { signer::CheckName("kubemaster-4", config); }).second, "identity-mismatch");
  EXPECT_EQ(Caught([&] { signer::CheckName("kubemaster-33", config); }).second, "identity-mismatch");
}

TEST(LifetimePolicy, DefaultMinimumAndClamp) {
  signer::SignerConfig c;  // default 24h, min 10m, max 7d
  EXPECT_EQ(signer::GrantLifetime(std::nullopt, c), Seconds(86400));
  EXPECT_EQ(signer::GrantLifetime(Seconds(600), c), Seconds(600));        // exactly min
  EXPECT_EQ(signer::GrantLifetime(Seconds(7 * 86400), c), Seconds(7 * 86400));  // exactly max
  EXPECT_EQ(signer::GrantLifetime(Seconds(30 * 86400), c), Seconds(7 * 86400));  // clamped
  auto [code, reason] = Caught([&] { signer::GrantLifetime(Seconds(599), c); });
  EXPECT_EQ(code, ExitCode::kNoPerm);
  EXPECT_EQ(reason, "lifetime-too-short");
}

TEST(Config, ValidateRefusesIncoherentSettings) {
  signer::SignerConfig c;
  c.key_uri = "pkcs11:token=t;object=k";
  c.ca_cert = "/ca.pem";
  EXPECT_NO_THROW(signer::ValidateConfig(c));
  auto bad = [&](auto mutate) {
    signer::SignerConfig copy = c;
    mutate(copy);
    return Caught([&] { signer::ValidateConfig(copy); });
  };
  EXPECT_EQ(bad([](auto& x) { x.lifetime_min = Seconds(8 * 86400); }).second, "bad-config");
  EXPECT_EQ(bad([](auto& x) { x.lifetime_default = Seconds(60); }).second, "bad-config");
  EXPECT_EQ(bad([](auto& x) { x.name_pattern = "(["; }).first, ExitCode::kConfig);
  EXPECT_EQ(bad([](auto& x) { x.key_uri.clear(); }).first, ExitCode::kConfig);
  EXPECT_EQ(bad([](auto& x) { x.backdate = Seconds(7200); }).first, ExitCode::kConfig);
}

// --- CSR policy ---------------------------------------------------------------------------

pki::X509ReqPtr MakeCsr(EVP_PKEY* key, const std::vector<std::pair<std::string, std::string>>& subject,
                        const char* san = nullptr) {
  pki::X509ReqPtr req(X509_REQ_new());
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  for (const auto& [k, v] : subject) {
    X509_NAME_add_entry_by_txt(name, k.c_str(), MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(v.c_str()), -1, -1, 0);
  }
  X509_REQ_set_pubkey(req.get(), key);
  if (san != nullptr) {
    STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san);
    sk_X509_EXTENSION_push(exts, ext);
    X509_REQ_add_extensions(req.get(), exts);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  }
  // Ed25519 signs the message itself: no separate digest.
  X509_REQ_sign(req.get(), key, EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256());
  return req;
}

TEST(CsrPolicy, ApprovesAGoodRequestAndRecordsFacts) {
  auto key = Ec();
  auto req = MakeCsr(key.get(), {{"CN", "kubemaster-7"}});
  signer::SignerConfig config;
  signer::RequestFacts facts;
  signer::Approval a = signer::ApplyPolicy(req.get(), Seconds(3600), config, facts);
  EXPECT_EQ(a.common_name, "kubemaster-7");
  EXPECT_EQ(a.lifetime, Seconds(3600));
  EXPECT_TRUE(pki::SamePublicKey(a.public_key.get(), key.get()));
  EXPECT_EQ(facts.key_type, "EC P-256");
  EXPECT_EQ(facts.public_key_sha256, pki::PublicKeySha256(key.get()));
  EXPECT_EQ(facts.common_name, "kubemaster-7");
}

// #24: a key's identity is its canonical SubjectPublicKeyInfo. The same EC key sent with its point
// compressed gets the same fingerprint, so a deny list entry made from the key (as openssl prints
// it: uncompressed) still refuses it; before, the fingerprint hashed the CSR's bytes and the
// compressed form was issued.
TEST(CsrPolicy, ACompressedPointIsTheSameKeyAndADeniedKeyStaysDenied) {
  auto key = Ec();
  pki::EvpPkeyPtr compressed(EVP_PKEY_dup(key.get()));
  ASSERT_EQ(EVP_PKEY_set_utf8_string_param(compressed.get(), "point-format", "compressed"), 1);
  auto plain_req = MakeCsr(key.get(), {{"CN", "kubemaster-7"}});
  auto compressed_req = MakeCsr(compressed.get(), {{"CN", "kubemaster-7"}});
  pki::EvpPkeyPtr sent(X509_REQ_get_pubkey(compressed_req.get()));
  ASSERT_EQ(pki::PublicKeyToDer(sent.get()).size(), 59u);  // the CSR really carries a compressed point

  signer::SignerConfig config;
  signer::RequestFacts plain_facts, compressed_facts;
  signer::Approval plain = signer::ApplyPolicy(plain_req.get(), std::nullopt, config, plain_facts);
  signer::Approval approval = signer::ApplyPolicy(compressed_req.get(), std::nullopt, config, compressed_facts);
  EXPECT_EQ(compressed_facts.public_key_sha256, plain_facts.public_key_sha256);
  EXPECT_EQ(approval.key.sha256, compressed_facts.public_key_sha256);
  EXPECT_EQ(approval.key.spki_der, plain.key.spki_der);
  EXPECT_EQ(approval.key.spki_der.size(), 91u);

  testing_support::TempDir dir;
  testing_support::WriteFile(dir / "denied_keys", "kubemaster-7 " + plain_facts.public_key_sha256 + " lost laptop\n");
  config.denied_keys = dir / "denied_keys";
  signer::ApprovalGate gate(config);
  EXPECT_EQ(Caught([&] { gate.CheckKey(compressed_facts.common_name, compressed_facts.public_key_sha256); }),
            std::make_pair(ExitCode::kNoPerm, std::string("key-denied")));
}

TEST(CsrPolicy, RefusesEachViolation) {
  signer::SignerConfig config;
  auto ec = Ec();
  auto rsa1024 = pki::EvpPkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(1024)));
  auto ed = pki::EvpPkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  auto p521 = Ec("P-521");
  struct Case {
    const char* what;
    pki::X509ReqPtr req;
    ExitCode code;
    std::string reason;
  };
  std::vector<Case> cases;
  cases.push_back({"extra O", MakeCsr(ec.get(), {{"CN", "kubemaster-1"}, {"O", "system:masters"}}), ExitCode::kNoPerm, "subject-attributes"});
  cases.push_back({"two CNs", MakeCsr(ec.get(), {{"CN", "kubemaster-1"}, {"CN", "kubemaster-2"}}), ExitCode::kNoPerm, "subject-attributes"});
  cases.push_back({"no subject", MakeCsr(ec.get(), {}), ExitCode::kNoPerm, "name-policy"});
  cases.push_back({"SAN", MakeCsr(ec.get(), {{"CN", "kubemaster-1"}}, "DNS:x.example"), ExitCode::kNoPerm, "extensions-requested"});
  cases.push_back({"RSA-1024", MakeCsr(rsa1024.get(), {{"CN", "kubemaster-1"}}), ExitCode::kNoPerm, "key-size"});
  cases.push_back({"Ed25519", MakeCsr(ed.get(), {{"CN", "kubemaster-1"}}), ExitCode::kNoPerm, "key-type"});
  cases.push_back({"P-521", MakeCsr(p521.get(), {{"CN", "kubemaster-1"}}), ExitCode::kNoPerm, "key-type"});
  {
    // A valid CSR with the last byte of its signature flipped: still DER, no longer signed.
    auto der = pki::ToDer(MakeCsr(ec.get(), {{"CN", "kubemaster-1"}}).get());
    der.back() ^= 0x01;
    cases.push_back({"tampered", pki::DecodeCsr(der), ExitCode::kDataErr, "bad-signature"});
  }
  for (auto& c : cases) {
    signer::RequestFacts facts;
    auto [code, reason] = Caught([&] { signer::ApplyPolicy(c.req.get(), std::nullopt, config, facts); });
    EXPECT_EQ(code, c.code) << c.what;
    EXPECT_EQ(reason, c.reason) << c.what;
  }
}

TEST(RequestBody, DecodesPemAndDerAndRefusesTheRest) {
  auto key = Ec();
  auto req = MakeCsr(key.get(), {{"CN", "kubemaster-1"}});
  auto der = pki::ToDer(req.get());
  std::string pem = pki::ToPem(req.get());
  std::string b64_der = pki::EncodeBase64(der.data(), der.size(), 64);
  std::string b64_pem = pki::EncodeBase64(reinterpret_cast<const unsigned char*>(pem.data()), pem.size(), 76);
  EXPECT_TRUE(signer::DecodeRequestBody(b64_der));
  EXPECT_TRUE(signer::DecodeRequestBody(b64_pem));
  EXPECT_TRUE(signer::DecodeRequestBody("\n  " + b64_der + "\r\n"));
  EXPECT_EQ(Caught([&] { signer::DecodeRequestBody(""); }).second, "empty-input");
  EXPECT_EQ(Caught([&] { signer::DecodeRequestBody(" \n"); }).second, "empty-input");
  EXPECT_EQ(Caught([&] { signer::DecodeRequestBody("%%%%"); }).second, "not-base64");
  EXPECT_EQ(Caught([&] { signer::DecodeRequestBody("Z2FyYmFnZQ=="); }).second, "not-a-csr");
  std::string trailing = b64_der;  // DER + trailing byte
  auto der2 = der;
  der2.push_back(0);
  EXPECT_EQ(Caught([&] { signer::DecodeRequestBody(pki::EncodeBase64(der2.data(), der2.size())); }).second, "not-a-csr");
}

// --- validity and the certificate profile -------------------------------------------------

struct SoftwareCa {
  pki::EvpPkeyPtr key = Ec();
  pki::X509Ptr cert;
  SoftwareCa(pki::TimePoint nb, pki::TimePoint na) {
    pki::CaCertificateFields f{"CN=unit test CA", key.get(), pki::RandomSerial(), nb, na};
    cert = pki::BuildCaCertificate(f);
    pki::SignCertificate(cert.get(), key.get());
  }
};

TEST(Validity, BackdateClampAndCaLimits) {
  auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  SoftwareCa ca(now - 24h, now + 48h);
  auto v = signer::ComputeValidity(ca.cert.get(), now, Seconds(3600), Seconds(300), Seconds(600));
  EXPECT_EQ(v.not_before, now - 5min);
  EXPECT_EQ(v.not_after, now + 1h);
  auto clamped = signer::ComputeValidity(ca.cert.get(), now, Seconds(7 * 86400), Seconds(300), Seconds(600));
  EXPECT_EQ(clamped.not_after, now + 48h);
  SoftwareCa young(now - 1min, now + 48h);
  EXPECT_EQ(signer::ComputeValidity(young.cert.get(), now, Seconds(3600), Seconds(300), Seconds(600)).not_before, now - 1min);
  SoftwareCa expired(now - 48h, now - 1h);
  EXPECT_EQ(Caught([&] { signer::ComputeValidity(expired.cert.get(), now, Seconds(3600), Seconds(300), Seconds(600)); }).second, "ca-expired");
  SoftwareCa ending(now - 48h, now + 5min);
  auto [code, reason] = Caught([&] { signer::ComputeValidity(ending.cert.get(), now, Seconds(3600), Seconds(300), Seconds(600)); });
  EXPECT_EQ(code, ExitCode::kUnavailable);
  EXPECT_EQ(reason, "ca-expiring");
}

std::string Ext(X509* cert, int nid, bool* critical = nullptr) {
  int i = X509_get_ext_by_NID(cert, nid, -1);
  if (i < 0) return "<absent>";
  X509_EXTENSION* ext = X509_get_ext(cert, i);
  if (critical != nullptr) *critical = X509_EXTENSION_get_critical(ext) == 1;
  pki::BioPtr bio(BIO_new(BIO_s_mem()));
  X509V3_EXT_print(bio.get(), ext, 0, 0);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

void ExpectProfile(const pki::EvpPkeyPtr& subject_key, bool rsa) {
  auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  SoftwareCa ca(now - 24h, now + 30 * 24h);
  // The CSR asks for more; none of it may appear.
  auto req = MakeCsr(subject_key.get(), {{"CN", "kubemaster-5"}});
  signer::Approval approval{"kubemaster-5", pki::EvpPkeyPtr(X509_REQ_get_pubkey(req.get())), Seconds(7200)};
  approval.key = pki::CanonicalizeKey(approval.public_key.get());
  pki::Serial serial = pki::RandomSerial();
  signer::Validity validity{now - 5min, now + 2h};
  pki::X509Ptr cert = signer::IssueCertificate(approval, ca.cert.get(), ca.key.get(), validity, serial);
  X509* c = cert.get();
  EXPECT_EQ(X509_get_version(c), X509_VERSION_3);
  const ASN1_INTEGER* sn = X509_get0_serialNumber(c);
  EXPECT_EQ(ASN1_STRING_length(sn), 16);
  EXPECT_EQ(0, std::memcmp(ASN1_STRING_get0_data(sn), serial.data(), 16));
  EXPECT_EQ(ASN1_STRING_type(sn), V_ASN1_INTEGER);  // positive
  EXPECT_EQ(X509_NAME_entry_count(X509_get_subject_name(c)), 1);
  EXPECT_EQ(pki::CommonName(X509_get_subject_name(c)), "kubemaster-5");
  EXPECT_EQ(X509_NAME_cmp(X509_get_issuer_name(c), X509_get_subject_name(ca.cert.get())), 0);
  EXPECT_EQ(pki::NotBefore(c), now - 5min);
  EXPECT_EQ(pki::NotAfter(c), now + 2h);
  bool critical = false;
  EXPECT_EQ(Ext(c, NID_basic_constraints, &critical), "CA:FALSE");
  EXPECT_TRUE(critical);
  EXPECT_EQ(Ext(c, NID_key_usage, &critical), rsa ? "Digital Signature, Key Encipherment" : "Digital Signature");
  EXPECT_TRUE(critical);
  EXPECT_EQ(Ext(c, NID_ext_key_usage, &critical), "TLS Web Client Authentication");
  EXPECT_FALSE(critical);
  EXPECT_NE(Ext(c, NID_subject_key_identifier), "<absent>");
  EXPECT_EQ(Ext(c, NID_authority_key_identifier), Ext(ca.cert.get(), NID_subject_key_identifier));
  EXPECT_EQ(Ext(c, NID_subject_alt_name), "<absent>");
  EXPECT_EQ(X509_get_ext_count(c), 5);
  EXPECT_EQ(X509_get_signature_nid(c), NID_ecdsa_with_SHA256);
  // As the client sees it: parsed from the PEM (the issued object carries its key as bytes only).
  auto parsed = pki::ParseCertificatesPem(pki::ToPem(c), "the answer");
  EXPECT_EQ(pki::VerifyChain(parsed.front().get(), {ca.cert.get()}, now), "");
}

TEST(Profile, EveryFieldForEcAndRsaSubjects) {
  ExpectProfile(Ec(), false);
  ExpectProfile(pki::EvpPkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048))), true);
}

TEST(Profile, SelfCheckCatchesAWrongSigningKey) {
  auto now = std::chrono::system_clock::now();
  SoftwareCa ca(now - 24h, now + 24h);
  auto stranger = Ec();
  auto subject = Ec();
  signer::Approval approval{"kubemaster-1", pki::EvpPkeyPtr(subject.release()), Seconds(3600)};
  approval.key = pki::CanonicalizeKey(approval.public_key.get());
  auto [code, reason] = Caught([&] {
    signer::IssueCertificate(approval, ca.cert.get(), stranger.get(), {now, now + 1h}, pki::RandomSerial());
  });
  EXPECT_EQ(code, ExitCode::kSoftware);
  EXPECT_EQ(reason, "self-check-failed");
}

// --- audit and input ----------------------------------------------------------------------

TEST(Audit, RecordIsOneLineOfValidJsonEvenWithHostileText) {
  signer::AuditRecord r;
  r.time = "2026-11-23T00:00:00Z";
  r.outcome = "refused";
  r.reason = "name-policy";
  r.common_name = std::string("evil\n\"name\xff\xfe", 12);
  std::string line = signer::ToJson(r);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["outcome"], "refused");
  EXPECT_EQ(j["reason"], "name-policy");
  EXPECT_EQ(j["program"], "etcd-signer");
  EXPECT_FALSE(j.contains("granted_lifetime"));
}

TEST(Audit, AttackerFieldsAreCappedAndEveryNonAsciiCharacterIsEscaped) {
  signer::AuditRecord r;
  r.outcome = "refused";
  r.identity = "kubemaster-1";
  r.ssh_peer = "192.0.2.1 40000";
  // A 45,000-character CN once made a 45 KB record that syslog cut before identity and peer.
  r.common_name = std::string(45000, 'a');
  r.message = "the name '" + std::string(45000, 'b') + "' does not match";
  std::string line = signer::ToJson(r);
  EXPECT_LT(line.size(), 1500u);
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["cn"].get<std::string>(), std::string(256, 'a'));
  EXPECT_EQ(j["identity"], "kubemaster-1");
  EXPECT_EQ(j["ssh_peer"], "192.0.2.1 40000");
  // C1 CSI, LINE SEPARATOR and RIGHT-TO-LEFT OVERRIDE leave as \u escapes, never raw.
  r.common_name = "kube\xc2\x9bmaster\xe2\x80\xa8x\xe2\x80\xae" "1";
  line = signer::ToJson(r);
  for (unsigned char c : line) ASSERT_LT(c, 0x80) << line;
  EXPECT_NE(line.find("kube\\u009bmaster\\u2028x\\u202e1"), std::string::npos) << line;
  EXPECT_EQ(nlohmann::json::parse(line)["cn"], r.common_name);  // escaped, not lost
  // A cap never splits a UTF-8 sequence into invalid bytes.
  r.common_name = std::string(255, 'a') + "\xe2\x80\xae";
  EXPECT_EQ(nlohmann::json::parse(signer::ToJson(r))["cn"], std::string(255, 'a'));
}

TEST(Config, AnEmptyIdentityIsAConfigurationErrorNotAMissingBinding) {
  EXPECT_EQ(signer::Identity("kubemaster-3"), "kubemaster-3");
  auto [code, reason] = Caught([] { signer::Identity(""); });
  EXPECT_EQ(code, ExitCode::kConfig);
  EXPECT_EQ(reason, "bad-config");
}

TEST(Policy, QuotedNamesInMessagesAreBoundedAndPrintable) {
  signer::SignerConfig config;
  try {
    signer::CheckName("kubemaster-\x1b[2J\xe2\x80\xae" + std::string(20, 'z'), config);
    FAIL() << "a hostile name passed";
  } catch (const Failure& f) {
    std::string what = f.what();
    EXPECT_EQ(what.find('\x1b'), std::string::npos) << what;
    EXPECT_NE(what.find("\\x1b[2J\\xe2\\x80\\xae"), std::string::npos) << what;
    EXPECT_LT(what.size(), 300u);
  }
}

TEST(SshKeyFingerprint, IsOpenSshsSha256OfTheAcceptedKey) {
  // What `ssh-keygen -lf` prints for this key (the integration test compares with ssh-keygen on a
  // fresh key through a real sshd).
  char path[] = "/tmp/auth-info-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string text = "password\npublickey ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GK7l\n";
  ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fd);
  std::string fp = signer::SshKeyFingerprint(path);
  ::unlink(path);
  EXPECT_EQ(fp, "SHA256:aMg1DFUExIP0pr63bJPO1m5nA6VuuskTV6Or/OFY864");
  EXPECT_EQ(signer::SshKeyFingerprint("/nonexistent/auth-info"), "");
}

TEST(ReadInput, CapsSizeAndTime) {
  ::signal(SIGPIPE, SIG_IGN);  // the writer outlives the reader that gave up
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  EXPECT_EQ(Caught([&] { signer::ReadInput(fds[0], 300ms); }).second, "input-timeout");
  std::string chunk(4096, 'A');
  ASSERT_EQ(::write(fds[1], "QUJD", 4), 4);
  ::close(fds[1]);
  EXPECT_EQ(signer::ReadInput(fds[0], 1s), "QUJD");
  ::close(fds[0]);
  ASSERT_EQ(::pipe(fds), 0);
  std::thread writer([&] {
    for (int i = 0; i < 20; ++i) {
      if (::write(fds[1], chunk.data(), chunk.size()) < 0) break;
    }
    ::close(fds[1]);
  });
  EXPECT_EQ(Caught([&] { signer::ReadInput(fds[0], 5s); }).second, "oversize");
  ::close(fds[0]);
  writer.join();
}

TEST(FailureLine, OneLineWithProgramAndReason) {
  Failure f(ExitCode::kNoPerm, "name-policy", "two\nlines");
  EXPECT_EQ(base::FailureLine("etcd-signer", f), "etcd-signer: name-policy: two lines");
  EXPECT_EQ(static_cast<int>(f.code()), 77);
}

}  // namespace
