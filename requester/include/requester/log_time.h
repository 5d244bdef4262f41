// SPDX-License-Identifier: Apache-2.0
// The time in front of the requester's log lines (#28): journald stamps every line itself, anything
// else (a terminal, a file, `docker logs`, a foreground run without systemd) needs the time in the
// line. systemd's documented way to tell (systemd.exec(5), JOURNAL_STREAM): the variable holds the
// device and inode of the stream it connected, and only a log file descriptor with exactly that
// device and inode goes to the journal (a child whose stderr was redirected inherits a stale value).
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace requester {

// True when `stream` is the journal stream named by JOURNAL_STREAM ("DEVICE:INODE", decimal).
bool WritesToJournal(std::FILE* stream);

// "2026-12-03T10:00:00Z " (RFC 3339, UTC) for a stream that does not go to the journal; "" for one
// that does.
std::string LogTimePrefix(std::FILE* stream, std::chrono::system_clock::time_point now);

}  // namespace requester
