// SPDX-License-Identifier: Apache-2.0
// The approval decision of one request (#14): whether a (name, key) pair may obtain a
// certificate, from the lists the signer's configuration names, each optional:
//   denied_identities  always consulted when set: 77 identity-denied
//   denied_keys        always consulted when set: 77 key-denied
//   approved_keys      consulted with approval = "new-keys": 75 pending-approval until listed
// The files' format is list_format.h, their reading list_file.h, the operator's edits
// list_edit.h, the keys waiting for an approval pending.h.
#pragma once

#include <string>
#include <string_view>

#include "base/failure.h"
#include "signer/config.h"
#include "signer/list_file.h"
#include "signer/pending.h"

namespace pki {
struct GovernanceState;
}

namespace signer {

// Where etcd-signerctl looks for the signer's configuration when --config is not given (the
// approval verbs only), and the path the pending-approval command leaves out.
constexpr const char* kDefaultConfigFile = "/etc/etcd-signer/signer.toml";

// The accounts besides root whose lists the signer trusts: list_admin's uid, if set
// (Failure(kConfig, "bad-config") when no such account exists).
std::vector<uid_t> ListOwners(const SignerConfig& config);

// The checks of one request: each configured list is read once, when its check runs. With a
// governance document (#29, `governance`: the installed one, verified and unexpired), its denials
// are added to the local lists' and approvals come from it alone.
class ApprovalGate {
 public:
  explicit ApprovalGate(const SignerConfig& config, const pki::GovernanceState* governance = nullptr)
      : config_(config), owners_(ListOwners(config)), governance_(governance) {}
  // Failure(kNoPerm, "identity-denied") if `name` is in denied_identities.
  void CheckIdentity(std::string_view name);
  // Failure(kNoPerm, "key-denied") if (name, key) is in denied_keys; with approval = "new-keys",
  // Failure(kTempFail, "pending-approval") unless (name, key) is in approved_keys. The message
  // gives the key's SHA-256 and the command that approves it.
  void CheckKey(std::string_view name, std::string_view key_sha256);

 private:
  const SignerConfig& config_;
  std::vector<uid_t> owners_;
  const pki::GovernanceState* governance_;
};

// "etcd-signerctl [--config FILE] approve NAME SHA256": what an operator runs on the signer host.
// --config is given when the signer read another file than kDefaultConfigFile.
std::string ApproveCommand(const SignerConfig& config, std::string_view name,
                           std::string_view key_sha256);

}  // namespace signer
