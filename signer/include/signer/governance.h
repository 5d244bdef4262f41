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
#include "pki/governance.h"
#include "pki/openssl.h"
#include "signer/config.h"

namespace signer {

// The document's format (pki/governance.h), under the names the signer's code uses.
using pki::GovernanceDocument;
using pki::GovernanceKey;
using pki::GovernanceRevocation;
using pki::GovernanceState;
using pki::kMaxGovernanceBytes;
using pki::ReadGovernance;
using pki::SignGovernance;
using pki::EncodeGovernanceContent;
using pki::DecodeGovernanceContent;
using pki::GovernanceCrlFields;

// The operators' STATE.toml. `file` names it in errors. Strict: unknown keys, wrong types,
// malformed names, keys, serials or reasons, duplicate entries and a key both approved and denied
// are Failure(kDataErr, "governance-invalid", "FILE: ...").
GovernanceState ParseGovernanceToml(std::string_view text, const std::string& file);

// `state` as STATE.toml (what `fleet deny-master` leaves beside the document it signs, for the
// operators' configuration management); ParseGovernanceToml reads it back to the same state.
std::string EncodeGovernanceToml(const GovernanceState& state);





// What a signer host does with its configured document: reads governance_file (a regular file
// only root and list_admin can change, as the lists: governance-unsafe otherwise) and
// governance_cert, and verifies it. Failure(kUnavailable, "governance-missing") when the file
// cannot be read.
GovernanceDocument LoadInstalledGovernance(const SignerConfig& config);

// The installed document's decisions for an issuing request (#30: ≤ 1 ms). InstallGovernance,
// having verified the document in full, writes GOVERNANCE_FILE.index: its version, dates, denied
// names, denied and approved keys, and the SHA-256 of the document's bytes and of governance_cert's.
// A request reads the document and the certificates (same ownership rules), hashes them, and
// takes the index when both hashes match; otherwise (no index, another document, another
// certificate, an index not of its shape) it verifies in full (LoadInstalledGovernance). The index
// is trusted as the lists are: root's or list_admin's (governance-unsafe otherwise). The result
// has no revoked serials, no signer certificate and no pem: `crl` and `info` load in full.
GovernanceDocument LoadGovernanceDecisions(const SignerConfig& config);
std::string GovernanceIndexPath(const SignerConfig& config);

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



}  // namespace signer
