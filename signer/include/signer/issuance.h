// SPDX-License-Identifier: Apache-2.0
// Building and signing the certificate for an approved request (DESIGN §3).
#pragma once

#include <chrono>

#include "pki/certificate_profile.h"
#include "signer/policy.h"

namespace signer {

struct Validity {
  pki::TimePoint not_before;
  pki::TimePoint not_after;
};

// notBefore = now - backdate (not before the CA's notBefore); notAfter = now + lifetime, never past
// the CA's notAfter. Failure(kUnavailable): "ca-expired" when the CA is not valid now,
// "ca-expiring" when less than `min_lifetime` of CA validity is left.
Validity ComputeValidity(X509* ca_cert, pki::TimePoint now, base::Seconds lifetime,
                         base::Seconds backdate, base::Seconds min_lifetime);

// Builds the certificate of the approval's profile (etcd-client, etcd-server, etcd-peer), has `ca_key` sign it (inside the token), and verifies the
// signature with the CA certificate's public key before returning it: a token that returns a bad
// signature is caught here, not by etcd ("self-check-failed", kSoftware). The subject key is
// approval.key, as ApplyPolicy computed it (Failure(kSoftware, "internal") when it is empty).
// It is these three steps (named so that bench/stage_bench.cc can time each):
pki::X509Ptr IssueCertificate(const Approval& approval, X509* ca_cert, EVP_PKEY* ca_key,
                              const Validity& validity, const pki::Serial& serial);

// The unsigned certificate for `approval`, carrying `key` (the approval's key, canonical) as is.
pki::X509Ptr BuildCertificate(const Approval& approval, const pki::CanonicalKey& key, X509* ca_cert,
                              const Validity& validity, const pki::Serial& serial);

// The signature verifies with the CA certificate's key, and the certificate is exactly profile
// the approval's profile (pki::LeafProfileDifference, the requester's own check), or
// Failure(kSoftware, "self-check-failed").
void SelfCheck(X509* cert, const Approval& approval, const pki::CanonicalKey& key, X509* ca_cert);

}  // namespace signer
