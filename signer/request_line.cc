// SPDX-License-Identifier: Apache-2.0
#include "signer/request_line.h"

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
  if (verb == "ca" || verb == "info") {
    if (words.size() != 1) Bad("bad-request", "'" + verb + "' takes no arguments");
    request.verb = verb == "ca" ? Verb::kCa : Verb::kInfo;
    return request;
  }
  if (verb != "sign") {
    Bad("unknown-verb", "unknown request '" + verb.substr(0, 32) + "' (expected sign, ca or info)");
  }
  bool format_given = false;
  bool profile_given = false;
  for (std::size_t i = 1; i < words.size(); ++i) {
    std::string value;
    if (words[i] == "--profile" || words[i].rfind("--profile=", 0) == 0) {
      std::string name;
      if (words[i] == "--profile") {
        if (i + 1 >= words.size()) Bad("bad-request", "--profile needs a value (etcd-client, etcd-server, etcd-peer)");
        name = words[++i];
      } else {
        name = words[i].substr(10);
      }
      if (profile_given) Bad("bad-request", "--profile given twice");
      std::optional<pki::LeafProfile> profile = pki::ParseProfile(name);
      if (!profile) {
        Bad("unknown-profile", "unknown profile '" + name.substr(0, 32) + "' (etcd-client, etcd-server or etcd-peer)");
      }
      profile_given = true;
      request.profile = *profile;
      continue;
    }
    if (words[i] == "--format" || words[i].rfind("--format=", 0) == 0) {
      std::string format;
      if (words[i] == "--format") {
        if (i + 1 >= words.size()) Bad("bad-request", "--format needs a value (k8s)");
        format = words[++i];
      } else {
        format = words[i].substr(9);
      }
      if (format_given) Bad("bad-request", "--format given twice");
      if (format != "k8s") Bad("bad-request", "unknown format '" + format.substr(0, 32) + "' (only k8s)");
      format_given = true;
      request.format = BodyFormat::kK8s;
      continue;
    }
    if (words[i] == "--lifetime") {
      if (i + 1 >= words.size()) Bad("bad-request", "--lifetime needs a duration");
      value = words[++i];
    } else if (words[i].rfind("--lifetime=", 0) == 0) {
      value = words[i].substr(11);
    } else {
      Bad("bad-request", "unknown argument '" + words[i].substr(0, 32) + "' to sign");
    }
    if (request.lifetime) Bad("bad-request", "--lifetime given twice");
    try {
      request.lifetime = base::ParseDuration(value);
    } catch (const base::Failure& f) {
      Bad("bad-lifetime", f.what());
    }
  }
  // A Kubernetes object carries its lifetime (spec.expirationSeconds); two sources that could
  // disagree would leave the client unsure which one was granted.
  if (request.format == BodyFormat::kK8s && request.lifetime) {
    Bad("bad-request", "--lifetime cannot be used with --format k8s (use spec.expirationSeconds)");
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
    case Verb::kCa: return "ca";
    case Verb::kInfo: return "info";
  }
  return "unknown";
}

}  // namespace signer
