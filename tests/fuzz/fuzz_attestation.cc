// SPDX-License-Identifier: Apache-2.0
// The TPM evidence a master sends with its CSR (#27), and the AK it enrolls, are parsed by one
// module: whatever arrives, it must not crash, and nothing may pass as evidence for a key the
// fuzzer cannot know (a key generated here, at random).
#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/failure.h"
#include "pki/attestation.h"
#include "pki/key.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  static const std::string key_sha256 = pki::CanonicalizeKey(key).sha256;
  pki::Bytes bytes(data, data + size);
  try {
    pki::AttestationEvidence e = pki::DecodeEvidence(bytes);
    // The AK it names taken as enrolled, to reach every later check.
    pki::VerifyEvidence(e, e.ak_public, pki::Bytes{1, 2, 3}, key_sha256);
    __builtin_trap();  // evidence for a key nobody outside this process has seen
  } catch (const base::Failure&) {
  }
  try {
    pki::CheckAttestationKey(bytes);
    pki::TpmObjectName(bytes);
    pki::TpmPublicKey(bytes);
  } catch (const base::Failure&) {
  }
  return 0;
}
