// SPDX-License-Identifier: Apache-2.0
// A loaded PKCS#11 module. One per process: constructing it calls C_Initialize (through libp11),
// destroying it releases libp11's slots and calls C_Finalize. Move-only. Everything obtained from
// a Module (sessions, token-backed EVP_PKEYs) must be destroyed before it.
//
// Never fork() while a Module is alive: PKCS#11 state does not survive fork.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace hsm {

struct TokenInfo {
  std::string label;
  std::string serial;
  std::string manufacturer;
  std::string model;
  bool initialized = false;
  bool user_pin_initialized = false;
  bool user_pin_locked = false;
  bool user_pin_final_try = false;
};

// Selects a token by label and/or serial, never by slot id (SoftHSM renumbers slots).
struct TokenSelector {
  std::optional<std::string> label;
  std::optional<std::string> serial;
  std::string ToString() const;
};

class Module {
 public:
  // Loads the module at `path`. Throws Failure(kUnavailable, "module-not-found" / "module-load").
  explicit Module(const std::string& path);
  ~Module();
  Module(Module&&) noexcept;
  Module& operator=(Module&&) = delete;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  const std::string& path() const;

  // All tokens present in the module's slots (freshly read).
  std::vector<TokenInfo> Tokens();

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace hsm
