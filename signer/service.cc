// SPDX-License-Identifier: Apache-2.0
#include "signer/service.h"

#include <poll.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <nlohmann/json.hpp>

#include "base/deadline.h"
#include "base/files.h"
#include "base/program.h"
#include "hsm/pin.h"
#include "hsm/session.h"
#include "hsm/uri.h"
#include "pki/base64.h"
#include "pki/crl.h"
#include "signer/approval.h"
#include "signer/attestation.h"
#include "signer/audit.h"
#include "signer/governance.h"
#include "signer/issuance.h"
#include "signer/k8s_csr.h"
#include "signer/list_file.h"
#include "signer/policy.h"
#include "signer/request_line.h"

namespace signer {
namespace {

using base::ExitCode;
using base::Failure;

std::string CurrentUser() {
  struct passwd* pw = ::getpwuid(::geteuid());
  return pw != nullptr ? pw->pw_name : std::to_string(::geteuid());
}

pki::X509Ptr LoadCaCertificate(const std::string& path) {
  try {
    return pki::ReadCertificateFile(path);
  } catch (const Failure& f) {
    throw Failure(ExitCode::kUnavailable, "ca-cert-missing",
                  std::string("cannot use the CA certificate: ") + f.what());
  }
}

// The chain sent after each leaf (#12): the signing certificate itself, then each certificate that
// issued the one before it, up to and not including the root. "" for a single-tier CA.
std::string LoadCaChain(const SignerConfig& config, X509* ca_cert) {
  if (config.ca_chain.empty()) return "";
  std::vector<pki::X509Ptr> chain;
  try {
    chain = pki::ReadCertificateBundleFile(config.ca_chain);
  } catch (const Failure& f) {
    throw Failure(ExitCode::kUnavailable, "ca-chain-missing", std::string("cannot use the CA chain: ") + f.what());
  }
  if (chain.empty() || X509_cmp(chain.front().get(), ca_cert) != 0) {
    throw Failure(ExitCode::kUnavailable, "ca-chain-mismatch",
                  config.ca_chain + " must start with the signing certificate " + config.ca_cert);
  }
  std::string pem = pki::ToPem(chain.front().get());
  X509* child = ca_cert;
  for (std::size_t i = 1; i < chain.size(); ++i) {
    pki::X509Ptr& cert = chain[i];
    if (X509_check_issued(cert.get(), child) != X509_V_OK) {
      throw Failure(ExitCode::kUnavailable, "ca-chain-mismatch",
                    "in " + config.ca_chain + ", '" + pki::NameToString(X509_get_subject_name(cert.get())) +
                        "' did not issue '" + pki::NameToString(X509_get_subject_name(child)) + "'");
    }
    pem += pki::ToPem(cert.get());
    child = cert.get();
  }
  return pem;
}

void WriteAll(std::FILE* out, const std::string& text) {
  if (std::fwrite(text.data(), 1, text.size(), out) != text.size() || std::fflush(out) != 0) {
    throw Failure(ExitCode::kIoErr, "write-failed", "cannot write the answer to stdout");
  }
}

// What `ca` prints: the bundle clients trust (ca_bundle, or the signing certificate alone).
std::string ReadCaBundle(const SignerConfig& config) {
  const std::string& path = config.ca_bundle.empty() ? config.ca_cert : config.ca_bundle;
  std::string bundle;
  try {
    for (auto& cert : pki::ReadCertificateBundleFile(path)) bundle += pki::ToPem(cert.get());
  } catch (const Failure& f) {
    throw Failure(ExitCode::kUnavailable, "ca-cert-missing", std::string("cannot read the CA bundle: ") + f.what());
  }
  return bundle;
}

}  // namespace

std::string InfoJson(const SignerConfig& c, pki::TimePoint now) {
  nlohmann::ordered_json j;
  j["signer"] = "etcd-signer";
  j["version"] = ETCD_SIGNER_VERSION;
  j["protocol"] = 1;
  j["time"] = base::FormatRfc3339(now);
  j["profile"] = "etcd-client";
  j["profiles"] = {"etcd-client", "etcd-server", "etcd-peer"};
  j["name_pattern"] = c.name_pattern;
  j["signer_name"] = c.signer_name;
  j["attestation"] = AttestationModeName(c.attestation);  // #27: whether masters must prove TPM keys
  if (!c.identity.empty()) {
    j["identity"] = c.identity;
    // A member's names (#26): what its etcd-server and etcd-peer certificates carry.
    if (auto member = c.members.find(c.identity); member != c.members.end()) {
      j["member"] = {{"dns", member->second.dns}, {"ip", member->second.ip}};
    }
    // Whether this signer would issue to that name now (#28): `diagnose` shows a denied master in
    // red instead of all green. Answering issues nothing; the request is audited as `info`.
    if (!c.denied_identities.empty()) {
      try {
        j["identity_denied"] = ListContains(c.denied_identities, ListKind::kNames, c.identity, {}, ListOwners(c));
      } catch (const Failure& f) {
        j["identity_denied_error"] = f.reason();  // `sign` refuses every name then (bad-config)
      }
    }
  }
  // The fleet's governance document (#29): what `etcd-signerctl fleet status` compares across
  // hosts, and the warning before it expires. A document that does not verify is named by its
  // reason; `sign` refuses then.
  if (!c.governance_file.empty()) {
    try {
      GovernanceDocument doc = LoadInstalledGovernance(c);
      j["governance_version"] = doc.state.version;
      j["governance_sha256"] = doc.sha256;
      j["governance_expires"] = base::FormatRfc3339(doc.state.expires);
      j["governance_state"] = now >= doc.state.expires                          ? "expired"
                              : now + c.governance_warning >= doc.state.expires ? "expiring"
                                                                                : "ok";
      j["crl_number"] = doc.state.version;
    } catch (const Failure& f) {
      j["governance_state"] = f.reason();
    }
  }
  if (!c.audit_log.empty()) {
    if (std::string head = base::ReadStoredHead(c.audit_log + ".lock"); !head.empty()) j["audit_head"] = head;
  }
  j["lifetime_default"] = c.lifetime_default.count();
  j["lifetime_min"] = c.lifetime_min.count();
  j["lifetime_max"] = c.lifetime_max.count();
  j["backdate"] = c.backdate.count();
  j["max_input_bytes"] = kMaxInputBytes;
  // When the signing certificate and the chain above it stop working (the earliest notAfter):
  // what `diagnose` and monitoring warn about before leaves start getting clamped.
  try {
    pki::X509Ptr ca = pki::ReadCertificateFile(c.ca_cert);
    pki::TimePoint earliest = pki::NotAfter(ca.get());
    j["ca_not_after"] = base::FormatRfc3339(earliest);
    if (!c.ca_chain.empty()) {
      for (auto& cert : pki::ReadCertificateBundleFile(c.ca_chain)) earliest = std::min(earliest, pki::NotAfter(cert.get()));
      j["chain_not_after"] = base::FormatRfc3339(earliest);
    }
  } catch (const Failure&) {
    // `info` answers even when the CA files are unreadable; `sign` reports that.
  }
  return j.dump();
}

namespace {

// One signer process at a time uses the token. SoftHSM's file store is not safe while one process
// rewrites the token file (login does) and another loads it: under load a loader sees "no
// initialized token". The lock is a private file of the signer account (a lock that others can open
// is one they can hold), and the wait for it is bounded by what is left of the deadline.
base::PrivateLock LockToken(const SignerConfig& config, std::chrono::milliseconds wait) {
  try {
    return base::PrivateLock(config.lock_file, wait);
  } catch (const Failure& f) {
    if (f.reason() != "lock-busy") throw;
    throw Failure(ExitCode::kTempFail, "token-busy",
                  "the token is busy with other requests (waited " + std::to_string(wait.count()) + "ms for " +
                      config.lock_file + "); retry");
  }
}

// The token key that signs, refused unless it is the key of the CA certificate it signs for.
hsm::TokenKey FindCaKey(hsm::Session& session, const hsm::Pkcs11Uri& uri, const SignerConfig& config,
                        X509* ca_cert) {
  hsm::TokenKey key = session.FindPrivateKey(uri.object, uri.id);
  EVP_PKEY* ca_public = X509_get0_pubkey(ca_cert);
  if (ca_public == nullptr || !pki::SamePublicKey(ca_public, key.public_key.get())) {
    throw Failure(ExitCode::kUnavailable, "ca-key-mismatch",
                  "the CA certificate " + config.ca_cert + " does not belong to the token key " + config.key_uri);
  }
  return key;
}

// Runs `use` with the CA key in the token: lock → module → token → login (once) → key.
// Destruction runs in reverse, so the token-backed key is released before its session and module.
template <typename Use>
auto WithCaKey(const SignerConfig& config, X509* ca_cert, std::chrono::milliseconds lock_wait, Use use) {
  hsm::Pkcs11Uri uri = hsm::Pkcs11Uri::Parse(config.key_uri);
  base::PrivateLock token_lock = LockToken(config, lock_wait);
  hsm::Module module(hsm::ModulePath(config.module, &uri));
  hsm::Session session(module, hsm::SelectorFor(uri), false);
  session.LoginWith(config.pin, &uri);  // the PIN is scrubbed whatever the login does
  hsm::TokenKey key = FindCaKey(session, uri, config, ca_cert);
  return use(key.private_key.get());
}

// Signs a certificate with the token, which IssueCertificate checks against the CA's public key
// before returning it (the self-check).
pki::X509Ptr SignWithToken(const SignerConfig& config, const Approval& approval, X509* ca_cert,
                           const Validity& validity, const pki::Serial& serial,
                           std::chrono::milliseconds lock_wait) {
  return WithCaKey(config, ca_cert, lock_wait, [&](EVP_PKEY* key) {
    return IssueCertificate(approval, ca_cert, key, validity, serial);
  });
}

// The budget of the whole request, from the first byte read to the last printed.
std::chrono::milliseconds RequestBudget(const SignerConfig& config) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(config.deadline);
}

[[noreturn]] void YieldToWatchdog() {
  // The watchdog has decided how the request ends; it ends the process.
  for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}

// One request's audit record, and who ends the request: the main thread (an answer, or its
// failure) or the deadline watchdog. Decided once, under `mu_`, before any record is written or
// any byte is printed; the loser never writes or prints. `mu_` guards only this decision and the
// record until it is made: no I/O happens under it, so the watchdog can always decide in time.
class RequestRecord {
 public:
  RequestRecord(const SignerConfig& config, const Invocation& invocation, const Environment& env)
      : env_(env),
        // The audit lock wait is short: a record must not eat the budget of the request it records.
        audit_(config.audit_log, config.syslog, std::min(RequestBudget(config) / 2, std::chrono::milliseconds(5000))) {
    record_.verb = "unknown";
    record_.identity = config.identity;
    record_.user = CurrentUser();
    record_.ssh_peer = invocation.ssh_peer;
    record_.ssh_key_sha256 = invocation.ssh_key_sha256;
  }

  // What the request has shown so far (its verb, the CN and key it asked for).
  void Note(const std::function<void(AuditRecord&)>& change) {
    std::lock_guard lock(mu_);
    change(record_);
  }

  // The watchdog's end of the request: records and reports the deadline, unless the main thread
  // is answering already (false: let it finish).
  bool EndAtDeadline() {
    if (!Decide(Decider::kWatchdog)) return false;
    try {
      // The record is the watchdog's alone now.
      Finish("refused", static_cast<int>(ExitCode::kTempFail), "deadline", "the request did not finish in time");
      audit_.WriteEvenIfFileFails(record_);
    } catch (...) {
    }
    std::fputs("etcd-signer: deadline: the request did not finish in time (token or client too slow); retry\n",
               stderr);
    return true;
  }

  // The main thread's end by failure: the record (refused, error or pending) goes to syslog even
  // when the file refuses it. Returns the audit log's own failure, for the caller to rethrow after
  // the rest of its answer.
  std::exception_ptr FileFailure(const Failure& f) {
    if (!Decide(Decider::kMain)) YieldToWatchdog();
    bool ours = f.code() == ExitCode::kSoftware || f.reason() == "audit-failed";
    // A `check` (#28) decides nothing: its refusal says what `sign` would answer, and is neither a
    // refusal of an issuance nor a key waiting for approval in the report and `pending`.
    std::string outcome = ours                               ? "error"
                          : record_.verb == "check"          ? kCheckedOutcome
                          : f.reason() == "pending-approval" ? kPendingOutcome
                                                             : "refused";
    Finish(outcome, static_cast<int>(f.code()), f.reason(), f.what());
    try {
      audit_.WriteEvenIfFileFails(record_);
    } catch (...) {
      return std::current_exception();
    }
    return nullptr;
  }

  // Commits the main thread to answering: after this the deadline no longer ends the process, and
  // the record is on file before the first byte of the answer leaves. `fill` adds what only an
  // answer carries (the serial appears in a record only once this answer is decided).
  void CommitAnswer(const std::string& outcome, const std::function<void(AuditRecord&)>& fill = nullptr) {
    if (!Decide(Decider::kMain)) YieldToWatchdog();
    Finish(outcome, 0, "", "");
    if (fill) fill(record_);
    try {
      committed_head_ = audit_.Write(record_);
    } catch (const Failure& f) {
      // Not on file, so not delivered: FileFailure records that (with the serial that was withheld).
      throw Failure(f.code(), f.reason(), std::string(f.what()) + "; the answer was withheld");
    }
  }

  // The chain's head after the committed answer's record (seq 0 without an audit file).
  const ChainHead& committed_head() const { return committed_head_; }

 private:
  enum class Decider { kNone, kMain, kWatchdog };

  bool Decide(Decider who) {
    std::lock_guard lock(mu_);
    if (decided_ == Decider::kNone) decided_ = who;
    return decided_ == who;
  }

  void Finish(const std::string& outcome, int code, const std::string& reason, const std::string& message) {
    record_.time = base::FormatRfc3339(env_.now());
    record_.outcome = outcome;
    record_.exit_code = code;
    record_.reason = reason;
    record_.message = message;
  }

  const Environment& env_;
  AuditLog audit_;
  std::mutex mu_;
  Decider decided_ = Decider::kNone;
  AuditRecord record_;
  ChainHead committed_head_;
};

// What one request has learnt so far, handed from step to step. Each value is derived once, by
// the step named beside it, and only read after that.
struct RequestContext {
  const SignerConfig& config;
  const Environment& env;
  RequestRecord& record;
  RequestLine line;                  // ReadRequestLine
  pki::TimePoint now{};              // Answer: whole seconds (certificates carry no fractions)
  std::optional<K8sCsr> k8s_object;  // CheckPolicy, --format k8s: the client's object
  RequestFacts facts;                // CheckPolicy: the CN asked for, the key type, the key's SHA-256
  std::optional<pki::Bytes> evidence;  // ReadAttestedBody, --attested: TPM2_Certify evidence (#27)
  pki::Bytes csr_der;                  // CheckPolicy, --attested: the CSR's DER, which the evidence names

  bool k8s() const { return line.format == BodyFormat::kK8s; }
  void AtStage(const std::string& stage) const {
    if (env.at_stage) env.at_stage(stage);
  }
};

// --- The steps of a request, in the order they happen ------------------------------------------

// The request line (SSH_ORIGINAL_COMMAND): the verb, the body's format, the lifetime asked for.
void ReadRequestLine(RequestContext& rq, const Invocation& invocation) {
  rq.line = ParseRequestLine(invocation.request_text);
  rq.record.Note([&](AuditRecord& r) {
    r.verb = VerbName(rq.line.verb);
    if (rq.line.verb == Verb::kSign || rq.line.verb == Verb::kCheck) r.profile = pki::ProfileName(rq.line.profile);
  });
}

// `sign`'s input: the body on stdin, bounded in size and time.
std::string ReadBody(const RequestContext& rq) {
  return ReadInput(rq.env.input_fd, std::chrono::duration_cast<std::chrono::milliseconds>(rq.config.input_timeout));
}

void NoteFacts(RequestContext& rq) {
  rq.record.Note([&](AuditRecord& r) {
    r.common_name = rq.facts.common_name;
    r.key_type = rq.facts.key_type;
    r.public_key_sha256 = rq.facts.public_key_sha256;
    if (rq.facts.requested_lifetime) r.requested_lifetime = rq.facts.requested_lifetime->count();
  });
}

// The policy: the body decoded (the one place its bytes are parsed) and checked against the
// profile. What it learnt about the request is recorded whether the request passes or not.
Approval CheckPolicy(RequestContext& rq, const std::string& body) {
  Approval approval;
  try {
    pki::X509ReqPtr req = rq.k8s() ? DecodeK8sBody(body, rq.config, rq.k8s_object) : DecodeRequestBody(body);
    if (rq.line.attested) rq.csr_der = pki::ToDer(req.get());  // canonical: the bytes that were sent
    approval = ApplyPolicy(req.get(), rq.k8s() ? rq.k8s_object->expiration : rq.line.lifetime, rq.config, rq.facts,
                           rq.line.profile);
  } catch (...) {
    NoteFacts(rq);
    throw;
  }
  NoteFacts(rq);
  return approval;
}

// The installed governance document (#29), when configured: read on every issuing request (its
// install-time index when the bytes match, else verified in full; `crl` always in full, #30) and
// refused once expired (69 governance-expired: stale policy is noticed, not used).
std::optional<GovernanceDocument> CheckGovernance(const RequestContext& rq, bool in_full = false) {
  if (rq.config.governance_file.empty()) return std::nullopt;
  // Issuing requests take the install-time index of the verified document (#30); `crl` needs the
  // document itself (its revocations, its bytes).
  GovernanceDocument doc = in_full ? LoadInstalledGovernance(rq.config) : LoadGovernanceDecisions(rq.config);
  rq.record.Note([&](AuditRecord& r) { r.governance_version = doc.state.version; });
  RequireUnexpired(doc, rq.now);
  return doc;
}

// Deny and approval lists (#14) and the governance document (#29), before the token is touched.
// After the policy, so that a refusal's record names the key that asked (the CN is the bound
// identity by now).
void CheckApprovalLists(const RequestContext& rq) {
  std::optional<GovernanceDocument> governance = CheckGovernance(rq);
  ApprovalGate gate(rq.config, governance ? &governance->state : nullptr);
  gate.CheckIdentity(rq.facts.common_name);
  gate.CheckKey(rq.facts.common_name, rq.facts.public_key_sha256);
}

// `sign`/`check` --attested: the CSR, and the evidence after it (#27).
std::string ReadAttestedBody(RequestContext& rq) {
  AttestedBody parts = SplitAttestedBody(ReadBody(rq), rq.line.attested);
  rq.evidence = std::move(parts.evidence);
  return parts.csr;
}

// A master's key in its enrolled TPM (#27): etcd-client requests, after the lists, before the
// token. The record says whether the key was attested whenever attestation is not off.
void CheckKeyAttestation(const RequestContext& rq) {
  if (rq.line.profile != pki::LeafProfile::kClient || rq.config.attestation == AttestationMode::kOff) return;
  bool attested = false;
  try {
    attested = CheckAttestation(rq.config, rq.facts.common_name, rq.evidence, rq.csr_der, rq.facts.public_key_sha256);
  } catch (...) {
    rq.record.Note([](AuditRecord& r) { r.attested = false; });
    throw;
  }
  rq.record.Note([&](AuditRecord& r) { r.attested = attested; });
}

// The deny lists, then the key's attestation, then its approval: a denied master learns nothing
// about attestation, and an operator approves only a key already proven to be TPM-bound (#27).
void CheckListsAndAttestation(const RequestContext& rq) {
  std::optional<Failure> pending;
  try {
    CheckApprovalLists(rq);
  } catch (const Failure& f) {
    if (f.reason() != "pending-approval") throw;
    pending = f;
  }
  CheckKeyAttestation(rq);
  if (pending) throw *pending;
}

void NoteEnrollment(const RequestContext& rq, const Enrollment& e) {
  rq.record.Note([&](AuditRecord& r) {
    r.common_name = e.identity;
    r.ek_sha256 = e.ek_sha256;
  });
}

void RequireAttestationOn(const SignerConfig& config) {
  if (config.attestation == AttestationMode::kOff) {
    throw Failure(ExitCode::kUnavailable, "attestation-off",
                  "this signer does not attest keys (attestation = \"off\"): there is nothing to enroll");
  }
}

// The signing certificate and the chain sent after each leaf.
struct SigningCa {
  pki::X509Ptr cert;
  std::string chain_pem;
};

// The leaf never outlives the signing certificate (ComputeValidity clamps to it), so the chain
// above it, checked here, decides nothing more than what the client can verify.
SigningCa LoadSigningCa(const SignerConfig& config) {
  SigningCa ca;
  ca.cert = LoadCaCertificate(config.ca_cert);
  ca.chain_pem = LoadCaChain(config, ca.cert.get());
  return ca;
}

Validity ValidityFor(const RequestContext& rq, const SigningCa& ca, const Approval& approval) {
  return ComputeValidity(ca.cert.get(), rq.now, approval.lifetime, rq.config.backdate, rq.config.lifetime_min);
}

// Leaves the watchdog room to record a deadline if the token's lock never comes.
std::chrono::milliseconds TokenLockWait(const base::Deadline& deadline) {
  return std::max(deadline.remaining() - std::chrono::milliseconds(500), std::chrono::milliseconds(0));
}

// What `sign` prints: the leaf and the chain as PEM, or (--format k8s) the client's object with
// its status.
std::string EncodeAnswer(const RequestContext& rq, X509* cert, const std::string& chain_pem) {
  std::string pem = pki::ToPem(cert) + chain_pem;
  if (!rq.k8s() || !rq.k8s_object) return pem;
  std::string message = "issued by etcd-signer: serial " + pki::SerialHex(cert) + ", valid until " +
                        base::FormatRfc3339(pki::NotAfter(cert));
  return EncodeK8sIssued(*rq.k8s_object, pem, "etcd-client", message, rq.now);
}

// The chain's head after this answer's record, for the master to keep as a witness (#24): a log
// later cut or rewritten on this host no longer ends in a head some master holds. One stderr line,
// `etcd-signer: audit-head SEQ:HASH` (protocol.md §2); not with --format k8s, whose client reads
// one object and nothing else.
void WitnessHead(const RequestContext& rq) {
  const ChainHead& head = rq.record.committed_head();
  if (rq.k8s() || head.seq == 0) return;
  std::string line = "etcd-signer: audit-head " + FormatHead(head) + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
}

// The audit record of the issued certificate, on file before the certificate leaves.
void CommitIssued(RequestContext& rq, X509* cert) {
  rq.record.CommitAnswer("issued", [&](AuditRecord& r) {
    r.serial = pki::SerialHex(cert);
    r.not_before = base::FormatRfc3339(pki::NotBefore(cert));
    r.not_after = base::FormatRfc3339(pki::NotAfter(cert));
    r.granted_lifetime = std::chrono::duration_cast<base::Seconds>(pki::NotAfter(cert) - rq.now).count();
  });
}

int ServeInfo(RequestContext& rq) {
  std::string line = InfoJson(rq.config, rq.now) + "\n";
  rq.record.CommitAnswer("served");
  WriteAll(rq.env.output, line);
  return 0;
}

int ServeCaBundle(RequestContext& rq) {
  std::string bundle = ReadCaBundle(rq.config);
  rq.record.CommitAnswer("served");
  WriteAll(rq.env.output, bundle);
  return 0;
}

// check (#28): what `sign` would decide for this body — the policy, then the approval and deny
// lists — without the token, a serial or a certificate. The answer is one JSON line; a refusal
// is `sign`'s own exit code, reason and line. Its record says "checked", never "issued".
int ServeCheck(RequestContext& rq) {
  std::string body = ReadAttestedBody(rq);
  CheckPolicy(rq, body);
  CheckListsAndAttestation(rq);
  nlohmann::ordered_json j;
  j["would_issue"] = true;
  j["identity"] = rq.facts.common_name;
  j["profile"] = pki::ProfileName(rq.line.profile);
  j["public_key_sha256"] = rq.facts.public_key_sha256;
  std::string line = j.dump() + "\n";
  rq.record.CommitAnswer(kCheckedOutcome);
  WriteAll(rq.env.output, line);
  return 0;
}

// crl (#29): the governance document's revoked serials as a CRL signed with this host's CA key,
// cRLNumber = the document's version, then the chain that lets a member verify it. Every host's
// CRL for one version lists the same serials under the same number.
int ServeCrl(RequestContext& rq, const base::Deadline& deadline) {
  if (rq.config.governance_file.empty()) {
    throw Failure(ExitCode::kUnavailable, "no-governance",
                  "this signer has no governance_file: its revocations are not served (etcd-hsm crl makes a CRL by hand)");
  }
  std::optional<GovernanceDocument> doc = CheckGovernance(rq, /*in_full=*/true);
  SigningCa ca = LoadSigningCa(rq.config);
  pki::X509CrlPtr crl = pki::BuildCrl(GovernanceCrlFields(doc->state), ca.cert.get());
  WithCaKey(rq.config, ca.cert.get(), TokenLockWait(deadline), [&](EVP_PKEY* key) {
    pki::SignCrl(crl.get(), key);
    return 0;
  });
  // The self-check, as for certificates: what leaves verifies with the CA certificate.
  if (X509_CRL_verify(crl.get(), X509_get0_pubkey(ca.cert.get())) != 1) {
    pki::ThrowOpenSsl(ExitCode::kSoftware, "self-check-failed", "the token's CRL signature does not verify");
  }
  // Then the document itself: a member that pins the governance certificate checks that the CRL
  // lists exactly the document's serials under its version (a host cannot serve its own list).
  std::string answer =
      pki::ToPem(crl.get()) + (ca.chain_pem.empty() ? pki::ToPem(ca.cert.get()) : ca.chain_pem) + doc->pem;
  rq.record.CommitAnswer("served");
  WriteAll(rq.env.output, answer);
  return 0;
}

// sign: input → policy → approval/deny lists → CA → validity → token (signs, self-checks) →
// audit → output.
int ServeSign(RequestContext& rq, const base::Deadline& deadline) {
  std::string body = ReadAttestedBody(rq);
  Approval approval = CheckPolicy(rq, body);
  CheckListsAndAttestation(rq);
  SigningCa ca = LoadSigningCa(rq.config);
  Validity validity = ValidityFor(rq, ca, approval);
  pki::X509Ptr cert = SignWithToken(rq.config, approval, ca.cert.get(), validity, rq.env.serial(), TokenLockWait(deadline));
  std::string answer = EncodeAnswer(rq, cert.get(), ca.chain_pem);
  rq.AtStage("signed");
  CommitIssued(rq, cert.get());
  rq.AtStage("committed");
  WriteAll(rq.env.output, answer);
  WitnessHead(rq);
  return 0;
}

// enroll (#27): a master's EK certificate and AK checked, a secret sealed to them; the answer is
// the credential only that TPM can open.
int ServeEnroll(RequestContext& rq) {
  RequireAttestationOn(rq.config);
  std::string body = ReadBody(rq);
  Enrollment facts;
  std::string answer;
  try {
    answer = BeginEnrollment(rq.config, body, rq.now, &facts);
  } catch (...) {
    NoteEnrollment(rq, facts);
    throw;
  }
  NoteEnrollment(rq, facts);
  rq.record.CommitAnswer("challenged");
  WriteAll(rq.env.output, answer);
  return 0;
}

// activate (#27): the opened secret; the TPM is enrolled for the identity from now on.
int ServeActivate(RequestContext& rq) {
  RequireAttestationOn(rq.config);
  std::string body = ReadBody(rq);
  Enrollment facts;
  try {
    facts = FinishEnrollment(rq.config, body, rq.now, &facts);
  } catch (...) {
    NoteEnrollment(rq, facts);
    throw;
  }
  NoteEnrollment(rq, facts);
  nlohmann::ordered_json j;
  j["enrolled"] = true;
  j["identity"] = facts.identity;
  j["ek_sha256"] = facts.ek_sha256;
  j["ak_sha256"] = facts.ak_sha256;
  j["approved"] = facts.approved;  // false: an operator approves the new TPM first (approval = "new-keys")
  std::string line = j.dump() + "\n";
  rq.record.CommitAnswer("enrolled");
  WriteAll(rq.env.output, line);
  return 0;
}

// The request: its line, then the verb's own walk.
int Answer(RequestContext& rq, const Invocation& invocation, const std::optional<Failure>& config_error,
           const base::Deadline& deadline) {
  if (config_error) throw *config_error;
  ReadRequestLine(rq, invocation);
  ValidateConfig(rq.config);
  rq.now = std::chrono::floor<std::chrono::seconds>(rq.env.now());
  if (rq.line.verb == Verb::kInfo) return ServeInfo(rq);
  if (rq.line.verb == Verb::kCa) return ServeCaBundle(rq);
  if (rq.line.verb == Verb::kCheck) return ServeCheck(rq);
  if (rq.line.verb == Verb::kCrl) return ServeCrl(rq, deadline);
  if (rq.line.verb == Verb::kEnroll) return ServeEnroll(rq);
  if (rq.line.verb == Verb::kActivate) return ServeActivate(rq);
  return ServeSign(rq, deadline);
}

// A failed request: its record, and with --format k8s the client's object with a Denied/Failed
// condition on stdout, which goes out like the stderr line: also when the record cannot be filed.
void Refuse(const RequestContext& rq, const Failure& f) {
  std::exception_ptr audit_error = rq.record.FileFailure(f);
  if (rq.k8s() && f.reason() != "write-failed") {
    std::string refusal = EncodeK8sRefusal(rq.k8s_object ? &*rq.k8s_object : nullptr, f, rq.env.now());
    std::fwrite(refusal.data(), 1, refusal.size(), rq.env.output);
    std::fflush(rq.env.output);
  }
  if (audit_error) std::rethrow_exception(audit_error);
}

}  // namespace

Invocation InvocationFromEnvironment(const std::string& argv_words) {
  Invocation inv;
  const char* original = std::getenv("SSH_ORIGINAL_COMMAND");
  inv.request_text = original != nullptr ? original : argv_words;
  const char* connection = std::getenv("SSH_CONNECTION");
  if (connection != nullptr && *connection != '\0') {
    std::string c = connection;
    // "client_ip client_port server_ip server_port": keep the client's half.
    auto first = c.find(' ');
    auto second = first == std::string::npos ? std::string::npos : c.find(' ', first + 1);
    inv.ssh_peer = c.substr(0, second);
  } else {
    inv.ssh_peer = "local";
  }
  const char* auth_info = std::getenv("SSH_USER_AUTH");
  if (auth_info != nullptr && *auth_info != '\0') inv.ssh_key_sha256 = SshKeyFingerprint(auth_info);
  return inv;
}

std::string SshKeyFingerprint(const std::string& auth_info_path) {
  // sshd's ExposeAuthInfo file: one line per authentication method that succeeded, e.g.
  // "publickey ssh-ed25519 AAAAC3Nza...". The key is the last "publickey" line's blob.
  std::string text;
  try {
    text = base::ReadFileLimited(auth_info_path, 64 * 1024);
  } catch (const Failure&) {
    return "";
  }
  std::string blob64;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.rfind("publickey ", 0) != 0) continue;
    std::size_t type_end = line.find(' ', 10);
    if (type_end == std::string::npos) continue;
    std::size_t blob_end = line.find(' ', type_end + 1);
    blob64 = line.substr(type_end + 1, blob_end == std::string::npos ? std::string::npos : blob_end - type_end - 1);
  }
  auto blob = pki::DecodeBase64(blob64);
  if (blob64.empty() || !blob || blob->empty()) return "";
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(blob->data(), blob->size(), digest, &length, EVP_sha256(), nullptr) != 1) return "";
  std::string b64 = pki::EncodeBase64(digest, length);
  while (!b64.empty() && b64.back() == '=') b64.pop_back();  // OpenSSH prints it unpadded
  return "SHA256:" + b64;
}

std::string ReadInput(int fd, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string data;
  char buf[8192];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      throw Failure(ExitCode::kDataErr, "input-timeout",
                    "the CSR did not arrive completely within " +
                        std::to_string(timeout.count() / 1000) + "s (close stdin after sending)");
    }
    pollfd p{fd, POLLIN, 0};
    int rc = ::poll(&p, 1, static_cast<int>(left.count()));
    if (rc < 0) {
      if (errno == EINTR) continue;
      throw Failure(ExitCode::kIoErr, "read-failed", "cannot read stdin");
    }
    if (rc == 0) continue;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      throw Failure(ExitCode::kIoErr, "read-failed", "cannot read stdin");
    }
    if (n == 0) return data;
    if (data.size() + static_cast<std::size_t>(n) > kMaxInputBytes) {
      throw Failure(ExitCode::kDataErr, "oversize",
                    "the request is larger than " + std::to_string(kMaxInputBytes) + " bytes");
    }
    data.append(buf, static_cast<std::size_t>(n));
  }
}

int Serve(const SignerConfig& config, const Invocation& invocation, const Environment& env,
          const std::optional<base::Failure>& config_error) {
  RequestRecord record(config, invocation, env);
  base::Deadline deadline(RequestBudget(config), [&] { return record.EndAtDeadline(); });
  RequestContext rq{config, env, record};
  return base::RunProgram(
      "etcd-signer", [&] { return Answer(rq, invocation, config_error, deadline); },
      [&](const Failure& f) { Refuse(rq, f); });
}

}  // namespace signer
