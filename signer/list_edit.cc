// SPDX-License-Identifier: Apache-2.0
#include "signer/list_edit.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <optional>
#include <vector>

#include "base/failure.h"
#include "base/files.h"
#include "base/text.h"
#include "signer/list_file.h"

namespace signer {
namespace {

using base::ExitCode;
using base::Failure;

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
  auto [bytes, text] = ReadListFile(path);
  ListLine parsed;
  std::string why;
  ForEachListLine(text, [&](std::size_t number, std::string_view line) {
    if (!ParseListLine(line, kind, parsed, why)) {
      throw Failure(ExitCode::kConfig, "bad-config",
                    path + ":" + std::to_string(number) + ": " + why + " (fix it by hand; nothing was changed)");
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

}  // namespace signer
