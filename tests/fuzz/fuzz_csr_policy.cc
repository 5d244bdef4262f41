// SPDX-License-Identifier: Apache-2.0
// stdin of `sign`: base64 → PEM/DER CSR → policy, the whole signer path up to the token call.
#include <cstddef>
#include <cstdint>
#include <string>

#include "base/failure.h"
#include "signer/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > signer::kMaxInputBytes) return 0;
  static const signer::SignerConfig config;
  try {
    std::string body(reinterpret_cast<const char*>(data), size);
    pki::X509ReqPtr req = signer::DecodeRequestBody(body);
    signer::RequestFacts facts;
    signer::Approval approval = signer::ApplyPolicy(req.get(), std::nullopt, config, facts);
    // An approval must satisfy the policy it passed.
    if (approval.common_name.rfind("kubemaster-", 0) != 0 || !approval.public_key) __builtin_trap();
  } catch (const base::Failure& f) {
    auto code = f.code();
    if (code != base::ExitCode::kDataErr && code != base::ExitCode::kNoPerm) __builtin_trap();
  }
  return 0;
}
