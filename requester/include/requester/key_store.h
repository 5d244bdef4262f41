// SPDX-License-Identifier: Apache-2.0
// Where the requester's private key lives: a PKCS#11 token (TPM via tpm2-pkcs11, SoftHSM), a TPM
// key through ESAPI (tpm_key: the one that can be attested, #27) or a PKCS#8 PEM file (0600) for
// clients that need a file. The key is made once, when missing, and
// reused for every renewal.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "hsm/module.h"
#include "hsm/pin.h"
#include "hsm/session.h"
#include "pki/openssl.h"
#include "requester/config.h"

namespace requester {

class Tpm;

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
  // The TPM the key lives in, for attestation (#27): only a tpm_key store has one.
  virtual Tpm* tpm() { return nullptr; }
};

// A key in a PKCS#11 token, open for this object's lifetime: module, session, one login (a wrong
// PIN counts towards the token's lockout), the key the URI names. With `create`, a missing key is
// generated first (EC P-256, sensitive, never extractable, sign-only) and generated() is true.
// One per module at a time (one C_Initialize per process). Used for the certificate key and for
// an SSH key held in a token.
class TokenKeyHandle {
 public:
  TokenKeyHandle(const std::string& uri, const std::string& module, const hsm::PinSource& pin, bool create);
  ~TokenKeyHandle();
  TokenKeyHandle(const TokenKeyHandle&) = delete;
  TokenKeyHandle& operator=(const TokenKeyHandle&) = delete;
  EVP_PKEY* private_key() { return key_.private_key.get(); }
  EVP_PKEY* public_key() { return key_.public_key.get(); }
  bool generated() const { return generated_; }

 private:
  std::optional<hsm::Module> module_;
  std::optional<hsm::Session> session_;
  hsm::TokenKey key_;
  bool generated_ = false;
};

// Makes the store the config names (key_file or key URI).
std::unique_ptr<KeyStore> MakeKeyStore(const RequesterConfig& config);

// The file store's one way in, public for tests. Returns the PEM text of the key file at `path`
// (the caller scrubs it) after checking, on the descriptors it then reads through (no window
// between check and read):
//   - the directory is owned by the effective user or root and writable by neither group nor
//     others, sticky bit or not (whoever can write there can plant or swap the key);
//   - the file is not a symbolic link (O_NOFOLLOW), is a regular file owned by the effective user
//     and has no group/other permission bits.
// Each violation is Failure(kConfig, "key-file-unsafe") with a message naming the reason. A missing
// file is Failure(kNoInput, "key-missing") unless `created` is non-null: then an EC P-256 key is
// generated into a new 0600 file (O_EXCL|O_NOFOLLOW) first and *created is set to true.
std::string ReadPrivateKeyFile(const std::string& path, bool* created = nullptr);

// The same rules for any key file of ours (tpm_key's too, #27): a missing file with `created`
// non-null is made from make_key()'s text.
std::string ReadKeyFileWith(const std::string& path, bool* created, const std::function<std::string()>& make_key);

}  // namespace requester
