// SPDX-License-Identifier: Apache-2.0
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

// True when an --ssh-key value names a token key ("pkcs11:...") rather than a file.
inline bool IsTokenKey(const std::string& ssh_key) { return ssh_key.rfind("pkcs11:", 0) == 0; }

// The SSH wire-format public key blob of `key` (RFC 5656 / RFC 4253), and its authorized_keys
// line ("ecdsa-sha2-nistp256 AAAA... comment").
std::string SshPublicKeyBlob(EVP_PKEY* key);
std::string AuthorizedKeysLine(EVP_PKEY* key, const std::string& comment);

}  // namespace requester
