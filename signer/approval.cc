#include "signer/approval.h"

#include <sys/stat.h>

#include <algorithm>
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

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

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

std::string ReadList(const std::string& path) {
  try {
    return base::ReadFileLimited(path, kMaxListBytes);
  } catch (const Failure& f) {
    BadConfig(std::string("cannot read ") + f.what());
  }
}

}  // namespace

bool IsKeySha256(std::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool IsListedName(std::string_view text) {
  if (text.empty() || text.size() > kMaxListedName || text[0] == '#') return false;
  for (char c : text) {
    if (c <= ' ' || c > '~') return false;
  }
  return true;
}

bool ParseListLine(std::string_view line, ListKind kind, ListLine& out, std::string& why) {
  out = ListLine{};
  for (char c : line) {
    unsigned char u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) {
      why = c == '\r' ? "a carriage return (save the file with Unix line endings)"
                      : "a control character";
      return false;
    }
  }
  std::size_t i = 0;
  while (i < line.size() && IsBlank(line[i])) ++i;
  if (i == line.size() || line[i] == '#') return true;  // blank or comment
  auto field = [&] {
    std::size_t start = i;
    while (i < line.size() && !IsBlank(line[i])) ++i;
    std::string_view f = line.substr(start, i - start);
    while (i < line.size() && IsBlank(line[i])) ++i;
    return f;
  };
  out.name = field();
  if (!IsListedName(out.name)) {
    why = "'" + base::Printable(out.name, 80) +
          "' is not a name (1 to 64 printable ASCII characters, no blanks); lines are " +
          KindName(kind);
    return false;
  }
  if (kind == ListKind::kKeys) {
    out.key_sha256 = field();
    if (!IsKeySha256(out.key_sha256)) {
      std::string key = base::Printable(out.key_sha256, 80);
      if (out.key_sha256.empty()) {
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
  }
  out.comment = line.substr(i);
  out.entry = true;
  return true;
}

std::size_t ApprovalList::EntryHash::operator()(const Entry& e) const noexcept {
  std::hash<std::string_view> h;
  return h(e.key) ^ (h(e.name) * 1099511628211u);
}

ApprovalList ApprovalList::Parse(std::string text, ListKind kind, const std::string& file) {
  ApprovalList list;
  list.kind_ = kind;
  list.text_ = std::make_unique<std::string>(std::move(text));
  // About 100 bytes per line: one allocation of buckets instead of a rehash every doubling.
  list.entries_.reserve(list.text_->size() / 80 + 16);
  ListLine parsed;
  std::string why;
  ForEachTextLine(*list.text_, [&](std::size_t number, std::string_view line) {
    if (!ParseListLine(line, kind, parsed, why)) {
      BadConfig(file + ":" + std::to_string(number) + ": " + why);
    }
    if (parsed.entry) list.entries_.insert(Entry{parsed.name, parsed.key_sha256});
  });
  return list;
}

ApprovalList ApprovalList::Load(const std::string& path, ListKind kind) {
  return Parse(ReadList(path), kind, path);
}

bool ApprovalList::Contains(std::string_view name, std::string_view key_sha256) const {
  return entries_.count(Entry{name, kind_ == ListKind::kKeys ? key_sha256 : std::string_view()}) > 0;
}

void ApprovalGate::CheckIdentity(std::string_view name) {
  if (config_.denied_identities.empty()) return;
  if (!denied_identities_) {
    denied_identities_ = ApprovalList::Load(config_.denied_identities, ListKind::kNames);
  }
  if (denied_identities_->Contains(name)) {
    throw Failure(ExitCode::kNoPerm, "identity-denied",
                  "the name '" + base::Printable(name, 80) +
                      "' is denied on this signer (denied_identities): no certificate is issued "
                      "for it until an operator allows it again");
  }
}

void ApprovalGate::CheckKey(std::string_view name, std::string_view key_sha256) {
  if (!config_.denied_keys.empty()) {
    if (!denied_keys_) denied_keys_ = ApprovalList::Load(config_.denied_keys, ListKind::kKeys);
    if (denied_keys_->Contains(name, key_sha256)) {
      throw Failure(ExitCode::kNoPerm, "key-denied",
                    "the key " + std::string(key_sha256) + " is denied for '" +
                        base::Printable(name, 80) + "' (denied_keys): make a new key");
    }
  }
  if (config_.approval != ApprovalMode::kNewKeys) return;
  if (!approved_keys_) approved_keys_ = ApprovalList::Load(config_.approved_keys, ListKind::kKeys);
  if (!approved_keys_->Contains(name, key_sha256)) {
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
  std::string text = ReadList(path);
  ListLine parsed;
  std::string why;
  ForEachTextLine(text, [&](std::size_t number, std::string_view line) {
    if (!ParseListLine(line, kind, parsed, why)) {
      BadConfig(path + ":" + std::to_string(number) + ": " + why + " (fix it by hand; nothing was changed)");
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
                const std::string& comment, bool replace_name, std::chrono::milliseconds lock_wait) {
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
  std::stable_sort(out.begin(), out.end(),
                   [](const PendingKey& a, const PendingKey& b) { return a.first_seen < b.first_seen; });
  return out;
}

std::string FormatPending(const std::vector<PendingKey>& keys) {
  std::string out;
  char buf[1024];
  std::snprintf(buf, sizeof buf, "%-20s %-64s %-20s %-20s %5s %s\n", "IDENTITY", "KEY SHA256",
                "FIRST SEEN", "LAST SEEN", "COUNT", "PEER");
  out += buf;
  for (const auto& p : keys) {
    std::snprintf(buf, sizeof buf, "%-20s %-64s %-20s %-20s %5llu %s\n",
                  base::Printable(p.name, 64).c_str(), base::Printable(p.key_sha256, 64).c_str(),
                  base::FormatRfc3339(p.first_seen).c_str(), base::FormatRfc3339(p.last_seen).c_str(),
                  static_cast<unsigned long long>(p.count), base::Printable(p.last_peer, 60).c_str());
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
