// SPDX-License-Identifier: Apache-2.0
// A regular expression that a whole name must match, evaluated in linear time (RE2): the pattern
// comes from an operator, but the names it is matched against come from attackers, and a
// backtracking engine (std::regex) can spend seconds on `^kubemaster-([a-z0-9]+-?)+$` against
// "kubemaster-aaaa...!".
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace re2 {
class RE2;
}

namespace base {

class NamePattern {
 public:
  // Throws Failure(kConfig, "bad-config") when `pattern` is not a valid RE2 expression (RE2 has no
  // backreferences or lookaround).
  explicit NamePattern(const std::string& pattern);
  ~NamePattern();
  NamePattern(NamePattern&&) noexcept;
  NamePattern& operator=(NamePattern&&) noexcept;

  // True when all of `name` matches (anchors in the pattern are allowed, not required).
  bool Matches(std::string_view name) const;

 private:
  std::unique_ptr<re2::RE2> re_;
};

// The pattern compiled once per process and kept: the signer validates its configuration and then
// matches the request's name with the same pattern, and one RE2 compilation costs about a quarter
// of a millisecond of a request (#30). Throws like the constructor (an invalid pattern is not
// kept). Thread-safe; the reference stays valid until the process ends.
const NamePattern& CompiledNamePattern(const std::string& pattern);

}  // namespace base
