// SPDX-License-Identifier: Apache-2.0
// Checks a certificate the signer returned before the requester stores it.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pki/certificate_profile.h"

namespace pki {

struct IssuedCertificateExpectations {
  EVP_PKEY* public_key = nullptr;     // our key: the certificate must carry exactly it
  std::string common_name;            // our master name
  std::vector<X509*> trust_anchors;   // the operator's CA bundle; required (empty = refused)
  TimePoint now;
  std::chrono::seconds skew_tolerance{300};
  LeafProfile profile = LeafProfile::kClient;  // the profile asked for: the answer must be exactly it
};

// At most this many intermediates may follow the leaf in an answer.
constexpr std::size_t kMaxChainCertificates = 4;

// The signer's answer must be PEM certificate blocks and nothing else: the leaf, then the chain
// (#12), each "-----BEGIN CERTIFICATE-----", base64 lines (no headers), the END line and a newline
// (optional after the last); each block's DER one certificate with nothing after it. Throws
// Failure(kDataErr, "cert-profile" or "cert-unparsable").
std::vector<X509Ptr> ParseCertificateAnswer(const std::string& text);

// What the requester stores: the leaf, then the intermediates the signer sent.
struct IssuedCertificate {
  X509Ptr leaf;
  std::vector<X509Ptr> chain;
  std::string Pem() const;
  explicit operator bool() const { return leaf != nullptr; }
};

// Parses the answer (ParseCertificateAnswer) and accepts it only if the leaf is what the signer
// builds: public key equals ours (cert-wrong-key), a single CN equal to our name
// (cert-wrong-name), [notBefore - skew, notAfter) covers now (cert-not-yet-valid, cert-expired),
// exactly the profile asked for (cert-profile, naming the first difference; see
// LeafProfileDifference); each chain certificate passes ChainCaProfileDifference for it; the leaf
// chains through them to one of the anchors (cert-untrusted; no anchors is cert-untrusted too),
// and the certificates after the leaf are exactly the verified path's intermediates, in order,
// without the anchor (cert-chain): nothing rides along unchecked. Throws Failure(kDataErr, reason).
IssuedCertificate VerifyIssuedCertificate(const std::string& pem, const IssuedCertificateExpectations& want);

// Verifies `cert` against anchors with OpenSSL's path validation at time `now` (purpose: SSL
// client, or `purpose`, e.g. X509_PURPOSE_ANY for a CA certificate), with `untrusted`
// intermediates. Returns "" on success or OpenSSL's reason; on success `issuer` (when given)
// receives the certificate that issued `cert`, and `path` (when given) the verified path from
// `cert` to its anchor.
std::string VerifyChain(X509* cert, const std::vector<X509*>& anchors, TimePoint now,
                        X509Ptr* issuer = nullptr, const std::vector<X509*>& untrusted = {},
                        int purpose = X509_PURPOSE_SSL_CLIENT, std::vector<X509Ptr>* path = nullptr);

// A certificate's SHA-256 fingerprint over its DER, 64 lowercase hex digits (what
// `openssl x509 -noout -fingerprint -sha256` prints, without the colons).
std::string CertificateSha256(X509* cert);

// An operator's fingerprint as 64 lowercase hex digits: plain hex in either case, or openssl's
// "AB:CD:..." form, optionally after "sha256:" or "SHA256 Fingerprint=". nullopt otherwise.
std::optional<std::string> ParseSha256Fingerprint(std::string_view text);

}  // namespace pki
