// SPDX-License-Identifier: Apache-2.0
// A command's flags as the code that owns them declares them: options, positionals and switches
// bound to its own variables. The programs' main.cc files parse with CLI11 and hand each verb its
// (sub)command as Flags; the verbs and the benchmark programs never include CLI11's header, whose
// every includer compiles about 10 s (20 s under ASan) of CLI11's own code (#30): base/flags.cc is
// the one translation unit that does it for all of them.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace base {

// One declared option; each call returns it again for the next.
class Flag {
 public:
  explicit Flag(CLI::Option* option) : option_(option) {}
  Flag& Required();
  // --help shows the variable's value at declaration as the default.
  Flag& ShowDefault();
  // The value must lie in [low, high] (numbers) or be one of `values` (words).
  Flag& Range(int low, int high);
  Flag& Range(double low, double high);
  Flag& OneOf(std::vector<std::string> values);
  Flag& Help(const std::string& help);
  // Left out of --help (an option between a program and itself).
  Flag& Hidden();

 private:
  CLI::Option* option_;
};

class Flags {
 public:
  explicit Flags(CLI::App& command) : command_(&command) {}

  // `name`: "--long" for an option, a bare word for a positional (a vector takes the rest).
  Flag Option(const std::string& name, std::string& into, const std::string& help);
  Flag Option(const std::string& name, std::vector<std::string>& into, const std::string& help);
  Flag Option(const std::string& name, int& into, const std::string& help);
  Flag Option(const std::string& name, long& into, const std::string& help);
  Flag Option(const std::string& name, unsigned& into, const std::string& help);
  Flag Option(const std::string& name, double& into, const std::string& help);
  Flag Switch(const std::string& name, bool& into, const std::string& help);
  // An option declared earlier (to change its help).
  Flag Find(const std::string& name);
  // A subcommand of this command: `chosen` becomes true when the command line names it.
  Flags Subcommand(const std::string& name, const std::string& help, bool& chosen);
  // The command line must name exactly one subcommand.
  void RequireSubcommand();

 private:
  CLI::App* command_;
};

// A small program's whole command line (the benchmark programs): `declare` declares the flags,
// then argv is parsed. --help prints the usage; returns -1 to go on, or the exit code to exit with
// (0 after --help, 64 with a one-line message on stderr for a usage error).
int ParseCommandLine(const std::string& description, int argc, char** argv,
                     const std::function<void(Flags&)>& declare);

}  // namespace base
