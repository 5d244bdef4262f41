// SPDX-License-Identifier: Apache-2.0
// forward (#18): a plaintext listener on this host (unix socket or loopback), one TLS connection to
// etcd per accepted connection, signed with the token key. See forward.h for the contract. This
// file holds the settings and the connections' lifecycle (accept, admit, serve, stop); the pieces
// a connection goes through are forward_listener (the socket and its safety), forward_tls (the
// client context and its reload), forward_upstream (endpoint choice, the TLS connection to etcd)
// and forward_pump (the bytes).
#include "requester/forward.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <list>
#include <optional>
#include <thread>

#include "base/failure.h"
#include "base/fd.h"
#include "base/text.h"
#include "requester/exchange.h"
#include "requester/forward_io.h"
#include "requester/forward_listener.h"
#include "requester/forward_pump.h"
#include "requester/forward_tls.h"
#include "requester/forward_upstream.h"
#include "requester/key_store.h"

namespace requester {
namespace {

using base::ExitCode;
using base::Failure;

using base::UniqueFd;

[[noreturn]] void BadListen(const std::string& text, const std::string& why) {
  throw Failure(ExitCode::kUsage, "bad-listen", "--listen '" + base::Printable(text, 200) + "': " + why);
}

[[noreturn]] void BadEndpoint(const std::string& text, const std::string& why) {
  throw Failure(ExitCode::kUsage, "bad-endpoint", "--endpoint '" + base::Printable(text, 200) + "': " + why);
}

// "HOST:PORT" or "[V6]:PORT" → host (no brackets), port; false when malformed.
bool SplitHostPort(const std::string& text, std::string& host, int& port, bool& bracketed) {
  std::string port_text;
  bracketed = !text.empty() && text[0] == '[';
  if (bracketed) {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') return false;
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos) return false;
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string::npos) return false;  // a v6 literal needs brackets
  }
  port = ParsePort(port_text);
  return !host.empty() && port > 0;
}

bool IsIpLiteral(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

std::string EtcdEndpoint::Text() const {
  return "https://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

ListenAddress ParseListen(const std::string& text) {
  ListenAddress a;
  if (text.rfind("unix:", 0) == 0) {
    a.unix_socket = true;
    a.path = text.substr(5);
    if (a.path.empty() || a.path[0] != '/') BadListen(text, "a unix socket needs an absolute path (unix:/run/...)");
    if (a.path.size() >= sizeof(sockaddr_un{}.sun_path)) BadListen(text, "the socket path is too long");
    return a;
  }
  bool bracketed = false;
  if (!SplitHostPort(text, a.ip, a.port, bracketed)) {
    BadListen(text, "give unix:PATH, 127.0.0.1:PORT or [::1]:PORT");
  }
  in_addr v4{};
  in6_addr v6{};
  if (!bracketed && inet_pton(AF_INET, a.ip.c_str(), &v4) == 1) {
    if ((ntohl(v4.s_addr) >> 24) != 127) BadListen(text, "only a loopback address (127.0.0.0/8, ::1) may listen: the connection to it is plaintext");
  } else if (bracketed && inet_pton(AF_INET6, a.ip.c_str(), &v6) == 1) {
    if (!IN6_IS_ADDR_LOOPBACK(&v6)) BadListen(text, "only a loopback address (127.0.0.0/8, ::1) may listen: the connection to it is plaintext");
  } else {
    BadListen(text, "the host must be a loopback IP literal (127.0.0.1 or [::1]), not a name");
  }
  return a;
}

EtcdEndpoint ParseEndpoint(const std::string& text) {
  constexpr std::string_view kScheme = "https://";
  if (text.rfind(kScheme, 0) != 0) BadEndpoint(text, "must start with https:// (the connection to etcd is TLS)");
  std::string rest = text.substr(kScheme.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find_first_of("/?#@") != std::string::npos) BadEndpoint(text, "only https://HOST:PORT, no path or user");
  for (char c : rest) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) BadEndpoint(text, "bad character");
  }
  EtcdEndpoint e;
  bool bracketed = false;
  if (!SplitHostPort(rest, e.host, e.port, bracketed)) BadEndpoint(text, "give https://HOST:PORT");
  e.host_is_ip = IsIpLiteral(e.host);
  if (bracketed && !e.host_is_ip) BadEndpoint(text, "[...] must hold an IPv6 address");
  return e;
}

void ValidateForwardConfig(const RequesterConfig& c) {
  const ForwardConfig& f = c.forward;
  if (f.listen.empty()) throw Failure(ExitCode::kUsage, "usage", "--listen unix:PATH or 127.0.0.1:PORT is required");
  ParseListen(f.listen);
  if (f.endpoints.empty()) throw Failure(ExitCode::kUsage, "usage", "--endpoint https://HOST:PORT is required (repeat for failover)");
  for (const auto& e : f.endpoints) ParseEndpoint(e);
  if (f.etcd_ca.empty()) throw Failure(ExitCode::kUsage, "usage", "--etcd-ca FILE (etcd's server CA) is required");
  if (c.cert.empty()) throw Failure(ExitCode::kUsage, "usage", "--cert FILE is required");
  CheckKeySource(c);
  if (f.max_connections < 1 || f.max_connections > 4096) {
    throw Failure(ExitCode::kConfig, "bad-config", "forward_max_connections must be 1..4096");
  }
  if (f.listen_mode > 0777) throw Failure(ExitCode::kConfig, "bad-config", "forward_listen_mode must be an octal mode <= 0777");
  for (auto t : {c.connect_timeout, c.io_timeout}) {
    if (t.count() < 1 || t.count() > 3600) {
      throw Failure(ExitCode::kConfig, "bad-config", "connect_timeout and io_timeout must be 1s..1h for the forwarder");
    }
  }
}

struct Forwarder::Impl {
  RequesterConfig config;
  EVP_PKEY* key;
  TokenGate& gate;
  RequesterEnv env;
  Counters counters;
  std::vector<EtcdEndpoint> endpoints;
  EndpointChoice choice;
  StopSignal stop;  // every wait watches it
  ReloadingContext context;
  RateLimitedLog failures;  // endpoint failures: at most 20 lines per 10 s
  std::optional<Listener> listener;
  std::thread acceptor;

  // One thread per connection, joined (never detached): finished ones by the acceptor, the rest by
  // Stop(), so that no thread outlives the forwarder or the key it signs with.
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done = std::make_shared<std::atomic<bool>>(false);
  };
  std::list<Worker> workers;  // the acceptor's, then Stop()'s

  std::mutex mutex;  // guards everything below
  int active = 0;
  bool stopping = false;

  Impl(const RequesterConfig& c, EVP_PKEY* k, TokenGate& g, const RequesterEnv& e)
      : config(c),
        key(k),
        gate(g),
        env(e),
        endpoints(ParseEndpoints(c)),
        choice(endpoints.size()),
        context(c.cert, [this] { return BuildClientContext(config, key, gate); },
                [this](const std::string& line) { Log(env, line); }),
        failures([this](const std::string& line) { Log(env, line); }) {}

  static std::vector<EtcdEndpoint> ParseEndpoints(const RequesterConfig& c) {
    ValidateForwardConfig(c);
    std::vector<EtcdEndpoint> out;
    for (const auto& e : c.forward.endpoints) out.push_back(ParseEndpoint(e));
    return out;
  }

  void Listen() {
    listener.emplace(ParseListen(config.forward.listen), config.forward.listen, config.forward.listen_mode,
                     config.forward.listen_group);
  }

  // A connection: its first bytes, the context, then the endpoints in turn until one serves it.
  void Serve(int client_fd) {
    UniqueFd client(client_fd);
    SetNonBlocking(client.get());
    if (!ClientSpoke(client.get())) return;
    std::shared_ptr<SSL_CTX> ctx = CurrentContext();
    if (!ctx) return;
    std::vector<std::size_t> order = choice.Order();
    for (std::size_t i = 0; i < order.size(); ++i) {
      UniqueFd upstream;
      std::string error;
      SslPtr ssl = ConnectToEtcd(endpoints[order[i]], ctx.get(), Timeouts(), gate, stop, upstream, error);
      if (!ssl) {
        if (stop.raised()) return;
        failures.Write("forward: " + endpoints[order[i]].Text() + ": " + error +
                       (i + 1 < order.size() ? "; trying the next endpoint" : ""));
        continue;
      }
      if (i > 0) choice.Prefer(order[i]);
      PumpBytes(client.get(), ssl.get(), upstream.get(), stop);
      return;
    }
    counters.upstream_failed++;
    failures.Write("forward: no etcd endpoint could be reached; closed the client's connection");
  }

  // Nothing is spent on a client that says nothing: no etcd connection, no signature in the token,
  // until its first bytes (an HTTP/2 client sends its preface at once), within io_timeout.
  bool ClientSpoke(int client) {
    if (!WaitFor(client, POLLIN, static_cast<int>(config.io_timeout.count() * 1000), stop)) return false;
    char first_byte;
    return ::recv(client, &first_byte, 1, MSG_PEEK) > 0;  // else closed without a word
  }

  std::shared_ptr<SSL_CTX> CurrentContext() {
    try {
      return context.Current();
    } catch (const Failure& f) {
      counters.upstream_failed++;
      failures.Write(std::string("forward: cannot serve a connection: ") + f.what());
      return nullptr;
    }
  }

  UpstreamTimeouts Timeouts() const {
    return {static_cast<int>(config.connect_timeout.count() * 1000), static_cast<int>(config.io_timeout.count() * 1000)};
  }

  // The acceptor's loop: reap, wait, accept, admit, start a worker; until Stop().
  void AcceptLoop() {
    for (;;) {
      Reap(/*all=*/false);
      pollfd fds[2] = {{listener->fd(), POLLIN, 0}, {stop.fd(), POLLIN, 0}};
      int n = ::poll(fds, 2, 1000);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 || fds[1].revents != 0) return;
      if (n == 0) continue;
      int client = ::accept4(listener->fd(), nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) {
        // Out of descriptors: the client stays in the backlog and poll() would report it at once
        // again; wait instead of spinning. Anything else (EAGAIN, a client gone) is retried.
        if (errno == EMFILE || errno == ENFILE) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      if (!Admit(client)) continue;
      counters.accepted++;
      StartWorker(client);
    }
  }

  // Counts the connection in, or closes it when forward_max_connections are open (or stopping).
  bool Admit(int client) {
    std::lock_guard lock(mutex);
    if (stopping || active >= config.forward.max_connections) {
      ::close(client);
      long refused = ++counters.refused_busy;
      if (refused == 1 || refused % 100 == 0) {  // a flood of clients must not flood the journal
        Log(env, "forward: " + std::to_string(active) +
                     " connections are open (forward_max_connections); refused a new one (" +
                     std::to_string(refused) + " so far)");
      }
      return false;
    }
    active++;
    return true;
  }

  void StartWorker(int client) {
    Worker worker;
    auto done = worker.done;
    auto finish = [this, done] {
      counters.closed++;
      {
        std::lock_guard lock(mutex);
        active--;
      }
      done->store(true);
    };
    try {
      worker.thread = std::thread([this, client, finish] {
        try {
          Serve(client);
        } catch (const std::exception& e) {  // Serve closes the client on every path out
          Log(env, std::string("forward: a connection failed: ") + e.what());
        }
        finish();
      });
      workers.push_back(std::move(worker));
    } catch (const std::system_error& e) {  // no thread to be had (TasksMax): refuse this one
      ::close(client);
      finish();
      Log(env, std::string("forward: cannot start a thread for a connection: ") + e.what());
    }
  }

  void Reap(bool all) {
    for (auto it = workers.begin(); it != workers.end();) {
      if (all || it->done->load()) {
        it->thread.join();
        it = workers.erase(it);
      } else {
        ++it;
      }
    }
  }
};

Forwarder::Forwarder(const RequesterConfig& config, EVP_PKEY* key, TokenGate& gate, const RequesterEnv& env)
    : impl_(std::make_shared<Impl>(config, key, gate, env)) {
  impl_->context.Current();  // a missing or mismatched certificate is an error now, not at the first client
  impl_->Listen();
}

Forwarder::~Forwarder() { Stop(); }

const Forwarder::Counters& Forwarder::counters() const { return impl_->counters; }

std::string Forwarder::Describe() const {
  std::string endpoints;
  for (const auto& e : impl_->endpoints) endpoints += (endpoints.empty() ? "" : ", ") + e.Text();
  return impl_->config.forward.listen + " -> " + endpoints;
}

void Forwarder::Start() {
  Impl* impl = impl_.get();
  impl->acceptor = std::thread([impl] { impl->AcceptLoop(); });
}

void Forwarder::Stop() {
  Impl* impl = impl_.get();
  {
    std::lock_guard lock(impl->mutex);
    if (impl->stopping) return;
    impl->stopping = true;
  }
  impl->stop.Raise();
  if (impl->acceptor.joinable()) impl->acceptor.join();
  impl->Reap(/*all=*/true);  // every connection has seen the stop and returned
  impl->context.Reset();  // the last reference to the key, before its token goes
}

std::unique_ptr<KeyStore> BorrowKeyStore(KeyStore& open) {
  class Borrowed : public KeyStore {
   public:
    explicit Borrowed(KeyStore& k) : k_(k) {}
    bool Open(bool) override { return false; }
    EVP_PKEY* private_key() override { return k_.private_key(); }
    Tpm* tpm() override { return k_.tpm(); }
    EVP_PKEY* public_key() override { return k_.public_key(); }
    std::string Describe() const override { return k_.Describe(); }

   private:
    KeyStore& k_;
  };
  return std::make_unique<Borrowed>(open);
}

int RunForwarder(const RequesterConfig& config, const RequesterEnv& env) {
  ValidateForwardConfig(config);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before any thread: they inherit the mask
  // OpenSSL writes to etcd's socket with write(): a reset connection must be an error, not SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<KeyStore> keys = MakeKeyStore(config);
  keys->Open(/*create=*/false);
  TokenGate gate;
  Forwarder forwarder(config, keys->private_key(), gate, env);
  forwarder.Start();
  Log(env, "forwarding " + forwarder.Describe() + " with " + keys->Describe() + " and " + config.cert);
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      Log(env, "forward: SIGHUP: a renewed certificate is picked up by itself; restart to change the settings");
      continue;
    }
    Log(env, "stopping on signal " + std::to_string(sig));
    forwarder.Stop();
    return 0;
  }
}

}  // namespace requester
