// SPDX-License-Identifier: Apache-2.0
#include "signer/k8s_csr.h"

#include <algorithm>
#include <set>
#include <nlohmann/json.hpp>

#include "base/text.h"
#include "pki/base64.h"
#include "pki/csr.h"

namespace signer {
namespace {

using base::ExitCode;
using base::Failure;
using Json = nlohmann::ordered_json;

constexpr const char* kApiVersion = "certificates.k8s.io/v1";
constexpr const char* kKind = "CertificateSigningRequest";

[[noreturn]] void Malformed(const std::string& message) {
  throw Failure(ExitCode::kDataErr, "k8s-object", message);
}

[[noreturn]] void Refuse(const std::string& reason, const std::string& message) {
  throw Failure(ExitCode::kNoPerm, reason, message);
}

std::string Quoted(const std::string& s) { return "'" + base::Printable(s, 80) + "'"; }

// Pure ASCII (every other character as \uXXXX), one line: what reaches the client's terminal.
std::string Dump(const Json& j) { return j.dump(-1, ' ', true, Json::error_handler_t::replace); }

// Parses exactly one JSON value. Refuses duplicate keys (two parsers that pick different
// duplicates read two different requests) and nesting deeper than kK8sMaxDepth.
Json ParseStrict(const std::string& body) {
  std::vector<std::optional<std::set<std::string>>> open;  // an object's keys, or nullopt for an array
  bool duplicate = false;
  bool too_deep = false;
  Json::parser_callback_t watch = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (depth > kK8sMaxDepth) too_deep = true;
    switch (event) {
      case Json::parse_event_t::object_start: open.emplace_back(std::set<std::string>{}); break;
      case Json::parse_event_t::array_start: open.emplace_back(std::nullopt); break;
      case Json::parse_event_t::object_end:
      case Json::parse_event_t::array_end:
        if (!open.empty()) open.pop_back();
        break;
      case Json::parse_event_t::key:
        if (!open.empty() && open.back() && !open.back()->insert(parsed.get<std::string>()).second) {
          duplicate = true;
        }
        break;
      case Json::parse_event_t::value: break;
    }
    return true;
  };
  Json j;
  try {
    j = Json::parse(body, watch, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const Json::exception& e) {
    Malformed("the body is not one JSON document (" + base::Printable(e.what(), 120) + ")");
  }
  if (too_deep) Malformed("the object nests deeper than " + std::to_string(kK8sMaxDepth) + " levels");
  if (duplicate) Malformed("the object has a duplicate key");
  return j;
}

const Json& Field(const Json& object, const char* name, const std::string& where) {
  auto it = object.find(name);
  if (it == object.end()) Malformed(where + name + " is missing");
  return *it;
}

std::string StringField(const Json& object, const char* name, const std::string& where) {
  const Json& v = Field(object, name, where);
  if (!v.is_string()) Malformed(where + name + " must be a string");
  return v.get<std::string>();
}

bool IsStringArray(const Json& v) {
  return v.is_array() && std::all_of(v.begin(), v.end(), [](const Json& e) { return e.is_string(); });
}

}  // namespace

K8sCsr ParseK8sCsr(const std::string& body) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) {
    throw Failure(ExitCode::kDataErr, "empty-input", "no CertificateSigningRequest was sent on stdin");
  }
  Json j = ParseStrict(body);
  if (!j.is_object()) Malformed("the body must be a JSON object");
  // Unknown fields are refused rather than ignored: a field the signer does not understand may be
  // one the client expects it to honour.
  for (const auto& [key, value] : j.items()) {
    if (key != "apiVersion" && key != "kind" && key != "metadata" && key != "spec" && key != "status") {
      Malformed("unknown field " + Quoted(key) + " in the object");
    }
  }
  if (StringField(j, "apiVersion", "") != kApiVersion) {
    Malformed(std::string("apiVersion must be ") + kApiVersion);
  }
  if (StringField(j, "kind", "") != kKind) Malformed(std::string("kind must be ") + kKind);
  Json echo;
  echo["apiVersion"] = kApiVersion;
  echo["kind"] = kKind;
  if (auto it = j.find("metadata"); it != j.end()) {
    // Ignored (names, labels, uid belong to the API server), but echoed: bounded.
    if (!it->is_object()) Malformed("metadata must be an object");
    if (Dump(*it).size() > kK8sMaxMetadataBytes) {
      Malformed("metadata is larger than " + std::to_string(kK8sMaxMetadataBytes) + " bytes");
    }
    echo["metadata"] = *it;
  }
  // A status (e.g. from `kubectl get csr -o json`) is the API server's and ours to replace.
  if (auto it = j.find("status"); it != j.end() && !it->is_object()) Malformed("status must be an object");

  const Json& spec = Field(j, "spec", "");
  if (!spec.is_object()) Malformed("spec must be an object");
  for (const auto& [key, value] : spec.items()) {
    if (key == "request" || key == "signerName" || key == "usages" || key == "expirationSeconds") continue;
    // Set by the API server from who created the object; informational here (the SSH key is who
    // asks), but typed.
    if ((key == "username" || key == "uid") && value.is_string()) continue;
    if (key == "groups" && IsStringArray(value)) continue;
    if (key == "extra" && value.is_object() &&
        std::all_of(value.begin(), value.end(), [](const Json& e) { return IsStringArray(e); })) {
      continue;
    }
    Malformed("unknown or mistyped field " + Quoted("spec." + key));
  }
  K8sCsr csr;
  csr.signer_name = StringField(spec, "signerName", "spec.");
  const Json& usages = Field(spec, "usages", "spec.");
  if (!IsStringArray(usages)) Malformed("spec.usages must be an array of strings");
  for (const auto& u : usages) csr.usages.push_back(u.get<std::string>());
  if (auto it = spec.find("expirationSeconds"); it != spec.end()) {
    bool in_range = false;
    std::int64_t seconds = 0;
    if (it->is_number_unsigned()) {
      auto v = it->get<std::uint64_t>();
      in_range = v <= static_cast<std::uint64_t>(kK8sMaxExpirationSeconds);
      seconds = static_cast<std::int64_t>(std::min<std::uint64_t>(v, kK8sMaxExpirationSeconds));
    } else if (it->is_number_integer()) {
      seconds = it->get<std::int64_t>();
      in_range = seconds >= 0 && seconds <= kK8sMaxExpirationSeconds;
    }
    if (!in_range) Malformed("spec.expirationSeconds must be an integer from 0 to 2147483647");
    csr.expiration = base::Seconds(seconds);
  }
  auto der = pki::DecodeBase64(StringField(spec, "request", "spec."));
  if (!der || der->empty()) Malformed("spec.request must be the base64 encoding of a PEM CSR");
  csr.request = std::move(*der);
  echo["spec"] = spec;
  csr.echo_json = Dump(echo);
  return csr;
}

void CheckK8sSpec(const K8sCsr& csr, const SignerConfig& config) {
  if (csr.signer_name != config.signer_name) {
    Refuse("k8s-signer-name", "spec.signerName " + Quoted(csr.signer_name) + " is not this signer's (" +
                                  config.signer_name + ")");
  }
  static const std::set<std::string> kAllowed = {"client auth", "digital signature", "key encipherment"};
  std::set<std::string> seen;
  for (const auto& u : csr.usages) {
    if (kAllowed.count(u) == 0) {
      Refuse("k8s-usages", "spec.usages may hold only \"client auth\", \"digital signature\" and "
                           "\"key encipherment\", not " + Quoted(u));
    }
    if (!seen.insert(u).second) Refuse("k8s-usages", "spec.usages names " + Quoted(u) + " twice");
  }
  if (seen.count("client auth") == 0) Refuse("k8s-usages", "spec.usages must include \"client auth\"");
  if (csr.expiration && csr.expiration->count() < kK8sMinExpirationSeconds) {
    Refuse("lifetime-too-short", "spec.expirationSeconds " + std::to_string(csr.expiration->count()) +
                                     " is below Kubernetes' minimum of 600");
  }
}

pki::X509ReqPtr DecodeK8sRequest(const K8sCsr& csr) {
  // Kubernetes carries a PEM block; DER (which the base64 body accepts) is not the k8s form.
  static const std::string kPem = "-----BEGIN ";
  if (csr.request.size() < kPem.size() || !std::equal(kPem.begin(), kPem.end(), csr.request.begin())) {
    throw Failure(ExitCode::kDataErr, "not-a-csr", "spec.request must hold a PEM CERTIFICATE REQUEST block");
  }
  return pki::DecodeCsr(csr.request);
}

pki::X509ReqPtr DecodeK8sBody(const std::string& body, const SignerConfig& config,
                              std::optional<K8sCsr>& parsed) {
  parsed = ParseK8sCsr(body);
  CheckK8sSpec(*parsed, config);
  return DecodeK8sRequest(*parsed);
}

namespace {

Json Condition(const std::string& type, const std::string& reason, const std::string& message,
               std::chrono::system_clock::time_point now) {
  Json c;
  c["type"] = type;
  c["status"] = "True";
  c["reason"] = reason;
  c["message"] = message;
  c["lastUpdateTime"] = base::FormatRfc3339(now);
  c["lastTransitionTime"] = base::FormatRfc3339(now);
  return c;
}

Json Echo(const K8sCsr* csr) {
  if (csr != nullptr) return Json::parse(csr->echo_json);
  Json bare;
  bare["apiVersion"] = kApiVersion;
  bare["kind"] = kKind;
  return bare;
}

}  // namespace

std::string EncodeK8sIssued(const K8sCsr& csr, const std::string& pem, const std::string& reason,
                            const std::string& message, std::chrono::system_clock::time_point now) {
  Json j = Echo(&csr);
  Json status;
  status["conditions"] = Json::array({Condition("Approved", reason, message, now)});
  status["certificate"] =
      pki::EncodeBase64(reinterpret_cast<const unsigned char*>(pem.data()), pem.size());
  j["status"] = std::move(status);
  return Dump(j) + "\n";
}

std::string EncodeK8sRefusal(const K8sCsr* csr, const Failure& failure,
                             std::chrono::system_clock::time_point now) {
  Json j = Echo(csr);
  if (failure.reason() == "pending-approval") {
    // Kubernetes' own reading of an object with neither Approved, Denied nor Failed is "Pending":
    // the key waits for an operator (#14), and the same object sent again may be issued. The
    // message is the stderr line (exit 75).
    j["status"] = Json::object();
    return Dump(j) + "\n";
  }
  const char* type = failure.code() == ExitCode::kNoPerm ? "Denied" : "Failed";
  j["status"]["conditions"] = Json::array({Condition(type, failure.reason(), failure.what(), now)});
  return Dump(j) + "\n";
}

}  // namespace signer
