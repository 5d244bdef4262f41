// SPDX-License-Identifier: Apache-2.0
// `fleet push`, `fleet status`, `fleet deny-master`, `fleet allow-master` (#29): the governance
// document taken to every signer host over SSH (each host's `etcd-signerctl governance agent`,
// the forced command of the operators' fleet key), the hosts compared, and the incident of a
// compromised master as one command: next version (identity denied, every valid serial of it on
// any host revoked), pushed, the CRL fetched by every etcd member, and proven.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <thread>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <toml++/toml.h>

#include "base/duration.h"
#include "base/failure.h"
#include "base/files.h"
#include "base/text.h"
#include "hsm/module.h"
#include "hsm/pin.h"
#include "hsm/session.h"
#include "hsm/uri.h"
#include "pki/crl.h"
#include "requester/ssh_client.h"
#include "signer/governance.h"
#include "signerctl/verbs.h"

extern char** environ;

namespace signerctl {
namespace {

using base::ExitCode;
using base::Failure;
using Clock = std::chrono::steady_clock;

// --- the fleet file -----------------------------------------------------------------------------

struct FleetHost {
  std::string name;
  std::string ssh;       // USER@HOST[:PORT]
  std::string endpoint;  // members: https://HOST:PORT, for the health check after a restart
  std::string ssh_key;   // this host's key when not the fleet's (another forced command)
};

// The operators' access to etcd's own authentication (RBAC with the client certificate's CN as
// the user name): the incident revokes the denied master's role.
struct EtcdAdmin {
  std::vector<std::string> endpoints;
  std::string cacert, cert, key;  // etcd's server CA; the operators' root user's certificate and key
  std::string role;               // the masters' narrow role (e.g. kube-apiserver)
  std::string etcdctl = "/usr/bin/etcdctl";
};

struct Fleet {
  std::string ssh_key;      // the operators' fleet key (file or pkcs11: URI)
  std::string known_hosts;  // pinned host keys of every signer host and member
  std::string module;       // for a pkcs11: ssh_key
  std::string pin_file;
  base::Seconds warning{7 * 24 * 3600};
  base::Seconds connect_timeout{10};
  std::vector<FleetHost> signers;
  // Members: SSH targets whose forced command is `etcd-requester crl --config ...` (it fetches the
  // fleet's CRL for etcd's --client-crl-file and says its cRLNumber).
  std::vector<FleetHost> members;
  std::optional<EtcdAdmin> etcd;
};

[[noreturn]] void BadFleet(const std::string& file, const std::string& why) {
  throw Failure(ExitCode::kConfig, "bad-fleet", file + ": " + why);
}

std::vector<FleetHost> Hosts(const toml::node& node, const std::string& file, const std::string& table) {
  if (!node.is_table()) BadFleet(file, table + " must be tables [" + table + ".NAME]");
  std::vector<FleetHost> hosts;
  for (const auto& [name, value] : *node.as_table()) {
    if (!value.is_table()) BadFleet(file, "[" + table + "." + std::string(name.str()) + "] must be a table");
    const toml::table& t = *value.as_table();
    for (const auto& [key, v] : t) {
      bool known = key.str() == "ssh" || key.str() == "ssh_key" || (table == "members" && key.str() == "endpoint");
      if (!known) BadFleet(file, table + "." + std::string(name.str()) + ": unknown key '" + std::string(key.str()) + "'");
    }
    auto ssh = t["ssh"].value<std::string>();
    if (!ssh) BadFleet(file, table + "." + std::string(name.str()) + " needs ssh = \"USER@HOST[:PORT]\"");
    requester::ParseServer(*ssh);
    hosts.push_back({std::string(name.str()), *ssh, t["endpoint"].value_or(std::string()),
                     t["ssh_key"].value_or(std::string())});
  }
  return hosts;
}

Fleet LoadFleet(const std::string& file) {
  if (file.empty()) throw Failure(ExitCode::kUsage, "usage", "fleet needs --fleet FILE");
  std::string text;
  try {
    text = base::ReadFileLimited(file, 1 << 20);
  } catch (const Failure& f) {
    throw Failure(ExitCode::kConfig, "bad-fleet", std::string("cannot read the fleet file: ") + f.what());
  }
  toml::table t;
  try {
    t = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    BadFleet(file, "line " + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
  }
  Fleet f;
  auto str = [&](const char* key) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return std::string();
    if (!n->is_string()) BadFleet(file, std::string(key) + " must be a string");
    return *n->value<std::string>();
  };
  auto duration = [&](const char* key, base::Seconds fallback) {
    std::string value = str(key);
    if (value.empty()) return fallback;
    try {
      return base::ParseDuration(value);
    } catch (const Failure& e) {
      BadFleet(file, std::string(key) + ": " + e.what());
    }
  };
  for (const auto& [key, value] : t) {
    static const std::set<std::string_view> known = {"ssh_key", "known_hosts", "module", "pin_file", "warning",
                                                     "connect_timeout", "signers", "members", "etcd"};
    if (known.count(key.str()) == 0) BadFleet(file, "unknown key '" + std::string(key.str()) + "'");
  }
  f.ssh_key = str("ssh_key");
  f.known_hosts = str("known_hosts");
  f.module = str("module");
  f.pin_file = str("pin_file");
  f.warning = duration("warning", f.warning);
  f.connect_timeout = duration("connect_timeout", f.connect_timeout);
  if (f.known_hosts.empty()) BadFleet(file, "known_hosts is required: every host key is pinned");
  if (const toml::node* n = t.get("signers")) f.signers = Hosts(*n, file, "signers");
  if (const toml::node* n = t.get("members")) f.members = Hosts(*n, file, "members");
  if (f.signers.empty()) BadFleet(file, "no [signers.NAME]");
  if (const toml::node* n = t.get("etcd")) {
    if (!n->is_table()) BadFleet(file, "[etcd] must be a table");
    const toml::table& e = *n->as_table();
    EtcdAdmin admin;
    for (const auto& [key, v] : e) {
      std::string k(key.str());
      if (k == "endpoints" && v.is_array()) {
        for (const auto& item : *v.as_array()) {
          if (!item.is_string()) BadFleet(file, "etcd.endpoints must be strings");
          admin.endpoints.push_back(*item.value<std::string>());
        }
      } else if (v.is_string() && (k == "cacert" || k == "cert" || k == "key" || k == "role" || k == "etcdctl")) {
        std::string value = *v.value<std::string>();
        (k == "cacert" ? admin.cacert : k == "cert" ? admin.cert : k == "key" ? admin.key : k == "role" ? admin.role : admin.etcdctl) = value;
      } else {
        BadFleet(file, "etcd: unknown or mistyped key '" + k + "'");
      }
    }
    if (admin.endpoints.empty() || admin.cacert.empty() || admin.cert.empty() || admin.key.empty() || admin.role.empty()) {
      BadFleet(file, "[etcd] needs endpoints, cacert, cert, key (the operators' root user) and role (the masters' role)");
    }
    f.etcd = admin;
  }
  return f;
}

requester::SshOptions OptionsFor(const Fleet& fleet, const FleetHost& host) {
  requester::SshOptions o;
  o.server = requester::ParseServer(host.ssh);
  o.known_hosts = fleet.known_hosts;
  o.identity_file = host.ssh_key.empty() ? fleet.ssh_key : host.ssh_key;
  o.module = fleet.module;
  o.pin.file = fleet.pin_file;
  o.connect_timeout = fleet.connect_timeout;
  o.io_timeout = std::chrono::seconds(60);
  return o;
}

// One request to a host's forced command: the answer, or the failure as one line.
struct HostAnswer {
  bool reached = false;
  int exit_status = -1;
  std::string out, line;  // stdout; the last stderr line or the connection's failure
};

HostAnswer Ask(const Fleet& fleet, const FleetHost& host, const std::string& request, const std::string& input = "") {
  HostAnswer a;
  try {
    requester::SshClient ssh(OptionsFor(fleet, host));
    a.reached = true;
    requester::ExecResult r = ssh.Exec(request, input);
    a.exit_status = r.exit_status;
    a.out = r.out;
    std::string err = r.err;
    while (!err.empty() && (err.back() == '\n' || err.back() == '\r')) err.pop_back();
    if (auto nl = err.find_last_of('\n'); nl != std::string::npos) err.erase(0, nl + 1);
    a.line = base::Printable(err, 300);
  } catch (const Failure& f) {
    a.line = base::Printable(f.what(), 300);
  }
  return a;
}

std::string Seconds(Clock::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", std::chrono::duration<double>(d).count());
  return buf;
}

// --- etcd: the operators' etcdctl -----------------------------------------------------------------

struct ProgramResult {
  int status = -1;  // the exit status; -1 when it could not run or was killed at the timeout
  std::string output;
};

// `argv` (no shell), stdout and stderr together (at most 64 KiB kept), at most `timeout`.
ProgramResult RunCaptured(const std::vector<std::string>& argv, std::chrono::seconds timeout) {
  ProgramResult result;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return result;
  std::vector<char*> cargv;
  std::vector<std::string> words = argv;
  for (auto& w : words) cargv.push_back(w.data());
  cargv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, cargv[0], &actions, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    result.output = argv[0] + ": " + std::strerror(rc);
    return result;
  }
  auto until = Clock::now() + timeout;
  char buf[4096];
  bool timed_out = false;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    if (result.output.size() < 65536) result.output.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!timed_out && WIFEXITED(status)) result.status = WEXITSTATUS(status);
  return result;
}

ProgramResult EtcdCtl(const EtcdAdmin& admin, const std::vector<std::string>& endpoints, std::vector<std::string> args) {
  std::string joined;
  for (const auto& e : endpoints) joined += (joined.empty() ? "" : ",") + e;
  std::vector<std::string> argv{admin.etcdctl, "--endpoints", joined,  "--cacert",       admin.cacert,       "--cert",
                                admin.cert,    "--key",       admin.key, "--dial-timeout", "3s", "--command-timeout", "5s"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCaptured(argv, std::chrono::seconds(30));
}

std::string FirstLine(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  return base::Printable(line, 200);
}

// Step 5 of the incident: etcd's own authorization. The master's role is revoked, so the next
// request on a connection it already holds is refused (permission denied); its watch streams and
// lease keep-alives are not, which the restart of step 6 ends.
bool RevokeEtcdRole(const Fleet& fleet, const std::string& name, std::string& report) {
  if (!fleet.etcd) {
    report += "  etcd authentication is not configured ([etcd] in the fleet file): a connection " + name +
              " already holds keeps its rights until it drops (SECURITY.md)\n";
    return true;
  }
  ProgramResult r = EtcdCtl(*fleet.etcd, fleet.etcd->endpoints, {"user", "revoke-role", name, fleet.etcd->role});
  bool had_none = r.output.find("role is not granted") != std::string::npos ||
                  r.output.find("user name not found") != std::string::npos;
  report += "  etcd: " + (r.status == 0 ? "revoked role " + fleet.etcd->role + " from user " + name
                          : had_none    ? "user " + name + " holds no role " + fleet.etcd->role
                                        : "could NOT revoke role " + fleet.etcd->role + ": " + FirstLine(r.output)) +
            "\n";
  return r.status == 0 || had_none;
}

// Step 6: established streams end only when the member restarts; one member at a time, each
// healthy again before the next, so the cluster keeps its quorum.
bool RestartMembers(const Fleet& fleet, std::string& report) {
  bool any = false, all = true;
  for (const FleetHost& member : fleet.members) {
    if (member.endpoint.empty()) continue;
    any = true;
    if (!fleet.etcd) {
      report += "  member " + member.name + ": not restarted: its health cannot be checked without [etcd] credentials\n";
      all = false;
      continue;
    }
    auto started = Clock::now();
    HostAnswer a = Ask(fleet, member, "restart-etcd");
    if (a.exit_status != 0) {
      report += "  member " + member.name + ": restart FAILED: " + a.line + "\n";
      all = false;
      break;  // never take a second member down while one may be down
    }
    bool healthy = false;
    for (auto until = Clock::now() + std::chrono::seconds(60); !healthy && Clock::now() < until;) {
      healthy = EtcdCtl(*fleet.etcd, {member.endpoint}, {"endpoint", "health"}).status == 0;
      if (!healthy) std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    report += "  member " + member.name + ": restarted, " + (healthy ? "healthy" : "NOT healthy after 60s") + " (" +
              Seconds(Clock::now() - started) + ")\n";
    if (!healthy) {
      all = false;
      break;
    }
  }
  if (!any) {
    report += "  remaining step: restart each etcd member, one at a time with `etcdctl endpoint health` between "
              "(no member has an endpoint in the fleet file): a CRL and a revoked role do not end watch streams "
              "and lease keep-alives opened before\n";
  }
  return all;
}

// --- push ---------------------------------------------------------------------------------------

struct PushResult {
  bool all_installed = true;
  std::string report;
};

// Installs `pem` (of `version`) on every signer host; one line per host.
PushResult Push(const Fleet& fleet, const std::string& pem, std::uint64_t version) {
  PushResult result;
  for (const FleetHost& host : fleet.signers) {
    auto started = Clock::now();
    HostAnswer a = Ask(fleet, host, "install", pem);
    std::string took = " (" + Seconds(Clock::now() - started) + ")";
    if (a.exit_status == 0) {
      std::string what = a.out.substr(0, a.out.find('\n'));
      result.report += "  " + host.name + ": " + base::Printable(what, 200) + took + "\n";
    } else {
      result.all_installed = false;
      result.report += "  " + host.name + ": " + (a.reached ? "REFUSED version " + std::to_string(version) + ": " : "UNREACHABLE: ") +
                       a.line + took + "\n";
    }
  }
  return result;
}

struct PushFlags {
  std::string fleet, file;
};

int RunPush(const PushFlags& f) {
  Fleet fleet = LoadFleet(f.fleet);
  std::string pem = base::ReadFileLimited(f.file, signer::kMaxGovernanceBytes, "governance-invalid");
  signer::GovernanceDocument doc = signer::ReadGovernance(pem, {}, f.file);
  PushResult r = Push(fleet, pem, doc.state.version);
  Print("push of governance version " + std::to_string(doc.state.version) + " (SHA-256 " + doc.sha256 + "):\n" + r.report);
  if (!r.all_installed) {
    throw Failure(ExitCode::kUnavailable, "push-incomplete",
                  "not every signer host has version " + std::to_string(doc.state.version) + " (see above)");
  }
  return 0;
}

// --- status -------------------------------------------------------------------------------------

struct HostStatus {
  std::string name;
  bool reached = false;
  std::string error;
  nlohmann::json info;
};

std::vector<HostStatus> CollectStatus(const Fleet& fleet) {
  std::vector<HostStatus> all;
  for (const FleetHost& host : fleet.signers) {
    HostStatus s{host.name};
    HostAnswer a = Ask(fleet, host, "info");
    if (a.exit_status == 0) {
      s.info = nlohmann::json::parse(a.out, nullptr, false);
      s.reached = s.info.is_object();
      if (!s.reached) s.error = "its info answer is not JSON";
    } else {
      s.error = a.line.empty() ? "exit status " + std::to_string(a.exit_status) : a.line;
    }
    all.push_back(std::move(s));
  }
  return all;
}

std::string Field(const nlohmann::json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return "-";
  const nlohmann::json& v = j[key];
  return base::Printable(v.is_string() ? v.get<std::string>() : v.dump(), 80);
}

struct StatusFlags {
  std::string fleet;
  bool json = false;
};

int RunStatus(const Context& ctx, const StatusFlags& f) {
  Fleet fleet = LoadFleet(f.fleet);
  std::vector<HostStatus> hosts = CollectStatus(fleet);
  std::vector<std::string> problems;
  std::set<std::string> digests;
  for (const HostStatus& h : hosts) {
    if (!h.reached) {
      problems.push_back(h.name + " is unreachable: " + h.error);
      continue;
    }
    digests.insert(Field(h.info, "governance_sha256"));
    std::string state = Field(h.info, "governance_state");
    if (state != "ok") problems.push_back(h.name + ": governance " + state);
    if (h.info.contains("governance_expires") && h.info["governance_expires"].is_string()) {
      try {
        if (base::ParseRfc3339(h.info["governance_expires"].get<std::string>()) <= ctx.now + fleet.warning) {
          problems.push_back(h.name + ": its governance document expires within " + base::FormatDuration(fleet.warning));
        }
      } catch (const Failure&) {
        problems.push_back(h.name + ": governance_expires is not a time");
      }
    }
  }
  if (digests.size() > 1) problems.push_back("the signer hosts do not have the same governance document");
  if (f.json) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const HostStatus& h : hosts) {
      nlohmann::ordered_json row;
      row["host"] = h.name;
      row["reachable"] = h.reached;
      if (!h.reached) row["error"] = h.error;
      for (const char* key : {"governance_version", "governance_sha256", "governance_expires", "governance_state",
                              "audit_head", "chain_not_after", "ca_not_after", "crl_number", "version"}) {
        if (h.info.is_object() && h.info.contains(key)) row[key] = h.info[key];
      }
      out.push_back(row);
    }
    Print(out.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace) + "\n");
  } else {
    char buf[1024];
    std::string text;
    std::snprintf(buf, sizeof buf, "%-14s %-5s %-8s %-14s %-21s %-12s %-21s %-5s %s\n", "HOST", "UP", "VERSION",
                  "SHA256", "EXPIRES", "AUDIT HEAD", "CA NOT AFTER", "CRL", "SOFTWARE");
    text += buf;
    for (const HostStatus& h : hosts) {
      std::string head = Field(h.info, "audit_head");
      std::string ca = Field(h.info, h.info.is_object() && h.info.contains("chain_not_after") ? "chain_not_after" : "ca_not_after");
      std::snprintf(buf, sizeof buf, "%-14s %-5s %-8s %-14s %-21s %-12s %-21s %-5s %s\n",
                    base::Printable(h.name, 14).c_str(), h.reached ? "yes" : "NO",
                    Field(h.info, "governance_version").c_str(), Field(h.info, "governance_sha256").substr(0, 12).c_str(),
                    Field(h.info, "governance_expires").c_str(), head.substr(0, 12).c_str(), ca.c_str(),
                    Field(h.info, "crl_number").c_str(), Field(h.info, "version").c_str());
      text += buf;
    }
    for (const std::string& p : problems) text += "PROBLEM: " + p + "\n";
    Print(text);
  }
  return problems.empty() ? 0 : 1;
}

// --- the incident -------------------------------------------------------------------------------

// The governance key, as `governance sign` takes it.
struct SigningFlags {
  std::string module, key, pin_file, cert, out;
  std::string valid = "30d";
};

void AddSigningFlags(base::Flags& cmd, SigningFlags& s) {
  cmd.Option("--module", s.module, "PKCS#11 module of the governance token (or module-path= in --key)");
  // Not --key: allow-master's --key is the master's new key.
  cmd.Option("--governance-key", s.key, "PKCS#11 URI of the governance key").Required();
  cmd.Option("--pin-file", s.pin_file, "File holding the governance token's PIN").Required();
  cmd.Option("--cert", s.cert, "The governance key's certificate").Required();
  cmd.Option("--out", s.out, "Where to write the new document (and its STATE.toml as OUT.toml)").Required();
  cmd.Option("--valid", s.valid, "The new document expires this long from now (default 30d)");
}

// The document in force on the fleet: the highest version any signer host has (each host
// verified it against its governance_cert when it installed it).
// `governance_cert`: the governance key's certificate (--cert), which every document followed must
// verify with: a signer host cannot hand the operators a state of its own to sign.
signer::GovernanceDocument FleetDocument(const Fleet& fleet, const std::string& governance_cert, std::string& report) {
  pki::X509Ptr trusted = pki::ReadCertificateFile(governance_cert);
  std::optional<signer::GovernanceDocument> best;
  for (const FleetHost& host : fleet.signers) {
    HostAnswer a = Ask(fleet, host, "document");
    if (a.exit_status != 0) {
      report += "  " + host.name + ": no document read (" + a.line + ")\n";
      continue;
    }
    try {
      signer::GovernanceDocument doc = signer::ReadGovernance(a.out, {trusted.get()}, host.name + "'s document");
      if (!best || doc.state.version > best->state.version) best = std::move(doc);
    } catch (const Failure& f) {
      report += "  " + host.name + ": " + f.what() + "\n";
    }
  }
  if (!best) throw Failure(ExitCode::kUnavailable, "no-governance", "no signer host has a governance document to follow");
  return std::move(*best);
}

// Signs `state` as the next version and writes OUT and OUT.toml.
std::string SignNext(const Context& ctx, const SigningFlags& s, signer::GovernanceState state) {
  state.issued = std::chrono::floor<std::chrono::seconds>(ctx.now);
  state.expires = state.issued + base::ParseDuration(s.valid);
  pki::X509Ptr cert = pki::ReadCertificateFile(s.cert);
  std::string pem = SignWithGovernanceToken(s.module, s.key, s.pin_file, cert.get(), state);
  base::AtomicFileWriter(s.out, 0644).Write(pem);
  base::AtomicFileWriter(s.out + ".toml", 0644).Write(signer::EncodeGovernanceToml(state));
  return pem;
}

// Every member fetches the CRL (its forced command runs `etcd-requester crl`) and must hold a
// cRLNumber of at least `version`: the document's revocations are then in its --client-crl-file.
bool MembersHold(const Fleet& fleet, std::uint64_t version, std::string& report) {
  bool all = true;
  for (const FleetHost& member : fleet.members) {
    auto started = Clock::now();
    HostAnswer a = Ask(fleet, member, "crl");
    std::string took = " (" + Seconds(Clock::now() - started) + ")";
    std::optional<std::uint64_t> number;
    if (a.exit_status == 0) {
      auto at = a.out.find("cRLNumber ");
      if (at != std::string::npos) number = std::strtoull(a.out.c_str() + at + 10, nullptr, 10);
    }
    bool holds = number && *number >= version;
    all = all && holds;
    report += "  member " + member.name + ": " +
              (holds ? "its CRL has cRLNumber " + std::to_string(*number)
                     : a.exit_status == 0 ? "its CRL is older than version " + std::to_string(version) + ": " +
                                                base::Printable(a.out.substr(0, a.out.find('\n')), 200)
                                          : (a.reached ? "REFUSED: " : "UNREACHABLE: ") + a.line) +
              took + "\n";
  }
  return all;
}

struct DenyFlags {
  std::string fleet, name, reason = "keyCompromise";
  SigningFlags signing;
};

int RunDenyMaster(const Context& ctx, const DenyFlags& f) {
  auto started = Clock::now();
  Fleet fleet = LoadFleet(f.fleet);
  pki::RevocationReason reason = pki::ParseReason(f.reason);
  std::string report;
  auto step = [&](const std::string& what, Clock::time_point since) {
    report += what + " (" + Seconds(Clock::now() - since) + ")\n";
  };
  auto t = Clock::now();
  signer::GovernanceDocument current = FleetDocument(fleet, f.signing.cert, report);
  signer::GovernanceState next = current.state;
  next.version = current.state.version + 1;
  if (!next.DeniesIdentity(f.name)) next.denied_identities.push_back(f.name);
  // Its keys are the stolen ones: no approval of them survives (allow-master approves the new key).
  std::erase_if(next.approved_keys, [&](const signer::GovernanceKey& k) { return k.identity == f.name; });
  // Every valid serial of the name, from every host's audit log.
  std::set<pki::SerialBytes> revoked;
  for (const auto& r : next.revoked) revoked.insert(r.serial);
  std::size_t added = 0;
  bool all_logs = true;
  for (const FleetHost& host : fleet.signers) {
    HostAnswer a = Ask(fleet, host, "serials " + f.name);
    nlohmann::json rows = a.exit_status == 0 ? nlohmann::json::parse(a.out, nullptr, false) : nlohmann::json();
    if (!rows.is_array()) {
      all_logs = false;
      report += "  " + host.name + ": its serials of " + f.name + " could not be read: " + a.line + "\n";
      continue;
    }
    for (const auto& row : rows) {
      if (!row.is_object() || !row.contains("serial") || !row["serial"].is_string()) continue;
      pki::SerialBytes serial = pki::ParseSerial(row["serial"].get<std::string>());
      if (revoked.insert(serial).second) {
        next.revoked.push_back({serial, reason});
        ++added;
      }
    }
    report += "  " + host.name + ": " + std::to_string(rows.size()) + " valid serials of " + f.name + "\n";
  }
  // The same rules as any source: sorted, no duplicates (an approved key of the name stays
  // approved but gets nothing while the name is denied).
  std::string normalized = signer::EncodeGovernanceToml(next);
  next = signer::ParseGovernanceToml(normalized, "the next state");
  next.version = current.state.version + 1;
  step("1. next state: version " + std::to_string(next.version) + ", " + f.name + " denied, " + std::to_string(added) +
           " serials revoked",
       t);
  t = Clock::now();
  std::string pem = SignNext(ctx, f.signing, next);
  step("2. signed " + f.signing.out, t);
  t = Clock::now();
  PushResult pushed = Push(fleet, pem, next.version);
  report += pushed.report;
  step("3. pushed to " + std::to_string(fleet.signers.size()) + " signer hosts", t);
  t = Clock::now();
  bool members = MembersHold(fleet, next.version, report);
  step("4. CRL on " + std::to_string(fleet.members.size()) + " etcd members", t);
  t = Clock::now();
  bool role = RevokeEtcdRole(fleet, f.name, report);
  step("5. etcd role of " + f.name, t);
  t = Clock::now();
  bool restarted = RestartMembers(fleet, report);
  step("6. established connections dropped (rolling restart)", t);
  t = Clock::now();
  std::vector<HostStatus> hosts = CollectStatus(fleet);
  bool agree = true;
  for (const HostStatus& h : hosts) {
    bool has = h.reached && h.info.value("governance_version", std::uint64_t{0}) == next.version;
    agree = agree && has;
    report += "  " + h.name + ": " + (has ? "reports version " + std::to_string(next.version) : "does NOT report it") + "\n";
  }
  step("7. every signer host reports version " + std::to_string(next.version), t);
  bool ok = pushed.all_installed && members && agree && all_logs && role && restarted;
  report += std::string(ok ? "done" : "INCOMPLETE") + ": " + f.name + " cut off in " + Seconds(Clock::now() - started) +
            (ok ? "" : " — repeat the command, or the failed steps by hand (operator-guide.md §8)") + "\n";
  Print(report);
  if (!ok) throw Failure(ExitCode::kUnavailable, "incident-incomplete", "not every part of the incident holds (see above)");
  return 0;
}

struct AllowFlags {
  std::string fleet, name, key_sha256;
  SigningFlags signing;
};

int RunAllowMaster(const Context& ctx, const AllowFlags& f) {
  Fleet fleet = LoadFleet(f.fleet);
  std::string report;
  signer::GovernanceDocument current = FleetDocument(fleet, f.signing.cert, report);
  signer::GovernanceState next = current.state;
  std::erase(next.denied_identities, f.name);
  if (!next.ApprovesKey(f.name, f.key_sha256)) next.approved_keys.push_back({f.name, f.key_sha256});
  std::erase_if(next.denied_keys, [&](const signer::GovernanceKey& k) { return k.identity == f.name && k.sha256 == f.key_sha256; });
  next = signer::ParseGovernanceToml(signer::EncodeGovernanceToml(next), "the next state");
  next.version = current.state.version + 1;
  std::string pem = SignNext(ctx, f.signing, next);
  PushResult pushed = Push(fleet, pem, next.version);
  Print(report + "version " + std::to_string(next.version) + ": " + f.name + " allowed with key " + f.key_sha256 + "\n" +
        pushed.report);
  if (!pushed.all_installed) {
    throw Failure(ExitCode::kUnavailable, "push-incomplete", "not every signer host has version " + std::to_string(next.version));
  }
  return 0;
}

}  // namespace

VerbRun DefineFleetPush(base::Flags& cmd) {
  auto f = std::make_shared<PushFlags>();
  cmd.Option("--fleet", f->fleet, "The fleet file (signer hosts, members, the fleet key)").Required();
  cmd.Option("file", f->file, "The signed governance document").Required();
  return [f](const Context&) { return RunPush(*f); };
}

VerbRun DefineFleetStatus(base::Flags& cmd) {
  auto f = std::make_shared<StatusFlags>();
  cmd.Option("--fleet", f->fleet, "The fleet file").Required();
  cmd.Switch("--json", f->json, "One JSON array, a host each");
  return [f](const Context& ctx) { return RunStatus(ctx, *f); };
}

VerbRun DefineFleetDenyMaster(base::Flags& cmd) {
  auto f = std::make_shared<DenyFlags>();
  cmd.Option("--fleet", f->fleet, "The fleet file").Required();
  cmd.Option("name", f->name, "The compromised master's name").Required();
  cmd.Option("--reason", f->reason, "Revocation reason of its serials (default keyCompromise)");
  AddSigningFlags(cmd, f->signing);
  return [f](const Context& ctx) { return RunDenyMaster(ctx, *f); };
}

VerbRun DefineFleetAllowMaster(base::Flags& cmd) {
  auto f = std::make_shared<AllowFlags>();
  cmd.Option("--fleet", f->fleet, "The fleet file").Required();
  cmd.Option("name", f->name, "The rebuilt master's name").Required();
  cmd.Option("--key", f->key_sha256, "SHA-256 of its new key (etcd-signerctl pending shows it)").Required();
  AddSigningFlags(cmd, f->signing);
  return [f](const Context& ctx) { return RunAllowMaster(ctx, *f); };
}

}  // namespace signerctl
