// SPDX-License-Identifier: Apache-2.0
// etcd-signerctl: the operator's view of a signer host: verify the audit log's hash chain, list
// and summarise what was issued and refused, export metrics for node_exporter, and edit the
// approval and deny lists. A table of verbs; each verb's flags and body live in its family's file.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <iterator>
#include <map>
#include <string_view>
#include <cstdio>
#include <string>
#include <vector>

#include "base/failure.h"
#include "base/program.h"
#include "signer/approval.h"
#include "signerctl/verbs.h"

namespace {

using namespace signerctl;

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
    "  etcd-signerctl governance sign --module SO --key URI --pin-file F --cert CERT --state STATE.toml\n"
    "      --out FILE [--previous FILE] | governance show FILE [--cert CERT] [--json]\n"
    "  etcd-signerctl [--config signer.toml] governance install FILE\n"
    "  etcd-signerctl [--config signer.toml] enrollment list [--json] | enrollment approve NAME [EK_SHA256]\n"
    "      | enrollment remove NAME\n"
    "  etcd-signerctl fleet push --fleet FLEET.toml FILE | fleet status --fleet FLEET.toml [--json]\n"
    "  etcd-signerctl fleet deny-master --fleet FLEET.toml NAME [--reason R] --governance-key URI --pin-file F\n"
    "      --cert CERT --out FILE | fleet allow-master ... NAME --key SHA256\n"
    "\n"
    "Without FILE arguments, list/report/metrics read the config's audit_log and, if present, its\n"
    "rotated predecessor audit_log.1. Exit codes: 0 ok, 64 usage, 65 the chain is broken (one "
    "line\n"
    "names the first broken place), 66 a file cannot be read, 73 cannot write the metrics or a\n"
    "list file, 75 a list file is locked by another edit, 78 configuration. Errors are one\n"
    "line: 'etcd-signerctl: <reason>: <sentence>'. See etcd-signerctl(8).";

// Which configuration a verb reads without --config: the list edits find their files in the
// signer's own (/etc/etcd-signer/signer.toml); the audit views need --config only for defaults.
enum class ConfigFile { kIfGiven, kSignerDefault };

struct Command {
  const char* group;  // "audit" for `audit verify`; nullptr for a verb of its own
  const char* name;
  const char* help;
  ConfigFile config;
  DefineVerb define;
};

struct Group {
  const char* name;
  const char* help;
};

const Group kGroups[] = {{"audit", "Audit log: verify, list, report"},
                         {"governance", "The fleet's signed governance document: sign, show, install"},
                         {"enrollment", "The masters' TPMs enrolled on this signer host (#27): list, approve, remove"},
                         {"fleet", "Every signer host and etcd member at once, over SSH: push, status, the incident"}};

const Command kCommands[] = {
    {"audit", "verify", "Verify the hash chain of audit log files (oldest first)", ConfigFile::kIfGiven,
     DefineAuditVerify},
    {"audit", "list", "One line per request, newest last", ConfigFile::kIfGiven, DefineAuditList},
    {"audit", "report", "Per identity: certificates, refusals, key changes, flags", ConfigFile::kIfGiven,
     DefineAuditReport},
    {nullptr, "metrics", "Write node_exporter textfile metrics", ConfigFile::kIfGiven, DefineMetrics},
    {nullptr, "pending", "Keys answered pending-approval that are neither approved nor denied yet",
     ConfigFile::kSignerDefault, DefinePending},
    {nullptr, "approve", "Approve NAME's key SHA256 in approved_keys (and lift a deny of it)",
     ConfigFile::kSignerDefault, DefineApprove},
    {nullptr, "deny", "Deny NAME's key SHA256 in denied_keys (and remove its approval): 77 key-denied",
     ConfigFile::kSignerDefault, DefineDeny},
    {nullptr, "deny-identity", "Add NAME to denied_identities: every issuing request is 77 identity-denied",
     ConfigFile::kSignerDefault, DefineDenyIdentity},
    {nullptr, "allow-identity", "Remove NAME from denied_identities", ConfigFile::kSignerDefault,
     DefineAllowIdentity},
    {nullptr, "serials", "Serials issued to a name (hex, as `etcd-hsm crl --revoke` takes them)",
     ConfigFile::kIfGiven, DefineSerials},
    {"governance", "sign", "Sign STATE.toml into the governance document with the governance token",
     ConfigFile::kIfGiven, DefineGovernanceSign},
    {"governance", "show", "Print a governance document and who signed it", ConfigFile::kIfGiven,
     DefineGovernanceShow},
    {"governance", "install", "Verify and install a governance document on this signer host (never older)",
     ConfigFile::kSignerDefault, DefineGovernanceInstall},
    {"governance", "agent",
     "Forced command for the operators' fleet key: SSH_ORIGINAL_COMMAND info | install (stdin) | document | "
     "serials NAME",
     ConfigFile::kSignerDefault, DefineGovernanceAgent},
    {"enrollment", "list", "Every master's enrolled TPM: EK fingerprint, issuer and serial, when",
     ConfigFile::kSignerDefault, DefineEnrollmentList},
    {"enrollment", "approve", "Approve NAME's newly enrolled TPM (approval = \"new-keys\")", ConfigFile::kSignerDefault,
     DefineEnrollmentApprove},
    {"enrollment", "remove", "Forget NAME's TPM: its next attested request enrolls a TPM again",
     ConfigFile::kSignerDefault, DefineEnrollmentRemove},
    {"fleet", "push", "Install a governance document on every signer host", ConfigFile::kIfGiven, DefineFleetPush},
    {"fleet", "status", "One table of every signer host's governance version, audit head, CA and software; exit 1 "
     "on any disagreement, near expiry or unreachable host", ConfigFile::kIfGiven, DefineFleetStatus},
    {"fleet", "deny-master", "The incident: deny NAME and revoke its valid serials in the next version, push it, "
     "have every member fetch the CRL, and prove it", ConfigFile::kIfGiven, DefineFleetDenyMaster},
    {"fleet", "allow-master", "Approve a rebuilt master's new key and lift its denial in the next version, and push it",
     ConfigFile::kIfGiven, DefineFleetAllowMaster},
};

struct GlobalFlags {
  std::string config_path, now_text;
};

void AddGlobalFlags(CLI::App& app, GlobalFlags& flags) {
  app.add_option("--config", flags.config_path,
                 "TOML configuration of etcd-signer (audit_log, ca_cert, the approval and deny "
                 "lists; pending/approve/deny/deny-identity/allow-identity default to "
                 "/etc/etcd-signer/signer.toml)");
  app.add_option("--now", flags.now_text, "Compute ages and flags as of this RFC 3339 time (default: now)");
}

// A command of the table, declared on the command line.
struct Verb {
  const Command* command;
  CLI::App* cli;
  VerbRun run;
};

// The command a verb hangs under: the program, or its group (`audit`), made at its first verb.
CLI::App& ParentOf(CLI::App& app, const Command& command, std::map<std::string_view, CLI::App*>& groups) {
  if (command.group == nullptr) return app;
  CLI::App*& group = groups[command.group];
  if (group == nullptr) {
    auto is_it = [&](const Group& g) { return std::string_view(g.name) == command.group; };
    group = app.add_subcommand(command.group, std::find_if(std::begin(kGroups), std::end(kGroups), is_it)->help);
    group->require_subcommand(1);
  }
  return *group;
}

std::vector<Verb> AddVerbs(CLI::App& app) {
  std::map<std::string_view, CLI::App*> groups;
  std::vector<Verb> verbs;
  for (const Command& command : kCommands) {
    CLI::App* cli = ParentOf(app, command, groups).add_subcommand(command.name, command.help);
    base::Flags flags(*cli);
    verbs.push_back({&command, cli, command.define(flags)});
  }
  return verbs;
}

int RunParsedVerb(const std::vector<Verb>& verbs, const GlobalFlags& flags) {
  for (const Verb& verb : verbs) {
    if (!verb.cli->parsed()) continue;
    std::string config_path = flags.config_path;
    if (config_path.empty() && verb.command->config == ConfigFile::kSignerDefault) {
      config_path = signer::kDefaultConfigFile;
    }
    return verb.run(MakeContext(flags.now_text, config_path));
  }
  throw base::Failure(base::ExitCode::kUsage, "usage", "no verb given");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{kDescription, "etcd-signerctl"};
  app.set_version_flag("--version", ETCD_SIGNER_VERSION);
  app.require_subcommand(1);
  GlobalFlags flags;
  AddGlobalFlags(app, flags);
  std::vector<Verb> verbs = AddVerbs(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "etcd-signerctl: usage: %s\n", e.what());
    return static_cast<int>(base::ExitCode::kUsage);
  }
  return base::RunProgram("etcd-signerctl", [&] { return RunParsedVerb(verbs, flags); });
}
