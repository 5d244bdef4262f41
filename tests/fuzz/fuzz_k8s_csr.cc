// SPDX-License-Identifier: Apache-2.0
// The body of `sign --format k8s` is attacker input: the object parser, its checks and the CSR
// decoder must accept or refuse with a documented failure, never crash; an accepted object must
// encode back into answers that parse as JSON.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "base/failure.h"
#include "signer/k8s_csr.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > signer::kK8sMaxMetadataBytes * 4) return 0;  // the signer reads at most 64 KiB
  std::string body(reinterpret_cast<const char*>(data), size);
  std::optional<signer::K8sCsr> parsed;
  signer::SignerConfig config;
  try {
    signer::DecodeK8sBody(body, config, parsed);
  } catch (const base::Failure& f) {
    if (f.code() != base::ExitCode::kDataErr && f.code() != base::ExitCode::kNoPerm) __builtin_trap();
  }
  auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1800000000));
  std::string refusal = signer::EncodeK8sRefusal(parsed ? &*parsed : nullptr,
                                                 base::Failure(base::ExitCode::kNoPerm, "x", body.substr(0, 64)), now);
  if (!nlohmann::json::accept(refusal)) __builtin_trap();
  if (parsed) {
    if (parsed->expiration && parsed->expiration->count() < 0) __builtin_trap();
    std::string issued = signer::EncodeK8sIssued(*parsed, "pem", "etcd-client", "issued", now);
    if (!nlohmann::json::accept(issued)) __builtin_trap();
    for (unsigned char c : issued) {
      if (c >= 0x80) __builtin_trap();  // the answer is pure ASCII
    }
  }
  return 0;
}
