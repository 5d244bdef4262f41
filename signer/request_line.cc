// SPDX-License-Identifier: Apache-2.0
#include "signer/request_line.h"

#include <optional>
#include <vector>

#include "base/failure.h"

namespace signer {
namespace {

[[noreturn]] void Bad(const std::string& reason, const std::string& message) {
  throw base::Failure(base::ExitCode::kUsage, reason, message);
}

bool Allowed(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '=';
}

// The value of `--NAME VALUE` or `--NAME=VALUE` at words[i] (moving i past it), or nullopt when
// words[i] is another word.
std::optional<std::string> OptionValue(const std::vector<std::string>& words, std::size_t& i, const std::string& flag,
                                       const std::string& needs) {
  if (words[i] == flag) {
    if (i + 1 >= words.size()) Bad("bad-request", flag + " needs " + needs);
    return words[++i];
  }
  if (words[i].rfind(flag + "=", 0) == 0) return words[i].substr(flag.size() + 1);
  return std::nullopt;
}

}  // namespace

RequestLine ParseRequestLine(std::string_view text) {
  if (text.size() > 256) Bad("bad-request", "the request is longer than 256 bytes");
  std::vector<std::string> words;
  std::string word;
  for (char c : text) {
    if (c == ' ' || c == '\t') {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
    } else if (Allowed(c)) {
      word.push_back(c);
    } else {
      // Shell metacharacters, quotes, control bytes, non-ASCII: nothing legitimate needs them.
      Bad("bad-request", "the request contains a character that is not allowed (byte " +
                             std::to_string(static_cast<unsigned char>(c)) + ")");
    }
  }
  if (!word.empty()) words.push_back(std::move(word));

  RequestLine request;
  if (words.empty()) return request;  // an empty command means sign
  const std::string& verb = words[0];
  if (verb == "ca" || verb == "info" || verb == "crl" || verb == "enroll" || verb == "activate") {
    if (words.size() != 1) Bad("bad-request", "'" + verb + "' takes no arguments");
    request.verb = verb == "ca"       ? Verb::kCa
                   : verb == "info"   ? Verb::kInfo
                   : verb == "crl"    ? Verb::kCrl
                   : verb == "enroll" ? Verb::kEnroll
                                      : Verb::kActivate;
    return request;
  }
  if (verb != "sign" && verb != "check") {
    Bad("unknown-verb",
        "unknown request '" + verb.substr(0, 32) + "' (expected sign, check, ca, info, crl, enroll or activate)");
  }
  if (verb == "check") request.verb = Verb::kCheck;
  bool format_given = false;
  bool profile_given = false;
  for (std::size_t i = 1; i < words.size(); ++i) {
    if (auto name = OptionValue(words, i, "--profile", "a value (etcd-client, etcd-server, etcd-peer)")) {
      if (profile_given) Bad("bad-request", "--profile given twice");
      std::optional<pki::LeafProfile> profile = pki::ParseProfile(*name);
      if (!profile) {
        Bad("unknown-profile", "unknown profile '" + name->substr(0, 32) + "' (etcd-client, etcd-server or etcd-peer)");
      }
      profile_given = true;
      request.profile = *profile;
      continue;
    }
    if (auto format = OptionValue(words, i, "--format", "a value (k8s)")) {
      if (request.verb == Verb::kCheck) Bad("bad-request", "--format cannot be used with check (a base64 CSR only)");
      if (format_given) Bad("bad-request", "--format given twice");
      if (*format != "k8s") Bad("bad-request", "unknown format '" + format->substr(0, 32) + "' (only k8s)");
      format_given = true;
      request.format = BodyFormat::kK8s;
      continue;
    }
    if (words[i] == "--attested") {
      if (request.attested) Bad("bad-request", "--attested given twice");
      request.attested = true;
      continue;
    }
    std::optional<std::string> value = OptionValue(words, i, "--lifetime", "a duration");
    if (!value) Bad("bad-request", "unknown argument '" + words[i].substr(0, 32) + "' to " + verb);
    if (request.lifetime) Bad("bad-request", "--lifetime given twice");
    try {
      request.lifetime = base::ParseDuration(*value);
    } catch (const base::Failure& f) {
      Bad("bad-lifetime", f.what());
    }
  }
  // A Kubernetes object carries its lifetime (spec.expirationSeconds); two sources that could
  // disagree would leave the client unsure which one was granted.
  if (request.format == BodyFormat::kK8s && request.lifetime) {
    Bad("bad-request", "--lifetime cannot be used with --format k8s (use spec.expirationSeconds)");
  }
  // Evidence rides after the base64 CSR (§8); a Kubernetes object has no place for it.
  if (request.format == BodyFormat::kK8s && request.attested) {
    Bad("bad-request", "--attested cannot be used with --format k8s");
  }
  // A Kubernetes object names its signer, which issues client certificates only.
  if (request.format == BodyFormat::kK8s && request.profile != pki::LeafProfile::kClient) {
    Bad("bad-request", "--profile cannot be used with --format k8s (its signerName issues etcd-client only)");
  }
  return request;
}

std::string VerbName(Verb verb) {
  switch (verb) {
    case Verb::kSign: return "sign";
    case Verb::kCheck: return "check";
    case Verb::kCa: return "ca";
    case Verb::kInfo: return "info";
    case Verb::kCrl: return "crl";
    case Verb::kEnroll: return "enroll";
    case Verb::kActivate: return "activate";
  }
  return "unknown";
}

}  // namespace signer
