// SPDX-License-Identifier: Apache-2.0
// `serials`: what a name was issued, as `etcd-hsm crl --revoke` takes it.
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "base/duration.h"

#include "signer/audit_report.h"
#include "signerctl/verbs.h"

namespace signerctl {
namespace {

struct SerialsFlags {
  std::vector<std::string> files;
  std::string identity;
  bool valid_only = false;
  bool json = false;
};

int Serials(const Context& ctx, const SerialsFlags& flags) {
  std::vector<std::string> files = AuditFiles(ctx, flags.files);
  std::set<std::string> seen;
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  ForEachEntry(files, [&](const signer::AuditEntry& e) {
    if (e.outcome != "issued" || e.cn != flags.identity) return;
    if (flags.valid_only && (!e.not_after || *e.not_after <= ctx.now)) return;
    auto serial = signer::CrlSerial(e.serial);
    if (!serial || !seen.insert(*serial).second) return;
    if (!flags.json) {
      Print(*serial + "\n");
      return;
    }
    nlohmann::ordered_json row;
    row["serial"] = *serial;
    row["profile"] = e.profile.empty() ? "etcd-client" : e.profile;
    if (e.not_after) row["not_after"] = base::FormatRfc3339(*e.not_after);
    row["seq"] = e.seq;
    rows.push_back(std::move(row));
  });
  if (flags.json) Print(rows.dump() + "\n");
  return 0;
}

}  // namespace

VerbRun DefineSerials(base::Flags& cmd) {
  auto flags = std::make_shared<SerialsFlags>();
  AddAuditFilesOption(cmd, flags->files);
  cmd.Option("--identity", flags->identity, "The certificates' CN").Required();
  cmd.Switch("--valid", flags->valid_only, "Only certificates not expired now");
  cmd.Switch("--json", flags->json, "One JSON array of {serial, profile, not_after, seq} instead of lines");
  return [flags](const Context& ctx) { return Serials(ctx, *flags); };
}

}  // namespace signerctl
