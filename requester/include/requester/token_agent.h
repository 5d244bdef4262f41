// SSH authentication with a key that never leaves its PKCS#11 token (a TPM through tpm2-pkcs11, or
// SoftHSM). libssh can load "pkcs11:" URIs only through OpenSSL's pkcs11 engine, which has been
// seen to fail with tpm2-pkcs11 keys; our hsm/ layer (libp11 used directly) works with both. So
// libssh is given an agent instead of a key: an ssh-agent that lives in this process, on one end
// of a socketpair (ssh_set_agent_socket), offers exactly one identity and signs with the token.
// It holds no private key material and is reachable by nothing but this process's libssh session.
#pragma once

#include <openssl/evp.h>

#include <optional>
#include <string>
#include <thread>

#include "hsm/module.h"
#include "hsm/pin.h"
#include "hsm/session.h"

namespace requester {

class TokenAgent {
 public:
  // `key` is the token-backed private key (its public half must be readable from it); it must
  // outlive the agent. EC P-256 / P-384 and RSA (rsa-sha2-256/512) are supported. Throws
  // Failure(kConfig, "ssh-key") for other key types.
  explicit TokenAgent(EVP_PKEY* key);
  ~TokenAgent();
  TokenAgent(const TokenAgent&) = delete;
  TokenAgent& operator=(const TokenAgent&) = delete;

  // The socket for ssh_set_agent_socket(). Owned by the agent.
  int client_fd() const { return client_fd_; }

 private:
  void Serve();
  EVP_PKEY* key_;
  std::string blob_;  // the public key in SSH wire format
  int client_fd_ = -1;
  int server_fd_ = -1;
  std::thread thread_;
};

// An SSH key held in a PKCS#11 token, opened for as long as this object lives: module, session,
// one login, the key. Open it only while no other hsm::Module of the same module is alive (one
// C_Initialize per process): the requester authenticates before it opens its certificate key.
class TokenSshKey {
 public:
  // `uri` names the key (token= and object=); `module` and `pin` as for the certificate key. With
  // `create`, a missing key is generated in the token (EC P-256, sensitive, never extractable,
  // sign-only) and `generated()` is true. Throws Failure like the certificate key store.
  TokenSshKey(const std::string& uri, const std::string& module, const hsm::PinSource& pin, bool create);
  ~TokenSshKey();
  EVP_PKEY* private_key() { return key_.private_key.get(); }
  EVP_PKEY* public_key() { return key_.public_key.get(); }
  bool generated() const { return generated_; }

 private:
  std::optional<hsm::Module> module_;
  std::optional<hsm::Session> session_;
  hsm::TokenKey key_;
  bool generated_ = false;
};

// True when an --ssh-key value names a token key ("pkcs11:...") rather than a file.
inline bool IsTokenKey(const std::string& ssh_key) { return ssh_key.rfind("pkcs11:", 0) == 0; }

// The SSH wire-format public key blob of `key` (RFC 5656 / RFC 4253), and its authorized_keys
// line ("ecdsa-sha2-nistp256 AAAA... comment").
std::string SshPublicKeyBlob(EVP_PKEY* key);
std::string AuthorizedKeysLine(EVP_PKEY* key, const std::string& comment);

}  // namespace requester
