// Small, strict file primitives. Every read is bounded; every write that replaces a file is atomic.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace base {

// Reads a whole regular file of at most `max_bytes`. Throws Failure(reason) on any error, including
// a file that is larger than the limit.
std::string ReadFileLimited(const std::string& path, std::size_t max_bytes,
                            const std::string& reason = "read-failed");

// Reads a secret (a PIN) from a file. The file must be a regular file not accessible by group or
// others (0400/0600), owned by the caller (or the caller is root); one trailing newline is
// removed. The value is never part of any error message.
std::string ReadSecretFile(const std::string& path);

// Reads a secret from the environment variable *named* by the operator (the value never travels
// in argv). Throws if unset or empty.
std::string ReadSecretEnv(const std::string& variable);

// Replaces `path` atomically: write a temp file in the same directory, fsync it, rename over the
// target, fsync the directory. Readers see either the old or the new complete file, never a mix;
// on any failure the old file is untouched and the temp file is removed.
class AtomicFileWriter {
 public:
  // Called between fsync and rename, for tests that simulate a crash at that point.
  using FaultHook = std::function<void(const std::string& temp_path)>;

  explicit AtomicFileWriter(std::string path, unsigned mode = 0644)
      : path_(std::move(path)), mode_(mode) {}

  void set_fault_hook(FaultHook hook) { fault_hook_ = std::move(hook); }
  void Write(std::string_view contents) const;

 private:
  std::string path_;
  unsigned mode_;
  FaultHook fault_hook_;
};

// Creates a new file with O_EXCL|O_NOFOLLOW and the given mode, writes and fsyncs it. Refuses to
// overwrite anything (used for private key files).
void WriteNewFileExclusive(const std::string& path, std::string_view contents, unsigned mode);

// Appends one line to `path` under an exclusive flock, then fsyncs. Used for the audit log so that
// concurrent writers never interleave records.
void AppendLineLocked(const std::string& path, std::string_view line);

// Holds an exclusive flock(2) on `path` (opened read-only: no write access needed) for its
// lifetime. Used to serialize token use across processes.
class FileLock {
 public:
  explicit FileLock(const std::string& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

// Overwrites a string's bytes before it is released (for PINs).
void Scrub(std::string& secret) noexcept;

}  // namespace base
