// SPDX-License-Identifier: Apache-2.0
// The verbs of etcd-hsm, one family a file: the token (init-token, keygen, list), the CA
// certificates (ca create, ca csr, ca sign-intermediate, ca bundle, check) and the CRL (crl). Each
// Define function declares the verb's flags on its (sub)command and returns the function that runs
// it once the command line is parsed; etcd_hsm_main.cc's table says which verb is which command.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <functional>
#include <string>

#include "hsm/pin.h"

namespace etcd_hsm {

// What every verb runs with: the time it acts as of (taken once the deadline runs).
struct Context {
  std::chrono::system_clock::time_point now;
};

using VerbRun = std::function<int(const Context&)>;
using DefineVerb = VerbRun (*)(CLI::App& cmd);

// --pin-file / --pin-env: the user PIN, never in argv.
void AddPinOptions(CLI::App& cmd, hsm::PinSource& pin);
// Writes `text` to stdout, or to the new file `out` (never over an existing one).
void Emit(const std::string& text, const std::string& out);

// etcd_hsm_token.cc
VerbRun DefineInitToken(CLI::App& cmd);
VerbRun DefineKeygen(CLI::App& cmd);
VerbRun DefineList(CLI::App& cmd);

// etcd_hsm_ca.cc
VerbRun DefineCaCreate(CLI::App& cmd);
VerbRun DefineCaCsr(CLI::App& cmd);
VerbRun DefineCaSignIntermediate(CLI::App& cmd);
VerbRun DefineCaBundle(CLI::App& cmd);
VerbRun DefineCheck(CLI::App& cmd);

// etcd_hsm_crl.cc
VerbRun DefineCrl(CLI::App& cmd);

}  // namespace etcd_hsm
