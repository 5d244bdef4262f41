// SPDX-License-Identifier: Apache-2.0
// SSH_ORIGINAL_COMMAND is attacker input: the parser must accept or refuse, never crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/failure.h"
#include "signer/request_line.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    signer::RequestLine r = signer::ParseRequestLine(
        std::string_view(reinterpret_cast<const char*>(data), size));
    if (r.lifetime && r.lifetime->count() < 0) __builtin_trap();
  } catch (const base::Failure& f) {
    if (f.code() != base::ExitCode::kUsage) __builtin_trap();  // only usage errors are possible
  }
  return 0;
}
