// SPDX-License-Identifier: Apache-2.0
// The forwarder (#18): lets local clients (kube-apiserver, etcdctl) reach etcd with this master's
// certificate while its private key stays in the token. A client connects in plaintext to a unix
// socket or a loopback port; each accepted connection gets its own TLS connection to etcd (TLS 1.2+,
// ALPN h2, etcd's certificate verified against forward_ca and the endpoint's name or IP, our stored
// leaf + chain as the client certificate, the signature made in the token), and bytes are copied
// both ways until either side closes. No plaintext leaves the host: only loopback or a unix socket
// is accepted for listening. Whoever can connect to the listener acts as this master towards etcd,
// so the socket's owner, group and mode are the boundary.
#pragma once

#include <openssl/evp.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "requester/config.h"
#include "requester/key_store.h"
#include "requester/requester.h"

namespace requester {

// --listen: "unix:PATH" (absolute path) or "HOST:PORT" where HOST is a loopback IP literal
// (127.0.0.0/8 or [::1]). Anything else throws Failure(kUsage, "bad-listen").
struct ListenAddress {
  bool unix_socket = false;
  std::string path;  // unix socket
  std::string ip;    // loopback literal, without brackets
  int port = 0;
};
ListenAddress ParseListen(const std::string& text);

// --endpoint: "https://HOST:PORT" (HOST a DNS name, an IPv4 literal or [IPv6]). Throws
// Failure(kUsage, "bad-endpoint") for another scheme, a path, user info or a bad port.
struct EtcdEndpoint {
  std::string host;  // without brackets
  int port = 0;
  bool host_is_ip = false;
  std::string Text() const;
};
EtcdEndpoint ParseEndpoint(const std::string& text);

// Throws Failure(kUsage/kConfig) when the forward_* settings are incomplete or contradictory.
void ValidateForwardConfig(const RequesterConfig& config);

// Serialises every use of a token key in this process: TLS handshakes of many connections and the
// renewal's CSR signature. A TPM signs one thing at a time, and libp11's objects are not meant to
// be used from several threads at once.
using TokenGate = std::mutex;

class Forwarder {
 public:
  // `key` signs (in the token for a token key) and must outlive the forwarder; `gate` serialises
  // its use. Binds the listener (a stale unix socket is replaced; any other file there is refused)
  // and sets the socket's mode and group. Throws Failure.
  Forwarder(const RequesterConfig& config, EVP_PKEY* key, TokenGate& gate, const RequesterEnv& env);
  ~Forwarder();  // Stop() + join
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  // Accepts and serves connections on a thread of its own until Stop().
  void Start();
  // Stops accepting, closes every open connection and waits for their threads. Idempotent.
  void Stop();

  // What the forwarder has done, for logs and tests.
  struct Counters {
    std::atomic<long> accepted{0}, refused_busy{0}, upstream_failed{0}, closed{0};
  };
  const Counters& counters() const;
  std::string Describe() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// A KeyStore that uses `open` (already open, owned elsewhere) without owning it: what `run` with a
// forwarder gives its renewals. Open() does nothing and returns false.
std::unique_ptr<KeyStore> BorrowKeyStore(KeyStore& open);

// forward: serve until SIGTERM/SIGINT. Opens the key (never creates one), then runs a Forwarder.
int RunForwarder(const RequesterConfig& config, const RequesterEnv& env);

}  // namespace requester
