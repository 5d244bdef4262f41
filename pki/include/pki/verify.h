// Checks a certificate the signer returned before the requester stores it.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "pki/certificate_profile.h"

namespace pki {

struct IssuedCertificateExpectations {
  EVP_PKEY* public_key = nullptr;     // our key: the certificate must carry exactly it
  std::string common_name;            // our master name
  std::vector<X509*> trust_anchors;   // CA bundle; empty = chain not checked
  TimePoint now;
  std::chrono::seconds skew_tolerance{300};
};

// Parses exactly one PEM certificate and checks it: public key equals ours, CN equals our name,
// chains to one of the anchors (when given), extendedKeyUsage has clientAuth, and
// [notBefore - skew, notAfter] covers now. Throws Failure(kDataErr, "cert-<what>") naming the
// first check that failed.
X509Ptr VerifyIssuedCertificate(const std::string& pem, const IssuedCertificateExpectations& want);

// Verifies `cert` against anchors with OpenSSL's path validation at time `now` (purpose:
// SSL client). Returns "" on success or OpenSSL's reason.
std::string VerifyChain(X509* cert, const std::vector<X509*>& anchors, TimePoint now);

}  // namespace pki
