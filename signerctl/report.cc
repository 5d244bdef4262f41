// SPDX-License-Identifier: Apache-2.0
// `audit report` and `metrics`: per-identity summaries of the audit log, for people and for
// node_exporter.
#include <openssl/asn1.h>
#include <openssl/x509.h>

#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>

#include "base/failure.h"
#include "base/files.h"
#include "pki/openssl.h"
#include "signerctl/verbs.h"

namespace signerctl {
namespace {

using base::ExitCode;
using base::Failure;

struct ReportFlags {
  std::vector<std::string> files;
  std::string since;
  bool json = false;
};

// The files' chain, against the head the signer recorded: a log cut, emptied or replaced under
// the report is the first thing it says (#24).
signer::ChainVerifier CheckedChain(const std::vector<std::string>& files) {
  auto recorded = RecordedHeadOf(files);
  if (recorded) return VerifyChain(files, {recorded->head});
  return VerifyChain(files, {});
}

int AuditReport(const Context& ctx, const ReportFlags& flags) {
  std::vector<std::string> files = AuditFiles(ctx, flags.files);
  signer::ChainVerifier chain = CheckedChain(files);
  TimePoint from = WindowStart(ctx, flags.since, "7d");
  signer::AuditSummary summary(from, ctx.now);
  ForEachEntry(files, [&](const signer::AuditEntry& e) { summary.Add(e); });
  if (flags.json) {
    nlohmann::json doc = nlohmann::json::parse(signer::FormatReportJson(summary.Identities(), from, ctx.now));
    doc["chain"] = {{"ok", !chain.broken()}, {"head", signer::FormatHead(chain.head())}};
    if (chain.broken()) doc["chain"]["broken"] = chain.broken()->message;
    Print(doc.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace) + "\n");
  } else {
    if (chain.broken()) Print("ALARM: the audit chain is broken: " + chain.broken()->message + "\n");
    Print(signer::FormatReport(summary.Identities(), ctx.now));
  }
  if (chain.broken()) throw Failure(ExitCode::kDataErr, "chain-broken", chain.broken()->message);
  return 0;
}

struct MetricsFlags {
  std::vector<std::string> files;
  std::string prometheus;
};

TimePoint CertificateNotAfter(const std::string& path) {
  pki::X509Ptr cert = pki::ReadCertificateFile(path);
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert.get()), &tm) != 1) {
    throw Failure(ExitCode::kDataErr, "bad-certificate", path + ": cannot read its notAfter");
  }
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

signer::MetricsInput MetricsOf(const Context& ctx, const std::vector<std::string>& files,
                               const signer::ChainVerifier& chain) {
  signer::MetricsInput input;
  input.chain_ok = !chain.broken();
  input.chain_head_seq = chain.head().seq;
  signer::AuditSummary summary(ctx.now - std::chrono::hours(24 * 7), ctx.now);
  ForEachEntry(files, [&](const signer::AuditEntry& e) { summary.Add(e); });
  input.identities = summary.Identities();
  input.records = summary.entries();
  if (!ctx.config.ca_cert.empty()) input.ca_not_after = CertificateNotAfter(ctx.config.ca_cert);
  return input;
}

int Metrics(const Context& ctx, const MetricsFlags& flags) {
  std::vector<std::string> files = AuditFiles(ctx, flags.files);
  signer::ChainVerifier chain = CheckedChain(files);
  std::string text = signer::FormatPrometheus(MetricsOf(ctx, files, chain), ctx.now);
  try {
    base::AtomicFileWriter(flags.prometheus, 0644).Write(text);
  } catch (const Failure& f) {
    throw Failure(ExitCode::kCantCreate, "write-failed", f.what());
  }
  // The metrics are written (chain_ok 0 is what the alert watches); the operator running this by
  // hand also sees why.
  if (chain.broken()) throw Failure(ExitCode::kDataErr, "chain-broken", chain.broken()->message);
  return 0;
}

}  // namespace

VerbRun DefineAuditReport(base::Flags& cmd) {
  auto flags = std::make_shared<ReportFlags>();
  AddAuditFilesOption(cmd, flags->files);
  cmd.Option("--since", flags->since, "Window of the counts and flags (default 7d)");
  cmd.Switch("--json", flags->json, "One JSON document");
  return [flags](const Context& ctx) { return AuditReport(ctx, *flags); };
}

VerbRun DefineMetrics(base::Flags& cmd) {
  auto flags = std::make_shared<MetricsFlags>();
  AddAuditFilesOption(cmd, flags->files);
  cmd.Option("--prometheus", flags->prometheus, "Textfile to write atomically (e.g. .../etcd_signer.prom)")
      .Required();
  return [flags](const Context& ctx) { return Metrics(ctx, *flags); };
}

}  // namespace signerctl
