// SPDX-License-Identifier: Apache-2.0
// `enrollment list` and `enrollment remove` (#27): the TPMs enrolled on this signer host.
#include <nlohmann/json.hpp>

#include "base/failure.h"
#include "signer/attestation.h"
#include "signerctl/verbs.h"

namespace signerctl {
namespace {

struct ListFlags {
  bool json = false;
};

int List(const Context& ctx, const ListFlags& flags) {
  std::vector<signer::Enrollment> all = signer::ListEnrollments(ctx.config);
  if (flags.json) {
    nlohmann::ordered_json j = nlohmann::ordered_json::array();
    for (const signer::Enrollment& e : all) {
      j.push_back({{"identity", e.identity}, {"ek_sha256", e.ek_sha256}, {"ek_issuer", e.ek_issuer},
                   {"ek_serial", e.ek_serial}, {"ak_sha256", e.ak_sha256}, {"enrolled", e.time},
                   {"approved", e.approved}});
    }
    Print(j.dump() + "\n");
    return 0;
  }
  std::string out;
  for (const signer::Enrollment& e : all) {
    out += e.identity + (e.approved ? "  enrolled " : "  PENDING approval, enrolled ") + e.time + "  EK " + e.ek_sha256.substr(0, 16) + "…  issuer " + e.ek_issuer +
           "  serial " + e.ek_serial + "\n";
  }
  if (all.empty()) out = "no TPM is enrolled on this signer host (" + ctx.config.enrollment_dir + ")\n";
  Print(out);
  return 0;
}

// Approvals and removals are records of the signer's audit log, like the enrollments themselves.
void Record(const Context& ctx, const std::string& verb, const std::string& outcome, const std::string& name,
            const std::string& ek_sha256) {
  signer::AuditRecord r;
  r.verb = verb;
  r.outcome = outcome;
  r.common_name = name;
  r.ek_sha256 = ek_sha256;
  RecordInSignerLog(ctx, r, verb);
}

int Remove(const Context& ctx, const std::string& name) {
  std::optional<signer::Enrollment> old = signer::FindEnrollment(ctx.config, name);
  if (!signer::RemoveEnrollment(ctx.config, name)) {
    throw base::Failure(base::ExitCode::kNoInput, "not-enrolled", name + " has no enrollment on this signer host");
  }
  Record(ctx, "enrollment-remove", "removed", name, old ? old->ek_sha256 : "");
  Print("removed the enrollment of " + name + ": its next attested request enrolls its TPM again\n");
  return 0;
}

struct ApproveFlags {
  std::string name, ek_sha256;
};

int Approve(const Context& ctx, const ApproveFlags& flags) {
  signer::Enrollment e = signer::ApproveEnrollment(ctx.config, flags.name, flags.ek_sha256);
  Record(ctx, "enrollment-approve", "approved", e.identity, e.ek_sha256);
  Print("approved the TPM of " + e.identity + " (EK SHA-256 " + e.ek_sha256 + ", issuer " + e.ek_issuer +
        ", serial " + e.ek_serial + ")\n");
  return 0;
}

}  // namespace

std::string FormatPendingEnrollments(const signer::SignerConfig& config) {
  std::string out;
  for (const signer::Enrollment& e : signer::ListEnrollments(config)) {
    if (e.approved) continue;
    out += "TPM " + e.identity + "  EK issuer " + e.ek_issuer + "  serial " + e.ek_serial + "  enrolled " + e.time +
           "\n    approve: " + signer::ApproveEnrollmentCommand(config, e.identity, e.ek_sha256) + "\n";
  }
  return out;
}

VerbRun DefineEnrollmentApprove(base::Flags& cmd) {
  auto flags = std::make_shared<ApproveFlags>();
  cmd.Option("NAME", flags->name, "The master whose enrolled TPM is approved").Required();
  cmd.Option("EK_SHA256", flags->ek_sha256, "The TPM's EK SHA-256 as `pending` shows it (checked when given)");
  return [flags](const Context& ctx) { return Approve(ctx, *flags); };
}

VerbRun DefineEnrollmentList(base::Flags& cmd) {
  auto flags = std::make_shared<ListFlags>();
  cmd.Switch("--json", flags->json, "One JSON array instead of lines");
  return [flags](const Context& ctx) { return List(ctx, *flags); };
}

VerbRun DefineEnrollmentRemove(base::Flags& cmd) {
  auto name = std::make_shared<std::string>();
  cmd.Option("NAME", *name, "The master whose TPM enrollment goes").Required();
  return [name](const Context& ctx) { return Remove(ctx, *name); };
}

}  // namespace signerctl
