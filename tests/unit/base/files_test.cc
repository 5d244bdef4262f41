// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "base/failure.h"
#include "base/files.h"
#include "test_support.h"

namespace {

using testing_support::TempDir;
using testing_support::WriteFile;

using testing_support::Reason;

TEST(SecretFile, ReadsPrivateFilesOnly) {
  TempDir dir;
  WriteFile(dir / "pin", "123456\n", 0400);
  EXPECT_EQ(base::ReadSecretFile(dir / "pin"), "123456");
  WriteFile(dir / "crlf", "654321\r\n", 0600);
  EXPECT_EQ(base::ReadSecretFile(dir / "crlf"), "654321");
  WriteFile(dir / "open", "123456\n", 0644);
  EXPECT_EQ(Reason([&] { base::ReadSecretFile(dir / "open"); }), "pin-file-permissions");
  WriteFile(dir / "empty", "", 0400);
  EXPECT_EQ(Reason([&] { base::ReadSecretFile(dir / "empty"); }), "pin-file");
  ASSERT_EQ(::symlink((dir / "pin").c_str(), (dir / "link").c_str()), 0);
  EXPECT_EQ(Reason([&] { base::ReadSecretFile(dir / "link"); }), "pin-file");
  EXPECT_EQ(Reason([&] { base::ReadSecretFile(dir / "missing"); }), "pin-file");
  try {
    base::ReadSecretFile(dir / "open");
  } catch (const base::Failure& f) {
    EXPECT_EQ(std::string(f.what()).find("123456"), std::string::npos);  // never the secret
  }
}

TEST(Files, BoundedReadsExclusiveCreateAndLockedAppend) {
  TempDir dir;
  WriteFile(dir / "f", std::string(100, 'x'));
  EXPECT_EQ(base::ReadFileLimited(dir / "f", 100).size(), 100u);
  EXPECT_THROW(base::ReadFileLimited(dir / "f", 99), base::Failure);
  EXPECT_THROW(base::ReadFileLimited(dir.path(), 99), base::Failure);  // a directory
  base::WriteNewFileExclusive(dir / "key", "secret", 0600);
  struct stat st {};
  ASSERT_EQ(::stat((dir / "key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(Reason([&] { base::WriteNewFileExclusive(dir / "key", "other", 0600); }), "write-failed");
  EXPECT_EQ(testing_support::ReadFile(dir / "key"), "secret");

  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) base::AppendLineLocked(dir / "log", std::string(200, static_cast<char>('a' + t)));
    });
  }
  for (auto& w : writers) w.join();
  auto lines = testing_support::Lines(testing_support::ReadFile(dir / "log"));
  ASSERT_EQ(lines.size(), 200u);
  for (const auto& line : lines) EXPECT_EQ(line, std::string(200, line[0]));  // never interleaved
}

TEST(Failure, ErrnoMappingAndOneLine) {
  EXPECT_EQ(base::ExitCodeForErrno(ENOENT), base::ExitCode::kNoInput);
  EXPECT_EQ(base::ExitCodeForErrno(EACCES), base::ExitCode::kCantCreate);
  EXPECT_EQ(base::ExitCodeForErrno(ENOSPC), base::ExitCode::kIoErr);
  EXPECT_EQ(base::ExitCodeForErrno(EAGAIN), base::ExitCode::kTempFail);
  base::Failure f(base::ExitCode::kDataErr, "x", "a\r\nb");
  EXPECT_EQ(base::FailureLine("p", f), "p: x: a  b");
}

}  // namespace
