// SPDX-License-Identifier: Apache-2.0
// When to renew, and how long to wait after a failure. Time and randomness are injected.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "base/duration.h"
#include "pki/certificate_profile.h"

namespace requester {

using TimePoint = pki::TimePoint;

enum class CertificateState { kMissing, kUnreadable, kExpired, kDue, kFresh };
std::string StateName(CertificateState state);

// Renewal at a uniformly jittered 70–90 % of the lifetime (DESIGN §5).
struct RenewalSchedule {
  double min_fraction = 0.7;
  double max_fraction = 0.9;

  // The renewal time for a certificate valid [not_before, not_after), given u in [0, 1).
  TimePoint RenewAt(TimePoint not_before, TimePoint not_after, double u) const;

  // A stable u for one certificate (from its serial), so that repeated `renew` runs agree on
  // the same jittered time instead of re-drawing (which would bias renewals early).
  static double StableUniform(const std::string& serial_hex);
};

// Exponential backoff with jitter: the n-th consecutive failure waits a random time in
// [base/2, base], base = min(cap, initial * 2^n), and never less than `initial`.
class Backoff {
 public:
  Backoff(base::Seconds initial, base::Seconds cap, std::function<double()> uniform01)
      : initial_(initial), cap_(cap), uniform01_(std::move(uniform01)) {}
  std::chrono::milliseconds Next();
  void Reset() { failures_ = 0; }
  int failures() const { return failures_; }

 private:
  base::Seconds initial_;
  base::Seconds cap_;
  std::function<double()> uniform01_;
  int failures_ = 0;
};

// How far this host's clock is ahead of the signer's (negative: behind). The signer read its clock
// (reported in whole seconds, floored) somewhere between `sent` and `received` on ours, so the
// midpoints are compared; the error is at most half the round trip plus half a second.
std::chrono::milliseconds ClockSkew(TimePoint sent, TimePoint received, TimePoint signer_time);
// "1h behind", "9m12s ahead of": whole seconds, and whole minutes from 10 minutes up, where the
// seconds are round-trip noise.
std::string DescribeSkew(std::chrono::milliseconds skew);

// "in 3h12m" for a time ahead of `now`, "5m ago" for one behind it.
std::string Ago(TimePoint then, TimePoint now);

// A uniform [0,1) source from the OS CSPRNG-seeded engine (production default).
std::function<double()> SystemUniform01();

}  // namespace requester
