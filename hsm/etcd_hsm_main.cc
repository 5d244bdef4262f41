// SPDX-License-Identifier: Apache-2.0
// etcd-hsm: provisions the PKCS#11 token that holds the etcd client CA key. A table of verbs; each
// verb's flags and body live in its family's file (etcd_hsm_verbs.h).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <string_view>
#include <vector>

#include "base/deadline.h"
#include "base/failure.h"
#include "base/files.h"
#include "base/program.h"
#include "etcd_hsm_verbs.h"

namespace etcd_hsm {

void AddPinOptions(base::Flags& cmd, hsm::PinSource& pin) {
  cmd.Option("--pin-file", pin.file, "File holding the user PIN (mode 0400/0600)");
  cmd.Option("--pin-env", pin.env_name, "Name of an environment variable holding the user PIN");
}

void Emit(const std::string& text, const std::string& out) {
  if (out.empty() || out == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return;
  }
  if (::access(out.c_str(), F_OK) == 0) {
    throw base::Failure(base::ExitCode::kCantCreate, "exists", out + " exists; remove it first or choose another --out");
  }
  base::AtomicFileWriter(out, 0644).Write(text);
  std::fprintf(stderr, "etcd-hsm: wrote %s\n", out.c_str());
}

}  // namespace etcd_hsm

namespace {

using namespace etcd_hsm;

constexpr const char* kDescription =
    "etcd-hsm — provision the PKCS#11 token that holds the etcd client CA key.\n"
    "PINs are read from files (0400) or a named environment variable, never from arguments.\n"
    "Exit codes follow sysexits(3): 64 usage, 65 bad data/check failed, 69 token unavailable,\n"
    "73 cannot create, 75 temporary, 78 configuration.";

struct Command {
  const char* group;  // "ca" for `ca create`; nullptr for a verb of its own
  const char* name;
  const char* help;
  DefineVerb define;
};

const std::map<std::string_view, const char*> kGroups = {{"ca", "CA certificate operations"}};

const Command kCommands[] = {
    {nullptr, "init-token", "Initialize a token in the first free slot", DefineInitToken},
    {nullptr, "keygen", "Generate a non-extractable sign-only key pair in a token", DefineKeygen},
    {"ca", "create", "Make a self-signed CA certificate for a token key", DefineCaCreate},
    {"ca", "csr", "Make a CSR for a token key, for an offline root to sign", DefineCaCsr},
    {"ca", "sign-intermediate",
     "The root token signs an intermediate CA certificate for a signer host's CSR (from 'ca csr')",
     DefineCaSignIntermediate},
    {"ca", "bundle", "Concatenate the current CA and still-trusted previous CAs", DefineCaBundle},
    {nullptr, "crl", "Sign a certificate revocation list in the token (for etcd's --client-crl-file)", DefineCrl},
    {nullptr, "list", "List tokens, and with --token the objects in one", DefineList},
    {nullptr, "check", "Check a CA key in a token against its certificate", DefineCheck},
};

struct Verb {
  CLI::App* cli;
  VerbRun run;
};

// The command a verb hangs under: the program, or its group (`ca`), made at its first verb.
CLI::App& ParentOf(CLI::App& app, const Command& command, std::map<std::string_view, CLI::App*>& groups) {
  if (command.group == nullptr) return app;
  CLI::App*& group = groups[command.group];
  if (group == nullptr) {
    group = app.add_subcommand(command.group, kGroups.at(command.group));
    group->require_subcommand(1);
  }
  return *group;
}

std::vector<Verb> AddVerbs(CLI::App& app) {
  std::map<std::string_view, CLI::App*> groups;
  std::vector<Verb> verbs;
  for (const Command& command : kCommands) {
    CLI::App* cli = ParentOf(app, command, groups).add_subcommand(command.name, command.help);
    base::Flags flags(*cli);
    verbs.push_back({cli, command.define(flags)});
  }
  return verbs;
}

// Runs the verb given, under the overall deadline: a wedged token cannot hang us.
int RunParsedVerb(const std::vector<Verb>& verbs, int timeout) {
  base::Deadline deadline(std::chrono::seconds(timeout), [] {
    std::fputs("etcd-hsm: deadline: the token did not answer in time\n", stderr);
    return true;
  });
  Context ctx{std::chrono::system_clock::now()};
  for (const Verb& verb : verbs) {
    if (!verb.cli->parsed()) continue;
    int code = verb.run(ctx);
    std::fflush(stdout);
    return code;
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{kDescription, "etcd-hsm"};
  app.set_version_flag("--version", ETCD_SIGNER_VERSION);
  app.require_subcommand(1);
  int timeout = 120;
  app.add_option("--timeout", timeout, "Overall deadline in seconds (a wedged token cannot hang us)")
      ->capture_default_str();
  std::vector<Verb> verbs = AddVerbs(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : static_cast<int>(base::ExitCode::kUsage);
  }
  return base::RunProgram("etcd-hsm", [&] { return RunParsedVerb(verbs, timeout); });
}
