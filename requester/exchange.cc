// SPDX-License-Identifier: Apache-2.0
#include "requester/exchange.h"

#include <unistd.h>

#include <algorithm>
#include <exception>
#include <tuple>

#include "base/files.h"
#include "base/duration.h"
#include "base/text.h"
#include "requester/log_time.h"

namespace requester {
namespace {

using base::ExitCode;
using base::Failure;

bool Exists(const std::string& path) { return !path.empty() && ::access(path.c_str(), F_OK) == 0; }

}  // namespace

void Log(const RequesterEnv& env, const std::string& line) {
  std::string text = LogTimePrefix(env.log, env.now()) + "etcd-requester: " + line + "\n";
  std::fwrite(text.data(), 1, text.size(), env.log);
  std::fflush(env.log);
}

SshOptions SshOptionsFor(const RequesterConfig& c, const std::string& server) {
  SshOptions o;
  o.server = ParseServer(server);
  o.known_hosts = c.known_hosts;
  o.accept_new_host_key = c.accept_new_host_key;
  o.identity_file = c.ssh_key;
  o.module = c.module;
  o.pin = c.pin;
  o.connect_timeout = c.connect_timeout;
  o.io_timeout = c.io_timeout;
  return o;
}

// The signer's failure as the operator should see it: its exit code (when it is a sysexits code),
// its one stderr line (made printable: the bytes are the signer's, and a hostile or compromised one
// must not reach the operator's terminal as escape sequences) and its reason code, which decides
// whether the daemon may retry. The signer writes that line last; anything before it comes from
// sshd or the account's shell (e.g. "Could not chdir to home directory") and is dropped.
void SignerFailed(const ExecResult& r) {
  std::string line = r.err;
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  if (auto nl = line.find_last_of("\r\n"); nl != std::string::npos) line.erase(0, nl + 1);
  if (line.empty()) line = "the signer exited with status " + std::to_string(r.exit_status) + " and said nothing";
  int code = r.exit_status;
  bool sysexit = code == 64 || code == 65 || code == 69 || code == 70 || code == 75 || code == 77 || code == 78;
  throw SignerRefusal(sysexit ? static_cast<ExitCode>(code) : ExitCode::kUnavailable, ParseSignerReason(line),
                      base::Printable(line, kMaxSignerLine));
}

std::vector<pki::X509Ptr> FetchBundle(SshClient& ssh) {
  ExecResult r = ssh.Exec("ca", "");
  if (r.exit_status != 0) SignerFailed(r);
  return pki::ParseCertificatesPem(r.out, "the signer's CA bundle");
}

namespace {

std::string Join(const std::vector<std::string>& items, const std::string& sep) {
  std::string text;
  for (const auto& item : items) text += (text.empty() ? "" : sep) + item;
  return text;
}

std::string Fingerprints(const std::vector<pki::X509Ptr>& certs) {
  std::string text;
  for (const auto& c : certs) text += (text.empty() ? "" : ", ") + pki::CertificateSha256(c.get());
  return text.empty() ? "none" : text;
}

}  // namespace

std::vector<pki::X509Ptr> PinnedRoots(std::vector<pki::X509Ptr> fetched, const std::string& sha256,
                                      const std::string& who) {
  std::vector<pki::X509Ptr> pinned;
  for (auto& c : fetched) {
    if (pki::CertificateSha256(c.get()) == sha256) pinned.push_back(std::move(c));
  }
  if (pinned.empty()) {
    throw Failure(ExitCode::kDataErr, "ca-mismatch",
                  who + " sent no root with the pinned SHA-256 " + sha256 + " (it sent " + Fingerprints(fetched) +
                      "); nothing was stored");
  }
  pinned.resize(1);
  return pinned;
}

std::vector<pki::X509Ptr> TrustAnchors(const RequesterConfig& c, SshClient& ssh, std::string* fetched) {
  fetched->clear();
  if (c.ca_bundle.empty()) {
    throw Failure(ExitCode::kConfig, "no-trust-anchor",
                  "ca_bundle is required: the operator installs the etcd root there (or pins its SHA-256 in "
                  "ca_sha256); no certificate is accepted without it");
  }
  if (Exists(c.ca_bundle)) {
    // Installed, the operator's file rules: ca_sha256 only checks a first fetch, and a rotated
    // root is installed with `etcd-requester ca --accept-sha256`.
    return pki::ReadCertificateBundleFile(c.ca_bundle);
  }
  if (c.ca_sha256.empty()) {
    throw Failure(ExitCode::kConfig, "no-trust-anchor",
                  c.ca_bundle + " does not exist: install the etcd root there, or set ca_sha256 to its "
                  "SHA-256 fingerprint so that the signer's copy can be checked on first contact");
  }
  // First contact with a pinned root: only the certificate with that fingerprint is taken, whatever
  // else the signer sends. It is stored with the first issued certificate (a refusal stores nothing).
  std::vector<pki::X509Ptr> anchors = PinnedRoots(FetchBundle(ssh), c.ca_sha256, "the signer");
  *fetched = pki::ToPem(anchors.front().get());
  return anchors;
}

std::string AuditHeadIn(const std::string& signer_stderr) {
  static constexpr std::string_view kTag = "etcd-signer: audit-head ";
  std::size_t at = 0;
  while (at < signer_stderr.size()) {
    std::size_t end = signer_stderr.find('\n', at);
    std::string_view line = std::string_view(signer_stderr).substr(at, end == std::string::npos ? std::string::npos : end - at);
    at = end == std::string::npos ? signer_stderr.size() : end + 1;
    if (line.substr(0, kTag.size()) != kTag) continue;
    std::string_view head = line.substr(kTag.size());
    std::size_t colon = head.find(':');
    if (colon == 0 || colon == std::string_view::npos || colon > 19 || head.size() != colon + 65) return "";
    bool ok = std::all_of(head.begin(), head.begin() + static_cast<long>(colon), [](char ch) { return ch >= '0' && ch <= '9'; }) &&
              std::all_of(head.begin() + static_cast<long>(colon) + 1, head.end(),
                          [](char ch) { return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'); });
    return ok ? std::string(head) : "";
  }
  return "";
}

std::string KeepWitness(RequesterState& state, const std::string& server, const std::string& head,
                        const std::string& now) {
  if (head.empty()) return "";
  auto seq = [](const std::string& h) { return std::stoull(h.substr(0, h.find(':'))); };
  auto it = state.signer_witness.find(server);
  if (it != state.signer_witness.end() && !it->second.head.empty()) {
    try {
      if (seq(head) <= seq(it->second.head)) {
        it->second.warning = "at " + now + " its audit head went back to " + head + " from " + it->second.head +
                             " (received " + it->second.time + "): its log was cut or replaced";
        return "signer " + server + ": " + it->second.warning;
      }
    } catch (const std::exception&) {
      // A damaged witness is replaced.
    }
  }
  SignerWitness& w = state.signer_witness[server];
  w.head = head;
  w.time = now;
  return "";
}

std::string RequestWords(const RequesterConfig& c, const std::string& verb) {
  std::string command = verb;
  if (c.lifetime.count() > 0) command += " --lifetime " + std::to_string(c.lifetime.count());
  // No --profile for etcd-client: masters and signers before #26 speak the same request.
  if (c.profile != pki::LeafProfile::kClient) command += std::string(" --profile ") + pki::ProfileName(c.profile);
  // The body then carries TPM2_Certify evidence after the CSR (#27).
  if (c.attestation) command += " --attested";
  return command;
}

pki::IssuedCertificate SignOver(SshClient& ssh, const RequesterConfig& c, const RequesterEnv& env,
                                const std::string& body, EVP_PKEY* public_key, const std::string& common_name,
                                std::string* fetched_bundle, std::string* audit_head) {
  std::string fetched;
  std::vector<pki::X509Ptr> anchors = TrustAnchors(c, ssh, &fetched);
  ExecResult r = ssh.Exec(RequestWords(c, "sign"), body);
  if (r.exit_status != 0) SignerFailed(r);
  pki::IssuedCertificateExpectations want;
  want.public_key = public_key;
  want.common_name = common_name;
  want.profile = c.profile;
  for (auto& a : anchors) want.trust_anchors.push_back(a.get());
  want.now = env.now();
  want.skew_tolerance = c.skew_tolerance;
  pki::IssuedCertificate issued = pki::VerifyIssuedCertificate(r.out, want);
  if (audit_head != nullptr) *audit_head = AuditHeadIn(r.err);
  if (fetched_bundle != nullptr) {
    *fetched_bundle = std::move(fetched);
  } else if (!fetched.empty()) {
    base::AtomicFileWriter(c.ca_bundle, 0644).Write(fetched);
    Log(env, "stored the pinned root (SHA-256 " + c.ca_sha256 + ") in " + c.ca_bundle);
  }
  return issued;
}

bool IsSignerPinFailure(const Failure& f) {
  return dynamic_cast<const SignerRefusal*>(&f) != nullptr && IsPinFailure(f);
}

bool IsLocalPinFailure(const Failure& f) {
  return dynamic_cast<const SignerRefusal*>(&f) == nullptr && IsPinFailure(f);
}

bool IsSignerRefusal(const Failure& f) {
  if (dynamic_cast<const SignerRefusal*>(&f) == nullptr) return false;
  return IsPinFailure(f) || f.code() == ExitCode::kUsage || f.code() == ExitCode::kDataErr ||
         f.code() == ExitCode::kNoPerm;
}

std::optional<TimePoint> PinBackoffUntil(const RequesterState& state, const std::string& server) {
  auto it = state.signer_pin_backoff.find(server);
  if (it == state.signer_pin_backoff.end()) return std::nullopt;
  try {
    return base::ParseRfc3339(it->second.until);
  } catch (const Failure&) {
    return std::nullopt;  // a damaged entry must not keep a signer out for good
  }
}

namespace {

// A signer whose token refused its PIN is not asked again for an hour, then 2, 4, ... at most a
// day: every request we send makes it try its PIN once more, and its token locks after a few.
void StartPinBackoff(RequesterState& state, const std::string& server, TimePoint now) {
  SignerPinBackoff& b = state.signer_pin_backoff[server];
  b.count = std::min(b.count + 1, 16);
  auto wait = std::min<std::chrono::hours>(std::chrono::hours(1) * (1 << std::min(b.count - 1, 5)), std::chrono::hours(24));
  b.until = base::FormatRfc3339(now + wait);
}

}  // namespace

std::string TrySigners(const RequesterConfig& c, const RequesterEnv& env, RequesterState& state,
                       const std::function<void(const std::string& server)>& attempt) {
  std::vector<std::string> order = ServerOrder(c);
  if (order.empty()) throw Failure(ExitCode::kConfig, "no-server", "no signer is configured (set server)");
  // A refusal speaks for the signer that made it (#24): one hostile or broken signer host must not
  // stop a master that another host would serve. The walk ends early only for our own PIN problem
  // (the same at every signer, and a retry would cost a try of our token's PIN).
  std::exception_ptr refusal;   // the last refusal (64, 65, 77 or a PIN problem) from a reachable signer
  std::string refused_by;
  std::exception_ptr failure;   // the last failure of any other kind
  std::string failed_at;
  std::vector<std::string> resting;  // signers in PIN back-off, not asked
  for (std::size_t i = 0; i < order.size(); ++i) {
    const std::string& server = order[i];
    if (auto until = PinBackoffUntil(state, server); until && env.now() < *until && !env.ignore_signer_backoff) {
      resting.push_back(server + " (until " + base::FormatRfc3339(*until) + ")");
      Log(env, "signer " + server + " is not asked until " + base::FormatRfc3339(*until) +
                   ": its token refused its PIN (" + state.signer_errors[server] + ")");
      continue;
    }
    try {
      attempt(server);
      state.signer_errors.erase(server);
      state.signer_pin_backoff.erase(server);
      return server;
    } catch (const Failure& f) {
      state.signer_errors[server] = f.reason() + ": " + f.what();
      if (IsLocalPinFailure(f)) throw;
      if (IsSignerPinFailure(f)) StartPinBackoff(state, server, env.now());
      if (IsSignerRefusal(f)) {
        refusal = std::current_exception();
        refused_by = server;
      } else {
        failure = std::current_exception();
        failed_at = server;
      }
      if (i + 1 < order.size()) {
        Log(env, "signer " + server + " failed (" + f.reason() + ": " + f.what() + "); trying " + order[i + 1]);
      }
    }
  }
  if (order.size() == 1) {
    if (refusal) std::rethrow_exception(refusal);
    if (failure) std::rethrow_exception(failure);
  }
  // Every signer was asked (or is resting): a refusal is the answer when a reachable signer gave
  // one; otherwise the last failure. Both keep their type: callers read the signer's reason.
  auto every = [&](const std::string& what, const std::string& server, const Failure& f) -> std::string {
    std::string text = "every signer " + what + "; the last, " + server + ", with: " + f.what();
    if (!resting.empty()) text += "; in PIN back-off: " + Join(resting, ", ");
    return text;
  };
  for (auto [ptr, server, what] : {std::tuple{refusal, refused_by, "refused or failed"},
                                   std::tuple{failure, failed_at, "failed"}}) {
    if (!ptr) continue;
    try {
      std::rethrow_exception(ptr);
    } catch (const SignerRefusal& r) {
      throw SignerRefusal(r.code(), r.signer_reason(), every(what, server, r));
    } catch (const Failure& f) {
      throw Failure(f.code(), f.reason(), every(what, server, f));
    }
  }
  throw Failure(ExitCode::kUnavailable, "signer-pin-backoff",
                "every signer is in back-off after its token refused its PIN: " + Join(resting, ", ") +
                    "; fix the signer's PIN, then `etcd-requester renew --force` asks again at once");
}

std::string ParseSignerReason(std::string_view line) {
  constexpr std::string_view kPrefix = "etcd-signer: ";
  if (line.substr(0, kPrefix.size()) != kPrefix) return "";
  std::string_view rest = line.substr(kPrefix.size());
  std::size_t n = 0;
  while (n < rest.size() && n <= 40 &&
         ((rest[n] >= 'a' && rest[n] <= 'z') || (rest[n] >= '0' && rest[n] <= '9') || rest[n] == '-')) {
    ++n;
  }
  if (n == 0 || n > 40 || rest.substr(n, 2) != ": ") return "";
  return std::string(rest.substr(0, n));
}

bool IsPinFailure(const Failure& f) {
  // A token that refused a PIN (pin-incorrect, pin-locked, ...), not a PIN *file* or variable that
  // cannot be read: those are configuration errors (78) that cost no lockout tries, and on a signer
  // they are that signer's problem, which the next signer may not have (#12).
  auto pin = [](const std::string& reason) {
    return reason.rfind("pin-", 0) == 0 && reason != "pin-file" && reason != "pin-file-permissions" &&
           reason != "pin-env";
  };
  if (pin(f.reason())) return true;
  auto* refusal = dynamic_cast<const SignerRefusal*>(&f);
  return refusal != nullptr && pin(refusal->signer_reason());
}

}  // namespace requester
