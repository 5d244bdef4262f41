// SPDX-License-Identifier: Apache-2.0
#include "base/deadline.h"

#include <unistd.h>

#include "base/failure.h"

namespace base {

Deadline::Deadline(std::chrono::milliseconds budget, OnExpiry on_expiry)
    : expires_(std::chrono::steady_clock::now() + budget), on_expiry_(std::move(on_expiry)) {
  watchdog_ = std::thread([this] {
    std::unique_lock lock(mu_);
    if (cv_.wait_until(lock, expires_, [this] { return disarmed_; })) return;
    lock.unlock();  // the callback may take time (an audit write); the destructor must not wait on it
    if (on_expiry_ && !on_expiry_()) return;
    ::_exit(static_cast<int>(ExitCode::kTempFail));
  });
}

Deadline::~Deadline() {
  {
    std::lock_guard lock(mu_);
    disarmed_ = true;
  }
  cv_.notify_all();
  watchdog_.join();
}

std::chrono::milliseconds Deadline::remaining() const {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      expires_ - std::chrono::steady_clock::now());
  return left.count() > 0 ? left : std::chrono::milliseconds(0);
}

}  // namespace base
