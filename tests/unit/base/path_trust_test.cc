// SPDX-License-Identifier: Apache-2.0
// base::OthersCanChange: who can change what a path names, on the path as given and as resolved
// (the governance files and approval lists are read through it on every request, #14/#29; one
// lstat per directory since #30).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "base/path_trust.h"
#include "test_support.h"

namespace {

using testing_support::TempDir;
using testing_support::WriteFile;

constexpr uid_t kNobody = 65534;

// OthersCanChange on `path` as the readers call it: with the fstat of the file it names.
std::optional<std::string> Check(const std::string& path, const std::vector<uid_t>& trusted = {}) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "test: cannot stat " + path;
  return base::OthersCanChange(path, st, trusted);
}

std::string Problem(const std::optional<std::string>& p) { return p.value_or("(none)"); }

class PathTrust : public testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to give files and directories to nobody";
  }
  TempDir dir;  // root's, 0755, in /tmp (sticky): trusted all the way up
};

TEST_F(PathTrust, TheFileItselfMustBeATrustedAccountsAndNotGroupWritable) {
  std::string file = dir / "decides";
  WriteFile(file, "x", 0644);
  EXPECT_EQ(Check(file), std::nullopt);

  ASSERT_EQ(::chown(file.c_str(), kNobody, kNobody), 0);
  EXPECT_EQ(Problem(Check(file)), "it is owned by uid 65534, who can rewrite it");
  EXPECT_EQ(Check(file, {kNobody}), std::nullopt);  // the named account (list_admin) is trusted

  ASSERT_EQ(::chown(file.c_str(), 0, 0), 0);
  ASSERT_EQ(::chmod(file.c_str(), 0664), 0);
  EXPECT_EQ(Problem(Check(file)), "it is writable by group or others (mode 0664)");
}

TEST_F(PathTrust, EveryDirectoryUpToRootMustBeTrustedOrSticky) {
  std::string sub = dir / "sub";
  ASSERT_EQ(::mkdir(sub.c_str(), 0755), 0);
  std::string file = sub + "/decides";
  WriteFile(file, "x", 0644);
  EXPECT_EQ(Check(file), std::nullopt);

  ASSERT_EQ(::chown(sub.c_str(), kNobody, kNobody), 0);
  EXPECT_EQ(Problem(Check(file)), "its directory " + sub + " is owned by uid 65534, who can replace what is in it");

  ASSERT_EQ(::chown(sub.c_str(), 0, 0), 0);
  ASSERT_EQ(::chmod(sub.c_str(), 0777), 0);
  EXPECT_EQ(Problem(Check(file)), "its directory " + sub + " is writable by group or others (mode 0777)");
  ASSERT_EQ(::chmod(sub.c_str(), 01777), 0);  // sticky: only an entry's owner replaces it
  EXPECT_EQ(Check(file), std::nullopt);

  // Higher up: the parent of the parent.
  ASSERT_EQ(::chmod(sub.c_str(), 0755), 0);
  std::string deep = sub + "/deeper";
  ASSERT_EQ(::mkdir(deep.c_str(), 0755), 0);
  WriteFile(deep + "/decides", "x", 0644);
  ASSERT_EQ(::chown(sub.c_str(), kNobody, kNobody), 0);
  EXPECT_EQ(Problem(Check(deep + "/decides")),
            "its directory " + sub + " is owned by uid 65534, who can replace what is in it");
}

TEST_F(PathTrust, ALinkOnTheGivenWayIsOnlyAsSafeAsTheDirectoryItLivesIn) {
  // The file and its real directory are root's; the link to that directory sits in nobody's
  // directory, who could point it elsewhere at any time.
  std::string safe = dir / "safe";
  std::string theirs = dir / "theirs";
  ASSERT_EQ(::mkdir(safe.c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(theirs.c_str(), 0755), 0);
  WriteFile(safe + "/decides", "x", 0644);
  ASSERT_EQ(::symlink(safe.c_str(), (theirs + "/link").c_str()), 0);
  ASSERT_EQ(::chown(theirs.c_str(), kNobody, kNobody), 0);

  EXPECT_EQ(Check(safe + "/decides"), std::nullopt);
  EXPECT_EQ(Problem(Check(theirs + "/link/decides")),
            "its directory " + theirs + " is owned by uid 65534, who can replace what is in it");
}

TEST_F(PathTrust, ALinkFromATrustedPlaceIntoAnUntrustedDirectoryIsRefused) {
  std::string theirs = dir / "theirs";
  ASSERT_EQ(::mkdir(theirs.c_str(), 0755), 0);
  WriteFile(theirs + "/decides", "x", 0644);  // root's file, in a directory nobody controls
  ASSERT_EQ(::chown(theirs.c_str(), kNobody, kNobody), 0);
  ASSERT_EQ(::symlink(theirs.c_str(), (dir / "link").c_str()), 0);

  EXPECT_EQ(Problem(Check(dir / "link/decides")),
            "its directory " + theirs + " is owned by uid 65534, who can replace what is in it");
}

TEST_F(PathTrust, ARelativePathIsCheckedFromTheWorkingDirectory) {
  std::string sub = dir / "sub";
  ASSERT_EQ(::mkdir(sub.c_str(), 0755), 0);
  WriteFile(sub + "/decides", "x", 0644);
  ASSERT_EQ(::chown(sub.c_str(), kNobody, kNobody), 0);
  char cwd[4096];
  ASSERT_NE(::getcwd(cwd, sizeof cwd), nullptr);
  ASSERT_EQ(::chdir(sub.c_str()), 0);
  std::optional<std::string> problem = Check("decides");
  ASSERT_EQ(::chdir(cwd), 0);
  EXPECT_EQ(Problem(problem), "its directory " + sub + " is owned by uid 65534, who can replace what is in it");
}

}  // namespace
