// SPDX-License-Identifier: Apache-2.0
#include "base/program.h"

#include <cstdio>
#include <exception>

#include "base/failure.h"

namespace base {

int RunProgram(const std::string& program, const std::function<int()>& body,
               const std::function<void(const Failure&)>& on_failure) {
  auto fail = [&](const Failure& failure) {
    if (on_failure) {
      try {
        on_failure(failure);
      } catch (...) {
        // The failure being reported matters more than a secondary one.
      }
    }
    std::string line = FailureLine(program, failure) + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
    return static_cast<int>(failure.code());
  };
  try {
    return body();
  } catch (const Failure& failure) {
    return fail(failure);
  } catch (const std::exception& e) {
    return fail(Failure(ExitCode::kSoftware, "internal", std::string("internal error: ") + e.what()));
  }
}

}  // namespace base
