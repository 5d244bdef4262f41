// SPDX-License-Identifier: Apache-2.0
// The audit log's hash chain (protocol.md §5): every record carries "v" (the record format),
// "seq" (1, 2, 3, ... across rotated files) and "prev" (the lowercase SHA-256 hex of the previous
// record's exact line bytes, without its newline). Changing, deleting, inserting or reordering a
// line breaks the chain at that place; cutting off the tail is caught against a head (seq + hash
// of the last line) kept elsewhere, e.g. the copy syslog carries off the host.
#pragma once

#include "base/fd.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/files.h"

namespace signer {

constexpr int kAuditFormatVersion = 1;
// The "prev" of the first record of a log that had no records before it.
extern const std::string kGenesisPrev;  // 64 zeros

// Lowercase hex SHA-256.
std::string Sha256Hex(std::string_view bytes);

// The same over bytes that arrive in pieces (a file read in chunks, never held whole).
class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(const Sha256Stream&) = delete;
  Sha256Stream& operator=(const Sha256Stream&) = delete;
  void Update(std::string_view bytes);
  std::string FinalHex();  // once

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A chain's head: the seq of its last record and the SHA-256 of that record's line. Before any
// record: seq 0 and the genesis hash.
struct ChainHead {
  std::uint64_t seq = 0;
  std::string hash = kGenesisPrev;
};
bool operator==(const ChainHead& a, const ChainHead& b);

// "SEQ:HASH", the form `etcd-signerctl audit verify --head` takes and prints.
std::string FormatHead(const ChainHead& head);
// Parses "SEQ:HASH" strictly (seq >= 1, 64 lowercase hex digits); nullopt otherwise.
std::optional<ChainHead> ParseHead(std::string_view text);

// Where the next record continues: the head the previous append stored, else (first run after an
// upgrade, or a stale head) recovered from the log's last complete line: a chained record gives
// its seq and hash; a record from before the chain existed anchors seq 1 to that line's hash.
// An empty log without a stored head starts at the genesis.
ChainHead ResumeHead(const base::LogHead& log);

// ResumeHead, refusing what would re-chain history silently (#24): when a head was recorded and
// the log no longer ends in it (its tail was cut, it was replaced by a shorter one, or an
// unchained line follows the chain), `gap` says so and `head` is where a `resync` record
// continues from (the log's real last line). The record asked for must then not be written.
struct ChainResume {
  ChainHead head;
  std::string gap;  // "" when the chain continues normally
};
ChainResume ResumeChain(const base::LogHead& log);

// The chain fields of one line, parsed strictly; nullopt (and `why`) if it is not a chained
// record. `legacy` is set for a valid etcd-signer record from before the chain existed.
struct ChainFields {
  std::uint64_t seq = 0;
  std::string prev;
  std::string time;
  bool resync = false;  // outcome "resync": the signer found its log cut and said so here
};
std::optional<ChainFields> ParseChainFields(std::string_view line, std::string* why, bool* legacy);

// A record line split into its top-level fields without building a JSON document, for the shape
// ToJson writes: one flat object whose values are strings without escapes, integers, true, false
// or null. Returns false for anything else (escaped text, nesting, malformed JSON); callers then
// fall back to a full JSON parser, so the answer is the same, only slower.
struct RawField {
  std::string_view key;
  std::string_view value;  // a string's contents without quotes, or the literal
  bool is_string = false;
};
bool SplitFlatRecord(std::string_view line, std::vector<RawField>& out);

// Where and how a chain is broken. `line` is 1-based within `file`.
struct ChainBreak {
  std::string file;
  std::uint64_t line = 0;
  std::string message;  // "FILE:LINE: ..." — the first broken place, exactly
};

// Checks a chain fed line by line, oldest file first, in constant memory. The first problem
// stops it; later lines are not looked at.
class ChainVerifier {
 public:
  // `expected_head`: the record with that seq must exist and hash to it (catches a cut tail).
  explicit ChainVerifier(std::optional<ChainHead> expected_head = std::nullopt) {
    if (expected_head) expected_.emplace(expected_head->seq, expected_head->hash);
  }
  // Every head in `heads` (the recorded one, masters' witnesses) likewise; two that name one seq
  // with different hashes cannot both hold, and the one the log does not hold is reported.
  explicit ChainVerifier(const std::vector<ChainHead>& heads) {
    for (const auto& h : heads) expected_.emplace(h.seq, h.hash);
  }

  void BeginFile(const std::string& name);
  // One line without its newline; `terminated` is false for a last line with no newline.
  // Returns false once the chain is broken.
  bool Feed(std::string_view line, bool terminated);
  // After the last file: checks the expected head. Returns false if the chain is broken.
  bool Finish();

  const std::optional<ChainBreak>& broken() const { return broken_; }
  std::uint64_t records() const { return records_; }
  std::uint64_t legacy_records() const { return legacy_; }
  std::uint64_t first_seq() const { return first_seq_; }
  const std::string& first_time() const { return first_time_; }
  const std::string& last_time() const { return last_time_; }
  // The head of the verified chain (seq 0 when no record was seen).
  const ChainHead& head() const { return head_; }

 private:
  bool Break(const std::string& message);
  std::string Here() const;
  std::string Previous() const;

  std::multimap<std::uint64_t, std::string> expected_;  // seq -> hash of each head to check
  std::optional<ChainBreak> broken_;
  std::string file_;
  std::uint64_t line_ = 0;
  std::string prev_location_;   // "FILE:LINE" of the last record
  std::string prev_line_hash_;  // hash of the previous line, whatever it was (for legacy anchors)
  std::uint64_t records_ = 0;
  std::uint64_t legacy_ = 0;
  std::uint64_t first_seq_ = 0;
  std::string first_time_, last_time_;
  ChainHead head_;
};

// Reads `path` line by line in constant memory (lines longer than 1 MiB are passed cut at 1 MiB)
// and calls `each(line, terminated)`; stops early when it returns false. Throws Failure
// (kNoInput "read-failed") if the file cannot be opened or read.
void ForEachLine(const std::string& path, const std::function<bool(std::string_view, bool)>& each);

// Opens an audit file for reading, as every reader does (etcd-signerctl runs as root, on files in
// the signer account's directory): never through a symbolic link, never a FIFO or device
// (Failure(kNoInput, "read-failed")), and only the file its directory's owner keeps there
// (base::UnexpectedOwner: not a planted file, not a hard link; Failure(kNoInput, "audit-file-unsafe")).
base::UniqueFd OpenAuditFile(const std::string& path);

}  // namespace signer
