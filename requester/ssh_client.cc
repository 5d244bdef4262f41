#include "requester/ssh_client.h"

#include <libssh/libssh.h>

#include "base/failure.h"

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

constexpr std::size_t kMaxOutput = 1 << 20;

std::string Where(const SshOptions& o) {
  return o.server.user + "@" + o.server.host + ":" + std::to_string(o.server.port);
}

}  // namespace

struct SshClient::Impl {
  SshOptions options;
  SessionPtr session;
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
  if (ssh_connect(s) != SSH_OK) {
    throw Failure(ExitCode::kUnavailable, "connect-failed",
                  "cannot reach the signer at " + Where(o) + ": " + ssh_get_error(s) +
                      " (check the address, the port, firewalls and that sshd runs)");
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
                    "cannot check the host key against " + o.known_hosts + ": " + ssh_get_error(s));
  }
  int rc = SSH_AUTH_ERROR;
  if (!o.identity_file.empty()) {
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
  ChannelPtr channel(ssh_channel_new(s));
  auto lost = [&](const std::string& what) {
    return Failure(ExitCode::kUnavailable, "connection-lost",
                   "the connection to the signer " + Where(o) + " failed while " + what + ": " +
                       ssh_get_error(s));
  };
  if (!channel || ssh_channel_open_session(channel.get()) != SSH_OK) throw lost("opening a channel");
  if (ssh_channel_request_exec(channel.get(), command.c_str()) != SSH_OK) throw lost("starting the request");
  std::size_t sent = 0;
  while (sent < input.size()) {
    int n = ssh_channel_write(channel.get(), input.data() + sent,
                              static_cast<uint32_t>(std::min<std::size_t>(input.size() - sent, 32768)));
    if (n == SSH_ERROR) throw lost("sending the request");
    sent += static_cast<std::size_t>(n);
  }
  if (ssh_channel_send_eof(channel.get()) != SSH_OK) throw lost("sending the request");

  ExecResult result;
  auto deadline = std::chrono::steady_clock::now() + o.io_timeout;
  char buf[16384];
  auto append = [](std::string& sink, const char* data, int n) {
    if (sink.size() + static_cast<std::size_t>(n) > kMaxOutput) {
      throw Failure(ExitCode::kDataErr, "answer-too-large", "the signer's answer is larger than 1 MiB");
    }
    sink.append(data, static_cast<std::size_t>(n));
  };
  // Drain stdout and stderr together: libssh reports EOF only once *both* buffers are empty, so
  // reading one stream to its end first would wait for a timeout whenever the other has data.
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      throw Failure(ExitCode::kTempFail, "io-timeout",
                    "the signer did not answer within " + std::to_string(o.io_timeout.count()) + "s");
    }
    int n = ssh_channel_read_timeout(channel.get(), buf, sizeof buf, 0,
                                     static_cast<int>(std::min<long long>(left.count(), 200)));
    if (n == SSH_ERROR) throw lost("reading the answer");
    if (n > 0) append(result.out, buf, n);
    int m = ssh_channel_read_nonblocking(channel.get(), buf, sizeof buf, 1);
    if (m == SSH_ERROR) throw lost("reading the answer");
    if (m > 0) append(result.err, buf, m);
    if (n <= 0 && m <= 0 && (ssh_channel_is_eof(channel.get()) || ssh_channel_is_closed(channel.get()))) break;
  }
  result.exit_status = ssh_channel_get_exit_status(channel.get());
  ssh_channel_close(channel.get());
  return result;
}

std::string DescribeServer(const SshOptions& o) { return Where(o); }

}  // namespace requester
