// SPDX-License-Identifier: Apache-2.0
// The requester parses what comes back over SSH before storing it: a hostile or broken signer
// must not crash it, and nothing that fails to match our key and name may pass.
#include <openssl/evp.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "base/failure.h"
#include "pki/verify.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  pki::IssuedCertificateExpectations want;
  want.public_key = key;
  want.common_name = "kubemaster-1";
  want.now = std::chrono::system_clock::now();
  try {
    pki::IssuedCertificate issued = pki::VerifyIssuedCertificate(
        std::string(reinterpret_cast<const char*>(data), size), want);
    // The fuzzer cannot know our freshly generated key: acceptance means a bypass.
    __builtin_trap();
  } catch (const base::Failure& f) {
    if (f.code() != base::ExitCode::kDataErr) __builtin_trap();
  }
  return 0;
}
