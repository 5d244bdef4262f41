// SPDX-License-Identifier: Apache-2.0
#include "signer/config.h"

#include <set>
#include <toml++/toml.h>

#include "base/failure.h"
#include "base/name_pattern.h"

namespace signer {
namespace {

[[noreturn]] void Bad(const std::string& message) {
  throw base::Failure(base::ExitCode::kConfig, "bad-config", message);
}

base::Seconds Duration(const toml::node& node, const std::string& key) {
  if (auto i = node.value<int64_t>()) {
    if (*i < 0) Bad(key + " must not be negative");
    return base::Seconds(*i);
  }
  if (auto s = node.value<std::string>()) {
    try {
      return base::ParseDuration(*s);
    } catch (const base::Failure& f) {
      Bad(key + ": " + f.what());
    }
  }
  Bad(key + " must be a duration such as \"24h\" or a number of seconds");
}

std::string String(const toml::node& node, const std::string& key) {
  auto s = node.value<std::string>();
  if (!s) Bad(key + " must be a string");
  return *s;
}

// Kubernetes' signerName shape: "<DNS name>/<path>", lower-case, at most 571 characters.
void CheckSignerName(const std::string& name) {
  auto slash = name.find('/');
  bool ok = !name.empty() && name.size() <= 571 && slash != std::string::npos && slash > 0 &&
            slash + 1 < name.size();
  for (char ch : name) {
    bool allowed = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
                   ch == '/' || ch == '_';
    ok = ok && allowed;
  }
  if (!ok) Bad("signer_name must look like 'example.com/etcd-client' (lower-case domain/path)");
}

}  // namespace

std::string Identity(const std::string& value) {
  // An empty binding would read as "no binding" and let this SSH key ask for any name.
  if (value.empty()) Bad("identity must not be empty (leave it out to bind no name)");
  return value;
}

void LoadConfigFile(const std::string& path, SignerConfig& c) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    Bad(path + ": " + std::string(e.description()));
  }
  c.config_file = path;
  for (auto&& [k, node] : table) {
    std::string key(k.str());
    if (key == "module") c.module = String(node, key);
    else if (key == "key") c.key_uri = String(node, key);
    else if (key == "pin_file") c.pin.file = String(node, key);
    else if (key == "pin_env") c.pin.env_name = String(node, key);
    else if (key == "ca_cert") c.ca_cert = String(node, key);
    else if (key == "ca_bundle") c.ca_bundle = String(node, key);
    else if (key == "ca_chain") c.ca_chain = String(node, key);
    else if (key == "identity") c.identity = Identity(String(node, key));
    else if (key == "name_pattern") c.name_pattern = String(node, key);
    else if (key == "signer_name") c.signer_name = String(node, key);
    else if (key == "lifetime_default") c.lifetime_default = Duration(node, key);
    else if (key == "lifetime_min") c.lifetime_min = Duration(node, key);
    else if (key == "lifetime_max") c.lifetime_max = Duration(node, key);
    else if (key == "backdate") c.backdate = Duration(node, key);
    else if (key == "audit_log") c.audit_log = String(node, key);
    else if (key == "lock_file") c.lock_file = String(node, key);
    else if (key == "deadline") c.deadline = Duration(node, key);
    else if (key == "input_timeout") c.input_timeout = Duration(node, key);
    else if (key == "approved_keys") c.approved_keys = String(node, key);
    else if (key == "denied_keys") c.denied_keys = String(node, key);
    else if (key == "denied_identities") c.denied_identities = String(node, key);
    else if (key == "list_admin") c.list_admin = String(node, key);
    else if (key == "approval") {
      std::string mode = String(node, key);
      if (mode != "none" && mode != "new-keys") Bad("approval must be \"none\" or \"new-keys\"");
      c.approval = mode == "none" ? ApprovalMode::kNone : ApprovalMode::kNewKeys;
    } else if (key == "syslog") {
      auto b = node.value<bool>();
      if (!b) Bad("syslog must be true or false");
      c.syslog = *b;
    } else {
      Bad(path + ": unknown key '" + key + "'");
    }
  }
}

void ValidateConfig(const SignerConfig& c) {
  if (c.key_uri.empty()) Bad("no CA key: set --key (a PKCS#11 URI)");
  if (c.ca_cert.empty()) Bad("no CA certificate: set --ca-cert");
  if (c.lifetime_min.count() < 60) Bad("lifetime_min must be at least 60 seconds");
  if (c.lifetime_min > c.lifetime_max) Bad("lifetime_min is larger than lifetime_max");
  if (c.lifetime_default < c.lifetime_min || c.lifetime_default > c.lifetime_max) {
    Bad("lifetime_default must lie between lifetime_min and lifetime_max");
  }
  if (c.backdate > base::Seconds(3600)) Bad("backdate must be at most 1h");
  if (c.deadline.count() < 1 || c.input_timeout.count() < 1) Bad("timeouts must be at least 1s");
  base::CompiledNamePattern(c.name_pattern);  // throws bad-config; kept for CheckName
  if (c.lock_file.empty()) Bad("lock_file must not be empty");
  CheckSignerName(c.signer_name);
  if (c.approval == ApprovalMode::kNewKeys && c.approved_keys.empty()) {
    Bad("approval = \"new-keys\" needs approved_keys (a file of NAME SHA256 lines)");
  }
}

}  // namespace signer
