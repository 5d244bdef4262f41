// SPDX-License-Identifier: Apache-2.0
// `governance sign`, `governance show`, `governance install` (#29): the operators' STATE.toml
// made into the signed document, printed with its signer, and installed on a signer host.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <memory>
#include <nlohmann/json.hpp>

#include "base/duration.h"
#include "base/failure.h"
#include "base/files.h"
#include "base/text.h"
#include "hsm/module.h"
#include "hsm/pin.h"
#include "hsm/session.h"
#include "hsm/uri.h"
#include "pki/verify.h"
#include "signer/governance.h"
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
  hsm::Pkcs11Uri uri = hsm::Pkcs11Uri::Parse(f.key);
  hsm::Module module(hsm::ModulePath(f.module, &uri));
  hsm::Session session(module, hsm::SelectorFor(uri), false);
  session.LoginWith(hsm::PinSource{f.pin_file, ""}, &uri);
  hsm::TokenKey key = session.FindPrivateKey(uri.object, uri.id);
  std::string pem = signer::SignGovernance(state, cert.get(), key.private_key.get());
  // The self-check: what leaves verifies with the certificate given, and says what was asked.
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

int Install(const Context& ctx, const InstallFlags& f) {
  if (ctx.config.governance_file.empty()) {
    throw Failure(ExitCode::kConfig, "bad-config",
                  (ctx.config_path.empty() ? std::string("the configuration") : ctx.config_path) +
                      " sets no governance_file (and governance_cert): nothing to install into");
  }
  std::string pem = ReadInputFile(f.file, "document");
  signer::GovernanceDocument doc = signer::InstallGovernance(ctx.config, pem, ctx.now);
  Print("installed governance version " + std::to_string(doc.state.version) + " (" + Counts(doc.state) +
        ") in " + ctx.config.governance_file + ", expires " + base::FormatRfc3339(doc.state.expires) +
        "; SHA-256 " + doc.sha256 + "\n");
  return 0;
}

}  // namespace

VerbRun DefineGovernanceSign(CLI::App& cmd) {
  auto f = std::make_shared<SignFlags>();
  cmd.add_option("--module", f->module, "PKCS#11 module of the governance token (or module-path= in --key)");
  cmd.add_option("--key", f->key, "PKCS#11 URI of the governance key")->required();
  cmd.add_option("--pin-file", f->pin_file, "File holding the governance token's PIN")->required();
  cmd.add_option("--cert", f->cert, "The governance key's certificate (what signers list in governance_cert)")->required();
  cmd.add_option("--state", f->state, "The operators' STATE.toml")->required();
  cmd.add_option("--out", f->out, "Where to write the signed document (PEM CMS)")->required();
  cmd.add_option("--previous", f->previous,
                 "The document this one follows: without a version in STATE.toml, this one's is its version + 1");
  return [f](const Context& ctx) { return Sign(ctx, *f); };
}

VerbRun DefineGovernanceShow(CLI::App& cmd) {
  auto f = std::make_shared<ShowFlags>();
  cmd.add_option("file", f->file, "The signed document (- for stdin)")->required();
  cmd.add_option("--cert", f->cert,
                 "Verify it was signed by one of these certificates (default: --config's governance_cert)");
  cmd.add_flag("--json", f->json, "One JSON object: the content, its signer and the document's SHA-256");
  return [f](const Context& ctx) { return Show(ctx, *f); };
}

VerbRun DefineGovernanceInstall(CLI::App& cmd) {
  auto f = std::make_shared<InstallFlags>();
  cmd.add_option("file", f->file, "The signed document (- for stdin)")->required();
  return [f](const Context& ctx) { return Install(ctx, *f); };
}

}  // namespace signerctl
