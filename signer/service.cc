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
#include "signer/approval.h"
#include "signer/audit.h"
#include "signer/issuance.h"
#include "signer/k8s_csr.h"
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

std::string InfoJson(const SignerConfig& c, pki::TimePoint now) {
  nlohmann::ordered_json j;
  j["signer"] = "etcd-signer";
  j["version"] = ETCD_SIGNER_VERSION;
  j["protocol"] = 1;
  j["time"] = base::FormatRfc3339(now);
  j["profile"] = "etcd-client";
  j["name_pattern"] = c.name_pattern;
  j["signer_name"] = c.signer_name;
  if (!c.identity.empty()) j["identity"] = c.identity;
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

// What `sign` prints: the PEM as it is, or (--format k8s) the client's object with its status.
std::string EncodeAnswer(BodyFormat format, const std::optional<K8sCsr>& k8s_object, const std::string& pem,
                         X509* cert, pki::TimePoint now) {
  if (format != BodyFormat::kK8s || !k8s_object) return pem;
  std::string message = "issued by etcd-signer: serial " + pki::SerialHex(cert) + ", valid until " +
                        base::FormatRfc3339(pki::NotAfter(cert));
  return EncodeK8sIssued(*k8s_object, pem, "etcd-client", message, now);
}

// Signs with the token: module → token → login (once) → key → certificate. Destruction runs in
// reverse, so the token-backed key is released before its session and module.
pki::X509Ptr SignWithToken(const SignerConfig& config, const Approval& approval, X509* ca_cert,
                           const Validity& validity, const pki::Serial& serial,
                           std::chrono::milliseconds lock_wait) {
  hsm::Pkcs11Uri uri = hsm::Pkcs11Uri::Parse(config.key_uri);
  // One signer process at a time uses the token. SoftHSM's file store is not safe while one
  // process rewrites the token file (login does) and another loads it: under load a loader sees
  // "no initialized token". The lock is a private file of the signer account (a lock that others
  // can open is one they can hold), and the wait for it is bounded by what is left of the deadline.
  std::optional<base::PrivateLock> token_lock;
  try {
    token_lock.emplace(config.lock_file, lock_wait);
  } catch (const Failure& f) {
    if (f.reason() != "lock-busy") throw;
    throw Failure(ExitCode::kTempFail, "token-busy",
                  "the token is busy with other requests (waited " + std::to_string(lock_wait.count()) +
                      "ms for " + config.lock_file + "); retry");
  }
  hsm::Module module(hsm::ModulePath(config.module, &uri));
  hsm::Session session(module, hsm::SelectorFor(uri), false);
  {
    std::string pin = hsm::ReadPin(config.pin, &uri);
    try {
      session.Login(pin);
    } catch (...) {
      base::Scrub(pin);
      throw;
    }
    base::Scrub(pin);
  }
  hsm::TokenKey key = session.FindPrivateKey(uri.object, uri.id);
  EVP_PKEY* ca_public = X509_get0_pubkey(ca_cert);
  if (ca_public == nullptr || !pki::SamePublicKey(ca_public, key.public_key.get())) {
    throw Failure(ExitCode::kUnavailable, "ca-key-mismatch",
                  "the CA certificate " + config.ca_cert + " does not belong to the token key " +
                      config.key_uri);
  }
  return IssueCertificate(approval, ca_cert, key.private_key.get(), validity, serial);
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
  const auto budget = std::chrono::duration_cast<std::chrono::milliseconds>(config.deadline);
  // The audit lock wait is short: a record must not eat the budget of the request it records.
  AuditLog audit(config.audit_log, config.syslog, std::min(budget / 2, std::chrono::milliseconds(5000)));
  AuditRecord record;
  record.verb = "unknown";
  record.identity = config.identity;
  record.user = CurrentUser();
  record.ssh_peer = invocation.ssh_peer;
  record.ssh_key_sha256 = invocation.ssh_key_sha256;

  // Who decides how this request ends: the main thread (an answer, or its failure) or the deadline
  // watchdog. Decided once, under `mu`, before any record is written or any byte is printed; the
  // loser never writes or prints. `mu` guards only this decision and `record` until it is made:
  // no I/O happens under it, so the watchdog can always decide in time.
  enum class Decider { kNone, kMain, kWatchdog };
  std::mutex mu;
  Decider decided = Decider::kNone;
  auto decide = [&](Decider who) {
    std::lock_guard lock(mu);
    if (decided == Decider::kNone) decided = who;
    return decided == who;
  };
  auto update_record = [&](const std::function<void(AuditRecord&)>& change) {
    std::lock_guard lock(mu);
    change(record);
  };
  // After the watchdog has decided, the main thread waits for it to end the process.
  auto yield_to_watchdog = [] {
    for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
  };

  base::Deadline deadline(budget, [&]() -> bool {
    if (!decide(Decider::kWatchdog)) return false;  // the main thread is answering: let it finish
    try {
      // `record` is the watchdog's alone now.
      record.time = base::FormatRfc3339(env.now());
      record.outcome = "refused";
      record.exit_code = static_cast<int>(ExitCode::kTempFail);
      record.reason = "deadline";
      record.message = "the request did not finish in time";
      audit.WriteEvenIfFileFails(record);
    } catch (...) {
    }
    std::fputs("etcd-signer: deadline: the request did not finish in time (token or client too slow); retry\n",
               stderr);
    return true;
  });

  auto finish = [&](const std::string& outcome, int code, const std::string& reason, const std::string& message) {
    record.time = base::FormatRfc3339(env.now());
    record.outcome = outcome;
    record.exit_code = code;
    record.reason = reason;
    record.message = message;
  };
  // --format k8s: a refusal is also the client's object with a Denied/Failed condition on stdout.
  // Set by the main thread only; read in on_failure, which runs on the main thread after deciding.
  bool k8s_format = false;
  std::optional<K8sCsr> k8s_object;
  auto on_failure = [&](const Failure& f) {
    if (!decide(Decider::kMain)) yield_to_watchdog();
    bool ours = f.code() == ExitCode::kSoftware || f.reason() == "audit-failed";
    std::string outcome = f.reason() == "pending-approval" ? kPendingOutcome : ours ? "error" : "refused";
    finish(outcome, static_cast<int>(f.code()), f.reason(), f.what());
    // The refusal object goes out like the stderr line: also when the record cannot be filed.
    std::exception_ptr audit_error;
    try {
      audit.WriteEvenIfFileFails(record);
    } catch (...) {
      audit_error = std::current_exception();
    }
    if (k8s_format && f.reason() != "write-failed") {
      std::string refusal = EncodeK8sRefusal(k8s_object ? &*k8s_object : nullptr, f, env.now());
      std::fwrite(refusal.data(), 1, refusal.size(), env.output);
      std::fflush(env.output);
    }
    if (audit_error) std::rethrow_exception(audit_error);
  };
  // Commits the main thread to answering: after this the deadline no longer ends the process, and
  // the record is on file before the first byte of the answer leaves.
  auto commit_answer = [&](const std::string& outcome, const std::function<void(AuditRecord&)>& fill = nullptr) {
    if (!decide(Decider::kMain)) yield_to_watchdog();
    finish(outcome, 0, "", "");
    if (fill) fill(record);  // the serial appears in a record only once this answer is decided
    try {
      audit.Write(record);
    } catch (const Failure& f) {
      // Not on file, so not delivered: on_failure records that (with the serial that was withheld).
      throw Failure(f.code(), f.reason(), std::string(f.what()) + "; the answer was withheld");
    }
  };

  return base::RunProgram(
      "etcd-signer",
      [&]() -> int {
        if (config_error) throw *config_error;
        RequestLine request = ParseRequestLine(invocation.request_text);
        update_record([&](AuditRecord& r) { r.verb = VerbName(request.verb); });
        k8s_format = request.format == BodyFormat::kK8s;
        ValidateConfig(config);
        // Whole seconds: certificates carry no fractions, and granted lifetimes should be exact.
        pki::TimePoint now = std::chrono::floor<std::chrono::seconds>(env.now());
        if (request.verb == Verb::kInfo) {
          std::string line = InfoJson(config, now) + "\n";
          commit_answer("served");
          WriteAll(env.output, line);
          return 0;
        }
        if (request.verb == Verb::kCa) {
          const std::string& path = config.ca_bundle.empty() ? config.ca_cert : config.ca_bundle;
          std::string bundle;
          try {
            for (auto& cert : pki::ReadCertificateBundleFile(path)) bundle += pki::ToPem(cert.get());
          } catch (const Failure& f) {
            throw Failure(ExitCode::kUnavailable, "ca-cert-missing",
                          std::string("cannot read the CA bundle: ") + f.what());
          }
          commit_answer("served");
          WriteAll(env.output, bundle);
          return 0;
        }

        std::string body = ReadInput(env.input_fd, std::chrono::duration_cast<std::chrono::milliseconds>(
                                                       config.input_timeout));
        RequestFacts facts;
        auto note_facts = [&] {
          update_record([&](AuditRecord& r) {
            r.common_name = facts.common_name;
            r.key_type = facts.key_type;
            r.public_key_sha256 = facts.public_key_sha256;
            if (facts.requested_lifetime) r.requested_lifetime = facts.requested_lifetime->count();
          });
        };
        Approval approval;
        try {
          pki::X509ReqPtr req = k8s_format ? DecodeK8sBody(body, config, k8s_object) : DecodeRequestBody(body);
          approval = ApplyPolicy(req.get(), k8s_format ? k8s_object->expiration : request.lifetime, config, facts);
        } catch (...) {
          note_facts();
          throw;
        }
        note_facts();
        // Deny and approval lists (#14), before the token is touched. After the policy, so that a
        // refusal's record names the key that asked (the CN is the bound identity by now).
        ApprovalGate gate(config);
        gate.CheckIdentity(facts.common_name);
        gate.CheckKey(facts.common_name, facts.public_key_sha256);
        pki::X509Ptr ca_cert = LoadCaCertificate(config.ca_cert);
        // The leaf never outlives the signing certificate (ComputeValidity clamps to it), so the
        // chain above it, checked here, decides nothing more than what the client can verify.
        std::string chain_pem = LoadCaChain(config, ca_cert.get());
        Validity validity = ComputeValidity(ca_cert.get(), now, approval.lifetime, config.backdate,
                                            config.lifetime_min);
        // Leave the watchdog room to record a deadline if the lock never comes.
        auto lock_wait = std::max(deadline.remaining() - std::chrono::milliseconds(500), std::chrono::milliseconds(0));
        pki::X509Ptr cert = SignWithToken(config, approval, ca_cert.get(), validity, env.serial(), lock_wait);
        std::string pem = pki::ToPem(cert.get()) + chain_pem;
        std::string answer = EncodeAnswer(request.format, k8s_object, pem, cert.get(), now);
        if (env.at_stage) env.at_stage("signed");
        commit_answer("issued", [&](AuditRecord& r) {
          r.serial = pki::SerialHex(cert.get());
          r.not_before = base::FormatRfc3339(pki::NotBefore(cert.get()));
          r.not_after = base::FormatRfc3339(pki::NotAfter(cert.get()));
          r.granted_lifetime =
              std::chrono::duration_cast<base::Seconds>(pki::NotAfter(cert.get()) - now).count();
        });
        if (env.at_stage) env.at_stage("committed");
        WriteAll(env.output, answer);
        return 0;
      },
      on_failure);
}

}  // namespace signer
