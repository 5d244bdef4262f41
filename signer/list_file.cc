// SPDX-License-Identifier: Apache-2.0
#include "signer/list_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "base/failure.h"
#include "base/path_trust.h"

namespace signer {
namespace {

using base::ExitCode;
using base::Failure;

[[noreturn]] void BadConfig(const std::string& message) {
  throw Failure(ExitCode::kConfig, "bad-config", message);
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

}  // namespace

// The whole file in one read of its size into memory mapped and populated in one call: a list is
// read on every request, by a fresh process, and faulting in a megabyte page by page costs more
// than parsing it (not the file itself mapped: one truncated in place would be SIGBUS). Bounded,
// regular files only; every problem is a configuration error.
ListText ReadListFile(const std::string& path) {
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
  auto [bytes, text] = ReadListFile(path);
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
  ForEachListLine(text, [&](std::size_t number, std::string_view line) {
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
                  std::string_view key_sha256, const std::vector<uid_t>& owners) {
  if (kind == ListKind::kNames) key_sha256 = {};
  OpenList file(path);
  const int fd = file.fd;
  const struct stat& st = file.st;
  // Like sshd's StrictModes for authorized_keys: a list that others can change, or whose directory
  // they can swap, is one they can approve themselves into.
  if (auto problem = base::OthersCanChange(path, st, owners)) {
    throw Failure(ExitCode::kConfig, "list-unsafe",
                  path + " cannot be trusted: " + *problem +
                      " (whoever can change it decides who gets certificates; keep lists root's, or list_admin's, "
                      "in directories only they can write)");
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

}  // namespace signer
