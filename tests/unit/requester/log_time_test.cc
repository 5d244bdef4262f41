// SPDX-License-Identifier: Apache-2.0
// #28 item 9: the requester's log lines carry an RFC 3339 time unless they go to the journal, as
// systemd documents it (JOURNAL_STREAM names the device and inode of the journal's stream).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "requester/exchange.h"
#include "requester/log_time.h"
#include "requester/requester.h"

namespace {

const auto kNoon = std::chrono::system_clock::from_time_t(1796299200);  // 2026-12-03T12:00:00Z

std::string Logged(std::FILE* f) {
  requester::RequesterEnv env;
  env.log = f;
  env.now = [] { return kNoon; };
  long start = std::ftell(f);
  requester::Log(env, "renewed: serial 01");
  std::fseek(f, start, SEEK_SET);
  char buffer[256] = {};
  std::string line = std::fgets(buffer, sizeof buffer, f) != nullptr ? buffer : "";
  std::fseek(f, 0, SEEK_END);
  return line;
}

std::string DeviceAndInode(std::FILE* f) {
  struct stat st {};
  EXPECT_EQ(::fstat(::fileno(f), &st), 0);
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

class LogTime : public ::testing::Test {
 protected:
  void SetUp() override { ::unsetenv("JOURNAL_STREAM"); }
  void TearDown() override {
    ::unsetenv("JOURNAL_STREAM");
    std::fclose(file_);
  }
  std::FILE* file_ = std::tmpfile();
};

TEST_F(LogTime, ALineNotForTheJournalStartsWithItsTime) {
  EXPECT_EQ(Logged(file_), "2026-12-03T12:00:00Z etcd-requester: renewed: serial 01\n");
}

TEST_F(LogTime, TheJournalsOwnStreamGetsNoTimeOfOurs) {
  ::setenv("JOURNAL_STREAM", DeviceAndInode(file_).c_str(), 1);
  EXPECT_TRUE(requester::WritesToJournal(file_));
  EXPECT_EQ(Logged(file_), "etcd-requester: renewed: serial 01\n");
}

TEST_F(LogTime, AnInheritedJournalStreamForAnotherFileStillGetsTheTime) {
  std::FILE* other = std::tmpfile();
  ::setenv("JOURNAL_STREAM", DeviceAndInode(other).c_str(), 1);
  EXPECT_FALSE(requester::WritesToJournal(file_));
  EXPECT_EQ(Logged(file_), "2026-12-03T12:00:00Z etcd-requester: renewed: serial 01\n");
  std::fclose(other);
  ::setenv("JOURNAL_STREAM", "garbage", 1);
  EXPECT_EQ(Logged(file_), "2026-12-03T12:00:00Z etcd-requester: renewed: serial 01\n");
}

}  // namespace
