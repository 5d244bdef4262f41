#include "signer/service.h"

#include <poll.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <nlohmann/json.hpp>

#include "base/deadline.h"
#include "base/files.h"
#include "base/program.h"
#include "hsm/pin.h"
#include "hsm/session.h"
#include "hsm/uri.h"
#include "signer/audit.h"
#include "signer/issuance.h"
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
  if (!c.identity.empty()) j["identity"] = c.identity;
  j["lifetime_default"] = c.lifetime_default.count();
  j["lifetime_min"] = c.lifetime_min.count();
  j["lifetime_max"] = c.lifetime_max.count();
  j["backdate"] = c.backdate.count();
  j["max_input_bytes"] = kMaxInputBytes;
  return j.dump();
}

// Signs with the token: module → token → login (once) → key → certificate. Destruction runs in
// reverse, so the token-backed key is released before its session and module.
pki::X509Ptr SignWithToken(const SignerConfig& config, const Approval& approval, X509* ca_cert,
                           const Validity& validity, const pki::Serial& serial) {
  hsm::Pkcs11Uri uri = hsm::Pkcs11Uri::Parse(config.key_uri);
  // One signer process at a time uses the token. SoftHSM's file store is not safe while one
  // process rewrites the token file (login does) and another loads it: under load a loader sees
  // "no initialized token". The lock is on the CA certificate, which every signer can read.
  std::optional<base::FileLock> token_lock;
  try {
    token_lock.emplace(config.ca_cert);
  } catch (const Failure& f) {  // the certificate was loaded a moment ago: it has just gone
    throw Failure(ExitCode::kUnavailable, "ca-cert-missing", std::string("cannot lock the CA certificate: ") + f.what());
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
  return inv;
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
  AuditLog audit(config.audit_log, config.syslog);
  std::mutex mu;  // the watchdog thread may write the record too
  AuditRecord record;
  record.verb = "unknown";
  record.identity = config.identity;
  record.user = CurrentUser();
  record.ssh_peer = invocation.ssh_peer;
  bool audited = false;
  auto write_audit = [&](const std::string& outcome, int code, const std::string& reason,
                         const std::string& message) {
    std::lock_guard lock(mu);
    if (audited) return;
    audited = true;
    record.time = base::FormatRfc3339(env.now());
    record.outcome = outcome;
    record.exit_code = code;
    record.reason = reason;
    record.message = message;
    audit.Write(record);
  };

  base::Deadline deadline(std::chrono::duration_cast<std::chrono::milliseconds>(config.deadline),
                          [&] {
                            try {
                              write_audit("refused", static_cast<int>(ExitCode::kTempFail),
                                          "deadline", "the request did not finish in time");
                            } catch (...) {
                            }
                            std::fputs("etcd-signer: deadline: the request did not finish in time "
                                       "(token or client too slow); retry\n",
                                       stderr);
                          });

  auto on_failure = [&](const Failure& f) {
    write_audit(f.code() == ExitCode::kSoftware ? "error" : "refused", static_cast<int>(f.code()),
                f.reason(), f.what());
  };

  return base::RunProgram(
      "etcd-signer",
      [&]() -> int {
        if (config_error) throw *config_error;
        RequestLine request = ParseRequestLine(invocation.request_text);
        {
          std::lock_guard lock(mu);
          record.verb = VerbName(request.verb);
        }
        ValidateConfig(config);
        // Whole seconds: certificates carry no fractions, and granted lifetimes should be exact.
        pki::TimePoint now = std::chrono::floor<std::chrono::seconds>(env.now());
        if (request.verb == Verb::kInfo) {
          std::string line = InfoJson(config, now) + "\n";
          write_audit("served", 0, "", "");
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
          write_audit("served", 0, "", "");
          WriteAll(env.output, bundle);
          return 0;
        }

        std::string body = ReadInput(env.input_fd, std::chrono::duration_cast<std::chrono::milliseconds>(
                                                       config.input_timeout));
        RequestFacts facts;
        auto note_facts = [&] {
          std::lock_guard lock(mu);
          record.common_name = facts.common_name;
          record.key_type = facts.key_type;
          record.public_key_sha256 = facts.public_key_sha256;
          if (facts.requested_lifetime) record.requested_lifetime = facts.requested_lifetime->count();
        };
        Approval approval;
        try {
          pki::X509ReqPtr req = DecodeRequestBody(body);
          approval = ApplyPolicy(req.get(), request.lifetime, config, facts);
        } catch (...) {
          note_facts();
          throw;
        }
        note_facts();
        pki::X509Ptr ca_cert = LoadCaCertificate(config.ca_cert);
        Validity validity = ComputeValidity(ca_cert.get(), now, approval.lifetime, config.backdate,
                                            config.lifetime_min);
        pki::X509Ptr cert =
            SignWithToken(config, approval, ca_cert.get(), validity, env.serial());
        {
          std::lock_guard lock(mu);
          record.serial = pki::SerialHex(cert.get());
          record.not_before = base::FormatRfc3339(pki::NotBefore(cert.get()));
          record.not_after = base::FormatRfc3339(pki::NotAfter(cert.get()));
          record.granted_lifetime = std::chrono::duration_cast<base::Seconds>(
                                        pki::NotAfter(cert.get()) - now)
                                        .count();
        }
        std::string pem = pki::ToPem(cert.get());
        // The record is written before the certificate leaves: no unaudited issuance.
        write_audit("issued", 0, "", "");
        WriteAll(env.output, pem);
        return 0;
      },
      on_failure);
}

}  // namespace signer
