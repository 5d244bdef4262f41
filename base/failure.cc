// SPDX-License-Identifier: Apache-2.0
#include "base/failure.h"

#include "base/text.h"

#include <cerrno>
#include <cstring>

namespace base {

std::string FailureLine(const std::string& program, const Failure& failure) {
  std::string message = failure.what();
  for (char& c : message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  // Every program's last word passes here, and messages can quote what a peer sent (a signer's
  // line, a CN): nothing in it may drive the operator's terminal.
  return program + ": " + failure.reason() + ": " + TerminalSafe(message);
}

ExitCode ExitCodeForErrno(int err) noexcept {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return ExitCode::kNoInput;
    case EACCES:
    case EPERM:
    case EROFS:
    case EEXIST:
    case ELOOP:
      return ExitCode::kCantCreate;
    case ENOSPC:
    case EDQUOT:
    case EIO:
      return ExitCode::kIoErr;
    case EAGAIN:
    case EINTR:
    case EBUSY:
      return ExitCode::kTempFail;
    default:
      return ExitCode::kIoErr;
  }
}

void ThrowErrno(const std::string& reason, const std::string& what, const std::string& path,
                int err) {
  throw Failure(ExitCodeForErrno(err), reason, what + " " + path + ": " + std::strerror(err));
}

}  // namespace base
