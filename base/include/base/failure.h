// SPDX-License-Identifier: Apache-2.0
// The one error type of this project.
//
// Libraries throw `Failure`; each program's main() catches it in exactly one place and turns it into
// a sysexits exit code plus one stderr line `<program>: <reason>: <message>`. The reason is a short
// stable kebab-case code (documented in docs/protocol.md) that tests and operators can match on; the
// message is a human sentence that never contains a secret.
#pragma once

#include <stdexcept>
#include <string>

namespace base {

// sysexits(3) codes. Only these leave our programs.
enum class ExitCode : int {
  kOk = 0,
  kUsage = 64,        // EX_USAGE: bad command line or request verb
  kDataErr = 65,      // EX_DATAERR: input is malformed
  kNoInput = 66,      // EX_NOINPUT: an input file is missing or unreadable
  kUnavailable = 69,  // EX_UNAVAILABLE: token, CA or server unavailable
  kSoftware = 70,     // EX_SOFTWARE: internal error (a bug)
  kCantCreate = 73,   // EX_CANTCREAT: output file cannot be created
  kIoErr = 74,        // EX_IOERR: I/O error
  kTempFail = 75,     // EX_TEMPFAIL: temporary failure, retry later
  kNoPerm = 77,       // EX_NOPERM: refused by policy
  kConfig = 78,       // EX_CONFIG: configuration error
};

class Failure : public std::runtime_error {
 public:
  Failure(ExitCode code, std::string reason, const std::string& message)
      : std::runtime_error(message), code_(code), reason_(std::move(reason)) {}

  ExitCode code() const noexcept { return code_; }
  const std::string& reason() const noexcept { return reason_; }

 private:
  ExitCode code_;
  std::string reason_;
};

// The single line a program prints on stderr for a failure: "<program>: <reason>: <message>".
// Newlines in the message are flattened so that the line stays one line on the wire.
std::string FailureLine(const std::string& program, const Failure& failure);

// Maps the errno of a failed file operation to an exit code (the only errno→exit-code mapping).
ExitCode ExitCodeForErrno(int err) noexcept;

// Throws a Failure built from errno for an operation on `path`.
[[noreturn]] void ThrowErrno(const std::string& reason, const std::string& what,
                             const std::string& path, int err);

}  // namespace base
