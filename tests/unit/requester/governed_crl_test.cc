// SPDX-License-Identifier: Apache-2.0
// #29: a member pinning the governance certificate accepts only the CRL that lists exactly the
// signed document's serials under its version; and the document's content is canonical.
#include <gtest/gtest.h>

#include "base/failure.h"
#include "pki/certificate_profile.h"
#include "pki/crl.h"
#include "pki/governance.h"
#include "requester/requester.h"

namespace {

using pki::RevocationReason;

struct Ca {
  pki::EvpPkeyPtr key{EVP_EC_gen("P-256")};
  pki::X509Ptr cert;
  Ca(const std::string& name, pki::TimePoint now) {
    pki::CaCertificateFields f{name, key.get(), pki::RandomSerial(), now - std::chrono::hours(1), now + std::chrono::hours(240)};
    cert = pki::BuildCaCertificate(f);
    pki::SignCertificate(cert.get(), key.get());
  }
};

std::string Reason(const std::function<void()>& f) {
  try {
    f();
  } catch (const base::Failure& e) {
    return e.reason();
  }
  return "none";
}

class GovernedCrl : public ::testing::Test {
 protected:
  pki::TimePoint now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  Ca ca{"CN=signer CA", now};
  Ca governance{"CN=governance", now};
  Ca other{"CN=other", now};

  pki::GovernanceState State(std::uint64_t version, std::vector<pki::SerialBytes> serials) {
    pki::GovernanceState s;
    s.version = version;
    s.issued = now;
    s.expires = now + std::chrono::hours(24);
    for (auto& serial : serials) s.revoked.push_back({serial, RevocationReason::kKeyCompromise});
    pki::NormalizeGovernanceState(s, "test");
    return s;
  }
  // What a signer host's `crl` answers: the CRL of `crl_state` signed by its CA, its CA, and the
  // document of `doc_state` signed by `signer`.
  std::string Answer(const pki::GovernanceState& crl_state, const pki::GovernanceState& doc_state, Ca& signer) {
    pki::X509CrlPtr crl = pki::BuildCrl(pki::GovernanceCrlFields(crl_state), ca.cert.get());
    pki::SignCrl(crl.get(), ca.key.get());
    return pki::ToPem(crl.get()) + pki::ToPem(ca.cert.get()) + pki::SignGovernance(doc_state, signer.cert.get(), signer.key.get());
  }
  std::string Verify(const std::string& answer, X509* governance_cert) {
    return Reason([&] {
      requester::VerifyServedCrl(answer, {ca.cert.get()}, now, std::chrono::minutes(5), "signer-a", {governance_cert});
    });
  }
};

TEST_F(GovernedCrl, OnlyTheDocumentsSerialsUnderItsVersionPass) {
  auto doc = State(7, {{0x0a, 0x1b}, {0x2c}});
  EXPECT_EQ(Verify(Answer(doc, doc, governance), governance.cert.get()), "none");
  // A serial left out, one added, another number, a document by another key, no document.
  EXPECT_EQ(Verify(Answer(State(7, {{0x2c}}), doc, governance), governance.cert.get()), "crl-not-governed");
  EXPECT_EQ(Verify(Answer(State(7, {{0x0a, 0x1b}, {0x2c}, {0x33}}), doc, governance), governance.cert.get()),
            "crl-not-governed");
  EXPECT_EQ(Verify(Answer(State(4000000000, {{0x0a, 0x1b}, {0x2c}}), doc, governance), governance.cert.get()),
            "crl-not-governed");
  EXPECT_EQ(Verify(Answer(doc, doc, other), governance.cert.get()), "governance-signature");
  std::string answer = Answer(doc, doc, governance);
  EXPECT_EQ(Verify(answer.substr(0, answer.find("-----BEGIN CMS-----")), governance.cert.get()), "crl-not-governed");
  // Without a pinned governance certificate the CRL stands on its signature alone.
  EXPECT_EQ(Reason([&] { requester::VerifyServedCrl(Answer(State(7, {{0x2c}}), doc, governance), {ca.cert.get()}, now,
                                                     std::chrono::minutes(5), "signer-a"); }),
            "none");
}

TEST_F(GovernedCrl, TheDocumentsContentIsCanonical) {
  auto doc = State(3, {{0x2c}});
  std::string content = pki::EncodeGovernanceContent(doc);
  EXPECT_EQ(pki::DecodeGovernanceContent(content, "x").version, 3u);
  std::string spaced = content;
  spaced.insert(1, " ");
  EXPECT_EQ(Reason([&] { pki::DecodeGovernanceContent(spaced, "x"); }), "governance-invalid");
  std::string extra = content;
  extra.insert(extra.size() - 1, ",\"allowed\":[]");
  EXPECT_EQ(Reason([&] { pki::DecodeGovernanceContent(extra, "x"); }), "governance-invalid");
  EXPECT_EQ(Reason([&] { pki::DecodeGovernanceContent("[]", "x"); }), "governance-invalid");
  EXPECT_EQ(Reason([&] { pki::ReadGovernance("not a document", {}, "x"); }), "governance-invalid");
}

}  // namespace
