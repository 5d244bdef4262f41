// SPDX-License-Identifier: Apache-2.0
// The approval and deny lists (#14) named in the signer's configuration: `pending` shows the keys
// waiting for an operator, `approve`/`deny` settle a key, `deny-identity`/`allow-identity` a name.
#include <pwd.h>
#include <syslog.h>
#include <unistd.h>

#include <memory>

#include "base/duration.h"
#include "base/failure.h"
#include "base/text.h"
#include "signer/approval.h"
#include "signer/list_edit.h"
#include "signer/policy.h"
#include "signerctl/verbs.h"

namespace signerctl {
namespace {

using base::ExitCode;
using base::Failure;

std::string CurrentUser() {
  struct passwd* pw = ::getpwuid(::geteuid());
  return pw != nullptr ? pw->pw_name : "uid " + std::to_string(::geteuid());
}

// What an edit leaves in the list's comment: when, and by whom.
std::string Stamp(const Context& ctx) {
  return base::FormatRfc3339(ctx.now) + " by " + CurrentUser();
}

// An edit of an approval or deny list, for the operator (stdout) and the host's log (syslog auth):
// who changed which list is security-relevant, and the audit log is the signer's alone.
void ReportEdit(const std::string& line) {
  Print(line + "\n");
  ::openlog("etcd-signerctl", LOG_PID, LOG_AUTH);
  ::syslog(LOG_NOTICE, "%s (by %s)", line.c_str(), CurrentUser().c_str());
  ::closelog();
}

// The list file `key` names in the signer's configuration; a configuration error if unset.
const std::string& ListPath(const Context& ctx, const std::string& path, const char* key) {
  if (path.empty()) {
    throw Failure(ExitCode::kConfig, "bad-config",
                  std::string(key) + " is not set in " + ctx.config_path + ": name the file there first");
  }
  return path;
}

// A list for display filters: a missing file is an empty list.
std::optional<signer::ApprovalList> LoadIfPresent(const std::string& path, signer::ListKind kind) {
  if (path.empty() || ::access(path.c_str(), F_OK) != 0) return std::nullopt;
  return signer::ApprovalList::Load(path, kind);
}

// NAME as the signer's name rules see it: a name no request can carry (`kubemaster-1,`, empty,
// over 64 characters, outside name_pattern and not a configured member) would make an entry that
// matches nothing, and a deny of it would protect nothing. A usage error instead of a silent no-op.
void RequirePolicyName(const Context& ctx, const std::string& name) {
  if (ctx.config.members.count(name) != 0) return;  // an etcd member (#26)
  signer::SignerConfig rules = ctx.config;
  rules.identity.clear();  // the list is for every identity; the forced command's binding is not ours
  try {
    signer::CheckName(name, rules);
  } catch (const Failure& f) {
    throw Failure(ExitCode::kUsage, "usage",
                  "'" + base::Printable(name, 80) + "' can never be a certificate's name here (" +
                      f.what() + "): an entry for it would match no request");
  }
}

struct PendingFlags {
  std::vector<std::string> files;
  bool all = false;
  bool json = false;
};

int Pending(const Context& ctx, const PendingFlags& flags) {
  std::vector<std::string> files = AuditFiles(ctx, flags.files);
  auto approved = LoadIfPresent(ctx.config.approved_keys, signer::ListKind::kKeys);
  auto denied = LoadIfPresent(ctx.config.denied_keys, signer::ListKind::kKeys);
  signer::PendingSummary summary;
  ForEachEntry(files, [&](const signer::AuditEntry& e) { summary.Add(e); });
  std::vector<signer::PendingKey> keys;
  for (auto& k : summary.Keys()) {
    bool settled = (approved && approved->Contains(k.name, k.key_sha256)) ||
                   (denied && denied->Contains(k.name, k.key_sha256));
    if (flags.all || !settled) keys.push_back(std::move(k));
  }
  Print(flags.json ? signer::PendingJson(keys) : signer::FormatPending(keys));
  // TPMs waiting for approval (#27), when this host attests keys.
  if (!flags.json && ctx.config.attestation != signer::AttestationMode::kOff) {
    Print(FormatPendingEnrollments(ctx.config));
  }
  return 0;
}

struct KeyFlags {
  std::string name, key;
  bool replace = false;
};

int Approve(const Context& ctx, const KeyFlags& flags) {
  RequirePolicyName(ctx, flags.name);
  const signer::SignerConfig& config = ctx.config;
  const std::string& approved = ListPath(ctx, config.approved_keys, "approved_keys");
  // Restrictive first: a crash between the two edits leaves the key neither denied nor approved
  // (pending), never both.
  std::size_t undenied = 0;
  if (!config.denied_keys.empty()) undenied = signer::RemoveKey(config.denied_keys, flags.name, flags.key).removed;
  signer::ListEdit edit = signer::AddKey(approved, flags.name, flags.key, "approved " + Stamp(ctx), flags.replace);
  std::string line = edit.added ? "approved " + flags.name + " " + flags.key + " in " + approved
                                : flags.name + " " + flags.key + " was already approved in " + approved;
  if (edit.removed > 0) line += "; removed " + std::to_string(edit.removed) + " other line(s) of " + flags.name;
  if (undenied > 0) line += "; no longer denied in " + config.denied_keys;
  ReportEdit(line);
  if (config.approval != signer::ApprovalMode::kNewKeys) {
    Print("note: approval is \"none\" in " + ctx.config_path +
          ": approved_keys is consulted once approval = \"new-keys\"\n");
  }
  return 0;
}

int Deny(const Context& ctx, const KeyFlags& flags) {
  RequirePolicyName(ctx, flags.name);
  const signer::SignerConfig& config = ctx.config;
  const std::string& denied = ListPath(ctx, config.denied_keys, "denied_keys");
  signer::ListEdit edit = signer::AddKey(denied, flags.name, flags.key, "denied " + Stamp(ctx), false);
  std::size_t unapproved = 0;
  if (!config.approved_keys.empty()) {
    unapproved = signer::RemoveKey(config.approved_keys, flags.name, flags.key).removed;
  }
  std::string line = edit.added ? "denied " + flags.name + " " + flags.key + " in " + denied
                                : flags.name + " " + flags.key + " was already denied in " + denied;
  if (unapproved > 0) line += "; its approval was removed from " + config.approved_keys;
  ReportEdit(line);
  return 0;
}

int DenyIdentity(const Context& ctx, const std::string& name) {
  RequirePolicyName(ctx, name);
  const std::string& path = ListPath(ctx, ctx.config.denied_identities, "denied_identities");
  signer::ListEdit edit = signer::AddName(path, name, "denied " + Stamp(ctx));
  ReportEdit(edit.added ? "denied identity " + name + " in " + path : name + " was already denied in " + path);
  return 0;
}

int AllowIdentity(const Context& ctx, const std::string& name) {
  RequirePolicyName(ctx, name);
  const std::string& path = ListPath(ctx, ctx.config.denied_identities, "denied_identities");
  signer::ListEdit edit = signer::RemoveName(path, name);
  ReportEdit(edit.removed > 0 ? "allowed identity " + name + " again (removed from " + path + ")"
                              : name + " was not denied in " + path);
  return 0;
}

void AddNameOption(base::Flags& cmd, std::string& name, const char* help) {
  cmd.Option("name", name, help).Required();
}

}  // namespace

VerbRun DefinePending(base::Flags& cmd) {
  auto flags = std::make_shared<PendingFlags>();
  AddAuditFilesOption(cmd, flags->files);
  cmd.Switch("--all", flags->all, "Also keys approved or denied since");
  cmd.Switch("--json", flags->json, "One JSON array of {identity, key_sha256, first_seen, last_seen, count, peer}");
  return [flags](const Context& ctx) { return Pending(ctx, *flags); };
}

VerbRun DefineApprove(base::Flags& cmd) {
  auto flags = std::make_shared<KeyFlags>();
  AddNameOption(cmd, flags->name, "The identity (the certificate's CN)");
  cmd.Option("sha256", flags->key, "The key's SHA-256, as `pending` prints it").Required();
  cmd.Switch("--replace", flags->replace, "Remove NAME's other approved keys (a rebuilt master)");
  return [flags](const Context& ctx) { return Approve(ctx, *flags); };
}

VerbRun DefineDeny(base::Flags& cmd) {
  auto flags = std::make_shared<KeyFlags>();
  AddNameOption(cmd, flags->name, "The identity (the certificate's CN)");
  cmd.Option("sha256", flags->key, "The key's SHA-256").Required();
  return [flags](const Context& ctx) { return Deny(ctx, *flags); };
}

VerbRun DefineDenyIdentity(base::Flags& cmd) {
  auto name = std::make_shared<std::string>();
  AddNameOption(cmd, *name, "The identity");
  return [name](const Context& ctx) { return DenyIdentity(ctx, *name); };
}

VerbRun DefineAllowIdentity(base::Flags& cmd) {
  auto name = std::make_shared<std::string>();
  AddNameOption(cmd, *name, "The identity");
  return [name](const Context& ctx) { return AllowIdentity(ctx, *name); };
}

}  // namespace signerctl
