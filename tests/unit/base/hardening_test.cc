// SPDX-License-Identifier: Apache-2.0
// Issue #17's base-level fixes: private bounded locks, audit appends that never leave half a line,
// attacker text made printable, linear-time name patterns, PIN variables scrubbed after reading.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>

#include "base/failure.h"
#include "base/files.h"
#include "base/name_pattern.h"
#include "base/text.h"
#include "test_support.h"

namespace {

using namespace std::chrono_literals;
using testing_support::ReadFile;
using testing_support::TempDir;
using testing_support::WriteFile;

using testing_support::Reason;

TEST(PrivateLock, CreatesA0600FileAndRefusesOnesOthersCanOpen) {
  TempDir dir;
  { base::PrivateLock lock(dir / "made", 1s); }
  struct stat st {};
  ASSERT_EQ(::stat((dir / "made").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  WriteFile(dir / "shared", "", 0644);
  EXPECT_EQ(Reason([&] { base::PrivateLock lock(dir / "shared", 1s); }), "lock-file-unsafe");
  ASSERT_EQ(::symlink((dir / "made").c_str(), (dir / "link").c_str()), 0);
  EXPECT_EQ(Reason([&] { base::PrivateLock lock(dir / "link", 1s); }), "lock-failed");
  ASSERT_EQ(::mkdir((dir / "adir").c_str(), 0700), 0);
  EXPECT_EQ(Reason([&] { base::PrivateLock lock(dir / "adir", 1s); }), "lock-failed");
}

TEST(PrivateLock, GivesUpAfterItsWaitInsteadOfBlocking) {
  TempDir dir;
  base::PrivateLock held(dir / "lock", 1s);
  auto t0 = std::chrono::steady_clock::now();
  try {
    base::PrivateLock second(dir / "lock", 300ms);
    FAIL() << "a held lock was taken twice";
  } catch (const base::Failure& f) {
    EXPECT_EQ(f.reason(), "lock-busy");
    EXPECT_EQ(f.code(), base::ExitCode::kTempFail);
  }
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 300ms);
}

TEST(AppendLineLocked, AReaderHoldingALockOnTheLogDoesNotStallWriters) {
  TempDir dir;
  WriteFile(dir / "log", "", 0644);
  int reader = ::open((dir / "log").c_str(), O_RDONLY);
  ASSERT_GE(reader, 0);
  ASSERT_EQ(::flock(reader, LOCK_SH), 0);  // what any reader of a 0640 :adm log can do
  base::AppendLineLocked(dir / "log", "{\"a\":1}", 200ms);
  ::close(reader);
  EXPECT_EQ(ReadFile(dir / "log"), "{\"a\":1}\n");
}

TEST(AppendLineLocked, AShortWriteIsCutBackAndTheNextRecordIsWhole) {
  TempDir dir;
  base::AppendLineLocked(dir / "log", "first");
  // A full disk, reproducibly: the file may grow by 10 bytes only, so a 300-byte record is cut.
  ::signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  ::getrlimit(RLIMIT_FSIZE, &old);
  rlimit tight = old;
  tight.rlim_cur = 6 + 10;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &tight), 0);
  std::string reason = Reason([&] { base::AppendLineLocked(dir / "log", std::string(300, 'x')); });
  ::setrlimit(RLIMIT_FSIZE, &old);
  EXPECT_EQ(reason, "audit-failed");
  EXPECT_EQ(ReadFile(dir / "log"), "first\n");
  base::AppendLineLocked(dir / "log", "second");
  EXPECT_EQ(ReadFile(dir / "log"), "first\nsecond\n");
}

TEST(AppendLineLocked, AFragmentLeftByAKilledWriterStaysOnItsOwnLine) {
  TempDir dir;
  WriteFile(dir / "log", "whole\n{\"torn", 0640);
  base::AppendLineLocked(dir / "log", "next");
  EXPECT_EQ(ReadFile(dir / "log"), "whole\n{\"torn\nnext\n");
}

TEST(Printable, KeepsPrintableAsciiAndEscapesEverythingElse) {
  EXPECT_EQ(base::Printable("kubemaster-1"), "kubemaster-1");
  EXPECT_EQ(base::Printable("a\nb\x1b[31m"), "a\\x0ab\\x1b[31m");
  EXPECT_EQ(base::Printable("\xc2\x9b"), "\\xc2\\x9b");            // U+009B (C1 CSI)
  EXPECT_EQ(base::Printable("\xe2\x80\xa8\xe2\x80\xae"), "\\xe2\\x80\\xa8\\xe2\\x80\\xae");  // U+2028, U+202E
  EXPECT_EQ(base::Printable("back\\slash"), "back\\x5cslash");      // no ambiguity with escapes
  EXPECT_EQ(base::Printable(std::string(45000, 'a'), 80), std::string(80, 'a') + "...");
}

TEST(TerminalSafe, KeepsReadableUtf8AndEscapesWhatDrivesATerminal) {
  EXPECT_EQ(base::TerminalSafe("valid until 2026 \xe2\x80\x94 ok\xe2\x80\xa6"), "valid until 2026 \xe2\x80\x94 ok\xe2\x80\xa6");
  EXPECT_EQ(base::TerminalSafe("\x1b[2Jx\x07"), "\\x1b[2Jx\\x07");
  EXPECT_EQ(base::TerminalSafe("a\xc2\x9b" "b"), "a\\u{009b}b");                    // C1 CSI
  EXPECT_EQ(base::TerminalSafe("\xe2\x80\xae" "cba"), "\\u{202e}cba");             // RLO
  EXPECT_EQ(base::TerminalSafe("\xe2\x80\xa8"), "\\u{2028}");
  EXPECT_EQ(base::TerminalSafe("\xff\xc0\xaf"), "\\xff\\xc0\\xaf");            // invalid, overlong
  EXPECT_EQ(base::TerminalSafe("\xed\xa0\x80"), "\\xed\\xa0\\x80");            // a surrogate
  base::Failure f(base::ExitCode::kDataErr, "cert-wrong-name", "for '\x1b]0;owned\x07'");
  EXPECT_EQ(base::FailureLine("etcd-requester", f), "etcd-requester: cert-wrong-name: for '\\x1b]0;owned\\x07'");
}

TEST(Utf8Prefix, NeverSplitsASequence) {
  EXPECT_EQ(base::Utf8Prefix("abc", 10), "abc");
  EXPECT_EQ(base::Utf8Prefix("ab\xe2\x80\xae", 4), "ab");
  EXPECT_EQ(base::Utf8Prefix("ab\xe2\x80\xae", 5), "ab\xe2\x80\xae");
}

// #30: validating the configuration and checking a name compile the pattern once per process.
TEST(NamePattern, CompiledOncePerPatternAndInvalidOnesAreNotKept) {
  const base::NamePattern& first = base::CompiledNamePattern("^kubemaster-[0-9]+$");
  EXPECT_EQ(&base::CompiledNamePattern("^kubemaster-[0-9]+$"), &first);
  EXPECT_NE(&base::CompiledNamePattern("^etcd-[0-9]+$"), &first);
  EXPECT_TRUE(first.Matches("kubemaster-12"));
  EXPECT_FALSE(first.Matches("etcd-12"));
  for (int i = 0; i < 2; ++i) EXPECT_EQ(Reason([] { base::CompiledNamePattern("(unclosed"); }), "bad-config");
}

TEST(NamePattern, MatchesWholeNamesInLinearTime) {
  base::NamePattern p("^kubemaster-[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$");
  EXPECT_TRUE(p.Matches("kubemaster-1"));
  EXPECT_FALSE(p.Matches("kubemaster-1-"));
  EXPECT_FALSE(p.Matches("xkubemaster-1"));
  base::NamePattern unanchored("kubemaster-[0-9]+");
  EXPECT_FALSE(unanchored.Matches("evil-kubemaster-1"));  // the whole name, anchors or not
  // std::regex backtracks for seconds on this pair (issue #17); RE2 answers at once.
  base::NamePattern nested("^kubemaster-([a-z0-9]+-?)+$");
  EXPECT_FALSE(nested.Matches("kubemaster-" + std::string(40, 'a') + "!"));
  EXPECT_TRUE(nested.Matches("kubemaster-ab-cd"));
  EXPECT_EQ(Reason([] { base::NamePattern bad("(unclosed"); }), "bad-config");
  EXPECT_EQ(Reason([] { base::NamePattern backref("(a)\\1"); }), "bad-config");
}

TEST(SecretEnv, TheVariableIsScrubbedAndUnsetAfterTheFirstRead) {
  ::setenv("ETCD_TEST_PIN", "246810", 1);
  char* raw = std::getenv("ETCD_TEST_PIN");
  ASSERT_NE(raw, nullptr);
  EXPECT_EQ(base::ReadSecretEnv("ETCD_TEST_PIN"), "246810");
  EXPECT_EQ(std::getenv("ETCD_TEST_PIN"), nullptr);  // children never inherit it
  EXPECT_EQ(std::string(raw), "xxxxxx");              // the old bytes are gone from memory
  EXPECT_EQ(base::ReadSecretEnv("ETCD_TEST_PIN"), "246810");  // a daemon's next renewal still works
  EXPECT_EQ(Reason([] { base::ReadSecretEnv("ETCD_TEST_PIN_UNSET"); }), "pin-env");
}

}  // namespace
