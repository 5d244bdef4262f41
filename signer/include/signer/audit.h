// One JSON object per request, accepted or refused (DESIGN §6): to syslog (LOG_AUTH; journald
// picks it up) and, when configured, appended to a file under an exclusive lock and fsync'd.
// stderr is not an audit channel: it goes back to the client.
#pragma once

#include <string>

namespace signer {

struct AuditRecord {
  std::string time;        // RFC 3339
  std::string outcome;     // issued | refused | served | error
  std::string verb;
  std::string reason;      // reason code on failure
  std::string message;
  int exit_code = 0;
  std::string common_name;
  std::string identity;    // the operator's --identity binding for this SSH key
  std::string user;        // the account the signer runs as
  std::string ssh_peer;    // "ip port" from SSH_CONNECTION, or "local"
  std::string key_type;
  std::string public_key_sha256;
  std::string serial;
  std::string not_before;
  std::string not_after;
  long long requested_lifetime = -1;  // seconds; -1 = not requested
  long long granted_lifetime = -1;
};

std::string ToJson(const AuditRecord& record);

class AuditLog {
 public:
  AuditLog(std::string file, bool syslog) : file_(std::move(file)), syslog_(syslog) {}
  // Throws Failure(kUnavailable, "audit-failed") when the file cannot be written.
  void Write(const AuditRecord& record) const;

 private:
  std::string file_;
  bool syslog_;
};

}  // namespace signer
