// SPDX-License-Identifier: Apache-2.0
#include "base/name_pattern.h"

#include <re2/re2.h>

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

}  // namespace base
