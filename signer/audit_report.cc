// SPDX-License-Identifier: Apache-2.0
#include "signer/audit_report.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/duration.h"
#include "base/failure.h"
#include "base/text.h"
#include "signer/audit_chain.h"

namespace signer {

namespace {

std::string Field(const nlohmann::json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// "2026-11-23T04:17:35Z", the form records carry, without strptime/timegm (three per record,
// a million records).
std::optional<TimePoint> FastTime(std::string_view t) {
  if (t.size() != 20 || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' ||
      t[16] != ':' || t[19] != 'Z') {
    return std::nullopt;
  }
  auto num = [&](std::size_t at, std::size_t len, int& v) {
    v = 0;
    for (std::size_t k = at; k < at + len; ++k) {
      if (t[k] < '0' || t[k] > '9') return false;
      v = v * 10 + (t[k] - '0');
    }
    return true;
  };
  int y, mo, d, h, mi, sec;
  if (!num(0, 4, y) || !num(5, 2, mo) || !num(8, 2, d) || !num(11, 2, h) || !num(14, 2, mi) ||
      !num(17, 2, sec)) {
    return std::nullopt;
  }
  std::chrono::year_month_day ymd{std::chrono::year(y),
                                  std::chrono::month(static_cast<unsigned>(mo)),
                                  std::chrono::day(static_cast<unsigned>(d))};
  if (!ymd.ok() || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  return TimePoint(std::chrono::sys_days(ymd).time_since_epoch() + std::chrono::hours(h) +
                   std::chrono::minutes(mi) + std::chrono::seconds(sec));
}

std::optional<TimePoint> Time(const std::string& text) {
  if (text.empty()) return std::nullopt;
  if (auto fast = FastTime(text)) return fast;
  try {
    return base::ParseRfc3339(text);
  } catch (const base::Failure&) {
    return std::nullopt;
  }
}

std::string Rfc3339(const std::optional<TimePoint>& t) {
  return t ? base::FormatRfc3339(*t) : std::string("-");
}

std::string Short(const std::string& hex, std::size_t n) {
  return hex.empty() ? "-" : hex.substr(0, n);
}

long long SecondsBetween(TimePoint from, TimePoint to) {
  return std::chrono::duration_cast<std::chrono::seconds>(to - from).count();
}

// Prometheus label values: backslash, double quote and newline escaped. The audit fields are
// ASCII already (ToJson escapes everything else); Printable makes sure.
std::string Label(const std::string& value) {
  std::string out;
  for (char c : base::Printable(value, 256)) {
    if (c == '\\' || c == '"') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

// identity="NAME", and profile="etcd-server" for a member's certificates (#26).
std::string IdentityLabels(const IdentitySummary& s) {
  std::string labels = "identity=\"" + Label(s.who) + "\"";
  if (!s.profile.empty()) labels += ",profile=\"" + Label(s.profile) + "\"";
  return labels;
}

}  // namespace

std::string AuditEntry::Who() const {
  return identity.empty() ? "cn:" + cn : identity;
}

std::string AuditEntry::Subject() const {
  return profile.empty() || profile == "etcd-client" ? Who() : Who() + " " + profile;
}

std::optional<AuditEntry> ParseAuditEntry(std::string_view line) {
  thread_local std::vector<RawField> fields;
  if (SplitFlatRecord(line, fields)) {
    // The shape ToJson writes: no JSON document needed.
    AuditEntry e;
    std::optional<TimePoint> time;
    for (const auto& f : fields) {
      std::string value(f.value);
      if (f.key == "seq") {
        if (!f.is_string && !value.empty() && value[0] != '-' && value.size() <= 19)
          e.seq = std::stoull(value);
        continue;
      }
      if (f.key == "attested" && !f.is_string) {
        if (value == "true" || value == "false") e.attested = value == "true";
        continue;
      }
      if (!f.is_string) continue;
      if (f.key == "time")
        time = Time(value);
      else if (f.key == "outcome")
        e.outcome = std::move(value);
      else if (f.key == "verb")
        e.verb = std::move(value);
      else if (f.key == "reason")
        e.reason = std::move(value);
      else if (f.key == "message")
        e.message = std::move(value);
      else if (f.key == "cn")
        e.cn = std::move(value);
      else if (f.key == "identity")
        e.identity = std::move(value);
      else if (f.key == "ssh_peer")
        e.ssh_peer = std::move(value);
      else if (f.key == "public_key_sha256")
        e.public_key_sha256 = std::move(value);
      else if (f.key == "serial")
        e.serial = std::move(value);
      else if (f.key == "profile")
        e.profile = std::move(value);
      else if (f.key == "not_before")
        e.not_before = Time(value);
      else if (f.key == "not_after")
        e.not_after = Time(value);
    }
    if (!time) return std::nullopt;
    e.time = *time;
    return e;
  }
  auto j = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto time = Time(Field(j, "time"));
  if (!time) return std::nullopt;
  AuditEntry e;
  e.time = *time;
  if (auto seq = j.find("seq"); seq != j.end() && seq->is_number_unsigned())
    e.seq = seq->get<std::uint64_t>();
  e.outcome = Field(j, "outcome");
  e.verb = Field(j, "verb");
  e.reason = Field(j, "reason");
  e.message = Field(j, "message");
  e.cn = Field(j, "cn");
  e.identity = Field(j, "identity");
  e.ssh_peer = Field(j, "ssh_peer");
  e.public_key_sha256 = Field(j, "public_key_sha256");
  e.serial = Field(j, "serial");
  e.profile = Field(j, "profile");
  e.not_before = Time(Field(j, "not_before"));
  e.not_after = Time(Field(j, "not_after"));
  if (auto a = j.find("attested"); a != j.end() && a->is_boolean()) e.attested = a->get<bool>();
  return e;
}

bool ListFilter::Matches(const AuditEntry& e) const {
  if (since && e.time < *since) return false;
  if (!identity.empty() && e.identity != identity && e.Who() != identity) return false;
  if (!outcome.empty() && e.outcome != outcome) return false;
  return true;
}

std::string ShortAge(std::chrono::seconds age) {
  long long s = std::max<long long>(0, age.count());
  if (s < 120) return std::to_string(s) + "s";
  if (s < 2 * 3600) return std::to_string(s / 60) + "m";
  if (s < 2 * 86400) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

std::string ListHeader() {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%-7s %-8s %-20s %-24s %-12s %-16s %-20s %s\n", "SEQ", "AGE",
                "IDENTITY", "OUTCOME", "KEY", "SERIAL", "EXPIRES", "PEER");
  return buf;
}

std::string ListRow(const AuditEntry& e, TimePoint now) {
  std::string outcome = e.outcome + (e.reason.empty() ? "" : "/" + e.reason);
  if (e.verb != "sign" && !e.verb.empty() && e.outcome == "served") outcome += "(" + e.verb + ")";
  std::string who = base::Printable(e.Who(), 40);
  std::string peer = base::Printable(e.ssh_peer, 60);
  std::string expires = e.not_after ? base::FormatRfc3339(*e.not_after) : "-";
  char buf[1024];
  std::snprintf(buf, sizeof buf, "%-7s %-8s %-20s %-24s %-12s %-16s %-20s %s\n",
                e.seq > 0 ? std::to_string(e.seq).c_str() : "-",
                ShortAge(std::chrono::duration_cast<std::chrono::seconds>(now - e.time)).c_str(),
                who.c_str(), base::Printable(outcome, 60).c_str(),
                Short(e.public_key_sha256, 12).c_str(), Short(e.serial, 16).c_str(),
                expires.c_str(), peer.c_str());
  return buf;
}

std::vector<std::string> IdentitySummary::Flags() const {
  std::vector<std::string> flags;
  if (new_name) flags.push_back("new-name");
  if (new_key) flags.push_back("new-key");
  if (refusal_burst) flags.push_back("refusal-burst");
  if (stopped_renewing) flags.push_back("stopped-renewing");
  return flags;
}

void AuditSummary::Add(const AuditEntry& e) {
  ++entries_;
  if (e.outcome != "issued" && e.outcome != "refused" && e.outcome != "error" &&
      e.outcome != "pending")
    return;  // ca/info
  IdentitySummary& s = by_who_[e.Subject()];
  s.who = e.Who();
  if (e.Subject() != e.Who()) s.profile = e.profile;
  if (!s.first_seen) {
    s.first_seen = e.time;
    s.new_name = e.time >= since_;
  }
  bool in_window = e.time >= since_;
  if (e.outcome == "pending") {  // awaiting approval (#14): counted, not a refusal
    ++s.by_reason[{e.outcome, e.reason}];
    return;
  }
  if (e.outcome == "issued") {
    ++s.by_reason[{"issued", ""}];
    bool key_changed = !s.last_key.empty() && e.public_key_sha256 != s.last_key;
    if (in_window) {
      ++s.issued;
      if (e.attested) ++(*e.attested ? s.attested : s.unattested);
      if (key_changed) {
        ++s.key_changes;
        s.new_key = true;
      }
    }
    s.last_serial = e.serial;
    s.last_key = e.public_key_sha256;
    s.last_issued = e.time;
    s.last_not_before = e.not_before;
    s.last_not_after = e.not_after;
    s.stopped_renewing = false;
    if (e.not_before && e.not_after && *e.not_after > *e.not_before) {
      auto lifetime = *e.not_after - *e.not_before;
      auto elapsed = now_ - *e.not_before;
      s.stopped_renewing = static_cast<double>(elapsed.count()) >
                           static_cast<double>(lifetime.count()) * kRenewalOverdueFraction;
    }
    return;
  }
  ++s.by_reason[{e.outcome, e.reason}];
  if (e.time <= now_ && now_ - e.time <= std::chrono::hours(1)) ++s.refusals_last_hour;
  if (!in_window) return;
  ++s.refused;
  s.last_refusal = e.time;
  s.last_refusal_reason = e.reason;
  s.recent_refusals.push_back(e.time);
  while (!s.recent_refusals.empty() && e.time - s.recent_refusals.front() > kRefusalBurstWindow) {
    s.recent_refusals.pop_front();
  }
  if (s.recent_refusals.size() >= static_cast<std::size_t>(kRefusalBurstCount))
    s.refusal_burst = true;
}

std::vector<IdentitySummary> AuditSummary::Identities() const {
  std::vector<IdentitySummary> out;
  out.reserve(by_who_.size());
  for (const auto& [who, s] : by_who_) out.push_back(s);
  return out;
}

std::string FormatReport(const std::vector<IdentitySummary>& identities, TimePoint now) {
  std::string out;
  char buf[1024];
  // ATTESTED (#27) only where some record said whether its key was attested: a signer with
  // attestation off prints the table it always did.
  bool attestation = false;
  for (const auto& s : identities) attestation = attestation || s.attested + s.unattested > 0;
  std::string attested_header = attestation ? " ATTESTED" : "";
  std::snprintf(buf, sizeof buf, "%-20s %6s%s %7s %4s %-16s %-20s %-12s %-30s %s\n", "IDENTITY", "ISSUED",
                attested_header.c_str(), "REFUSED", "KEYS", "LAST SERIAL", "NOT AFTER", "KEY", "LAST REFUSAL",
                "FLAGS");
  out += buf;
  for (const auto& s : identities) {
    std::string refusal =
        s.last_refusal
            ? ShortAge(std::chrono::duration_cast<std::chrono::seconds>(now - *s.last_refusal)) +
                  " ago " + s.last_refusal_reason
            : "-";
    std::string flags;
    for (const auto& f : s.Flags()) flags += (flags.empty() ? "" : ",") + f;
    // attested/unattested issuances; "-" when none of its records said.
    char attested[32] = "";
    if (attestation) {
      std::string count = s.attested + s.unattested == 0
                              ? "-"
                              : std::to_string(s.attested) + "/" + std::to_string(s.unattested);
      std::snprintf(attested, sizeof attested, " %8s", count.c_str());
    }
    std::snprintf(buf, sizeof buf, "%-20s %6llu%s %7llu %4llu %-16s %-20s %-12s %-30s %s\n",
                  base::Printable(s.profile.empty() ? s.who : s.who + " " + s.profile, 40).c_str(),
                  static_cast<unsigned long long>(s.issued), attested,
                  static_cast<unsigned long long>(s.refused),
                  static_cast<unsigned long long>(s.key_changes), Short(s.last_serial, 16).c_str(),
                  Rfc3339(s.last_not_after).c_str(), Short(s.last_key, 12).c_str(),
                  base::Printable(refusal, 40).c_str(), flags.empty() ? "-" : flags.c_str());
    out += buf;
  }
  return out;
}

std::string FormatReportJson(const std::vector<IdentitySummary>& identities, TimePoint since,
                             TimePoint now) {
  nlohmann::ordered_json doc;
  doc["since"] = base::FormatRfc3339(since);
  doc["now"] = base::FormatRfc3339(now);
  doc["identities"] = nlohmann::ordered_json::array();
  for (const auto& s : identities) {
    nlohmann::ordered_json j;
    j["identity"] = s.who;
    if (!s.profile.empty()) j["profile"] = s.profile;
    j["issued"] = s.issued;
    j["attested"] = s.attested;      // #27: issuances whose key was proven TPM-bound
    j["unattested"] = s.unattested;  // and those that were not (attestation = "optional")
    j["refused"] = s.refused;
    j["key_changes"] = s.key_changes;
    j["last_serial"] = s.last_serial;
    j["last_public_key_sha256"] = s.last_key;
    j["last_issued"] = s.last_issued ? base::FormatRfc3339(*s.last_issued) : "";
    j["last_not_before"] = s.last_not_before ? base::FormatRfc3339(*s.last_not_before) : "";
    j["last_not_after"] = s.last_not_after ? base::FormatRfc3339(*s.last_not_after) : "";
    j["last_refusal"] = s.last_refusal ? base::FormatRfc3339(*s.last_refusal) : "";
    j["last_refusal_reason"] = s.last_refusal_reason;
    j["flags"] = s.Flags();
    doc["identities"].push_back(j);
  }
  return doc.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string FormatPrometheus(const MetricsInput& in, TimePoint now) {
  std::string out;
  auto line = [&](const std::string& text) { out += text + "\n"; };
  auto num = [](long long v) { return std::to_string(v); };
  line(
      "# HELP etcd_signer_audit_chain_ok 1 if the audit log's hash chain verified, 0 if it is "
      "broken.");
  line("# TYPE etcd_signer_audit_chain_ok gauge");
  line("etcd_signer_audit_chain_ok " + std::string(in.chain_ok ? "1" : "0"));
  line("# HELP etcd_signer_audit_chain_head_seq seq of the last record of the verified chain.");
  line("# TYPE etcd_signer_audit_chain_head_seq gauge");
  line("etcd_signer_audit_chain_head_seq " + std::to_string(in.chain_head_seq));
  line("# HELP etcd_signer_audit_records Records in the audit files read.");
  line("# TYPE etcd_signer_audit_records gauge");
  line("etcd_signer_audit_records " + std::to_string(in.records));
  line(
      "# HELP etcd_signer_ca_certificate_expiry_seconds Seconds until the signing CA certificate "
      "expires.");
  line("# TYPE etcd_signer_ca_certificate_expiry_seconds gauge");
  if (in.ca_not_after)
    line("etcd_signer_ca_certificate_expiry_seconds " + num(SecondsBetween(now, *in.ca_not_after)));
  line(
      "# HELP etcd_signer_requests Requests in the audit files read, by identity and "
      "outcome/reason.");
  line("# TYPE etcd_signer_requests gauge");
  for (const auto& s : in.identities) {
    for (const auto& [key, count] : s.by_reason) {
      line("etcd_signer_requests{" + IdentityLabels(s) + ",outcome=\"" + Label(key.first) +
           "\",reason=\"" + Label(key.second) + "\"} " + std::to_string(count));
    }
  }
  line(
      "# HELP etcd_signer_refusals_last_hour Refused requests per identity in the hour before the "
      "run.");
  line("# TYPE etcd_signer_refusals_last_hour gauge");
  for (const auto& s : in.identities) {
    line("etcd_signer_refusals_last_hour{" + IdentityLabels(s) + "} " +
         std::to_string(s.refusals_last_hour));
  }
  line(
      "# HELP etcd_signer_last_issued_timestamp_seconds When the identity's newest certificate was "
      "issued.");
  line("# TYPE etcd_signer_last_issued_timestamp_seconds gauge");
  for (const auto& s : in.identities) {
    if (!s.last_issued) continue;
    line("etcd_signer_last_issued_timestamp_seconds{" + IdentityLabels(s) + "} " +
         num(std::chrono::duration_cast<std::chrono::seconds>(s.last_issued->time_since_epoch())
                 .count()));
  }
  line(
      "# HELP etcd_signer_certificate_expiry_seconds Seconds until the identity's newest "
      "certificate expires.");
  line("# TYPE etcd_signer_certificate_expiry_seconds gauge");
  for (const auto& s : in.identities) {
    if (!s.last_not_after) continue;
    line("etcd_signer_certificate_expiry_seconds{" + IdentityLabels(s) + "} " +
         num(SecondsBetween(now, *s.last_not_after)));
  }
  line(
      "# HELP etcd_signer_certificate_lifetime_seconds Lifetime of the identity's newest "
      "certificate.");
  line("# TYPE etcd_signer_certificate_lifetime_seconds gauge");
  for (const auto& s : in.identities) {
    if (!s.last_not_after || !s.last_not_before) continue;
    line("etcd_signer_certificate_lifetime_seconds{" + IdentityLabels(s) + "} " +
         num(SecondsBetween(*s.last_not_before, *s.last_not_after)));
  }
  line("# HELP etcd_signer_metrics_timestamp_seconds When these metrics were computed.");
  line("# TYPE etcd_signer_metrics_timestamp_seconds gauge");
  line("etcd_signer_metrics_timestamp_seconds " +
       num(std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count()));
  return out;
}

std::optional<std::string> CrlSerial(std::string_view audit_serial) {
  if (audit_serial.empty() || audit_serial.size() > 128) return std::nullopt;
  std::string out;
  if (audit_serial.size() % 2 == 1) out.push_back('0');
  for (char c : audit_serial) {
    if (c >= '0' && c <= '9') {
      out.push_back(c);
    } else if (c >= 'a' && c <= 'f') {
      out.push_back(static_cast<char>(c - 'a' + 'A'));
    } else if (c >= 'A' && c <= 'F') {
      out.push_back(c);
    } else {
      return std::nullopt;
    }
  }
  return out;
}

}  // namespace signer
