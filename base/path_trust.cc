// SPDX-License-Identifier: Apache-2.0
#include "base/path_trust.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/failure.h"

namespace base {
namespace {

std::string Mode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

bool Trusted(uid_t uid, const std::vector<uid_t>& trusted) {
  return uid == 0 || std::find(trusted.begin(), trusted.end(), uid) != trusted.end();
}

// One directory on the way (its lstat): owned by a trusted account, and writable by nobody else
// unless sticky.
std::optional<std::string> DirectoryProblem(const std::string& dir, const struct stat& st,
                                            const std::vector<uid_t>& trusted) {
  if (!Trusted(st.st_uid, trusted)) {
    return "its directory " + dir + " is owned by uid " + std::to_string(st.st_uid) + ", who can replace what is in it";
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0) {
    return "its directory " + dir + " is writable by group or others (mode " + Mode(st.st_mode) + ")";
  }
  return std::nullopt;
}

}  // namespace

UniqueFd OpenRegularFile(const std::string& path, const std::string& reason, struct stat& st) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY));
  if (fd.get() < 0) {
    int err = errno;
    if (err == ELOOP) throw Failure(ExitCode::kNoInput, reason, path + " is a symbolic link; not following it");
    ThrowErrno(reason, "cannot open", path, err);
  }
  if (::fstat(fd.get(), &st) != 0) ThrowErrno(reason, "cannot inspect", path, errno);
  if (!S_ISREG(st.st_mode)) throw Failure(ExitCode::kNoInput, reason, path + " is not a regular file");
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags >= 0) ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

std::optional<std::string> UnexpectedOwner(const std::string& path, const struct stat& opened) {
  std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
  if (dir.empty()) dir = "/";
  struct stat ds {};
  if (::stat(dir.c_str(), &ds) != 0) return "cannot inspect the directory of " + path + ": " + std::strerror(errno);
  // Only root can put anything into a directory of root's that nobody else may write.
  if (ds.st_uid == 0 && (ds.st_mode & (S_IWGRP | S_IWOTH)) == 0) return std::nullopt;
  // Otherwise the file is one the directory's owner (or we) made, and not a second name of
  // another file: a hard link to /etc/shadow there is root's, a planted file another account's.
  if (opened.st_uid != ds.st_uid && opened.st_uid != ::geteuid()) {
    return path + " is owned by uid " + std::to_string(opened.st_uid) + ", not by " + dir + "'s owner (uid " +
           std::to_string(ds.st_uid) + ") who writes there";
  }
  if (opened.st_nlink != 1) {
    return path + " has " + std::to_string(opened.st_nlink) + " names (hard links) in a directory uid " +
           std::to_string(ds.st_uid) + " can write";
  }
  return std::nullopt;
}

std::optional<std::string> OthersCanChange(const std::string& path, const struct stat& opened,
                                           const std::vector<uid_t>& trusted) {
  if (!Trusted(opened.st_uid, trusted)) {
    return "it is owned by uid " + std::to_string(opened.st_uid) + ", who can rewrite it";
  }
  if ((opened.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return "it is writable by group or others (mode " + Mode(opened.st_mode) + ")";
  }
  char resolved_buf[PATH_MAX];
  if (::realpath(path.c_str(), resolved_buf) == nullptr) return "cannot resolve " + path + ": " + std::strerror(errno);
  // The path may name a newer file by now (an edit replaces lists by rename): what matters is that
  // only trusted accounts could have put it there, which the directories below tell.
  std::string resolved(resolved_buf);
  // Every directory from the file's own up to `/`, on the resolved path and on the path as given
  // (a symbolic link on the way is only as safe as the directory it lives in).
  std::string given = path;
  if (given.empty() || given[0] != '/') {
    char cwd[PATH_MAX];
    if (::getcwd(cwd, sizeof cwd) == nullptr) return std::string("cannot resolve the working directory");
    given = std::string(cwd) + "/" + given;
  }
  // One lstat per directory, and the given way only where it differs from the resolved one (the
  // governance check reads three files per request: 16 stats each had become 4, #30).
  for (const std::string* way : {&resolved, &given}) {
    if (way == &given && given == resolved) break;
    for (std::size_t slash = way->rfind('/'); slash != std::string::npos;
         slash = slash == 0 ? std::string::npos : way->rfind('/', slash - 1)) {
      std::string dir = slash == 0 ? "/" : way->substr(0, slash);
      struct stat st {};
      if (::lstat(dir.c_str(), &st) != 0) return "cannot inspect " + dir + ": " + std::strerror(errno);
      if (S_ISLNK(st.st_mode)) continue;  // its directory is next
      if (auto problem = DirectoryProblem(dir, st, trusted)) return problem;
    }
  }
  return std::nullopt;
}

}  // namespace base
