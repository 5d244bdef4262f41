// SPDX-License-Identifier: Apache-2.0
// The extensionRequest and attribute rule (#16): what certmonger sends is accepted and ignored,
// everything else stays refused with the same reasons. CSRs are built with OpenSSL here, plus two
// verbatim CSRs made by certmonger 0.79.17 (Debian 12).
#include <gtest/gtest.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstring>

#include "base/failure.h"
#include "pki/csr.h"
#include "pki/verify.h"
#include "signer/policy.h"

namespace {

using base::ExitCode;
using base::Failure;

// `getcert request -N CN=kubemaster-ec -G EC -g 256`: friendlyName + {critical CA:FALSE, SKI}.
constexpr const char* kCertmongerEc = R"(-----BEGIN CERTIFICATE REQUEST-----
MIIBPTCB5QIBADAYMRYwFAYDVQQDEw1rdWJlbWFzdGVyLWVjMFkwEwYHKoZIzj0C
AQYIKoZIzj0DAQcDQgAEXAT2nEUed1c6PSfUqRZtErlyr15Z6dcy62gEcJOGV2S5
sduDLjB6vYFwpQutTo29XlpmQB4Uc92K7UlH61yl4aBrMCsGCSqGSIb3DQEJFDEe
HhwAMgAwADIANgAxADEAMgA3ADIAMQA0ADAAMAA3MDwGCSqGSIb3DQEJDjEvMC0w
DAYDVR0TAQH/BAIwADAdBgNVHQ4EFgQUhaMq+aZjtnUI/Ibx+omXULuk3kcwCgYI
KoZIzj0EAwIDRwAwRAIgO6F1quvxifGfm6Kw1JpYgmlTQi+zi+0Ee511vMd5JfsC
IAz2lDAuSOBEby7vcxLJxePupSivIHx27VAzQpADzMs+
-----END CERTIFICATE REQUEST-----
)";

// `getcert request -N CN=kubemaster-ku -u digitalSignature -u keyEncipherment -U id-kp-clientAuth`
// (RSA 2048, certmonger's default key): keyUsage, extKeyUsage, CA:FALSE, SKI.
constexpr const char* kCertmongerRsaWithUsages = R"(-----BEGIN CERTIFICATE REQUEST-----
MIIC6zCCAdMCAQAwGDEWMBQGA1UEAxMNa3ViZW1hc3Rlci1rdTCCASIwDQYJKoZI
hvcNAQEBBQADggEPADCCAQoCggEBAJ1dU49q4WjHNdB/3TgzM8w0szDDaBgfbiHQ
8vs37AtHwZerqz5HVyFlorUCkZdCIodYmWdwf6NAfnEV2BZwl1g7RUX335Td3SCz
QFvdJGH1+SQ27g6+EtKHQKrwi2K08dfZjhHx5oYTgI3gu6u+JUnef4qOv60oBcrV
2yVZe1rahoe07n59EWZ0xArh6m4efvVcgGtf/b2QduL7xi+Lt1fwiDoBiRSqX0VF
jZvybs84VvTV+Wm4uHyjRfu5Y/qtcB3LAGyzcwpMaR0cnHaJxEaftbpuj6AB8s/n
s2UXM0bYXVfIeiCCJlLwx2nDNpmOo3HFmPPLrch0VXQRIt/B6AUCAwEAAaCBjTAr
BgkqhkiG9w0BCRQxHh4cADIAMAAyADYAMQAxADIANwAyADEANAAwADAAODBeBgkq
hkiG9w0BCQ4xUTBPMAsGA1UdDwQEAwIFoDATBgNVHSUEDDAKBggrBgEFBQcDAjAM
BgNVHRMBAf8EAjAAMB0GA1UdDgQWBBT6S1RKy9CfZXS1BT0tvwnIu/ExeTANBgkq
hkiG9w0BAQsFAAOCAQEAPrqRuUEHu2cSOLmw9sImRckMZzuN5EcEFw+6GaZo0ay6
f5PomazE7E234oFQUKqJJHJnxkAn+viVYTic/ytl0OSZpymrkxdRxmKf+JVz/kSp
/zhNXZNjOIY4JI4WDDOT149expPbOPu0pOgJ6i0tEQX3dDpyvxkAGljLoVJkFC0l
ri1hpcBnGJt0anUGtDXDEUtM5n+XdeYIJhM+pASDEY/Jfiwyh0L1sPP/YUa4t5Ju
FkJ9roARPYemteWyOwTlbjtD8XceoMt78KGx/kYdDdUh3tiV4+Duesu2Keu4zkMs
HSWVs0UxP5EfslBfkp2JHcqNKHip2JqpRhM0aIOjiw==
-----END CERTIFICATE REQUEST-----
)";

pki::X509ReqPtr FromPem(const char* pem) {
  std::vector<unsigned char> bytes(pem, pem + std::strlen(pem));
  return pki::DecodeCsr(bytes);
}

std::pair<ExitCode, std::string> Judge(X509_REQ* req, std::string* message = nullptr) {
  signer::SignerConfig config;
  signer::RequestFacts facts;
  try {
    signer::ApplyPolicy(req, std::nullopt, config, facts);
  } catch (const Failure& f) {
    if (message) *message = f.what();
    return {f.code(), f.reason()};
  }
  return {ExitCode::kOk, ""};
}

X509_EXTENSION* Conf(int nid, const char* value) {
  X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, nullptr, nid, value);
  EXPECT_NE(e, nullptr) << value;
  return e;
}

// An extension whose value is exactly `der` (to write encodings OpenSSL's config syntax cannot).
X509_EXTENSION* Raw(int nid, bool critical, std::vector<unsigned char> der) {
  ASN1_OCTET_STRING* value = ASN1_OCTET_STRING_new();
  ASN1_OCTET_STRING_set(value, der.data(), static_cast<int>(der.size()));
  X509_EXTENSION* e = X509_EXTENSION_create_by_NID(nullptr, nid, critical ? 1 : 0, value);
  ASN1_OCTET_STRING_free(value);
  return e;
}

X509_EXTENSION* UnknownOid() {
  ASN1_OBJECT* oid = OBJ_txt2obj("1.3.6.1.4.1.99999.1", 1);
  ASN1_OCTET_STRING* value = ASN1_OCTET_STRING_new();
  const unsigned char null_der[] = {0x05, 0x00};
  ASN1_OCTET_STRING_set(value, null_der, 2);
  X509_EXTENSION* e = X509_EXTENSION_create_by_OBJ(nullptr, oid, 0, value);
  ASN1_OCTET_STRING_free(value);
  ASN1_OBJECT_free(oid);
  return e;
}

struct Attribute {
  int nid;
  int type;  // V_ASN1_* or MBSTRING_*
  std::string bytes;
};

const Attribute kFriendlyName{NID_friendlyName, V_ASN1_BMPSTRING,
                              std::string("\0k\0m\0-\0\x31", 8)};

// CN=kubemaster-1, a fresh P-256 key, one extensionRequest per entry of `requests` (none when
// empty), then `attributes`; signed, then sent through the strict decoder as the signer would.
// OpenSSL 3 refuses to add an attribute twice, so a duplicate is made by adding a
// challengePassword (1.2.840.113549.1.9.7) and renaming it in the DER to 1.2.840.113549.1.9.<
// rename_challenge_password_to> (friendlyName 20, extensionRequest 14: the same length), then
// signing again.
pki::X509ReqPtr Csr(const std::vector<std::vector<X509_EXTENSION*>>& requests,
                    const std::vector<Attribute>& attributes = {},
                    int rename_challenge_password_to = 0) {
  pki::EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  pki::X509ReqPtr req(X509_REQ_new());
  X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req.get()), "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("kubemaster-1"), -1, -1, 0);
  X509_REQ_set_pubkey(req.get(), key.get());
  for (const auto& extensions : requests) {
    STACK_OF(X509_EXTENSION)* stack = sk_X509_EXTENSION_new_null();
    for (X509_EXTENSION* e : extensions) sk_X509_EXTENSION_push(stack, e);
    // Appends a new extensionRequest attribute each time (duplicates are possible on purpose).
    EXPECT_EQ(X509_REQ_add_extensions(req.get(), stack), 1);
    sk_X509_EXTENSION_pop_free(stack, X509_EXTENSION_free);
  }
  for (const Attribute& a : attributes) {
    EXPECT_EQ(X509_REQ_add1_attr_by_NID(req.get(), a.nid, a.type,
                                        reinterpret_cast<const unsigned char*>(a.bytes.data()),
                                        static_cast<int>(a.bytes.size())),
              1);
  }
  EXPECT_GT(X509_REQ_sign(req.get(), key.get(), EVP_sha256()), 0);
  if (rename_challenge_password_to != 0) {
    std::vector<unsigned char> der = pki::ToDer(req.get());
    const unsigned char oid[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x07};
    auto at = std::search(der.begin(), der.end(), std::begin(oid), std::end(oid));
    EXPECT_NE(at, der.end());
    if (at == der.end()) return req;
    at[sizeof oid - 1] = static_cast<unsigned char>(rename_challenge_password_to);
    const unsigned char* p = der.data();
    req.reset(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));
    EXPECT_GT(X509_REQ_sign(req.get(), key.get(), EVP_sha256()), 0);  // re-encodes, in DER order
  }
  return pki::DecodeCsr(pki::ToDer(req.get()));
}

TEST(CsrExtensions, CertmongersOwnRequestsAreAccepted) {
  for (const char* pem : {kCertmongerEc, kCertmongerRsaWithUsages}) {
    auto req = FromPem(pem);
    pki::CsrFacts facts = pki::InspectCsr(req.get());
    EXPECT_TRUE(facts.requests_extensions);
    EXPECT_TRUE(facts.extension_request_decoded);
    EXPECT_EQ(facts.friendly_names, 1);
    EXPECT_TRUE(facts.friendly_names_well_formed);
    EXPECT_TRUE(facts.unknown_attributes.empty());
    std::string message;
    EXPECT_EQ(Judge(req.get(), &message).first, ExitCode::kOk) << message;
  }
  // What InspectCsr reports, precisely, for the one with usages.
  auto facts = pki::InspectCsr(FromPem(kCertmongerRsaWithUsages).get());
  ASSERT_EQ(facts.requested_extensions.size(), 4u);
  EXPECT_EQ(facts.requested_extensions[0].name, "keyUsage");
  EXPECT_EQ(facts.requested_extensions[0].key_usage_bits, (std::vector<int>{0, 2}));
  EXPECT_EQ(facts.requested_extensions[1].name, "extendedKeyUsage");
  EXPECT_EQ(facts.requested_extensions[1].key_purposes,
            (std::vector<std::string>{"1.3.6.1.5.5.7.3.2"}));
  EXPECT_EQ(facts.requested_extensions[2].name, "basicConstraints");
  EXPECT_TRUE(facts.requested_extensions[2].critical);
  EXPECT_FALSE(facts.requested_extensions[2].ca);
  EXPECT_FALSE(facts.requested_extensions[2].has_path_len);
  EXPECT_EQ(facts.requested_extensions[3].name, "subjectKeyIdentifier");
  EXPECT_TRUE(facts.requested_extensions[3].decoded);
}

TEST(CsrExtensions, AcceptsEachExtensionTheProfileHasAnyway) {
  struct Case {
    const char* what;
    std::vector<std::vector<X509_EXTENSION*>> requests;
    std::vector<Attribute> attributes;
  };
  std::vector<Case> cases;
  cases.push_back({"critical CA:FALSE", {{Conf(NID_basic_constraints, "critical,CA:FALSE")}}, {}});
  cases.push_back({"non-critical CA:FALSE", {{Conf(NID_basic_constraints, "CA:FALSE")}}, {}});
  cases.push_back({"any SKI value", {{Conf(NID_subject_key_identifier, "0102030405")}}, {}});
  cases.push_back(
      {"keyUsage digitalSignature", {{Conf(NID_key_usage, "critical,digitalSignature")}}, {}});
  cases.push_back({"keyUsage keyEncipherment", {{Conf(NID_key_usage, "keyEncipherment")}}, {}});
  cases.push_back(
      {"keyUsage both", {{Conf(NID_key_usage, "digitalSignature,keyEncipherment")}}, {}});
  cases.push_back({"EKU clientAuth", {{Conf(NID_ext_key_usage, "clientAuth")}}, {}});
  cases.push_back({"an empty extensionRequest", {{}}, {}});
  cases.push_back({"friendlyName alone", {}, {kFriendlyName}});
  cases.push_back(
      {"all of it",
       {{Conf(NID_key_usage, "digitalSignature"), Conf(NID_ext_key_usage, "clientAuth"),
         Conf(NID_basic_constraints, "critical,CA:FALSE"), Conf(NID_subject_key_identifier, "ab")}},
       {kFriendlyName}});
  for (auto& c : cases) {
    auto req = Csr(c.requests, c.attributes);
    std::string message;
    EXPECT_EQ(Judge(req.get(), &message), std::make_pair(ExitCode::kOk, std::string()))
        << c.what << ": " << message;
  }
}

TEST(CsrExtensions, RefusesEverythingElseWithTheSameReasons) {
  struct Case {
    const char* what;
    pki::X509ReqPtr req;
    std::string reason;
  };
  std::vector<Case> cases;
  auto ext = [&](const char* what, std::vector<X509_EXTENSION*> extensions) {
    cases.push_back({what, Csr({extensions}), "extensions-requested"});
  };
  ext("SAN", {Conf(NID_subject_alt_name, "DNS:etcd.example")});
  ext("SAN next to certmonger's two",
      {Conf(NID_basic_constraints, "critical,CA:FALSE"), Conf(NID_subject_key_identifier, "01"),
       Conf(NID_subject_alt_name, "DNS:x.example")});
  ext("CA:TRUE", {Conf(NID_basic_constraints, "critical,CA:TRUE")});
  ext("CA:FALSE with a path length", {Conf(NID_basic_constraints, "CA:FALSE,pathlen:0")});
  // DER forbids encoding a DEFAULT value: cA FALSE spelled out is not canonical.
  ext("CA:FALSE spelled out (non-DER)",
      {Raw(NID_basic_constraints, true, {0x30, 0x03, 0x01, 0x01, 0x00})});
  ext("basicConstraints that is not one", {Raw(NID_basic_constraints, true, {0x04, 0x00})});
  ext("SKI that is not an OCTET STRING", {Raw(NID_subject_key_identifier, false, {0x05, 0x00})});
  ext("keyUsage keyCertSign", {Conf(NID_key_usage, "digitalSignature,keyCertSign")});
  ext("keyUsage nonRepudiation", {Conf(NID_key_usage, "nonRepudiation")});
  ext("keyUsage with no bit", {Raw(NID_key_usage, true, {0x03, 0x01, 0x00})});
  ext("EKU serverAuth", {Conf(NID_ext_key_usage, "serverAuth")});
  ext("EKU clientAuth and serverAuth", {Conf(NID_ext_key_usage, "clientAuth,serverAuth")});
  ext("EKU anyExtendedKeyUsage", {Conf(NID_ext_key_usage, "anyExtendedKeyUsage")});
  ext("EKU clientAuth twice", {Conf(NID_ext_key_usage, "clientAuth,clientAuth")});
  ext("nameConstraints", {Conf(NID_name_constraints, "permitted;DNS:example")});
  ext("an unknown extension", {UnknownOid()});
  ext("the same extension twice",
      {Conf(NID_basic_constraints, "CA:FALSE"), Conf(NID_basic_constraints, "CA:FALSE")});
  {
    // The second one's value: a SEQUENCE OF Extension holding a critical CA:FALSE.
    std::string second("\x30\x0e\x30\x0c\x06\x03\x55\x1d\x13\x01\x01\xff\x04\x02\x30\x00", 16);
    cases.push_back({"two extensionRequest attributes",
                     Csr({{Conf(NID_subject_key_identifier, "01")}},
                         {{NID_pkcs9_challengePassword, V_ASN1_SEQUENCE, second}}, 14),
                     "extensions-requested"});
  }
  // An extensionRequest whose value is not a SEQUENCE OF Extension.
  cases.push_back({"extensionRequest holding an OCTET STRING",
                   Csr({}, {{NID_ext_req, V_ASN1_OCTET_STRING, "x"}}), "extensions-requested"});
  cases.push_back(
      {"extensionRequest holding a SEQUENCE of garbage",
       Csr({}, {{NID_ext_req, V_ASN1_SEQUENCE, std::string("\x30\x03\x02\x01\x05", 5)}}),
       "extensions-requested"});
  cases.push_back({"Microsoft's extensionRequest OID",
                   Csr({}, {{NID_ms_ext_req, V_ASN1_SEQUENCE, std::string("\x30\x00", 2)}}),
                   "extensions-requested"});
  cases.push_back({"challengePassword",
                   Csr({}, {{NID_pkcs9_challengePassword, MBSTRING_ASC, "secret"}}),
                   "csr-attributes"});
  cases.push_back({"challengePassword next to friendlyName",
                   Csr({}, {kFriendlyName, {NID_pkcs9_challengePassword, MBSTRING_ASC, "secret"}}),
                   "csr-attributes"});
  cases.push_back(
      {"friendlyName twice",
       Csr({},
           {kFriendlyName, {NID_pkcs9_challengePassword, V_ASN1_BMPSTRING, kFriendlyName.bytes}},
           20),
       "csr-attributes"});
  cases.push_back({"friendlyName that is not a BMPString",
                   Csr({}, {{NID_friendlyName, V_ASN1_UTF8STRING, "km-1"}}), "csr-attributes"});
  cases.push_back({"unstructuredName", Csr({}, {{NID_pkcs9_unstructuredName, MBSTRING_ASC, "x"}}),
                   "csr-attributes"});
  for (auto& c : cases) {
    std::string message;
    auto [code, reason] = Judge(c.req.get(), &message);
    EXPECT_EQ(code, ExitCode::kNoPerm) << c.what << ": " << message;
    EXPECT_EQ(reason, c.reason) << c.what << ": " << message;
  }
}

TEST(CsrExtensions, DuplicatesAreSeenAsDuplicates) {
  auto names =
      Csr({}, {kFriendlyName, {NID_pkcs9_challengePassword, V_ASN1_BMPSTRING, kFriendlyName.bytes}},
          20);
  pki::CsrFacts facts = pki::InspectCsr(names.get());
  EXPECT_EQ(facts.friendly_names, 2);
  EXPECT_TRUE(facts.unknown_attributes.empty());
  std::string message;
  Judge(names.get(), &message);
  EXPECT_NE(message.find("friendlyName attribute must appear at most once"), std::string::npos)
      << message;

  std::string second("\x30\x0e\x30\x0c\x06\x03\x55\x1d\x13\x01\x01\xff\x04\x02\x30\x00", 16);
  auto requests = Csr({{Conf(NID_subject_key_identifier, "01")}},
                      {{NID_pkcs9_challengePassword, V_ASN1_SEQUENCE, second}}, 14);
  facts = pki::InspectCsr(requests.get());
  EXPECT_EQ(facts.extension_requests, 2);
  EXPECT_FALSE(facts.extension_request_decoded);
  Judge(requests.get(), &message);
  EXPECT_NE(message.find("more than one extensionRequest"), std::string::npos) << message;
}

TEST(CsrExtensions, TheRefusalNamesWhatWasAskedFor) {
  std::string message;
  Judge(Csr({{Conf(NID_subject_alt_name, "DNS:etcd.example")}}).get(), &message);
  EXPECT_NE(message.find("'subjectAltName'"), std::string::npos) << message;
  Judge(Csr({{Conf(NID_basic_constraints, "critical,CA:TRUE")}}).get(), &message);
  EXPECT_NE(message.find("'basicConstraints' with a value"), std::string::npos) << message;
  Judge(Csr({}, {{NID_pkcs9_challengePassword, MBSTRING_ASC, "secret"}}).get(), &message);
  EXPECT_NE(message.find("[challengePassword]"), std::string::npos) << message;
  EXPECT_EQ(message.find("secret"), std::string::npos)
      << "the password must not be echoed: " << message;
}

// Nothing requested reaches the certificate: InspectCsr's facts are only judged, and ApplyPolicy's
// approval carries the name, the key and the lifetime alone.
TEST(CsrExtensions, AnAcceptedRequestStillYieldsOnlyNameKeyAndLifetime) {
  signer::SignerConfig config;
  signer::RequestFacts facts;
  auto req = FromPem(kCertmongerRsaWithUsages);
  signer::Approval approval = signer::ApplyPolicy(req.get(), std::nullopt, config, facts);
  EXPECT_EQ(approval.common_name, "kubemaster-ku");
  EXPECT_EQ(approval.lifetime, config.lifetime_default);
  ASSERT_TRUE(approval.public_key);
  pki::EvpPkeyPtr csr_key(X509_REQ_get_pubkey(req.get()));
  EXPECT_EQ(EVP_PKEY_eq(approval.public_key.get(), csr_key.get()), 1);
}

}  // namespace
