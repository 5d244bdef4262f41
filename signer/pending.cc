// SPDX-License-Identifier: Apache-2.0
#include "signer/pending.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/duration.h"
#include "base/text.h"

namespace signer {

void PendingSummary::Add(const AuditEntry& e) {
  if (e.outcome != kPendingOutcome || e.public_key_sha256.empty()) return;
  // The name approvals are keyed on: the CN the policy accepted (the identity when bound).
  const std::string& name = e.cn.empty() ? e.identity : e.cn;
  PendingKey& p = by_pair_[{name, e.public_key_sha256}];
  if (p.count == 0) {
    p.name = name;
    p.key_sha256 = e.public_key_sha256;
    p.first_seen = e.time;
  }
  p.last_seen = e.time;
  p.last_peer = e.ssh_peer;
  ++p.count;
}

std::vector<PendingKey> PendingSummary::Keys() const {
  std::vector<PendingKey> out;
  out.reserve(by_pair_.size());
  for (const auto& [pair, p] : by_pair_) out.push_back(p);
  std::stable_sort(out.begin(), out.end(), [](const PendingKey& a, const PendingKey& b) {
    return a.first_seen < b.first_seen;
  });
  return out;
}

std::string FormatPending(const std::vector<PendingKey>& keys) {
  std::string out;
  char buf[1024];
  std::snprintf(buf, sizeof buf, "%-20s %-64s %-20s %-20s %5s %s\n", "IDENTITY", "KEY SHA256",
                "FIRST SEEN", "LAST SEEN", "COUNT", "PEER");
  out += buf;
  for (const auto& p : keys) {
    std::snprintf(
        buf, sizeof buf, "%-20s %-64s %-20s %-20s %5llu %s\n", base::Printable(p.name, 64).c_str(),
        base::Printable(p.key_sha256, 64).c_str(), base::FormatRfc3339(p.first_seen).c_str(),
        base::FormatRfc3339(p.last_seen).c_str(), static_cast<unsigned long long>(p.count),
        base::Printable(p.last_peer, 60).c_str());
    out += buf;
  }
  return out;
}

std::string PendingJson(const std::vector<PendingKey>& keys) {
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const auto& p : keys) {
    nlohmann::ordered_json row;
    row["identity"] = p.name;
    row["key_sha256"] = p.key_sha256;
    row["first_seen"] = base::FormatRfc3339(p.first_seen);
    row["last_seen"] = base::FormatRfc3339(p.last_seen);
    row["count"] = p.count;
    row["peer"] = p.last_peer;
    rows.push_back(std::move(row));
  }
  // ASCII only, whatever bytes a record held: a script's terminal gets no control sequences.
  return rows.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace signer
