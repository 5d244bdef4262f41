// SPDX-License-Identifier: Apache-2.0
// `governance sign`, `governance show`, `governance install` (#29): the operators' STATE.toml
// made into the signed document, printed with its signer, and installed on a signer host.
#include <unistd.h>

#include <pwd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "base/duration.h"
#include "base/failure.h"
#include "base/files.h"
#include "base/text.h"
#include "hsm/module.h"
#include "hsm/pin.h"
#include "hsm/session.h"
#include "hsm/uri.h"
#include "pki/verify.h"
#include "signer/audit.h"
#include "signer/audit_report.h"
#include "signer/governance.h"
#include "signer/service.h"
#include "signerctl/verbs.h"

namespace signerctl {
namespace {

using base::ExitCode;
using base::Failure;

// A document or source given as FILE, or "-" for stdin (`fleet push` sends it over SSH).
std::string ReadInputFile(const std::string& path, const std::string& what) {
  if (path != "-") return base::ReadFileLimited(path, signer::kMaxGovernanceBytes, "governance-invalid");
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Failure(ExitCode::kIoErr, "read-failed", "cannot read the " + what + " from stdin");
    if (n == 0) return text;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > signer::kMaxGovernanceBytes) {
      throw Failure(ExitCode::kDataErr, "governance-invalid",
                    "the " + what + " is larger than " + std::to_string(signer::kMaxGovernanceBytes) + " bytes");
    }
  }
}

std::string Counts(const signer::GovernanceState& s) {
  return std::to_string(s.denied_identities.size()) + " denied identities, " + std::to_string(s.denied_keys.size()) +
         " denied keys, " + std::to_string(s.approved_keys.size()) + " approved keys, " +
         std::to_string(s.revoked.size()) + " revoked serials";
}

std::string SignerName(X509* cert) { return pki::NameToString(X509_get_subject_name(cert)); }

// --- sign ---------------------------------------------------------------------------------------

struct SignFlags {
  std::string module, key, pin_file, cert, state, out, previous;
};

int Sign(const Context& ctx, const SignFlags& f) {
  std::string source = base::ReadFileLimited(f.state, signer::kMaxGovernanceBytes, "governance-invalid");
  signer::GovernanceState state = signer::ParseGovernanceToml(source, f.state);
  pki::X509Ptr cert = pki::ReadCertificateFile(f.cert);
  if (!f.previous.empty()) {
    // Its signature is checked with the certificate it carries (the governance key may have been
    // rotated since); installing is what enforces the order on each host.
    signer::GovernanceDocument previous =
        signer::ReadGovernance(ReadInputFile(f.previous, "previous document"), {}, f.previous);
    if (state.version == 0) {
      state.version = previous.state.version + 1;
    } else if (state.version <= previous.state.version) {
      throw Failure(ExitCode::kDataErr, "governance-rollback",
                    f.state + ": version " + std::to_string(state.version) + " is not above the previous document's " +
                        std::to_string(previous.state.version) + ": no signer host would install it");
    }
  }
  if (state.version == 0) state.version = 1;
  state.issued = std::chrono::floor<std::chrono::seconds>(ctx.now);
  if (state.expires <= state.issued) {
    throw Failure(ExitCode::kDataErr, "governance-expired",
                  f.state + ": expires " + base::FormatRfc3339(state.expires) + " is not in the future");
  }
  std::string pem = SignWithGovernanceToken(f.module, f.key, f.pin_file, cert.get(), state);
  signer::GovernanceDocument signed_doc = signer::ReadGovernance(pem, {cert.get()}, f.out);
  base::AtomicFileWriter(f.out, 0644).Write(pem);
  Print("signed governance version " + std::to_string(signed_doc.state.version) + " (" + Counts(signed_doc.state) +
        "), expires " + base::FormatRfc3339(signed_doc.state.expires) + ", by " + SignerName(cert.get()) +
        "; SHA-256 " + signed_doc.sha256 + "\n");
  return 0;
}

// --- show ---------------------------------------------------------------------------------------

struct ShowFlags {
  std::string file, cert;
  bool json = false;
};

int Show(const Context& ctx, const ShowFlags& f) {
  std::string pem = ReadInputFile(f.file, "document");
  std::vector<pki::X509Ptr> trusted;
  std::string trust_file = !f.cert.empty() ? f.cert : ctx.config.governance_cert;
  if (!trust_file.empty()) trusted = pki::ReadCertificateBundleFile(trust_file);
  std::vector<X509*> raw;
  for (auto& c : trusted) raw.push_back(c.get());
  signer::GovernanceDocument doc = signer::ReadGovernance(pem, raw, f.file);
  const signer::GovernanceState& s = doc.state;
  std::string trust = trust_file.empty() ? "the certificate it carries (who may sign is not checked: give --cert)"
                                         : trust_file;
  if (f.json) {
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(signer::EncodeGovernanceContent(s));
    j["signer"] = SignerName(doc.signer.get());
    j["signer_certificate_sha256"] = pki::CertificateSha256(doc.signer.get());
    j["verified_with"] = trust_file;
    j["sha256"] = doc.sha256;
    j["expired"] = ctx.now >= s.expires;
    Print(j.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace) + "\n");
    return 0;
  }
  std::string out;
  auto row = [&](const std::string& key, const std::string& value) {
    out += key + std::string(key.size() < 18 ? 18 - key.size() : 1, ' ') + value + "\n";
  };
  row("version", std::to_string(s.version));
  row("issued", base::FormatRfc3339(s.issued));
  row("expires", base::FormatRfc3339(s.expires) + (ctx.now >= s.expires ? " (EXPIRED)" : ""));
  row("signed by", SignerName(doc.signer.get()) + " (certificate SHA-256 " + pki::CertificateSha256(doc.signer.get()) + ")");
  row("signature", "verifies with " + trust);
  row("document SHA-256", doc.sha256);
  row("denied identities", std::to_string(s.denied_identities.size()));
  for (const auto& name : s.denied_identities) out += "  " + name + "\n";
  row("denied keys", std::to_string(s.denied_keys.size()));
  for (const auto& k : s.denied_keys) out += "  " + k.identity + " " + k.sha256 + "\n";
  row("approved keys", std::to_string(s.approved_keys.size()));
  for (const auto& k : s.approved_keys) out += "  " + k.identity + " " + k.sha256 + "\n";
  row("revoked", std::to_string(s.revoked.size()));
  for (const auto& r : s.revoked) out += "  " + pki::SerialText(r.serial) + " " + pki::ReasonName(r.reason) + "\n";
  Print(out);
  return 0;
}

// --- install ------------------------------------------------------------------------------------

struct InstallFlags {
  std::string file;
};

void RequireGovernanceFile(const Context& ctx) {
  if (ctx.config.governance_file.empty()) {
    throw Failure(ExitCode::kConfig, "bad-config",
                  (ctx.config_path.empty() ? std::string("the configuration") : ctx.config_path) +
                      " sets no governance_file (and governance_cert): nothing to install into");
  }
}

// Every install, done or refused, is a record of the signer's audit log (verb
// governance-install, outcome installed or install-refused): when the policy changed, to which
// version, from where.
void RecordInstall(const Context& ctx, const std::string& outcome, std::uint64_t version, const Failure* failure,
                   const std::string& message) {
  signer::AuditRecord r;
  r.outcome = outcome;
  r.verb = "governance-install";
  r.governance_version = version;
  if (failure != nullptr) {
    r.exit_code = static_cast<int>(failure->code());
    r.reason = failure->reason();
  }
  r.message = message;
  RecordInSignerLog(ctx, r, "install");
}

// Installs `pem`: the same document again is "already installed" (a push that is repeated, or
// reaches a host twice, is not a rollback); anything else goes through InstallGovernance.
std::string InstallDocument(const Context& ctx, const std::string& pem) {
  RequireGovernanceFile(ctx);
  try {
    if (::access(ctx.config.governance_file.c_str(), F_OK) == 0 &&
        base::ReadFileLimited(ctx.config.governance_file, signer::kMaxGovernanceBytes) == pem) {
      signer::GovernanceDocument in_force = signer::LoadInstalledGovernance(ctx.config);
      return "already installed: governance version " + std::to_string(in_force.state.version) + "; SHA-256 " +
             in_force.sha256;
    }
  } catch (const Failure&) {
    // A damaged or untrusted installed document: the install below says what it finds.
  }
  try {
    signer::GovernanceDocument doc = signer::InstallGovernance(ctx.config, pem, ctx.now);
    std::string line = "installed governance version " + std::to_string(doc.state.version) + " (" +
                       Counts(doc.state) + ") in " + ctx.config.governance_file + ", expires " +
                       base::FormatRfc3339(doc.state.expires) + "; SHA-256 " + doc.sha256;
    RecordInstall(ctx, "installed", doc.state.version, nullptr, line);
    return line;
  } catch (const Failure& f) {
    RecordInstall(ctx, "install-refused", 0, &f, f.what());
    throw;
  }
}

int Install(const Context& ctx, const InstallFlags& f) {
  Print(InstallDocument(ctx, ReadInputFile(f.file, "document")) + "\n");
  return 0;
}

// --- agent: the forced command of the operators' fleet key ------------------------------------

// SSH_ORIGINAL_COMMAND, strictly: at most 256 bytes of letters, digits, '-', '.', '_' and single
// spaces; anything else is refused before a word is looked at.
std::vector<std::string> AgentWords(const char* text) {
  std::string line = text != nullptr ? text : "";
  if (line.size() > 256) throw Failure(ExitCode::kUsage, "bad-request", "the request is longer than 256 bytes");
  std::vector<std::string> words;
  std::string word;
  for (char c : line + " ") {
    if (c == ' ') {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
               c == '_') {
      word.push_back(c);
    } else {
      throw Failure(ExitCode::kUsage, "bad-request",
                    "the request contains a character that is not allowed (byte " +
                        std::to_string(static_cast<unsigned char>(c)) + ")");
    }
  }
  return words;
}

// The valid serials issued to `name` in this host's audit log (audit_log.1 and audit_log).
nlohmann::ordered_json ValidSerials(const Context& ctx, const std::string& name) {
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  std::set<std::string> seen;
  ForEachEntry(AuditFiles(ctx, {}), [&](const signer::AuditEntry& e) {
    if (e.outcome != "issued" || e.cn != name || !e.not_after || *e.not_after <= ctx.now) return;
    auto serial = signer::CrlSerial(e.serial);
    if (!serial || !seen.insert(*serial).second) return;
    rows.push_back({{"serial", *serial}, {"not_after", base::FormatRfc3339(*e.not_after)}});
  });
  return rows;
}

int Agent(const Context& ctx) {
  std::vector<std::string> words = AgentWords(std::getenv("SSH_ORIGINAL_COMMAND"));
  const std::string verb = words.empty() ? "" : words[0];
  if (verb == "info" && words.size() == 1) {
    Print(signer::InfoJson(ctx.config, ctx.now) + "\n");
  } else if (verb == "install" && words.size() == 1) {
    Print(InstallDocument(ctx, ReadInputFile("-", "document")) + "\n");
  } else if (verb == "document" && words.size() == 1) {
    RequireGovernanceFile(ctx);
    Print(base::ReadFileLimited(ctx.config.governance_file, signer::kMaxGovernanceBytes));
  } else if (verb == "serials" && words.size() == 2) {
    Print(ValidSerials(ctx, words[1]).dump() + "\n");
  } else {
    throw Failure(ExitCode::kUsage, "unknown-verb",
                  "unknown request '" + base::Printable(verb, 32) + "' (info, install, document, serials NAME)");
  }
  return 0;
}

}  // namespace

std::string SignWithGovernanceToken(const std::string& module_path, const std::string& key_uri,
                                    const std::string& pin_file, X509* cert, const signer::GovernanceState& state) {
  hsm::Pkcs11Uri uri = hsm::Pkcs11Uri::Parse(key_uri);
  hsm::Module module(hsm::ModulePath(module_path, &uri));
  hsm::Session session(module, hsm::SelectorFor(uri), false);
  session.LoginWith(hsm::PinSource{pin_file, ""}, &uri);
  hsm::TokenKey key = session.FindPrivateKey(uri.object, uri.id);
  std::string pem = signer::SignGovernance(state, cert, key.private_key.get());
  // The self-check: what leaves verifies with the certificate given.
  signer::ReadGovernance(pem, {cert}, "the signed document");
  return pem;
}

VerbRun DefineGovernanceSign(base::Flags& cmd) {
  auto f = std::make_shared<SignFlags>();
  cmd.Option("--module", f->module, "PKCS#11 module of the governance token (or module-path= in --key)");
  cmd.Option("--key", f->key, "PKCS#11 URI of the governance key").Required();
  cmd.Option("--pin-file", f->pin_file, "File holding the governance token's PIN").Required();
  cmd.Option("--cert", f->cert, "The governance key's certificate (what signers list in governance_cert)").Required();
  cmd.Option("--state", f->state, "The operators' STATE.toml").Required();
  cmd.Option("--out", f->out, "Where to write the signed document (PEM CMS)").Required();
  cmd.Option("--previous", f->previous,
                 "The document this one follows: without a version in STATE.toml, this one's is its version + 1");
  return [f](const Context& ctx) { return Sign(ctx, *f); };
}

VerbRun DefineGovernanceShow(base::Flags& cmd) {
  auto f = std::make_shared<ShowFlags>();
  cmd.Option("file", f->file, "The signed document (- for stdin)").Required();
  cmd.Option("--cert", f->cert,
                 "Verify it was signed by one of these certificates (default: --config's governance_cert)");
  cmd.Switch("--json", f->json, "One JSON object: the content, its signer and the document's SHA-256");
  return [f](const Context& ctx) { return Show(ctx, *f); };
}

VerbRun DefineGovernanceAgent(base::Flags&) {
  return [](const Context& ctx) { return Agent(ctx); };
}

VerbRun DefineGovernanceInstall(base::Flags& cmd) {
  auto f = std::make_shared<InstallFlags>();
  cmd.Option("file", f->file, "The signed document (- for stdin)").Required();
  return [f](const Context& ctx) { return Install(ctx, *f); };
}

}  // namespace signerctl
