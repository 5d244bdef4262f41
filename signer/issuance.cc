// SPDX-License-Identifier: Apache-2.0
#include "signer/issuance.h"

#include <openssl/err.h>

#include "base/failure.h"

namespace signer {

Validity ComputeValidity(X509* ca_cert, pki::TimePoint now, base::Seconds lifetime,
                         base::Seconds backdate, base::Seconds min_lifetime) {
  pki::TimePoint ca_not_before = pki::NotBefore(ca_cert);
  pki::TimePoint ca_not_after = pki::NotAfter(ca_cert);
  if (now < ca_not_before || now >= ca_not_after) {
    throw base::Failure(base::ExitCode::kUnavailable, "ca-expired",
                        "the CA certificate is not valid now (valid " +
                            base::FormatRfc3339(ca_not_before) + " to " +
                            base::FormatRfc3339(ca_not_after) + ")");
  }
  Validity v;
  v.not_before = std::max(now - backdate, ca_not_before);
  v.not_after = std::min(now + lifetime, ca_not_after);
  if (v.not_after - now < min_lifetime) {
    throw base::Failure(base::ExitCode::kUnavailable, "ca-expiring",
                        "the CA certificate expires at " + base::FormatRfc3339(ca_not_after) +
                            ", too soon to issue a certificate; rotate the CA");
  }
  return v;
}

pki::X509Ptr BuildCertificate(const Approval& approval, const pki::CanonicalKey& key, X509* ca_cert,
                              const Validity& validity, const pki::Serial& serial) {
  pki::LeafCertificateFields fields;
  fields.common_name = approval.common_name;
  fields.subject_key = approval.public_key.get();
  fields.canonical_key = &key;
  fields.serial = serial;
  fields.not_before = validity.not_before;
  fields.not_after = validity.not_after;
  fields.profile = approval.profile;
  fields.names = approval.names;
  return pki::BuildLeafCertificate(fields, ca_cert);
}

void SelfCheck(X509* cert, const Approval& approval, const pki::CanonicalKey& key, X509* ca_cert) {
  EVP_PKEY* ca_public = X509_get0_pubkey(ca_cert);
  if (ca_public == nullptr || X509_verify(cert, ca_public) != 1) {
    ERR_clear_error();
    throw base::Failure(base::ExitCode::kSoftware, "self-check-failed",
                        "the token's signature does not verify with the CA certificate");
  }
  // The same check the requester makes on the answer: nothing leaves that it would refuse.
  pki::LeafProfileExpectations profile{approval.common_name, approval.public_key.get(), ca_cert, &key};
  profile.profile = approval.profile;
  if (pki::IsMemberProfile(approval.profile)) profile.names = approval.names;
  if (std::string diff = pki::LeafProfileDifference(cert, profile); !diff.empty()) {
    throw base::Failure(base::ExitCode::kSoftware, "self-check-failed",
                        std::string("the certificate is not profile ") + pki::ProfileName(approval.profile) + ": " + diff);
  }
}

pki::X509Ptr IssueCertificate(const Approval& approval, X509* ca_cert, EVP_PKEY* ca_key,
                              const Validity& validity, const pki::Serial& serial) {
  // The key's canonical form as the policy computed it: the builder writes it, the self-check
  // compares with it. Never derived again here.
  if (approval.key.spki_der.empty()) {
    throw base::Failure(base::ExitCode::kSoftware, "internal", "the approval carries no canonical key");
  }
  pki::X509Ptr cert = BuildCertificate(approval, approval.key, ca_cert, validity, serial);
  pki::SignCertificate(cert.get(), ca_key);
  SelfCheck(cert.get(), approval, approval.key, ca_cert);
  return cert;
}

}  // namespace signer
