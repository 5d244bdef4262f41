// SPDX-License-Identifier: Apache-2.0
// A TPM 2.0 for tests: swtpm on loopback with a tpm2-pkcs11 token "node" initialized in it, its
// dictionary-attack lockout lifted (tests type wrong PINs on purpose). Stopped at destruction.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "test_support.h"

namespace testing_support {

class SoftwareTpm {
 public:
  static constexpr const char* kModule = "/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so";
  // Makes `dir` (state, tpm2-pkcs11 store, PIN files). Throws std::runtime_error with the reason
  // (swtpm's log, or the failing tool's stderr).
  explicit SoftwareTpm(const std::string& dir);
  // TPM2_PKCS11_TCTI, TPM2_PKCS11_STORE and TPM2TOOLS_TCTI for this TPM.
  const std::map<std::string, std::string>& env() const { return env_; }
  std::string pin_file;     // the token's user PIN (0400)
  std::string so_pin_file;  // its SO PIN (0400)

 private:
  std::unique_ptr<Process> swtpm_;
  std::map<std::string, std::string> env_;
};

}  // namespace testing_support
