// SPDX-License-Identifier: Apache-2.0
// Waiting on the forwarder's sockets (#18): every wait also ends when the forwarder stops, so that
// Stop() never waits for a client, for etcd or for the token.
#pragma once

#include <atomic>

namespace requester {

// Raised once, by Stop(); seen by every wait (its descriptor is readable from then on) and by
// every loop (raised()).
class StopSignal {
 public:
  StopSignal();  // Failure when no eventfd can be made
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  void Raise();
  bool raised() const { return raised_.load(std::memory_order_relaxed); }
  int fd() const { return fd_; }

 private:
  int fd_;
  std::atomic<bool> raised_{false};
};

// Whether `fd` became ready for `events` within `timeout_ms` (-1: no limit) before `stop` was
// raised.
bool WaitFor(int fd, short events, int timeout_ms, const StopSignal& stop);

// O_NONBLOCK on `fd`; Failure when it cannot be set.
void SetNonBlocking(int fd);

}  // namespace requester
