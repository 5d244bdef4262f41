// SPDX-License-Identifier: Apache-2.0
// Private to hsm/: the C types behind Module and Session.
#pragma once

#include <libp11.h>
#include <p11-kit/pkcs11.h>

#include <string>
#include <vector>

#include "hsm/module.h"

namespace hsm {

struct Module::Impl {
  std::string path;
  PKCS11_CTX* ctx = nullptr;
  PKCS11_SLOT* slots = nullptr;  // enumerated once, on first use; released before unload
  unsigned int slot_count = 0;
  void* dl = nullptr;             // our own reference to the module libp11 loaded
  CK_FUNCTION_LIST* functions = nullptr;

  void EnsureSlots();
  // The slots that hold a token (C_GetSlotList with tokenPresent), in the module's order.
  std::vector<CK_SLOT_ID> TokenSlotIds() const;
};

// Trims the blank padding PKCS#11 puts in fixed-size text fields.
std::string FixedString(const unsigned char* data, std::size_t size);

}  // namespace hsm
