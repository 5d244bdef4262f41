// SPDX-License-Identifier: Apache-2.0
#include "hsm/module.h"

#include <dlfcn.h>
#include <openssl/err.h>
#include <unistd.h>

#include "base/failure.h"
#include "hsm/error.h"
#include "internal.h"

namespace hsm {

std::string FixedString(const unsigned char* data, std::size_t size) {
  std::string s(reinterpret_cast<const char*>(data), size);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

std::string TokenSelector::ToString() const {
  std::string out;
  if (label) out += "label '" + *label + "'";
  if (serial) out += std::string(out.empty() ? "" : " and ") + "serial '" + *serial + "'";
  return out.empty() ? "any token" : out;
}

Module::Module(const std::string& path) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  if (path.empty() || path[0] != '/') {
    throw base::Failure(base::ExitCode::kConfig, "module-not-found",
                        "the PKCS#11 module must be given as an absolute path (--module)");
  }
  if (::access(path.c_str(), R_OK) != 0) {
    throw base::Failure(base::ExitCode::kUnavailable, "module-not-found",
                        "PKCS#11 module " + path + " does not exist or is not readable");
  }
  impl_->ctx = PKCS11_CTX_new();
  if (impl_->ctx == nullptr || PKCS11_CTX_load(impl_->ctx, path.c_str()) != 0) {
    std::string detail;
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
      if (static_cast<int>(ERR_GET_LIB(e)) == ERR_get_CKR_code()) {
        detail = " (" + CkrName(ERR_GET_REASON(e)) + ")";
      }
    }
    if (impl_->ctx != nullptr) PKCS11_CTX_free(impl_->ctx);
    impl_->ctx = nullptr;
    throw base::Failure(base::ExitCode::kUnavailable, "module-load",
                        "cannot load PKCS#11 module " + path + detail +
                            "; for SoftHSM check SOFTHSM2_CONF and its tokendir");
  }
  // The module is initialized once, by libp11. For the calls libp11 does not offer (key
  // generation, attribute reads, token init) we take the same module's function list; a
  // second C_Initialize would be refused, so there is none.
  impl_->dl = ::dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD);
  CK_C_GetFunctionList get = nullptr;
  if (impl_->dl != nullptr) {
    get = reinterpret_cast<CK_C_GetFunctionList>(::dlsym(impl_->dl, "C_GetFunctionList"));
  }
  if (get == nullptr || get(&impl_->functions) != CKR_OK || impl_->functions == nullptr) {
    if (impl_->dl != nullptr) ::dlclose(impl_->dl);
    PKCS11_CTX_unload(impl_->ctx);
    PKCS11_CTX_free(impl_->ctx);
    impl_->ctx = nullptr;
    throw base::Failure(base::ExitCode::kUnavailable, "module-load",
                        "PKCS#11 module " + path + " has no usable C_GetFunctionList");
  }
}

Module::Module(Module&& other) noexcept = default;

Module::~Module() {
  if (!impl_ || impl_->ctx == nullptr) return;
  if (impl_->slots != nullptr) PKCS11_release_all_slots(impl_->ctx, impl_->slots, impl_->slot_count);
  PKCS11_CTX_unload(impl_->ctx);  // C_Finalize
  PKCS11_CTX_free(impl_->ctx);
  if (impl_->dl != nullptr) ::dlclose(impl_->dl);
}

const std::string& Module::path() const { return impl_->path; }

void Module::Impl::EnsureSlots() {
  if (slots != nullptr) return;
  if (PKCS11_enumerate_slots(ctx, &slots, &slot_count) != 0) {
    slots = nullptr;
    ThrowLibp11("C_GetSlotList");
  }
}

std::vector<CK_SLOT_ID> Module::Impl::TokenSlotIds() const {
  CK_ULONG count = 0;
  CK_RV rv = functions->C_GetSlotList(CK_TRUE, nullptr, &count);
  if (rv != CKR_OK) ThrowCkr("C_GetSlotList", rv);
  std::vector<CK_SLOT_ID> ids(count);
  rv = functions->C_GetSlotList(CK_TRUE, ids.data(), &count);
  if (rv != CKR_OK) ThrowCkr("C_GetSlotList", rv);
  ids.resize(count);
  return ids;
}

std::vector<TokenInfo> Module::Tokens() {
  CK_FUNCTION_LIST* f = impl_->functions;
  std::vector<TokenInfo> tokens;
  for (CK_SLOT_ID id : impl_->TokenSlotIds()) {
    CK_TOKEN_INFO info{};
    if (f->C_GetTokenInfo(id, &info) != CKR_OK) continue;
    TokenInfo t;
    t.label = FixedString(info.label, sizeof info.label);
    t.serial = FixedString(info.serialNumber, sizeof info.serialNumber);
    t.manufacturer = FixedString(info.manufacturerID, sizeof info.manufacturerID);
    t.model = FixedString(info.model, sizeof info.model);
    t.initialized = (info.flags & CKF_TOKEN_INITIALIZED) != 0;
    t.user_pin_initialized = (info.flags & CKF_USER_PIN_INITIALIZED) != 0;
    t.user_pin_locked = (info.flags & CKF_USER_PIN_LOCKED) != 0;
    t.user_pin_final_try = (info.flags & CKF_USER_PIN_FINAL_TRY) != 0;
    tokens.push_back(std::move(t));
  }
  return tokens;
}

}  // namespace hsm
