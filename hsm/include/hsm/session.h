// SPDX-License-Identifier: Apache-2.0
// A session with one token, logged in at most once. Move-only; closes its PKCS#11 session on
// destruction. Keys come back as OpenSSL EVP_PKEYs whose private operations run in the token.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hsm/module.h"
#include "hsm/pin.h"
#include "pki/openssl.h"

namespace hsm {

// Security-relevant attributes of a key object; nullopt when the token does not report one.
struct KeyAttributes {
  std::optional<bool> token, is_private, sensitive, extractable, always_sensitive,
      never_extractable, sign, decrypt, derive, unwrap;
};

struct ObjectInfo {
  std::string object_class;  // private-key, public-key, certificate, data, secret-key
  std::string label;
  std::vector<unsigned char> id;
  std::string key_type;  // "EC P-256", "RSA 3072" (keys only)
  KeyAttributes attributes;
};

// A private key in the token. `private_key` signs inside the token; `public_key` is the matching
// public key (from the public-key object with the same CKA_ID, or the private object itself).
struct TokenKey {
  std::string label;
  std::vector<unsigned char> id;
  KeyAttributes attributes;
  pki::EvpPkeyPtr private_key;
  pki::EvpPkeyPtr public_key;
};

enum class KeyType { kEcP256, kEcP384, kRsa2048, kRsa3072, kRsa4096 };
// "ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096"; throws Failure(kUsage) otherwise.
KeyType ParseKeyType(const std::string& name);

class Session {
 public:
  // Opens a session (read-write when asked: needed before login for key generation) on the one
  // token matching `selector`. Throws Failure(kUnavailable, "token-not-found") listing what is
  // there, or "token-ambiguous".
  Session(Module& module, const TokenSelector& selector, bool read_write);
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) = delete;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const TokenInfo& token() const;

  // Logs the user in, once. A wrong PIN throws "pin-incorrect" and is never retried.
  void Login(const std::string& pin);
  // Reads the PIN (ReadPin: the flags, else the URI's pin-source) and logs in with it; the PIN is
  // scrubbed from memory whatever the login does.
  void LoginWith(const PinSource& source, const Pkcs11Uri* uri = nullptr);

  // Objects visible in this session (private objects only after Login).
  std::vector<ObjectInfo> Objects();

  // Finds the one private key with this label and/or id. Throws Failure(kUnavailable,
  // "key-not-found" / "key-ambiguous").
  TokenKey FindPrivateKey(const std::optional<std::string>& label,
                          const std::optional<std::vector<unsigned char>>& id);

  // Generates a key pair inside the token: CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE,
  // CKA_EXTRACTABLE=false, sign-only, CKA_ID = first 20 bytes of SHA-256(SubjectPublicKeyInfo),
  // CKA_LABEL = label on both halves. Refuses a label that is already used ("key-exists").
  // Returns the new key's id.
  std::vector<unsigned char> GenerateKeyPair(KeyType type, const std::string& label);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Initializes the token in the first free slot with `label`, SO PIN and user PIN (the
// operators' "init-token"). Refuses if a token with this label exists ("token-exists").
// Returns the new token's serial.
std::string InitToken(Module& module, const std::string& label, const std::string& so_pin,
                      const std::string& user_pin);

}  // namespace hsm
