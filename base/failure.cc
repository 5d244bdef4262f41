#include "base/failure.h"

#include <cerrno>
#include <cstring>

namespace base {

std::string FailureLine(const std::string& program, const Failure& failure) {
  std::string message = failure.what();
  for (char& c : message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return program + ": " + failure.reason() + ": " + message;
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
