// SPDX-License-Identifier: Apache-2.0
// Durations as operators write them: "90s", "10m", "24h", "7d", or a plain number of seconds.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace base {

using Seconds = std::chrono::seconds;

// Parses a duration strictly: digits then at most one unit (s, m, h, d). No sign, no spaces, no
// overflow beyond 100 years. Throws Failure(kUsage, "bad-duration") otherwise.
Seconds ParseDuration(std::string_view text);

// "1d2h", "10m", "45s": the shortest exact form, for messages and JSON.
std::string FormatDuration(Seconds d);

// RFC 3339 UTC with seconds: 2026-11-23T10:00:00Z.
std::string FormatRfc3339(std::chrono::system_clock::time_point t);

// Parses the RFC 3339 UTC form produced by FormatRfc3339 (a trailing 'Z' is required).
std::chrono::system_clock::time_point ParseRfc3339(std::string_view text);

}  // namespace base
