// SPDX-License-Identifier: Apache-2.0
// Key continuity and deny lists (#14): which (name, key) pairs may obtain certificates, which keys
// and names are refused, and the edits `etcd-signerctl` makes to those files.
//
// Three files, each optional and named in the signer's TOML configuration:
//   approved_keys      NAME SHA256 [comment]   consulted with approval = "new-keys"
//   denied_keys        NAME SHA256 [comment]   always consulted when set: 77 key-denied
//   denied_identities  NAME [comment]          always consulted when set: 77 identity-denied
// SHA256 is the requested key's fingerprint as the audit records carry it (public_key_sha256:
// pki::PublicKeySha256, 64 lowercase hex digits of the SHA-256 of the DER SubjectPublicKeyInfo).
// Blank lines and lines whose first non-blank character is '#' are ignored; any other line that
// does not parse is a configuration error naming FILE:LINE, so a typo never silently approves or
// un-denies anything. The signer is one process per request: each list it needs is scanned once,
// every line parsed, for the one pair it asks about (ListContains); etcd-signerctl, which asks a
// list many questions, loads it into a hash set (ApprovalList).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/failure.h"
#include "signer/audit_report.h"
#include "signer/config.h"

namespace signer {

// Where etcd-signerctl looks for the signer's configuration when --config is not given (the
// approval verbs only), and the path the pending-approval command leaves out.
constexpr const char* kDefaultConfigFile = "/etc/etcd-signer/signer.toml";
// The audit outcome of a request answered 75 pending-approval.
constexpr const char* kPendingOutcome = "pending";
// Files larger than this are refused (10,000 entries take about 1 MB).
constexpr std::size_t kMaxListBytes = 64u << 20;
// The longest name a list carries (a CN is at most 64 characters).
constexpr std::size_t kMaxListedName = 64;

// 64 lowercase hex digits: a key fingerprint as pki::PublicKeySha256 writes it.
bool IsKeySha256(std::string_view text);
// A name the lists can carry: 1 to 64 bytes of printable ASCII, no blanks, not starting with '#'.
bool IsListedName(std::string_view text);

enum class ListKind {
  kKeys,   // NAME SHA256 [comment]
  kNames,  // NAME [comment]
};

// One line of a list file, parsed. `entry` is false for blank and comment lines.
struct ListLine {
  bool entry = false;
  std::string_view name, key_sha256, comment;
};
// Parses one line (without its newline) strictly. Returns false and sets `why` if it is malformed.
bool ParseListLine(std::string_view line, ListKind kind, ListLine& out, std::string& why);

// A list file loaded for lookups: the bytes and a hash set of views into them.
class ApprovalList {
 public:
  // Parses `text`; `file` names it in errors. Failure(kConfig, "bad-config", "FILE:LINE: ...").
  static ApprovalList Parse(std::string text, ListKind kind, const std::string& file);
  // Reads `path` (a regular file of at most kMaxListBytes) and parses it. A missing or unreadable
  // file is Failure(kConfig, "bad-config"): a configured list that cannot be read fails closed.
  static ApprovalList Load(const std::string& path, ListKind kind);

  // For kKeys lists; for kNames lists only the name is compared.
  bool Contains(std::string_view name, std::string_view key_sha256 = {}) const;
  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string_view name, key;
  };
  static std::uint64_t Hash(std::string_view name, std::string_view key);
  static ApprovalList ParseStored(std::shared_ptr<const char> bytes, std::string_view text,
                                  ListKind kind, const std::string& file);
  ListKind kind_ = ListKind::kKeys;
  std::shared_ptr<const char> bytes_;  // the file's bytes, which the entries point into
  std::vector<Entry> entries_;         // each pair once
  // Open addressing, a power of two, at most half full: hash bits << 32 | entry index + 1.
  std::vector<std::uint64_t> slots_;
  std::size_t mask_ = 0;
};

// Whether the list file at `path` holds (name, key) (for kNames: the name), parsing every line
// strictly as ApprovalList::Load does (the same Failure for a malformed or unreadable file). One
// pass through a small reused buffer and nothing kept: the signer asks each list one question per
// process, and building a set of a megabyte of lines costs a fresh process more than scanning
// them (PERFORMANCE.md).
bool ListContains(const std::string& path, ListKind kind, std::string_view name,
                  std::string_view key_sha256 = {});

// The checks of one request: each configured list is read once, when its check runs.
class ApprovalGate {
 public:
  explicit ApprovalGate(const SignerConfig& config) : config_(config) {}
  // Failure(kNoPerm, "identity-denied") if `name` is in denied_identities.
  void CheckIdentity(std::string_view name);
  // Failure(kNoPerm, "key-denied") if (name, key) is in denied_keys; with approval = "new-keys",
  // Failure(kTempFail, "pending-approval") unless (name, key) is in approved_keys. The message
  // gives the key's SHA-256 and the command that approves it.
  void CheckKey(std::string_view name, std::string_view key_sha256);

 private:
  const SignerConfig& config_;
};

// "etcd-signerctl [--config FILE] approve NAME SHA256": what an operator runs on the signer host.
// --config is given when the signer read another file than kDefaultConfigFile.
std::string ApproveCommand(const SignerConfig& config, std::string_view name,
                           std::string_view key_sha256);

// --- Edits (etcd-signerctl) -------------------------------------------------------------------
// Each edit takes the PrivateLock PATH.lock (waiting at most `lock_wait`; Failure(kTempFail,
// "lock-busy")), reads PATH (missing: empty), parses it strictly (a malformed file is not
// rewritten: Failure(kConfig, "bad-config", "FILE:LINE: ...")), changes only the lines concerned
// (comments and other entries stay as they were), and replaces PATH atomically (temporary file,
// fsync, rename, directory fsync) with its previous mode and owner (new files: 0644). Nothing is
// written when nothing changes.
struct ListEdit {
  bool added = false;
  std::size_t removed = 0;  // lines removed
};
// Adds `NAME KEY comment` unless that pair is listed. With `replace_name`, removes every other
// line of NAME (the name's other keys).
ListEdit AddKey(const std::string& path, std::string_view name, std::string_view key_sha256,
                const std::string& comment, bool replace_name,
                std::chrono::milliseconds lock_wait = std::chrono::seconds(5));
// Removes every line of (NAME, KEY).
ListEdit RemoveKey(const std::string& path, std::string_view name, std::string_view key_sha256,
                   std::chrono::milliseconds lock_wait = std::chrono::seconds(5));
// Adds `NAME comment` unless NAME is listed.
ListEdit AddName(const std::string& path, std::string_view name, const std::string& comment,
                 std::chrono::milliseconds lock_wait = std::chrono::seconds(5));
// Removes every line of NAME.
ListEdit RemoveName(const std::string& path, std::string_view name,
                    std::chrono::milliseconds lock_wait = std::chrono::seconds(5));

// --- Views of the audit log (etcd-signerctl pending, serials) ---------------------------------

// One (name, key) that was answered pending-approval: from the audit log's "pending" records.
struct PendingKey {
  std::string name, key_sha256, last_peer;
  TimePoint first_seen, last_seen;
  std::uint64_t count = 0;
};

// Collects pending records fed oldest first, in memory proportional to the pending pairs.
class PendingSummary {
 public:
  void Add(const AuditEntry& e);
  // Oldest first seen first.
  std::vector<PendingKey> Keys() const;

 private:
  std::map<std::pair<std::string, std::string>, PendingKey> by_pair_;
};

// The `pending` table: IDENTITY KEY-SHA256 FIRST-SEEN LAST-SEEN COUNT PEER.
std::string FormatPending(const std::vector<PendingKey>& keys);

// An audit record's serial (lowercase hex) as `openssl x509 -serial` prints it after "serial=":
// uppercase hex, no colons, an even number of digits. nullopt if it is not hex.
std::optional<std::string> CrlSerial(std::string_view audit_serial);

}  // namespace signer
