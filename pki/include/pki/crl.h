// SPDX-License-Identifier: Apache-2.0
// X.509 v2 certificate revocation lists (RFC 5280 §5): the serials and reasons operators type,
// the CRL this project builds for `etcd-hsm crl`, and reading back a CRL it made earlier.
//
// What etcd does with the result (pkg/transport/listener_tls.go, checkCRL, 3.4 and 3.5): on every
// new TLS connection it re-reads --client-crl-file, parses only its first PEM block (Go's
// x509.ParseCRL) and refuses the connection if the serial number of any certificate the client
// sent (leaf and intermediates) is listed. It checks neither the CRL's issuer nor its signature nor
// its dates. Everything here that goes beyond serials exists for the other readers (openssl,
// audit).
#pragma once

#include <openssl/x509.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pki/certificate_profile.h"
#include "pki/openssl.h"

namespace pki {

using X509CrlPtr = std::unique_ptr<X509_CRL, OpenSslDeleter<X509_CRL_free>>;
using X509RevokedPtr = std::unique_ptr<X509_REVOKED, OpenSslDeleter<X509_REVOKED_free>>;
using Asn1EnumeratedPtr = std::unique_ptr<ASN1_ENUMERATED, OpenSslDeleter<ASN1_ENUMERATED_free>>;

// A certificate serial number: big-endian magnitude, no leading zero bytes, 1..20 octets.
using SerialBytes = std::vector<unsigned char>;

// Parses a serial as `openssl x509 -serial -noout` prints it after "serial=" ("4A1F…", upper or
// lower case), also colon-separated ("4a:1f:…", every group two digits). Leading zeros are
// dropped. Refused (Failure kUsage "bad-serial", naming the text): empty, a "serial=" prefix or
// any other character, stray or doubled colons, zero, more than 20 octets.
SerialBytes ParseSerial(std::string_view text);

// Uppercase hex without separators, as openssl prints it ("serial=" form).
std::string SerialText(const SerialBytes& serial);

// The reason codes of RFC 5280 §5.3.1 an operator of this CA can mean. certificateHold and
// removeFromCRL are not offered: a hold is undone by removing the entry, and entries are never
// removed (an undone revocation is how a stolen key comes back).
enum class RevocationReason : int {
  kUnspecified = 0,
  kKeyCompromise = 1,
  kCaCompromise = 2,
  kAffiliationChanged = 3,
  kSuperseded = 4,
  kCessationOfOperation = 5,
  kPrivilegeWithdrawn = 9,
};

// "unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
// "cessationOfOperation", "privilegeWithdrawn" (RFC 5280's names; case does not matter). Anything
// else is Failure(kUsage, "bad-reason") listing the names.
RevocationReason ParseReason(std::string_view text);
std::string ReasonName(RevocationReason reason);

// One line of a revoke file (or one --revoke) before it becomes an entry.
struct RevocationRequest {
  SerialBytes serial;
  std::optional<RevocationReason> reason;  // none: the command's --reason
};

// A revoke file: one "SERIAL [REASON]" per line, separated by spaces or tabs; blank lines and
// lines starting with '#' are ignored; at most 100,000 lines. A malformed line is
// Failure(kDataErr, "bad-revoke-file", "line N: …"). A serial listed twice with different reasons
// is refused the same way (which one was meant?); listed twice alike, once.
std::vector<RevocationRequest> ParseRevocationList(std::string_view text);

struct CrlEntry {
  SerialBytes serial;
  RevocationReason reason = RevocationReason::kUnspecified;
  TimePoint revoked_at;
};

struct CrlFields {
  std::vector<CrlEntry> entries;
  std::uint64_t number = 0;  // cRLNumber (RFC 5280 §5.2.3)
  TimePoint this_update;
  TimePoint next_update;
};

// v2 CRL: issuer = the issuer certificate's subject, thisUpdate/nextUpdate, the entries sorted by
// serial (each with its revocationDate and, unless unspecified, a reasonCode — RFC 5280 says
// unspecified SHOULD be absent), the extensions authorityKeyIdentifier (keyid = the issuer's
// SKI) and cRLNumber. Unsigned.
X509CrlPtr BuildCrl(const CrlFields& fields, X509* issuer);

// Signs with SHA-256 using `key` (a token key: the token computes the signature).
void SignCrl(X509_CRL* crl, EVP_PKEY* key);

std::string ToPem(X509_CRL* crl);

// Exactly one "X509 CRL" PEM block and nothing else but whitespace (a file that etcd would read
// the same way). Failure(kDataErr, "bad-crl") otherwise.
X509CrlPtr ParseCrlPem(const std::string& text, const std::string& what);

// The cRLNumber extension; nullopt when absent; Failure(kDataErr, "bad-crl") when it does not fit
// in 64 bits or does not decode.
std::optional<std::uint64_t> CrlNumber(X509_CRL* crl);

// The entries of a CRL, in its order.
std::vector<CrlEntry> CrlEntries(X509_CRL* crl);

}  // namespace pki
