// SPDX-License-Identifier: Apache-2.0
#include "requester/config.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <unistd.h>

#include <optional>
#include <regex>
#include <toml++/toml.h>

#include "base/failure.h"
#include "base/text.h"
#include "pki/verify.h"

namespace requester {
namespace {

using base::ExitCode;
using base::Failure;

[[noreturn]] void Bad(const std::string& message) {
  throw Failure(ExitCode::kConfig, "bad-config", message);
}

}  // namespace

std::string CaSha256(const std::string& text) {
  std::optional<std::string> hex = pki::ParseSha256Fingerprint(text);
  if (!hex) {
    Bad("ca_sha256 must be the etcd root's SHA-256 fingerprint, 64 hex digits as `openssl x509 -noout "
        "-fingerprint -sha256` prints them, not '" + base::Printable(text, 100) + "'");
  }
  return *hex;
}

int ParsePort(const std::string& text) {
  if (text.empty() || text.size() > 5 || text.find_first_not_of("0123456789") != std::string::npos) return -1;
  int port = std::stoi(text);
  return port >= 1 && port <= 65535 ? port : -1;
}

unsigned ParseMode(const std::string& text) {
  if (text.empty() || text.size() > 4 || text.find_first_not_of("01234567") != std::string::npos) {
    Bad("a mode is an octal number such as 0660, not '" + text + "'");
  }
  unsigned mode = static_cast<unsigned>(std::stoul(text, nullptr, 8));
  if (mode > 0777) Bad("a mode is at most 0777 (no setuid, setgid or sticky bits)");
  return mode;
}

ServerAddress ParseServer(const std::string& text) {
  ServerAddress a;
  auto at = text.find('@');
  if (at == std::string::npos || at == 0 || at + 1 >= text.size()) {
    throw Failure(ExitCode::kUsage, "bad-server", "--server must be USER@HOST[:PORT], not '" + text + "'");
  }
  a.user = text.substr(0, at);
  std::string rest = text.substr(at + 1);
  std::string port;
  if (rest[0] == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos) throw Failure(ExitCode::kUsage, "bad-server", "unclosed '[' in --server");
    a.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') throw Failure(ExitCode::kUsage, "bad-server", "junk after ']' in --server");
      port = rest.substr(close + 2);
    }
  } else {
    auto colon = rest.rfind(':');
    a.host = rest.substr(0, colon);
    if (colon != std::string::npos) port = rest.substr(colon + 1);
  }
  if (a.host.empty()) throw Failure(ExitCode::kUsage, "bad-server", "--server has no host");
  if (!port.empty() || rest.back() == ':') {
    a.port = ParsePort(port);
    if (a.port < 0) throw Failure(ExitCode::kUsage, "bad-server", "bad port '" + port + "' in --server");
  }
  for (char c : a.user + a.host) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == '\'' || c == '"' || c == '\\') {
      throw Failure(ExitCode::kUsage, "bad-server", "--server contains a character that is not allowed");
    }
  }
  return a;
}

void LoadConfigFile(const std::string& path, RequesterConfig& c) {
  toml::table table;
  try {
    // toml++ only says "could not be opened": name the reason (e.g. Permission denied, #15).
    if (::access(path.c_str(), R_OK) != 0) Bad("cannot open " + path + ": " + std::strerror(errno));
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    Bad(path + ": " + std::string(e.description()));
  }
  auto str = [&](const toml::node& n, const std::string& key) {
    auto v = n.value<std::string>();
    if (!v) Bad(key + " must be a string");
    return *v;
  };
  auto dur = [&](const toml::node& n, const std::string& key) {
    if (auto i = n.value<int64_t>()) return base::Seconds(*i);
    try {
      return base::ParseDuration(str(n, key));
    } catch (const Failure& f) {
      Bad(key + ": " + f.what());
    }
  };
  for (auto&& [k, node] : table) {
    std::string key(k.str());
    if (key == "name") c.name = str(node, key);
    else if (key == "server") {
      // One signer ("u@h") or several (["u@a", "u@b"]).
      c.servers.clear();
      if (auto* array = node.as_array()) {
        for (auto&& item : *array) c.servers.push_back(str(item, key));
      } else {
        c.servers.push_back(str(node, key));
      }
    }
    else if (key == "ssh_key") c.ssh_key = str(node, key);
    else if (key == "known_hosts") c.known_hosts = str(node, key);
    else if (key == "accept_new_host_key") {
      auto b = node.value<bool>();
      if (!b) Bad("accept_new_host_key must be true or false");
      c.accept_new_host_key = *b;
    } else if (key == "key_file") c.key_file = str(node, key);
    else if (key == "key") c.key_uri = str(node, key);
    else if (key == "tpm_key") c.tpm_key = str(node, key);
    else if (key == "tcti") c.tcti = str(node, key);
    else if (key == "attestation") {
      auto b = node.value<bool>();
      if (!b) Bad("attestation must be true or false");
      c.attestation = *b;
    }
    else if (key == "module") c.module = str(node, key);
    else if (key == "pin_file") c.pin.file = str(node, key);
    else if (key == "pin_env") c.pin.env_name = str(node, key);
    else if (key == "cert") c.cert = str(node, key);
    else if (key == "profile") c.profile = ParseProfileSetting(str(node, key));
    else if (key == "ca_bundle") c.ca_bundle = str(node, key);
    else if (key == "crl_file") c.crl_file = str(node, key);
    else if (key == "governance_cert") c.governance_cert = str(node, key);
    else if (key == "ca_sha256") c.ca_sha256 = CaSha256(str(node, key));
    else if (key == "lifetime") c.lifetime = dur(node, key);
    else if (key == "skew_tolerance") c.skew_tolerance = dur(node, key);
    else if (key == "connect_timeout") c.connect_timeout = dur(node, key);
    else if (key == "io_timeout") c.io_timeout = dur(node, key);
    else if (key == "state_file") c.state_file = str(node, key);
    else if (key == "prometheus_file") c.prometheus_file = str(node, key);
    else if (key == "post_renew_hook") {
      auto* array = node.as_array();
      if (array == nullptr) Bad("post_renew_hook must be an array of strings (argv, no shell)");
      c.post_renew_hook.clear();
      for (auto&& item : *array) c.post_renew_hook.push_back(str(item, key));
    } else if (key == "forward_listen") c.forward.listen = str(node, key);
    else if (key == "forward_endpoints") {
      auto* array = node.as_array();
      if (array == nullptr) Bad("forward_endpoints must be an array of \"https://HOST:PORT\" strings");
      c.forward.endpoints.clear();
      for (auto&& item : *array) c.forward.endpoints.push_back(str(item, key));
    } else if (key == "forward_ca") c.forward.etcd_ca = str(node, key);
    else if (key == "forward_listen_group") c.forward.listen_group = str(node, key);
    else if (key == "forward_listen_mode") c.forward.listen_mode = ParseMode(str(node, key));
    else if (key == "forward_max_connections") {
      auto i = node.value<int64_t>();
      if (!i || *i < 1 || *i > 4096) Bad("forward_max_connections must be a number 1..4096");
      c.forward.max_connections = static_cast<int>(*i);
    } else {
      Bad(path + ": unknown key '" + key + "'");
    }
  }
}

pki::LeafProfile ParseProfileSetting(const std::string& text) {
  std::optional<pki::LeafProfile> profile = pki::ParseProfile(text);
  if (!profile) {
    throw Failure(ExitCode::kUsage, "bad-profile",
                  "profile '" + text.substr(0, 32) + "' is not one of etcd-client, etcd-server, etcd-peer");
  }
  return *profile;
}

void CheckName(const RequesterConfig& c) {
  if (c.name.empty()) throw Failure(ExitCode::kUsage, "bad-name", "--name is required (e.g. kubemaster-1)");
  if (pki::IsMemberProfile(c.profile)) {
    // A member's name, as the signer's [members.NAME] tables allow it.
    if (c.name.size() > 63 || !pki::IsDnsName(c.name)) {
      throw Failure(ExitCode::kUsage, "bad-name",
                    "'" + c.name + "' is not a valid etcd member name (lower-case letters, digits, '-' and '.')");
    }
    return;
  }
  if (c.name.size() > 64 || !std::regex_match(c.name, std::regex(c.name_pattern))) {
    throw Failure(ExitCode::kUsage, "bad-name",
                  "'" + c.name + "' is not a valid master name: it must look like kubemaster-<id> "
                  "(lowercase letters, digits and '-', not ending in '-')");
  }
}

std::vector<std::string> ServerOrder(const RequesterConfig& c) {
  std::vector<std::string> order = c.servers;
  if (order.size() < 2) return order;
  std::uint32_t h = 2166136261u;  // FNV-1a: stable across runs and builds, unlike std::hash
  for (unsigned char ch : c.name) h = (h ^ ch) * 16777619u;
  std::rotate(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(h % order.size()), order.end());
  return order;
}

void CheckKeySource(const RequesterConfig& c) {
  if (int(!c.key_file.empty()) + int(!c.key_uri.empty()) + int(!c.tpm_key.empty()) != 1) {
    throw Failure(ExitCode::kUsage, "usage", "give exactly one of --key-file FILE, --key PKCS11-URI or --tpm-key FILE");
  }
  if (c.attestation && c.tpm_key.empty()) {
    // Only a key made through ESAPI can be certified by the TPM (requester/tpm.h says why).
    Bad("attestation = true needs the key in tpm_key (a key file or a PKCS#11 key cannot be attested)");
  }
}

void ValidateConfig(const RequesterConfig& c, bool need_server) {
  CheckName(c);
  if (c.cert.empty()) throw Failure(ExitCode::kUsage, "usage", "--cert FILE is required");
  CheckKeySource(c);
  if (!need_server) return;
  if (c.servers.empty()) throw Failure(ExitCode::kUsage, "bad-server", "--server USER@HOST[:PORT] is required");
  for (const auto& server : c.servers) ParseServer(server);
  if (c.known_hosts.empty()) {
    throw Failure(ExitCode::kUsage, "usage",
                  "--known-hosts FILE is required: the signer's host key must be known in advance");
  }
  if (c.connect_timeout.count() < 1 || c.io_timeout.count() < 1) Bad("timeouts must be at least 1s");
}

}  // namespace requester
