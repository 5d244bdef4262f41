// SPDX-License-Identifier: Apache-2.0
// The line format of the approval and deny lists (#14), parsed strictly in one place:
//   approved_keys, denied_keys   NAME SHA256 [comment]
//   denied_identities            NAME [comment]
// SHA256 is the requested key's fingerprint as the audit records carry it (public_key_sha256:
// pki::PublicKeySha256, 64 lowercase hex digits of the SHA-256 of the DER SubjectPublicKeyInfo).
// Blank lines and lines whose first non-blank character is '#' are ignored; any other line that
// does not parse is an error, so a typo never silently approves or un-denies anything.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace signer {

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

// Calls `each(line_number, line)` for every line of `text` (without its newline), from 1.
template <typename F>
void ForEachListLine(std::string_view text, F&& each) {
  std::size_t number = 0;
  while (!text.empty()) {
    ++number;
    std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    each(number, line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
}

}  // namespace signer
