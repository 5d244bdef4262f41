// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include "base/duration.h"
#include "base/failure.h"

namespace {

using base::ParseDuration;
using base::Seconds;

TEST(ParseDuration, AcceptsPlainSecondsAndUnits) {
  EXPECT_EQ(ParseDuration("600"), Seconds(600));
  EXPECT_EQ(ParseDuration("90s"), Seconds(90));
  EXPECT_EQ(ParseDuration("10m"), Seconds(600));
  EXPECT_EQ(ParseDuration("24h"), Seconds(86400));
  EXPECT_EQ(ParseDuration("7d"), Seconds(7 * 86400));
}

TEST(ParseDuration, RefusesEverythingElse) {
  for (const char* bad : {"", "-5", "+5", "5 m", "5mm", "m", "1.5h", "10w", "99999999999999999",
                          "0x10", "1e3", "5m;", " 5"}) {
    try {
      ParseDuration(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const base::Failure& f) {
      EXPECT_EQ(f.code(), base::ExitCode::kUsage) << bad;
      EXPECT_EQ(f.reason(), "bad-duration") << bad;
    }
  }
}

TEST(FormatDuration, ShortestExactForm) {
  EXPECT_EQ(base::FormatDuration(Seconds(0)), "0s");
  EXPECT_EQ(base::FormatDuration(Seconds(86400 + 7200)), "1d2h");
  EXPECT_EQ(base::FormatDuration(Seconds(601)), "10m1s");
}

TEST(Rfc3339, RoundTrips) {
  auto t = std::chrono::system_clock::from_time_t(1795000000);
  std::string text = base::FormatRfc3339(t);
  EXPECT_EQ(text, "2026-11-18T11:06:40Z");
  EXPECT_EQ(base::ParseRfc3339(text), t);
  EXPECT_EQ(base::ParseRfc3339("2026-11-18T11:06:40.250Z"), t);
  EXPECT_THROW(base::ParseRfc3339("2026-11-18T11:06:40+01:00"), base::Failure);
  EXPECT_THROW(base::ParseRfc3339("yesterday"), base::Failure);
}

}  // namespace
