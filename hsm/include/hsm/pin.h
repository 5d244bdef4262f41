// SPDX-License-Identifier: Apache-2.0
// Where a PIN comes from: a file (0400/0600, owned by the caller) or an environment variable
// whose *name* the operator gives. Never from argv.
#pragma once

#include <optional>
#include <string>

#include "hsm/module.h"
#include "hsm/uri.h"

namespace hsm {

struct PinSource {
  std::string file;      // --pin-file
  std::string env_name;  // --pin-env (the variable's name)
};

// Resolves the PIN: an explicit --pin-file or --pin-env wins over the URI's pin-source. Throws
// Failure(kConfig, "no-pin") when no source is given.
std::string ReadPin(const PinSource& source, const Pkcs11Uri* uri = nullptr);

// The module path: --module wins over the URI's module-path. Throws Failure(kConfig) if neither.
std::string ModulePath(const std::string& flag, const Pkcs11Uri* uri = nullptr);

// The token selector named by a URI (label and/or serial).
TokenSelector SelectorFor(const Pkcs11Uri& uri);

}  // namespace hsm
