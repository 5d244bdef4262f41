// SPDX-License-Identifier: Apache-2.0
// One signer exchange over SSH, and the walk over this master's signers with failover (#12). What
// `request`, `renew`, `ca`, `diagnose` and the certmonger helper share.
#pragma once

#include <functional>
#include <optional>
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

// Of the certificates a signer sent, the one whose SHA-256 (pki::CertificateSha256) is `sha256`,
// alone: whatever else it sent is not trusted. Failure(kDataErr, "ca-mismatch") naming what was
// sent when none matches. `who` names the source in that message.
std::vector<pki::X509Ptr> PinnedRoots(std::vector<pki::X509Ptr> fetched, const std::string& sha256,
                                      const std::string& who);

// The trust anchors for verifying an answer (#24: never taken on first use, never absent): the
// operator's config.ca_bundle; when that file does not exist yet and config.ca_sha256 pins the
// root, the signer's bundle is fetched over this connection and only the pinned root taken (its
// PEM put in *fetched for storing with the first certificate). Failure(kConfig, "no-trust-anchor")
// without either; an installed bundle that lacks the pinned root is "ca-mismatch".
std::vector<pki::X509Ptr> TrustAnchors(const RequesterConfig& config, SshClient& ssh, std::string* fetched);

// `sign [--lifetime S]` with the base64 CSR `body`; the answer verified (leaf profile, chain,
// trust) for `public_key` and `common_name`. A bundle fetched on first contact goes to
// *fetched_bundle for the caller to store with the certificate; with nullptr it is stored at
// config.ca_bundle here, once the answer has been verified. A refusal never stores it.
// The signer's audit head after its record of this answer (`etcd-signer: audit-head SEQ:HASH` on
// its stderr, #24) goes to *audit_head when given: "" when it sent none or one not of that shape.
// The request line for `verb` ("sign", or "check" which asks what sign would decide, #28) with this
// configuration's lifetime and profile.
std::string RequestWords(const RequesterConfig& config, const std::string& verb);

pki::IssuedCertificate SignOver(SshClient& ssh, const RequesterConfig& config, const RequesterEnv& env,
                                const std::string& body, EVP_PKEY* public_key, const std::string& common_name,
                                std::string* fetched_bundle = nullptr, std::string* audit_head = nullptr);

// The `SEQ:HASH` of a line `etcd-signer: audit-head SEQ:HASH` in a signer's stderr (SEQ 1 to 19
// digits, HASH 64 lowercase hex digits), or "".
std::string AuditHeadIn(const std::string& signer_stderr);

// Keeps `head` as this master's witness of `server`'s audit log (#24): an operator compares the
// witnesses of all masters with the signer host's log (etcd-signerctl audit verify --head). A
// head not after the one kept before from the same server means that server's log went back
// (cut, replaced): the witness keeps the older head, says so, and the caller logs it.
// Returns the warning, or "".
std::string KeepWitness(RequesterState& state, const std::string& server, const std::string& head,
                        const std::string& now);

// The kinds of failure the walk over the signers tells apart (#24): a PIN refused by a signer's
// token (that signer rests, see TrySigners), a PIN refused by our own token (the walk stops: it is
// the same everywhere and must not be retried), and a refusal by a reachable signer (64, 65, 77,
// or its PIN problem), which speaks for that signer only.
bool IsSignerPinFailure(const base::Failure& failure);
bool IsLocalPinFailure(const base::Failure& failure);
bool IsSignerRefusal(const base::Failure& failure);

// When the signer `server` may be asked again after its token refused its PIN; nullopt if it is
// not resting.
std::optional<TimePoint> PinBackoffUntil(const RequesterState& state, const std::string& server);

// Calls `attempt(server)` for each signer in this master's order (ServerOrder) until one returns.
// Every failure moves on to the next signer with one log line, a refusal included; only our own
// PIN problem (IsLocalPinFailure) is rethrown at once. A signer that reported a PIN problem rests
// (state.signer_pin_backoff: 1 h, doubling to 24 h) and is skipped until then unless
// env.ignore_signer_backoff. Each signer's last error goes into state.signer_errors (cleared when
// it serves). Returns the server that served. When none served: the last refusal of a reachable
// signer if there was one, else the last failure (same type and reason, the message saying every
// signer was asked), else Failure(kUnavailable, "signer-pin-backoff") when all were resting.
std::string TrySigners(const RequesterConfig& config, const RequesterEnv& env, RequesterState& state,
                       const std::function<void(const std::string& server)>& attempt);

}  // namespace requester
