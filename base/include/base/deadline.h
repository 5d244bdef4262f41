// SPDX-License-Identifier: Apache-2.0
// A whole-process deadline. A PKCS#11 module can wedge inside a C call (libp11 0.4.12 can hang on a
// failing C_OpenSession), and no library call can be interrupted safely, so the only sound way out
// is to end the process. A watchdog thread waits for the deadline; on expiry it runs the caller's
// last-words callback (print one stderr line, write an audit record) and, if the callback says so,
// calls _exit(EX_TEMPFAIL). The callback may decline: a program whose main thread has already
// committed to an outcome (the signer after deciding "issued") must not be cut off mid-answer.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace base {

class Deadline {
 public:
  // Returns true to end the process now, false to let the main thread finish.
  using OnExpiry = std::function<bool()>;

  // Starts the watchdog. `on_expiry` runs on the watchdog thread and must not throw.
  Deadline(std::chrono::milliseconds budget, OnExpiry on_expiry);
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;
  // Disarms and joins the watchdog.
  ~Deadline();

  // Time left before expiry (zero when past).
  std::chrono::milliseconds remaining() const;

 private:
  std::chrono::steady_clock::time_point expires_;
  OnExpiry on_expiry_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool disarmed_ = false;
  std::thread watchdog_;
};

}  // namespace base
