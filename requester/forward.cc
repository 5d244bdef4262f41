// SPDX-License-Identifier: Apache-2.0
// forward (#18): a plaintext listener on this host (unix socket or loopback), one TLS connection to
// etcd per accepted connection, signed with the token key. See forward.h for the contract.
#include "requester/forward.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <list>
#include <thread>

#include "base/failure.h"
#include "base/fd.h"
#include "base/text.h"
#include "pki/openssl.h"
#include "requester/exchange.h"
#include "requester/key_store.h"

namespace requester {
namespace {

using base::ExitCode;
using base::Failure;

using base::UniqueFd;
using SslCtxPtr = std::unique_ptr<SSL_CTX, pki::OpenSslDeleter<SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, pki::OpenSslDeleter<SSL_free>>;

using Clock = std::chrono::steady_clock;

constexpr std::size_t kBuffer = 16 * 1024;

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

void SetNonBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) base::ThrowErrno("forward", "cannot configure", "a socket", errno);
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
  if (c.key_file.empty() == c.key_uri.empty()) {
    throw Failure(ExitCode::kUsage, "usage", "give exactly one of --key-file FILE or --key PKCS11-URI");
  }
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
  ListenAddress listen;
  int listen_fd = -1;
  bool bound = false;  // our socket file exists: removed at the end, and only then
  int stop_fd = -1;    // eventfd: readable once Stop() ran; every poll watches it
  std::atomic<bool> stop_requested{false};
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
  std::shared_ptr<SSL_CTX> context;
  struct stat cert_stat {};
  std::size_t preferred = 0;        // the endpoint that served last
  Clock::time_point failure_window{};  // endpoint failures: at most 20 lines per 10 s
  int failures_logged = 0;
  long failures_unlogged = 0;

  Impl(const RequesterConfig& c, EVP_PKEY* k, TokenGate& g, const RequesterEnv& e)
      : config(c), key(k), gate(g), env(e) {}

  ~Impl() {
    if (listen_fd >= 0) ::close(listen_fd);
    if (stop_fd >= 0) ::close(stop_fd);
    if (bound) ::unlink(listen.path.c_str());
  }

  void Bind();
  std::shared_ptr<SSL_CTX> Context();
  SslCtxPtr BuildContext();
  void Serve(int client);
  SslPtr Connect(const EtcdEndpoint& endpoint, const std::shared_ptr<SSL_CTX>& ctx, UniqueFd& upstream,
                 std::string& error);
  bool WaitFor(int fd, short events, int timeout_ms);
  void Pump(int client, SSL* ssl, int upstream);
  void LogEndpointFailure(const std::string& line);
  void Reap(bool all);
};

void Forwarder::Impl::Bind() {
  listen = ParseListen(config.forward.listen);
  if (listen.unix_socket) {
    struct stat st {};
    if (::lstat(listen.path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        throw Failure(ExitCode::kCantCreate, "listen-failed", listen.path + " exists and is not a socket; not replacing it");
      }
      // A socket left by a forwarder that died; but not one that somebody still serves.
      UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_un sa{};
      sa.sun_family = AF_UNIX;
      std::memcpy(sa.sun_path, listen.path.c_str(), listen.path.size());
      if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
        throw Failure(ExitCode::kCantCreate, "listen-failed", "another process is listening on " + listen.path);
      }
      ::unlink(listen.path.c_str());
    }
    listen_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd < 0) base::ThrowErrno("listen-failed", "cannot create a socket for", listen.path, errno);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, listen.path.c_str(), listen.path.size());
    // Created with its final mode (never wider), then given its group; lchown never follows a
    // link someone may have swapped in.
    mode_t old = ::umask(static_cast<mode_t>(~config.forward.listen_mode & 0777));
    int rc = ::bind(listen_fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    int err = errno;
    ::umask(old);
    if (rc != 0) base::ThrowErrno("listen-failed", "cannot bind", listen.path, err);
    bound = true;
    if (!config.forward.listen_group.empty()) {
      std::vector<char> buf(16384);
      group g{};
      group* found = nullptr;
      if (::getgrnam_r(config.forward.listen_group.c_str(), &g, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
        throw Failure(ExitCode::kConfig, "bad-config", "no group '" + base::Printable(config.forward.listen_group, 64) + "' (--listen-group)");
      }
      if (::lchown(listen.path.c_str(), static_cast<uid_t>(-1), found->gr_gid) != 0) {
        // Not a member of the group (EPERM): the account must be in it to hand the socket over.
        base::ThrowErrno("listen-failed", "cannot give the group " + config.forward.listen_group +
                                              " (is this account a member?) to", listen.path, errno);
      }
    }
  } else {
    bool v6 = listen.ip.find(':') != std::string::npos;
    listen_fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd < 0) base::ThrowErrno("listen-failed", "cannot create a socket for", config.forward.listen, errno);
    int one = 1;
    ::setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_storage ss{};
    socklen_t len;
    if (v6) {
      auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
      s6->sin6_family = AF_INET6;
      s6->sin6_port = htons(static_cast<uint16_t>(listen.port));
      inet_pton(AF_INET6, listen.ip.c_str(), &s6->sin6_addr);
      len = sizeof *s6;
    } else {
      auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
      s4->sin_family = AF_INET;
      s4->sin_port = htons(static_cast<uint16_t>(listen.port));
      inet_pton(AF_INET, listen.ip.c_str(), &s4->sin_addr);
      len = sizeof *s4;
    }
    if (::bind(listen_fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
      base::ThrowErrno("listen-failed", "cannot bind", config.forward.listen, errno);
    }
  }
  if (::listen(listen_fd, 128) != 0) base::ThrowErrno("listen-failed", "cannot listen on", config.forward.listen, errno);
  SetNonBlocking(listen_fd);
}

// The client context for the certificate on disk now: rebuilt when the file was replaced (a renewal
// renames a new file into place), so new connections present the new certificate while existing
// ones keep theirs.
std::shared_ptr<SSL_CTX> Forwarder::Impl::Context() {
  struct stat st {};
  bool have = ::stat(config.cert.c_str(), &st) == 0;
  std::lock_guard lock(mutex);
  if (context && !have) return context;  // mid-replacement or removed: keep serving what we have
  if (context && st.st_ino == cert_stat.st_ino && st.st_dev == cert_stat.st_dev &&
      st.st_size == cert_stat.st_size && st.st_mtim.tv_sec == cert_stat.st_mtim.tv_sec &&
      st.st_mtim.tv_nsec == cert_stat.st_mtim.tv_nsec) {
    return context;
  }
  try {
    SslCtxPtr fresh = BuildContext();
    bool first = !context;
    context = std::shared_ptr<SSL_CTX>(fresh.release(), SSL_CTX_free);
    cert_stat = st;
    if (!first) Log(env, "forward: new connections now present the certificate in " + config.cert);
  } catch (const Failure& f) {
    if (!context) throw;
    Log(env, std::string("forward: keeping the previous certificate: ") + f.what());
    cert_stat = st;  // do not retry on every connection; the next replacement is tried again
  }
  return context;
}

SslCtxPtr Forwarder::Impl::BuildContext() {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) pki::ThrowOpenSsl(ExitCode::kSoftware, "internal", "cannot create a TLS context");
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);  // every connection authenticates afresh
  // No TLS 1.2 renegotiation: it would make SSL_read sign with the key outside the token's turn.
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  static const unsigned char kAlpn[] = {2, 'h', '2'};
  if (SSL_CTX_set_alpn_protos(ctx.get(), kAlpn, sizeof kAlpn) != 0) {
    pki::ThrowOpenSsl(ExitCode::kSoftware, "internal", "cannot offer ALPN h2");
  }
  if (SSL_CTX_load_verify_locations(ctx.get(), config.forward.etcd_ca.c_str(), nullptr) != 1) {
    pki::ThrowOpenSsl(ExitCode::kNoInput, "etcd-ca", "cannot load etcd's CA from " + config.forward.etcd_ca);
  }
  // Leaf and chain, as stored by request/renew: the first certificate is ours, the rest its chain.
  std::vector<pki::X509Ptr> certs = pki::ReadCertificateBundleFile(config.cert);
  if (certs.empty()) throw Failure(ExitCode::kNoInput, "cert-missing", "no certificate in " + config.cert);
  if (SSL_CTX_use_certificate(ctx.get(), certs[0].get()) != 1) {
    pki::ThrowOpenSsl(ExitCode::kDataErr, "cert-unusable", "cannot use the certificate in " + config.cert);
  }
  for (std::size_t i = 1; i < certs.size(); ++i) {
    if (SSL_CTX_add1_chain_cert(ctx.get(), certs[i].get()) != 1) {
      pki::ThrowOpenSsl(ExitCode::kDataErr, "cert-unusable", "cannot use the chain in " + config.cert);
    }
  }
  std::lock_guard token(gate);
  if (SSL_CTX_use_PrivateKey(ctx.get(), key) != 1 || SSL_CTX_check_private_key(ctx.get()) != 1) {
    pki::ThrowOpenSsl(ExitCode::kDataErr, "key-mismatch", "the certificate in " + config.cert + " is not for this key");
  }
  return ctx;
}

bool Forwarder::Impl::WaitFor(int fd, short events, int timeout_ms) {
  pollfd fds[2] = {{fd, events, 0}, {stop_fd, POLLIN, 0}};
  int n;
  do {
    n = ::poll(fds, 2, timeout_ms);
  } while (n < 0 && errno == EINTR);
  return n > 0 && fds[1].revents == 0 && fds[0].revents != 0;
}

SslPtr Forwarder::Impl::Connect(const EtcdEndpoint& endpoint, const std::shared_ptr<SSL_CTX>& ctx,
                                UniqueFd& upstream, std::string& error) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = endpoint.host_is_ip ? AI_NUMERICHOST : 0;
  addrinfo* found = nullptr;
  std::string port = std::to_string(endpoint.port);
  int rc = ::getaddrinfo(endpoint.host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) {
    error = std::string("cannot resolve: ") + gai_strerror(rc);
    return nullptr;
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(found, ::freeaddrinfo);
  const int connect_ms = static_cast<int>(config.connect_timeout.count() * 1000);
  const int io_ms = static_cast<int>(config.io_timeout.count() * 1000);
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    UniqueFd s(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
    if (s.get() < 0) continue;
    if (::connect(s.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        error = std::string("cannot connect: ") + std::strerror(errno);
        continue;
      }
      if (!WaitFor(s.get(), POLLOUT, connect_ms)) {
        error = "connect timed out";
        continue;
      }
      int soerr = 0;
      socklen_t len = sizeof soerr;
      ::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &soerr, &len);
      if (soerr != 0) {
        error = std::string("cannot connect: ") + std::strerror(soerr);
        continue;
      }
    }
    int one = 1;
    ::setsockopt(s.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    SslPtr ssl(SSL_new(ctx.get()));
    if (!ssl) {
      error = "cannot create a TLS connection";
      return nullptr;
    }
    SSL_set_fd(ssl.get(), s.get());
    bool named = endpoint.host_is_ip
                     ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), endpoint.host.c_str()) == 1
                     : SSL_set_tlsext_host_name(ssl.get(), endpoint.host.c_str()) == 1 &&
                           SSL_set1_host(ssl.get(), endpoint.host.c_str()) == 1;
    if (!named) {  // never go on without the name check
      error = "cannot set the name to verify etcd against";
      return nullptr;
    }
    for (;;) {
      ERR_clear_error();
      int r;
      {
        // The handshake signs with the key: one at a time (the wait for etcd's answer is outside).
        std::lock_guard token(gate);
        r = SSL_connect(ssl.get());
      }
      if (r == 1) break;
      int e = SSL_get_error(ssl.get(), r);
      if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) &&
          WaitFor(s.get(), e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, io_ms)) {
        continue;
      }
      long verify = SSL_get_verify_result(ssl.get());
      if (verify != X509_V_OK) {
        error = std::string("etcd's certificate is not trusted: ") + X509_verify_cert_error_string(verify);
      } else if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        error = "TLS handshake timed out";
      } else {
        std::string detail = pki::DrainOpenSslErrors();
        if (detail.empty()) {
          detail = e == SSL_ERROR_SYSCALL ? "etcd closed the connection during the handshake"
                                          : "TLS error " + std::to_string(e);
        }
        error = "TLS handshake failed: " + detail;
      }
      return nullptr;
    }
    const unsigned char* alpn = nullptr;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(ssl.get(), &alpn, &alpn_len);
    if (alpn_len != 2 || std::memcmp(alpn, "h2", 2) != 0) {
      error = "etcd did not agree to HTTP/2 (ALPN h2)";
      return nullptr;
    }
    upstream.reset(s.release());
    return ssl;
  }
  if (error.empty()) error = "no address";
  return nullptr;
}

// Copies bytes both ways until either side closes or fails, or Stop(). The client's EOF ends the
// connection once its bytes are sent (close_notify to etcd): gRPC clients never half-close, and a
// closed client cannot be told from a half-closed one without writing to it.
void Forwarder::Impl::Pump(int client, SSL* ssl, int upstream) {
  std::vector<char> up(kBuffer), down(kBuffer);  // client → etcd, etcd → client
  std::size_t up_len = 0, down_len = 0, down_off = 0;
  bool client_eof = false, etcd_eof = false;
  while (!stop_requested.load(std::memory_order_relaxed)) {
    bool progress = false;
    bool tls_want_read = false, tls_want_write = false;
    // client → buffer
    if (up_len == 0 && !client_eof) {
      ssize_t n = ::read(client, up.data(), up.size());
      if (n > 0) {
        up_len = static_cast<std::size_t>(n);
        progress = true;
      } else if (n == 0) {
        client_eof = true;
        progress = true;
      } else if (errno != EAGAIN && errno != EINTR) {
        return;
      }
    }
    // buffer → etcd (a retried SSL_write gets the same bytes)
    if (up_len > 0) {
      int r = SSL_write(ssl, up.data(), static_cast<int>(up_len));
      if (r > 0) {
        std::memmove(up.data(), up.data() + r, up_len - static_cast<std::size_t>(r));
        up_len -= static_cast<std::size_t>(r);
        progress = true;
      } else {
        int e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_WANT_READ) tls_want_read = true;
        else if (e == SSL_ERROR_WANT_WRITE) tls_want_write = true;
        else return;
      }
    }
    // etcd → buffer
    if (down_len == 0 && !etcd_eof) {
      int r = SSL_read(ssl, down.data(), static_cast<int>(down.size()));
      if (r > 0) {
        down_len = static_cast<std::size_t>(r);
        down_off = 0;
        progress = true;
      } else {
        int e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_WANT_READ) tls_want_read = true;
        else if (e == SSL_ERROR_WANT_WRITE) tls_want_write = true;
        else if (e == SSL_ERROR_ZERO_RETURN) {
          etcd_eof = true;
          progress = true;
        } else {
          return;
        }
      }
    }
    // buffer → client
    if (down_len > 0) {
      ssize_t n = ::send(client, down.data() + down_off, down_len, MSG_NOSIGNAL);
      if (n > 0) {
        down_off += static_cast<std::size_t>(n);
        down_len -= static_cast<std::size_t>(n);
        progress = true;
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        return;  // the client is gone
      }
    }
    if (client_eof && up_len == 0) break;
    if (etcd_eof && down_len == 0) return;
    if (progress) continue;
    // Only the descriptors with something to wait for: a closed peer reports POLLHUP whatever the
    // events, and polling it while its side is not needed would spin.
    pollfd fds[3] = {{client, 0, 0}, {upstream, 0, 0}, {stop_fd, POLLIN, 0}};
    if (up_len == 0 && !client_eof) fds[0].events |= POLLIN;
    if (down_len > 0) fds[0].events |= POLLOUT;
    if (tls_want_read) fds[1].events |= POLLIN;
    if (tls_want_write) fds[1].events |= POLLOUT;
    if (fds[0].events == 0) fds[0].fd = -1;
    if (fds[1].events == 0) fds[1].fd = -1;
    int n;
    do {
      n = ::poll(fds, 3, -1);
    } while (n < 0 && errno == EINTR);
    if (n < 0 || fds[2].revents != 0) return;
    if ((fds[0].revents & (POLLERR | POLLNVAL)) != 0 || (fds[1].revents & (POLLERR | POLLNVAL)) != 0) return;
  }
  if (client_eof) SSL_shutdown(ssl);  // close_notify: we are done with etcd
}

void Forwarder::Impl::LogEndpointFailure(const std::string& line) {
  long unlogged;
  {
    std::lock_guard lock(mutex);
    auto now = Clock::now();
    if (now - failure_window >= std::chrono::seconds(10)) {
      failure_window = now;
      failures_logged = 0;
    }
    if (++failures_logged > 20) {
      failures_unlogged++;
      return;
    }
    unlogged = failures_unlogged;
    failures_unlogged = 0;
  }
  Log(env, line + (unlogged > 0 ? " (" + std::to_string(unlogged) + " earlier failures were not logged)" : ""));
}

void Forwarder::Impl::Serve(int client_fd) {
  UniqueFd client(client_fd);
  SetNonBlocking(client.get());
  // Nothing is spent on a client that says nothing: no etcd connection, no signature in the token,
  // until its first bytes (an HTTP/2 client sends its preface at once), within io_timeout.
  if (!WaitFor(client.get(), POLLIN, static_cast<int>(config.io_timeout.count() * 1000))) return;
  char first_byte;
  if (::recv(client.get(), &first_byte, 1, MSG_PEEK) <= 0) return;  // closed without a word
  std::shared_ptr<SSL_CTX> ctx;
  try {
    ctx = Context();
  } catch (const Failure& f) {
    counters.upstream_failed++;
    LogEndpointFailure(std::string("forward: cannot serve a connection: ") + f.what());
    return;
  }
  std::size_t first;
  {
    std::lock_guard lock(mutex);
    first = preferred;
  }
  for (std::size_t i = 0; i < endpoints.size(); ++i) {
    std::size_t index = (first + i) % endpoints.size();
    UniqueFd upstream;
    std::string error;
    SslPtr ssl = Connect(endpoints[index], ctx, upstream, error);
    if (!ssl) {
      if (stop_requested) return;
      LogEndpointFailure("forward: " + endpoints[index].Text() + ": " + error +
                         (i + 1 < endpoints.size() ? "; trying the next endpoint" : ""));
      continue;
    }
    if (index != first) {
      std::lock_guard lock(mutex);
      preferred = index;
    }
    Pump(client.get(), ssl.get(), upstream.get());
    return;
  }
  counters.upstream_failed++;
  LogEndpointFailure("forward: no etcd endpoint could be reached; closed the client's connection");
}

Forwarder::Forwarder(const RequesterConfig& config, EVP_PKEY* key, TokenGate& gate, const RequesterEnv& env)
    : impl_(std::make_shared<Impl>(config, key, gate, env)) {
  ValidateForwardConfig(config);
  for (const auto& e : config.forward.endpoints) impl_->endpoints.push_back(ParseEndpoint(e));
  impl_->stop_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (impl_->stop_fd < 0) base::ThrowErrno("forward", "cannot create", "an eventfd", errno);
  impl_->Context();  // a missing or mismatched certificate is an error now, not at the first client
  impl_->Bind();
}

Forwarder::~Forwarder() { Stop(); }

const Forwarder::Counters& Forwarder::counters() const { return impl_->counters; }

std::string Forwarder::Describe() const {
  std::string endpoints;
  for (const auto& e : impl_->endpoints) endpoints += (endpoints.empty() ? "" : ", ") + e.Text();
  return impl_->config.forward.listen + " -> " + endpoints;
}

void Forwarder::Impl::Reap(bool all) {
  for (auto it = workers.begin(); it != workers.end();) {
    if (all || it->done->load()) {
      it->thread.join();
      it = workers.erase(it);
    } else {
      ++it;
    }
  }
}

void Forwarder::Start() {
  Impl* impl = impl_.get();
  impl->acceptor = std::thread([impl] {
    for (;;) {
      impl->Reap(/*all=*/false);
      pollfd fds[2] = {{impl->listen_fd, POLLIN, 0}, {impl->stop_fd, POLLIN, 0}};
      int n = ::poll(fds, 2, 1000);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 || fds[1].revents != 0) return;
      if (n == 0) continue;
      int client = ::accept4(impl->listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) {
        // Out of descriptors: the client stays in the backlog and poll() would report it at once
        // again; wait instead of spinning. Anything else (EAGAIN, a client gone) is retried.
        if (errno == EMFILE || errno == ENFILE) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      {
        std::lock_guard lock(impl->mutex);
        if (impl->stopping || impl->active >= impl->config.forward.max_connections) {
          ::close(client);
          long refused = ++impl->counters.refused_busy;
          if (refused == 1 || refused % 100 == 0) {  // a flood of clients must not flood the journal
            Log(impl->env, "forward: " + std::to_string(impl->active) +
                               " connections are open (forward_max_connections); refused a new one (" +
                               std::to_string(refused) + " so far)");
          }
          continue;
        }
        impl->active++;
      }
      impl->counters.accepted++;
      Impl::Worker worker;
      auto done = worker.done;
      auto finish = [impl, done] {
        impl->counters.closed++;
        {
          std::lock_guard lock(impl->mutex);
          impl->active--;
        }
        done->store(true);
      };
      try {
        worker.thread = std::thread([impl, client, finish] {
          try {
            impl->Serve(client);
          } catch (const std::exception& e) {  // Serve closes the client on every path out
            Log(impl->env, std::string("forward: a connection failed: ") + e.what());
          }
          finish();
        });
        impl->workers.push_back(std::move(worker));
      } catch (const std::system_error& e) {  // no thread to be had (TasksMax): refuse this one
        ::close(client);
        finish();
        Log(impl->env, std::string("forward: cannot start a thread for a connection: ") + e.what());
      }
    }
  });
}

void Forwarder::Stop() {
  Impl* impl = impl_.get();
  {
    std::lock_guard lock(impl->mutex);
    if (impl->stopping) return;
    impl->stopping = true;
  }
  impl->stop_requested = true;
  ::eventfd_write(impl->stop_fd, 1);
  if (impl->acceptor.joinable()) impl->acceptor.join();
  impl->Reap(/*all=*/true);  // every connection has seen the stop and returned
  std::lock_guard lock(impl->mutex);
  impl->context.reset();  // the last reference to the key, before its token goes
}

std::unique_ptr<KeyStore> BorrowKeyStore(KeyStore& open) {
  class Borrowed : public KeyStore {
   public:
    explicit Borrowed(KeyStore& k) : k_(k) {}
    bool Open(bool) override { return false; }
    EVP_PKEY* private_key() override { return k_.private_key(); }
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
