// SPDX-License-Identifier: Apache-2.0
#include "requester/exchange.h"

#include <unistd.h>

#include "base/files.h"
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

std::vector<pki::X509Ptr> TrustAnchors(const RequesterConfig& c, const RequesterEnv&, SshClient& ssh,
                                       std::string* fetched) {
  if (c.ca_bundle.empty()) return {};
  if (Exists(c.ca_bundle)) return pki::ReadCertificateBundleFile(c.ca_bundle);
  // First contact: take the bundle from the signer over the host-key-verified connection. It is
  // stored only with an issued certificate (#15): a refused request leaves no bundle behind.
  std::vector<pki::X509Ptr> anchors = FetchBundle(ssh);
  fetched->clear();
  for (auto& a : anchors) *fetched += pki::ToPem(a.get());
  return anchors;
}

pki::IssuedCertificate SignOver(SshClient& ssh, const RequesterConfig& c, const RequesterEnv& env,
                                const std::string& body, EVP_PKEY* public_key, const std::string& common_name,
                                std::string* fetched_bundle) {
  std::string fetched;
  std::vector<pki::X509Ptr> anchors = TrustAnchors(c, env, ssh, &fetched);
  std::string command = "sign";
  if (c.lifetime.count() > 0) command += " --lifetime " + std::to_string(c.lifetime.count());
  ExecResult r = ssh.Exec(command, body);
  if (r.exit_status != 0) SignerFailed(r);
  pki::IssuedCertificateExpectations want;
  want.public_key = public_key;
  want.common_name = common_name;
  for (auto& a : anchors) want.trust_anchors.push_back(a.get());
  want.now = env.now();
  want.skew_tolerance = c.skew_tolerance;
  pki::IssuedCertificate issued = pki::VerifyIssuedCertificate(r.out, want);
  if (fetched_bundle != nullptr) {
    *fetched_bundle = std::move(fetched);
  } else if (!fetched.empty()) {
    base::AtomicFileWriter(c.ca_bundle, 0644).Write(fetched);
    Log(env, "stored the signer's CA bundle in " + c.ca_bundle);
  }
  return issued;
}

// A policy answer (64, 65, 77 from the signer) is the same at every signer: report it. A PIN
// problem must never be repeated. Everything else (unreachable, timed out, connection lost, a
// signer whose token or CA is unavailable, 69, or busy, 75; a host key or SSH key that one signer
// does not accept; an answer that fails verification) is that signer's problem.
bool WorthTryingTheNextSigner(const Failure& f) {
  if (IsPinFailure(f)) return false;
  if (dynamic_cast<const SignerRefusal*>(&f) != nullptr) {
    return f.code() != ExitCode::kUsage && f.code() != ExitCode::kDataErr && f.code() != ExitCode::kNoPerm;
  }
  return true;
}

std::string TrySigners(const RequesterConfig& c, const RequesterEnv& env, RequesterState& state,
                       const std::function<void(const std::string& server)>& attempt) {
  std::vector<std::string> order = ServerOrder(c);
  for (std::size_t i = 0; i < order.size(); ++i) {
    const std::string& server = order[i];
    try {
      attempt(server);
      state.signer_errors.erase(server);
      return server;
    } catch (const Failure& f) {
      state.signer_errors[server] = f.reason() + ": " + f.what();
      if (order.size() == 1 || !WorthTryingTheNextSigner(f)) throw;
      if (i + 1 == order.size()) {
        throw Failure(f.code(), f.reason(), "every signer failed; the last, " + server + ", with: " + f.what());
      }
      Log(env, "signer " + server + " failed (" + f.reason() + ": " + f.what() + "); trying " + order[i + 1]);
    }
  }
  throw Failure(ExitCode::kConfig, "no-server", "no signer is configured (set server)");
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
