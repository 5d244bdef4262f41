// SPDX-License-Identifier: Apache-2.0
// What the operators' tool `etcd-hsm` does with a CA key that lives in a token. Each function opens
// the module, uses the token and closes everything before returning.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "hsm/module.h"
#include "hsm/pin.h"
#include "hsm/session.h"

namespace hsm {

// How to reach a key: module, RFC 7512 URI, PIN source.
struct KeyAccess {
  std::string module;  // may be empty when the URI has module-path=
  std::string key_uri;
  PinSource pin;
};

// Module → token → login → key, held in an order whose destruction is safe (key first). The PIN
// is read from its source, used once and scrubbed; the URI must name a private key.
struct OpenKey {
  explicit OpenKey(const KeyAccess& access);
  Pkcs11Uri uri;
  Module module;
  Session session;
  TokenKey key;
};

// A SHA-256 signature over `message`, made in the token (throws token-sign-failed).
std::vector<unsigned char> SignSha256(const TokenKey& key, const unsigned char* message,
                                      std::size_t size);

// Self-signed CA certificate (CA:TRUE, pathlen 0, keyCertSign+cRLSign, SKI/AKI) for the token key,
// valid from now - 5 min for `days` days, signed by the token. Returns PEM.
std::string CreateCaCertificate(const KeyAccess& access, const std::string& subject, int days,
                                std::chrono::system_clock::time_point now);

// As CreateCaCertificate with pathLenConstraint `path_len` (1 for the root of a two-tier CA).
std::string CreateRootCaCertificate(const KeyAccess& access, const std::string& subject, int days, int path_len,
                                    std::chrono::system_clock::time_point now);

// The root ceremony (#12): the root key in its token signs an intermediate CA certificate for the
// key in `csr_pem` (made by CreateCaRequest on a signer host's token). Refuses (65 bad-csr) a CSR
// whose self-signature fails or that carries extensions or attributes, (77 key-type/key-size) a
// weak key, (65 root-path-length) a root made for a single tier, and (64 bad-days) validity past
// the root's. Returns PEM.
std::string SignIntermediate(const KeyAccess& root, const std::string& root_cert_path, const std::string& csr_pem,
                             int days, std::chrono::system_clock::time_point now);

// PKCS#10 request for the token key (for an offline root to sign). Returns PEM.
std::string CreateCaRequest(const KeyAccess& access, const std::string& subject);

// Concatenates CA certificates (current first, then previous ones) after checking each is a CA
// certificate and not expired at `now`. Returns the PEM bundle.
std::string BuildCaBundle(const std::vector<std::string>& files,
                          std::chrono::system_clock::time_point now);

struct CheckResult {
  bool ok;
  std::string name;
  std::string detail;
};

// The `check` verb: test signature verified with the certificate's key; certificate and token
// key match; the key is sensitive, never-extractable, sign-capable; the certificate is a CA and
// currently valid. Every check runs and reports, even after one fails (token errors throw).
// With `ca_chain_path` (the signer's ca_chain, #12) also: the chain starts with the CA certificate,
// each certificate issued the one before it, each is fit to stand in a chain
// (pki::ChainCaProfileDifference) and valid now; with `ca_bundle_path` (the roots), the chain
// leads to one of them.
std::vector<CheckResult> CheckCaKey(const KeyAccess& access, const std::string& ca_cert_path,
                                    std::chrono::system_clock::time_point now,
                                    const std::string& ca_chain_path = "",
                                    const std::string& ca_bundle_path = "");

}  // namespace hsm
