// SPDX-License-Identifier: Apache-2.0
// etcd-signerctl: the operator's view of a signer host: verify the audit log's hash chain, list
// and summarise what was issued and refused, export metrics for node_exporter.
#include <openssl/asn1.h>
#include <openssl/x509.h>
#include <pwd.h>
#include <syslog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/duration.h"
#include "base/failure.h"
#include "base/files.h"
#include "base/program.h"
#include "pki/openssl.h"
#include "signer/approval.h"
#include "signer/audit_chain.h"
#include "signer/audit_report.h"
#include "signer/config.h"

namespace {

using base::ExitCode;
using base::Failure;
using signer::TimePoint;

constexpr const char* kDescription =
    "etcd-signerctl — verify, list and summarise the audit log of etcd-signer; export its "
    "metrics.\n"
    "\n"
    "  etcd-signerctl audit verify FILE... [--head SEQ:HASH]   (oldest file first)\n"
    "  etcd-signerctl --config signer.toml audit list [--since 24h] [--identity ID] [--outcome O] "
    "[--json]\n"
    "  etcd-signerctl --config signer.toml audit report [--since 7d] [--json]\n"
    "  etcd-signerctl --config signer.toml metrics --prometheus FILE\n"
    "  etcd-signerctl [--config signer.toml] pending | approve NAME SHA256 [--replace] |\n"
    "      deny NAME SHA256 | deny-identity NAME | allow-identity NAME\n"
    "  etcd-signerctl --config signer.toml serials --identity NAME [--valid]\n"
    "\n"
    "Without FILE arguments, list/report/metrics read the config's audit_log and, if present, its\n"
    "rotated predecessor audit_log.1. Exit codes: 0 ok, 64 usage, 65 the chain is broken (one "
    "line\n"
    "names the first broken place), 66 a file cannot be read, 73 cannot write the metrics or a\n"
    "list file, 75 a list file is locked by another edit, 78 configuration. Errors are one line:\n"
    "'etcd-signerctl: <reason>: <sentence>'. See etcd-signerctl(8).";

void Print(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
}

// Every line of `files` that is a record, oldest first.
void ForEachEntry(const std::vector<std::string>& files,
                  const std::function<void(const signer::AuditEntry&)>& each) {
  for (const auto& file : files) {
    signer::ForEachLine(file, [&](std::string_view line, bool) {
      if (auto e = signer::ParseAuditEntry(line)) each(*e);
      return true;
    });
  }
}

// The line that starts at `offset`, if it now ends in a newline (at most 1 MiB is looked at).
std::optional<std::string> TerminatedLineAt(const std::string& path, std::uint64_t offset) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  std::string line;
  char c;
  while (line.size() < (1u << 20) && in.get(c)) {
    if (c == '\n') return line;
    line.push_back(c);
  }
  return std::nullopt;
}

signer::ChainVerifier Verify(const std::vector<std::string>& files,
                             const std::optional<signer::ChainHead>& head) {
  signer::ChainVerifier verifier(head);
  for (std::size_t i = 0; i < files.size(); ++i) {
    const std::string& file = files[i];
    verifier.BeginFile(file);
    std::uint64_t offset = 0;
    std::optional<std::string> unterminated;
    signer::ForEachLine(file, [&](std::string_view line, bool terminated) {
      if (!terminated) {
        unterminated = std::string(line);
        return true;
      }
      offset += line.size() + 1;
      return verifier.Feed(line, true);
    });
    if (verifier.broken()) break;
    if (unterminated) {
      // The newest file may be in the middle of an append (a reader can see part of a write):
      // look again shortly before calling its last line torn.
      if (i + 1 == files.size()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        if (auto whole = TerminatedLineAt(file, offset)) {
          verifier.Feed(*whole, true);
          continue;
        }
      }
      verifier.Feed(*unterminated, false);
      break;
    }
  }
  verifier.Finish();
  return verifier;
}

std::optional<TimePoint> CertificateNotAfter(const std::string& path) {
  pki::X509Ptr cert = pki::ReadCertificateFile(path);
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert.get()), &tm) != 1) {
    throw Failure(ExitCode::kDataErr, "bad-certificate", path + ": cannot read its notAfter");
  }
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string CurrentUser() {
  struct passwd* pw = ::getpwuid(::geteuid());
  return pw != nullptr ? pw->pw_name : "uid " + std::to_string(::geteuid());
}

// An edit of an approval or deny list, for the operator (stdout) and the host's log (syslog auth):
// who changed which list is security-relevant, and the audit log is the signer's alone.
void Report(const std::string& line) {
  Print(line + "\n");
  ::openlog("etcd-signerctl", LOG_PID, LOG_AUTH);
  ::syslog(LOG_NOTICE, "%s (by %s)", line.c_str(), CurrentUser().c_str());
  ::closelog();
}

// The list file `key` names in the signer's configuration; a configuration error if unset.
const std::string& ListPath(const std::string& path, const char* key, const std::string& config) {
  if (path.empty()) {
    throw Failure(ExitCode::kConfig, "bad-config",
                  std::string(key) + " is not set in " + config + ": name the file there first");
  }
  return path;
}

// A list for display filters: a missing file is an empty list.
std::optional<signer::ApprovalList> LoadIfPresent(const std::string& path, signer::ListKind kind) {
  if (path.empty() || ::access(path.c_str(), F_OK) != 0) return std::nullopt;
  return signer::ApprovalList::Load(path, kind);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{kDescription, "etcd-signerctl"};
  app.set_version_flag("--version", ETCD_SIGNER_VERSION);
  app.require_subcommand(1);
  std::string config_path, now_text;
  app.add_option("--config", config_path,
                 "TOML configuration of etcd-signer (audit_log, ca_cert, the approval and deny "
                 "lists; pending/approve/deny/deny-identity/allow-identity default to "
                 "/etc/etcd-signer/signer.toml)");
  app.add_option("--now", now_text,
                 "Compute ages and flags as of this RFC 3339 time (default: now)");

  auto* audit = app.add_subcommand("audit", "Audit log: verify, list, report");
  audit->require_subcommand(1);

  std::vector<std::string> files;
  std::string head_text;
  auto* verify =
      audit->add_subcommand("verify", "Verify the hash chain of audit log files (oldest first)");
  verify
      ->add_option("files", files,
                   "Audit log files, oldest first (e.g. audit.log.2 audit.log.1 audit.log)")
      ->required();
  verify->add_option("--head", head_text,
                     "SEQ:HASH of a trusted head (from syslog): catches a cut tail");

  std::string since_text, identity, outcome;
  bool json = false;
  auto* list = audit->add_subcommand("list", "One line per request, newest last");
  list->add_option("files", files,
                   "Audit log files, oldest first (default: audit_log.1 audit_log)");
  list->add_option("--since", since_text, "Only requests newer than this (e.g. 24h, 7d)");
  list->add_option("--identity", identity, "Only this identity (or cn:NAME for unbound keys)");
  list->add_option("--outcome", outcome, "Only this outcome")
      ->check(CLI::IsMember({"issued", "refused", "served", "error", "pending"}));
  list->add_flag("--json", json, "Print the matching records as they are (JSON lines)");

  auto* report =
      audit->add_subcommand("report", "Per identity: certificates, refusals, key changes, flags");
  report->add_option("files", files,
                     "Audit log files, oldest first (default: audit_log.1 audit_log)");
  report->add_option("--since", since_text, "Window of the counts and flags (default 7d)");
  report->add_flag("--json", json, "One JSON document");

  std::string prometheus;
  auto* metrics = app.add_subcommand("metrics", "Write node_exporter textfile metrics");
  metrics->add_option("files", files,
                      "Audit log files, oldest first (default: audit_log.1 audit_log)");
  metrics
      ->add_option("--prometheus", prometheus,
                   "Textfile to write atomically (e.g. .../etcd_signer.prom)")
      ->required();

  // Approval and deny lists (#14): the files named in the signer's configuration.
  bool all_pending = false;
  auto* pending = app.add_subcommand(
      "pending", "Keys answered pending-approval that are neither approved nor denied yet");
  pending->add_option("files", files,
                      "Audit log files, oldest first (default: audit_log.1 audit_log)");
  pending->add_flag("--all", all_pending, "Also keys approved or denied since");
  std::string list_name, list_key;
  bool replace = false;
  auto* approve = app.add_subcommand(
      "approve", "Approve NAME's key SHA256 in approved_keys (and lift a deny of it)");
  approve->add_option("name", list_name, "The identity (the certificate's CN)")->required();
  approve->add_option("sha256", list_key, "The key's SHA-256, as `pending` prints it")->required();
  approve->add_flag("--replace", replace, "Remove NAME's other approved keys (a rebuilt master)");
  auto* deny = app.add_subcommand(
      "deny", "Deny NAME's key SHA256 in denied_keys (and remove its approval): 77 key-denied");
  deny->add_option("name", list_name, "The identity (the certificate's CN)")->required();
  deny->add_option("sha256", list_key, "The key's SHA-256")->required();
  auto* deny_identity = app.add_subcommand(
      "deny-identity", "Add NAME to denied_identities: every issuing request is 77 identity-denied");
  deny_identity->add_option("name", list_name, "The identity")->required();
  auto* allow_identity =
      app.add_subcommand("allow-identity", "Remove NAME from denied_identities");
  allow_identity->add_option("name", list_name, "The identity")->required();
  bool valid_only = false;
  auto* serials = app.add_subcommand(
      "serials", "Serials issued to a name (hex, as `etcd-hsm crl --revoke` takes them)");
  serials->add_option("files", files,
                      "Audit log files, oldest first (default: audit_log.1 audit_log)");
  serials->add_option("--identity", identity, "The certificates' CN")->required();
  serials->add_flag("--valid", valid_only, "Only certificates not expired now");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "etcd-signerctl: usage: %s\n", e.what());
    return static_cast<int>(ExitCode::kUsage);
  }

  return base::RunProgram("etcd-signerctl", [&]() -> int {
    TimePoint now = std::chrono::system_clock::now();
    if (!now_text.empty()) {
      try {
        now = base::ParseRfc3339(now_text);
      } catch (const Failure& f) {
        throw Failure(ExitCode::kUsage, "usage", "--now: " + std::string(f.what()));
      }
    }
    auto since = [&](const std::string& fallback) -> TimePoint {
      std::string text = since_text.empty() ? fallback : since_text;
      if (text.empty()) return TimePoint::min();
      try {
        return now - base::ParseDuration(text);
      } catch (const Failure& f) {
        throw Failure(ExitCode::kUsage, "usage", "--since: " + std::string(f.what()));
      }
    };
    signer::SignerConfig config;
    bool edits_lists = pending->parsed() || approve->parsed() || deny->parsed() ||
                       deny_identity->parsed() || allow_identity->parsed();
    if (config_path.empty() && edits_lists) config_path = signer::kDefaultConfigFile;
    if (!config_path.empty()) signer::LoadConfigFile(config_path, config);
    auto default_files = [&] {
      if (!files.empty()) return;
      if (config.audit_log.empty()) {
        throw Failure(ExitCode::kUsage, "usage",
                      "give audit log files, or --config with audit_log set");
      }
      std::string rotated = config.audit_log + ".1";
      if (::access(rotated.c_str(), F_OK) == 0) files.push_back(rotated);
      files.push_back(config.audit_log);
    };

    if (verify->parsed()) {
      std::optional<signer::ChainHead> head;
      if (!head_text.empty()) {
        head = signer::ParseHead(head_text);
        if (!head)
          throw Failure(ExitCode::kUsage, "usage",
                        "--head must be SEQ:HASH (64 lowercase hex digits)");
      }
      signer::ChainVerifier v = Verify(files, head);
      if (v.broken()) throw Failure(ExitCode::kDataErr, "chain-broken", v.broken()->message);
      std::string summary = "ok: " + std::to_string(v.records()) + " records";
      if (v.records() > 0) {
        summary += ", seq " + std::to_string(v.first_seq()) + ".." + std::to_string(v.head().seq) +
                   ", " + v.first_time() + " .. " + v.last_time() + ", head " +
                   signer::FormatHead(v.head());
      }
      if (v.first_seq() > 1)
        summary += " (starts at seq " + std::to_string(v.first_seq()) + ": older files not given)";
      if (v.legacy_records() > 0) {
        summary +=
            "; " + std::to_string(v.legacy_records()) + " unchained records from before the chain";
      }
      Print(summary + "\n");
      return 0;
    }
    if (list->parsed()) {
      default_files();
      signer::ListFilter filter;
      if (!since_text.empty()) filter.since = since("");
      filter.identity = identity;
      filter.outcome = outcome;
      if (!json) Print(signer::ListHeader());
      for (const auto& file : files) {
        signer::ForEachLine(file, [&](std::string_view line, bool) {
          auto e = signer::ParseAuditEntry(line);
          if (!e || !filter.Matches(*e)) return true;
          Print(json ? std::string(line) + "\n" : signer::ListRow(*e, now));
          return true;
        });
      }
      return 0;
    }
    if (report->parsed()) {
      default_files();
      TimePoint from = since("7d");
      signer::AuditSummary summary(from, now);
      ForEachEntry(files, [&](const signer::AuditEntry& e) { summary.Add(e); });
      Print(json ? signer::FormatReportJson(summary.Identities(), from, now)
                 : signer::FormatReport(summary.Identities(), now));
      return 0;
    }
    if (metrics->parsed()) {
      default_files();
      signer::ChainVerifier v = Verify(files, std::nullopt);
      signer::MetricsInput input;
      input.chain_ok = !v.broken();
      input.chain_head_seq = v.head().seq;
      signer::AuditSummary summary(now - std::chrono::hours(24 * 7), now);
      ForEachEntry(files, [&](const signer::AuditEntry& e) { summary.Add(e); });
      input.identities = summary.Identities();
      input.records = summary.entries();
      if (!config.ca_cert.empty()) input.ca_not_after = CertificateNotAfter(config.ca_cert);
      try {
        base::AtomicFileWriter(prometheus, 0644).Write(signer::FormatPrometheus(input, now));
      } catch (const Failure& f) {
        throw Failure(ExitCode::kCantCreate, "write-failed", f.what());
      }
      if (v.broken()) {
        // The metrics are written (chain_ok 0 is what the alert watches); the operator running
        // this by hand also sees why.
        throw Failure(ExitCode::kDataErr, "chain-broken", v.broken()->message);
      }
      return 0;
    }
    std::string stamp = base::FormatRfc3339(now) + " by " + CurrentUser();
    if (approve->parsed()) {
      const std::string& approved = ListPath(config.approved_keys, "approved_keys", config_path);
      // Restrictive first: a crash between the two edits leaves the key neither denied nor
      // approved (pending), never both.
      std::size_t undenied = 0;
      if (!config.denied_keys.empty())
        undenied = signer::RemoveKey(config.denied_keys, list_name, list_key).removed;
      signer::ListEdit edit =
          signer::AddKey(approved, list_name, list_key, "approved " + stamp, replace);
      std::string line = edit.added ? "approved " + list_name + " " + list_key + " in " + approved
                                    : list_name + " " + list_key + " was already approved in " + approved;
      if (edit.removed > 0) line += "; removed " + std::to_string(edit.removed) + " other line(s) of " + list_name;
      if (undenied > 0) line += "; no longer denied in " + config.denied_keys;
      Report(line);
      if (config.approval != signer::ApprovalMode::kNewKeys) {
        Print("note: approval is \"none\" in " + config_path +
              ": approved_keys is consulted once approval = \"new-keys\"\n");
      }
      return 0;
    }
    if (deny->parsed()) {
      const std::string& denied = ListPath(config.denied_keys, "denied_keys", config_path);
      signer::ListEdit edit = signer::AddKey(denied, list_name, list_key, "denied " + stamp, false);
      std::size_t unapproved = 0;
      if (!config.approved_keys.empty())
        unapproved = signer::RemoveKey(config.approved_keys, list_name, list_key).removed;
      std::string line = edit.added ? "denied " + list_name + " " + list_key + " in " + denied
                                    : list_name + " " + list_key + " was already denied in " + denied;
      if (unapproved > 0) line += "; its approval was removed from " + config.approved_keys;
      Report(line);
      return 0;
    }
    if (deny_identity->parsed()) {
      const std::string& path = ListPath(config.denied_identities, "denied_identities", config_path);
      signer::ListEdit edit = signer::AddName(path, list_name, "denied " + stamp);
      Report(edit.added ? "denied identity " + list_name + " in " + path
                        : list_name + " was already denied in " + path);
      return 0;
    }
    if (allow_identity->parsed()) {
      const std::string& path = ListPath(config.denied_identities, "denied_identities", config_path);
      signer::ListEdit edit = signer::RemoveName(path, list_name);
      Report(edit.removed > 0 ? "allowed identity " + list_name + " again (removed from " + path + ")"
                              : list_name + " was not denied in " + path);
      return 0;
    }
    if (pending->parsed()) {
      default_files();
      auto approved = LoadIfPresent(config.approved_keys, signer::ListKind::kKeys);
      auto denied = LoadIfPresent(config.denied_keys, signer::ListKind::kKeys);
      signer::PendingSummary summary;
      ForEachEntry(files, [&](const signer::AuditEntry& e) { summary.Add(e); });
      std::vector<signer::PendingKey> keys;
      for (auto& k : summary.Keys()) {
        bool settled = (approved && approved->Contains(k.name, k.key_sha256)) ||
                       (denied && denied->Contains(k.name, k.key_sha256));
        if (all_pending || !settled) keys.push_back(std::move(k));
      }
      Print(signer::FormatPending(keys));
      return 0;
    }
    if (serials->parsed()) {
      default_files();
      std::set<std::string> seen;
      ForEachEntry(files, [&](const signer::AuditEntry& e) {
        if (e.outcome != "issued" || e.cn != identity) return;
        if (valid_only && (!e.not_after || *e.not_after <= now)) return;
        auto serial = signer::CrlSerial(e.serial);
        if (serial && seen.insert(*serial).second) Print(*serial + "\n");
      });
      return 0;
    }
    throw Failure(ExitCode::kUsage, "usage", "no verb given");
  });
}
