// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include "base/failure.h"
#include "pki/base64.h"
#include "pki/certificate_profile.h"
#include "pki/csr.h"
#include "pki/key.h"
#include <openssl/pem.h>
#include "pki/verify.h"
#include "test_support.h"

namespace {

using namespace std::chrono_literals;

using testing_support::Reason;

TEST(Base64, StrictDecoding) {
  auto v = pki::DecodeBase64("aGVs\nbG8=\r\n");
  ASSERT_TRUE(v);
  EXPECT_EQ(std::string(v->begin(), v->end()), "hello");
  EXPECT_TRUE(pki::DecodeBase64("aGk="));
  EXPECT_TRUE(pki::DecodeBase64("aA=="));
  for (const char* bad : {"", "aGk", "aGk=a", "a=Gk", "aGk==", "aG!=", "aGl=", "aB==", "====", "aGVsbG8", "aGVs bG8=x"}) {
    EXPECT_FALSE(pki::DecodeBase64(bad)) << bad;  // bad length, misplaced '=', alphabet, non-zero pad bits
  }
}

TEST(Base64, RoundTripsEveryLength) {
  std::string data;
  for (int n = 0; n < 70; ++n) {
    std::string text = pki::EncodeBase64(reinterpret_cast<const unsigned char*>(data.data()), data.size(), 64);
    if (n > 0) {
      auto back = pki::DecodeBase64(text);
      ASSERT_TRUE(back) << n;
      EXPECT_EQ(std::string(back->begin(), back->end()), data);
    }
    data.push_back(static_cast<char>(n * 37));
  }
}

struct Ca {
  pki::EvpPkeyPtr key{EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")};
  pki::X509Ptr cert;
  explicit Ca(const std::string& subject) {
    auto now = std::chrono::system_clock::now();
    pki::CaCertificateFields f{subject, key.get(), pki::RandomSerial(), now - 1h, now + 24h};
    cert = pki::BuildCaCertificate(f);
    pki::SignCertificate(cert.get(), key.get());
  }
  std::string Issue(const std::string& cn, EVP_PKEY* subject, pki::TimePoint nb, pki::TimePoint na,
                    bool client_auth = true) {
    return Forge(cn, subject, nb, na, [&](X509* c) {
      if (!client_auth) X509_EXTENSION_free(X509_delete_ext(c, X509_get_ext_by_NID(c, NID_ext_key_usage, -1)));
    });
  }
  // The signer's certificate, changed by `mutate` before the CA signs it: a hostile signer with
  // the real CA key.
  std::string Forge(const std::string& cn, EVP_PKEY* subject, pki::TimePoint nb, pki::TimePoint na,
                    const std::function<void(X509*)>& mutate, const EVP_MD* md = EVP_sha256()) {
    pki::LeafCertificateFields f{cn, subject, pki::RandomSerial(), nb, na};
    pki::X509Ptr c = pki::BuildLeafCertificate(f, cert.get());
    mutate(c.get());
    if (X509_sign(c.get(), key.get(), md) <= 0) throw std::runtime_error("sign");
    return pki::ToPem(c.get());
  }
};

TEST(CsrCodec, BuildDecodeInspect) {
  pki::EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
  pki::X509ReqPtr req = pki::BuildCsr("kubemaster-9", key.get());
  auto der = pki::ToDer(req.get());
  std::string pem = pki::ToPem(req.get());
  auto from_der = pki::DecodeCsr(der);
  auto from_pem = pki::DecodeCsr(std::vector<unsigned char>(pem.begin(), pem.end()));
  auto facts = pki::InspectCsr(from_pem.get());
  ASSERT_EQ(facts.subject.size(), 1u);
  EXPECT_EQ(facts.subject[0].first, "CN");
  EXPECT_EQ(facts.subject[0].second, "kubemaster-9");
  EXPECT_TRUE(facts.signature_valid);
  EXPECT_FALSE(facts.requests_extensions);
  EXPECT_EQ(facts.other_attributes, 0);
  EXPECT_TRUE(pki::SamePublicKey(facts.public_key.get(), key.get()));
  EXPECT_TRUE(pki::InspectCsr(from_der.get()).signature_valid);

  auto trailing = der;
  trailing.push_back(0);
  EXPECT_EQ(Reason([&] { pki::DecodeCsr(trailing); }), "not-a-csr");
  auto truncated = std::vector<unsigned char>(der.begin(), der.end() - 1);
  EXPECT_EQ(Reason([&] { pki::DecodeCsr(truncated); }), "not-a-csr");
  Ca ca("CN=x");
  std::string cert = pki::ToPem(ca.cert.get());
  EXPECT_EQ(Reason([&] { pki::DecodeCsr(std::vector<unsigned char>(cert.begin(), cert.end())); }), "not-a-csr");
  std::string two = pem + pem;
  EXPECT_EQ(Reason([&] { pki::DecodeCsr(std::vector<unsigned char>(two.begin(), two.end())); }), "not-a-csr");
  // Non-canonical DER: a long-form length where the short form fits.
  std::vector<unsigned char> ber = der;
  ASSERT_EQ(ber[0], 0x30);
  ASSERT_TRUE(ber[1] == 0x81 || ber[1] == 0x82) << int(ber[1]);
  std::size_t length_bytes = ber[1] & 0x7f;
  std::vector<unsigned char> longer(ber.size() + 1);
  longer[0] = 0x30;
  longer[1] = static_cast<unsigned char>(0x80 | (length_bytes + 1));
  longer[2] = 0x00;  // a leading zero length byte: valid BER, never DER
  std::copy(ber.begin() + 2, ber.end(), longer.begin() + 3);
  EXPECT_EQ(Reason([&] { pki::DecodeCsr(longer); }), "not-a-csr");
}

TEST(VerifyIssued, AcceptsTheRightCertificateAndNamesEachFailure) {
  Ca ca("CN=etcd-ca");
  Ca rogue("CN=etcd-ca");
  pki::EvpPkeyPtr ours(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  pki::EvpPkeyPtr theirs(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  pki::IssuedCertificateExpectations want;
  want.public_key = ours.get();
  want.common_name = "kubemaster-1";
  want.trust_anchors = {ca.cert.get()};
  want.now = now;
  want.skew_tolerance = 300s;
  EXPECT_TRUE(pki::VerifyIssuedCertificate(ca.Issue("kubemaster-1", ours.get(), now - 5min, now + 1h), want));
  // Issued slightly in our future (signer clock ahead), within tolerance.
  EXPECT_TRUE(pki::VerifyIssuedCertificate(ca.Issue("kubemaster-1", ours.get(), now + 2min, now + 1h), want));
  struct Case {
    const char* what;
    std::string pem;
    const char* reason;
  };
  std::vector<Case> cases{
      {"wrong key", ca.Issue("kubemaster-1", theirs.get(), now - 5min, now + 1h), "cert-wrong-key"},
      {"wrong name", ca.Issue("kubemaster-2", ours.get(), now - 5min, now + 1h), "cert-wrong-name"},
      {"wrong CA", rogue.Issue("kubemaster-1", ours.get(), now - 5min, now + 1h), "cert-untrusted"},
      {"expired", ca.Issue("kubemaster-1", ours.get(), now - 2h, now - 1h), "cert-expired"},
      {"future beyond skew", ca.Issue("kubemaster-1", ours.get(), now + 10min, now + 2h), "cert-not-yet-valid"},
      {"no clientAuth", ca.Issue("kubemaster-1", ours.get(), now - 5min, now + 1h, false), "cert-profile"},
      {"garbage", "hello", "cert-profile"},
      {"two certificates", ca.Issue("kubemaster-1", ours.get(), now - 5min, now + 1h) +
                               ca.Issue("kubemaster-1", ours.get(), now - 5min, now + 1h), "cert-profile"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(Reason([&] { pki::VerifyIssuedCertificate(c.pem, want); }), c.reason) << c.what;
  }
}

// A hostile signer holding the real CA key (#11): everything the profile does not say is refused,
// naming the first difference; the stored certificate would otherwise grant more than our name.
TEST(VerifyIssued, AcceptsOnlyTheProfileFromAHostileSignerWithTheRealCaKey) {
  Ca ca("CN=etcd-ca");
  pki::EvpPkeyPtr ours(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  pki::IssuedCertificateExpectations want;
  want.public_key = ours.get();
  want.common_name = "kubemaster-1";
  want.trust_anchors = {ca.cert.get()};
  want.now = now;
  auto forge = [&](const std::function<void(X509*)>& mutate, const EVP_MD* md = EVP_sha256()) {
    return ca.Forge("kubemaster-1", ours.get(), now - 5min, now + 1h, mutate, md);
  };
  auto replace_ext = [](X509* c, int nid, const char* value) {
    X509_EXTENSION_free(X509_delete_ext(c, X509_get_ext_by_NID(c, nid, -1)));
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, nullptr, c, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    X509_add_ext(c, ext, -1);
    X509_EXTENSION_free(ext);
  };
  auto add_ext = [](X509* c, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, nullptr, c, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    X509_add_ext(c, ext, -1);
    X509_EXTENSION_free(ext);
  };
  std::string good = forge([](X509*) {});
  EXPECT_TRUE(pki::VerifyIssuedCertificate(good, want));
  EXPECT_TRUE(pki::VerifyIssuedCertificate(good.substr(0, good.size() - 1), want));  // no final newline
  // Extension order carries no meaning (RFC 5280): moving SKI to the end is accepted.
  EXPECT_TRUE(pki::VerifyIssuedCertificate(forge([](X509* c) {
    X509_EXTENSION* ski = X509_delete_ext(c, X509_get_ext_by_NID(c, NID_subject_key_identifier, -1));
    X509_add_ext(c, ski, -1);
    X509_EXTENSION_free(ski);
  }), want));
  struct Case {
    const char* what;
    std::string pem;
    const char* message;  // part of the one-line reason
  };
  std::vector<Case> cases{
      {"CN=kubemaster-1, CN=kubemaster-2 (Go authenticates the last CN)", forge([](X509* c) {
         X509_NAME* n = X509_get_subject_name(c);
         X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
                                    reinterpret_cast<const unsigned char*>("kubemaster-2"), -1, -1, 0);
       }), "the subject has 2 attributes"},
      {"a second attribute of another type", forge([](X509* c) {
         X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "O", MBSTRING_UTF8,
                                    reinterpret_cast<const unsigned char*>("system:masters"), -1, -1, 0);
       }), "the subject has 2 attributes"},
      {"CA:TRUE with keyCertSign", forge([&](X509* c) {
         replace_ext(c, NID_basic_constraints, "critical,CA:TRUE");
         replace_ext(c, NID_key_usage, "critical,digitalSignature,keyCertSign");
       }), "basicConstraints is not CA:FALSE"},
      {"keyCertSign alone", forge([&](X509* c) {
         replace_ext(c, NID_key_usage, "critical,digitalSignature,keyCertSign");
       }), "keyUsage is not exactly"},
      {"CA:TRUE alone", forge([&](X509* c) { replace_ext(c, NID_basic_constraints, "critical,CA:TRUE"); }),
       "basicConstraints is not CA:FALSE"},
      {"CA:FALSE with a path length", forge([&](X509* c) {
         replace_ext(c, NID_basic_constraints, "critical,CA:FALSE,pathlen:0");
       }), "basicConstraints is not CA:FALSE"},
      {"basicConstraints not critical", forge([&](X509* c) { replace_ext(c, NID_basic_constraints, "CA:FALSE"); }),
       "basicConstraints is not critical"},
      {"text before the PEM block", "hello\n" + good, "does not start with a PEM certificate header"},
      {"text after the PEM block", good + "trailing\n", "bytes after the certificate"},
      {"two newlines after", good + "\n", "bytes after the certificate"},
      {"a PEM header line", "-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n" + good.substr(28),
       "headers or characters outside base64"},
      {"a duplicate extendedKeyUsage", forge([&](X509* c) { add_ext(c, NID_ext_key_usage, "clientAuth"); }),
       "appears twice"},
      {"a subjectAltName", forge([&](X509* c) { add_ext(c, NID_subject_alt_name, "DNS:kubemaster-2"); }),
       "subjectAltName"},
      {"serverAuth next to clientAuth", forge([&](X509* c) {
         replace_ext(c, NID_ext_key_usage, "clientAuth,serverAuth");
       }), "extendedKeyUsage is not exactly clientAuth"},
      {"keyEncipherment on an EC key", forge([&](X509* c) {
         replace_ext(c, NID_key_usage, "critical,digitalSignature,keyEncipherment");
       }), "keyUsage is not exactly"},
      {"a negative serial", forge([](X509* c) {
         pki::BignumPtr bn(BN_new());
         BN_set_word(bn.get(), 12345);
         BN_set_negative(bn.get(), 1);
         pki::Asn1IntegerPtr i(BN_to_ASN1_INTEGER(bn.get(), nullptr));
         X509_set_serialNumber(c, i.get());
       }), "serial number"},
      {"validity longer than the CA's", ca.Forge("kubemaster-1", ours.get(), now - 5min, now + 48h, [](X509*) {}),
       "outside the issuing CA's"},
      {"a version 1 certificate", forge([](X509* c) {
         while (X509_get_ext_count(c) > 0) X509_EXTENSION_free(X509_delete_ext(c, 0));
         X509_set_version(c, X509_VERSION_1);
       }), "not version 3"},
      {"SHA-1", forge([](X509*) {}, EVP_sha1()), "signature algorithm is"},
      {"AKI with issuer and serial", forge([&](X509* c) {
         X509_EXTENSION_free(X509_delete_ext(c, X509_get_ext_by_NID(c, NID_authority_key_identifier, -1)));
         X509V3_CTX ctx;
         X509V3_set_ctx_nodb(&ctx);
         X509V3_set_ctx(&ctx, ca.cert.get(), c, nullptr, nullptr, 0);
         X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_authority_key_identifier,
                                                   "keyid:always,issuer:always");
         X509_add_ext(c, ext, -1);
         X509_EXTENSION_free(ext);
       }), "authorityKeyIdentifier"},
      {"our key as a compressed point", forge([&](X509* c) {
         pki::EvpPkeyPtr compressed(EVP_PKEY_dup(ours.get()));
         EVP_PKEY_set_utf8_string_param(compressed.get(), "point-format", "compressed");
         X509_set_pubkey(c, compressed.get());
       }), "not canonically encoded"},
      {"an empty answer", "", "is empty"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    try {
      pki::VerifyIssuedCertificate(c.pem, want);
      ADD_FAILURE() << "accepted";
    } catch (const base::Failure& f) {
      EXPECT_EQ(f.reason(), "cert-profile") << f.what();
      EXPECT_NE(std::string(f.what()).find(c.message), std::string::npos) << f.what();
      EXPECT_EQ(f.code(), base::ExitCode::kDataErr);
    }
  }
  // Inner and outer signature algorithms differ.
  std::string mismatched = forge([](X509*) {});
  {
    pki::BioPtr bio(BIO_new_mem_buf(mismatched.data(), static_cast<int>(mismatched.size())));
    pki::X509Ptr c(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    const X509_ALGOR* outer = nullptr;
    X509_get0_signature(nullptr, &outer, c.get());
    X509_ALGOR_set0(const_cast<X509_ALGOR*>(outer), OBJ_nid2obj(NID_ecdsa_with_SHA384), V_ASN1_UNDEF, nullptr);
    mismatched = pki::ToPem(c.get());
  }
  try {
    pki::VerifyIssuedCertificate(mismatched, want);
    ADD_FAILURE() << "accepted a signature algorithm mismatch";
  } catch (const base::Failure& f) {
    EXPECT_NE(std::string(f.what()).find("differs from the one outside"), std::string::npos) << f.what();
  }
}

TEST(CanonicalKey, CompressedAndExplicitEncodingsBecomeNamedCurveUncompressed) {
  pki::EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
  pki::EvpPkeyPtr odd(EVP_PKEY_dup(key.get()));
  ASSERT_EQ(EVP_PKEY_set_utf8_string_param(odd.get(), "point-format", "compressed"), 1);
  ASSERT_NE(pki::PublicKeyToDer(odd.get()), pki::PublicKeyToDer(key.get()));
  pki::EvpPkeyPtr canonical = pki::CanonicalPublicKey(odd.get());
  EXPECT_EQ(pki::PublicKeyToDer(canonical.get()), pki::PublicKeyToDer(key.get()));
  ASSERT_EQ(EVP_PKEY_set_utf8_string_param(odd.get(), "encoding", "explicit"), 1);
  EXPECT_TRUE(pki::DescribeKey(odd.get()).ec_explicit_parameters);
  EXPECT_FALSE(pki::DescribeKey(key.get()).ec_explicit_parameters);
  EXPECT_EQ(pki::PublicKeyToDer(pki::CanonicalPublicKey(odd.get()).get()), pki::PublicKeyToDer(key.get()));
  pki::EvpPkeyPtr rsa(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)));
  EXPECT_EQ(pki::PublicKeyToDer(pki::CanonicalPublicKey(rsa.get()).get()), pki::PublicKeyToDer(rsa.get()));
}

// #24: the key's fingerprint is SHA-256 over its canonical SubjectPublicKeyInfo, which is what
// `openssl pkey -pubout -outform DER | sha256sum` prints for the key as openssl writes it; the
// same key in a compressed-point encoding has the same canonical bytes and fingerprint.
TEST(CanonicalKey, FingerprintIsOpensslsPubkeyDerSha256ForEveryEncoding) {
  testing_support::TempDir dir;
  pki::EvpPkeyPtr ec(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  pki::EvpPkeyPtr rsa(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)));
  for (EVP_PKEY* key : {ec.get(), rsa.get()}) {
    pki::BioPtr bio(BIO_new(BIO_s_mem()));
    ASSERT_EQ(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr), 1);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    testing_support::WriteFile(dir / "key.pem", std::string(data, static_cast<std::size_t>(len)), 0600);
    auto der = testing_support::OpenSsl({"pkey", "-in", dir / "key.pem", "-pubout", "-outform", "DER"});
    ASSERT_EQ(der.exit_code, 0) << der.err;
    auto sum = testing_support::Run({"/bin/sh", "-c", "openssl pkey -in '" + (dir / "key.pem") +
                                                     "' -pubout -outform DER | sha256sum"});
    ASSERT_EQ(sum.exit_code, 0) << sum.err;
    pki::CanonicalKey canonical = pki::CanonicalizeKey(key);
    EXPECT_EQ(std::string(canonical.spki_der.begin(), canonical.spki_der.end()), der.out);
    EXPECT_EQ(canonical.sha256, sum.out.substr(0, 64));
    EXPECT_EQ(pki::PublicKeySha256(key), canonical.sha256);
  }
  // The same EC key, its point compressed: other bytes as sent, the same identity.
  pki::EvpPkeyPtr compressed(EVP_PKEY_dup(ec.get()));
  ASSERT_EQ(EVP_PKEY_set_utf8_string_param(compressed.get(), "point-format", "compressed"), 1);
  ASSERT_EQ(pki::PublicKeyToDer(compressed.get()).size(), 59u);  // 33-byte point: compressed
  EXPECT_EQ(pki::CanonicalizeKey(compressed.get()).spki_der, pki::CanonicalizeKey(ec.get()).spki_der);
  EXPECT_EQ(pki::PublicKeySha256(compressed.get()), pki::PublicKeySha256(ec.get()));
  EXPECT_EQ(pki::CanonicalizeKey(compressed.get()).spki_der.size(), 91u);
}

TEST(Subject, ParsesBothNotationsAndRefusesJunk) {
  EXPECT_EQ(pki::NameToString(pki::ParseSubject("CN=etcd-ca,O=Example").get()), "O=Example,CN=etcd-ca");
  EXPECT_EQ(pki::NameToString(pki::ParseSubject("/CN=etcd-ca/O=Example").get()), "O=Example,CN=etcd-ca");
  for (const char* bad : {"", "CN", "=x", "CN=", "XX=y", "CN=a,,O=b"}) {
    EXPECT_EQ(Reason([&] { pki::ParseSubject(bad); }), "bad-subject") << bad;
  }
}


// #26: the member profiles, defined next to etcd-client and checked by the same function.
namespace member_profiles {

pki::X509Ptr BuildMember(Ca& ca, pki::LeafProfile profile, EVP_PKEY* key, const pki::SubjectAltNames& names,
                         const std::function<void(X509*)>& mutate = nullptr) {
  auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  pki::LeafCertificateFields f{"etcd-1", key, pki::RandomSerial(), now - 5min, now + 1h};
  f.profile = profile;
  f.names = names;
  pki::X509Ptr c = pki::BuildLeafCertificate(f, ca.cert.get());
  if (mutate) mutate(c.get());
  if (X509_sign(c.get(), ca.key.get(), EVP_sha256()) <= 0) throw std::runtime_error("sign");
  // As every reader sees it: parsed from its PEM.
  std::string pem = pki::ToPem(c.get());
  return std::move(pki::ParseCertificateAnswer(pem).front());
}

void ReplaceExtension(X509* c, int nid, const char* value) {
  int at = X509_get_ext_by_NID(c, nid, -1);
  if (at >= 0) X509_EXTENSION_free(X509_delete_ext(c, at));
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, nullptr, c, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  X509_add_ext(c, ext, -1);
  X509_EXTENSION_free(ext);
}

TEST(MemberProfiles, NamesAndPredicates) {
  for (auto p : {pki::LeafProfile::kClient, pki::LeafProfile::kServer, pki::LeafProfile::kPeer}) {
    EXPECT_EQ(pki::ParseProfile(pki::ProfileName(p)), p);
  }
  EXPECT_FALSE(pki::ParseProfile("etcd-admin"));
  EXPECT_FALSE(pki::ParseProfile("ETCD-SERVER"));
  EXPECT_FALSE(pki::IsMemberProfile(pki::LeafProfile::kClient));
  EXPECT_TRUE(pki::IsMemberProfile(pki::LeafProfile::kPeer));
  for (const char* ok : {"etcd-1", "localhost", "etcd-1.cluster.example", "a", "1.example"}) EXPECT_TRUE(pki::IsDnsName(ok)) << ok;
  for (const char* bad : {"", "Etcd-1", "*.example", "-etcd", "etcd-", "a..b", "a.", "a b", "a,DNS:evil", "a_b"}) {
    EXPECT_FALSE(pki::IsDnsName(bad)) << bad;
  }
  EXPECT_FALSE(pki::IsDnsName(std::string(64, 'a')));
  for (const char* ok : {"127.0.0.1", "::1", "fd00::1", "10.0.0.7"}) EXPECT_TRUE(pki::IsIpAddress(ok)) << ok;
  for (const char* bad : {"", "127.0.0.256", "localhost", "1.2.3", "::g", "127.0.0.1,IP:10.0.0.1"}) {
    EXPECT_FALSE(pki::IsIpAddress(bad)) << bad;
  }
}

TEST(MemberProfiles, ServerAndPeerCarryExactlyTheConfiguredNamesAndBothUsages) {
  Ca ca("CN=etcd-ca");
  pki::EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  pki::SubjectAltNames names{{"etcd-1", "localhost"}, {"127.0.0.1", "::1"}};
  for (auto profile : {pki::LeafProfile::kServer, pki::LeafProfile::kPeer}) {
    pki::X509Ptr cert = BuildMember(ca, profile, key.get(), names);
    pki::LeafProfileExpectations signer{"etcd-1", key.get(), ca.cert.get()};
    signer.profile = profile;
    signer.names = names;
    EXPECT_EQ(pki::LeafProfileDifference(cert.get(), signer), "") << pki::ProfileName(profile);
    pki::LeafProfileExpectations requester{"etcd-1", key.get(), ca.cert.get()};
    requester.profile = profile;
    EXPECT_EQ(pki::LeafProfileDifference(cert.get(), requester), "");
    EXPECT_EQ(pki::CarriedSubjectAltNames(cert.get()), names);
    // The same certificate is not a client's, and the signer's exact names are checked.
    pki::LeafProfileExpectations client{"etcd-1", key.get(), ca.cert.get()};
    EXPECT_NE(pki::LeafProfileDifference(cert.get(), client).find("carries the extension subjectAltName"),
              std::string::npos)
        << pki::LeafProfileDifference(cert.get(), client);
    pki::LeafProfileExpectations other = signer;
    other.names = pki::SubjectAltNames{{"etcd-2"}, {"127.0.0.1"}};
    EXPECT_NE(pki::LeafProfileDifference(cert.get(), other).find("subjectAltName is DNS:etcd-1,DNS:localhost"),
              std::string::npos)
        << pki::LeafProfileDifference(cert.get(), other);
  }
  // A member certificate always names its member: the builder refuses one without names.
  pki::LeafCertificateFields empty{"etcd-1", key.get(), pki::RandomSerial(), std::chrono::system_clock::now(),
                                   std::chrono::system_clock::now() + 1h};
  empty.profile = pki::LeafProfile::kServer;
  EXPECT_EQ(Reason([&] { pki::BuildLeafCertificate(empty, ca.cert.get()); }), "internal");
}

TEST(MemberProfiles, WhatAHostileSignerMightChangeIsRefused) {
  Ca ca("CN=etcd-ca");
  pki::EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  pki::SubjectAltNames names{{"etcd-1"}, {"127.0.0.1"}};
  pki::LeafProfileExpectations want{"etcd-1", key.get(), ca.cert.get()};
  want.profile = pki::LeafProfile::kServer;
  struct Case {
    const char* what;
    std::function<void(X509*)> mutate;
    const char* message;
  };
  std::vector<Case> cases{
      {"no subjectAltName", [](X509* c) { X509_EXTENSION_free(X509_delete_ext(c, X509_get_ext_by_NID(c, NID_subject_alt_name, -1))); },
       "subjectAltName is missing"},
      {"a URI next to the names", [](X509* c) { ReplaceExtension(c, NID_subject_alt_name, "DNS:etcd-1,URI:spiffe://x/y"); },
       "other than DNS names and IP addresses"},
      {"an email", [](X509* c) { ReplaceExtension(c, NID_subject_alt_name, "DNS:etcd-1,email:a@b.example"); },
       "other than DNS names and IP addresses"},
      {"a wildcard", [](X509* c) { ReplaceExtension(c, NID_subject_alt_name, "DNS:*.example"); }, "not a DNS name"},
      {"clientAuth only", [](X509* c) { ReplaceExtension(c, NID_ext_key_usage, "clientAuth"); },
       "extendedKeyUsage is not exactly serverAuth, clientAuth"},
      {"codeSigning too", [](X509* c) { ReplaceExtension(c, NID_ext_key_usage, "serverAuth,clientAuth,codeSigning"); },
       "extendedKeyUsage is not exactly"},
      {"a critical subjectAltName", [](X509* c) { ReplaceExtension(c, NID_subject_alt_name, "critical,DNS:etcd-1"); },
       "subjectAltName is critical"},
  };
  for (const Case& c : cases) {
    pki::X509Ptr cert = BuildMember(ca, pki::LeafProfile::kServer, key.get(), names, c.mutate);
    std::string diff = pki::LeafProfileDifference(cert.get(), want);
    EXPECT_NE(diff.find(c.message), std::string::npos) << c.what << ": " << diff;
  }
}

TEST(MemberProfiles, TheRequesterAcceptsOnlyTheProfileItAskedForAndChainsForServerUse) {
  Ca root("CN=etcd-root");
  pki::EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  pki::IssuedCertificateExpectations want;
  want.public_key = key.get();
  want.common_name = "etcd-1";
  want.trust_anchors = {root.cert.get()};
  want.now = now;
  want.profile = pki::LeafProfile::kPeer;
  pki::X509Ptr peer = BuildMember(root, pki::LeafProfile::kPeer, key.get(), {{"etcd-1"}, {}});
  EXPECT_TRUE(pki::VerifyIssuedCertificate(pki::ToPem(peer.get()), want));
  // A client certificate for the member's name and key is not what a peer asked for.
  std::string client = root.Forge("etcd-1", key.get(), now - 5min, now + 1h, [](X509*) {});
  EXPECT_EQ(Reason([&] { pki::VerifyIssuedCertificate(client, want); }), "cert-profile");
  // An intermediate whose usages exclude serverAuth cannot stand above a member's certificate.
  pki::EvpPkeyPtr mid_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  pki::IntermediateCertificateFields mf{X509_get_subject_name(root.cert.get()), mid_key.get(), pki::RandomSerial(),
                                        now - 1h, now + 12h};
  pki::X509NamePtr mid_name = pki::ParseSubject("CN=etcd-ca signer-a");
  mf.subject = mid_name.get();
  pki::X509Ptr mid = pki::BuildIntermediateCertificate(mf, root.cert.get());
  EXPECT_EQ(pki::ChainCaProfileDifference(mid.get(), pki::LeafProfile::kServer), "");  // serverAuth, clientAuth
  ReplaceExtension(mid.get(), NID_ext_key_usage, "clientAuth");
  EXPECT_EQ(pki::ChainCaProfileDifference(mid.get(), pki::LeafProfile::kClient), "");
  EXPECT_NE(pki::ChainCaProfileDifference(mid.get(), pki::LeafProfile::kServer).find("excludes serverAuth"),
            std::string::npos);
}

}  // namespace member_profiles

}  // namespace
