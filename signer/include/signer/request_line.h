// The client's request, from SSH_ORIGINAL_COMMAND (or argv when run locally). It is attacker
// input: parsed strictly here and nowhere else, never handed to a shell.
//
// Grammar (single spaces or tabs between words, at most 256 bytes, printable ASCII only):
//   ""                        -> sign
//   "sign"                    -> sign
//   "sign --lifetime DUR"     -> sign with a requested lifetime (also --lifetime=DUR)
//   "ca" | "info"             -> those verbs, no arguments
// Anything else is Failure(kUsage, "unknown-verb" | "bad-request").
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/duration.h"

namespace signer {

enum class Verb { kSign, kCa, kInfo };

struct RequestLine {
  Verb verb = Verb::kSign;
  std::optional<base::Seconds> lifetime;  // sign only
};

RequestLine ParseRequestLine(std::string_view text);

std::string VerbName(Verb verb);

}  // namespace signer
