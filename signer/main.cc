// SPDX-License-Identifier: Apache-2.0
// etcd-signer: the SSH forced command that issues etcd client certificates from a PKCS#11 CA key.
#include <CLI/CLI.hpp>
#include <deque>
#include <functional>
#include <optional>
#include <vector>

#include "base/duration.h"
#include "base/failure.h"
#include "base/program.h"
#include "pki/openssl.h"
#include "signer/config.h"
#include "signer/service.h"

namespace {
constexpr const char* kDescription =
    "etcd-signer — issue short-lived etcd certificates (masters' client certificates, etcd members'\n"
    "server and peer certificates), signed by a CA key in a PKCS#11 token.\n"
    "\n"
    "Run by sshd as a forced command:\n"
    "  restrict,command=\"etcd-signer --config /etc/etcd-signer/signer.toml --identity kubemaster-3 sign\" ssh-ed25519 AAAA...\n"
    "The client's request comes from SSH_ORIGINAL_COMMAND: 'sign [--lifetime DUR] [--profile P]' (CSR as\n"
    "base64 on stdin, PEM certificate on stdout; P is etcd-client (default), or etcd-server/etcd-peer for a\n"
    "[members.NAME] of signer.toml), 'sign --format k8s' (a certificates.k8s.io/v1\n"
    "CertificateSigningRequest in, the object with status out), 'check [--lifetime DUR] [--profile P]'\n"
    "(what sign would decide for that CSR, without signing: one JSON line or sign's refusal), 'ca'\n"
    "(CA bundle), 'info' (one JSON line) or 'crl' (the governance document's revocations as a PEM\n"
    "CRL signed by this host's CA key, then its chain). Run locally, the request is the trailing words: etcd-signer --config signer.toml sign < csr.b64\n"
    "\n"
    "Exit codes: 0 issued, 64 usage, 65 bad input, 69 token/CA unavailable, 70 internal,\n"
    "75 temporary (retry), 77 refused by policy, 78 configuration. On failure stdout is empty and\n"
    "stderr has one line: 'etcd-signer: <reason-code>: <sentence>'. See docs/protocol.md.";
}  // namespace

int main(int argc, char** argv) {
  pki::LeaveOpenSslCleanupToExit();
  CLI::App app{kDescription, "etcd-signer"};
  app.set_version_flag("--version", ETCD_SIGNER_VERSION);
  app.allow_extras();  // the request words (sign/ca/info, --lifetime) are collected, not parsed
  // The operator's argv: a repeated flag takes its last value, as in sshd_config-style tools.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);

  std::string config_path;
  app.add_option("--config", config_path, "TOML configuration file (flags win over it)");

  // Operator flags: collected as text, applied over the config file after it is read.
  struct Flag {
    std::string value;
    CLI::Option* option = nullptr;
  };
  std::deque<Flag> storage;  // stable addresses: CLI11 writes into them
  std::vector<std::pair<Flag*, std::function<void(signer::SignerConfig&, const std::string&)>>> flags;
  auto add = [&](const char* name, const char* help, auto apply) {
    Flag* flag = &storage.emplace_back();
    flag->option = app.add_option(name, flag->value, help);
    flags.emplace_back(flag, apply);
  };
  using C = signer::SignerConfig;
  auto duration = [](base::Seconds C::*field) {
    return [field](C& c, const std::string& v) {
      try {
        c.*field = base::ParseDuration(v);
      } catch (const base::Failure& f) {
        throw base::Failure(base::ExitCode::kConfig, "bad-config", f.what());
      }
    };
  };
  add("--module", "PKCS#11 module path", [](C& c, const std::string& v) { c.module = v; });
  add("--key", "PKCS#11 URI of the CA key", [](C& c, const std::string& v) { c.key_uri = v; });
  add("--pin-file", "File with the token user PIN (0400)", [](C& c, const std::string& v) { c.pin.file = v; });
  add("--pin-env", "Name of an environment variable holding the PIN",
      [](C& c, const std::string& v) { c.pin.env_name = v; });
  add("--ca-cert", "CA certificate of the token key (PEM)", [](C& c, const std::string& v) { c.ca_cert = v; });
  add("--ca-bundle", "CA bundle served by 'ca' (default: --ca-cert)",
      [](C& c, const std::string& v) { c.ca_bundle = v; });
  add("--ca-chain", "The signing certificate and the intermediates above it (not the root), sent after each leaf",
      [](C& c, const std::string& v) { c.ca_chain = v; });
  add("--identity", "Bind this SSH key to one name: the CN must equal it",
      [](C& c, const std::string& v) { c.identity = signer::Identity(v); });
  add("--name-pattern", "Regular expression a CN must match in full",
      [](C& c, const std::string& v) { c.name_pattern = v; });
  add("--signer-name", "Kubernetes signerName that 'sign --format k8s' objects must name",
      [](C& c, const std::string& v) { c.signer_name = v; });
  add("--lifetime-default", "Lifetime when the client asks none (default 24h)", duration(&C::lifetime_default));
  add("--lifetime-min", "Shortest lifetime granted (default 10m)", duration(&C::lifetime_min));
  add("--lifetime-max", "Longest lifetime; longer requests are clamped (default 7d)", duration(&C::lifetime_max));
  add("--backdate", "notBefore = now - this, for clock skew (default 5m)", duration(&C::backdate));
  add("--audit-log", "Append JSON audit records to this file", [](C& c, const std::string& v) { c.audit_log = v; });
  add("--lock-file", "Private lock file serialising token use (default /var/lib/etcd-signer/token.lock)",
      [](C& c, const std::string& v) { c.lock_file = v; });
  add("--deadline", "Whole-request deadline (default 10s)", duration(&C::deadline));
  add("--input-timeout", "Time allowed to receive the CSR (default 5s)", duration(&C::input_timeout));
  bool no_syslog = false;
  app.add_flag("--no-syslog", no_syslog, "Do not send audit records to syslog");

  signer::SignerConfig config;
  std::optional<base::Failure> config_error;
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // argv is written by the operator (the forced command), never by the client: a bad flag is
    // a configuration error, reported and audited like one.
    config_error = base::Failure(base::ExitCode::kConfig, "bad-config", e.what());
  }
  try {
    if (!config_path.empty()) signer::LoadConfigFile(config_path, config);
    for (auto& [flag, apply] : flags) {
      if (flag->option->count() > 0) apply(config, flag->value);
    }
    if (no_syslog) config.syslog = false;
  } catch (const base::Failure& f) {
    config_error = f;
  }
  std::string words;
  for (const auto& w : app.remaining()) words += (words.empty() ? "" : " ") + w;
  return signer::Serve(config, signer::InvocationFromEnvironment(words), signer::Environment{},
                       config_error);
}
