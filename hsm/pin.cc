// SPDX-License-Identifier: Apache-2.0
#include "hsm/pin.h"

#include "base/failure.h"
#include "base/files.h"

namespace hsm {

std::string ReadPin(const PinSource& source, const Pkcs11Uri* uri) {
  if (!source.file.empty() && !source.env_name.empty()) {
    throw base::Failure(base::ExitCode::kUsage, "no-pin", "give either a PIN file or a PIN variable, not both");
  }
  if (!source.file.empty()) return base::ReadSecretFile(source.file);
  if (!source.env_name.empty()) return base::ReadSecretEnv(source.env_name);
  if (uri != nullptr && uri->pin_source) return base::ReadSecretFile(*uri->pin_source);
  throw base::Failure(base::ExitCode::kConfig, "no-pin",
                      "no PIN source: give --pin-file FILE, --pin-env NAME or pin-source=file: in the URI");
}

std::string ModulePath(const std::string& flag, const Pkcs11Uri* uri) {
  if (!flag.empty()) return flag;
  if (uri != nullptr && uri->module_path) return *uri->module_path;
  throw base::Failure(base::ExitCode::kConfig, "no-module",
                      "no PKCS#11 module: give --module PATH or module-path= in the URI");
}

TokenSelector SelectorFor(const Pkcs11Uri& uri) {
  if (!uri.token && !uri.serial) {
    throw base::Failure(base::ExitCode::kUsage, "bad-uri",
                        "the URI must name the token (token=LABEL or serial=SERIAL)");
  }
  return TokenSelector{uri.token, uri.serial};
}

}  // namespace hsm
