// SPDX-License-Identifier: Apache-2.0
#include "signer/list_format.h"

#include <array>
#include <cstdint>
#include <cstring>

#include "base/text.h"

namespace signer {
namespace {

const char* KindName(ListKind kind) {
  return kind == ListKind::kKeys ? "NAME SHA256 [comment]" : "NAME [comment]";
}

// Byte classes for the one pass over each line (a request reads every line of every list: at
// 10,000 approved keys that is about a megabyte, parsed in well under a millisecond).
enum ByteClass : unsigned char {
  kBad = 0,          // C0 controls except tab, DEL: refused anywhere
  kBlank = 1,        // space, tab
  kCommentOnly = 2,  // bytes >= 0x80 (UTF-8 in comments)
  kNameChar = 4,     // printable ASCII except blank
  kHexChar = 8,      // 0-9 a-f (also kNameChar)
};

constexpr std::array<unsigned char, 256> MakeClasses() {
  std::array<unsigned char, 256> t{};
  for (int c = 0; c < 256; ++c) {
    unsigned char v = kBad;
    if (c == ' ' || c == '\t')
      v = kBlank;
    else if (c > ' ' && c < 0x7f)
      v = kNameChar;
    else if (c >= 0x80)
      v = kCommentOnly;
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) v |= kHexChar;
    t[static_cast<std::size_t>(c)] = v;
  }
  return t;
}
constexpr std::array<unsigned char, 256> kClass = MakeClasses();

unsigned char ClassOf(char c) {
  return kClass[static_cast<unsigned char>(c)];
}

// Eight bytes at a time for the long parts of a line (the key and the comment): this check runs
// over every line of every list on every request. For bytes below 0x80, (x + L*(0x80 - m)) & H
// sets a byte's high bit exactly when that byte is >= m, without carries between bytes.
constexpr std::uint64_t kL = 0x0101010101010101ull;
constexpr std::uint64_t kH = 0x8080808080808080ull;
constexpr std::uint64_t AtLeast(std::uint64_t seven_bit, unsigned m) {
  return (seven_bit + kL * (0x80 - m)) & kH;
}

std::uint64_t Word(const char* p) {
  std::uint64_t x;
  std::memcpy(&x, p, 8);
  return x;
}

// All eight bytes are 0-9 or a-f.
bool HexWord(std::uint64_t x) {
  if (x & kH) return false;
  std::uint64_t digit = AtLeast(x, '0') & ~AtLeast(x, '9' + 1);
  std::uint64_t lower = AtLeast(x, 'a') & ~AtLeast(x, 'f' + 1);
  return (digit | lower) == kH;
}

// All eight bytes are printable ASCII other than blank (0x21-0x7e).
bool NameWord(std::uint64_t x) {
  if (x & kH) return false;
  return AtLeast(x, 0x21) == kH && AtLeast(x, 0x7f) == 0;
}

// Some byte is a C0 control other than tab, or DEL (bytes >= 0x80 are fine: UTF-8 comments).
bool BadWord(std::uint64_t x) {
  std::uint64_t ascii = ~x & kH;  // high bit set where the byte is below 0x80
  std::uint64_t y = x & ~kH;
  std::uint64_t control = ~AtLeast(y, 0x20) & ascii;
  std::uint64_t tab = AtLeast(y, '\t') & ~AtLeast(y, '\t' + 1);
  std::uint64_t del = AtLeast(y, 0x7f) & ascii;
  return ((control & ~tab) | del) != 0;
}

// The first byte in `text` that no line may hold, or npos.
std::size_t FindBad(std::string_view text) {
  std::size_t i = 0;
  bool any_bad = false;
  if (text.size() >= 8) {
    for (; i + 8 <= text.size() && !any_bad; i += 8) any_bad = BadWord(Word(text.data() + i));
    // The tail as one more word that overlaps the last one.
    any_bad = any_bad || BadWord(Word(text.data() + text.size() - 8));
  } else {
    for (; i < text.size(); ++i) any_bad = any_bad || ClassOf(text[i]) == kBad;
  }
  if (!any_bad) return std::string_view::npos;
  for (i = 0; i < text.size(); ++i) {
    if (ClassOf(text[i]) == kBad) return i;
  }
  return std::string_view::npos;
}

std::string BadByte(char c) {
  return c == '\r' ? "a carriage return (save the file with Unix line endings)"
                   : "a control character";
}

}  // namespace

bool IsKeySha256(std::string_view text) {
  if (text.size() != 64) return false;
  for (std::size_t i = 0; i < 64; i += 8) {
    if (!HexWord(Word(text.data() + i))) return false;
  }
  return true;
}

bool IsListedName(std::string_view text) {
  if (text.empty() || text.size() > kMaxListedName || text[0] == '#') return false;
  unsigned char all = kNameChar;
  for (char c : text) all &= ClassOf(c);
  return all != 0;
}

bool ParseListLine(std::string_view line, ListKind kind, ListLine& out, std::string& why) {
  out = ListLine{};
  const std::size_t n = line.size();
  std::size_t i = 0;
  while (i < n && ClassOf(line[i]) == kBlank) ++i;
  if (i == n) return true;  // blank
  auto rest_is_text = [&](std::size_t from) {
    std::size_t bad = FindBad(line.substr(from));
    if (bad == std::string_view::npos) return true;
    why = BadByte(line[from + bad]);
    return false;
  };
  if (line[i] == '#') return rest_is_text(i);  // comment
  std::size_t start = i;
  while (i + 8 <= n && NameWord(Word(line.data() + i))) i += 8;
  while (i < n && (ClassOf(line[i]) & kNameChar)) ++i;
  out.name = line.substr(start, i - start);
  if (i < n && ClassOf(line[i]) != kBlank) {
    if (ClassOf(line[i]) == kBad) {
      why = BadByte(line[i]);
    } else {
      std::size_t end = line.find_first_of(" \t", i);
      why = "'" +
            base::Printable(line.substr(start, end == std::string_view::npos ? end : end - start),
                            80) +
            "' is not a name (1 to 64 printable ASCII characters, no blanks); lines are " +
            KindName(kind);
    }
    return false;
  }
  if (out.name.size() > kMaxListedName) {
    why = "'" + base::Printable(out.name, 80) +
          "' is not a name (1 to 64 printable ASCII characters, no blanks); lines are " +
          KindName(kind);
    return false;
  }
  while (i < n && ClassOf(line[i]) == kBlank) ++i;
  if (kind == ListKind::kKeys) {
    start = i;
    if (n - i >= 64 && (n - i == 64 || ClassOf(line[i + 64]) == kBlank)) {
      i += 64;  // the usual case: no need to look for the end of the field byte by byte
    } else {
      while (i < n && ClassOf(line[i]) != kBlank) ++i;
    }
    out.key_sha256 = line.substr(start, i - start);
    if (!IsKeySha256(out.key_sha256)) {
      std::size_t bad = FindBad(out.key_sha256);
      std::string key = base::Printable(out.key_sha256, 80);
      if (bad != std::string_view::npos) {
        why = BadByte(out.key_sha256[bad]);
      } else if (out.key_sha256.empty()) {
        why = "no key after the name; lines are " + std::string(KindName(kind));
      } else if (out.key_sha256.substr(0, 7) == "SHA256:") {
        why = "'" + key +
              "' is an SSH key fingerprint; give the certificate key's SHA-256 (64 lowercase hex "
              "digits, as `etcd-signerctl pending` prints it)";
      } else {
        why = "'" + key +
              "' is not a key SHA-256 (64 lowercase hex digits of the SubjectPublicKeyInfo's "
              "SHA-256, as `etcd-signerctl pending` prints it)";
      }
      return false;
    }
    while (i < n && ClassOf(line[i]) == kBlank) ++i;
  }
  if (!rest_is_text(i)) return false;
  out.comment = line.substr(i);
  out.entry = true;
  return true;
}

}  // namespace signer
