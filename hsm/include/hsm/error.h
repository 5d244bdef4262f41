// SPDX-License-Identifier: Apache-2.0
// PKCS#11 return values by name, and how each one maps to an exit code and advice.
#pragma once

#include <string>

namespace hsm {

// "CKR_PIN_INCORRECT" for 0xA0; "CKR_0x..." for values without a name.
std::string CkrName(unsigned long rv);

// Throws base::Failure for a failed PKCS#11 call: the reason code and exit code follow the
// return value (PIN errors → kUnavailable "pin-incorrect"/"pin-locked", busy → kTempFail
// "token-busy", absent → kUnavailable "token-unavailable"); the message names the call, the
// CKR_* value and what the operator should do.
[[noreturn]] void ThrowCkr(const std::string& call, unsigned long rv);

// For libp11 calls: takes the CKR_* value libp11 left in OpenSSL's error queue (if any).
[[noreturn]] void ThrowLibp11(const std::string& call);

}  // namespace hsm
