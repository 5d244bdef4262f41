// SPDX-License-Identifier: Apache-2.0
// Who can change what a path names. A file that decides something (who gets certificates, what
// the audit chain says) is only as trustworthy as every account that can write it, replace it, or
// swap a directory on its way: OpenSSH's StrictModes, for our files.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "base/fd.h"

namespace base {

// Opens `path` read-only without following a symbolic link in its last component and without
// blocking on a FIFO, and returns it only when it is a regular file; `st` receives its fstat.
// Throws Failure(reason): with the errno's exit code when it cannot be opened (a missing file is
// 66), and 66 for a symbolic link, a FIFO, a device or a directory.
UniqueFd OpenRegularFile(const std::string& path, const std::string& reason, struct stat& st);

// Whether the file `opened` (its fstat) at `path` is the one its directory's owner keeps there.
// In a directory of root's that nobody else may write, any file is (only root put it there).
// Elsewhere the file must be owned by the directory's owner (or this process's account) and have
// one name: a hard link to /etc/shadow (root's) or a file a third account planted is not an audit
// log. Returns one sentence saying what is wrong, or nothing.
std::optional<std::string> UnexpectedOwner(const std::string& path, const struct stat& opened);

// When an account other than `trusted` (root is always trusted) can change what `path` names —
// the file `opened` (its fstat), or any directory on the path's resolved way from `/` — returns
// one sentence naming the first such place and how; otherwise nothing. A directory writable by
// group or others is accepted only with the sticky bit (then nobody but an entry's owner can
// replace it, and the entry's owner is checked next), and the file must not be writable by group
// or others at all. The directories are those of the path as given and as resolved by realpath(3).
std::optional<std::string> OthersCanChange(const std::string& path, const struct stat& opened,
                                           const std::vector<uid_t>& trusted);

}  // namespace base
