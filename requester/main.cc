// SPDX-License-Identifier: Apache-2.0
// etcd-requester: keeps this master's etcd client certificate valid. A table of verbs, each a small
// function over the library (requester.h); the flags every verb shares are Flags.
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <deque>
#include <functional>
#include <memory>

#include "base/deadline.h"
#include "base/failure.h"
#include "base/program.h"
#include "base/text.h"
#include "requester/certmonger.h"
#include "requester/config.h"
#include "requester/forward.h"
#include "requester/requester.h"
#include "requester/key_store.h"
#include "requester/token_agent.h"

namespace {

using requester::RequesterConfig;

constexpr const char* kDescription =
    "etcd-requester — obtain and renew this master's etcd client certificate from etcd-signer over SSH.\n"
    "The private key stays here: in a PKCS#11 token (TPM via tpm2-pkcs11, SoftHSM) or a 0600 key file.\n"
    "Exit codes (sysexits): 0 ok, 64 usage, 65 bad answer/verification, 69 signer or token unavailable,\n"
    "73/74 cannot store, 75 temporary, 77 refused (policy, host key, SSH auth), 78 configuration.\n"
    "A signer refusal is shown verbatim and its exit code passed on.";

// Flags shared by every verb; applied over the --config file (flags win).
struct Flags {
  std::string config_path;
  std::deque<std::pair<CLI::Option*, std::function<void(RequesterConfig&)>>> apply;
  std::deque<std::string> text;
  std::deque<std::vector<std::string>> lists;
  bool accept_new = false;
  bool attestation = false;

  void Add(CLI::App* cmd) {
    cmd->add_option("--config", config_path, "TOML file with the same keys (flags win)");
    auto str = [&](const char* name, const char* help, std::string RequesterConfig::*field) {
      std::string& v = text.emplace_back();
      apply.emplace_back(cmd->add_option(name, v, help), [&v, field](RequesterConfig& c) { c.*field = v; });
    };
    auto dur = [&](const char* name, const char* help, base::Seconds RequesterConfig::*field) {
      std::string& v = text.emplace_back();
      apply.emplace_back(cmd->add_option(name, v, help), [&v, field](RequesterConfig& c) {
        try {
          c.*field = base::ParseDuration(v);
        } catch (const base::Failure& f) {
          throw base::Failure(base::ExitCode::kUsage, "bad-duration", f.what());
        }
      });
    };
    str("--name", "This master's name, kubemaster-<id>, or an etcd member's (the certificate's CN)",
        &RequesterConfig::name);
    {
      std::string& v = text.emplace_back();
      apply.emplace_back(cmd->add_option("--profile", v,
                                         "The certificate kept: etcd-client (default), etcd-server or etcd-peer"),
                         [&v](RequesterConfig& c) { c.profile = requester::ParseProfileSetting(v); });
    }
    {
      auto& servers = lists.emplace_back();
      apply.emplace_back(cmd->add_option("--server", servers,
                                         "A signer: USER@HOST[:PORT]; repeat for failover across signer hosts")
                             ->allow_extra_args(false),
                         [&servers](RequesterConfig& c) { c.servers = servers; });
    }
    str("--ssh-key", "SSH client key: a file, or a PKCS#11 URI (the key stays in the token; --module/--pin-* open it) "
        "(default: ssh-agent)", &RequesterConfig::ssh_key);
    str("--known-hosts", "known_hosts file with the signer's host key", &RequesterConfig::known_hosts);
    str("--key-file", "Private key file (PKCS#8 PEM, 0600), created if missing", &RequesterConfig::key_file);
    str("--key", "PKCS#11 URI of the private key, created in the token if missing", &RequesterConfig::key_uri);
    str("--tpm-key", "A key made and kept in the TPM (tpm2-tss ESAPI; the one that can be attested), created if "
        "missing; --pin-* give its authValue", &RequesterConfig::tpm_key);
    str("--tcti", "How to reach that TPM (default device:/dev/tpmrm0)", &RequesterConfig::tcti);
    str("--module", "PKCS#11 module path (SoftHSM, tpm2-pkcs11)", &RequesterConfig::module);
    {
      std::string& v = text.emplace_back();
      apply.emplace_back(cmd->add_option("--pin-file", v, "File holding the token PIN (0400)"),
                         [&v](RequesterConfig& c) { c.pin.file = v; });
      std::string& e = text.emplace_back();
      apply.emplace_back(cmd->add_option("--pin-env", e, "Name of an environment variable holding the PIN"),
                         [&e](RequesterConfig& c) { c.pin.env_name = e; });
    }
    str("--cert", "Where the certificate is stored (atomically replaced)", &RequesterConfig::cert);
    str("--ca-bundle", "The etcd root bundle the operator installed; answers are verified against it (required)",
        &RequesterConfig::ca_bundle);
    {
      std::string& v = text.emplace_back();
      apply.emplace_back(cmd->add_option("--ca-sha256", v,
                                         "The root's SHA-256 fingerprint: a missing --ca-bundle is fetched once and "
                                         "only this root stored"),
                         [&v](RequesterConfig& c) { c.ca_sha256 = requester::CaSha256(v); });
    }
    str("--crl-file", "etcd's --client-crl-file: diagnose checks the certificate's serials against it",
        &RequesterConfig::crl_file);
    str("--governance-cert", "The governance key's certificate: crl accepts only a CRL that lists exactly the signed "
        "document's serials under its version", &RequesterConfig::governance_cert);
    dur("--lifetime", "Requested lifetime (default: the signer's)", &RequesterConfig::lifetime);
    dur("--skew-tolerance", "Clock skew tolerated when checking validity (default 5m)", &RequesterConfig::skew_tolerance);
    dur("--connect-timeout", "SSH connect timeout (default 10s)", &RequesterConfig::connect_timeout);
    dur("--io-timeout", "Time allowed for the signer's answer (default 30s)", &RequesterConfig::io_timeout);
    str("--state-file", "Counters for status/monitoring (default CERT.state.json)", &RequesterConfig::state_file);
    {
      auto& hook = lists.emplace_back();
      apply.emplace_back(cmd->add_option("--post-renew-hook", hook, "Program (and args) run after a renewal, no shell")
                             ->expected(1, 64)->allow_extra_args(false),
                         [&hook](RequesterConfig& c) { c.post_renew_hook = hook; });
    }
    cmd->add_flag("--attestation", attestation,
                  "Enroll this TPM with each signer and send TPM2_Certify evidence with every CSR (needs --tpm-key)");
    cmd->add_flag("--accept-new-host-key", accept_new,
                  "Trust an unknown signer host key once and record it (never a changed one)");
  }

  RequesterConfig Load() const {
    RequesterConfig c;
    if (!config_path.empty()) requester::LoadConfigFile(config_path, c);
    for (const auto& [option, fn] : apply) {
      if (option->count() > 0) fn(c);
    }
    if (accept_new) c.accept_new_host_key = true;
    if (attestation) c.attestation = true;
    return c;
  }
};

using VerbRun = std::function<int()>;
using DefineVerb = VerbRun (*)(CLI::App& cmd);

// One-shot verbs: an overall deadline so a wedged token or signer cannot hang a cron job.
base::Deadline OneShotDeadline(const RequesterConfig& config) {
  return base::Deadline(config.connect_timeout + config.io_timeout + std::chrono::seconds(60), [] {
    std::fputs("etcd-requester: deadline: the token or the signer did not answer in time\n", stderr);
    return true;
  });
}

// request and ca talk to a signer without the whole configuration: what they need is checked.
void RequireSigner(const RequesterConfig& config) {
  if (config.servers.empty() || config.known_hosts.empty()) requester::ValidateConfig(config, true);
}

// A verb that runs once over the shared flags, under the one-shot deadline.
VerbRun OneShotVerb(CLI::App& cmd, std::function<int(const RequesterConfig&)> body) {
  auto flags = std::make_shared<Flags>();
  flags->Add(&cmd);
  return [flags, body] {
    RequesterConfig config = flags->Load();
    base::Deadline deadline = OneShotDeadline(config);
    return body(config);
  };
}

VerbRun DefineRequest(CLI::App& cmd) {
  return OneShotVerb(cmd, [](const RequesterConfig& config) {
    requester::ValidateConfig(config, true);
    std::printf("%s\n", requester::Request(config, requester::RequesterEnv{}).message.c_str());
    return 0;
  });
}

VerbRun DefineCrl(CLI::App& cmd) {
  return OneShotVerb(cmd, [](const RequesterConfig& config) {
    RequireSigner(config);
    std::printf("%s\n", requester::FetchCrl(config, requester::RequesterEnv{}).c_str());
    return 0;
  });
}

// The forced command of the operators' fleet key on an etcd member (#29): SSH_ORIGINAL_COMMAND
// `crl` fetches the fleet's CRL (as `crl`), `restart-etcd` runs --restart-command (no shell), so
// that `etcd-signerctl fleet deny-master` can drop established connections member by member.
VerbRun DefineMemberAgent(CLI::App& cmd) {
  auto restart = std::make_shared<std::vector<std::string>>();
  cmd.add_option("--restart-command", *restart, "Program and arguments that restart this member's etcd (no shell)")
      ->expected(1, 64)
      ->allow_extra_args(false);
  return OneShotVerb(cmd, [restart](const RequesterConfig& config) {
    const char* original = std::getenv("SSH_ORIGINAL_COMMAND");
    std::string request = original != nullptr ? original : "";
    if (request == "crl") {
      RequireSigner(config);
      std::printf("%s\n", requester::FetchCrl(config, requester::RequesterEnv{}).c_str());
      return 0;
    }
    if (request == "restart-etcd") {
      if (restart->empty()) {
        throw base::Failure(base::ExitCode::kUnavailable, "no-restart-command",
                            "this member's agent has no --restart-command: restart etcd by hand");
      }
      if (!requester::RunOperatorProgram(*restart, requester::RequesterEnv{}, "restart command")) {
        throw base::Failure(base::ExitCode::kUnavailable, "restart-failed", "the restart command failed (see above)");
      }
      std::printf("restarted etcd: %s\n", (*restart)[0].c_str());
      return 0;
    }
    throw base::Failure(base::ExitCode::kUsage, "unknown-verb",
                        "unknown request '" + base::Printable(request, 32) + "' (crl or restart-etcd)");
  });
}

VerbRun DefineRenew(CLI::App& cmd) {
  auto force = std::make_shared<bool>(false);
  cmd.add_flag("--force", *force, "Renew even if not due");
  return OneShotVerb(cmd, [force](const RequesterConfig& config) {
    requester::ValidateConfig(config, true);
    std::printf("%s\n", requester::Renew(config, requester::RequesterEnv{}, *force).message.c_str());
    return 0;
  });
}

VerbRun DefineRun(CLI::App& cmd) {
  auto flags = std::make_shared<Flags>();
  auto prometheus = std::make_shared<std::string>();
  cmd.add_option("--prometheus", *prometheus, "Write node_exporter textfile metrics to FILE after each attempt");
  flags->Add(&cmd);
  return [flags, prometheus] {
    // SIGHUP reloads: the same flags over the configuration file as it is then.
    auto load = [&] {
      RequesterConfig config = flags->Load();
      if (!prometheus->empty()) config.prometheus_file = *prometheus;
      requester::ValidateConfig(config, true);
      return config;
    };
    return requester::RunDaemon(load(), load, requester::RequesterEnv{});
  };
}

VerbRun DefineStatus(CLI::App& cmd) {
  auto flags = std::make_shared<Flags>();
  auto json = std::make_shared<bool>(false);
  auto prometheus = std::make_shared<std::string>();
  auto config_dir = std::make_shared<std::string>();
  cmd.add_flag("--json", *json, "One JSON object (with --config-dir: an array of them)");
  cmd.add_option("--prometheus", *prometheus, "Write node_exporter textfile metrics to FILE");
  cmd.add_option("--config-dir", *config_dir,
                 "Every certificate of this host: each *.toml in DIR (e.g. /etc/etcd-requester: server, peer, client)");
  flags->Add(&cmd);
  return [flags, json, prometheus, config_dir] {
    auto format = *json ? requester::StatusFormat::kJson : requester::StatusFormat::kHuman;
    if (!config_dir->empty()) {
      return requester::ShowStatus(requester::LoadConfigDirectory(*config_dir), requester::RequesterEnv{}, format,
                                   *prometheus);
    }
    RequesterConfig config = flags->Load();
    if (!prometheus->empty()) config.prometheus_file = *prometheus;
    requester::ValidateConfig(config, false);
    // Only an explicit --prometheus FILE is written: the configuration's prometheus_file is the
    // daemon's (#15).
    return requester::ShowStatus(config, requester::RequesterEnv{}, format, *prometheus);
  };
}

VerbRun DefineDiagnose(CLI::App& cmd) {
  auto config_dir = std::make_shared<std::string>();
  cmd.add_option("--config-dir", *config_dir, "Check every certificate of this host: each *.toml in DIR, in turn");
  return OneShotVerb(cmd, [config_dir](const RequesterConfig& flag_config) {
    std::vector<RequesterConfig> configs =
        config_dir->empty() ? std::vector<RequesterConfig>{flag_config} : requester::LoadConfigDirectory(*config_dir);
    bool all_passed = true;
    for (std::size_t i = 0; i < configs.size(); ++i) {
      if (configs.size() > 1) {
        std::printf("%s== %s (%s)\n", i ? "\n" : "", configs[i].cert.c_str(), pki::ProfileName(configs[i].profile));
        std::fflush(stdout);
      }
      RequireSigner(configs[i]);
      all_passed = requester::Diagnose(configs[i], requester::RequesterEnv{}) && all_passed;
    }
    if (!all_passed) {
      throw base::Failure(base::ExitCode::kUnavailable, "diagnose-failed", "at least one check failed (see above)");
    }
    return 0;
  });
}

VerbRun DefineCa(CLI::App& cmd) {
  auto accept = std::make_shared<std::string>();
  cmd.add_option("--accept-sha256", *accept,
                 "Install the signer's root of this SHA-256 fingerprint in --ca-bundle (a root rotation, checked "
                 "out of band)");
  return OneShotVerb(cmd, [accept](const RequesterConfig& config) {
    RequireSigner(config);
    requester::FetchCa(config, requester::RequesterEnv{}, accept->empty() ? "" : requester::CaSha256(*accept));
    return 0;
  });
}

// forward's own flags, applied over the configuration like the shared ones (flags win).
struct ForwardFlags {
  std::string listen, etcd_ca, group, mode;
  std::vector<std::string> endpoints;
  int max_connections = 0;
  CLI::Option *listen_opt, *endpoint_opt, *ca_opt, *group_opt, *mode_opt, *max_opt;

  void Add(CLI::App& cmd) {
    listen_opt = cmd.add_option("--listen", listen, "unix:PATH (mode 0660) or 127.0.0.1:PORT / [::1]:PORT; nothing else");
    endpoint_opt = cmd.add_option("--endpoint", endpoints, "etcd as https://HOST:PORT; repeat for failover")
                       ->allow_extra_args(false);
    ca_opt = cmd.add_option("--etcd-ca", etcd_ca, "etcd's server CA (PEM) to verify etcd against");
    group_opt = cmd.add_option("--listen-group", group, "Group of the unix socket (its members may connect)");
    mode_opt = cmd.add_option("--listen-mode", mode, "Mode of the unix socket (default 0660)");
    max_opt = cmd.add_option("--max-connections", max_connections, "Connections served at once (default 256)");
  }

  void Apply(RequesterConfig& c) const {
    if (listen_opt->count() > 0) c.forward.listen = listen;
    if (endpoint_opt->count() > 0) c.forward.endpoints = endpoints;
    if (ca_opt->count() > 0) c.forward.etcd_ca = etcd_ca;
    if (group_opt->count() > 0) c.forward.listen_group = group;
    if (mode_opt->count() > 0) {
      try {
        c.forward.listen_mode = requester::ParseMode(mode);
      } catch (const base::Failure& f) {
        throw base::Failure(base::ExitCode::kUsage, "usage", std::string("--listen-mode: ") + f.what());
      }
    }
    if (max_opt->count() > 0) c.forward.max_connections = max_connections;
  }
};

VerbRun DefineForward(CLI::App& cmd) {
  auto flags = std::make_shared<Flags>();
  auto forward = std::make_shared<ForwardFlags>();
  forward->Add(cmd);
  flags->Add(&cmd);
  return [flags, forward] {
    RequesterConfig config = flags->Load();
    forward->Apply(config);
    return requester::RunForwarder(config, requester::RequesterEnv{});
  };
}

struct SshKeyFlags {
  std::string config, uri, module, pin_file, pin_env, comment;
};

int SshKey(const SshKeyFlags& sk) {
  RequesterConfig c;
  if (!sk.config.empty()) requester::LoadConfigFile(sk.config, c);
  if (!sk.uri.empty()) c.ssh_key = sk.uri;
  if (!sk.module.empty()) c.module = sk.module;
  if (!sk.pin_file.empty()) c.pin = {sk.pin_file, ""};
  if (!sk.pin_env.empty()) c.pin = {"", sk.pin_env};
  if (!requester::IsTokenKey(c.ssh_key)) {
    throw base::Failure(base::ExitCode::kUsage, "usage",
                        "--key must be a PKCS#11 URI (pkcs11:token=...;object=...); a key file is made with ssh-keygen");
  }
  base::Deadline deadline(std::chrono::seconds(60), [] {
    std::fputs("etcd-requester: deadline: the token did not answer in time\n", stderr);
    return true;
  });
  requester::TokenKeyHandle key(c.ssh_key, c.module, c.pin, /*create=*/true);
  if (key.generated()) std::fprintf(stderr, "etcd-requester: generated a new EC P-256 SSH key in the token\n");
  std::printf("%s\n", requester::AuthorizedKeysLine(key.public_key(), sk.comment).c_str());
  return 0;
}

VerbRun DefineSshKey(CLI::App& cmd) {
  auto sk = std::make_shared<SshKeyFlags>();
  cmd.add_option("--config", sk->config, "TOML file: its ssh_key, module, pin_file/pin_env are used");
  cmd.add_option("--key", sk->uri, "PKCS#11 URI of the SSH key, e.g. pkcs11:token=master;object=ssh-key");
  cmd.add_option("--module", sk->module, "PKCS#11 module path (SoftHSM, tpm2-pkcs11)");
  cmd.add_option("--pin-file", sk->pin_file, "File holding the token PIN (0400)");
  cmd.add_option("--pin-env", sk->pin_env, "Name of an environment variable holding the PIN");
  cmd.add_option("--comment", sk->comment, "Comment at the end of the line (e.g. the master's name)");
  return [sk] { return SshKey(*sk); };
}

VerbRun DefineCertmonger(CLI::App& cmd) {
  auto config = std::make_shared<std::string>();
  cmd.add_option("--config", *config,
                 "TOML as for the other verbs: server, ssh_key, known_hosts, ca_bundle (required), timeouts, "
                 "lifetime; the key settings are not used")
      ->required();
  return [config] {
    return requester::RunCertmongerHelper(*config, {.getenv = ::getenv, .out = stdout}, requester::RequesterEnv{});
  };
}

struct Command {
  const char* name;
  const char* help;
  DefineVerb define;
};

const Command kCommands[] = {
    {"request", "Create the key if missing, get a certificate, verify and store it", DefineRequest},
    {"renew", "Renew if due (70-90% of the lifetime passed, or missing/expired)", DefineRenew},
    {"run", "Daemon: renew forever with jitter and backoff (SIGTERM stops, SIGHUP reloads)", DefineRun},
    {"status", "Show the certificate, its expiry and the last attempts", DefineStatus},
    {"diagnose", "Run the runbook's checks: network, SSH, name, signer, clock, key, certificate", DefineDiagnose},
    {"crl",
     "Fetch the fleet's CRL from a signer (crl verb), verify it against the pinned trust and replace crl_file "
     "(etcd's --client-crl-file) when its cRLNumber is higher",
     DefineCrl},
    {"member-agent",
     "Forced command of the operators' fleet key on an etcd member: SSH_ORIGINAL_COMMAND crl | restart-etcd",
     DefineMemberAgent},
    {"ca", "Fetch the signer's CA bundle: print it, or compare it with --ca-bundle (replaced only with --accept-sha256)",
     DefineCa},
    {"forward",
     "Serve etcd to local clients (kube-apiserver, etcdctl) with this master's certificate and the token key: "
     "plaintext on a unix socket or loopback port in, TLS with ALPN h2 to etcd out",
     DefineForward},
    {"ssh-key", "Make the SSH key in the token if missing (never extractable) and print its authorized_keys line",
     DefineSshKey},
    {"certmonger",
     "certmonger's CA helper (getcert add-ca -e '/usr/bin/etcd-requester certmonger --config FILE'): "
     "the operation from CERTMONGER_OPERATION, the CSR from CERTMONGER_CSR; certmonger owns the key",
     DefineCertmonger},
};

struct Verb {
  CLI::App* cli;
  VerbRun run;
};

std::vector<Verb> AddVerbs(CLI::App& app) {
  std::vector<Verb> verbs;
  for (const Command& command : kCommands) {
    CLI::App* cli = app.add_subcommand(command.name, command.help);
    verbs.push_back({cli, command.define(*cli)});
  }
  return verbs;
}

// A refused permission names the account we run as, for every verb (#15): files made by a first
// run as root are not readable by the unit's account.
int RunParsedVerb(const std::vector<Verb>& verbs) {
  try {
    for (const Verb& verb : verbs) {
      if (verb.cli->parsed()) return verb.run();
    }
    throw base::Failure(base::ExitCode::kUsage, "usage", "no verb given");
  } catch (const base::Failure& f) {
    if (auto enriched = requester::WithRunningAs(f)) throw *enriched;
    throw;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{kDescription, "etcd-requester"};
  app.set_version_flag("--version", ETCD_SIGNER_VERSION);
  app.require_subcommand(1);
  std::vector<Verb> verbs = AddVerbs(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : static_cast<int>(base::ExitCode::kUsage);
  }
  return base::RunProgram("etcd-requester", [&] { return RunParsedVerb(verbs); });
}
