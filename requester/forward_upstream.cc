// SPDX-License-Identifier: Apache-2.0
#include "requester/forward_upstream.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace requester {
namespace {

using base::UniqueFd;

using AddrInfoPtr = std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)>;

AddrInfoPtr Resolve(const EtcdEndpoint& endpoint, std::string& error) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = endpoint.host_is_ip ? AI_NUMERICHOST : 0;
  addrinfo* found = nullptr;
  std::string port = std::to_string(endpoint.port);
  int rc = ::getaddrinfo(endpoint.host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) {
    error = std::string("cannot resolve: ") + gai_strerror(rc);
    return AddrInfoPtr(nullptr, ::freeaddrinfo);
  }
  return AddrInfoPtr(found, ::freeaddrinfo);
}

// A connected non-blocking TCP socket to `ai`, or -1 with `error` set.
int ConnectTcp(const addrinfo* ai, int connect_ms, const StopSignal& stop, std::string& error) {
  UniqueFd s(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
  if (s.get() < 0) return -1;
  if (::connect(s.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) {
      error = std::string("cannot connect: ") + std::strerror(errno);
      return -1;
    }
    if (!WaitFor(s.get(), POLLOUT, connect_ms, stop)) {
      error = "connect timed out";
      return -1;
    }
    int soerr = 0;
    socklen_t len = sizeof soerr;
    ::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &soerr, &len);
    if (soerr != 0) {
      error = std::string("cannot connect: ") + std::strerror(soerr);
      return -1;
    }
  }
  int one = 1;
  ::setsockopt(s.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return s.release();
}

// The name (or IP) etcd's certificate must carry; never go on without it.
bool SetExpectedName(SSL* ssl, const EtcdEndpoint& endpoint) {
  return endpoint.host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), endpoint.host.c_str()) == 1
                             : SSL_set_tlsext_host_name(ssl, endpoint.host.c_str()) == 1 &&
                                   SSL_set1_host(ssl, endpoint.host.c_str()) == 1;
}

std::string HandshakeError(SSL* ssl, int e) {
  long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) return std::string("etcd's certificate is not trusted: ") + X509_verify_cert_error_string(verify);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return "TLS handshake timed out";
  std::string detail = pki::DrainOpenSslErrors();
  if (detail.empty()) {
    detail = e == SSL_ERROR_SYSCALL ? "etcd closed the connection during the handshake" : "TLS error " + std::to_string(e);
  }
  return "TLS handshake failed: " + detail;
}

bool Handshake(SSL* ssl, int fd, int io_ms, TokenGate& gate, const StopSignal& stop, std::string& error) {
  for (;;) {
    ERR_clear_error();
    int r;
    {
      // The handshake signs with the key: one at a time (the wait for etcd's answer is outside).
      std::lock_guard token(gate);
      r = SSL_connect(ssl);
    }
    if (r == 1) return true;
    int e = SSL_get_error(ssl, r);
    if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) &&
        WaitFor(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, io_ms, stop)) {
      continue;
    }
    error = HandshakeError(ssl, e);
    return false;
  }
}

bool AgreedOnH2(SSL* ssl) {
  const unsigned char* alpn = nullptr;
  unsigned alpn_len = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
  return alpn_len == 2 && std::memcmp(alpn, "h2", 2) == 0;
}

}  // namespace

std::vector<std::size_t> EndpointChoice::Order() const {
  std::size_t first;
  {
    std::lock_guard lock(mutex_);
    first = preferred_;
  }
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < count_; ++i) order.push_back((first + i) % count_);
  return order;
}

void EndpointChoice::Prefer(std::size_t index) {
  std::lock_guard lock(mutex_);
  preferred_ = index;
}

SslPtr ConnectToEtcd(const EtcdEndpoint& endpoint, SSL_CTX* ctx, const UpstreamTimeouts& timeouts,
                     TokenGate& gate, const StopSignal& stop, UniqueFd& upstream, std::string& error) {
  AddrInfoPtr addresses = Resolve(endpoint, error);
  if (!addresses) return nullptr;
  for (const addrinfo* ai = addresses.get(); ai != nullptr; ai = ai->ai_next) {
    UniqueFd s(ConnectTcp(ai, timeouts.connect_ms, stop, error));
    if (s.get() < 0) continue;
    SslPtr ssl(SSL_new(ctx));
    if (!ssl) {
      error = "cannot create a TLS connection";
      return nullptr;
    }
    SSL_set_fd(ssl.get(), s.get());
    if (!SetExpectedName(ssl.get(), endpoint)) {
      error = "cannot set the name to verify etcd against";
      return nullptr;
    }
    if (!Handshake(ssl.get(), s.get(), timeouts.io_ms, gate, stop, error)) return nullptr;
    if (!AgreedOnH2(ssl.get())) {
      error = "etcd did not agree to HTTP/2 (ALPN h2)";
      return nullptr;
    }
    upstream.reset(s.release());
    return ssl;
  }
  if (error.empty()) error = "no address";
  return nullptr;
}

RateLimitedLog::RateLimitedLog(std::function<void(const std::string&)> write, int burst, Clock::duration window,
                               std::function<Clock::time_point()> now)
    : write_(std::move(write)), burst_(burst), window_(window), now_(std::move(now)) {}

void RateLimitedLog::Write(const std::string& line) {
  long held_back;
  {
    std::lock_guard lock(mutex_);
    auto now = now_();
    if (now - window_start_ >= window_) {
      window_start_ = now;
      logged_ = 0;
    }
    if (++logged_ > burst_) {
      held_back_++;
      return;
    }
    held_back = held_back_;
    held_back_ = 0;
  }
  write_(line + (held_back > 0 ? " (" + std::to_string(held_back) + " earlier failures were not logged)" : ""));
}

}  // namespace requester
