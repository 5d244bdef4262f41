// SPDX-License-Identifier: Apache-2.0
#include "requester/ssh_client.h"

#include <fcntl.h>
#include <libssh/libssh.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <string_view>
#include <thread>

#include "base/failure.h"
#include "requester/key_store.h"
#include "requester/token_agent.h"
#include "base/files.h"
#include "base/text.h"

namespace requester {
namespace {

using base::ExitCode;
using base::Failure;

struct SessionDeleter {
  void operator()(ssh_session s) const noexcept {
    if (ssh_is_connected(s)) ssh_disconnect(s);
    ssh_free(s);
  }
};
struct ChannelDeleter {
  void operator()(ssh_channel c) const noexcept { ssh_channel_free(c); }
};
struct KeyDeleter {
  void operator()(ssh_key k) const noexcept { ssh_key_free(k); }
};
using SessionPtr = std::unique_ptr<ssh_session_struct, SessionDeleter>;
using ChannelPtr = std::unique_ptr<ssh_channel_struct, ChannelDeleter>;
using KeyPtr = std::unique_ptr<ssh_key_struct, KeyDeleter>;
struct SshStringDeleter {
  void operator()(char* p) const noexcept { ssh_string_free_char(p); }
};
using SshCharPtr = std::unique_ptr<char, SshStringDeleter>;

// The signer's answer: a certificate is ~1 KiB, so 1 MiB is generous; its stderr is one line.
constexpr std::size_t kMaxOutput = 1 << 20;
constexpr std::size_t kMaxError = 16 << 10;

constexpr std::size_t kMaxKnownHosts = 1 << 20;

std::string Where(const SshOptions& o) {
  return o.server.user + "@" + o.server.host + ":" + std::to_string(o.server.port);
}

// libssh's error text can quote what the server sent (a disconnect message, a banner).
std::string SshError(ssh_session s) { return base::Printable(ssh_get_error(s), 512); }

// What the known_hosts file says through OpenSSH's marker lines, which libssh 0.10 skips.
struct KnownHostsMarkers {
  bool any = false;      // at least one "@..." line
  bool revoked = false;  // an "@revoked" line lists the server's key
};

// Scans `path` for marker lines ("@revoked HOSTS TYPE BASE64", "@cert-authority ..."). A revoked
// key is revoked whatever host pattern its line names: we never want to talk to it.
KnownHostsMarkers ScanMarkers(const std::string& path, std::string_view server_blob) {
  KnownHostsMarkers m;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) return m;  // libssh reports NOT_FOUND
  std::string text;
  try {
    text = base::ReadFileLimited(path, kMaxKnownHosts, "known-hosts-error");
  } catch (const Failure& f) {
    throw Failure(ExitCode::kUnavailable, "known-hosts-error",
                  "cannot check the host key against " + path + ": " + f.what());
  }
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    std::size_t start = line.find_first_not_of(" \t\r");
    if (start == std::string_view::npos || line[start] != '@') continue;
    m.any = true;
    // Fields: marker, host patterns, key type, base64 key, [comment].
    std::string_view fields[4];
    std::size_t at = start;
    for (auto& field : fields) {
      at = line.find_first_not_of(" \t\r", at);
      if (at == std::string_view::npos) break;
      std::size_t stop = line.find_first_of(" \t\r", at);
      if (stop == std::string_view::npos) stop = line.size();
      field = line.substr(at, stop - at);
      at = stop;
    }
    if (fields[0] == "@revoked" && !server_blob.empty() && fields[3] == server_blob) m.revoked = true;
  }
  return m;
}

}  // namespace

struct SshClient::Impl {
  SshOptions options;
  SessionPtr session;
  int channels_opened = 0;
};

SshClient::SshClient(const SshOptions& o) : impl_(std::make_unique<Impl>()) {
  impl_->options = o;
  impl_->session.reset(ssh_new());
  ssh_session s = impl_->session.get();
  if (s == nullptr) throw Failure(ExitCode::kSoftware, "internal", "ssh_new failed");
  bool no = false;
  long connect_timeout = static_cast<long>(o.connect_timeout.count());
  int port = o.server.port;
  ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &no);  // never read ~/.ssh/config implicitly
  ssh_options_set(s, SSH_OPTIONS_HOST, o.server.host.c_str());
  ssh_options_set(s, SSH_OPTIONS_PORT, &port);
  ssh_options_set(s, SSH_OPTIONS_USER, o.server.user.c_str());
  ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, o.known_hosts.c_str());
  ssh_options_set(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
  ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &connect_timeout);
  // No Nagle (#30): the key exchange and authentication send two small packets back to back
  // (NEWKEYS, then the service request); with Nagle the second waits for sshd's delayed ACK, 40 ms
  // on Linux, on every request. OpenSSH's client sets this only once an interactive session opens.
  int nodelay = 1;
  ssh_options_set(s, SSH_OPTIONS_NODELAY, &nodelay);
  if (ssh_connect(s) != SSH_OK) {
    throw Failure(ExitCode::kUnavailable, "connect-failed",
                  "cannot reach the signer at " + Where(o) + ": " + SshError(s) +
                      " (check the address, the port, firewalls and that sshd runs)");
  }
  // libssh opens its socket without O_CLOEXEC; no child of ours (the post-renew hook) inherits it.
  if (socket_t fd = ssh_get_fd(s); fd != SSH_INVALID_SOCKET) ::fcntl(fd, F_SETFD, FD_CLOEXEC);

  // OpenSSH's markers first: libssh 0.10 skips "@" lines, so on its own it would accept a revoked
  // key listed elsewhere in the file, or record one (accept-new) that the file revokes.
  ssh_key raw_server_key = nullptr;
  if (ssh_get_server_publickey(s, &raw_server_key) != SSH_OK) {
    throw Failure(ExitCode::kUnavailable, "connect-failed",
                  "the signer at " + Where(o) + " sent no host key: " + SshError(s));
  }
  KeyPtr server_key(raw_server_key);
  char* raw_blob = nullptr;
  if (ssh_pki_export_pubkey_base64(server_key.get(), &raw_blob) != SSH_OK) {
    throw Failure(ExitCode::kUnavailable, "known-hosts-error", "cannot encode the signer's host key");
  }
  SshCharPtr blob(raw_blob);
  const char* key_type = ssh_key_type_to_char(ssh_key_type(server_key.get()));
  std::string key_text = std::string(key_type != nullptr ? key_type : "unknown") + " " + blob.get();
  KnownHostsMarkers markers = ScanMarkers(o.known_hosts, blob.get());
  if (markers.revoked) {
    throw Failure(ExitCode::kNoPerm, "host-key-revoked",
                  "the signer " + Where(o) + " presented the host key " + key_text + ", which " + o.known_hosts +
                      " marks @revoked: refused whatever else the file says (and never recorded); if the "
                      "signer's key was rotated, check its new key out of band");
  }

  switch (ssh_session_is_known_server(s)) {
    case SSH_KNOWN_HOSTS_OK:
      break;
    case SSH_KNOWN_HOSTS_CHANGED:
    case SSH_KNOWN_HOSTS_OTHER:
      throw Failure(ExitCode::kNoPerm, "host-key-changed",
                    "the signer " + Where(o) + " presented a host key that does not match " +
                        o.known_hosts + ": possible man-in-the-middle; if the signer was "
                        "re-installed, update known_hosts out of band");
    case SSH_KNOWN_HOSTS_NOT_FOUND:
    case SSH_KNOWN_HOSTS_UNKNOWN:
      if (markers.any) {
        // The file is curated by hand (CA and revocation lines we do not fully evaluate): trust on
        // first use would quietly add a key next to them. OpenSSH does the same for @cert-authority.
        throw Failure(ExitCode::kNoPerm, "host-key-unknown",
                      "the signer " + Where(o) + " is not in " + o.known_hosts +
                          ", and that file has marker lines (@revoked/@cert-authority), so its key is never "
                          "accepted on first use (--accept-new-host-key): check the host key " + key_text +
                          " out of band and add it there by hand");
      }
      if (o.accept_new_host_key) {
        if (ssh_session_update_known_hosts(s) != SSH_OK) {
          throw Failure(ExitCode::kCantCreate, "known-hosts-write",
                        "cannot record the signer's host key in " + o.known_hosts);
        }
        break;
      }
      throw Failure(ExitCode::kNoPerm, "host-key-unknown",
                    "the signer " + Where(o) + " is not in " + o.known_hosts +
                        "; add its host key there (or pass --accept-new-host-key once)");
    default:
      throw Failure(ExitCode::kUnavailable, "known-hosts-error",
                    "cannot check the host key against " + o.known_hosts + ": " + SshError(s));
  }
  int rc = SSH_AUTH_ERROR;
  if (IsTokenKey(o.identity_file)) {
    // The key never leaves its token: libssh asks our agent, which asks the token to sign.
    TokenKeyHandle key(o.identity_file, o.module, o.pin, /*create=*/false);
    TokenAgent agent(key.private_key());
    // libssh closes the socket it is given when the session ends: give it its own descriptor.
    int fd = ::fcntl(agent.client_fd(), F_DUPFD_CLOEXEC, 0);
    if (fd < 0 || ssh_set_agent_socket(s, fd) != SSH_OK) {
      if (fd >= 0) ::close(fd);
      throw Failure(ExitCode::kSoftware, "internal", "cannot hand the token agent to libssh");
    }
    rc = ssh_userauth_agent(s, nullptr);
  } else if (!o.identity_file.empty()) {
    ssh_key raw = nullptr;
    if (ssh_pki_import_privkey_file(o.identity_file.c_str(), nullptr, nullptr, nullptr, &raw) != SSH_OK) {
      throw Failure(ExitCode::kNoInput, "ssh-key", "cannot read the SSH key " + o.identity_file);
    }
    KeyPtr key(raw);
    rc = ssh_userauth_publickey(s, nullptr, key.get());
  } else {
    rc = ssh_userauth_agent(s, nullptr);
  }
  if (rc != SSH_AUTH_SUCCESS) {
    throw Failure(ExitCode::kNoPerm, "auth-failed",
                  "the signer " + Where(o) + " did not accept our SSH key (" +
                      (o.identity_file.empty() ? std::string("ssh-agent") : o.identity_file) +
                      "): is it in the signer account's authorized_keys?");
  }
}

SshClient::~SshClient() = default;

ExecResult SshClient::Exec(const std::string& command, const std::string& input) {
  ssh_session s = impl_->session.get();
  const SshOptions& o = impl_->options;
  auto lost = [&](const std::string& what) {
    return Failure(ExitCode::kUnavailable, "connection-lost",
                   "the connection to the signer " + Where(o) + " failed while " + what + ": " +
                       SshError(s));
  };
  // A signer host allows one session per connection (the package's sshd drop-in: MaxSessions 1)
  // and frees it a moment after the previous channel closed: without Nagle (#30) the next channel
  // ("sign" after "ca", "activate" after "enroll") can arrive before that, and sshd answers "open
  // failed". A later channel of a connection is retried, briefly; the first one's refusal is real.
  ChannelPtr channel;
  for (int attempt = 0;; ++attempt) {
    channel.reset(ssh_channel_new(s));
    if (channel && ssh_channel_open_session(channel.get()) == SSH_OK) break;
    if (!channel || impl_->channels_opened == 0 || attempt == 5 || ssh_is_connected(s) == 0) {
      throw lost("opening a channel");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2 << attempt));  // 2, 4, 8, 16, 32 ms
  }
  ++impl_->channels_opened;
  if (ssh_channel_request_exec(channel.get(), command.c_str()) != SSH_OK) throw lost("starting the request");
  // A signer may answer and exit before it has read the request (a refusal at the request line,
  // or a forced command that is not etcd-signer): the write then fails, but its answer and exit
  // status are already on their way. Read them; only a channel that said nothing is "lost".
  std::string send_error;
  std::size_t sent = 0;
  while (send_error.empty() && sent < input.size()) {
    int n = ssh_channel_write(channel.get(), input.data() + sent,
                              static_cast<uint32_t>(std::min<std::size_t>(input.size() - sent, 32768)));
    if (n == SSH_ERROR) send_error = SshError(s);
    else sent += static_cast<std::size_t>(n);
  }
  if (send_error.empty() && ssh_channel_send_eof(channel.get()) != SSH_OK) send_error = SshError(s);
  auto lost_sending = [&] {
    return Failure(ExitCode::kUnavailable, "connection-lost",
                   "the connection to the signer " + Where(o) + " failed while sending the request: " + send_error);
  };

  ExecResult result;
  auto deadline = std::chrono::steady_clock::now() + o.io_timeout;
  char buf[16384];
  auto append = [](std::string& sink, const char* data, int n, std::size_t cap, const char* what) {
    if (sink.size() + static_cast<std::size_t>(n) > cap) {
      throw Failure(ExitCode::kDataErr, "answer-too-large",
                    std::string("the signer's ") + what + " is larger than " + std::to_string(cap / 1024) + " KiB");
    }
    sink.append(data, static_cast<std::size_t>(n));
  };
  // Drain stdout and stderr together: libssh reports EOF only once *both* buffers are empty, so
  // reading one stream to its end first would wait for a timeout whenever the other has data.
  // stderr is drained completely on every turn: libssh re-opens the channel window whenever
  // stdout is read, so an undrained stderr buffer grows without bound (a signer flooding stderr
  // once made the requester hold 92 MB). Both streams are capped; what libssh may hold beyond the
  // caps is one window (about 1.3 MB).
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      throw Failure(ExitCode::kTempFail, "io-timeout",
                    "the signer did not answer within " + std::to_string(o.io_timeout.count()) + "s");
    }
    int m = 0;
    bool err_data = false;
    while ((m = ssh_channel_read_nonblocking(channel.get(), buf, sizeof buf, 1)) > 0) {
      append(result.err, buf, m, kMaxError, "stderr");
      err_data = true;
    }
    if (m == SSH_ERROR) throw send_error.empty() ? lost("reading the answer") : lost_sending();
    int n = ssh_channel_read_timeout(channel.get(), buf, sizeof buf, 0,
                                     static_cast<int>(std::min<long long>(left.count(), 50)));
    if (n == SSH_ERROR) throw send_error.empty() ? lost("reading the answer") : lost_sending();
    if (n > 0) append(result.out, buf, n, kMaxOutput, "answer");
    if (n <= 0 && !err_data && (ssh_channel_is_eof(channel.get()) || ssh_channel_is_closed(channel.get()))) {
      // One last drain: data may have arrived with the EOF.
      while ((m = ssh_channel_read_nonblocking(channel.get(), buf, sizeof buf, 1)) > 0) {
        append(result.err, buf, m, kMaxError, "stderr");
      }
      break;
    }
  }
  result.exit_status = ssh_channel_get_exit_status(channel.get());
  if (!send_error.empty() && result.exit_status < 0 && result.out.empty() && result.err.empty()) throw lost_sending();
  ssh_channel_close(channel.get());
  return result;
}

std::string DescribeServer(const SshOptions& o) { return Where(o); }

}  // namespace requester
