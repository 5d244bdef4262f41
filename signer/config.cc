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

std::vector<std::string> Strings(const toml::node& node, const std::string& key) {
  const toml::array* array = node.as_array();
  if (array == nullptr) Bad(key + " must be an array of strings");
  std::vector<std::string> out;
  for (const toml::node& item : *array) out.push_back(String(item, key));
  return out;
}

// [members.NAME] dns = [...] ip = [...]: checked here, so that a request never meets a name the
// certificate could not carry.
void LoadMembers(const toml::node& node, Members& members) {
  const toml::table* table = node.as_table();
  if (table == nullptr) Bad("members must be tables: [members.etcd-1] with dns = [...] and ip = [...]");
  for (auto&& [k, member] : *table) {
    std::string name(k.str());
    if (!IsMemberName(name)) Bad("member name '" + name.substr(0, 64) + "' must be lower-case letters, digits, '-' and '.'");
    const toml::table* fields = member.as_table();
    if (fields == nullptr) Bad("[members." + name + "] must be a table with dns and ip arrays");
    pki::SubjectAltNames names;
    for (auto&& [fk, value] : *fields) {
      std::string field(fk.str());
      std::string where = "members." + name + "." + field;
      if (field == "dns") {
        names.dns = Strings(value, where);
        for (const std::string& d : names.dns) {
          if (!pki::IsDnsName(d)) Bad(where + ": '" + d.substr(0, 64) + "' is not a lower-case DNS name");
        }
      } else if (field == "ip") {
        names.ip = Strings(value, where);
        for (const std::string& i : names.ip) {
          if (!pki::IsIpAddress(i)) Bad(where + ": '" + i.substr(0, 64) + "' is not an IP address");
        }
      } else {
        Bad("unknown key '" + where + "' (dns and ip only)");
      }
    }
    if (names.empty()) Bad("[members." + name + "] needs at least one dns name or ip address");
    members[name] = std::move(names);
  }
}

}  // namespace

bool IsMemberName(const std::string& name) {
  return name.size() <= 63 && pki::IsDnsName(name);
}

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
    else if (key == "members") LoadMembers(node, c.members);
    else if (key == "governance_file") c.governance_file = String(node, key);
    else if (key == "governance_cert") c.governance_cert = String(node, key);
    else if (key == "governance_warning") c.governance_warning = Duration(node, key);
    else if (key == "ek_roots") c.ek_roots = String(node, key);
    else if (key == "enrollment_dir") c.enrollment_dir = String(node, key);
    else if (key == "attestation") {
      std::string mode = String(node, key);
      if (mode != "off" && mode != "optional" && mode != "required") {
        Bad("attestation must be \"off\", \"optional\" or \"required\"");
      }
      c.attestation = mode == "off" ? AttestationMode::kOff
                      : mode == "optional" ? AttestationMode::kOptional
                                           : AttestationMode::kRequired;
    } else if (key == "approval") {
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
  // Roles never overlap: a member name that the master pattern admits could get either profile.
  const base::NamePattern& masters = base::CompiledNamePattern(c.name_pattern);
  for (const auto& [name, names] : c.members) {
    if (masters.Matches(name)) Bad("member name '" + name + "' matches the master name_pattern; give members other names");
  }
  if (c.governance_file.empty() != c.governance_cert.empty()) {
    Bad("governance_file and governance_cert go together: the document, and the certificate(s) whose key may sign it");
  }
  if (c.attestation != AttestationMode::kOff && c.ek_roots.empty()) {
    Bad("attestation needs ek_roots: the TPM manufacturers' CA certificates (PEM) that EK certificates chain to");
  }
  if (c.enrollment_dir.empty()) Bad("enrollment_dir must not be empty");
  if (c.approval == ApprovalMode::kNewKeys && c.approved_keys.empty() && c.governance_file.empty()) {
    Bad("approval = \"new-keys\" needs approved_keys (a file of NAME SHA256 lines) or governance_file");
  }
}

}  // namespace signer
