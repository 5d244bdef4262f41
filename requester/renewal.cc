// SPDX-License-Identifier: Apache-2.0
#include "requester/renewal.h"

#include <openssl/sha.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>

namespace requester {

std::string StateName(CertificateState state) {
  switch (state) {
    case CertificateState::kMissing: return "missing";
    case CertificateState::kUnreadable: return "unreadable";
    case CertificateState::kExpired: return "expired";
    case CertificateState::kDue: return "due";
    case CertificateState::kFresh: return "fresh";
  }
  return "unknown";
}

TimePoint RenewalSchedule::RenewAt(TimePoint not_before, TimePoint not_after, double u) const {
  u = std::clamp(u, 0.0, 1.0);
  double fraction = min_fraction + (max_fraction - min_fraction) * u;
  auto lifetime = std::chrono::duration_cast<std::chrono::milliseconds>(not_after - not_before);
  // Rounded, not floored: 0.7 + 0.2 * 0.5 is 0.7999… in binary floating point.
  return not_before + std::chrono::milliseconds(
                          std::llround(static_cast<double>(lifetime.count()) * fraction));
}

double RenewalSchedule::StableUniform(const std::string& serial_hex) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(serial_hex.data()), serial_hex.size(), digest);
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | digest[i];
  return static_cast<double>(v >> 11) / static_cast<double>(1ULL << 53);
}

std::chrono::milliseconds Backoff::Next() {
  using std::chrono::milliseconds;
  double base_ms = static_cast<double>(std::chrono::duration_cast<milliseconds>(initial_).count()) *
                   std::pow(2.0, std::min(failures_, 30));
  double cap_ms = static_cast<double>(std::chrono::duration_cast<milliseconds>(cap_).count());
  base_ms = std::min(base_ms, cap_ms);
  ++failures_;
  double wait = base_ms / 2 + base_ms / 2 * std::clamp(uniform01_(), 0.0, 1.0);
  double floor_ms = static_cast<double>(std::chrono::duration_cast<milliseconds>(initial_).count());
  return milliseconds(static_cast<long long>(std::max(wait, floor_ms)));
}

std::chrono::milliseconds ClockSkew(TimePoint sent, TimePoint received, TimePoint signer_time) {
  using std::chrono::milliseconds;
  TimePoint local = sent + (received - sent) / 2;
  TimePoint signer = signer_time + milliseconds(500);  // the middle of the second it names
  return std::chrono::duration_cast<milliseconds>(local - signer);
}

std::string Ago(TimePoint then, TimePoint now) {
  auto d = std::chrono::duration_cast<std::chrono::seconds>(then - now);
  return d.count() >= 0 ? "in " + base::FormatDuration(d) : base::FormatDuration(-d) + " ago";
}

std::string DescribeSkew(std::chrono::milliseconds skew) {
  std::int64_t ms = std::llabs(skew.count());
  std::int64_t s = (ms + 500) / 1000;
  if (s >= 600) s = (s + 30) / 60 * 60;
  return base::FormatDuration(base::Seconds(s)) + (skew.count() >= 0 || s == 0 ? " ahead of" : " behind");
}

std::function<double()> SystemUniform01() {
  auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
  return [engine] { return std::uniform_real_distribution<double>(0.0, 1.0)(*engine); };
}

}  // namespace requester
