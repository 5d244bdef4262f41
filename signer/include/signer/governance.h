// SPDX-License-Identifier: Apache-2.0
// The fleet's governance document (#29): one signed file holding every fleet-wide decision —
// denied identities, denied keys, approved keys, revoked serials — with a version that only grows,
// the time it was made and an expiry. Every signer host obeys the one it has installed.
//
// Three forms, one module:
//   STATE.toml   the operators' readable source, under configuration management
//                (ParseGovernanceToml): version (optional), expires, denied_identities,
//                denied_keys, approved_keys, revoked;
//   content      canonical JSON (EncodeGovernanceContent): fixed key order, entries sorted, what
//                is signed; decoding re-encodes and must give the same bytes, so one state has
//                one content and nothing unparsed rides along;
//   document     CMS SignedData (RFC 5652) in PEM with the content embedded, signed with a
//                governance key in its own PKCS#11 token (`etcd-signerctl governance sign`), so
//                `openssl cms -verify` checks it independently.
//
// Every refusal is a Failure with its own reason (docs/protocol.md §7): governance-invalid (65:
// malformed, unknown field, duplicate, contradiction, oversize), governance-signature (65: the
// signature does not verify, or was not made by a governance_cert), governance-rollback (65: a
// version not above the installed one), governance-expired (69 at the signer, 65 at install),
// governance-name (65: a name that can never be a certificate's name here).
#pragma once

#include <openssl/x509.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pki/crl.h"
#include "pki/openssl.h"
#include "signer/config.h"

namespace signer {

// Documents (and sources) larger than this are refused: 100,000 revoked serials are about 6 MB.
constexpr std::size_t kMaxGovernanceBytes = 16u << 20;

struct GovernanceKey {
  std::string identity;
  std::string sha256;  // canonical SPKI SHA-256, 64 lowercase hex digits (protocol.md §4)
  bool operator<(const GovernanceKey& o) const { return identity != o.identity ? identity < o.identity : sha256 < o.sha256; }
  bool operator==(const GovernanceKey& o) const = default;
};

struct GovernanceRevocation {
  pki::SerialBytes serial;
  pki::RevocationReason reason = pki::RevocationReason::kUnspecified;
};

struct GovernanceState {
  std::uint64_t version = 0;  // 0 in a source without one: `governance sign` chooses
  pki::TimePoint issued{};    // set by `governance sign`
  pki::TimePoint expires{};
  std::vector<std::string> denied_identities;  // sorted, each once
  std::vector<GovernanceKey> denied_keys;      // sorted, each once
  std::vector<GovernanceKey> approved_keys;    // sorted, each once, none also denied
  std::vector<GovernanceRevocation> revoked;   // sorted by serial, each once

  bool DeniesIdentity(std::string_view name) const;
  bool DeniesKey(std::string_view name, std::string_view sha256) const;
  bool ApprovesKey(std::string_view name, std::string_view sha256) const;
  // Every name the document mentions (for the install-time name check).
  std::vector<std::string> Names() const;
};

// The operators' STATE.toml. `file` names it in errors. Strict: unknown keys, wrong types,
// malformed names, keys, serials or reasons, duplicate entries and a key both approved and denied
// are Failure(kDataErr, "governance-invalid", "FILE: ...").
GovernanceState ParseGovernanceToml(std::string_view text, const std::string& file);

// `state` as STATE.toml (what `fleet deny-master` leaves beside the document it signs, for the
// operators' configuration management); ParseGovernanceToml reads it back to the same state.
std::string EncodeGovernanceToml(const GovernanceState& state);

// The canonical content (what is signed), and its strict decoding.
std::string EncodeGovernanceContent(const GovernanceState& state);
GovernanceState DecodeGovernanceContent(std::string_view content, const std::string& file);

// The signed document, PEM ("-----BEGIN CMS-----"): `key` (a token key) signs, `cert` is its
// certificate and is carried in the document.
std::string SignGovernance(const GovernanceState& state, X509* cert, EVP_PKEY* key);

struct GovernanceDocument {
  GovernanceState state;
  pki::X509Ptr signer;  // the certificate whose key signed it
  std::string sha256;   // SHA-256 of the document's bytes, lowercase hex: what `info` and `fleet status` compare
};

// Parses and verifies `pem`: one SignerInfo, whose certificate must be one of `trusted` (the
// governance_cert bundle, pinned: no chain is built), a signature that verifies, and content
// that decodes. With `trusted` empty the signature is checked against the certificate the
// document carries, and nothing says who may have signed it (`governance show` without --cert).
GovernanceDocument ReadGovernance(std::string_view pem, const std::vector<X509*>& trusted, const std::string& file);

// What a signer host does with its configured document: reads governance_file (a regular file
// only root and list_admin can change, as the lists: governance-unsafe otherwise) and
// governance_cert, and verifies it. Failure(kUnavailable, "governance-missing") when the file
// cannot be read.
GovernanceDocument LoadInstalledGovernance(const SignerConfig& config);

// Failure(kUnavailable, "governance-expired") when `now` is at or past the document's expiry.
void RequireUnexpired(const GovernanceDocument& document, pki::TimePoint now);

// governance-name: every name in the document must be one this host could issue to (its
// name_pattern, or a configured member).
void RequireMatchableNames(const GovernanceState& state, const SignerConfig& config);

// The high-water mark kept beside the installed document (governance_file + ".version"): the
// highest version ever installed on this host. 0 when there is none.
std::string GovernanceMarkPath(const SignerConfig& config);
std::uint64_t ReadGovernanceMark(const SignerConfig& config);

// `etcd-signerctl governance install`: verifies `pem` as the signer would, refuses a version at
// or below the high-water mark (or the installed document's), an expired document or an
// unmatchable name, then replaces governance_file atomically and raises the mark. A refusal
// leaves the installed document and the mark as they were. Returns the installed document.
GovernanceDocument InstallGovernance(const SignerConfig& config, std::string_view pem, pki::TimePoint now);

// The CRL a signer serves for the document (`crl` verb): its revoked serials, cRLNumber = the
// document's version, thisUpdate = its issue time, nextUpdate = its expiry, so that every host's
// CRL for one version lists the same serials with the same number. Unsigned.
pki::CrlFields GovernanceCrlFields(const GovernanceState& state);

}  // namespace signer
