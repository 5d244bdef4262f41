// SPDX-License-Identifier: Apache-2.0
// The one place where a program turns failures into exit codes.
#pragma once

#include <functional>
#include <string>

namespace base {

// Runs `body`; a Failure prints its one stderr line ("<program>: <reason>: <message>") and
// returns its exit code; any other exception is a bug (EX_SOFTWARE, reason "internal").
// `on_failure`, if set, sees the failure first (the signer writes its audit record there).
class Failure;
int RunProgram(const std::string& program, const std::function<int()>& body,
               const std::function<void(const Failure&)>& on_failure = nullptr);

}  // namespace base
