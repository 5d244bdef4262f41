#include "signer/audit.h"

#include <syslog.h>

#include <nlohmann/json.hpp>

#include "base/failure.h"
#include "base/files.h"

namespace signer {

std::string ToJson(const AuditRecord& r) {
  nlohmann::ordered_json j;
  j["time"] = r.time;
  j["program"] = "etcd-signer";
  j["outcome"] = r.outcome;
  j["verb"] = r.verb;
  j["exit_code"] = r.exit_code;
  if (!r.reason.empty()) j["reason"] = r.reason;
  if (!r.message.empty()) j["message"] = r.message;
  j["cn"] = r.common_name;
  j["identity"] = r.identity;
  j["user"] = r.user;
  j["ssh_peer"] = r.ssh_peer;
  j["key_type"] = r.key_type;
  j["public_key_sha256"] = r.public_key_sha256;
  j["serial"] = r.serial;
  j["not_before"] = r.not_before;
  j["not_after"] = r.not_after;
  if (r.requested_lifetime >= 0) j["requested_lifetime"] = r.requested_lifetime;
  if (r.granted_lifetime >= 0) j["granted_lifetime"] = r.granted_lifetime;
  // Attacker-controlled strings (the CN) may hold invalid UTF-8: replace, never throw.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void AuditLog::Write(const AuditRecord& record) const {
  std::string line = ToJson(record);
  if (syslog_) {
    ::openlog("etcd-signer", LOG_PID | LOG_NDELAY, LOG_AUTH);
    ::syslog(record.outcome == "refused" || record.outcome == "error" ? LOG_WARNING : LOG_INFO,
             "%s", line.c_str());
    ::closelog();
  }
  if (file_.empty()) return;
  try {
    base::AppendLineLocked(file_, line);
  } catch (const base::Failure& f) {
    throw base::Failure(base::ExitCode::kUnavailable, "audit-failed", f.what());
  }
}

}  // namespace signer
