// SPDX-License-Identifier: Apache-2.0
// The certificates this project makes. Every field and extension comes from here, never from a CSR.
#pragma once

#include <array>
#include <chrono>
#include <string>

#include "pki/key.h"
#include "pki/openssl.h"

namespace pki {

using TimePoint = std::chrono::system_clock::time_point;
using Serial = std::array<unsigned char, 16>;

// 16 bytes from the OS CSPRNG (getrandom), top bit cleared so the INTEGER is positive and never
// zero. Nothing is stored, so uniqueness rests on these 127 bits of entropy.
Serial RandomSerial();

// Profile `etcd-client` (DESIGN §3): v3, subject CN=<name> only, basicConstraints CA:FALSE
// (critical), keyUsage digitalSignature (+keyEncipherment for RSA) (critical), extendedKeyUsage
// clientAuth, subjectKeyIdentifier, authorityKeyIdentifier = the CA's SKI. Unsigned.
struct ClientCertificateFields {
  std::string common_name;
  EVP_PKEY* subject_key = nullptr;
  Serial serial{};
  TimePoint not_before;
  TimePoint not_after;
  // The subject key's canonical form when the caller has computed it (the signer: once per
  // request); otherwise derived here from subject_key. The certificate carries exactly its bytes.
  const CanonicalKey* canonical_key = nullptr;
};
// The certificate carries the key as its canonical bytes, written as they are: no key object is
// attached, so X509_get0_pubkey on the result is null until the certificate is parsed again (as
// every reader does, from the PEM). Attaching one would run OpenSSL 3's encoder and decoder, the
// largest cost of an issuance before #30.
X509Ptr BuildClientCertificate(const ClientCertificateFields& fields, X509* ca_cert);

// The profile as a check, defined next to the builder so that what the signer builds and what the
// requester accepts are one definition. The signer runs it on every certificate it signed before
// it leaves; the requester on every answer before it stores it.
struct ClientProfileExpectations {
  std::string common_name;
  EVP_PKEY* public_key = nullptr;  // the subject key: the certificate must carry exactly it
  X509* issuer = nullptr;          // when known: validity nests in it, AKI = its SKI
  // The subject key's canonical form when the caller has it (the signer's self-check: the same
  // value the builder used, compared as bytes); otherwise derived here from public_key.
  const CanonicalKey* canonical_key = nullptr;
};
// "" when `cert` is exactly profile `etcd-client`; otherwise the first difference, as a sentence:
// v3; a positive serial of at most 20 octets; no unique IDs; the same signature algorithm inside
// and outside, ECDSA or RSA with SHA-256; subject exactly one attribute, CN = common_name (a
// UTF8String); the public key ours, canonically encoded; notBefore < notAfter (and inside the
// issuer's validity); exactly the extensions basicConstraints (critical, CA:FALSE, no pathlen),
// keyUsage (critical, digitalSignature + keyEncipherment for RSA keys, nothing else),
// extendedKeyUsage (clientAuth only), subjectKeyIdentifier (SHA-1 of the key),
// authorityKeyIdentifier (keyid only = the issuer's SKI), each once.
std::string ClientProfileDifference(X509* cert, const ClientProfileExpectations& want);

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
// extendedKeyUsage clientAuth (Go requires an intermediate's EKU, when present, to include the
// leaf's), SKI, AKI = the root's SKI. Nothing else from the request. Unsigned.
struct IntermediateCertificateFields {
  X509_NAME* subject = nullptr;
  EVP_PKEY* public_key = nullptr;
  Serial serial{};
  TimePoint not_before;
  TimePoint not_after;
};
X509Ptr BuildIntermediateCertificate(const IntermediateCertificateFields& fields, X509* issuer);

// "" when `cert` may stand between a leaf and a root in an answer's chain: v3, CA:TRUE
// (critical) with pathLenConstraint 0, keyUsage with keyCertSign (critical), extendedKeyUsage
// absent or containing clientAuth; otherwise the first difference.
std::string ChainCaProfileDifference(X509* cert);

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
