// SPDX-License-Identifier: Apache-2.0
#include "hsm/error.h"

#include <libp11.h>
#include <openssl/err.h>
#include <p11-kit/pkcs11.h>

#include <cstdio>

#include "base/failure.h"

namespace hsm {

std::string CkrName(unsigned long rv) {
  switch (rv) {
#define CKR_CASE(x) \
  case x:           \
    return #x;
    CKR_CASE(CKR_OK)
    CKR_CASE(CKR_CANCEL)
    CKR_CASE(CKR_HOST_MEMORY)
    CKR_CASE(CKR_SLOT_ID_INVALID)
    CKR_CASE(CKR_GENERAL_ERROR)
    CKR_CASE(CKR_FUNCTION_FAILED)
    CKR_CASE(CKR_ARGUMENTS_BAD)
    CKR_CASE(CKR_ATTRIBUTE_READ_ONLY)
    CKR_CASE(CKR_ATTRIBUTE_SENSITIVE)
    CKR_CASE(CKR_ATTRIBUTE_TYPE_INVALID)
    CKR_CASE(CKR_ATTRIBUTE_VALUE_INVALID)
    CKR_CASE(CKR_DATA_INVALID)
    CKR_CASE(CKR_DATA_LEN_RANGE)
    CKR_CASE(CKR_DEVICE_ERROR)
    CKR_CASE(CKR_DEVICE_MEMORY)
    CKR_CASE(CKR_DEVICE_REMOVED)
    CKR_CASE(CKR_FUNCTION_CANCELED)
    CKR_CASE(CKR_FUNCTION_NOT_SUPPORTED)
    CKR_CASE(CKR_KEY_HANDLE_INVALID)
    CKR_CASE(CKR_KEY_SIZE_RANGE)
    CKR_CASE(CKR_KEY_TYPE_INCONSISTENT)
    CKR_CASE(CKR_KEY_FUNCTION_NOT_PERMITTED)
    CKR_CASE(CKR_MECHANISM_INVALID)
    CKR_CASE(CKR_MECHANISM_PARAM_INVALID)
    CKR_CASE(CKR_OBJECT_HANDLE_INVALID)
    CKR_CASE(CKR_OPERATION_ACTIVE)
    CKR_CASE(CKR_OPERATION_NOT_INITIALIZED)
    CKR_CASE(CKR_PIN_INCORRECT)
    CKR_CASE(CKR_PIN_INVALID)
    CKR_CASE(CKR_PIN_LEN_RANGE)
    CKR_CASE(CKR_PIN_EXPIRED)
    CKR_CASE(CKR_PIN_LOCKED)
    CKR_CASE(CKR_SESSION_CLOSED)
    CKR_CASE(CKR_SESSION_COUNT)
    CKR_CASE(CKR_SESSION_HANDLE_INVALID)
    CKR_CASE(CKR_SESSION_READ_ONLY)
    CKR_CASE(CKR_SESSION_EXISTS)
    CKR_CASE(CKR_SESSION_READ_ONLY_EXISTS)
    CKR_CASE(CKR_SESSION_READ_WRITE_SO_EXISTS)
    CKR_CASE(CKR_SIGNATURE_INVALID)
    CKR_CASE(CKR_SIGNATURE_LEN_RANGE)
    CKR_CASE(CKR_TEMPLATE_INCOMPLETE)
    CKR_CASE(CKR_TEMPLATE_INCONSISTENT)
    CKR_CASE(CKR_TOKEN_NOT_PRESENT)
    CKR_CASE(CKR_TOKEN_NOT_RECOGNIZED)
    CKR_CASE(CKR_TOKEN_WRITE_PROTECTED)
    CKR_CASE(CKR_USER_ALREADY_LOGGED_IN)
    CKR_CASE(CKR_USER_NOT_LOGGED_IN)
    CKR_CASE(CKR_USER_PIN_NOT_INITIALIZED)
    CKR_CASE(CKR_USER_TYPE_INVALID)
    CKR_CASE(CKR_USER_ANOTHER_ALREADY_LOGGED_IN)
    CKR_CASE(CKR_USER_TOO_MANY_TYPES)
    CKR_CASE(CKR_DOMAIN_PARAMS_INVALID)
    CKR_CASE(CKR_CURVE_NOT_SUPPORTED)
    CKR_CASE(CKR_BUFFER_TOO_SMALL)
    CKR_CASE(CKR_CRYPTOKI_NOT_INITIALIZED)
    CKR_CASE(CKR_CRYPTOKI_ALREADY_INITIALIZED)
    CKR_CASE(CKR_FUNCTION_REJECTED)
#undef CKR_CASE
    default: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "CKR_0x%08lX", rv);
      return buf;
    }
  }
}

void ThrowCkr(const std::string& call, unsigned long rv) {
  using base::ExitCode;
  std::string name = CkrName(rv);
  std::string what = call + " failed with " + name;
  switch (rv) {
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
      throw base::Failure(ExitCode::kUnavailable, "pin-incorrect",
                          what + ": the PIN is wrong; fix the PIN file (not retried: tokens "
                                 "lock after a few wrong PINs)");
    case CKR_PIN_LOCKED:
    case CKR_PIN_EXPIRED:
      throw base::Failure(ExitCode::kUnavailable, "pin-locked",
                          what + ": the token's user PIN is locked or expired; the token "
                                 "officer must reset it");
    case CKR_SESSION_COUNT:
    case CKR_OPERATION_ACTIVE:
    case CKR_FUNCTION_CANCELED:
      throw base::Failure(ExitCode::kTempFail, "token-busy", what + ": the token is busy; retry");
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_TOKEN_NOT_RECOGNIZED:
    case CKR_DEVICE_REMOVED:
    case CKR_DEVICE_ERROR:
    case CKR_SLOT_ID_INVALID:
    case CKR_USER_PIN_NOT_INITIALIZED:
      throw base::Failure(ExitCode::kUnavailable, "token-unavailable",
                          what + ": check that the token is present and initialized");
    default:
      throw base::Failure(ExitCode::kUnavailable, "token-error", what);
  }
}

void ThrowLibp11(const std::string& call) {
  unsigned long rv = CKR_FUNCTION_FAILED;
  unsigned long e;
  bool found = false;
  while ((e = ERR_get_error()) != 0) {
    if (static_cast<int>(ERR_GET_LIB(e)) == ERR_get_CKR_code()) {
      rv = ERR_GET_REASON(e);
      found = true;
    }
  }
  if (!found) {
    throw base::Failure(base::ExitCode::kUnavailable, "token-error",
                        call + " failed (the module reported no PKCS#11 code)");
  }
  ThrowCkr(call, rv);
}

}  // namespace hsm
