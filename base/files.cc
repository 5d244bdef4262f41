// SPDX-License-Identifier: Apache-2.0
#include "base/files.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "base/failure.h"
#include "base/fd.h"

namespace base {
namespace {

void WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno("write-failed", "cannot write", path, errno);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

std::string DirectoryOf(const std::string& path) {
  std::filesystem::path p(path);
  auto parent = p.parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

void FsyncDirectory(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) ThrowErrno("write-failed", "cannot open directory", dir, errno);
  if (::fsync(fd.get()) != 0) ThrowErrno("write-failed", "cannot fsync directory", dir, errno);
}

}  // namespace

std::string ReadFileLimited(const std::string& path, std::size_t max_bytes,
                            const std::string& reason) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) ThrowErrno(reason, "cannot open", path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) ThrowErrno(reason, "cannot stat", path, errno);
  if (!S_ISREG(st.st_mode)) {
    throw Failure(ExitCode::kNoInput, reason, path + " is not a regular file");
  }
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno(reason, "cannot read", path, errno);
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > max_bytes) {
      throw Failure(ExitCode::kDataErr, reason,
                    path + " is larger than " + std::to_string(max_bytes) + " bytes");
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

std::string ReadSecretFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) {
    // A PIN file is operator configuration: every problem with it is a configuration error.
    int err = errno;
    throw Failure(ExitCode::kConfig, "pin-file",
                  "cannot open PIN file " + path + ": " +
                      (err == ELOOP ? std::string("it is a symbolic link") : std::strerror(err)));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    throw Failure(ExitCode::kConfig, "pin-file", "cannot stat PIN file " + path);
  }
  if (!S_ISREG(st.st_mode)) {
    throw Failure(ExitCode::kConfig, "pin-file", "PIN file " + path + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    throw Failure(ExitCode::kConfig, "pin-file-permissions",
                  "PIN file " + path + " is accessible by group or others; chmod 0400 it");
  }
  // Owned by the caller, or the caller is root (an operator maintaining the signer's token).
  if (st.st_uid != ::geteuid() && ::geteuid() != 0) {
    throw Failure(ExitCode::kConfig, "pin-file-permissions",
                  "PIN file " + path + " is not owned by the user running this program");
  }
  std::string pin;
  char buf[256];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Failure(ExitCode::kConfig, "pin-file", "cannot read PIN file " + path);
    }
    if (n == 0) break;
    pin.append(buf, static_cast<std::size_t>(n));
    if (pin.size() > 1024) {
      Scrub(pin);
      throw Failure(ExitCode::kConfig, "pin-file", "PIN file " + path + " is too large");
    }
  }
  std::memset(buf, 0, sizeof buf);
  if (!pin.empty() && pin.back() == '\n') pin.pop_back();
  if (!pin.empty() && pin.back() == '\r') pin.pop_back();
  if (pin.empty()) throw Failure(ExitCode::kConfig, "pin-file", "PIN file " + path + " is empty");
  return pin;
}

std::string ReadSecretEnv(const std::string& variable) {
  // Read once, then scrubbed from the environment so that no child (a post-renew hook) and no
  // /proc/PID/environ reader sees it; later reads in this process (a daemon's next renewal) are
  // served from memory.
  static std::mutex mu;
  static std::map<std::string, std::string> taken;
  std::lock_guard lock(mu);
  if (auto it = taken.find(variable); it != taken.end()) return it->second;
  char* value = std::getenv(variable.c_str());
  if (value == nullptr || *value == '\0') {
    throw Failure(ExitCode::kConfig, "pin-env",
                  "environment variable " + variable + " (named for the PIN) is not set");
  }
  std::string secret = value;
  volatile char* p = value;
  for (std::size_t i = 0; p[i] != '\0'; ++i) p[i] = 'x';
  ::unsetenv(variable.c_str());
  taken[variable] = secret;
  return secret;
}

void AtomicFileWriter::Write(std::string_view contents) const {
  std::string dir = DirectoryOf(path_);
  std::string temp = path_ + ".tmp.XXXXXX";
  std::vector<char> name(temp.begin(), temp.end());
  name.push_back('\0');
  UniqueFd fd(::mkstemp(name.data()));
  if (fd.get() < 0) ThrowErrno("write-failed", "cannot create a temporary file next to", path_, errno);
  temp.assign(name.data());
  try {
    if (::fchmod(fd.get(), static_cast<mode_t>(mode_)) != 0) {
      ThrowErrno("write-failed", "cannot chmod", temp, errno);
    }
    if (owner_ && ::fchown(fd.get(), static_cast<uid_t>(owner_->first), static_cast<gid_t>(owner_->second)) != 0) {
      ThrowErrno("write-failed", "cannot chown", temp, errno);
    }
    WriteAll(fd.get(), contents, temp);
    if (::fsync(fd.get()) != 0) ThrowErrno("write-failed", "cannot fsync", temp, errno);
    if (::close(fd.release()) != 0) ThrowErrno("write-failed", "cannot close", temp, errno);
    if (fault_hook_) fault_hook_(temp);
    if (::rename(temp.c_str(), path_.c_str()) != 0) {
      ThrowErrno("write-failed", "cannot rename into", path_, errno);
    }
  } catch (...) {
    ::unlink(temp.c_str());
    throw;
  }
  FsyncDirectory(dir);
}

void WriteNewFileExclusive(const std::string& path, std::string_view contents, unsigned mode) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
               static_cast<mode_t>(mode)));
  if (fd.get() < 0) ThrowErrno("write-failed", "cannot create", path, errno);
  try {
    if (::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0) {
      ThrowErrno("write-failed", "cannot chmod", path, errno);
    }
    WriteAll(fd.get(), contents, path);
    if (::fsync(fd.get()) != 0) ThrowErrno("write-failed", "cannot fsync", path, errno);
  } catch (...) {
    ::unlink(path.c_str());
    throw;
  }
  FsyncDirectory(DirectoryOf(path));
}

PrivateLock::PrivateLock(const std::string& path, std::chrono::milliseconds wait) {
  // O_NOFOLLOW + fstat on the opened fd: what we check is what we lock. Owned by us (or we are
  // root) and closed to group and others, so nobody else can open it to hold the lock.
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    int err = errno;
    throw Failure(ExitCode::kUnavailable, "lock-failed",
                  "cannot open the lock file " + path + ": " +
                      (err == ELOOP ? std::string("it is a symbolic link") : std::strerror(err)));
  }
  struct stat st {};
  std::string problem;
  if (::fstat(fd_, &st) != 0) {
    problem = "cannot stat it";
  } else if (!S_ISREG(st.st_mode)) {
    problem = "it is not a regular file";
  } else if (st.st_uid != ::geteuid() && ::geteuid() != 0) {
    problem = "it is owned by uid " + std::to_string(st.st_uid) + ", not by this account";
  } else if ((st.st_mode & 077) != 0) {
    problem = "group or others can open it (chmod 0600)";
  }
  if (!problem.empty()) {
    ::close(fd_);
    throw Failure(ExitCode::kConfig, "lock-file-unsafe", "the lock file " + path + " is unsafe: " + problem);
  }
  auto until = std::chrono::steady_clock::now() + wait;
  auto pause = std::chrono::milliseconds(2);
  while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    if (err != EWOULDBLOCK && err != EINTR) {
      ::close(fd_);
      ThrowErrno("lock-failed", "cannot lock", path, err);
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= until) {
      ::close(fd_);
      throw Failure(ExitCode::kTempFail, "lock-busy",
                    path + " stayed locked for " + std::to_string(wait.count()) + "ms");
    }
    std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(pause, until - now));
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

PrivateLock::~PrivateLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the lock
}

namespace {

constexpr std::size_t kMaxHeadBytes = 512;
constexpr off_t kMaxLastLineBytes = 64 * 1024;
constexpr std::string_view kHeadTag = "etcd-log-head size=";

// The lock file holds one line "etcd-log-head size=<log size after the append> <head>\n". The
// size ties the head to the log it describes: a head left behind by a crash before it was
// updated, or a log grown by a torn fragment, no longer matches and is recovered from the log;
// a log that shrank is reported (LogHead::recorded) for the caller to refuse.
struct RecordedHead {
  std::string head;
  long long size = 0;
};
RecordedHead ReadRecordedHead(int head_fd) {
  char buf[kMaxHeadBytes];
  ssize_t n = ::pread(head_fd, buf, sizeof buf, 0);
  if (n <= 0) return {};
  std::string_view text(buf, static_cast<std::size_t>(n));
  auto newline = text.find('\n');
  if (newline == std::string_view::npos || text.substr(0, kHeadTag.size()) != kHeadTag) return {};
  text = text.substr(kHeadTag.size(), newline - kHeadTag.size());
  auto space = text.find(' ');
  if (space == 0 || space == std::string_view::npos || space > 18) return {};
  long long size = 0;
  for (char c : text.substr(0, space)) {
    if (c < '0' || c > '9') return {};
    size = size * 10 + (c - '0');
  }
  return {std::string(text.substr(space + 1)), size};
}

// The last line that ends in a newline (a torn fragment after it is skipped), read backwards.
std::string ReadLastCompleteLine(int fd, off_t size) {
  off_t from = std::max<off_t>(0, size - kMaxLastLineBytes);
  std::string tail(static_cast<std::size_t>(size - from), '\0');
  std::size_t got = 0;
  while (got < tail.size()) {
    ssize_t n = ::pread(fd, tail.data() + got, tail.size() - got, from + static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return "";
    got += static_cast<std::size_t>(n);
  }
  auto end = tail.rfind('\n');
  if (end == std::string::npos) return "";
  auto begin = end == 0 ? std::string::npos : tail.rfind('\n', end - 1);
  if (begin == std::string::npos) {
    if (from != 0) return "";  // longer than any record: not a line this program wrote
    return tail.substr(0, end);
  }
  return tail.substr(begin + 1, end - begin - 1);
}

void StoreHead(int head_fd, const std::string& head, off_t log_size) {
  std::string text = std::string(kHeadTag) + std::to_string(log_size) + " " + head + "\n";
  if (::pwrite(head_fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) return;
  if (::ftruncate(head_fd, static_cast<off_t>(text.size())) != 0) return;
  ::fdatasync(head_fd);
}

void AppendUnderLock(const std::string& path,
                     const std::function<ChainedLine(const LogHead&)>& build,
                     std::chrono::milliseconds wait, bool chained) {
  // Readers of the log (often group adm) could hold a flock on the log itself; the lock lives in
  // a private sidecar file instead.
  const std::string lock_path = path + ".lock";
  PrivateLock lock(lock_path, wait);
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640));
  if (fd.get() < 0) ThrowErrno("audit-failed", "cannot open audit log", path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) ThrowErrno("audit-failed", "cannot stat", path, errno);
  if (!S_ISREG(st.st_mode)) throw Failure(ExitCode::kIoErr, "audit-failed", path + " is not a regular file");
  // PrivateLock has checked this file (owner, mode, no symlink) and we hold its lock; a second
  // descriptor reads and writes the head it carries.
  UniqueFd head_fd(chained ? ::open(lock_path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC) : -1);
  if (chained && head_fd.get() < 0) ThrowErrno("audit-failed", "cannot open", lock_path, errno);
  LogHead head;
  head.log_empty = st.st_size == 0;
  if (chained) {
    RecordedHead recorded = ReadRecordedHead(head_fd.get());
    head.recorded = recorded.head;
    head.recorded_size = recorded.size;
    head.log_size = st.st_size;
    if (head.log_empty || recorded.size == st.st_size) head.stored = recorded.head;
    if (head.stored.empty() && !head.log_empty)
      head.last_line = ReadLastCompleteLine(fd.get(), st.st_size);
  }
  ChainedLine built = build(head);
  std::string record;
  // A writer killed mid-line (before this lock existed, or by SIGKILL between write and
  // truncate) leaves a fragment without a newline: keep it on a line of its own.
  char last = '\n';
  if (st.st_size > 0 && ::pread(fd.get(), &last, 1, st.st_size - 1) != 1) last = '\n';
  if (last != '\n') record.push_back('\n');
  record.append(built.line);
  record.push_back('\n');
  try {
    WriteAll(fd.get(), record, path);
    if (::fsync(fd.get()) != 0) ThrowErrno("audit-failed", "cannot fsync", path, errno);
  } catch (const Failure& f) {
    // A full disk must not leave half a record for the next one to be glued to: cut back to where
    // this record began, under the same lock.
    if (::ftruncate(fd.get(), st.st_size) == 0) ::fsync(fd.get());
    throw Failure(f.code(), "audit-failed", f.what());
  }
  if (chained && !built.head.empty() && built.head.size() + 40 <= kMaxHeadBytes &&
      built.head.find('\n') == std::string::npos) {
    StoreHead(head_fd.get(), built.head, st.st_size + static_cast<off_t>(record.size()));
  }
}

}  // namespace

void AppendLineLocked(const std::string& path, std::string_view line,
                      std::chrono::milliseconds wait) {
  auto unchained = [copy = std::string(line)](const LogHead&) { return ChainedLine{copy, ""}; };
  AppendUnderLock(path, unchained, wait, false);
}

void AppendLineLocked(const std::string& path,
                      const std::function<ChainedLine(const LogHead&)>& build,
                      std::chrono::milliseconds wait) {
  AppendUnderLock(path, build, wait, true);
}

void Scrub(std::string& secret) noexcept {
  volatile char* p = secret.data();
  for (std::size_t i = 0; i < secret.size(); ++i) p[i] = 0;
  secret.clear();
}

std::string ReadStoredHead(const std::string& lock_path) {
  UniqueFd fd(::open(lock_path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  struct stat st {};
  if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return "";
  return ReadRecordedHead(fd.get()).head;
}

}  // namespace base
