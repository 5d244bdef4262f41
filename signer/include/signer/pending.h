// SPDX-License-Identifier: Apache-2.0
// The keys waiting for an operator (etcd-signerctl pending): the audit log's "pending" records,
// one row per (name, key) that was answered pending-approval.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "signer/audit_report.h"

namespace signer {

// The audit outcome of a request answered 75 pending-approval.
constexpr const char* kPendingOutcome = "pending";
// The outcome of a `check` request (#28), passed or not: never an issuance, a refusal or pending.
constexpr const char* kCheckedOutcome = "checked";

// One (name, key) that was answered pending-approval: from the audit log's "pending" records.
struct PendingKey {
  std::string name, key_sha256, last_peer;
  TimePoint first_seen, last_seen;
  std::uint64_t count = 0;
};

// Collects pending records fed oldest first, in memory proportional to the pending pairs.
class PendingSummary {
 public:
  void Add(const AuditEntry& e);
  // Oldest first seen first.
  std::vector<PendingKey> Keys() const;

 private:
  std::map<std::pair<std::string, std::string>, PendingKey> by_pair_;
};

// The `pending` table: IDENTITY KEY-SHA256 FIRST-SEEN LAST-SEEN COUNT PEER.
std::string FormatPending(const std::vector<PendingKey>& keys);
// The same as one JSON array of {identity, key_sha256, first_seen, last_seen, count, peer} (#28).
std::string PendingJson(const std::vector<PendingKey>& keys);

}  // namespace signer
