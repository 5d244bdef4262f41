// SPDX-License-Identifier: Apache-2.0
// stage-bench: where one `etcd-signer sign` process spends its time, step by step (#30).
//
//   stage-bench --config signer.toml --csr-b64 FILE [--runs N] [--identity NAME]
//
// Each run is a fresh process (this program re-executed with --child), because most of a request's
// cost is first-time cost: dynamic linking, OpenSSL's provider and decoder set-up, the token
// module's start. The child walks the signer's request with the signer's own functions, in the
// signer's order, and reports when each step ended; the parent adds the time from posix_spawn to
// the child's main (exec + dynamic linking) and from the child's last step to its reaping (exit:
// C_Finalize, destructors, process teardown). Output: one line per step, tab-separated
//   step  median_us  p10_us  p90_us
// in the order of the request, then "total". Compare the total with etcd-signer's own p50 in the
// same run (bench/run prints both): the steps are the signer's functions, not a model of them.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/duration.h"
#include "base/failure.h"
#include "base/files.h"
#include "base/flags.h"
#include "base/program.h"
#include "hsm/module.h"
#include "hsm/pin.h"
#include "hsm/session.h"
#include "hsm/uri.h"
#include "pki/certificate_profile.h"
#include "pki/key.h"
#include "pki/openssl.h"
#include "signer/approval.h"
#include "signer/audit.h"
#include "signer/config.h"
#include "signer/governance.h"
#include "signer/issuance.h"
#include "signer/policy.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC: comparable across processes

long long NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

// The steps, in the order the signer takes them (signer/service.cc, Serve and SignWithToken).
const std::vector<std::string> kSteps = {
    "exec + dynamic linking", "configuration",      "CSR parse + policy",    "approval look-ups",
    "CA certificate",         "token lock",         "module load + C_Initialize", "login",
    "key lookup",             "build",              "signature",             "self-check",
    "audit append + fsync",   "output",             "exit",
};

// The child: one request's walk, printing "step<TAB>ns since spawn" after each step.
int Child(long long spawned_ns, const std::string& config_path, const std::string& csr_path,
          const std::string& identity) {
  std::vector<std::pair<std::string, long long>> marks;
  auto mark = [&](const char* step) { marks.emplace_back(step, NowNs() - spawned_ns); };
  mark("exec + dynamic linking");
  pki::LeaveOpenSslCleanupToExit();  // as etcd-signer's main

  signer::SignerConfig config;
  signer::LoadConfigFile(config_path, config);
  if (!identity.empty()) config.identity = signer::Identity(identity);
  signer::ValidateConfig(config);
  mark("configuration");

  std::string body = base::ReadFileLimited(csr_path, signer::kMaxInputBytes);
  signer::RequestFacts facts;
  pki::X509ReqPtr req = signer::DecodeRequestBody(body);
  signer::Approval approval = signer::ApplyPolicy(req.get(), std::nullopt, config, facts);
  mark("CSR parse + policy");

  // As the signer's CheckApprovalLists: the installed governance document's decisions (#29), when
  // configured, then the lists.
  std::optional<signer::GovernanceDocument> governance;
  if (!config.governance_file.empty()) {
    governance = signer::LoadGovernanceDecisions(config);
    signer::RequireUnexpired(*governance, std::chrono::system_clock::now());
  }
  signer::ApprovalGate gate(config, governance ? &governance->state : nullptr);
  gate.CheckIdentity(facts.common_name);
  gate.CheckKey(facts.common_name, facts.public_key_sha256);
  mark("approval look-ups");

  pki::X509Ptr ca_cert = pki::ReadCertificateFile(config.ca_cert);
  pki::TimePoint now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  signer::Validity validity =
      signer::ComputeValidity(ca_cert.get(), now, approval.lifetime, config.backdate, config.lifetime_min);
  mark("CA certificate");

  hsm::Pkcs11Uri uri = hsm::Pkcs11Uri::Parse(config.key_uri);
  std::optional<base::PrivateLock> token_lock;
  token_lock.emplace(config.lock_file, std::chrono::milliseconds(5000));
  mark("token lock");

  std::optional<hsm::Module> module;
  module.emplace(hsm::ModulePath(config.module, &uri));
  mark("module load + C_Initialize");

  std::optional<hsm::Session> session;
  session.emplace(*module, hsm::SelectorFor(uri), false);
  {
    std::string pin = hsm::ReadPin(config.pin, &uri);
    session->Login(pin);
    base::Scrub(pin);
  }
  mark("login");

  std::optional<hsm::TokenKey> key;
  key.emplace(session->FindPrivateKey(uri.object, uri.id));
  if (!pki::SamePublicKey(X509_get0_pubkey(ca_cert.get()), key->public_key.get())) {
    throw base::Failure(base::ExitCode::kUnavailable, "ca-key-mismatch", "the CA certificate is not the token key's");
  }
  mark("key lookup");

  pki::X509Ptr cert = signer::BuildCertificate(approval, approval.key, ca_cert.get(), validity, pki::RandomSerial());
  mark("build");
  pki::SignCertificate(cert.get(), key->private_key.get());
  mark("signature");
  signer::SelfCheck(cert.get(), approval, approval.key, ca_cert.get());
  mark("self-check");

  signer::AuditRecord record;
  record.time = base::FormatRfc3339(now);
  record.outcome = "issued";
  record.verb = "sign";
  record.common_name = facts.common_name;
  record.identity = config.identity;
  record.user = "stage-bench";
  record.ssh_peer = "local";
  record.key_type = facts.key_type;
  record.public_key_sha256 = facts.public_key_sha256;
  record.serial = pki::SerialHex(cert.get());
  record.not_before = base::FormatRfc3339(pki::NotBefore(cert.get()));
  record.not_after = base::FormatRfc3339(pki::NotAfter(cert.get()));
  signer::AuditLog(config.audit_log, config.syslog, std::chrono::milliseconds(5000)).Write(record);
  mark("audit append + fsync");

  std::string pem = pki::ToPem(cert.get());
  if (std::fwrite(pem.data(), 1, pem.size(), stdout) != pem.size() || std::fflush(stdout) != 0) return 74;
  mark("output");
  // The rest (token key, session, module: C_Finalize; the lock; OpenSSL's and the C++ runtime's
  // teardown) happens after main returns: the parent measures it as "exit".
  for (const auto& [step, ns] : marks) std::fprintf(stderr, "stage\t%s\t%lld\n", step.c_str(), ns);
  return 0;
}

struct Run {
  std::map<std::string, long long> end_ns;  // step -> when it ended, since spawn
  long long reaped_ns = 0;
};

// Spawns the child, collects its marks from a pipe on stderr, and the time it was reaped.
Run SpawnOnce(const std::string& self, const std::vector<std::string>& args) {
  int err[2];
  if (pipe(err) != 0) throw base::Failure(base::ExitCode::kSoftware, "internal", "pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  posix_spawn_file_actions_addclose(&actions, err[0]);
  long long spawned = NowNs();
  std::vector<std::string> argv_storage = {self, "--child", "--spawned-at", std::to_string(spawned)};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, self.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(err[1]);
  if (rc != 0) throw base::Failure(base::ExitCode::kSoftware, "internal", "posix_spawn failed");
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = read(err[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
  close(err[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  Run run;
  run.reaped_ns = NowNs() - spawned;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw base::Failure(base::ExitCode::kSoftware, "internal", "the child failed: " + text);
  }
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.rfind("stage\t", 0) != 0) continue;
    std::size_t tab = line.rfind('\t');
    run.end_ns[line.substr(6, tab - 6)] = std::stoll(line.substr(tab + 1));
  }
  return run;
}

double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5)];
}

int Parent(const std::string& self, const std::vector<std::string>& child_args, int runs) {
  SpawnOnce(self, child_args);  // warm-up: page cache, the audit log's first line
  std::map<std::string, std::vector<double>> us;
  std::vector<double> totals;
  for (int i = 0; i < runs; ++i) {
    Run run = SpawnOnce(self, child_args);
    long long previous = 0;
    for (const std::string& step : kSteps) {
      long long end = step == "exit" ? run.reaped_ns : run.end_ns.at(step);
      us[step].push_back(static_cast<double>(end - previous) / 1000.0);
      previous = end;
    }
    totals.push_back(static_cast<double>(run.reaped_ns) / 1000.0);
  }
  for (const std::string& step : kSteps) {
    std::printf("%s\t%.0f\t%.0f\t%.0f\n", step.c_str(), Percentile(us[step], 0.5), Percentile(us[step], 0.1),
                Percentile(us[step], 0.9));
  }
  std::printf("total\t%.0f\t%.0f\t%.0f\n", Percentile(totals, 0.5), Percentile(totals, 0.1), Percentile(totals, 0.9));
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  std::string config, csr, identity;
  int runs = 20;
  bool child = false;
  long spawned_at = 0;
  int code = base::ParseCommandLine(
      "stage-bench: one etcd-signer request's time, step by step, in fresh processes", argc, argv,
      [&](base::Flags& app) {
        app.Option("--config", config, "The signer's TOML configuration").Required();
        app.Option("--csr-b64", csr, "A base64 CSR, as the signer reads it").Required();
        app.Option("--identity", identity, "As etcd-signer --identity");
        app.Option("--runs", runs, "Fresh processes to time").Range(1, 10000);
        app.Switch("--child", child, "Run as the timed child").Hidden();
        app.Option("--spawned-at", spawned_at, "The parent's clock at the spawn").Hidden();
      });
  if (code >= 0) return code;
  if (child) return Child(spawned_at, config, csr, identity);
  std::vector<std::string> child_args = {"--config", config, "--csr-b64", csr};
  if (!identity.empty()) child_args.insert(child_args.end(), {"--identity", identity});
  return Parent("/proc/self/exe", child_args, runs);
} catch (const base::Failure& f) {
  std::fprintf(stderr, "%s\n", base::FailureLine("stage-bench", f).c_str());
  return static_cast<int>(f.code());
}
