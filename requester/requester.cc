#include "requester/requester.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "base/deadline.h"
#include "base/failure.h"
#include "base/text.h"
#include "pki/base64.h"
#include "pki/csr.h"
#include "pki/verify.h"
#include "requester/key_store.h"
#include "requester/ssh_client.h"
#include "requester/token_agent.h"

extern char** environ;

namespace requester {
namespace {

using base::ExitCode;
using base::Failure;
using std::chrono::seconds;

void Log(const RequesterEnv& env, const std::string& line) {
  std::string text = "etcd-requester: " + line + "\n";
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

// The signer's lines are a sentence; anything longer is cut (Printable marks the cut with "...").
constexpr std::size_t kMaxSignerLine = 1024;

bool Exists(const std::string& path) { return !path.empty() && ::access(path.c_str(), F_OK) == 0; }

// The signer's failure as the operator should see it: its exit code (when it is a sysexits code),
// its one stderr line (made printable: the bytes are the signer's, and a hostile or compromised one
// must not reach the operator's terminal as escape sequences) and its reason code, which decides
// whether the daemon may retry. The signer writes that line last; anything before it comes from
// sshd or the account's shell (e.g. "Could not chdir to home directory") and is dropped.
[[noreturn]] void SignerFailed(const ExecResult& r) {
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

// The hook is the operator's program, not ours: it gets the environment (the PIN variable is gone:
// base::ReadSecretEnv removed it when it was read), stdin/stdout/stderr, and nothing else. Every other
// descriptor (a token module's files, a socket) is closed in the child even if a library forgot
// O_CLOEXEC, the signal mask is emptied (the daemon blocks SIGHUP/SIGINT/SIGTERM for sigtimedwait,
// which would make the hook unkillable by them) and every signal gets its default action back (an
// ignored SIGPIPE or SIGINT is inherited across exec otherwise).
void RunHook(const RequesterConfig& c, const RequesterEnv& env) {
  if (c.post_renew_hook.empty()) return;
  std::vector<std::string> argv = c.post_renew_hook;
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  int rc = posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  if (rc == 0) rc = posix_spawnattr_setsigmask(&attr, &none);
  if (rc == 0) rc = posix_spawnattr_setsigdefault(&attr, &all);
  if (rc == 0) rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  // posix_spawnp, no shell: the hook's words are passed as they are.
  if (rc == 0) rc = posix_spawnp(&pid, cargv[0], &actions, &attr, cargv.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    Log(env, "post-renew hook '" + argv[0] + "' could not start: " + std::strerror(rc));
    return;
  }
  int status = 0;
  for (int i = 0; i < 600; ++i) {  // 60 s
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        Log(env, "post-renew hook '" + argv[0] + "' failed (status " + std::to_string(status) + ")");
      }
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  Log(env, "post-renew hook '" + argv[0] + "' took longer than 60s and was killed");
}

// Whether a failure met at one signer is worth trying the next one for (#12). A policy answer
// (64, 65, 77 from the signer) is the same at every signer: report it. A PIN problem must never
// be repeated. Everything else (unreachable, timed out, connection lost, a signer whose token or
// CA is unavailable, 69, or busy, 75; a host key or SSH key that one signer does not accept; an
// answer that fails verification) is that signer's problem.
bool WorthTryingTheNextSigner(const Failure& f) {
  if (IsPinFailure(f)) return false;
  if (dynamic_cast<const SignerRefusal*>(&f) != nullptr) {
    return f.code() != ExitCode::kUsage && f.code() != ExitCode::kDataErr && f.code() != ExitCode::kNoPerm;
  }
  return true;
}

RequestOutcome DoRequest(const RequesterConfig& c, const RequesterEnv& env, bool create_key,
                         RequesterState& state) {
  CheckName(c);  // before any network traffic
  RequestOutcome outcome;
  std::unique_ptr<KeyStore> keys;
  std::string body;
  auto open_keys = [&] {
    keys = MakeKeyStore(c);
    if (keys->Open(create_key)) {
      outcome.generated_key = true;
      Log(env, "generated a new EC P-256 key in " + keys->Describe());
    }
    pki::X509ReqPtr csr = pki::BuildCsr(c.name, keys->private_key());
    std::vector<unsigned char> der = pki::ToDer(csr.get());
    body = pki::EncodeBase64(der.data(), der.size(), 76);
  };
  // An SSH key in a token authenticates while no other module is loaded (one C_Initialize per
  // process): then each connection comes first and the certificate key after it. Otherwise a key
  // problem is reported before any connection.
  const bool ssh_key_in_token = IsTokenKey(c.ssh_key);
  if (!ssh_key_in_token) open_keys();

  std::vector<std::string> order = ServerOrder(c);
  std::optional<pki::IssuedCertificate> issued;
  std::string served_by;
  for (std::size_t i = 0; i < order.size() && !issued; ++i) {
    const std::string& server = order[i];
    try {
      if (ssh_key_in_token) keys.reset();
      // The session lives only as long as the exchange: it is closed before the hook runs.
      SshClient ssh(SshOptionsFor(c, server));
      if (!keys) open_keys();
      std::vector<pki::X509Ptr> anchors;
      if (!c.ca_bundle.empty()) {
        if (Exists(c.ca_bundle)) {
          anchors = pki::ReadCertificateBundleFile(c.ca_bundle);
        } else {
          // First contact: take the bundle from the signer over the host-key-verified connection.
          anchors = FetchBundle(ssh);
          std::string pem;
          for (auto& a : anchors) pem += pki::ToPem(a.get());
          base::AtomicFileWriter(c.ca_bundle, 0644).Write(pem);
          Log(env, "stored the signer's CA bundle in " + c.ca_bundle);
        }
      }
      std::string command = "sign";
      if (c.lifetime.count() > 0) command += " --lifetime " + std::to_string(c.lifetime.count());
      ExecResult r = ssh.Exec(command, body);
      if (r.exit_status != 0) SignerFailed(r);
      pki::IssuedCertificateExpectations want;
      want.public_key = keys->public_key();
      want.common_name = c.name;
      for (auto& a : anchors) want.trust_anchors.push_back(a.get());
      want.now = env.now();
      want.skew_tolerance = c.skew_tolerance;
      issued = pki::VerifyIssuedCertificate(r.out, want);
      served_by = server;
      state.signer_errors.erase(server);
    } catch (const Failure& f) {
      state.signer_errors[server] = f.reason() + ": " + f.what();
      if (order.size() == 1 || !WorthTryingTheNextSigner(f)) throw;
      if (i + 1 == order.size()) {
        throw Failure(f.code(), f.reason(),
                      "every signer failed; the last, " + server + ", with: " + f.what());
      }
      Log(env, "signer " + server + " failed (" + f.reason() + ": " + f.what() + "); trying " + order[i + 1]);
    }
  }
  state.served_by = served_by;

  // Leaf and chain: what kube-apiserver and etcdctl present to etcd.
  base::AtomicFileWriter writer(c.cert, 0644);
  if (env.store_fault) writer.set_fault_hook(env.store_fault);
  writer.Write(issued->Pem());
  X509* cert = issued->leaf.get();
  outcome.renewed = true;
  outcome.serial = pki::SerialHex(cert);
  outcome.not_after = pki::NotAfter(cert);
  outcome.message = "stored a certificate for " + c.name + " in " + c.cert + " (serial " + outcome.serial +
                    ", valid until " + base::FormatRfc3339(outcome.not_after) +
                    (order.size() > 1 ? ", from " + served_by : "") + ")";
  keys.reset();  // release the token before running the hook
  RunHook(c, env);
  return outcome;
}

// Runs one attempt and records it in the state file, success or failure.
RequestOutcome Attempt(const RequesterConfig& c, const RequesterEnv& env, bool create_key) {
  RequesterState state = LoadState(c.StateFile());
  state.last_attempt = base::FormatRfc3339(env.now());
  try {
    RequestOutcome outcome = DoRequest(c, env, create_key, state);
    state.last_success = state.last_attempt;
    state.consecutive_failures = 0;
    state.last_error.clear();
    try {
      SaveState(c.StateFile(), state);
    } catch (const Failure& f) {
      Log(env, std::string("cannot save the state file: ") + f.what());
    }
    return outcome;
  } catch (const Failure& f) {
    state.consecutive_failures += 1;
    state.last_error = f.reason() + ": " + f.what();
    try {
      SaveState(c.StateFile(), state);
    } catch (...) {
    }
    throw;
  }
}

std::string Ago(TimePoint then, TimePoint now) {
  auto d = std::chrono::duration_cast<seconds>(then - now);
  return d.count() >= 0 ? "in " + base::FormatDuration(d) : base::FormatDuration(-d) + " ago";
}

}  // namespace

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

StoredCertificate InspectCertificate(const RequesterConfig& c, TimePoint now,
                                     const RenewalSchedule& schedule) {
  StoredCertificate s;
  if (!Exists(c.cert)) return s;
  try {
    pki::X509Ptr cert = pki::ReadCertificateFile(c.cert);
    s.serial = pki::SerialHex(cert.get());
    s.common_name = pki::CommonName(X509_get_subject_name(cert.get()));
    s.not_before = pki::NotBefore(cert.get());
    s.not_after = pki::NotAfter(cert.get());
    s.renew_at = schedule.RenewAt(s.not_before, s.not_after, RenewalSchedule::StableUniform(s.serial));
  } catch (const Failure& f) {
    s.state = CertificateState::kUnreadable;
    s.detail = f.what();
    return s;
  }
  if (s.common_name != c.name) {
    s.state = CertificateState::kUnreadable;
    s.detail = "the stored certificate is for '" + s.common_name + "', not '" + c.name + "'";
  } else if (now >= s.not_after) {
    s.state = CertificateState::kExpired;
  } else if (now >= s.renew_at) {
    s.state = CertificateState::kDue;
  } else {
    s.state = CertificateState::kFresh;
  }
  return s;
}

RequesterState LoadState(const std::string& path) {
  RequesterState state;
  if (!Exists(path)) return state;
  try {
    auto j = nlohmann::json::parse(base::ReadFileLimited(path, 64 * 1024, "state-file"));
    state.last_attempt = j.value("last_attempt", "");
    state.last_success = j.value("last_success", "");
    state.consecutive_failures = j.value("consecutive_failures", 0);
    state.last_error = j.value("last_error", "");
    state.served_by = j.value("served_by", "");
    if (j.contains("signer_errors") && j["signer_errors"].is_object()) {
      for (auto& [server, error] : j["signer_errors"].items()) {
        if (error.is_string()) state.signer_errors[server] = error.get<std::string>();
      }
    }
  } catch (const std::exception&) {
    // A damaged state file only loses counters; it must never stop a renewal.
  }
  return state;
}

void SaveState(const std::string& path, const RequesterState& s) {
  nlohmann::ordered_json j;
  j["last_attempt"] = s.last_attempt;
  j["last_success"] = s.last_success;
  j["consecutive_failures"] = s.consecutive_failures;
  j["last_error"] = s.last_error;
  j["served_by"] = s.served_by;
  j["signer_errors"] = s.signer_errors;
  base::AtomicFileWriter(path, 0644).Write(j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

RequestOutcome Request(const RequesterConfig& c, const RequesterEnv& env) {
  return Attempt(c, env, /*create_key=*/true);
}

RequestOutcome Renew(const RequesterConfig& c, const RequesterEnv& env, bool force) {
  CheckName(c);
  StoredCertificate stored = InspectCertificate(c, env.now());
  if (!force && stored.state == CertificateState::kFresh) {
    RequestOutcome outcome;
    outcome.serial = stored.serial;
    outcome.not_after = stored.not_after;
    outcome.message = "not due: the certificate renews at " + base::FormatRfc3339(stored.renew_at) +
                      " (" + Ago(stored.renew_at, env.now()) + ")";
    return outcome;
  }
  // Renewal reuses the key; only a first `request` creates one.
  return Attempt(c, env, /*create_key=*/false);
}

void FetchCa(const RequesterConfig& c, const RequesterEnv& env) {
  std::string pem;
  std::vector<std::string> order = ServerOrder(c);
  for (std::size_t i = 0; i < order.size() && pem.empty(); ++i) {
    try {
      SshClient ssh(SshOptionsFor(c, order[i]));
      for (auto& a : FetchBundle(ssh)) pem += pki::ToPem(a.get());
    } catch (const Failure& f) {
      if (i + 1 == order.size() || !WorthTryingTheNextSigner(f)) throw;
      Log(env, "signer " + order[i] + " failed (" + f.reason() + ": " + f.what() + "); trying " + order[i + 1]);
    }
  }
  if (c.ca_bundle.empty()) {
    std::fwrite(pem.data(), 1, pem.size(), env.out);
    return;
  }
  base::AtomicFileWriter(c.ca_bundle, 0644).Write(pem);
  Log(env, "stored the CA bundle in " + c.ca_bundle);
}

std::string RenderStatus(const RequesterConfig& c, TimePoint now, StatusFormat format) {
  StoredCertificate s = InspectCertificate(c, now);
  RequesterState state = LoadState(c.StateFile());
  bool has_cert = s.state != CertificateState::kMissing && s.state != CertificateState::kUnreadable;
  auto epoch = [](TimePoint t) { return std::chrono::duration_cast<seconds>(t.time_since_epoch()).count(); };
  long long left = has_cert ? std::chrono::duration_cast<seconds>(s.not_after - now).count() : 0;
  if (format == StatusFormat::kJson) {
    nlohmann::ordered_json j;
    j["name"] = c.name;
    j["certificate"] = c.cert;
    j["state"] = StateName(s.state);
    if (!s.detail.empty()) j["detail"] = s.detail;
    if (has_cert) {
      j["serial"] = s.serial;
      j["not_before"] = base::FormatRfc3339(s.not_before);
      j["not_after"] = base::FormatRfc3339(s.not_after);
      j["renew_at"] = base::FormatRfc3339(s.renew_at);
      j["seconds_left"] = left;
    }
    j["last_attempt"] = state.last_attempt;
    j["last_success"] = state.last_success;
    j["consecutive_failures"] = state.consecutive_failures;
    j["last_error"] = state.last_error;
    j["served_by"] = state.served_by;
    j["signer_errors"] = state.signer_errors;
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  if (format == StatusFormat::kPrometheus) {
    std::string label = "{name=\"" + c.name + "\"}";
    std::string out;
    auto metric = [&](const std::string& name, const std::string& help, long long value) {
      out += "# HELP " + name + " " + help + "\n# TYPE " + name + " gauge\n" + name + label + " " +
             std::to_string(value) + "\n";
    };
    metric("etcd_requester_certificate_valid", "1 if a certificate is stored and not expired.",
           has_cert && left > 0 ? 1 : 0);
    metric("etcd_requester_certificate_expiry_timestamp_seconds", "notAfter of the stored certificate.",
           has_cert ? epoch(s.not_after) : 0);
    metric("etcd_requester_certificate_seconds_left", "Seconds until the stored certificate expires.",
           has_cert ? left : 0);
    long long last_success = 0;
    if (!state.last_success.empty()) {
      try {
        last_success = epoch(base::ParseRfc3339(state.last_success));
      } catch (const Failure&) {
      }
    }
    metric("etcd_requester_last_success_timestamp_seconds", "Time of the last successful request.", last_success);
    metric("etcd_requester_consecutive_failures", "Failed attempts since the last success.",
           state.consecutive_failures);
    return out;
  }
  std::string out;
  auto row = [&](const std::string& k, const std::string& v) {
    out += k + std::string(k.size() < 16 ? 16 - k.size() : 1, ' ') + v + "\n";
  };
  row("name", c.name);
  row("certificate", c.cert + " (" + StateName(s.state) + ")");
  if (!s.detail.empty()) row("problem", s.detail);
  if (has_cert) {
    row("serial", s.serial);
    row("valid", base::FormatRfc3339(s.not_before) + " to " + base::FormatRfc3339(s.not_after));
    row(left > 0 ? "expires" : "expired", Ago(s.not_after, now));
    row("renews", base::FormatRfc3339(s.renew_at) + " (" + Ago(s.renew_at, now) + ")");
  }
  row("key", c.key_file.empty() ? c.key_uri : c.key_file);
  row("last success", state.last_success.empty() ? "never" : state.last_success);
  row("failures", std::to_string(state.consecutive_failures) +
                      (state.last_error.empty() ? "" : " (last: " + state.last_error + ")"));
  if (!state.served_by.empty() && c.servers.size() > 1) row("served by", state.served_by);
  for (const auto& [server, error] : state.signer_errors) row("signer failed", server + ": " + error);
  return out;
}

bool Diagnose(const RequesterConfig& c, const RequesterEnv& env) {
  bool all = true;
  auto line = [&](bool ok, const std::string& check, const std::string& detail, const std::string& fix = "") {
    std::string text = std::string(ok ? "ok   " : "FAIL ") + check +
                       std::string(check.size() < 14 ? 14 - check.size() : 1, ' ') + detail + "\n";
    if (!ok && !fix.empty()) text += "     fix: " + fix + "\n";
    std::fwrite(text.data(), 1, text.size(), env.out);
    std::fflush(env.out);
    all = all && ok;
    return ok;
  };
  try {
    CheckName(c);
    line(true, "name", "'" + c.name + "' is a valid master name");
  } catch (const Failure& f) {
    line(false, "name", f.what(), "use the node's name in the form kubemaster-<id>, e.g. kubemaster-1");
  }
  // Every signer is checked, in the order this master tries them (#12).
  for (const std::string& server : ServerOrder(c)) {
  const std::string at = c.servers.size() > 1 ? server + ": " : "";
    std::optional<SshOptions> options;
    try {
      options = SshOptionsFor(c, server);
    } catch (const Failure& f) {
      line(false, "server", at + f.what(), "set --server USER@HOST[:PORT]");
    }
    bool tcp_ok = false;
    if (options) {
      // Plain TCP first: tells "network/firewall" apart from "SSH" problems.
      addrinfo hints{};
      hints.ai_socktype = SOCK_STREAM;
      addrinfo* res = nullptr;
      std::string port = std::to_string(options->server.port);
      std::string detail;
      if (getaddrinfo(options->server.host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) {
        detail = "cannot resolve " + options->server.host;
      } else {
        int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        ::connect(fd, res->ai_addr, res->ai_addrlen);
        pollfd p{fd, POLLOUT, 0};
        int err = 0;
        socklen_t len = sizeof err;
        if (::poll(&p, 1, static_cast<int>(c.connect_timeout.count() * 1000)) == 1 &&
            ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
          tcp_ok = true;
          detail = options->server.host + ":" + port + " accepts TCP connections";
        } else {
          detail = "cannot connect to " + options->server.host + ":" + port + ": " +
                   (err != 0 ? std::strerror(err) : "timed out");
        }
        ::close(fd);
        freeaddrinfo(res);
      }
      line(tcp_ok, "tcp", at + detail, "check the signer host is up, sshd listens on that port, and firewalls allow it");
    }
    std::optional<SshClient> ssh;
    if (tcp_ok) {
      try {
        ssh.emplace(*options);
        line(true, "ssh", at + "host key matches " + c.known_hosts + " and the signer accepted our key");
      } catch (const Failure& f) {
        line(false, "ssh", at + f.what(),
             f.reason() == "auth-failed" ? "add this host's SSH public key to the signer's authorized_keys "
                                           "with the forced command"
                                         : "fix known_hosts or the SSH key as the message says");
      }
    }
    if (ssh) {
      try {
        TimePoint sent = env.now();
        ExecResult r = ssh->Exec("info", "");
        TimePoint received = env.now();
        if (r.exit_status != 0) SignerFailed(r);
        auto j = nlohmann::json::parse(r.out);
        line(true, "signer", at + "etcd-signer " + base::Printable(j.value("version", std::string("?")), 64) + ", lifetime " +
                                 base::FormatDuration(seconds(j.value("lifetime_min", 0))) + " to " +
                                 base::FormatDuration(seconds(j.value("lifetime_max", 0))));
        if (j.contains("identity") && j["identity"] != c.name) {
          line(false, "identity", at + "this SSH key is bound to '" + base::Printable(j["identity"].get<std::string>(), 128) + "', not '" + c.name + "'",
               "use the right --name or ask the operator to fix the forced command's --identity");
        }
        TimePoint signer_time = base::ParseRfc3339(j.value("time", std::string()));
        auto skew = ClockSkew(sent, received, signer_time);
        bool skew_ok = std::chrono::abs(skew) <= c.skew_tolerance;
        line(skew_ok, "clock",
             at + "this host is " + DescribeSkew(skew) + " the signer (tolerance " +
                 base::FormatDuration(c.skew_tolerance) + ")",
             "synchronize time (chrony/systemd-timesyncd) on this host and the signer");
      } catch (const std::exception& e) {
        // The text may quote the signer's bytes (a JSON parse error shows what it read).
        line(false, "signer", at + base::Printable(e.what(), kMaxSignerLine), "check the forced command in authorized_keys runs etcd-signer");
      }
    }
  }
  std::unique_ptr<KeyStore> keys;
  try {
    keys = MakeKeyStore(c);
    keys->Open(false);
    line(true, "key", keys->Describe() + " is present");
  } catch (const Failure& f) {
    keys.reset();
    line(false, "key", f.what(), "run 'etcd-requester request' to create the key (or fix the PIN/token)");
  }
  StoredCertificate stored = InspectCertificate(c, env.now());
  if (stored.state == CertificateState::kMissing || stored.state == CertificateState::kUnreadable) {
    line(false, "certificate", c.cert + ": " + (stored.detail.empty() ? "missing" : stored.detail),
         "run 'etcd-requester request'");
  } else {
    bool valid = stored.state != CertificateState::kExpired;
    line(valid, "certificate",
         valid ? "valid until " + base::FormatRfc3339(stored.not_after) : "expired at " + base::FormatRfc3339(stored.not_after),
         "run 'etcd-requester renew --force' (an expired certificate is simply requested again)");
    if (keys) {
      pki::X509Ptr cert = pki::ReadCertificateFile(c.cert);
      bool match = pki::SamePublicKey(X509_get0_pubkey(cert.get()), keys->public_key());
      line(match, "key-match", match ? "the certificate belongs to our key" : "the certificate is for another key",
           "run 'etcd-requester renew --force' to get a certificate for the current key");
    }
    if (!c.ca_bundle.empty()) {
      try {
        auto anchors = pki::ReadCertificateBundleFile(c.ca_bundle);
        std::vector<X509*> raw;
        for (auto& a : anchors) raw.push_back(a.get());
        std::vector<pki::X509Ptr> stored_certs = pki::ReadCertificateBundleFile(c.cert);  // leaf, then chain
        std::vector<X509*> chain;
        for (std::size_t i = 1; i < stored_certs.size(); ++i) chain.push_back(stored_certs[i].get());
        // Trust only: validity and clock have their own lines, so check at a time inside it.
        TimePoint when = std::clamp(env.now(), stored.not_before, stored.not_after - seconds(1));
        std::string error = pki::VerifyChain(stored_certs.front().get(), raw, when, nullptr, chain);
        line(error.empty(), "ca-bundle", error.empty() ? "the certificate chains to " + c.ca_bundle : error,
             "run 'etcd-requester ca' to refresh the bundle after a CA rotation");
      } catch (const Failure& f) {
        line(false, "ca-bundle", f.what(), "run 'etcd-requester ca'");
      }
    }
  }
  return all;
}

int RunDaemon(RequesterConfig c, const std::function<RequesterConfig()>& reload, const RequesterEnv& env) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  Backoff backoff(seconds(1), seconds(300), env.uniform01);
  Log(env, "running for " + c.name + " (certificate " + c.cert + ")");
  for (;;) {
    std::chrono::milliseconds wait{0};
    StoredCertificate stored = InspectCertificate(c, env.now());
    if (stored.state == CertificateState::kFresh) {
      wait = std::chrono::duration_cast<std::chrono::milliseconds>(stored.renew_at - env.now());
      // Wake at least hourly: someone may have removed or replaced the certificate.
      wait = std::clamp(wait, std::chrono::milliseconds(1000), std::chrono::milliseconds(3600 * 1000));
    } else {
      try {
        // A wedged token or connection must not wedge the daemon: bound each attempt.
        base::Deadline deadline(c.connect_timeout + c.io_timeout + seconds(60), [&] {
          Log(env, "deadline: an attempt took too long; exiting so that systemd restarts us");
          return true;
        });
        RequestOutcome outcome = Attempt(c, env, /*create_key=*/stored.state == CertificateState::kMissing);
        Log(env, "renewed: " + outcome.message);
        backoff.Reset();
        continue;
      } catch (const Failure& f) {
        if (IsPinFailure(f)) {
          // Never retry a refused PIN: TPMs and HSMs lock the user PIN after a few wrong logins, and
          // the signer's token is shared by every master (N daemons retrying lock it in minutes).
          auto* refusal = dynamic_cast<const SignerRefusal*>(&f);
          std::string whose = refusal != nullptr ? "the signer's token refused its PIN" : "this host's token refused our PIN";
          Log(env, f.reason() + ": " + f.what() + "; stopping: " + whose +
                       ", and trying again would lock the token's user PIN; fix the PIN, then restart etcd-requester");
          return static_cast<int>(f.code());
        }
        wait = backoff.Next();
        Log(env, f.reason() + ": " + f.what() + "; retrying in " +
                     base::FormatDuration(std::chrono::duration_cast<seconds>(wait)) + " (attempt " +
                     std::to_string(backoff.failures()) + ")");
      }
    }
    if (!c.prometheus_file.empty()) {
      try {
        base::AtomicFileWriter(c.prometheus_file, 0644).Write(RenderStatus(c, env.now(), StatusFormat::kPrometheus));
      } catch (const Failure& f) {
        Log(env, std::string("cannot write metrics: ") + f.what());
      }
    }
    timespec ts{static_cast<time_t>(wait.count() / 1000), static_cast<long>((wait.count() % 1000) * 1000000)};
    int sig = sigtimedwait(&set, nullptr, &ts);
    if (sig == SIGTERM || sig == SIGINT) {
      Log(env, "stopping on signal " + std::to_string(sig));
      return 0;
    }
    if (sig == SIGHUP) {
      try {
        c = reload();
        Log(env, "configuration reloaded");
      } catch (const Failure& f) {
        Log(env, std::string("reload failed, keeping the old configuration: ") + f.what());
      }
    }
  }
}

}  // namespace requester
