// SPDX-License-Identifier: Apache-2.0
// The operator's edits of the approval and deny lists (etcd-signerctl approve, deny,
// deny-identity, allow-identity).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace signer {

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

}  // namespace signer
