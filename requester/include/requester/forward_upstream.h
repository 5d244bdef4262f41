// SPDX-License-Identifier: Apache-2.0
// The forwarder's side towards etcd (#18): which endpoint a connection tries first, the TLS
// connection to one endpoint, and the log of endpoint failures (bounded, so that a dead etcd
// under a busy apiserver does not flood the journal).
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/fd.h"
#include "pki/openssl.h"
#include "requester/forward.h"
#include "requester/forward_io.h"

namespace requester {

using SslPtr = std::unique_ptr<SSL, pki::OpenSslDeleter<SSL_free>>;

// Which endpoint a new connection tries first: the one that served last; then the others in their
// configured order, wrapping around. Thread-safe.
class EndpointChoice {
 public:
  explicit EndpointChoice(std::size_t count) : count_(count) {}
  // Every endpoint index once, the preferred one first.
  std::vector<std::size_t> Order() const;
  // `index` served a connection: later connections try it first.
  void Prefer(std::size_t index);

 private:
  const std::size_t count_;
  mutable std::mutex mutex_;
  std::size_t preferred_ = 0;
};

struct UpstreamTimeouts {
  int connect_ms = 0;  // the TCP connection
  int io_ms = 0;       // each wait of the TLS handshake
};

// A TLS connection to `endpoint` made from `ctx`: TCP (each address in turn), etcd's certificate
// verified for the endpoint's name or IP, the handshake signed under `gate`, ALPN h2 agreed. On
// success `upstream` owns the socket; on failure nullptr and `error` says why in a few words.
// Every wait ends early when `stop` is raised.
SslPtr ConnectToEtcd(const EtcdEndpoint& endpoint, SSL_CTX* ctx, const UpstreamTimeouts& timeouts,
                     TokenGate& gate, const StopSignal& stop, base::UniqueFd& upstream, std::string& error);

// At most `burst` lines per `window`; the lines held back are counted and the count is said in the
// next line that goes out. Thread-safe.
class RateLimitedLog {
 public:
  using Clock = std::chrono::steady_clock;
  RateLimitedLog(std::function<void(const std::string&)> write, int burst = 20,
                 Clock::duration window = std::chrono::seconds(10),
                 std::function<Clock::time_point()> now = Clock::now);
  void Write(const std::string& line);

 private:
  const std::function<void(const std::string&)> write_;
  const int burst_;
  const Clock::duration window_;
  const std::function<Clock::time_point()> now_;
  std::mutex mutex_;
  Clock::time_point window_start_{};
  int logged_ = 0;
  long held_back_ = 0;
};

}  // namespace requester
