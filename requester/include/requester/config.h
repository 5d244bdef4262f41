// SPDX-License-Identifier: Apache-2.0
// The requester's settings: flags and/or a TOML file (flags win). DESIGN §5 has the contract.
#pragma once

#include <string>
#include <vector>

#include "base/duration.h"
#include "hsm/pin.h"
#include "pki/certificate_profile.h"

namespace requester {

struct ServerAddress {
  std::string user;
  std::string host;
  int port = 22;
};

// "USER@HOST[:PORT]" (also "USER@[v6]:PORT"). Throws Failure(kUsage, "bad-server").
ServerAddress ParseServer(const std::string& text);

// The forwarder's settings (#18; `forward`, and `run` when listen is set).
struct ForwardConfig {
  std::string listen;                  // unix:PATH or 127.0.0.1:PORT / [::1]:PORT
  std::vector<std::string> endpoints;  // https://HOST:PORT, in order of preference
  std::string etcd_ca;                 // etcd's server CA
  std::string listen_group;            // the unix socket's group
  unsigned listen_mode = 0660;         // the unix socket's mode
  int max_connections = 256;
};

struct RequesterConfig {
  std::string name;             // kubemaster-<id>, or an etcd member's name for etcd-server/etcd-peer
  // Which certificate this configuration keeps (#26): etcd-client (masters), etcd-server or
  // etcd-peer (etcd members; one configuration, key and certificate per profile).
  pki::LeafProfile profile = pki::LeafProfile::kClient;
  std::vector<std::string> servers;  // USER@HOST[:PORT], one per signer host (failover, #12)
  std::string ssh_key;          // client key file; empty = ssh-agent
  std::string known_hosts;      // required: the signer's host key
  bool accept_new_host_key = false;  // trust on first use, only when explicitly asked
  std::string key_file;         // PKCS#8 PEM, 0600 — or:
  std::string key_uri;          // pkcs11:token=...;object=...  — or:
  std::string tpm_key;          // a key made in the TPM through ESAPI, attestable (#27, requester/tpm.h)
  std::string tcti;             // how to reach that TPM; default device:/dev/tpmrm0
  bool attestation = false;     // enroll this TPM and send TPM2_Certify evidence with every CSR (#27)
  std::string module;
  hsm::PinSource pin;
  std::string cert;             // where the certificate is stored
  std::string ca_bundle;        // the operator's trust anchors for verification (required)
  std::string ca_sha256;        // the root's SHA-256, 64 lowercase hex: checks a first fetch (#24)
  std::string governance_cert;  // the governance key's certificate(s): `crl` checks the CRL against the document (#29)
  std::string crl_file;         // etcd's --client-crl-file, which `diagnose` checks the certificate against (#28)
  base::Seconds lifetime{0};    // 0 = the signer's default
  base::Seconds skew_tolerance{300};
  base::Seconds connect_timeout{10};
  base::Seconds io_timeout{30};
  std::vector<std::string> post_renew_hook;  // argv, run without a shell after a renewal
  std::string state_file;       // default: <cert>.state.json
  std::string prometheus_file;  // `status --prometheus FILE` / `run` writes it after each attempt
  std::string name_pattern = "^kubemaster-[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$";
  ForwardConfig forward;

  std::string StateFile() const { return state_file.empty() ? cert + ".state.json" : state_file; }
};

// Keys as in the flags with '-' → '_' (name, profile, server, ssh_key, known_hosts, accept_new_host_key,
// key_file, key, tpm_key, tcti, attestation, module, pin_file, pin_env, cert, ca_bundle, ca_sha256, lifetime, skew_tolerance,
// connect_timeout, io_timeout, post_renew_hook (array), state_file, prometheus_file), and for the
// forwarder forward_listen, forward_endpoints (array), forward_ca, forward_listen_group,
// forward_listen_mode (octal string "0660"), forward_max_connections.
void LoadConfigFile(const std::string& path, RequesterConfig& config);

// The root fingerprint of ca_sha256/--ca-sha256 as 64 lowercase hex digits (see
// pki::ParseSha256Fingerprint). Failure(kConfig, "bad-config") otherwise.
std::string CaSha256(const std::string& text);

// A TCP port, "1".."65535" in decimal digits only; -1 for anything else (the empty string too).
int ParsePort(const std::string& text);

// An octal file mode "0660" (at most 0777). Failure(kConfig, "bad-config") otherwise.
unsigned ParseMode(const std::string& text);

// Exactly one of key_file, key_uri, tpm_key (Failure(kUsage, "usage")); attestation only with
// tpm_key (Failure(kConfig, "bad-config")). Part of ValidateConfig; the forwarder's check too.
void CheckKeySource(const RequesterConfig& config);

// Throws Failure(kUsage/kConfig) for missing or contradictory settings. `need_server` is false
// for verbs that work offline (status).
void ValidateConfig(const RequesterConfig& config, bool need_server);

// The order in which this master tries the signers: the list rotated by a stable hash of the
// name, so that masters spread over the signers and each master always starts at the same one.
std::vector<std::string> ServerOrder(const RequesterConfig& config);

// The profile named by `text` (etcd-client, etcd-server, etcd-peer). Failure(kUsage, "bad-profile").
pki::LeafProfile ParseProfileSetting(const std::string& text);

// The name rule, checked before any network traffic: a master's name for etcd-client, a member's
// (lower-case DNS label characters) for etcd-server and etcd-peer. Failure(kUsage, "bad-name").
void CheckName(const RequesterConfig& config);

}  // namespace requester
