// SPDX-License-Identifier: Apache-2.0
#include "base/flags.h"

#include <CLI/CLI.hpp>
#include <cstdio>

#include "base/failure.h"

namespace base {

Flag& Flag::Required() {
  option_->required();
  return *this;
}

Flag& Flag::ShowDefault() {
  option_->capture_default_str();
  return *this;
}

Flag& Flag::Range(int low, int high) {
  option_->check(CLI::Range(low, high));
  return *this;
}

Flag& Flag::Range(double low, double high) {
  option_->check(CLI::Range(low, high));
  return *this;
}

Flag& Flag::OneOf(std::vector<std::string> values) {
  option_->check(CLI::IsMember(std::move(values)));
  return *this;
}

Flag& Flag::Help(const std::string& help) {
  option_->description(help);
  return *this;
}

Flag& Flag::Hidden() {
  option_->group("");
  return *this;
}

Flag Flags::Option(const std::string& name, std::string& into, const std::string& help) {
  return Flag(command_->add_option(name, into, help));
}

Flag Flags::Option(const std::string& name, std::vector<std::string>& into,
                   const std::string& help) {
  return Flag(command_->add_option(name, into, help));
}

Flag Flags::Option(const std::string& name, int& into, const std::string& help) {
  return Flag(command_->add_option(name, into, help));
}

Flag Flags::Option(const std::string& name, long& into, const std::string& help) {
  return Flag(command_->add_option(name, into, help));
}

Flag Flags::Option(const std::string& name, unsigned& into, const std::string& help) {
  return Flag(command_->add_option(name, into, help));
}

Flag Flags::Option(const std::string& name, double& into, const std::string& help) {
  return Flag(command_->add_option(name, into, help));
}

Flag Flags::Switch(const std::string& name, bool& into, const std::string& help) {
  return Flag(command_->add_flag(name, into, help));
}

Flag Flags::Find(const std::string& name) {
  return Flag(command_->get_option(name));
}

Flags Flags::Subcommand(const std::string& name, const std::string& help, bool& chosen) {
  CLI::App* sub = command_->add_subcommand(name, help);
  sub->callback([&chosen] { chosen = true; });
  return Flags(*sub);
}

void Flags::RequireSubcommand() {
  command_->require_subcommand(1);
}

int ParseCommandLine(const std::string& description, int argc, char** argv,
                     const std::function<void(Flags&)>& declare) {
  CLI::App app{description};
  Flags flags(app);
  declare(flags);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "%s: usage: %s\n", argc > 0 ? argv[0] : "", e.what());
    return static_cast<int>(ExitCode::kUsage);
  }
  return -1;
}

}  // namespace base
