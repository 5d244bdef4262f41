// SPDX-License-Identifier: Apache-2.0
// Reading the approval and deny lists (list_format.h): the signer asks each list it needs one
// question per process (ListContains: each line parsed, nothing kept); etcd-signerctl, which asks
// a list many questions, loads it into a hash set (ApprovalList). A list that cannot be read or
// does not parse is Failure(kConfig, "bad-config", "FILE[:LINE]: ..."): a configured list fails
// closed.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/failure.h"
#include "signer/list_format.h"

namespace signer {

// Files larger than this are refused (10,000 entries take about 1 MB).
constexpr std::size_t kMaxListBytes = 64u << 20;

// A list file's bytes, read whole: `text` points into `bytes`.
struct ListText {
  std::shared_ptr<const char> bytes;
  std::string_view text;
};
// Reads the regular file `path` of at most kMaxListBytes in one read.
ListText ReadListFile(const std::string& path);

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
//
// A list is trusted only when nobody but root and `owners` (list_admin) can change it: the file,
// and every directory above it, as OpenSSH's StrictModes (base/path_trust.h). Otherwise
// Failure(kConfig, "list-unsafe"): the signer account must not be able to approve itself.
bool ListContains(const std::string& path, ListKind kind, std::string_view name,
                  std::string_view key_sha256 = {}, const std::vector<uid_t>& owners = {});

}  // namespace signer
