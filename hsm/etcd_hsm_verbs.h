// SPDX-License-Identifier: Apache-2.0
// The verbs of etcd-hsm, one family a file: the token (init-token, keygen, list), the CA
// certificates (ca create, ca csr, ca sign-intermediate, ca bundle, check) and the CRL (crl). Each
// Define function declares the verb's flags on its (sub)command and returns the function that runs
// it once the command line is parsed; etcd_hsm_main.cc's table says which verb is which command.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "base/flags.h"
#include "hsm/pin.h"

namespace etcd_hsm {

// What every verb runs with: the time it acts as of (taken once the deadline runs).
struct Context {
  std::chrono::system_clock::time_point now;
};

using VerbRun = std::function<int(const Context&)>;
using DefineVerb = VerbRun (*)(base::Flags& cmd);

// --pin-file / --pin-env: the user PIN, never in argv.
void AddPinOptions(base::Flags& cmd, hsm::PinSource& pin);
// Writes `text` to stdout, or to the new file `out` (never over an existing one).
void Emit(const std::string& text, const std::string& out);

// etcd_hsm_token.cc
VerbRun DefineInitToken(base::Flags& cmd);
VerbRun DefineKeygen(base::Flags& cmd);
VerbRun DefineList(base::Flags& cmd);

// etcd_hsm_ca.cc
VerbRun DefineCaCreate(base::Flags& cmd);
VerbRun DefineCaCsr(base::Flags& cmd);
VerbRun DefineCaSignIntermediate(base::Flags& cmd);
VerbRun DefineCaBundle(base::Flags& cmd);
VerbRun DefineCheck(base::Flags& cmd);

// etcd_hsm_crl.cc
VerbRun DefineCrl(base::Flags& cmd);

}  // namespace etcd_hsm
