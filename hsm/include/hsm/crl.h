// SPDX-License-Identifier: Apache-2.0
// `etcd-hsm crl`: a certificate revocation list signed inside the token by the CA key that issued
// the revoked certificates (a signer's CA or intermediate for leaves, the root for intermediates).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "hsm/ca_operations.h"
#include "pki/crl.h"

namespace hsm {

struct CrlRequest {
  std::string ca_cert_path;                    // the issuer: its subject becomes the CRL's issuer
  std::vector<pki::RevocationRequest> revoke;  // from --revoke or --revoke-file
  pki::RevocationReason default_reason = pki::RevocationReason::kUnspecified;  // --reason
  int days = 0;  // nextUpdate = thisUpdate + days
  // The CRL is written here, replacing it atomically. If it exists it must be a CRL of this issuer
  // (same name, signature verifies with the certificate's key): its entries are kept, with their
  // dates, and its cRLNumber is the last one used.
  std::string out;
  // Optional: a file holding the last cRLNumber used (decimal), for CRLs written to a new --out
  // each time; created if missing, updated before the CRL is written.
  std::string number_file;
};

struct CrlSummary {
  std::uint64_t number = 0;
  std::size_t entries = 0;
  std::size_t added = 0;  // serials that were not in the previous CRL
  std::chrono::system_clock::time_point next_update;
};

// Issues the CRL. cRLNumber = max(last number + 1, seconds since the epoch), the last number being
// the larger of the previous CRL's and the number file's: numbers strictly increase and are never
// reused, even for a fresh --out, as long as the clock does not go back more than the time between
// two CRLs. Runs for one --out are serialized by an flock on the private file `out`.lock. Refused:
// --days outside 1..3650 (64 bad-days); a CA certificate that is not a CA or lacks cRLSign or a
// subjectKeyIdentifier (65 not-a-crl-issuer); an existing --out that is not this issuer's CRL (65
// crl-issuer-mismatch, bad-crl); a CA certificate that is not the token key's (69 ca-key-mismatch,
// checked before anything is signed). Nothing is written unless the CRL was signed and verifies
// with the CA certificate's key.
CrlSummary IssueCrl(const KeyAccess& access, const CrlRequest& request,
                    std::chrono::system_clock::time_point now);

}  // namespace hsm
