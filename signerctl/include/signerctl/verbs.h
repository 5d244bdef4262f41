// SPDX-License-Identifier: Apache-2.0
// The verbs of etcd-signerctl, one family a file. Each Define function declares the verb's flags
// on its (sub)command and returns the function that runs the verb with them once the command line
// is parsed; main.cc's table says which verb is which command.
#pragma once

#include <functional>

#include "signer/governance.h"
#include "signerctl/context.h"

namespace signerctl {

using VerbRun = std::function<int(const Context&)>;
using DefineVerb = VerbRun (*)(CLI::App& cmd);

// audit.cc: `audit verify`, `audit list`.
VerbRun DefineAuditVerify(CLI::App& cmd);
VerbRun DefineAuditList(CLI::App& cmd);

// report.cc: `audit report`, `metrics`.
VerbRun DefineAuditReport(CLI::App& cmd);
VerbRun DefineMetrics(CLI::App& cmd);

// lists.cc: the approval and deny lists (#14): `pending`, `approve`, `deny`, `deny-identity`,
// `allow-identity`.
VerbRun DefinePending(CLI::App& cmd);
VerbRun DefineApprove(CLI::App& cmd);
VerbRun DefineDeny(CLI::App& cmd);
VerbRun DefineDenyIdentity(CLI::App& cmd);
VerbRun DefineAllowIdentity(CLI::App& cmd);

// serials.cc: `serials`.
VerbRun DefineSerials(CLI::App& cmd);

// governance.cc: `governance sign`, `governance show`, `governance install` (#29).
VerbRun DefineGovernanceSign(CLI::App& cmd);
VerbRun DefineGovernanceShow(CLI::App& cmd);
VerbRun DefineGovernanceInstall(CLI::App& cmd);
// The forced command of the operators' fleet key on a signer host: SSH_ORIGINAL_COMMAND is
// `info`, `install` (the document on stdin), `document` or `serials NAME`.
VerbRun DefineGovernanceAgent(CLI::App& cmd);
// `state` signed with the governance key `key_uri` (its token opened with `module_path` and the PIN
// in `pin_file`), `cert` being the key's certificate; verified with `cert` before it is returned.
std::string SignWithGovernanceToken(const std::string& module_path, const std::string& key_uri,
                                    const std::string& pin_file, X509* cert, const signer::GovernanceState& state);

// fleet.cc: `fleet push`, `fleet status`, `fleet deny-master`, `fleet allow-master` (#29).
VerbRun DefineFleetPush(CLI::App& cmd);
VerbRun DefineFleetStatus(CLI::App& cmd);
VerbRun DefineFleetDenyMaster(CLI::App& cmd);
VerbRun DefineFleetAllowMaster(CLI::App& cmd);

// enrollments.cc: `enrollment list`, `enrollment remove` (#27).
VerbRun DefineEnrollmentList(CLI::App& cmd);
VerbRun DefineEnrollmentRemove(CLI::App& cmd);
VerbRun DefineEnrollmentApprove(CLI::App& cmd);
// `pending`'s second part: TPMs enrolled but not approved yet, with the command that approves each.
std::string FormatPendingEnrollments(const signer::SignerConfig& config);

}  // namespace signerctl
