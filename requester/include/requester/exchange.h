// SPDX-License-Identifier: Apache-2.0
// One signer exchange over SSH, and the walk over this master's signers with failover (#12). What
// `request`, `renew`, `ca`, `diagnose` and the certmonger helper share.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <openssl/evp.h>

#include "base/failure.h"
#include "pki/verify.h"
#include "requester/requester.h"
#include "requester/ssh_client.h"

namespace requester {

// "etcd-requester: <line>" on env.log.
void Log(const RequesterEnv& env, const std::string& line);

// The SSH options for one entry of config.servers.
SshOptions SshOptionsFor(const RequesterConfig& config, const std::string& server);

// The signer's lines are a sentence; anything longer is cut (Printable marks the cut).
constexpr std::size_t kMaxSignerLine = 1024;

// Throws the signer's failure (SignerRefusal) for an exec that did not exit 0.
[[noreturn]] void SignerFailed(const ExecResult& result);

// `ca`: the signer's trust bundle, parsed.
std::vector<pki::X509Ptr> FetchBundle(SshClient& ssh);

// The trust anchors for verifying an answer: config.ca_bundle; on first contact (the file does
// not exist yet) the bundle is fetched over this host-key-verified connection and its PEM put in
// *fetched (nothing is stored here). Empty when no bundle is configured.
std::vector<pki::X509Ptr> TrustAnchors(const RequesterConfig& config, const RequesterEnv& env, SshClient& ssh,
                                       std::string* fetched);

// `sign [--lifetime S]` with the base64 CSR `body`; the answer verified (leaf profile, chain,
// trust) for `public_key` and `common_name`. A bundle fetched on first contact goes to
// *fetched_bundle for the caller to store with the certificate; with nullptr it is stored at
// config.ca_bundle here, once the answer has been verified. A refusal never stores it.
pki::IssuedCertificate SignOver(SshClient& ssh, const RequesterConfig& config, const RequesterEnv& env,
                                const std::string& body, EVP_PKEY* public_key, const std::string& common_name,
                                std::string* fetched_bundle = nullptr);

// Whether a failure met at one signer is worth trying the next one for: not a policy answer
// (64, 65, 77 from the signer: the same everywhere) and never a PIN refusal.
bool WorthTryingTheNextSigner(const base::Failure& failure);

// Calls `attempt(server)` for each signer in this master's order (ServerOrder) until one returns;
// a failure worth it (above) moves on with one log line, any other is rethrown. Each signer's last
// error goes into state.signer_errors (cleared when it serves). Returns the server that served.
// When every signer failed, throws the last failure, its message saying so.
std::string TrySigners(const RequesterConfig& config, const RequesterEnv& env, RequesterState& state,
                       const std::function<void(const std::string& server)>& attempt);

}  // namespace requester
