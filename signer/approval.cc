// SPDX-License-Identifier: Apache-2.0
#include "signer/approval.h"

#include <pwd.h>
#include <unistd.h>

#include <vector>

#include "base/failure.h"
#include "base/text.h"
#include "signer/governance.h"

namespace signer {

using base::ExitCode;
using base::Failure;

std::vector<uid_t> ListOwners(const SignerConfig& config) {
  if (config.list_admin.empty()) return {};
  std::vector<char> buf(16384);
  struct passwd pw {};
  struct passwd* found = nullptr;
  if (::getpwnam_r(config.list_admin.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    throw Failure(ExitCode::kConfig, "bad-config",
                  "list_admin: no account '" + base::Printable(config.list_admin, 64) + "' on this host");
  }
  if (found->pw_uid == ::geteuid() && found->pw_uid != 0) {
    throw Failure(ExitCode::kConfig, "bad-config",
                  "list_admin '" + config.list_admin + "' is the account the signer runs as: it would approve itself");
  }
  return {found->pw_uid};
}

namespace {

std::string InGovernance(const GovernanceState& g) {
  return "the governance document (version " + std::to_string(g.version) + ")";
}

}  // namespace

void ApprovalGate::CheckIdentity(std::string_view name) {
  if (governance_ != nullptr && governance_->DeniesIdentity(name)) {
    throw Failure(ExitCode::kNoPerm, "identity-denied",
                  "the name '" + base::Printable(name, 80) + "' is denied by " + InGovernance(*governance_) +
                      ": no certificate is issued for it until the operators allow it again");
  }
  if (config_.denied_identities.empty()) return;
  if (ListContains(config_.denied_identities, ListKind::kNames, name, {}, owners_)) {
    throw Failure(ExitCode::kNoPerm, "identity-denied",
                  "the name '" + base::Printable(name, 80) +
                      "' is denied on this signer (denied_identities): no certificate is issued "
                      "for it until an operator allows it again");
  }
}

void ApprovalGate::CheckKey(std::string_view name, std::string_view key_sha256) {
  if (governance_ != nullptr && governance_->DeniesKey(name, key_sha256)) {
    throw Failure(ExitCode::kNoPerm, "key-denied",
                  "the key " + std::string(key_sha256) + " is denied for '" + base::Printable(name, 80) + "' by " +
                      InGovernance(*governance_) + ": make a new key");
  }
  if (!config_.denied_keys.empty() &&
      ListContains(config_.denied_keys, ListKind::kKeys, name, key_sha256, owners_)) {
    throw Failure(ExitCode::kNoPerm, "key-denied",
                  "the key " + std::string(key_sha256) + " is denied for '" +
                      base::Printable(name, 80) + "' (denied_keys): make a new key");
  }
  if (config_.approval != ApprovalMode::kNewKeys) return;
  if (governance_ != nullptr) {
    if (governance_->ApprovesKey(name, key_sha256)) return;
    throw Failure(ExitCode::kTempFail, "pending-approval",
                  "the key SHA-256 " + std::string(key_sha256) + " of '" + base::Printable(name, 80) +
                      "' is not approved in " + InGovernance(*governance_) +
                      "; the operators approve it there (approved_keys: {identity = \"" + base::Printable(name, 80) +
                      "\", sha256 = \"" + std::string(key_sha256) + "\"}) and install the next version");
  }
  if (!ListContains(config_.approved_keys, ListKind::kKeys, name, key_sha256, owners_)) {
    throw Failure(ExitCode::kTempFail, "pending-approval",
                  "the key SHA-256 " + std::string(key_sha256) + " of '" +
                      base::Printable(name, 80) +
                      "' is not approved yet; an operator approves it on the signer host with: " +
                      ApproveCommand(config_, name, key_sha256));
  }
}

std::string ApproveCommand(const SignerConfig& config, std::string_view name,
                           std::string_view key_sha256) {
  std::string command = "etcd-signerctl";
  if (!config.config_file.empty() && config.config_file != kDefaultConfigFile) {
    command += " --config " + config.config_file;
  }
  return command + " approve " + base::Printable(name, 80) + " " + std::string(key_sha256);
}

}  // namespace signer
