// SPDX-License-Identifier: Apache-2.0
#include "signer/audit.h"

#include <syslog.h>

#include <nlohmann/json.hpp>

#include "base/failure.h"
#include "base/files.h"
#include "base/text.h"
#include "signer/audit_chain.h"

namespace signer {

namespace {

// Attacker-supplied text (the CN, messages that quote the CSR, the SSH peer) is capped before it
// is encoded, so a record stays small enough for syslog to keep whole.
constexpr std::size_t kMaxFieldBytes = 256;

std::string Capped(const std::string& value) { return std::string(base::Utf8Prefix(value, kMaxFieldBytes)); }

}  // namespace

std::string ToJson(const AuditRecord& r) {
  nlohmann::ordered_json j;
  j["v"] = kAuditFormatVersion;
  if (r.seq > 0) {
    j["seq"] = r.seq;
    j["prev"] = r.prev;
  }
  j["time"] = r.time;
  j["program"] = "etcd-signer";
  j["outcome"] = r.outcome;
  j["verb"] = r.verb;
  if (!r.profile.empty()) j["profile"] = r.profile;
  j["exit_code"] = r.exit_code;
  if (!r.reason.empty()) j["reason"] = r.reason;
  if (!r.message.empty()) j["message"] = Capped(r.message);
  j["cn"] = Capped(r.common_name);
  j["identity"] = Capped(r.identity);
  j["user"] = Capped(r.user);
  j["ssh_peer"] = Capped(r.ssh_peer);
  j["ssh_key_sha256"] = r.ssh_key_sha256;
  j["key_type"] = Capped(r.key_type);
  j["public_key_sha256"] = r.public_key_sha256;
  j["serial"] = r.serial;
  j["not_before"] = r.not_before;
  j["not_after"] = r.not_after;
  if (r.requested_lifetime >= 0) j["requested_lifetime"] = r.requested_lifetime;
  if (r.granted_lifetime >= 0) j["granted_lifetime"] = r.granted_lifetime;
  if (r.governance_version > 0) j["governance_version"] = r.governance_version;
  if (r.attested) j["attested"] = *r.attested;
  if (!r.ek_sha256.empty()) j["ek_sha256"] = r.ek_sha256;
  // ensure_ascii: every non-ASCII character leaves as \uXXXX, so C1 controls, U+2028 and U+202E
  // cannot reach a terminal or a log viewer raw; invalid UTF-8 becomes U+FFFD, never a throw.
  return j.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
}

AuditRecord ResyncRecord(const AuditRecord& request, const std::string& gap) {
  AuditRecord r;
  r.time = request.time;
  r.outcome = "resync";
  r.verb = request.verb;
  r.reason = "audit-resync";
  r.message = gap;
  r.exit_code = static_cast<int>(base::ExitCode::kSoftware);
  r.identity = request.identity;
  r.user = request.user;
  r.ssh_peer = request.ssh_peer;
  r.ssh_key_sha256 = request.ssh_key_sha256;
  return r;
}

void AuditLog::Syslog(const AuditRecord& record, const std::string& line) const {
  if (!syslog_) return;
  ::openlog("etcd-signer", LOG_PID | LOG_NDELAY, LOG_AUTH);
  ::syslog(record.outcome == "issued" || record.outcome == "served" ? LOG_INFO : LOG_WARNING, "%s",
           line.c_str());
  ::closelog();
}

ChainHead AuditLog::Write(const AuditRecord& record) const {
  std::string line;
  ChainHead written;
  std::string gap;
  // The file first: syslog must never hold "issued" for a certificate whose record the file
  // refused (that certificate is not delivered).
  if (file_.empty()) {
    line = ToJson(record);
  } else {
    try {
      base::AppendLineLocked(
          file_,
          [&](const base::LogHead& log) {
            ChainResume resume = ResumeChain(log);
            gap = resume.gap;
            // A log shorter than its recorded head is never continued silently (#24): the record
            // written is a resync that names the gap, and the request fails.
            AuditRecord chained = gap.empty() ? record : ResyncRecord(record, gap);
            chained.seq = resume.head.seq + 1;
            chained.prev = resume.head.hash;
            line = ToJson(chained);
            written = ChainHead{chained.seq, Sha256Hex(line)};
            return base::ChainedLine{line, FormatHead(written)};
          },
          lock_wait_);
    } catch (const base::Failure& f) {
      throw base::Failure(base::ExitCode::kUnavailable, "audit-failed", f.what());
    }
  }
  if (!gap.empty()) {
    AuditRecord resync = ResyncRecord(record, gap);
    Syslog(resync, line);
    throw base::Failure(base::ExitCode::kSoftware, "audit-resync",
                        "the audit log " + file_ + " is not the one this signer wrote: " + gap +
                            "; a resync record (seq " + std::to_string(written.seq) +
                            ") now says so and this request was not served");
  }
  Syslog(record, line);
  return written;
}

void AuditLog::WriteEvenIfFileFails(const AuditRecord& record) const {
  try {
    Write(record);
  } catch (const base::Failure&) {
    Syslog(record, ToJson(record));
    throw;
  }
}

}  // namespace signer
