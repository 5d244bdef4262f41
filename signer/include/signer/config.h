// SPDX-License-Identifier: Apache-2.0
// The operator's side of the signer: policy and token settings from the forced command's argv
// and/or a TOML file. The client can never change any of these.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "base/duration.h"
#include "hsm/pin.h"
#include "pki/certificate_profile.h"

namespace signer {

constexpr const char* kDefaultLockFile = "/var/lib/etcd-signer/token.lock";
// The Kubernetes signerName a CertificateSigningRequest object must name (`sign --format k8s`).
constexpr const char* kDefaultSignerName = "etcd-hsm-signer.example.com/etcd-client";
constexpr const char* kDefaultNamePattern = "^kubemaster-[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$";

// Whether a request's (name, key) must be listed in approved_keys (#14).
enum class ApprovalMode {
  kNone,     // "none": any key that passes the policy
  kNewKeys,  // "new-keys": only approved (name, key) pairs; others are answered pending-approval
};

// Whether a master's CSR must come with proof that its key lives in an enrolled TPM (#27).
enum class AttestationMode {
  kOff,       // "off": evidence is not asked for (nor read)
  kOptional,  // "optional": checked when sent; the audit record says whether the key was attested
  kRequired,  // "required": etcd-client certificates only for keys proven to be TPM-bound
};

constexpr const char* kDefaultEnrollmentDir = "/var/lib/etcd-signer/enrollments";

// The etcd members this signer issues server and peer certificates to (#26): [members.NAME] with
// `dns` and `ip` arrays. The certificate's CN is NAME and its subjectAltName exactly these names,
// never anything from the CSR.
using Members = std::map<std::string, pki::SubjectAltNames>;

// A member name: lower-case letters, digits, '-' and '.', starting and ending with a letter or
// digit, at most 63 characters.
bool IsMemberName(const std::string& name);

struct SignerConfig {
  std::string module;            // PKCS#11 module path (or module-path= in the key URI)
  std::string key_uri;           // pkcs11:token=...;object=...;type=private
  hsm::PinSource pin;            // pin_file / pin_env
  std::string ca_cert;           // the CA certificate matching the token key
  std::string ca_bundle;         // served by `ca`; defaults to ca_cert
  std::string ca_chain;          // ca_cert and the intermediates above it, not the root; sent after each leaf
  std::string identity;          // when set, the CN must equal it exactly
  std::string name_pattern = kDefaultNamePattern;
  std::string signer_name = kDefaultSignerName;  // spec.signerName of k8s objects
  base::Seconds lifetime_default{24 * 3600};
  base::Seconds lifetime_min{10 * 60};
  base::Seconds lifetime_max{7 * 24 * 3600};
  base::Seconds backdate{5 * 60};
  std::string audit_log;         // JSON lines file (+ its private lock file audit_log.lock)
  std::string lock_file = kDefaultLockFile;  // private 0600 file that serialises token use
  bool syslog = true;
  base::Seconds deadline{10};          // whole request
  base::Seconds input_timeout{5};      // reading the CSR from stdin
  // Approval and deny lists (signer/approval.h); TOML keys only, so that etcd-signerctl, which
  // edits them, finds them in the same file.
  ApprovalMode approval = ApprovalMode::kNone;
  std::string approved_keys;      // NAME SHA256 [comment] per line
  std::string denied_keys;        // NAME SHA256 [comment] per line
  std::string denied_identities;  // NAME [comment] per line
  std::string list_admin;         // an account besides root that may own the lists (and their directories)
  Members members;                // [members.NAME] tables
  // The fleet's signed governance document (#29, signer/governance.h): when set, the only source
  // of approvals (a local approved_keys is not consulted: it could only allow), and a source of
  // denials besides the local lists.
  std::string governance_file;
  std::string governance_cert;    // the certificate(s) whose key may sign it (PEM bundle)
  base::Seconds governance_warning{7 * 24 * 3600};  // `info` and metrics warn this long before expiry
  // TPM attestation of masters' keys (#27, signer/attestation.h).
  AttestationMode attestation = AttestationMode::kOff;
  std::string ek_roots;           // PEM bundle: the TPM manufacturers' CAs EK certificates chain to
  std::string enrollment_dir = kDefaultEnrollmentDir;  // the signer account's: one file per enrolled master
  std::string config_file;        // the TOML file read, if any
};

// Reads a TOML config file over `config` (keys: module, key, pin_file, pin_env, ca_cert,
// ca_bundle, ca_chain, identity, name_pattern, signer_name, lifetime_default, lifetime_min, lifetime_max, backdate,
// audit_log, lock_file, syslog, deadline, input_timeout, approval, approved_keys, denied_keys,
// denied_identities, list_admin, governance_file, governance_cert, governance_warning, attestation, ek_roots, enrollment_dir, and [members.NAME] tables with dns and ip arrays; durations as strings like "24h" or integers in seconds). Unknown keys are errors (Failure kConfig "bad-config").
void LoadConfigFile(const std::string& path, SignerConfig& config);

// Returns `value` for the identity binding; an empty value is Failure(kConfig, "bad-config").
std::string Identity(const std::string& value);

// Checks the settings are coherent (min <= default <= max, regex compiles, ...). Throws
// Failure(kConfig, "bad-config").
void ValidateConfig(const SignerConfig& config);

}  // namespace signer
