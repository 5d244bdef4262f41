// SPDX-License-Identifier: Apache-2.0
// The requester's verbs (DESIGN §5). Each returns normally on success and throws base::Failure
// otherwise; a failure never touches the stored key or certificate.
#pragma once

#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "base/failure.h"
#include "base/files.h"
#include "requester/config.h"
#include "requester/renewal.h"

namespace requester {

// The signer refused (its exit status was not 0). The reason stays "signer-refused" (what operators
// and scripts match on); the exit code is the signer's own when it is a sysexits code (else 69); the
// message is the signer's last stderr line, made printable with base::Printable (a hostile signer
// cannot put terminal escapes into our logs). `signer_reason()` is the reason code parsed from that
// line, e.g. "pin-incorrect", or empty when the line is not of the signer's form.
class SignerRefusal : public base::Failure {
 public:
  SignerRefusal(base::ExitCode code, std::string signer_reason, const std::string& message)
      : base::Failure(code, "signer-refused", message), signer_reason_(std::move(signer_reason)) {}
  const std::string& signer_reason() const noexcept { return signer_reason_; }

 private:
  std::string signer_reason_;
};

// The reason code of one etcd-signer stderr line "etcd-signer: <reason>: <sentence>", parsed
// strictly: the reason is 1-40 characters of [a-z0-9-] followed by ": ". Anything else yields "".
std::string ParseSignerReason(std::string_view line);

// True for a failure that must not be retried because it costs a PIN attempt: any "pin-*" reason
// but the unreadable-PIN-file/variable ones (pin-file, pin-file-permissions, pin-env), whether
// from this host's token or (through SignerRefusal) from the signer's. Tokens lock their
// user PIN after a few wrong logins, so the daemon stops instead of backing off.
bool IsPinFailure(const base::Failure& failure);

class KeyStore;

// What tests inject.
struct RequesterEnv {
  std::function<TimePoint()> now = [] { return std::chrono::system_clock::now(); };
  std::function<double()> uniform01 = SystemUniform01();
  base::AtomicFileWriter::FaultHook store_fault;  // crash simulation between fsync and rename
  std::FILE* out = stdout;
  std::FILE* log = stderr;
  // `run` with a forwarder (#18): the certificate key is open for the daemon's lifetime and shared
  // by the renewals and the forwarder's handshakes, one use at a time through `key_gate` (one
  // login, one session; a second load of the module would finalize the first).
  KeyStore* shared_key = nullptr;
  std::mutex* key_gate = nullptr;
  // `renew --force`: the operator asks now, signers resting after a PIN problem included.
  bool ignore_signer_backoff = false;
};

// The stored certificate and what it means now.
struct StoredCertificate {
  CertificateState state = CertificateState::kMissing;
  std::string detail;  // why unreadable, for messages
  std::string serial;
  std::string common_name;
  TimePoint not_before{};
  TimePoint not_after{};
  TimePoint renew_at{};
};
StoredCertificate InspectCertificate(const RequesterConfig& config, TimePoint now,
                                     const RenewalSchedule& schedule = {});

// A signer that reported a PIN problem is not asked until `until` (RFC 3339); `count` such
// reports in a row set the length (TrySigners).
struct SignerPinBackoff {
  std::string until;
  int count = 0;
};

// A signer's audit head as this master last saw it in an answer (#24).
struct SignerWitness {
  std::string head;     // SEQ:HASH
  std::string time;     // RFC 3339, when it was received
  std::string warning;  // set when a later answer's head went back (the log was cut or replaced)
};

// Persistent counters for `status` and monitoring (JSON next to the certificate).
struct RequesterState {
  std::string last_attempt;  // RFC 3339
  std::string last_success;
  int consecutive_failures = 0;
  std::string last_error;
  std::string last_signer_reason;                      // the signer's reason code of that error, e.g.
                                                       // "pending-approval" (#14); empty otherwise
  std::string served_by;                               // the signer of the last success (#12)
  std::map<std::string, std::string> signer_errors;    // each signer's last error, until it serves
  std::map<std::string, SignerPinBackoff> signer_pin_backoff;  // signers resting after a PIN problem
  std::map<std::string, SignerWitness> signer_witness;         // each signer's last audit head
  std::map<std::string, std::string> tpm_enrolled;             // signers this TPM enrolled with, when (#27)
};
RequesterState LoadState(const std::string& path);
void SaveState(const std::string& path, const RequesterState& state);

struct RequestOutcome {
  bool renewed = false;
  bool generated_key = false;
  std::string serial;
  TimePoint not_after{};
  std::string message;
};

// request: key if missing, CSR, send, verify, store, hook. A failure removes a key file this call
// made (not one made in a token, and not when the signer holds the key for approval:
// pending-approval), and a CA bundle fetched on first contact is stored only with the certificate.
RequestOutcome Request(const RequesterConfig& config, const RequesterEnv& env);

// One attempt of `request` (create_key) or a due renewal (a missing key is not made), recorded in
// the state file whether it succeeds or not. The daemon's step.
RequestOutcome Attempt(const RequesterConfig& config, const RequesterEnv& env, bool create_key);

// Runs config.post_renew_hook (no shell, a clean child: see hook.cc), waits up to 60 s; a failing
// hook is logged, never thrown.
void RunHook(const RequesterConfig& config, const RequesterEnv& env);
// The operator's program `argv` (no shell), as the hook runs: at most 60 s, then killed. True when
// it exited 0; otherwise what happened is logged, naming it `what`.
bool RunOperatorProgram(std::vector<std::string> argv, const RequesterEnv& env, const std::string& what);

// renew: like request, but only when due (or `force`), and never creates a key.
RequestOutcome Renew(const RequesterConfig& config, const RequesterEnv& env, bool force);

// ca: fetches the signer's CA bundle. Without config.ca_bundle it is printed. An installed bundle
// is never replaced by what a signer says (#24): it is compared, and a difference is reported with
// the old and new fingerprints (Failure(kDataErr, "ca-changed")). The root is stored only when the
// operator names its SHA-256: `accept_sha256` (the explicit rotation step, replacing the installed
// bundle) or config.ca_sha256 (first installation, when the file does not exist); only that one
// certificate is stored.
void FetchCa(const RequesterConfig& config, const RequesterEnv& env, const std::string& accept_sha256 = "");

// status: human text (aligned "key  value" rows; kHumanColour adds ANSI colours to the values that
// need attention: the certificate's state, failures, a pending approval), JSON, or Prometheus
// textfile format.
enum class StatusFormat { kHuman, kHumanColour, kJson, kPrometheus };
std::string RenderStatus(const RequesterConfig& config, TimePoint now, StatusFormat format);

// Colour only for a person at a terminal: `stream` is a TTY, NO_COLOR (no-color.org) is unset and
// TERM is set and not "dumb". Never in a pipe, a file or the journal.
bool WantsColour(std::FILE* stream);

// The `status` verb: prints RenderStatus(format) on env.out (kHuman becomes kHumanColour when
// WantsColour(env.out)); writes the Prometheus textfile to
// `metrics_file` only when it is non-empty (asked for with --prometheus; config.prometheus_file is
// the daemon's and is never written by `status`). Returns 0, or, when the asked-for file cannot be
// written, that failure's exit code after one line on env.log (the status is printed anyway).
int ShowStatus(const RequesterConfig& config, const RequesterEnv& env, StatusFormat format,
               const std::string& metrics_file);
// The same for every certificate of a host (#26: `status --config-dir`, one configuration per
// certificate): human text one block each, separated by a blank line; JSON an array of the
// objects; Prometheus one family per metric with every certificate's sample in it.
int ShowStatus(const std::vector<RequesterConfig>& configs, const RequesterEnv& env, StatusFormat format,
               const std::string& metrics_file);
std::string RenderStatuses(const std::vector<RequesterConfig>& configs, TimePoint now, StatusFormat format);

// Every *.toml in `dir`, in name order, loaded (LoadConfigFile) and checked offline
// (ValidateConfig without a signer). Failure(kConfig, "bad-config") when there is none.
std::vector<RequesterConfig> LoadConfigDirectory(const std::string& dir);

// "running as NAME, uid N": the account a permission was refused to (the unit's account is often
// not the one that made the files).
std::string RunningAs();
// `failure` with " (running as …)" appended when it is ours (not a signer's line) and says
// "Permission denied"; nullopt when it has nothing to add.
std::optional<base::Failure> WithRunningAs(const base::Failure& failure);

// crl (#29): a CRL a signer served (`crl` verb: the PEM CRL, then the chain of its signer),
// verified for etcd's --client-crl-file: its signer is a CA allowed to sign CRLs that chains to
// `anchors`, the signature verifies, it has a cRLNumber, it started (within `skew`) and has not
// ended. Failure(kDataErr, "bad-crl" | "untrusted-crl" | "stale-crl") otherwise.
struct VerifiedCrl {
  std::string pem;  // the CRL alone: what etcd's file holds
  std::uint64_t number = 0;
  std::size_t entries = 0;
  TimePoint this_update{}, next_update{};
};
// With `governance` (the governance_cert's certificates), the answer must also carry the signed
// governance document after the chain, verified with one of them, and the CRL must hold exactly
// its revoked serials under cRLNumber = its version: Failure(kDataErr, "crl-not-governed")
// otherwise. A signer host then cannot serve a list of its own (nor a number that freezes the
// members' file).
VerifiedCrl VerifyServedCrl(const std::string& answer, const std::vector<X509*>& anchors, TimePoint now,
                            std::chrono::seconds skew, const std::string& server,
                            const std::vector<X509*>& governance = {});

// Fetches the CRL from the first signer (in this master's order) that serves a valid one, and
// replaces crl_file atomically when its cRLNumber is above the one there ("unchanged" when equal;
// a lower one is Failure(kDataErr, "crl-rollback") and the file stays). Returns what was done.
std::string FetchCrl(const RequesterConfig& config, const RequesterEnv& env);

// diagnose: the runbook's checks, one line each; returns true when all pass.
bool Diagnose(const RequesterConfig& config, const RequesterEnv& env);

// run: the renewal daemon. `reload` re-reads the configuration on SIGHUP. Returns the exit code
// (0 on SIGTERM/SIGINT; the failure's code when it stops because our own token refused its PIN;
// never because of one signer's answer, see TrySigners).
int RunDaemon(RequesterConfig config, const std::function<RequesterConfig()>& reload,
              const RequesterEnv& env);

}  // namespace requester
