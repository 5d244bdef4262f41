// SPDX-License-Identifier: Apache-2.0
#include "test_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "base/failure.h"

extern char** environ;

namespace testing_support {
namespace {

std::vector<std::string> BuildEnv(const std::map<std::string, std::string>& add,
                                  const std::vector<std::string>& unset) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& name : unset) env.erase(name);
  for (const auto& [k, v] : add) env[k] = v;
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

std::vector<char*> CStrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

int WaitStatusToCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/ehs-test.XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = buf.data();
  ::chmod(path_.c_str(), 0755);
}

TempDir::~TempDir() {
  if (std::getenv("KEEP_TEST_DIRS") != nullptr) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

RunResult Run(const std::vector<std::string>& argv_in, const RunOptions& options) {
  std::vector<std::string> argv = argv_in;
  std::vector<std::string> envs = BuildEnv(options.env, options.unset_env);
  auto cargv = CStrings(argv);
  auto cenv = CStrings(envs);
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC)) {
    throw std::runtime_error("pipe failed");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, cargv[0], &actions, nullptr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  if (rc != 0) {
    ::close(in[1]);
    ::close(out[0]);
    ::close(err[0]);
    throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
  }
  ::signal(SIGPIPE, SIG_IGN);
  RunResult result;
  std::size_t written = 0;
  int in_fd = in[1];
  if (options.input.empty() && !options.keep_stdin_open) {
    ::close(in_fd);
    in_fd = -1;
  }
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  auto next_drip = std::chrono::steady_clock::now();
  bool out_open = true, err_open = true;
  while (out_open || err_open) {
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      ::kill(pid, SIGKILL);
      break;
    }
    std::vector<pollfd> fds;
    if (out_open) fds.push_back({out[0], POLLIN, 0});
    if (err_open) fds.push_back({err[0], POLLIN, 0});
    bool want_write = in_fd >= 0 && written < options.input.size() &&
                      (options.drip.count() == 0 || now >= next_drip);
    if (want_write) fds.push_back({in_fd, POLLOUT, 0});
    int wait_ms = options.drip.count() > 0 ? 10 : 100;
    ::poll(fds.data(), fds.size(), wait_ms);
    for (const auto& p : fds) {
      if (p.revents == 0) continue;
      if (p.fd == in_fd) {
        std::size_t chunk = options.drip.count() > 0 ? 1 : options.input.size() - written;
        ssize_t n = ::write(in_fd, options.input.data() + written, chunk);
        if (n > 0) {
          written += static_cast<std::size_t>(n);
          next_drip = std::chrono::steady_clock::now() + options.drip;
        }
        if (n < 0 || written == options.input.size()) {
          if (!options.keep_stdin_open || n < 0) {
            ::close(in_fd);
            in_fd = -1;
          }
        }
        continue;
      }
      char buf[65536];
      ssize_t n = ::read(p.fd, buf, sizeof buf);
      std::string& sink = p.fd == out[0] ? result.out : result.err;
      if (n > 0) {
        sink.append(buf, static_cast<std::size_t>(n));
      } else {
        (p.fd == out[0] ? out_open : err_open) = false;
      }
    }
  }
  if (in_fd >= 0) ::close(in_fd);
  ::close(out[0]);
  ::close(err[0]);
  int status = 0;
  struct rusage usage {};
  ::wait4(pid, &status, 0, &usage);
  result.exit_code = WaitStatusToCode(status);
  result.max_rss_kib = usage.ru_maxrss;
  return result;
}

Process::Process(const std::vector<std::string>& argv_in,
                 const std::map<std::string, std::string>& env, const std::string& log_path) {
  std::vector<std::string> argv = argv_in;
  std::vector<std::string> envs = BuildEnv(env, {});
  auto cargv = CStrings(argv);
  auto cenv = CStrings(envs);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  std::string log = log_path.empty() ? "/dev/null" : log_path;
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  int rc = posix_spawn(&pid_, cargv[0], &actions, nullptr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
}

Process::~Process() { Stop(); }

bool Process::Running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    status_ = status;
    return false;
  }
  return true;
}

void Process::Stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool PortIsFree(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return free;
}

bool WaitForPort(int port, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::close(fd);
    if (rc == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& contents, unsigned mode) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << contents;
  }
  ::chmod(path.c_str(), static_cast<mode_t>(mode));
}

std::string Reason(const std::function<void()>& f) {
  try {
    f();
  } catch (const base::Failure& e) {
    return e.reason();
  }
  return "";
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

std::string Binary(const std::string& name) { return std::string(TEST_BINARY_DIR) + "/" + name; }
std::string SourceDir() { return TEST_SOURCE_DIR; }

CaToken::CaToken(const std::string& d, const std::string& key_type,
                 const std::map<std::string, std::string>& extra_env)
    : dir(d) {
  std::map<std::string, std::string> env = extra_env;
  env["ETCD_HSM"] = Binary("etcd-hsm");
  RunResult r = Run({SourceDir() + "/softhsm-fixtures/make-ca-token", dir, key_type},
                    {.env = env, .timeout = std::chrono::seconds(120)});
  if (r.exit_code != 0) {
    throw std::runtime_error("make-ca-token failed: " + r.err + r.out);
  }
  conf = dir + "/softhsm2.conf";
  key_uri = "pkcs11:token=" + (extra_env.count("TOKEN_LABEL") ? extra_env.at("TOKEN_LABEL") : std::string("etcd-ca")) +
            ";object=" + (extra_env.count("KEY_LABEL") ? extra_env.at("KEY_LABEL") : std::string("ca-key")) +
            ";type=private";
  pin_file = dir + "/user.pin";
  ca_cert = dir + "/ca.pem";
}

std::string SignerUser() {
  static const std::string kUser = "etcd-signer-test";
  if (::getpwnam(kUser.c_str()) == nullptr) {
    // Parallel tests may race here; whoever loses finds the account made by the other.
    Run({"/usr/sbin/useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell",
         "/bin/sh", "--password", "*", kUser});
    if (::getpwnam(kUser.c_str()) == nullptr) throw std::runtime_error("cannot create user " + kUser);
  }
  return kUser;
}

void GiveToSigner(const std::string& path) {
  struct passwd* pw = ::getpwnam(SignerUser().c_str());
  if (pw == nullptr) throw std::runtime_error("no signer account");
  ::lchown(path.c_str(), pw->pw_uid, pw->pw_gid);
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    ::lchown(it->path().c_str(), pw->pw_uid, pw->pw_gid);
  }
}

SshServer::SshServer(const std::string& dir, const std::string& user) : dir_(dir), user_(user) {
  port_ = FreePort();
  RunResult r = Run({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", dir_ + "/host_key"});
  if (r.exit_code != 0) throw std::runtime_error("ssh-keygen failed: " + r.err);
  std::string host_pub = ReadFile(dir_ + "/host_key.pub");
  host_pub = host_pub.substr(0, host_pub.find_last_not_of("\n") + 1);
  known_hosts_ = dir_ + "/known_hosts";
  WriteFile(known_hosts_, "[127.0.0.1]:" + std::to_string(port_) + " " + host_pub + "\n");
  WriteFile(dir_ + "/authorized_keys", "", 0600);
  std::string config =
      "Port " + std::to_string(port_) + "\nListenAddress 127.0.0.1\nHostKey " + dir_ +
      "/host_key\nPidFile " + dir_ + "/sshd.pid\nAuthorizedKeysFile " + dir_ +
      "/authorized_keys\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
      "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
      "PermitRootLogin forced-commands-only\nPrintMotd no\nLogLevel VERBOSE\nExposeAuthInfo yes\n"
      "MaxStartups 100:30:200\nMaxSessions 1\nPerSourcePenalties no\n";  // MaxSessions as the package's drop-in
  WriteFile(dir_ + "/sshd_config", config);
  ::mkdir("/run/sshd", 0755);
}

SshServer::~SshServer() { Stop(); }

std::string SshServer::NewClientKey(const std::string& name) {
  std::string path = dir_ + "/" + name;
  RunResult r = Run({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path});
  if (r.exit_code != 0) throw std::runtime_error("ssh-keygen failed: " + r.err);
  return path;
}

void SshServer::Authorize(const std::string& private_key_path, const std::string& command) {
  std::string pub = ReadFile(private_key_path + ".pub");
  pub = pub.substr(0, pub.find_last_not_of("\n") + 1);
  std::string line = "restrict,command=\"" + command + "\" " + pub + "\n";
  WriteFile(dir_ + "/authorized_keys", ReadFile(dir_ + "/authorized_keys") + line, 0600);
}

void SshServer::Start() {
  // Everything made so far under the directory (token, PIN file, signer.toml) and the files the
  // signer writes (audit log, its lock, the token lock) belong to the signer account, as on a real
  // signer host. The directory itself stays root's: the requesters of these tests keep their keys
  // in it, and a requester refuses a key directory owned by another user (#17).
  if (user_.empty()) {
    for (const auto& [name, mode] : std::vector<std::pair<std::string, unsigned>>{
             {"audit.log", 0640}, {"audit.log.lock", 0600}, {"token.lock", 0600}}) {
      std::string path = dir_ + "/" + name;
      if (::access(path.c_str(), F_OK) != 0) WriteFile(path, "", mode);
    }
    GiveToSigner(dir_);
  }
  ::chown(dir_.c_str(), 0, 0);
  ::chmod(dir_.c_str(), 0755);
  // Older OpenSSH (Debian 12's 9.2) does not know PerSourcePenalties; drop it if refused.
  RunResult test = Run({"/usr/sbin/sshd", "-t", "-f", dir_ + "/sshd_config"});
  if (test.exit_code != 0) {
    std::string config = ReadFile(dir_ + "/sshd_config");
    auto pos = config.find("PerSourcePenalties no\n");
    if (pos != std::string::npos) config.erase(pos, 23);
    WriteFile(dir_ + "/sshd_config", config);
  }
  sshd_ = std::make_unique<Process>(
      std::vector<std::string>{"/usr/sbin/sshd", "-D", "-e", "-f", dir_ + "/sshd_config"},
      std::map<std::string, std::string>{}, dir_ + "/sshd.log");
  if (!WaitForPort(port_, std::chrono::seconds(10))) {
    throw std::runtime_error("sshd did not start: " + ReadFile(dir_ + "/sshd.log"));
  }
}

void SshServer::Stop() { sshd_.reset(); }

std::string SshServer::user() const { return user_.empty() ? SignerUser() : user_; }

RunResult SshServer::Ssh(const std::string& key, const std::string& command,
                         const std::string& input, std::chrono::milliseconds timeout) {
  return Run({"/usr/bin/ssh", "-F", "/dev/null", "-i", key, "-o", "IdentitiesOnly=yes", "-o",
              "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o",
              "UserKnownHostsFile=" + known_hosts_, "-o", "GlobalKnownHostsFile=/dev/null", "-p",
              std::to_string(port_), user() + "@127.0.0.1", command},
             {.input = input, .timeout = timeout});
}

SignerDeployment::SignerDeployment(const std::string& d) : dir(d), ca(d + "/ca-token"), ssh(d) {
  WriteSignerConfig();
}

void SignerDeployment::WriteSignerConfig(const std::string& extra) {
  WriteFile(dir + "/signer.toml", "module = \"" + std::string(kSoftHsmModule) + "\"\nkey = \"" + ca.key_uri +
                                      "\"\npin_file = \"" + ca.pin_file + "\"\nca_cert = \"" + ca.ca_cert +
                                      "\"\naudit_log = \"" + dir + "/audit.log\"\nlock_file = \"" + dir +
                                      "/token.lock\"\nsyslog = false\n" + extra);
}

std::string SignerDeployment::SignerCommand(const std::string& identity) const {
  return "SOFTHSM2_CONF=" + ca.conf + " " + Binary("etcd-signer") + " --config " + dir +
         "/signer.toml --identity " + identity + " sign";
}

std::string SignerDeployment::AddMaster(const std::string& name, const std::string& command) {
  std::string key = ssh.NewClientKey(name + "-ssh");
  ssh.Authorize(key, command.empty() ? SignerCommand(name) : command);
  return key;
}

std::vector<std::string> SignerDeployment::RequesterArgs(const std::string& verb, const std::string& name,
                                                         const std::string& ssh_key) const {
  return {Binary("etcd-requester"), verb, "--name", name, "--server",
          ssh.user() + "@127.0.0.1:" + std::to_string(ssh.port()), "--ssh-key", ssh_key,
          "--known-hosts", ssh.known_hosts(), "--key-file", dir + "/" + name + ".key", "--cert",
          dir + "/" + name + ".pem", "--ca-bundle", dir + "/ca-bundle.pem", "--ca-sha256", RootSha256(ca.ca_cert),
          "--connect-timeout", "5s"};
}

std::string UtcIn(long seconds) {
  std::time_t t = std::time(nullptr) + seconds;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

RunResult OpenSsl(const std::vector<std::string>& args, const std::string& input) {
  std::vector<std::string> argv{"/usr/bin/openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv, {.input = input});
}

std::string RootSha256(const std::string& pem_path) {
  std::string out = OpenSsl({"x509", "-in", pem_path, "-noout", "-fingerprint", "-sha256"}).out;
  auto eq = out.find('=');
  if (eq == std::string::npos) return "";
  out.erase(0, eq + 1);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

}  // namespace testing_support
