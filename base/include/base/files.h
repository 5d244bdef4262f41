// SPDX-License-Identifier: Apache-2.0
// Small, strict file primitives. Every read is bounded; every write that replaces a file is atomic.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

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
// in argv). The first read overwrites the value and removes the variable from the environment
// (children never inherit it); the process keeps it in memory for later reads. Throws if unset or
// empty.
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
  // Gives the new file this owner and group before it replaces the old one (an edit by root of a
  // file that another account must read keeps that file's owner).
  void set_owner(unsigned uid, unsigned gid) { owner_ = {uid, gid}; }
  void Write(std::string_view contents) const;

 private:
  std::string path_;
  unsigned mode_;
  FaultHook fault_hook_;
  std::optional<std::pair<unsigned, unsigned>> owner_;
};

// Creates a new file with O_EXCL|O_NOFOLLOW and the given mode, writes and fsyncs it. Refuses to
// overwrite anything (used for private key files).
void WriteNewFileExclusive(const std::string& path, std::string_view contents, unsigned mode);

// An exclusive flock(2) on a private lock file, held for the object's lifetime. The file is
// created 0600 if missing, opened with O_NOFOLLOW, and must be a regular file owned by the
// effective user (or the caller is root) with no group/other access: a lock that other users can
// open is a lock they can hold forever. Waits at most `wait`, then throws
// Failure(kTempFail, "lock-busy"); an unsafe file is Failure(kConfig, "lock-file-unsafe").
class PrivateLock {
 public:
  PrivateLock(const std::string& path, std::chrono::milliseconds wait);
  ~PrivateLock();
  PrivateLock(const PrivateLock&) = delete;
  PrivateLock& operator=(const PrivateLock&) = delete;

 private:
  int fd_ = -1;
};

// Appends one line to `path` (created 0640) under the PrivateLock `path`.lock (waiting at most
// `wait`), then fsyncs. Concurrent writers never interleave; a failed or short write (full disk)
// is truncated away under the lock, so the file only ever holds whole lines. Throws
// Failure(reason "audit-failed" or "lock-busy").
void AppendLineLocked(const std::string& path, std::string_view line,
                      std::chrono::milliseconds wait = std::chrono::seconds(2));

// What a chained append knows, under the lock, about the log it extends.
struct LogHead {
  // The head the previous append stored (ChainedLine::head), if it still describes this log: the
  // log has exactly the size recorded with it, or is empty (just rotated: the chain continues in
  // the new file). "" when there is none or it is stale (a crash between the log's fsync and the
  // head's, a log written before heads existed).
  std::string stored;
  bool log_empty = true;
  // Only when `stored` is "" and the log is not empty: the log's last complete line (without its
  // newline; a torn fragment after it is skipped), or "" if there is none within 64 KiB.
  std::string last_line;
  // The head the previous append recorded, whether or not it still describes this log ("" if
  // none was ever recorded), the log size it was recorded with, and the log's size now: a log
  // shorter than its recorded head was cut, which the chain must not silently continue.
  std::string recorded;
  long long recorded_size = 0;
  long long log_size = 0;
};

struct ChainedLine {
  std::string line;  // appended, followed by a newline
  std::string head;  // kept in `path`.lock once the line is fsync'd; at most 400 bytes, no newline
};

// Like AppendLineLocked, but the line is built under the lock by `build` from the head the
// previous append left, and the new head is stored in the lock file itself (a private 0600 file
// nobody else can open), so an append never reads the log except once to recover a missing or
// stale head. The head is written only after the line is on disk: a line cut back or torn by a
// killed writer never advances it. A failure to store the head is not an error of the append (the
// line is on file); the next append sees the head as stale and recovers it from the log.
// The head the last chained append of a log stored in its lock file `lock_path` (the log's path
// + ".lock"), as ChainedLine::head; "" when there is none, or the file is missing, unreadable,
// a link or not a regular file. For readers of the log: what the signer says its log ends in.
std::string ReadStoredHead(const std::string& lock_path);

void AppendLineLocked(const std::string& path,
                      const std::function<ChainedLine(const LogHead&)>& build,
                      std::chrono::milliseconds wait = std::chrono::seconds(2));

// Overwrites a string's bytes before it is released (for PINs).
void Scrub(std::string& secret) noexcept;

}  // namespace base
