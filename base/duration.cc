// SPDX-License-Identifier: Apache-2.0
#include "base/duration.h"

#include <ctime>

#include "base/failure.h"

namespace base {
namespace {
constexpr std::int64_t kMaxSeconds = 100LL * 365 * 86400;

[[noreturn]] void Bad(std::string_view text) {
  throw Failure(ExitCode::kUsage, "bad-duration",
                "'" + std::string(text.substr(0, 32)) +
                    "' is not a duration (use e.g. 600, 90s, 10m, 24h or 7d)");
}
}  // namespace

Seconds ParseDuration(std::string_view text) {
  if (text.empty() || text.size() > 16) Bad(text);
  std::int64_t value = 0;
  std::size_t i = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    value = value * 10 + (text[i] - '0');
    if (value > kMaxSeconds) Bad(text);
  }
  if (i == 0) Bad(text);
  std::int64_t unit = 1;
  if (i < text.size()) {
    if (i + 1 != text.size()) Bad(text);
    switch (text[i]) {
      case 's': unit = 1; break;
      case 'm': unit = 60; break;
      case 'h': unit = 3600; break;
      case 'd': unit = 86400; break;
      default: Bad(text);
    }
  }
  if (value > kMaxSeconds / unit) Bad(text);
  return Seconds(value * unit);
}

std::string FormatDuration(Seconds d) {
  std::int64_t s = d.count();
  if (s == 0) return "0s";
  std::string out;
  if (s < 0) {
    out = "-";
    s = -s;
  }
  const std::pair<std::int64_t, char> units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
  for (auto [size, name] : units) {
    if (s >= size) {
      out += std::to_string(s / size) + name;
      s %= size;
    }
  }
  return out;
}

std::string FormatRfc3339(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::chrono::system_clock::time_point ParseRfc3339(std::string_view text) {
  std::tm tm{};
  std::string s(text);
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr) {
    throw Failure(ExitCode::kDataErr, "bad-time", "'" + s.substr(0, 40) + "' is not RFC 3339 UTC");
  }
  std::string rest(end);
  // Accept fractional seconds; require UTC.
  if (!rest.empty() && rest[0] == '.') {
    std::size_t k = 1;
    while (k < rest.size() && rest[k] >= '0' && rest[k] <= '9') ++k;
    rest = rest.substr(k);
  }
  if (rest != "Z") {
    throw Failure(ExitCode::kDataErr, "bad-time", "'" + s.substr(0, 40) + "' is not RFC 3339 UTC");
  }
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

}  // namespace base
