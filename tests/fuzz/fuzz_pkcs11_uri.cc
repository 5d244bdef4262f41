// SPDX-License-Identifier: Apache-2.0
// PKCS#11 URIs come from configuration files: strict parsing, no crash, and a parsed URI must
// survive a round trip through its canonical form.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/failure.h"
#include "hsm/uri.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    hsm::Pkcs11Uri uri = hsm::Pkcs11Uri::Parse(std::string_view(reinterpret_cast<const char*>(data), size));
    hsm::Pkcs11Uri again = hsm::Pkcs11Uri::Parse(uri.ToString());
    if (again.token != uri.token || again.object != uri.object || again.serial != uri.serial ||
        again.id != uri.id || again.type != uri.type) {
      __builtin_trap();
    }
  } catch (const base::Failure& f) {
    if (f.code() != base::ExitCode::kUsage) __builtin_trap();
  }
  return 0;
}
