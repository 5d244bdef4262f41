// SPDX-License-Identifier: Apache-2.0
// `audit verify` and `audit list`: the audit log's hash chain, and one line per request.
#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>

#include "base/failure.h"
#include "signerctl/verbs.h"

namespace signerctl {
namespace {

using base::ExitCode;
using base::Failure;

struct VerifyFlags {
  std::vector<std::string> files;
  std::vector<std::string> heads;
  bool no_recorded_head = false;
  bool json = false;
};

signer::ChainHead TrustedHead(const std::string& text) {
  auto head = signer::ParseHead(text);
  if (!head) throw Failure(ExitCode::kUsage, "usage", "--head must be SEQ:HASH (64 lowercase hex digits)");
  return *head;
}

// "ok: N records, seq A..B, FIRST .. LAST, head SEQ:HASH" and what the files did not cover.
std::string VerifiedSummary(const signer::ChainVerifier& v) {
  std::string summary = "ok: " + std::to_string(v.records()) + " records";
  if (v.records() > 0) {
    summary += ", seq " + std::to_string(v.first_seq()) + ".." + std::to_string(v.head().seq) + ", " +
               v.first_time() + " .. " + v.last_time() + ", head " + signer::FormatHead(v.head());
  }
  if (v.first_seq() > 1) summary += " (starts at seq " + std::to_string(v.first_seq()) + ": older files not given)";
  if (v.legacy_records() > 0) {
    summary += "; " + std::to_string(v.legacy_records()) + " unchained records from before the chain";
  }
  return summary;
}

// The heads to verify against: every --head (syslog's, masters' witnesses) and the one the signer
// recorded next to the newest file (unless --no-recorded-head), and what the summary says of them.
std::pair<std::vector<signer::ChainHead>, std::string> HeadsFor(const VerifyFlags& flags) {
  std::vector<signer::ChainHead> heads;
  for (const auto& text : flags.heads) heads.push_back(TrustedHead(text));
  std::string said;
  if (!heads.empty()) said = "the chain holds the " + std::to_string(heads.size()) + " head(s) given";
  if (flags.no_recorded_head) return {heads, said};
  if (auto recorded = RecordedHeadOf(flags.files)) {
    heads.push_back(recorded->head);
    return {heads, (said.empty() ? "the chain" : said + " and") + " ends in the head the signer recorded in " +
                       recorded->source};
  }
  if (!said.empty()) return {heads, said};
  return {heads, "no recorded head (" + flags.files.back() +
                     ".lock): a cut tail would not show; give --head (from syslog or a master's witness)"};
}

int AuditVerify(const VerifyFlags& flags) {
  auto [heads, said] = HeadsFor(flags);
  signer::ChainVerifier v = VerifyChain(flags.files, heads);
  if (v.broken()) throw Failure(ExitCode::kDataErr, "chain-broken", v.broken()->message);
  if (flags.json) {
    // For scripts (#28): the same facts as the summary; a broken chain is the usual error line.
    nlohmann::ordered_json j;
    j["ok"] = true;
    j["records"] = v.records();
    if (v.records() > 0) {
      j["first_seq"] = v.first_seq();
      j["head"] = signer::FormatHead(v.head());
      j["first_time"] = v.first_time();
      j["last_time"] = v.last_time();
    }
    j["legacy_records"] = v.legacy_records();
    j["heads_checked"] = heads.size();
    j["note"] = said;
    Print(j.dump() + "\n");
    return 0;
  }
  Print(VerifiedSummary(v) + "\n" + (said.empty() ? "" : said + "\n"));
  return 0;
}

struct ListFlags {
  std::vector<std::string> files;
  std::string since, identity, outcome;
  bool json = false;
};

// A record as JSON for a terminal: the signer writes pure ASCII (ensure_ascii), so its lines pass
// as they are; a line with any other byte (a C1 control such as U+009B as UTF-8, a bidi override)
// was not written by it and is printed re-encoded, every non-ASCII character as \uXXXX (#24).
std::string PrintableJson(std::string_view line) {
  bool ascii = std::all_of(line.begin(), line.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x7f;
  });
  if (ascii) return std::string(line);
  nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded()) return "";
  return j.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
}

int AuditList(const Context& ctx, const ListFlags& flags) {
  std::vector<std::string> files = AuditFiles(ctx, flags.files);
  signer::ListFilter filter;
  if (!flags.since.empty()) filter.since = WindowStart(ctx, flags.since, "");
  filter.identity = flags.identity;
  filter.outcome = flags.outcome;
  if (!flags.json) Print(signer::ListHeader());
  for (const auto& file : files) {
    signer::ForEachLine(file, [&](std::string_view line, bool) {
      auto e = signer::ParseAuditEntry(line);
      if (!e || !filter.Matches(*e)) return true;
      Print(flags.json ? PrintableJson(line) + "\n" : signer::ListRow(*e, ctx.now));
      return true;
    });
  }
  return 0;
}

}  // namespace

VerbRun DefineAuditVerify(base::Flags& cmd) {
  auto flags = std::make_shared<VerifyFlags>();
  cmd.Option("files", flags->files, "Audit log files, oldest first (e.g. audit.log.2 audit.log.1 audit.log)")
      .Required();
  cmd.Option("--head", flags->heads,
                 "SEQ:HASH of a trusted head (from syslog, or a master's audit witness in `etcd-requester "
                 "status`); repeatable; the head the signer recorded in the newest file's .lock is checked too");
  cmd.Switch("--no-recorded-head", flags->no_recorded_head,
               "Check the files' own chain only (files copied away from their .lock)");
  cmd.Switch("--json", flags->json, "One JSON object instead of the summary lines");
  return [flags](const Context&) { return AuditVerify(*flags); };
}

VerbRun DefineAuditList(base::Flags& cmd) {
  auto flags = std::make_shared<ListFlags>();
  AddAuditFilesOption(cmd, flags->files);
  cmd.Option("--since", flags->since, "Only requests newer than this (e.g. 24h, 7d)");
  cmd.Option("--identity", flags->identity, "Only this identity (or cn:NAME for unbound keys)");
  cmd.Option("--outcome", flags->outcome, "Only this outcome")
      .OneOf({"issued", "refused", "served", "error", "pending", "checked"});
  cmd.Switch("--json", flags->json, "Print the matching records as they are (JSON lines)");
  return [flags](const Context& ctx) { return AuditList(ctx, *flags); };
}

}  // namespace signerctl
