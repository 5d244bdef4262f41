// SPDX-License-Identifier: Apache-2.0
// etcd-hsm: provisions the PKCS#11 token that holds the etcd client CA key.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>

#include "base/deadline.h"
#include "base/duration.h"
#include "base/failure.h"
#include "base/files.h"
#include "base/program.h"
#include "hsm/ca_operations.h"
#include "hsm/crl.h"
#include "hsm/pin.h"
#include "hsm/session.h"
#include "pki/openssl.h"

namespace {

using base::ExitCode;
using base::Failure;

void Emit(const std::string& text, const std::string& out) {
  if (out.empty() || out == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return;
  }
  if (::access(out.c_str(), F_OK) == 0) {
    throw Failure(ExitCode::kCantCreate, "exists", out + " exists; remove it first or choose another --out");
  }
  base::AtomicFileWriter(out, 0644).Write(text);
  std::fprintf(stderr, "etcd-hsm: wrote %s\n", out.c_str());
}

std::string HexId(const std::vector<unsigned char>& id) {
  return id.empty() ? "-" : pki::Hex(id.data(), id.size());
}

std::string Flag(const std::optional<bool>& v) { return !v ? "?" : *v ? "yes" : "no"; }

void AddPinOptions(CLI::App* cmd, hsm::PinSource& pin) {
  cmd->add_option("--pin-file", pin.file, "File holding the user PIN (mode 0400/0600)");
  cmd->add_option("--pin-env", pin.env_name, "Name of an environment variable holding the user PIN");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "etcd-hsm — provision the PKCS#11 token that holds the etcd client CA key.\n"
      "PINs are read from files (0400) or a named environment variable, never from arguments.\n"
      "Exit codes follow sysexits(3): 64 usage, 65 bad data/check failed, 69 token unavailable,\n"
      "73 cannot create, 75 temporary, 78 configuration.",
      "etcd-hsm"};
  app.set_version_flag("--version", ETCD_SIGNER_VERSION);
  app.require_subcommand(1);
  int timeout = 120;
  app.add_option("--timeout", timeout, "Overall deadline in seconds (a wedged token cannot hang us)")
      ->capture_default_str();

  std::string module, label, so_pin_file, key_uri, subject = "CN=etcd-ca", out, ca_cert, type = "ec-p256",
                                                   token, serial;
  hsm::PinSource pin;
  int days = 3650;
  std::vector<std::string> bundle_files;

  auto* init = app.add_subcommand("init-token", "Initialize a token in the first free slot");
  init->add_option("--module", module, "PKCS#11 module path")->required();
  init->add_option("--label", label, "Token label (1-32 characters)")->required();
  init->add_option("--so-pin-file", so_pin_file, "File holding the security officer PIN")->required();
  AddPinOptions(init, pin);

  auto* keygen = app.add_subcommand("keygen", "Generate a non-extractable sign-only key pair in a token");
  keygen->add_option("--module", module, "PKCS#11 module path")->required();
  keygen->add_option("--token", token, "Token label");
  keygen->add_option("--serial", serial, "Token serial number");
  keygen->add_option("--label", label, "Key label (CKA_LABEL), unique in the token")->required();
  keygen->add_option("--type", type, "ec-p256 | ec-p384 | rsa-2048 | rsa-3072 | rsa-4096")
      ->capture_default_str();
  AddPinOptions(keygen, pin);

  auto* ca = app.add_subcommand("ca", "CA certificate operations");
  ca->require_subcommand(1);
  auto* create = ca->add_subcommand("create", "Make a self-signed CA certificate for a token key");
  auto* csr = ca->add_subcommand("csr", "Make a CSR for a token key, for an offline root to sign");
  for (auto* cmd : {create, csr}) {
    cmd->add_option("--module", module, "PKCS#11 module path (or module-path= in the URI)");
    cmd->add_option("--key", key_uri, "RFC 7512 URI of the CA key, e.g. pkcs11:token=etcd-ca;object=ca-key")
        ->required();
    cmd->add_option("--subject", subject, "Subject, e.g. CN=etcd-ca,O=Example")->capture_default_str();
    cmd->add_option("--out", out, "Output file (refuses to overwrite; default stdout)");
    AddPinOptions(cmd, pin);
  }
  create->add_option("--days", days, "Validity in days")->capture_default_str();
  int path_len = 0;
  create->add_option("--path-len", path_len,
                     "Path length: 0 signs leaves only (single tier), 1 makes the root of a two-tier CA")
      ->capture_default_str();
  auto* sign_intermediate = ca->add_subcommand(
      "sign-intermediate", "The root token signs an intermediate CA certificate for a signer host's CSR (from 'ca csr')");
  std::string csr_file;
  sign_intermediate->add_option("--module", module, "PKCS#11 module path (or module-path= in the URI)");
  sign_intermediate->add_option("--key", key_uri, "RFC 7512 URI of the ROOT key")->required();
  sign_intermediate->add_option("--ca-cert", ca_cert, "The root's certificate (PEM)")->required();
  sign_intermediate->add_option("--csr", csr_file, "The intermediate's CSR (PEM, from 'etcd-hsm ca csr')")->required();
  sign_intermediate->add_option("--days", days, "Validity in days (never past the root's)")->capture_default_str();
  sign_intermediate->add_option("--out", out, "Output file (refuses to overwrite; default stdout)");
  AddPinOptions(sign_intermediate, pin);
  auto* bundle = ca->add_subcommand("bundle", "Concatenate the current CA and still-trusted previous CAs");
  bundle->add_option("certs", bundle_files, "CA certificate files, current first")->required();
  bundle->add_option("--out", out, "Output file (refuses to overwrite; default stdout)");

  auto* crl = app.add_subcommand(
      "crl", "Sign a certificate revocation list in the token (for etcd's --client-crl-file)");
  std::vector<std::string> revoke;
  std::string revoke_file, reason = "unspecified", number_file;
  crl->add_option("--module", module, "PKCS#11 module path (or module-path= in the URI)");
  crl->add_option("--key", key_uri,
                  "RFC 7512 URI of the issuing CA key (a signer's CA/intermediate, or the root)")
      ->required();
  crl->add_option("--ca-cert", ca_cert, "The issuer's certificate (PEM): the CRL's issuer and AKI")
      ->required();
  crl->add_option("--revoke", revoke,
                  "Serial(s) to revoke, hex as 'openssl x509 -serial -noout' prints them");
  crl->add_option("--revoke-file", revoke_file,
                  "File of 'SERIAL [REASON]' lines ('#' comments, blank lines)");
  crl->add_option("--reason", reason,
                  "Reason for entries that name none: unspecified, keyCompromise, cACompromise, "
                  "affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn")
      ->capture_default_str();
  int crl_days = 0;
  crl->add_option("--days", crl_days, "nextUpdate = now + days (1-3650)")->required();
  crl->add_option("--out", out,
                  "The CRL file: replaced atomically; an existing one of this issuer is continued")
      ->required();
  crl->add_option("--crl-number-file", number_file,
                  "File keeping the last cRLNumber used (created if missing)");
  AddPinOptions(crl, pin);

  auto* list = app.add_subcommand("list", "List tokens, and with --token the objects in one");
  list->add_option("--module", module, "PKCS#11 module path")->required();
  list->add_option("--token", token, "Token label: list its objects");
  list->add_option("--serial", serial, "Token serial: list its objects");
  AddPinOptions(list, pin);

  std::string check_chain, check_roots;
  auto* check = app.add_subcommand("check", "Check a CA key in a token against its certificate");
  check->add_option("--module", module, "PKCS#11 module path (or module-path= in the URI)");
  check->add_option("--key", key_uri, "RFC 7512 URI of the CA key")->required();
  check->add_option("--ca-cert", ca_cert, "CA certificate (PEM)")->required();
  check->add_option("--ca-chain", check_chain,
                    "The signer's ca_chain (PEM: the CA certificate, then its issuers up to, not including, the root)");
  check->add_option("--ca-bundle", check_roots, "With --ca-chain: the roots the chain must lead to (PEM)");
  AddPinOptions(check, pin);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : static_cast<int>(ExitCode::kUsage);
  }

  return base::RunProgram("etcd-hsm", [&]() -> int {
    base::Deadline deadline(std::chrono::seconds(timeout), [] {
      std::fputs("etcd-hsm: deadline: the token did not answer in time\n", stderr);
      return true;
    });
    auto now = std::chrono::system_clock::now();
    hsm::KeyAccess access{module, key_uri, pin};
    if (init->parsed()) {
      std::string so_pin = base::ReadSecretFile(so_pin_file);
      std::string user_pin = hsm::ReadPin(pin);
      hsm::Module m(module);
      std::string new_serial = hsm::InitToken(m, label, so_pin, user_pin);
      base::Scrub(so_pin);
      base::Scrub(user_pin);
      std::printf("initialized token '%s' (serial %s)\n", label.c_str(), new_serial.c_str());
    } else if (keygen->parsed()) {
      if (token.empty() && serial.empty()) {
        throw Failure(ExitCode::kUsage, "usage", "keygen needs --token LABEL or --serial SERIAL");
      }
      hsm::KeyType key_type = hsm::ParseKeyType(type);
      hsm::Module m(module);
      hsm::TokenSelector selector;
      if (!token.empty()) selector.label = token;
      if (!serial.empty()) selector.serial = serial;
      hsm::Session session(m, selector, true);
      std::string user_pin = hsm::ReadPin(pin);
      session.Login(user_pin);
      base::Scrub(user_pin);
      auto id = session.GenerateKeyPair(key_type, label);
      std::printf("generated %s key '%s' (id %s) in token '%s': sensitive, never extractable, sign only\n",
                  type.c_str(), label.c_str(), HexId(id).c_str(), session.token().label.c_str());
      std::printf("uri: pkcs11:token=%s;object=%s;type=private\n", session.token().label.c_str(),
                  label.c_str());
    } else if (create->parsed()) {
      Emit(hsm::CreateRootCaCertificate(access, subject, days, path_len, now), out);
    } else if (sign_intermediate->parsed()) {
      std::string csr_pem = base::ReadFileLimited(csr_file, 64 * 1024, "bad-csr");
      Emit(hsm::SignIntermediate(access, ca_cert, csr_pem, days, now), out);
    } else if (csr->parsed()) {
      Emit(hsm::CreateCaRequest(access, subject), out);
    } else if (bundle->parsed()) {
      Emit(hsm::BuildCaBundle(bundle_files, now), out);
    } else if (crl->parsed()) {
      if (revoke.empty() == revoke_file.empty()) {
        throw Failure(ExitCode::kUsage, "usage",
                      "crl needs either --revoke SERIAL... or --revoke-file FILE");
      }
      hsm::CrlRequest request;
      request.ca_cert_path = ca_cert;
      request.default_reason = pki::ParseReason(reason);
      request.days = crl_days;
      request.out = out;
      request.number_file = number_file;
      if (!revoke_file.empty()) {
        request.revoke = pki::ParseRevocationList(
            base::ReadFileLimited(revoke_file, 8u << 20, "bad-revoke-file"));
      } else {
        for (const auto& text : revoke) {
          request.revoke.push_back({pki::ParseSerial(text), std::nullopt});
        }
      }
      hsm::CrlSummary summary = hsm::IssueCrl(access, request, now);
      std::fprintf(stderr,
                   "etcd-hsm: wrote %s: CRL number %llu, %zu entries (%zu new), next update %s\n",
                   out.c_str(), static_cast<unsigned long long>(summary.number), summary.entries,
                   summary.added, base::FormatRfc3339(summary.next_update).c_str());
    } else if (list->parsed()) {
      hsm::Module m(module);
      if (token.empty() && serial.empty()) {
        std::printf("%-32s %-18s %-12s %s\n", "TOKEN", "SERIAL", "USER PIN", "MANUFACTURER/MODEL");
        for (const auto& t : m.Tokens()) {
          if (!t.initialized) continue;
          std::string state = t.user_pin_locked ? "locked" : t.user_pin_final_try ? "final-try"
                              : t.user_pin_initialized ? "set" : "not set";
          std::printf("%-32s %-18s %-12s %s / %s\n", t.label.c_str(), t.serial.c_str(),
                      state.c_str(), t.manufacturer.c_str(), t.model.c_str());
        }
        return 0;
      }
      hsm::TokenSelector selector;
      if (!token.empty()) selector.label = token;
      if (!serial.empty()) selector.serial = serial;
      hsm::Session session(m, selector, false);
      if (!pin.file.empty() || !pin.env_name.empty()) {
        std::string user_pin = hsm::ReadPin(pin);
        session.Login(user_pin);
        base::Scrub(user_pin);
      }
      std::printf("%-12s %-20s %-34s %-10s %-9s %-11s %-6s %s\n", "CLASS", "LABEL", "ID", "TYPE",
                  "SENSITIVE", "EXTRACTABLE", "SIGN", "NEVER-EXTRACTABLE");
      for (const auto& o : session.Objects()) {
        std::printf("%-12s %-20s %-34s %-10s %-9s %-11s %-6s %s\n", o.object_class.c_str(),
                    o.label.c_str(), HexId(o.id).c_str(), o.key_type.c_str(),
                    Flag(o.attributes.sensitive).c_str(), Flag(o.attributes.extractable).c_str(),
                    Flag(o.attributes.sign).c_str(), Flag(o.attributes.never_extractable).c_str());
      }
    } else if (check->parsed()) {
      bool all = true;
      for (const auto& r : hsm::CheckCaKey(access, ca_cert, now, check_chain, check_roots)) {
        std::printf("%-4s %-24s %s\n", r.ok ? "ok" : "FAIL", r.name.c_str(), r.detail.c_str());
        all = all && r.ok;
      }
      if (!all) {
        throw Failure(ExitCode::kDataErr, "check-failed", "at least one check failed (see above)");
      }
    }
    std::fflush(stdout);
    return 0;
  });
}
