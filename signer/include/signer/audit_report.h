// SPDX-License-Identifier: Apache-2.0
// Reading the audit log for people and monitoring: one row per request (`audit list`), a summary
// per identity with the things worth a look flagged (`audit report`), and node_exporter textfile
// metrics (`metrics --prometheus`). Everything is computed from records fed one at a time, in
// memory proportional to the number of identities, never to the number of records.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace signer {

using TimePoint = std::chrono::system_clock::time_point;

// The fields of one record that these views use. Unknown fields are ignored; a line that is not
// a JSON object with a valid RFC 3339 "time" is not an entry.
struct AuditEntry {
  std::uint64_t seq = 0;
  TimePoint time;
  std::string outcome, verb, reason, message;
  std::string cn, identity, ssh_peer;
  std::string public_key_sha256, serial;
  std::optional<TimePoint> not_before, not_after;
  std::string profile;  // sign requests: etcd-client, etcd-server, etcd-peer ("" in records before #26)
  std::optional<bool> attested;  // with attestation not off (#27): the key was proven TPM-bound
  // `identity`, or for a key not bound to one, "cn:" + the CN it asked for.
  std::string Who() const;
  // What a report line is about: Who(), and for a member's certificates the profile too
  // ("etcd-1 etcd-peer"): a member's server and peer keys are two certificates, not a key change.
  std::string Subject() const;
};
std::optional<AuditEntry> ParseAuditEntry(std::string_view line);

struct ListFilter {
  std::optional<TimePoint> since;
  std::string identity;  // "" = any
  std::string outcome;   // "" = any; issued | refused | served | error
  bool Matches(const AuditEntry& e) const;
};

// `audit list`: a header and one row per request, like `kubectl get csr`.
std::string ListHeader();
std::string ListRow(const AuditEntry& e, TimePoint now);
// "45s", "12m", "3h", "2d": the age column.
std::string ShortAge(std::chrono::seconds age);

// Thresholds of the report's flags (etcd-signerctl(8)).
constexpr int kRefusalBurstCount = 5;                         // refusals of one identity ...
constexpr std::chrono::seconds kRefusalBurstWindow{10 * 60};  // ... within 10 minutes
constexpr double kRenewalOverdueFraction = 0.9;  // of the newest certificate's lifetime

struct IdentitySummary {
  std::string who;
  std::string profile;  // a member's etcd-server or etcd-peer certificates (#26); "" for a master's
  // The newest certificate issued to it, over all records read (not only the window).
  std::string last_serial, last_key;
  std::optional<TimePoint> last_issued, last_not_before, last_not_after;
  // Within the window:
  std::uint64_t issued = 0, refused = 0, key_changes = 0;
  // Of `issued`, those whose record says whether the key was attested (#27).
  std::uint64_t attested = 0, unattested = 0;
  std::optional<TimePoint> last_refusal;
  std::string last_refusal_reason;
  std::uint64_t refusals_last_hour = 0;  // before `now`, for metrics
  // (outcome, reason) -> count over all records read; reason "" for issued.
  std::map<std::pair<std::string, std::string>, std::uint64_t> by_reason;
  // Flags:
  bool new_key = false;  // an issuance in the window used a key different from the one before
  bool refusal_burst =
      false;              // kRefusalBurstCount refusals within kRefusalBurstWindow in the window
  bool new_name = false;  // its first record ever read is in the window
  bool stopped_renewing = false;  // the newest certificate is past 90% of its lifetime at `now`
  std::vector<std::string> Flags() const;

 private:
  friend class AuditSummary;
  std::optional<TimePoint> first_seen;
  std::deque<TimePoint> recent_refusals;  // within kRefusalBurstWindow of the last one
};

// Per-identity summary of the records fed, oldest first.
class AuditSummary {
 public:
  AuditSummary(TimePoint since, TimePoint now) : since_(since), now_(now) {}
  void Add(const AuditEntry& e);
  // Sorted by identity.
  std::vector<IdentitySummary> Identities() const;
  std::uint64_t entries() const { return entries_; }

 private:
  TimePoint since_, now_;
  std::map<std::string, IdentitySummary> by_who_;
  std::uint64_t entries_ = 0;
};

// `audit report`: a table, then one line per flag.
std::string FormatReport(const std::vector<IdentitySummary>& identities, TimePoint now);
// `audit report --json`: one JSON document.
std::string FormatReportJson(const std::vector<IdentitySummary>& identities, TimePoint since,
                             TimePoint now);

// `metrics --prometheus`: node_exporter textfile format.
struct MetricsInput {
  std::vector<IdentitySummary> identities;
  std::optional<TimePoint> ca_not_after;
  bool chain_ok = false;
  std::uint64_t chain_head_seq = 0;
  std::uint64_t records = 0;
};
std::string FormatPrometheus(const MetricsInput& input, TimePoint now);

// An audit record's serial (lowercase hex) as `openssl x509 -serial` prints it after "serial=":
// uppercase hex, no colons, an even number of digits. nullopt if it is not hex.
std::optional<std::string> CrlSerial(std::string_view audit_serial);

}  // namespace signer
