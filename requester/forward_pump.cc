// SPDX-License-Identifier: Apache-2.0
#include "requester/forward_pump.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace requester {
namespace {

constexpr std::size_t kBuffer = 16 * 1024;

// Each step moves what it can without blocking: kMoved, kWait (nothing to do now), kEnd (that
// side closed or failed: the connection ends).
enum class Step { kMoved, kWait, kEnd };

struct Pump {
  int client;
  SSL* ssl;
  int upstream;
  std::vector<char> up = std::vector<char>(kBuffer), down = std::vector<char>(kBuffer);  // client → etcd, etcd → client
  std::size_t up_len = 0, down_len = 0, down_off = 0;
  bool client_eof = false, etcd_eof = false;
  bool tls_want_read = false, tls_want_write = false;

  // SSL_read/SSL_write moved nothing: `e` (SSL_get_error) says what TLS waits for.
  Step TlsWants(int e) {
    if (e == SSL_ERROR_WANT_READ) {
      tls_want_read = true;
    } else if (e == SSL_ERROR_WANT_WRITE) {
      tls_want_write = true;
    } else {
      return Step::kEnd;
    }
    return Step::kWait;
  }

  // client → buffer
  Step ReadClient() {
    if (up_len > 0 || client_eof) return Step::kWait;
    ssize_t n = ::read(client, up.data(), up.size());
    if (n > 0) {
      up_len = static_cast<std::size_t>(n);
      return Step::kMoved;
    }
    if (n == 0) {
      client_eof = true;
      return Step::kMoved;
    }
    return errno == EAGAIN || errno == EINTR ? Step::kWait : Step::kEnd;
  }

  // buffer → etcd (a retried SSL_write gets the same bytes)
  Step WriteEtcd() {
    if (up_len == 0) return Step::kWait;
    int r = SSL_write(ssl, up.data(), static_cast<int>(up_len));
    if (r <= 0) return TlsWants(SSL_get_error(ssl, r));
    std::memmove(up.data(), up.data() + r, up_len - static_cast<std::size_t>(r));
    up_len -= static_cast<std::size_t>(r);
    return Step::kMoved;
  }

  // etcd → buffer
  Step ReadEtcd() {
    if (down_len > 0 || etcd_eof) return Step::kWait;
    int r = SSL_read(ssl, down.data(), static_cast<int>(down.size()));
    if (r > 0) {
      down_len = static_cast<std::size_t>(r);
      down_off = 0;
      return Step::kMoved;
    }
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_ZERO_RETURN) {
      etcd_eof = true;
      return Step::kMoved;
    }
    return TlsWants(e);
  }

  // buffer → client
  Step WriteClient() {
    if (down_len == 0) return Step::kWait;
    ssize_t n = ::send(client, down.data() + down_off, down_len, MSG_NOSIGNAL);
    if (n > 0) {
      down_off += static_cast<std::size_t>(n);
      down_len -= static_cast<std::size_t>(n);
      return Step::kMoved;
    }
    return n < 0 && errno != EAGAIN && errno != EINTR ? Step::kEnd : Step::kWait;  // kEnd: the client is gone
  }

  // Until one side is ready again. Only the descriptors with something to wait for: a closed peer
  // reports POLLHUP whatever the events, and polling it while its side is not needed would spin.
  // False when the wait failed, a descriptor failed, or `stop` was raised.
  bool WaitForEither(const StopSignal& stop) {
    pollfd fds[3] = {{client, 0, 0}, {upstream, 0, 0}, {stop.fd(), POLLIN, 0}};
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
    if (n < 0 || fds[2].revents != 0) return false;
    return (fds[0].revents & (POLLERR | POLLNVAL)) == 0 && (fds[1].revents & (POLLERR | POLLNVAL)) == 0;
  }
};

}  // namespace

void PumpBytes(int client, SSL* ssl, int upstream, const StopSignal& stop) {
  Pump p{client, ssl, upstream};
  while (!stop.raised()) {
    p.tls_want_read = p.tls_want_write = false;
    bool progress = false;
    for (auto step : {&Pump::ReadClient, &Pump::WriteEtcd, &Pump::ReadEtcd, &Pump::WriteClient}) {
      Step s = (p.*step)();
      if (s == Step::kEnd) return;
      progress = progress || s == Step::kMoved;
    }
    if (p.client_eof && p.up_len == 0) break;
    if (p.etcd_eof && p.down_len == 0) return;
    if (progress) continue;
    if (!p.WaitForEither(stop)) return;
  }
  if (p.client_eof) SSL_shutdown(ssl);  // close_notify: we are done with etcd
}

}  // namespace requester
