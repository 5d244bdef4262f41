// SPDX-License-Identifier: Apache-2.0
// `audit verify` and `audit list`: the audit log's hash chain, and one line per request.
#include <CLI/CLI.hpp>
#include <memory>

#include "base/failure.h"
#include "signerctl/verbs.h"

namespace signerctl {
namespace {

using base::ExitCode;
using base::Failure;

struct VerifyFlags {
  std::vector<std::string> files;
  std::string head;
};

std::optional<signer::ChainHead> TrustedHead(const std::string& text) {
  if (text.empty()) return std::nullopt;
  auto head = signer::ParseHead(text);
  if (!head) throw Failure(ExitCode::kUsage, "usage", "--head must be SEQ:HASH (64 lowercase hex digits)");
  return head;
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

int AuditVerify(const VerifyFlags& flags) {
  signer::ChainVerifier v = VerifyChain(flags.files, TrustedHead(flags.head));
  if (v.broken()) throw Failure(ExitCode::kDataErr, "chain-broken", v.broken()->message);
  Print(VerifiedSummary(v) + "\n");
  return 0;
}

struct ListFlags {
  std::vector<std::string> files;
  std::string since, identity, outcome;
  bool json = false;
};

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
      Print(flags.json ? std::string(line) + "\n" : signer::ListRow(*e, ctx.now));
      return true;
    });
  }
  return 0;
}

}  // namespace

VerbRun DefineAuditVerify(CLI::App& cmd) {
  auto flags = std::make_shared<VerifyFlags>();
  cmd.add_option("files", flags->files, "Audit log files, oldest first (e.g. audit.log.2 audit.log.1 audit.log)")
      ->required();
  cmd.add_option("--head", flags->head, "SEQ:HASH of a trusted head (from syslog): catches a cut tail");
  return [flags](const Context&) { return AuditVerify(*flags); };
}

VerbRun DefineAuditList(CLI::App& cmd) {
  auto flags = std::make_shared<ListFlags>();
  AddAuditFilesOption(cmd, flags->files);
  cmd.add_option("--since", flags->since, "Only requests newer than this (e.g. 24h, 7d)");
  cmd.add_option("--identity", flags->identity, "Only this identity (or cn:NAME for unbound keys)");
  cmd.add_option("--outcome", flags->outcome, "Only this outcome")
      ->check(CLI::IsMember({"issued", "refused", "served", "error", "pending"}));
  cmd.add_flag("--json", flags->json, "Print the matching records as they are (JSON lines)");
  return [flags](const Context& ctx) { return AuditList(ctx, *flags); };
}

}  // namespace signerctl
