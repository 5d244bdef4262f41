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
using DefineVerb = VerbRun (*)(base::Flags& cmd);

// audit.cc: `audit verify`, `audit list`.
VerbRun DefineAuditVerify(base::Flags& cmd);
VerbRun DefineAuditList(base::Flags& cmd);

// report.cc: `audit report`, `metrics`.
VerbRun DefineAuditReport(base::Flags& cmd);
VerbRun DefineMetrics(base::Flags& cmd);

// lists.cc: the approval and deny lists (#14): `pending`, `approve`, `deny`, `deny-identity`,
// `allow-identity`.
VerbRun DefinePending(base::Flags& cmd);
VerbRun DefineApprove(base::Flags& cmd);
VerbRun DefineDeny(base::Flags& cmd);
VerbRun DefineDenyIdentity(base::Flags& cmd);
VerbRun DefineAllowIdentity(base::Flags& cmd);

// serials.cc: `serials`.
VerbRun DefineSerials(base::Flags& cmd);

// governance.cc: `governance sign`, `governance show`, `governance install` (#29).
VerbRun DefineGovernanceSign(base::Flags& cmd);
VerbRun DefineGovernanceShow(base::Flags& cmd);
VerbRun DefineGovernanceInstall(base::Flags& cmd);
// The forced command of the operators' fleet key on a signer host: SSH_ORIGINAL_COMMAND is
// `info`, `install` (the document on stdin), `document` or `serials NAME`.
VerbRun DefineGovernanceAgent(base::Flags& cmd);
// `state` signed with the governance key `key_uri` (its token opened with `module_path` and the PIN
// in `pin_file`), `cert` being the key's certificate; verified with `cert` before it is returned.
std::string SignWithGovernanceToken(const std::string& module_path, const std::string& key_uri,
                                    const std::string& pin_file, X509* cert, const signer::GovernanceState& state);

// fleet.cc: `fleet push`, `fleet status`, `fleet deny-master`, `fleet allow-master` (#29).
VerbRun DefineFleetPush(base::Flags& cmd);
VerbRun DefineFleetStatus(base::Flags& cmd);
VerbRun DefineFleetDenyMaster(base::Flags& cmd);
VerbRun DefineFleetAllowMaster(base::Flags& cmd);

// enrollments.cc: `enrollment list`, `enrollment remove` (#27).
VerbRun DefineEnrollmentList(base::Flags& cmd);
VerbRun DefineEnrollmentRemove(base::Flags& cmd);
VerbRun DefineEnrollmentApprove(base::Flags& cmd);
// `pending`'s second part: TPMs enrolled but not approved yet, with the command that approves each.
std::string FormatPendingEnrollments(const signer::SignerConfig& config);

}  // namespace signerctl
