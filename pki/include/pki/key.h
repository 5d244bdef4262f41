// What kind of public key a certificate or CSR carries, in the words the policy uses.
#pragma once

#include <openssl/evp.h>

#include <string>

namespace pki {

struct KeyDescription {
  enum class Kind { kEc, kRsa, kOther };
  Kind kind = Kind::kOther;
  int bits = 0;            // RSA modulus size, EC field size
  std::string curve;       // "P-256", "P-384", or the OpenSSL curve name for others
  bool rsa_exponent_ok = false;  // RSA public exponent is odd and >= 65537
  std::string name;        // "EC P-256", "RSA 3072", "ED25519", ...
};

KeyDescription DescribeKey(EVP_PKEY* key);

}  // namespace pki
