// SPDX-License-Identifier: Apache-2.0
// What kind of public key a certificate or CSR carries, in the words the policy uses.
#pragma once

#include <openssl/evp.h>

#include <string>

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

// The same public key, rebuilt from its numbers so that it encodes canonically (RFC 5480/3279):
// EC as id-ecPublicKey + namedCurve OID + uncompressed point, RSA as rsaEncryption + NULL
// parameters + (n, e). Whatever encoding the key arrived in (a compressed point, explicit
// parameters naming a known curve) does not survive. Only EC and RSA keys; throws
// Failure(kDataErr, "key-type") for others.
EvpPkeyPtr CanonicalPublicKey(EVP_PKEY* key);

}  // namespace pki
