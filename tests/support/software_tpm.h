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

// A manufacturer's CA for TPM endorsement keys: swtpm_localca with a private configuration and
// state under `dir` (never the machine's /var/lib/swtpm-localca). Its root and issuing certificates
// appear once the first TPM is manufactured with it.
struct TpmManufacturer {
  explicit TpmManufacturer(const std::string& dir);
  std::string dir;
  std::string setup_conf;  // swtpm_setup's --config
  // root + issuer certificates (PEM), what a signer's ek_roots names. Valid after the first TPM.
  std::string RootsPem() const;
};

// A TPM 2.0 with an endorsement key certificate (#27): swtpm_setup --create-ek-cert by
// `manufacturer`, then swtpm on loopback. EK at 0x81010001, its certificate at NV 0x01c00002.
class EndorsedTpm {
 public:
  EndorsedTpm(const std::string& dir, const TpmManufacturer& manufacturer);
  const std::string& tcti() const { return tcti_; }
  // TPM2TOOLS_TCTI for tpm2-tools, and a quiet tpm2-tss log.
  std::map<std::string, std::string> env() const {
    return {{"TPM2TOOLS_TCTI", tcti_}, {"TSS2_LOG", "all+NONE"}};
  }

 private:
  std::unique_ptr<Process> swtpm_;
  std::string tcti_;
};

}  // namespace testing_support
