#include "base/files.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "base/failure.h"

namespace base {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

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
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) ThrowErrno("write-failed", "cannot open directory", dir, errno);
  if (::fsync(fd.get()) != 0) ThrowErrno("write-failed", "cannot fsync directory", dir, errno);
}

}  // namespace

std::string ReadFileLimited(const std::string& path, std::size_t max_bytes,
                            const std::string& reason) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
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
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
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
  const char* value = std::getenv(variable.c_str());
  if (value == nullptr || *value == '\0') {
    throw Failure(ExitCode::kConfig, "pin-env",
                  "environment variable " + variable + " (named for the PIN) is not set");
  }
  return value;
}

void AtomicFileWriter::Write(std::string_view contents) const {
  std::string dir = DirectoryOf(path_);
  std::string temp = path_ + ".tmp.XXXXXX";
  std::vector<char> name(temp.begin(), temp.end());
  name.push_back('\0');
  Fd fd(::mkstemp(name.data()));
  if (fd.get() < 0) ThrowErrno("write-failed", "cannot create a temporary file next to", path_, errno);
  temp.assign(name.data());
  try {
    if (::fchmod(fd.get(), static_cast<mode_t>(mode_)) != 0) {
      ThrowErrno("write-failed", "cannot chmod", temp, errno);
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
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
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

void AppendLineLocked(const std::string& path, std::string_view line) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640));
  if (fd.get() < 0) ThrowErrno("audit-failed", "cannot open audit log", path, errno);
  if (::flock(fd.get(), LOCK_EX) != 0) ThrowErrno("audit-failed", "cannot lock", path, errno);
  std::string record(line);
  record.push_back('\n');
  // One write() of the whole record under the lock: readers never see half a line.
  WriteAll(fd.get(), record, path);
  if (::fsync(fd.get()) != 0) ThrowErrno("audit-failed", "cannot fsync", path, errno);
}

FileLock::FileLock(const std::string& path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) ThrowErrno("lock-failed", "cannot open", path, errno);
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno != EINTR) {
      int err = errno;
      ::close(fd_);
      ThrowErrno("lock-failed", "cannot lock", path, err);
    }
  }
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the lock
}

void Scrub(std::string& secret) noexcept {
  volatile char* p = secret.data();
  for (std::size_t i = 0; i < secret.size(); ++i) p[i] = 0;
  secret.clear();
}

}  // namespace base
