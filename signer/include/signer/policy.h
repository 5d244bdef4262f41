// SPDX-License-Identifier: Apache-2.0
// The signer's policy over a CSR: decode, check, decide. Pure functions over attacker input; no
// token, no clock of their own (the caller passes `now`).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "base/duration.h"
#include "pki/csr.h"
#include "pki/key.h"
#include "signer/config.h"

namespace signer {

constexpr std::size_t kMaxInputBytes = 64 * 1024;
constexpr std::size_t kMaxCommonNameLength = 64;  // X.520 ub-common-name

// What the signer has learnt about a request so far; filled step by step and audited whether the
// request succeeds or not.
struct RequestFacts {
  std::string common_name;       // as requested (may be refused)
  std::string key_type;          // "EC P-256", "RSA 3072", ...
  std::string public_key_sha256;  // the key's fingerprint (pki::CanonicalKey::sha256, #24)
  std::optional<base::Seconds> requested_lifetime;
};

// An approved request: everything the certificate will carry that came from the client.
struct Approval {
  std::string common_name;
  pki::EvpPkeyPtr public_key;
  base::Seconds lifetime{0};
  // The key's canonical form and fingerprint, computed once by ApplyPolicy: the certificate
  // carries it, the self-check compares with it, every list and record uses its sha256.
  pki::CanonicalKey key{};
  pki::LeafProfile profile = pki::LeafProfile::kClient;
  pki::SubjectAltNames names;  // member profiles: the member's configured names
};

// base64 (whitespace ignored) of a PEM or DER CSR → the decoded CSR. Failure(kDataErr):
// "empty-input", "not-base64", "not-a-csr".
pki::X509ReqPtr DecodeRequestBody(const std::string& body);

// Applies the profile's rules to a decoded CSR (DESIGN §3) and the requested lifetime. Fills
// `facts` as it goes. Failure(kDataErr, "bad-signature") for a CSR whose self-signature does not
// verify; Failure(kNoPerm, reason) for policy refusals: "subject-attributes", "name-policy",
// "identity-mismatch", "member-identity-required", "member-unknown", "profile-not-allowed",
// "extensions-requested", "csr-attributes", "key-type", "key-size", "lifetime-too-short". An
// extensionRequest asking only for what the certificate carries anyway (CA:FALSE, a
// subjectKeyIdentifier, keyUsage within digitalSignature/keyEncipherment, extendedKeyUsage within
// the profile's: what certmonger sends) and one friendlyName label are accepted and ignored;
// anything else in them (a subjectAltName above all: names come from the signer) is refused.
Approval ApplyPolicy(X509_REQ* req, std::optional<base::Seconds> requested_lifetime,
                     const SignerConfig& config, RequestFacts& facts,
                     pki::LeafProfile profile = pki::LeafProfile::kClient);

// Lifetime rule alone: default when not asked; below min refused; above max clamped to max.
base::Seconds GrantLifetime(std::optional<base::Seconds> requested, const SignerConfig& config);

// Name rule alone: length, pattern (full match), identity binding.
void CheckName(const std::string& common_name, const SignerConfig& config);

// Role rule (#26): a configured member ([members.NAME]) may request etcd-server and etcd-peer
// only, and only through an SSH key bound to it with --identity; every other name is a master's
// and may request etcd-client only (then CheckName applies). Returns the member's names for a
// member profile. Failure(kNoPerm): "member-identity-required", "member-unknown",
// "profile-not-allowed", "identity-mismatch", "name-policy".
pki::SubjectAltNames CheckRole(const std::string& common_name, pki::LeafProfile profile, const SignerConfig& config);

}  // namespace signer
