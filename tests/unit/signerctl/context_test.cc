// SPDX-License-Identifier: Apache-2.0
// What every etcd-signerctl verb starts from: the files it reads, the window it counts in, the
// time it acts as of.
#include "signerctl/context.h"

#include <gtest/gtest.h>

#include "base/duration.h"
#include "base/failure.h"
#include "test_support.h"

namespace {

using namespace std::chrono_literals;

signerctl::Context At(const char* rfc3339) {
  signerctl::Context ctx;
  ctx.now = base::ParseRfc3339(rfc3339);
  return ctx;
}

using testing_support::WriteFile;

TEST(AuditFiles, GivenFilesWinOverTheConfiguration) {
  signerctl::Context ctx = At("2026-11-23T00:00:00Z");
  ctx.config.audit_log = "/nonexistent/audit.log";
  EXPECT_EQ(signerctl::AuditFiles(ctx, {"a", "b"}), (std::vector<std::string>{"a", "b"}));
}

TEST(AuditFiles, TheConfiguredLogComesAfterItsRotatedPredecessorWhenThatExists) {
  testing_support::TempDir dir;
  signerctl::Context ctx = At("2026-11-23T00:00:00Z");
  ctx.config.audit_log = dir / "audit.log";
  EXPECT_EQ(signerctl::AuditFiles(ctx, {}), (std::vector<std::string>{dir / "audit.log"}));
  WriteFile(dir / "audit.log.1", "");
  EXPECT_EQ(signerctl::AuditFiles(ctx, {}), (std::vector<std::string>{dir / "audit.log.1", dir / "audit.log"}));
}

TEST(AuditFiles, NeitherFilesNorAConfiguredLogIsAUsageError) {
  try {
    signerctl::AuditFiles(At("2026-11-23T00:00:00Z"), {});
    FAIL() << "no error";
  } catch (const base::Failure& f) {
    EXPECT_EQ(f.code(), base::ExitCode::kUsage);
    EXPECT_EQ(f.reason(), "usage");
  }
}

TEST(WindowStart, CountsBackFromNowWithTheFallbackOnlyWhenNothingIsGiven) {
  signerctl::Context ctx = At("2026-11-23T00:00:00Z");
  EXPECT_EQ(signerctl::WindowStart(ctx, "24h", "7d"), ctx.now - 24h);
  EXPECT_EQ(signerctl::WindowStart(ctx, "", "7d"), ctx.now - 7 * 24h);
  EXPECT_EQ(signerctl::WindowStart(ctx, "", ""), signerctl::TimePoint::min());
  try {
    signerctl::WindowStart(ctx, "yesterday", "");
    FAIL() << "no error";
  } catch (const base::Failure& f) {
    EXPECT_EQ(f.code(), base::ExitCode::kUsage);
    EXPECT_EQ(std::string(f.what()).rfind("--since: ", 0), 0u) << f.what();
  }
}

TEST(MakeContext, NowIsTheGivenTimeAndABadOneIsAUsageError) {
  EXPECT_EQ(signerctl::MakeContext("2026-11-23T04:17:35Z", "").now, base::ParseRfc3339("2026-11-23T04:17:35Z"));
  try {
    signerctl::MakeContext("tomorrow", "");
    FAIL() << "no error";
  } catch (const base::Failure& f) {
    EXPECT_EQ(f.code(), base::ExitCode::kUsage);
    EXPECT_EQ(std::string(f.what()).rfind("--now: ", 0), 0u) << f.what();
  }
}

TEST(TerminatedLineAt, OnlyALineThatEndsInANewlineIsWhole) {
  testing_support::TempDir dir;
  WriteFile(dir / "log", "first\nsecond\nthi");
  EXPECT_EQ(signerctl::TerminatedLineAt(dir / "log", 0), "first");
  EXPECT_EQ(signerctl::TerminatedLineAt(dir / "log", 6), "second");
  EXPECT_EQ(signerctl::TerminatedLineAt(dir / "log", 13), std::nullopt);
}

}  // namespace
