// SPDX-License-Identifier: Apache-2.0
#include "base/name_pattern.h"

#include <re2/re2.h>

#include <map>
#include <mutex>

#include "base/failure.h"

namespace base {

NamePattern::NamePattern(const std::string& pattern) {
  RE2::Options options;
  options.set_log_errors(false);
  re_ = std::make_unique<RE2>(pattern, options);
  if (!re_->ok()) {
    throw Failure(ExitCode::kConfig, "bad-config",
                  "name_pattern '" + pattern + "' is not a valid regular expression: " + re_->error());
  }
}

NamePattern::~NamePattern() = default;
NamePattern::NamePattern(NamePattern&&) noexcept = default;
NamePattern& NamePattern::operator=(NamePattern&&) noexcept = default;

bool NamePattern::Matches(std::string_view name) const { return RE2::FullMatch(name, *re_); }

const NamePattern& CompiledNamePattern(const std::string& pattern) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<const NamePattern>, std::less<>> compiled;
  std::lock_guard lock(mu);
  auto it = compiled.find(pattern);
  if (it == compiled.end()) it = compiled.emplace(pattern, std::make_unique<const NamePattern>(pattern)).first;
  return *it->second;
}

}  // namespace base
