#include <gtest/gtest.h>

#include "base/failure.h"
#include "pki/base64.h"
#include "pki/certificate_profile.h"
#include "pki/csr.h"
#include "pki/verify.h"

namespace {

using namespace std::chrono_literals;

std::string Reason(const std::function<void()>& f) {
  try {
    f();
  } catch (const base::Failure& e) {
    return e.reason();
  }
  return "";
}

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
    pki::ClientCertificateFields f{cn, subject, pki::RandomSerial(), nb, na};
    pki::X509Ptr c = pki::BuildClientCertificate(f, cert.get());
    if (!client_auth) X509_EXTENSION_free(X509_delete_ext(c.get(), X509_get_ext_by_NID(c.get(), NID_ext_key_usage, -1)));
    pki::SignCertificate(c.get(), key.get());
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
      {"no clientAuth", ca.Issue("kubemaster-1", ours.get(), now - 5min, now + 1h, false), "cert-no-client-auth"},
      {"garbage", "hello", "cert-unparsable"},
      {"two certificates", ca.Issue("kubemaster-1", ours.get(), now - 5min, now + 1h) +
                               ca.Issue("kubemaster-1", ours.get(), now - 5min, now + 1h), "cert-unparsable"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(Reason([&] { pki::VerifyIssuedCertificate(c.pem, want); }), c.reason) << c.what;
  }
}

TEST(Subject, ParsesBothNotationsAndRefusesJunk) {
  EXPECT_EQ(pki::NameToString(pki::ParseSubject("CN=etcd-ca,O=Example").get()), "O=Example,CN=etcd-ca");
  EXPECT_EQ(pki::NameToString(pki::ParseSubject("/CN=etcd-ca/O=Example").get()), "O=Example,CN=etcd-ca");
  for (const char* bad : {"", "CN", "=x", "CN=", "XX=y", "CN=a,,O=b"}) {
    EXPECT_EQ(Reason([&] { pki::ParseSubject(bad); }), "bad-subject") << bad;
  }
}

}  // namespace
