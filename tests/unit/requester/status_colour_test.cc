// SPDX-License-Identifier: Apache-2.0
// #28: `etcd-requester status` in a terminal: aligned rows, colour only for a person at a TTY.
#include <gtest/gtest.h>
#include <pty.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <regex>

#include "requester/requester.h"
#include "test_support.h"

namespace {

using testing_support::TempDir;

class StatusColour : public ::testing::Test {
 protected:
  void SetUp() override {
    ::unsetenv("NO_COLOR");
    ::setenv("TERM", "xterm-256color", 1);
  }
  void TearDown() override { ::unsetenv("NO_COLOR"); }
};

TEST_F(StatusColour, ColourMarksOnlyValuesAndTheTextIsOtherwiseTheSame) {
  TempDir dir;
  requester::RequesterConfig c;
  c.name = "kubemaster-1";
  c.cert = dir / "missing.pem";
  c.key_file = dir / "k.pem";
  auto now = std::chrono::system_clock::now();
  std::string plain = requester::RenderStatus(c, now, requester::StatusFormat::kHuman);
  std::string colour = requester::RenderStatus(c, now, requester::StatusFormat::kHumanColour);
  EXPECT_EQ(plain.find('\x1b'), std::string::npos) << plain;
  EXPECT_NE(colour.find("(\x1b[1;31mmissing\x1b[0m)"), std::string::npos) << colour;
  EXPECT_NE(colour.find("failures        \x1b[32m0\x1b[0m"), std::string::npos) << colour;
  EXPECT_EQ(std::regex_replace(colour, std::regex("\x1b\\[[0-9;]*m"), ""), plain);
}

TEST_F(StatusColour, OnlyATerminalWithoutNoColorAndWithARealTermGetsColour) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::FILE* pipe = ::fdopen(fds[1], "w");
  EXPECT_FALSE(requester::WantsColour(pipe));
  std::fclose(pipe);
  ::close(fds[0]);

  int master = -1, slave = -1;
  ASSERT_EQ(::openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
  std::FILE* tty = ::fdopen(slave, "w");
  EXPECT_TRUE(requester::WantsColour(tty));
  ::setenv("NO_COLOR", "1", 1);
  EXPECT_FALSE(requester::WantsColour(tty));
  ::unsetenv("NO_COLOR");
  ::setenv("TERM", "dumb", 1);
  EXPECT_FALSE(requester::WantsColour(tty));
  std::fclose(tty);
  ::close(master);
}

}  // namespace
