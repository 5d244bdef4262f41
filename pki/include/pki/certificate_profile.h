// SPDX-License-Identifier: Apache-2.0
// The certificates this project makes. Every field and extension comes from here, never from a CSR.
#pragma once

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pki/key.h"
#include "pki/openssl.h"

namespace pki {

using TimePoint = std::chrono::system_clock::time_point;
using Serial = std::array<unsigned char, 16>;

// 16 bytes from the OS CSPRNG (getrandom), top bit cleared so the INTEGER is positive and never
// zero. Nothing is stored, so uniqueness rests on these 127 bits of entropy.
Serial RandomSerial();

// The three leaf profiles (#26), each defined once, here: what the signer builds and what the
// requester accepts. Common to all: v3, subject CN=<name> only, basicConstraints CA:FALSE
// (critical), keyUsage digitalSignature (+keyEncipherment for RSA) (critical),
// subjectKeyIdentifier, authorityKeyIdentifier = the CA's SKI. Then:
//   etcd-client  masters:  extendedKeyUsage clientAuth; no subjectAltName.
//   etcd-server  members:  extendedKeyUsage serverAuth, clientAuth (etcd's gRPC gateway dials its
//                          own server with the server certificate when client certificate auth is
//                          on); subjectAltName = the member's configured DNS names and IPs.
//   etcd-peer    members:  extendedKeyUsage serverAuth, clientAuth (a member both accepts and
//                          dials peer connections); subjectAltName as etcd-server.
enum class LeafProfile { kClient, kServer, kPeer };
const char* ProfileName(LeafProfile profile);               // "etcd-client", ...
std::optional<LeafProfile> ParseProfile(std::string_view name);
bool IsMemberProfile(LeafProfile profile);                  // etcd-server or etcd-peer
// The OpenSSL purpose a path to the leaf is validated for (SSL client, or SSL server for members).
int ProfilePurpose(LeafProfile profile);

// The subjectAltName of a member certificate, in the order written: DNS names, then IPs (as text,
// IPv4 dotted or IPv6). Both empty for etcd-client.
struct SubjectAltNames {
  std::vector<std::string> dns;
  std::vector<std::string> ip;
  bool empty() const { return dns.empty() && ip.empty(); }
  friend bool operator==(const SubjectAltNames&, const SubjectAltNames&) = default;
};

// Unsigned.
struct LeafCertificateFields {
  std::string common_name;
  EVP_PKEY* subject_key = nullptr;
  Serial serial{};
  TimePoint not_before;
  TimePoint not_after;
  // The subject key's canonical form when the caller has computed it (the signer: once per
  // request); otherwise derived here from subject_key. The certificate carries exactly its bytes.
  const CanonicalKey* canonical_key = nullptr;
  LeafProfile profile = LeafProfile::kClient;
  SubjectAltNames names;  // member profiles: the names from the signer's configuration
};
// The certificate carries the key as its canonical bytes, written as they are: no key object is
// attached, so X509_get0_pubkey on the result is null until the certificate is parsed again (as
// every reader does, from the PEM). Attaching one would run OpenSSL 3's encoder and decoder, the
// largest cost of an issuance before #30.
X509Ptr BuildLeafCertificate(const LeafCertificateFields& fields, X509* ca_cert);

// The profile as a check, defined next to the builder so that what the signer builds and what the
// requester accepts are one definition. The signer runs it on every certificate it signed before
// it leaves; the requester on every answer before it stores it.
struct LeafProfileExpectations {
  std::string common_name;
  EVP_PKEY* public_key = nullptr;  // the subject key: the certificate must carry exactly it
  X509* issuer = nullptr;          // when known: validity nests in it, AKI = its SKI
  // The subject key's canonical form when the caller has it (the signer's self-check: the same
  // value the builder used, compared as bytes); otherwise derived here from public_key.
  const CanonicalKey* canonical_key = nullptr;
  LeafProfile profile = LeafProfile::kClient;
  // Member profiles: the exact names when the caller knows them (the signer); otherwise (the
  // requester, to whom the signer's configuration decides them) any non-empty list of DNS names
  // and IP addresses, each well-formed.
  std::optional<SubjectAltNames> names;
};
// "" when `cert` is exactly `want.profile`; otherwise the first difference, as a sentence:
// v3; a positive serial of at most 20 octets; no unique IDs; the same signature algorithm inside
// and outside, ECDSA or RSA with SHA-256; subject exactly one attribute, CN = common_name (a
// UTF8String); the public key ours, canonically encoded; notBefore < notAfter (and inside the
// issuer's validity); exactly the profile's extensions, each once: basicConstraints (critical,
// CA:FALSE, no pathlen), keyUsage (critical, digitalSignature + keyEncipherment for RSA keys,
// nothing else), extendedKeyUsage (exactly the profile's), subjectKeyIdentifier (SHA-1 of the
// key), authorityKeyIdentifier (keyid only = the issuer's SKI), and for members subjectAltName
// (DNS names and IP addresses only).
std::string LeafProfileDifference(X509* cert, const LeafProfileExpectations& want);

// The subjectAltName a certificate carries, when it is only DNS names and IP addresses; nullopt
// when absent or anything else is in it.
std::optional<SubjectAltNames> CarriedSubjectAltNames(X509* cert);

// A DNS name a member certificate may carry (LDH labels, lowercase, no wildcard, at most 253) and
// an IP address (IPv4 dotted quad or IPv6 text). Used by the signer's configuration check.
bool IsDnsName(std::string_view name);
bool IsIpAddress(std::string_view text);

// Self-signed CA for the etcd client CA (or a CA signed by `issuer`): CA:TRUE pathlen:0 (critical),
// keyUsage keyCertSign+cRLSign (critical), SKI, AKI. `subject` is "CN=etcd-ca" or
// "CN=etcd-ca,O=Example" (also "/CN=.../O=..."). Unsigned.
struct CaCertificateFields {
  std::string subject;
  EVP_PKEY* public_key = nullptr;
  Serial serial{};
  TimePoint not_before;
  TimePoint not_after;
};
X509Ptr BuildCaCertificate(const CaCertificateFields& fields);

// Self-signed root CA as BuildCaCertificate, but with `path_len` (0: single tier, leaves only;
// 1: a root that signs one level of intermediates).
X509Ptr BuildRootCaCertificate(const CaCertificateFields& fields, int path_len);

// Intermediate CA for one signer host (#12), issued by `issuer` (the root): the request's subject
// and key, CA:TRUE with pathLenConstraint 0 and keyUsage keyCertSign+cRLSign (both critical),
// extendedKeyUsage serverAuth, clientAuth (Go requires an intermediate's EKU, when present, to
// include the leaf's: clientAuth for masters, serverAuth too for members), SKI, AKI = the root's
// SKI. Nothing else from the request. Unsigned.
struct IntermediateCertificateFields {
  X509_NAME* subject = nullptr;
  EVP_PKEY* public_key = nullptr;
  Serial serial{};
  TimePoint not_before;
  TimePoint not_after;
};
X509Ptr BuildIntermediateCertificate(const IntermediateCertificateFields& fields, X509* issuer);

// "" when `cert` may stand between a leaf of `profile` and a root in an answer's chain: v3,
// CA:TRUE (critical) with pathLenConstraint 0, keyUsage with keyCertSign (critical),
// extendedKeyUsage absent or containing every usage of the profile; otherwise the first difference.
std::string ChainCaProfileDifference(X509* cert, LeafProfile profile = LeafProfile::kClient);

// Parses "CN=a,O=b" or "/CN=a/O=b" into a name. Throws Failure(kUsage, "bad-subject").
X509NamePtr ParseSubject(const std::string& subject);

// Signs `cert` with SHA-256 using `key` (a token key: the token computes the signature).
void SignCertificate(X509* cert, EVP_PKEY* key);
void SignRequest(X509_REQ* req, EVP_PKEY* key);

// ASN1_TIME <-> time_point.
TimePoint ToTimePoint(const ASN1_TIME* t);
TimePoint NotBefore(X509* cert);
TimePoint NotAfter(X509* cert);

// Serial number as lowercase hex without separators.
std::string SerialHex(X509* cert);

// The subject's CN (first one), or "" when absent.
std::string CommonName(X509_NAME* name);

// One-line RFC 2253 rendering of a name.
std::string NameToString(X509_NAME* name);

}  // namespace pki
