// SPDX-License-Identifier: Apache-2.0
// What every etcd-signerctl verb works with: the time it acts as of, the signer's configuration,
// and the audit log files it reads. Resolved once from the global flags before a verb runs.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/flags.h"
#include "signer/audit.h"
#include "signer/audit_chain.h"
#include "signer/audit_report.h"
#include "signer/config.h"

namespace signerctl {

using signer::TimePoint;

struct Context {
  TimePoint now;                // --now, or the clock
  std::string config_path;      // "" when none was given and the verb needs none
  signer::SignerConfig config;  // loaded from config_path (the defaults when "")
};

// Context from the global flags. `now_text`: RFC 3339 or "" (a usage error otherwise); the
// configuration is loaded when `config_path` is set (a configuration error if it is bad).
Context MakeContext(const std::string& now_text, const std::string& config_path);

// An operator's action on this host as a record of the signer's audit log (#29 governance install,
// #27 enrollment approve/remove): `record` gets the time, this account and the SSH peer
// ("local" without SSH_CONNECTION). Only into a log the signer has made (its file and its lock): a
// log or lock made here as root would be one the signer account cannot use. A record that cannot be
// written is a warning on stderr naming `what`: the action itself has happened.
void RecordInSignerLog(const Context& ctx, signer::AuditRecord record, const std::string& what);

// Writes `text` to stdout as it is.
void Print(const std::string& text);

// The positional FILE... of the verbs that read the audit log (default: AuditFiles).
void AddAuditFilesOption(base::Flags& cmd, std::vector<std::string>& files);

// `given`, or else the configuration's audit_log.1 (when it exists) and audit_log, oldest first.
// Failure(kUsage) when neither is there.
std::vector<std::string> AuditFiles(const Context& ctx, const std::vector<std::string>& given);

// Where a --since window starts: now - `text`, or now - `fallback` when `text` is "";
// TimePoint::min() when both are "". Failure(kUsage) for a bad duration.
TimePoint WindowStart(const Context& ctx, const std::string& text, const std::string& fallback);

// Every record of `files`, oldest first (lines that are not records are skipped).
void ForEachEntry(const std::vector<std::string>& files,
                  const std::function<void(const signer::AuditEntry&)>& each);

// Verifies the hash chain across `files` (oldest first) from `head` if given. A last line without
// its newline in the newest file is looked at again shortly before it is called torn.
signer::ChainVerifier VerifyChain(const std::vector<std::string>& files, const std::vector<signer::ChainHead>& heads);

// The head the signer recorded next to the newest of `files` (its `.lock` file, where each append
// keeps the chain's head): what the log must end in. Nothing when that file is not there (files
// copied elsewhere, rotated files alone). Read before the files, so that a record appended while
// they are read is never "missing".
struct RecordedHead {
  signer::ChainHead head;
  std::string source;  // the lock file it was read from
};
std::optional<RecordedHead> RecordedHeadOf(const std::vector<std::string>& files);

// The line that starts at `offset` of `path`, if it ends in a newline (at most 1 MiB is read).
std::optional<std::string> TerminatedLineAt(const std::string& path, std::uint64_t offset);

}  // namespace signerctl
