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

// The signer's answer must be exactly one PEM certificate block ("-----BEGIN CERTIFICATE-----",
// base64 lines, the END line), optionally followed by one newline, whose DER is one certificate
// with nothing after it. Throws Failure(kDataErr, "cert-profile" or "cert-unparsable").
X509Ptr ParseSingleCertificatePem(const std::string& text);

// Parses the answer (ParseSingleCertificatePem) and accepts it only if it is what the signer
// builds: public key equals ours (cert-wrong-key), a single CN equal to our name
// (cert-wrong-name), [notBefore - skew, notAfter) covers now (cert-not-yet-valid, cert-expired),
// chains to one of the anchors when given (cert-untrusted), and is exactly profile etcd-client
// with the issuer found (cert-profile, naming the first difference; see ClientProfileDifference).
// Throws Failure(kDataErr, reason).
X509Ptr VerifyIssuedCertificate(const std::string& pem, const IssuedCertificateExpectations& want);

// Verifies `cert` against anchors with OpenSSL's path validation at time `now` (purpose:
// SSL client). Returns "" on success or OpenSSL's reason; on success `issuer` (when given)
// receives the anchor that issued `cert`.
std::string VerifyChain(X509* cert, const std::vector<X509*>& anchors, TimePoint now,
                        X509Ptr* issuer = nullptr);

}  // namespace pki
