// SPDX-License-Identifier: Apache-2.0
// The requester adopts a key file only if nobody else could have planted or swapped it (issue #17,
// item 4): the file must be ours, 0600-or-stricter, not a symlink, in a directory that only we (or
// root) own and nobody else can write to, sticky or not.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/failure.h"
#include "pki/certificate_profile.h"
#include "requester/config.h"
#include "requester/key_store.h"
#include "test_support.h"

namespace {

using testing_support::TempDir;

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;

// Opens the store named by `key_file`; returns the Failure it threw, or nothing on success.
std::optional<base::Failure> OpenFails(const std::string& key_file, bool create) {
  requester::RequesterConfig c;
  c.key_file = key_file;
  try {
    requester::MakeKeyStore(c)->Open(create);
  } catch (const base::Failure& f) {
    return f;
  }
  return std::nullopt;
}

// A key file made by the requester itself in `dir`.
std::string MakeKey(const std::string& dir) {
  std::string path = dir + "/key.pem";
  EXPECT_FALSE(OpenFails(path, /*create=*/true).has_value());
  return path;
}

void ExpectUnsafe(const std::optional<base::Failure>& f, const std::string& because) {
  ASSERT_TRUE(f.has_value()) << "accepted an unsafe key file (" << because << ")";
  EXPECT_EQ(f->reason(), "key-file-unsafe") << f->what();
  EXPECT_EQ(f->code(), base::ExitCode::kConfig) << f->what();
  EXPECT_NE(std::string(f->what()).find(because), std::string::npos) << f->what();
}

class KeyFileSafety : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown files to nobody";
    dir_ = root_ / "keys";
    ASSERT_EQ(::mkdir(dir_.c_str(), 0700), 0);
  }
  TempDir root_;
  std::string dir_;
};

TEST_F(KeyFileSafety, OurOwnKeyInOurOwnDirectoryIsUsed) {
  std::string key = MakeKey(dir_);
  requester::RequesterConfig c;
  c.key_file = key;
  auto store = requester::MakeKeyStore(c);
  EXPECT_FALSE(store->Open(true));  // reused, not regenerated
  EXPECT_NE(store->public_key(), nullptr);
  // A root-owned 0755 directory (like /etc/kubernetes/pki) is fine too.
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  EXPECT_FALSE(OpenFails(key, false).has_value());
}

TEST_F(KeyFileSafety, AKeyFileOwnedBySomeoneElseIsRefused) {
  std::string key = MakeKey(dir_);
  ASSERT_EQ(::chown(key.c_str(), kNobody, kNogroup), 0);
  ExpectUnsafe(OpenFails(key, false), "owned by uid 65534");
  ExpectUnsafe(OpenFails(key, true), "owned by uid 65534");
}

TEST_F(KeyFileSafety, AStickyWorldWritableDirectoryIsRefused) {
  // The reported attack: `nobody` plants a key in /tmp-like directory; it must not be certified.
  ASSERT_EQ(::chmod(dir_.c_str(), 01777), 0);
  std::string planted = dir_ + "/key.pem";
  testing_support::WriteFile(planted, "not even a key\n", 0600);
  ASSERT_EQ(::chown(planted.c_str(), kNobody, kNogroup), 0);
  ExpectUnsafe(OpenFails(planted, true), "writable by group or others");
  // Nor is a new key made there.
  std::string fresh = dir_ + "/fresh.pem";
  ExpectUnsafe(OpenFails(fresh, true), "writable by group or others");
  EXPECT_NE(::access(fresh.c_str(), F_OK), 0);
}

TEST_F(KeyFileSafety, AGroupWritableDirectoryIsRefused) {
  std::string key = MakeKey(dir_);
  ASSERT_EQ(::chmod(dir_.c_str(), 0775), 0);
  ExpectUnsafe(OpenFails(key, false), "writable by group or others");
  ASSERT_EQ(::chmod(dir_.c_str(), 0770), 0);
  ExpectUnsafe(OpenFails(key, false), "writable by group or others");
}

TEST_F(KeyFileSafety, ADirectoryOwnedBySomeoneElseIsRefused) {
  // Its owner could rename another key over ours at any time.
  std::string key = MakeKey(dir_);
  ASSERT_EQ(::chown(dir_.c_str(), kNobody, kNogroup), 0);
  ExpectUnsafe(OpenFails(key, false), "owned by uid 65534");
}

TEST_F(KeyFileSafety, ASymlinkedKeyFileIsRefusedEvenToOurOwnKey) {
  std::string key = MakeKey(dir_);
  std::string link = dir_ + "/link.pem";
  ASSERT_EQ(::symlink(key.c_str(), link.c_str()), 0);
  ExpectUnsafe(OpenFails(link, false), "symbolic link");
  ExpectUnsafe(OpenFails(link, true), "symbolic link");
}

TEST_F(KeyFileSafety, AKeyReadableByOthersOrNotARegularFileIsRefused) {
  std::string key = MakeKey(dir_);
  ASSERT_EQ(::chmod(key.c_str(), 0640), 0);
  ExpectUnsafe(OpenFails(key, false), "chmod 0600");
  std::string fifo = dir_ + "/fifo.pem";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  ExpectUnsafe(OpenFails(fifo, false), "not a regular file");  // and does not block on the FIFO
}

}  // namespace
