// SPDX-License-Identifier: Apache-2.0
// What kind of public key a certificate or CSR carries, in the words the policy uses.
#pragma once

#include <openssl/evp.h>

#include <string>
#include <vector>

#include "pki/openssl.h"

namespace pki {

struct KeyDescription {
  enum class Kind { kEc, kRsa, kOther };
  Kind kind = Kind::kOther;
  int bits = 0;            // RSA modulus size, EC field size
  std::string curve;       // "P-256", "P-384", or the OpenSSL curve name for others
  bool rsa_exponent_ok = false;  // RSA public exponent is odd and >= 65537
  std::string name;        // "EC P-256", "RSA 3072", "ED25519", ...
  bool ec_explicit_parameters = false;  // the key spelled its curve out instead of naming it
};

KeyDescription DescribeKey(EVP_PKEY* key);

// A public key in its one canonical form (RFC 5480 / RFC 3279), the one the certificate carries:
// EC as id-ecPublicKey + namedCurve OID + uncompressed point (the point checked to be on the
// curve), RSA as rsaEncryption + NULL + RSAPublicKey(n, e) with minimal INTEGERs. Whatever encoding
// the key arrived in (a compressed point, explicit parameters naming a known curve) does not
// survive. Computed once per request (CanonicalizeKey) and passed along: the builder writes
// `spki_der`'s fields into the certificate, the self-check compares bytes with it, and `sha256` is
// the key's fingerprint in every list, record and comparison (#24). Nobody re-derives it.
struct CanonicalKey {
  std::vector<unsigned char> spki_der;  // the SubjectPublicKeyInfo, DER
  std::string sha256;                   // SHA-256 of spki_der, 64 lowercase hex digits
  KeyDescription::Kind kind = KeyDescription::Kind::kOther;
  int curve_nid = 0;                    // EC: the namedCurve; RSA: 0
  std::vector<unsigned char> key_bits;  // the subjectPublicKey BIT STRING's content
};

// Built from the key's numbers (provider parameters), without OpenSSL 3's encoder/decoder setup
// (its per-call cost was most of an issuance, #30). Only EC and RSA keys; throws
// Failure(kDataErr, "key-type") for others and for points that are not on their curve.
CanonicalKey CanonicalizeKey(EVP_PKEY* key);

// Writes `key` into `pub` (a certificate's or request's X509_PUBKEY) as it is: no decoding, no
// re-encoding. Throws Failure(kSoftware, "internal") if OpenSSL cannot allocate.
void SetCanonicalKey(X509_PUBKEY* pub, const CanonicalKey& key);

// The same public key as an EVP_PKEY decoded from its canonical SubjectPublicKeyInfo (the point
// uncompressed, namedCurve). For callers that need the key object, not its bytes; slower than
// CanonicalizeKey (one decoder run).
EvpPkeyPtr CanonicalPublicKey(EVP_PKEY* key);

}  // namespace pki
