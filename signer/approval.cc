// SPDX-License-Identifier: Apache-2.0
#include "signer/approval.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>

#include "base/duration.h"
#include "base/files.h"
#include "base/text.h"

namespace signer {
namespace {

using base::ExitCode;
using base::Failure;

[[noreturn]] void BadConfig(const std::string& message) {
  throw Failure(ExitCode::kConfig, "bad-config", message);
}

const char* KindName(ListKind kind) {
  return kind == ListKind::kKeys ? "NAME SHA256 [comment]" : "NAME [comment]";
}

// Calls `each(line_number, line)` for every line of `text` (without its newline).
template <typename F>
void ForEachTextLine(std::string_view text, F&& each) {
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

// A list file opened for reading: a regular file, or a configuration error. Closed on scope exit.
struct OpenList {
  int fd;
  struct stat st {};
  explicit OpenList(const std::string& path) : fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd < 0) BadConfig("cannot read " + path + ": " + std::strerror(errno));
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      BadConfig("cannot read " + path + ": not a regular file");
    }
  }
  ~OpenList() { ::close(fd); }
  OpenList(const OpenList&) = delete;
  OpenList& operator=(const OpenList&) = delete;
};

// The whole file in one read of its size into memory mapped and populated in one call: a list is
// read on every request, by a fresh process, and faulting in a megabyte page by page costs more
// than parsing it (not the file itself mapped: one truncated in place would be SIGBUS). Bounded,
// regular files only; every problem is a configuration error.
std::pair<std::shared_ptr<const char>, std::string_view> ReadList(const std::string& path) {
  OpenList file(path);
  const int fd = file.fd;
  const struct stat& st = file.st;
  if (static_cast<std::size_t>(st.st_size) > kMaxListBytes) {
    BadConfig(path + " is larger than " + std::to_string(kMaxListBytes) + " bytes");
  }
  // Room for one byte more than its size: a file that grew meanwhile is too large for this read.
  std::size_t capacity = static_cast<std::size_t>(st.st_size) + 1;
  void* area = ::mmap(nullptr, capacity, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (area == MAP_FAILED) BadConfig("cannot read " + path + ": " + std::strerror(errno));
  std::shared_ptr<const char> bytes(static_cast<const char*>(area), [capacity](const char* p) {
    ::munmap(const_cast<char*>(p), capacity);
  });
  char* data = static_cast<char*>(area);
  std::size_t got = 0;
  while (got < capacity) {
    ssize_t n = ::read(fd, data + got, capacity - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) BadConfig("cannot read " + path + ": " + std::strerror(errno));
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got == capacity) BadConfig(path + " changed while it was read; retry");
  return {std::move(bytes), std::string_view(data, got)};
}

}  // namespace

namespace {

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

std::uint64_t ApprovalList::Hash(std::string_view name, std::string_view key) {
  // FNV-1a over the name; the key is a SHA-256 in hex already, so 16 of its digits are as good
  // as any hash of it (and a list nobody but the operator writes cannot be made to collide).
  std::uint64_t h = 14695981039346656037ull;
  for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  if (key.size() >= 16) {
    std::uint64_t a = 0, b = 0;
    std::memcpy(&a, key.data(), 8);
    std::memcpy(&b, key.data() + 8, 8);
    h ^= a * 0x9e3779b97f4a7c15ull ^ b;
  }
  return (h ^ (h >> 29)) * 0xbf58476d1ce4e5b9ull;
}

ApprovalList ApprovalList::Parse(std::string text, ListKind kind, const std::string& file) {
  auto owned = std::make_shared<std::string>(std::move(text));
  std::string_view view = *owned;
  return ParseStored(std::shared_ptr<const char>(owned, owned->data()), view, kind, file);
}

ApprovalList ApprovalList::Load(const std::string& path, ListKind kind) {
  auto [bytes, text] = ReadList(path);
  return ParseStored(std::move(bytes), text, kind, path);
}

ApprovalList ApprovalList::ParseStored(std::shared_ptr<const char> bytes, std::string_view text,
                                       ListKind kind, const std::string& file) {
  ApprovalList list;
  list.kind_ = kind;
  list.bytes_ = std::move(bytes);
  // Open addressing over indices, at most half full: 8 bytes a slot (the upper half a piece of
  // the hash, so a probe rarely looks at an entry that is not the one), no node per entry. Sized
  // from the file before parsing (a key line takes at least 67 bytes), so nothing is rehashed.
  std::size_t most = kind == ListKind::kKeys ? text.size() / 67 + 1 : text.size() / 2 + 1;
  std::size_t slots = 16;
  while (slots < most * 2) slots *= 2;
  list.slots_.assign(slots, 0);
  list.mask_ = slots - 1;
  list.entries_.reserve(most);
  ListLine parsed;
  std::string why;
  ForEachTextLine(text, [&](std::size_t number, std::string_view line) {
    if (!ParseListLine(line, kind, parsed, why)) {
      BadConfig(file + ":" + std::to_string(number) + ": " + why);
    }
    if (!parsed.entry) return;
    std::uint64_t h = Hash(parsed.name, parsed.key_sha256);
    for (std::size_t at = static_cast<std::size_t>(h) & list.mask_;; at = (at + 1) & list.mask_) {
      std::uint64_t slot = list.slots_[at];
      if (slot == 0) {
        list.entries_.push_back(Entry{parsed.name, parsed.key_sha256});
        list.slots_[at] = ((h >> 32) << 32) | list.entries_.size();  // index + 1
        break;
      }
      if ((slot >> 32) == (h >> 32)) {
        const Entry& other = list.entries_[(slot & 0xffffffffu) - 1];
        if (other.name == parsed.name && other.key == parsed.key_sha256) break;  // a repeated line
      }
    }
  });
  return list;
}

bool ApprovalList::Contains(std::string_view name, std::string_view key_sha256) const {
  if (name.empty() || slots_.empty()) return false;
  std::string_view key = kind_ == ListKind::kKeys ? key_sha256 : std::string_view();
  std::uint64_t h = Hash(name, key);
  for (std::size_t at = static_cast<std::size_t>(h) & mask_;; at = (at + 1) & mask_) {
    std::uint64_t slot = slots_[at];
    if (slot == 0) return false;
    if ((slot >> 32) == (h >> 32)) {
      const Entry& e = entries_[(slot & 0xffffffffu) - 1];
      if (e.name == name && e.key == key) return true;
    }
  }
}

bool ListContains(const std::string& path, ListKind kind, std::string_view name,
                  std::string_view key_sha256) {
  if (kind == ListKind::kNames) key_sha256 = {};
  OpenList file(path);
  const int fd = file.fd;
  const struct stat& st = file.st;
  // Like sshd's StrictModes for authorized_keys: a list that others can write is one they can
  // approve themselves into.
  if ((st.st_mode & 022) != 0) {
    BadConfig(path +
              " is writable by group or others: chmod go-w it (whoever can write it decides who "
              "gets certificates)");
  }
  // One small buffer, reused: a fresh process pays for every page it touches the first time, and
  // a list of 10,000 keys is a megabyte (PERFORMANCE.md).
  static thread_local std::array<char, 64 * 1024> chunk;
  std::string carry;  // a line that spans two reads
  std::size_t number = 0, total = 0;
  bool found = false;
  ListLine parsed;
  std::string why;
  auto line_done = [&](std::string_view line) {
    ++number;
    if (!ParseListLine(line, kind, parsed, why))
      BadConfig(path + ":" + std::to_string(number) + ": " + why);
    if (parsed.entry && parsed.name == name && parsed.key_sha256 == key_sha256) found = true;
  };
  for (;;) {
    ssize_t n = ::read(fd, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) BadConfig("cannot read " + path + ": " + std::strerror(errno));
    if (n == 0) break;
    total += static_cast<std::size_t>(n);
    if (total > kMaxListBytes)
      BadConfig(path + " is larger than " + std::to_string(kMaxListBytes) + " bytes");
    std::string_view data(chunk.data(), static_cast<std::size_t>(n));
    for (;;) {
      std::size_t nl = data.find('\n');
      if (nl == std::string_view::npos) {
        carry.append(data);
        break;
      }
      if (carry.empty()) {
        line_done(data.substr(0, nl));
      } else {
        carry.append(data.substr(0, nl));
        line_done(carry);
        carry.clear();
      }
      data.remove_prefix(nl + 1);
    }
  }
  if (!carry.empty()) line_done(carry);  // a last line without a newline
  return found;
}

void ApprovalGate::CheckIdentity(std::string_view name) {
  if (config_.denied_identities.empty()) return;
  if (ListContains(config_.denied_identities, ListKind::kNames, name)) {
    throw Failure(ExitCode::kNoPerm, "identity-denied",
                  "the name '" + base::Printable(name, 80) +
                      "' is denied on this signer (denied_identities): no certificate is issued "
                      "for it until an operator allows it again");
  }
}

void ApprovalGate::CheckKey(std::string_view name, std::string_view key_sha256) {
  if (!config_.denied_keys.empty() &&
      ListContains(config_.denied_keys, ListKind::kKeys, name, key_sha256)) {
    throw Failure(ExitCode::kNoPerm, "key-denied",
                  "the key " + std::string(key_sha256) + " is denied for '" +
                      base::Printable(name, 80) + "' (denied_keys): make a new key");
  }
  if (config_.approval != ApprovalMode::kNewKeys) return;
  if (!ListContains(config_.approved_keys, ListKind::kKeys, name, key_sha256)) {
    throw Failure(ExitCode::kTempFail, "pending-approval",
                  "the key SHA-256 " + std::string(key_sha256) + " of '" +
                      base::Printable(name, 80) +
                      "' is not approved yet; an operator approves it on the signer host with: " +
                      ApproveCommand(config_, name, key_sha256));
  }
}

std::string ApproveCommand(const SignerConfig& config, std::string_view name,
                           std::string_view key_sha256) {
  std::string command = "etcd-signerctl";
  if (!config.config_file.empty() && config.config_file != kDefaultConfigFile) {
    command += " --config " + config.config_file;
  }
  return command + " approve " + base::Printable(name, 80) + " " + std::string(key_sha256);
}

// --- Edits ------------------------------------------------------------------------------------

namespace {

struct EditableLine {
  std::string text;
  bool entry = false;
  std::string name, key;
};

// Under the lock: the file's lines, parsed strictly, and how to write it back.
struct ListFile {
  std::vector<EditableLine> lines;
  bool exists = false;
  struct stat st {};
};

ListFile ReadForEdit(const std::string& path, ListKind kind) {
  ListFile file;
  if (::stat(path.c_str(), &file.st) != 0) {
    if (errno != ENOENT) base::ThrowErrno("read-failed", "cannot stat", path, errno);
    return file;
  }
  file.exists = true;
  auto [bytes, text] = ReadList(path);
  ListLine parsed;
  std::string why;
  ForEachTextLine(text, [&](std::size_t number, std::string_view line) {
    if (!ParseListLine(line, kind, parsed, why)) {
      BadConfig(path + ":" + std::to_string(number) + ": " + why +
                " (fix it by hand; nothing was changed)");
    }
    file.lines.push_back(EditableLine{std::string(line), parsed.entry, std::string(parsed.name),
                                      std::string(parsed.key_sha256)});
  });
  return file;
}

void WriteBack(const std::string& path, const ListFile& file) {
  std::string text;
  for (const auto& line : file.lines) text += line.text + "\n";
  base::AtomicFileWriter writer(path, file.exists ? (file.st.st_mode & 07777) : 0644);
  if (file.exists) writer.set_owner(file.st.st_uid, file.st.st_gid);
  try {
    writer.Write(text);
  } catch (const Failure& f) {
    throw Failure(ExitCode::kCantCreate, "write-failed", f.what());
  }
}

ListEdit Edit(const std::string& path, ListKind kind, std::chrono::milliseconds lock_wait,
              const std::function<ListEdit(ListFile&)>& change) {
  std::optional<base::PrivateLock> lock;
  try {
    lock.emplace(path + ".lock", lock_wait);
  } catch (const Failure& f) {
    if (f.reason() == "lock-busy") {
      throw Failure(ExitCode::kTempFail, "lock-busy",
                    std::string(f.what()) + ": another edit of " + path + " is running; retry");
    }
    // The lock file cannot be made (a missing directory, a symbolic link): the list cannot be
    // written either.
    if (f.reason() == "lock-failed") throw Failure(ExitCode::kCantCreate, "write-failed", f.what());
    throw;
  }
  ListFile file = ReadForEdit(path, kind);
  ListEdit edit = change(file);
  if (edit.added || edit.removed > 0) WriteBack(path, file);
  return edit;
}

void RequireName(std::string_view name) {
  if (!IsListedName(name)) {
    throw Failure(ExitCode::kUsage, "usage",
                  "'" + base::Printable(name, 80) +
                      "' is not a name (1 to 64 printable ASCII characters, no blanks)");
  }
}

void RequireKey(std::string_view key) {
  if (!IsKeySha256(key)) {
    throw Failure(ExitCode::kUsage, "usage",
                  "'" + base::Printable(key, 80) +
                      "' is not a key SHA-256: give the 64 lowercase hex digits that "
                      "`etcd-signerctl pending` and the pending-approval message print");
  }
}

std::string Comment(const std::string& comment) {
  std::string out;
  for (char c : comment) out.push_back(static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? ' ' : c);
  return out;
}

}  // namespace

ListEdit AddKey(const std::string& path, std::string_view name, std::string_view key_sha256,
                const std::string& comment, bool replace_name,
                std::chrono::milliseconds lock_wait) {
  RequireName(name);
  RequireKey(key_sha256);
  return Edit(path, ListKind::kKeys, lock_wait, [&](ListFile& file) {
    ListEdit edit;
    bool listed = false;
    std::vector<EditableLine> kept;
    for (auto& line : file.lines) {
      if (line.entry && line.name == name) {
        if (line.key == key_sha256) {
          if (listed) {  // a duplicate of the pair: one line is enough
            ++edit.removed;
            continue;
          }
          listed = true;
        } else if (replace_name) {
          ++edit.removed;
          continue;
        }
      }
      kept.push_back(std::move(line));
    }
    if (!listed) {
      std::string text = std::string(name) + " " + std::string(key_sha256);
      if (!comment.empty()) text += " " + Comment(comment);
      kept.push_back(EditableLine{text, true, std::string(name), std::string(key_sha256)});
      edit.added = true;
    }
    file.lines = std::move(kept);
    return edit;
  });
}

ListEdit RemoveKey(const std::string& path, std::string_view name, std::string_view key_sha256,
                   std::chrono::milliseconds lock_wait) {
  RequireName(name);
  RequireKey(key_sha256);
  return Edit(path, ListKind::kKeys, lock_wait, [&](ListFile& file) {
    ListEdit edit;
    auto gone = std::remove_if(file.lines.begin(), file.lines.end(), [&](const EditableLine& l) {
      return l.entry && l.name == name && l.key == key_sha256;
    });
    edit.removed = static_cast<std::size_t>(file.lines.end() - gone);
    file.lines.erase(gone, file.lines.end());
    return edit;
  });
}

ListEdit AddName(const std::string& path, std::string_view name, const std::string& comment,
                 std::chrono::milliseconds lock_wait) {
  RequireName(name);
  return Edit(path, ListKind::kNames, lock_wait, [&](ListFile& file) {
    ListEdit edit;
    for (const auto& line : file.lines) {
      if (line.entry && line.name == name) return edit;
    }
    std::string text(name);
    if (!comment.empty()) text += " " + Comment(comment);
    file.lines.push_back(EditableLine{text, true, std::string(name), ""});
    edit.added = true;
    return edit;
  });
}

ListEdit RemoveName(const std::string& path, std::string_view name,
                    std::chrono::milliseconds lock_wait) {
  RequireName(name);
  return Edit(path, ListKind::kNames, lock_wait, [&](ListFile& file) {
    ListEdit edit;
    auto gone = std::remove_if(file.lines.begin(), file.lines.end(),
                               [&](const EditableLine& l) { return l.entry && l.name == name; });
    edit.removed = static_cast<std::size_t>(file.lines.end() - gone);
    file.lines.erase(gone, file.lines.end());
    return edit;
  });
}

// --- Views of the audit log -------------------------------------------------------------------

void PendingSummary::Add(const AuditEntry& e) {
  if (e.outcome != kPendingOutcome || e.public_key_sha256.empty()) return;
  // The name approvals are keyed on: the CN the policy accepted (the identity when bound).
  const std::string& name = e.cn.empty() ? e.identity : e.cn;
  PendingKey& p = by_pair_[{name, e.public_key_sha256}];
  if (p.count == 0) {
    p.name = name;
    p.key_sha256 = e.public_key_sha256;
    p.first_seen = e.time;
  }
  p.last_seen = e.time;
  p.last_peer = e.ssh_peer;
  ++p.count;
}

std::vector<PendingKey> PendingSummary::Keys() const {
  std::vector<PendingKey> out;
  out.reserve(by_pair_.size());
  for (const auto& [pair, p] : by_pair_) out.push_back(p);
  std::stable_sort(out.begin(), out.end(), [](const PendingKey& a, const PendingKey& b) {
    return a.first_seen < b.first_seen;
  });
  return out;
}

std::string FormatPending(const std::vector<PendingKey>& keys) {
  std::string out;
  char buf[1024];
  std::snprintf(buf, sizeof buf, "%-20s %-64s %-20s %-20s %5s %s\n", "IDENTITY", "KEY SHA256",
                "FIRST SEEN", "LAST SEEN", "COUNT", "PEER");
  out += buf;
  for (const auto& p : keys) {
    std::snprintf(
        buf, sizeof buf, "%-20s %-64s %-20s %-20s %5llu %s\n", base::Printable(p.name, 64).c_str(),
        base::Printable(p.key_sha256, 64).c_str(), base::FormatRfc3339(p.first_seen).c_str(),
        base::FormatRfc3339(p.last_seen).c_str(), static_cast<unsigned long long>(p.count),
        base::Printable(p.last_peer, 60).c_str());
    out += buf;
  }
  return out;
}

std::optional<std::string> CrlSerial(std::string_view audit_serial) {
  if (audit_serial.empty() || audit_serial.size() > 128) return std::nullopt;
  std::string out;
  if (audit_serial.size() % 2 == 1) out.push_back('0');
  for (char c : audit_serial) {
    if (c >= '0' && c <= '9') {
      out.push_back(c);
    } else if (c >= 'a' && c <= 'f') {
      out.push_back(static_cast<char>(c - 'a' + 'A'));
    } else if (c >= 'A' && c <= 'F') {
      out.push_back(c);
    } else {
      return std::nullopt;
    }
  }
  return out;
}

}  // namespace signer
