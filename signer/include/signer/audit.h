// SPDX-License-Identifier: Apache-2.0
// One JSON object per request, accepted or refused (DESIGN §6): to syslog (LOG_AUTH; journald
// picks it up) and, when configured, appended to a file under an exclusive lock and fsync'd.
// stderr is not an audit channel: it goes back to the client.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "signer/audit_chain.h"

namespace signer {

struct AuditRecord {
  std::string time;        // RFC 3339
  std::string outcome;     // issued | refused | served | pending | checked | error
  std::string verb;
  std::string profile;     // sign: etcd-client, etcd-server or etcd-peer
  std::string reason;      // reason code on failure
  std::string message;
  int exit_code = 0;
  std::string common_name;
  std::string identity;    // the operator's --identity binding for this SSH key
  std::string user;        // the account the signer runs as
  std::string ssh_peer;    // "ip port" from SSH_CONNECTION, or "local"
  std::string ssh_key_sha256;  // "SHA256:..." of the SSH key sshd accepted (SSH_USER_AUTH), or ""
  std::string key_type;
  std::string public_key_sha256;
  std::string serial;
  std::string not_before;
  std::string not_after;
  long long requested_lifetime = -1;  // seconds; -1 = not requested
  long long granted_lifetime = -1;
  std::uint64_t governance_version = 0;  // the governance document the decision used (#29); 0 = none
  // With attestation "optional" or "required" (#27), on etcd-client requests: whether the key was
  // proven to be a non-duplicable key of the identity's enrolled TPM.
  std::optional<bool> attested;
  std::string ek_sha256;  // enroll/activate: the TPM's EK (#27)
  // The hash chain (audit_chain.h), filled in under the log's lock; 0 = not on file (a record
  // syslog got although the file refused it).
  std::uint64_t seq = 0;
  std::string prev;
};

// The record written instead of `request` when the log no longer holds its recorded head.
AuditRecord ResyncRecord(const AuditRecord& request, const std::string& gap);

// Serialises a record: one JSON line, pure ASCII (non-ASCII escaped), attacker-supplied fields
// capped at 256 bytes each. It begins {"v":1,"seq":N,"prev":"<hex>", (seq/prev only when seq > 0).
std::string ToJson(const AuditRecord& record);

class AuditLog {
 public:
  AuditLog(std::string file, bool syslog,
           std::chrono::milliseconds lock_wait = std::chrono::seconds(2))
      : file_(std::move(file)), syslog_(syslog), lock_wait_(lock_wait) {}
  // Appends to the file (if any), chained: seq and prev are taken under the file's lock, and the
  // new head is kept in its lock file (protocol.md §5). Then syslogs the same line, so syslog
  // carries the chain off the host. When the file cannot be written it throws
  // Failure(kUnavailable, "audit-failed") and nothing reaches syslog: a record that says "issued"
  // exists only if the file took it.
  // Returns the chain's head after this record (seq 0 without a file): what an answer may carry
  // for masters to keep as a witness. A log that no longer ends in the head recorded with it
  // (cut, replaced) is not continued: a `resync` record naming the gap is written instead and
  // Failure(kSoftware, "audit-resync") thrown; the next record chains on from the resync.
  ChainHead Write(const AuditRecord& record) const;
  // For failure records: like Write, but syslog gets the record even when the file refuses it.
  void WriteEvenIfFileFails(const AuditRecord& record) const;

 private:
  void Syslog(const AuditRecord& record, const std::string& line) const;
  std::string file_;
  bool syslog_;
  std::chrono::milliseconds lock_wait_;
};

}  // namespace signer
