// SPDX-License-Identifier: Apache-2.0
// Test support: temp dirs, running real programs, free loopback ports, a SoftHSM CA token.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace testing_support {

// A fresh directory under $TMPDIR, removed with everything in it at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct RunResult {
  int exit_code = -1;  // 128+N when killed by signal N
  std::string out;
  std::string err;
  long max_rss_kib = 0;  // the child's peak resident set (wait4's ru_maxrss)
};

struct RunOptions {
  std::string input;
  std::map<std::string, std::string> env;  // added to (or replacing in) the current environment
  std::vector<std::string> unset_env;
  std::chrono::milliseconds timeout{60000};
  // Feed stdin slowly: one byte per `drip` (for timeout tests); 0 = all at once.
  std::chrono::milliseconds drip{0};
  bool keep_stdin_open = false;  // never close stdin (a client that stalls)
};

// Runs argv[0] (a path) with posix_spawn; collects stdout/stderr. Kills it at the timeout.
RunResult Run(const std::vector<std::string>& argv, const RunOptions& options = {});

// Starts a background process; Stop() (or the destructor) sends SIGTERM then SIGKILL.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {},
          const std::string& log_path = "");
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  int pid() const { return pid_; }
  bool Running();
  void Stop();
  // The wait status, once Running() has seen the process end.
  int status() const { return status_; }

 private:
  int pid_ = -1;
  int status_ = -1;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

// True if nothing listens on 127.0.0.1:port and it can be bound.
bool PortIsFree(int port);

// Waits until 127.0.0.1:port accepts connections.
bool WaitForPort(int port, std::chrono::milliseconds timeout);

std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& contents, unsigned mode = 0644);
std::vector<std::string> Lines(const std::string& text);

// The reason code of the base::Failure that `f` throws; "" when it throws none.
std::string Reason(const std::function<void()>& f);

// Paths of the built programs and the source tree (from CMake).
std::string Binary(const std::string& name);  // etcd-hsm, etcd-signer, etcd-requester
std::string SourceDir();

constexpr const char* kSoftHsmModule = "/usr/lib/softhsm/libsofthsm2.so";

// A throwaway SoftHSM token with a CA key and certificate, made by softhsm-fixtures/make-ca-token.
struct CaToken {
  explicit CaToken(const std::string& dir, const std::string& key_type = "ec-p256",
                   const std::map<std::string, std::string>& extra_env = {});
  std::string dir;
  std::string conf;      // SOFTHSM2_CONF
  std::string key_uri;   // pkcs11:token=etcd-ca;object=ca-key;type=private
  std::string pin_file;
  std::string ca_cert;
  std::map<std::string, std::string> env() const { return {{"SOFTHSM2_CONF", conf}}; }
};

// The account the test sshd logs into and the signer runs as: created on first use like an
// operator would (shell /bin/sh, no rc files, password field '*' so that sshd with UsePAM=no
// accepts keys). Never root: root's rc files here cost half a second per request.
std::string SignerUser();
// Hands `path` (recursively) to the signer account, e.g. a token directory and its PIN file.
void GiveToSigner(const std::string& path);

// A real sshd on 127.0.0.1:<free port> with its own host key, config and authorized_keys, logging
// in as SignerUser(). Keys are added with forced commands exactly as an operator would write them.
class SshServer {
 public:
  // `user`: the account keys log into (default: SignerUser()); "root" for an operators' admin
  // channel (PermitRootLogin forced-commands-only), whose directory is then left root's.
  explicit SshServer(const std::string& dir, const std::string& user = "");
  ~SshServer();
  // Makes a new ed25519 client key pair DIR/<name> (+ .pub); returns the private key path.
  std::string NewClientKey(const std::string& name);
  // Appends `restrict,command="<command>" <pubkey>` to authorized_keys.
  void Authorize(const std::string& private_key_path, const std::string& command);
  void Start();
  void Stop();
  int port() const { return port_; }
  const std::string& known_hosts() const { return known_hosts_; }
  std::string user() const;
  // OpenSSH's own client, for comparison: ssh -i key ... user@127.0.0.1 <command>.
  RunResult Ssh(const std::string& private_key_path, const std::string& command,
                const std::string& input = "",
                std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  std::string dir_;
  std::string user_;
  int port_ = 0;
  std::string known_hosts_;
  std::unique_ptr<Process> sshd_;
};

// The signer side as an operator deploys it: a SoftHSM CA token, the signer's TOML, and an sshd
// whose authorized_keys runs etcd-signer as a forced command bound to one master name per key.
class SignerDeployment {
 public:
  // `dir` must outlive the deployment. sshd is started by Start().
  explicit SignerDeployment(const std::string& dir);
  // Rewrites signer.toml; `extra` is appended TOML (e.g. "lifetime_min = 60\n").
  void WriteSignerConfig(const std::string& extra = "");
  // A new SSH key for `name`, authorized with `restrict,command="... --identity <name> sign"`
  // (or with `command` instead, when given). Returns the private key path.
  std::string AddMaster(const std::string& name, const std::string& command = "");
  void Start() { ssh.Start(); }
  // etcd-requester <verb> with the flags for `name` and its key file under dir.
  std::vector<std::string> RequesterArgs(const std::string& verb, const std::string& name,
                                         const std::string& ssh_key) const;
  std::string SignerCommand(const std::string& identity) const;

  std::string dir;
  CaToken ca;
  SshServer ssh;
};

// The UTC time `seconds` from now, RFC 3339 ("2026-12-04T08:00:00Z").
std::string UtcIn(long seconds);

// openssl CLI helpers (the reference implementation the tests compare against).
RunResult OpenSsl(const std::vector<std::string>& args, const std::string& input = "");

// The SHA-256 fingerprint of the (first) certificate in a PEM file as openssl prints it
// ("AB:CD:..."): what an operator pins in ca_sha256.
std::string RootSha256(const std::string& pem_path);

}  // namespace testing_support
