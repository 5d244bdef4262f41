// Where the requester's private key lives: a PKCS#11 token (TPM via tpm2-pkcs11, SoftHSM) or a
// PKCS#8 PEM file (0600) for clients that need a file. The key is made once, when missing, and
// reused for every renewal.
#pragma once

#include <memory>
#include <string>

#include "pki/openssl.h"
#include "requester/config.h"

namespace requester {

class KeyStore {
 public:
  virtual ~KeyStore() = default;
  // Opens the key; when `create` is true and there is none, generates EC P-256 first.
  // Returns true if a new key was generated.
  virtual bool Open(bool create) = 0;
  // Valid after Open: the private key (may sign inside a token) and its public half.
  virtual EVP_PKEY* private_key() = 0;
  virtual EVP_PKEY* public_key() = 0;
  virtual std::string Describe() const = 0;
};

// Makes the store the config names (key_file or key URI).
std::unique_ptr<KeyStore> MakeKeyStore(const RequesterConfig& config);

// File store helpers, public for tests: refuses a key file readable by group/others, a symlink,
// or a directory writable by others without the sticky bit.
void CheckKeyFileSafety(const std::string& path);

}  // namespace requester
