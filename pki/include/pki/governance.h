// SPDX-License-Identifier: Apache-2.0
// The fleet's governance document (#29), its format only: what is signed and how it is read back,
// shared by the signer hosts (which obey it), the operators' tools (which sign, show and install
// it) and the etcd members (which check the CRL a signer host serves against it).
//
//   content   canonical JSON (EncodeGovernanceContent): fixed key order, entries sorted, what is
//             signed; decoding re-encodes and must give the same bytes, so one state has one
//             content and nothing unparsed rides along;
//   document  CMS SignedData (RFC 5652) in PEM with the content embedded, signed with a
//             governance key in its own PKCS#11 token, so `openssl cms -verify` checks it.
//
// Refusals: Failure(kDataErr) "governance-invalid" (malformed, unknown field, duplicate,
// contradiction, oversize) and "governance-signature" (does not verify, or not by a trusted
// certificate).
#pragma once

#include <openssl/x509.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pki/crl.h"
#include "pki/openssl.h"

namespace pki {

// Documents (and sources) larger than this are refused: 100,000 revoked serials are about 6 MB.
constexpr std::size_t kMaxGovernanceBytes = 16u << 20;

struct GovernanceKey {
  std::string identity;
  std::string sha256;  // canonical SPKI SHA-256, 64 lowercase hex digits (protocol.md §4)
  bool operator<(const GovernanceKey& o) const { return identity != o.identity ? identity < o.identity : sha256 < o.sha256; }
  bool operator==(const GovernanceKey& o) const = default;
};

struct GovernanceRevocation {
  SerialBytes serial;
  RevocationReason reason = RevocationReason::kUnspecified;
};

struct GovernanceState {
  std::uint64_t version = 0;  // 0 in a source without one: `governance sign` chooses
  TimePoint issued{};         // set by `governance sign`
  TimePoint expires{};
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

// Sorts every list, refuses duplicates and contradictions, and checks each entry's form; `file`
// names the source in Failure(kDataErr, "governance-invalid", "FILE: ...").
void NormalizeGovernanceState(GovernanceState& state, const std::string& file);

// The canonical content (what is signed), and its strict decoding.
std::string EncodeGovernanceContent(const GovernanceState& state);
GovernanceState DecodeGovernanceContent(std::string_view content, const std::string& file);

// The signed document, PEM ("-----BEGIN CMS-----"): `key` (a token key) signs, `cert` is its
// certificate and is carried in the document.
std::string SignGovernance(const GovernanceState& state, X509* cert, EVP_PKEY* key);

struct GovernanceDocument {
  GovernanceState state;
  X509Ptr signer;      // the certificate whose key signed it
  std::string sha256;  // SHA-256 of the document's bytes, lowercase hex: what `info` and `fleet status` compare
  std::string pem;     // the document as read
};

// Parses and verifies `pem`: one SignerInfo, whose certificate must be one of `trusted` (pinned:
// no chain is built), a signature that verifies, and content that decodes. With `trusted` empty
// the signature is checked against the certificate the document carries, and nothing says who
// may have signed it (`governance show` without --cert).
GovernanceDocument ReadGovernance(std::string_view pem, const std::vector<X509*>& trusted, const std::string& file);

// The CRL a signer serves for the document (`crl` verb): its revoked serials, cRLNumber = the
// document's version, thisUpdate = its issue time, nextUpdate = its expiry, so that every host's
// CRL for one version lists the same serials with the same number. Unsigned.
CrlFields GovernanceCrlFields(const GovernanceState& state);

}  // namespace pki
