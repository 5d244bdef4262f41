// SPDX-License-Identifier: Apache-2.0
// forward-bench: the forwarder's cost (#18), for bench/forward. A minimal gRPC client (HTTP/2 by
// hand: the client preface, SETTINGS, and per call one HEADERS + one DATA frame) that talks to etcd
// either directly over TLS with a key file (what kube-apiserver does today) or in plaintext to
// `etcd-requester forward`, so both are measured with the same client.
//
//   forward-bench puts --to unix:PATH|tcp:PORT          N etcd Put calls on one established connection
//   forward-bench puts --tls PORT --ca F --cert F --key F
//   forward-bench handshakes --to ... --count N --parallel P   new connections until etcd's SETTINGS
//
// Prints one line: "<label> <per-item µs p50> <mean µs> <items/s>". Exit 1 on any protocol error.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "base/flags.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string to;  // unix:PATH or tcp:PORT (plaintext, the forwarder)
  int tls_port = 0;
  std::string ca, cert, key;
  int count = 2000;
  int parallel = 1;
  std::string label = "forward";
};

// One byte stream: a plain socket or TLS over it.
class Conn {
 public:
  explicit Conn(const Options& o) {
    if (!o.to.empty()) {
      if (o.to.rfind("unix:", 0) == 0) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::string path = o.to.substr(5);
        std::memcpy(sa.sun_path, path.c_str(), std::min(path.size(), sizeof sa.sun_path - 1));
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) throw std::runtime_error("connect " + o.to);
        return;
      }
      Tcp(std::stoi(o.to.substr(4)));
      return;
    }
    Tcp(o.tls_port);
    static SSL_CTX* ctx = [&] {
      SSL_CTX* c = SSL_CTX_new(TLS_client_method());
      static const unsigned char alpn[] = {2, 'h', '2'};
      SSL_CTX_set_alpn_protos(c, alpn, sizeof alpn);
      SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
      SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
      if (SSL_CTX_load_verify_locations(c, o.ca.c_str(), nullptr) != 1 ||
          SSL_CTX_use_certificate_chain_file(c, o.cert.c_str()) != 1 ||
          SSL_CTX_use_PrivateKey_file(c, o.key.c_str(), SSL_FILETYPE_PEM) != 1) {
        throw std::runtime_error("TLS setup");
      }
      return c;
    }();
    ssl_ = SSL_new(ctx);
    SSL_set_fd(ssl_, fd_);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), "127.0.0.1");
    if (SSL_connect(ssl_) != 1) throw std::runtime_error("TLS handshake with etcd");
  }
  ~Conn() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
  }
  void Write(const std::string& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      long n = ssl_ != nullptr ? SSL_write(ssl_, bytes.data() + done, static_cast<int>(bytes.size() - done))
                               : ::write(fd_, bytes.data() + done, bytes.size() - done);
      if (n <= 0) throw std::runtime_error("write");
      done += static_cast<std::size_t>(n);
    }
  }
  void Read(char* buf, std::size_t len) {
    std::size_t done = 0;
    while (done < len) {
      long n = ssl_ != nullptr ? SSL_read(ssl_, buf + done, static_cast<int>(len - done)) : ::read(fd_, buf + done, len - done);
      if (n <= 0) throw std::runtime_error("the connection closed");
      done += static_cast<std::size_t>(n);
    }
  }

 private:
  void Tcp(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) throw std::runtime_error("connect");
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  int fd_ = -1;
  SSL* ssl_ = nullptr;
};

std::string Frame(unsigned type, unsigned flags, unsigned stream, const std::string& payload) {
  std::string f;
  f += static_cast<char>((payload.size() >> 16) & 0xff);
  f += static_cast<char>((payload.size() >> 8) & 0xff);
  f += static_cast<char>(payload.size() & 0xff);
  f += static_cast<char>(type);
  f += static_cast<char>(flags);
  for (int shift : {24, 16, 8, 0}) f += static_cast<char>((stream >> shift) & 0xff);
  return f + payload;
}

std::string Literal(unsigned char first, const std::string& value) {  // HPACK, no Huffman, < 127 bytes
  return std::string(1, static_cast<char>(first)) + static_cast<char>(value.size()) + value;
}

struct Http2 {
  explicit Http2(const Options& o) : conn(o) {
    conn.Write(std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + Frame(4, 0, 0, ""));
  }
  // Reads frames until `done` says so; answers SETTINGS and PING, returns credit for DATA.
  template <typename F>
  void ReadUntil(F done) {
    for (;;) {
      unsigned char h[9];
      conn.Read(reinterpret_cast<char*>(h), 9);
      std::size_t len = (std::size_t{h[0]} << 16) | (std::size_t{h[1]} << 8) | h[2];
      unsigned type = h[3], flags = h[4];
      unsigned stream = ((h[5] & 0x7fu) << 24) | (unsigned{h[6]} << 16) | (unsigned{h[7]} << 8) | h[8];
      std::string payload(len, '\0');
      if (len > 0) conn.Read(payload.data(), len);
      if (type == 4 && (flags & 1) == 0) conn.Write(Frame(4, 1, 0, ""));
      if (type == 6 && (flags & 1) == 0) conn.Write(Frame(6, 1, 0, payload));
      if (type == 7) throw std::runtime_error("GOAWAY from etcd");
      if (type == 3) throw std::runtime_error("RST_STREAM from etcd");
      if (type == 0 && len > 0) {
        std::string inc{0, 0, 0, 0};
        for (int i = 0; i < 4; ++i) inc[static_cast<std::size_t>(i)] = static_cast<char>((len >> (24 - 8 * i)) & 0xff);
        conn.Write(Frame(8, 0, 0, inc));
      }
      if (done(type, flags, stream)) return;
    }
  }
  void Put(const std::string& key, const std::string& value) {
    unsigned s = next_stream;
    next_stream += 2;
    std::string headers = "\x83\x86";  // :method POST, :scheme http
    headers += Literal(0x04, "/etcdserverpb.KV/Put");
    headers += Literal(0x01, "localhost");
    headers += std::string("\x0f\x10") + std::string(1, 16) + "application/grpc";
    headers += std::string(1, '\0') + Literal(2, "te").substr(1) + Literal(8, "trailers").substr(1);
    std::string pb = std::string(1, '\x0a') + static_cast<char>(key.size()) + key + '\x12' +
                     static_cast<char>(value.size()) + value;
    std::string msg = std::string(1, '\0') + std::string{0, 0, 0} + static_cast<char>(pb.size()) + pb;
    conn.Write(Frame(1, 4, s, headers) + Frame(0, 1, s, msg));
    ReadUntil([s](unsigned type, unsigned flags, unsigned stream) {
      return stream == s && (type == 1 || type == 0) && (flags & 1) != 0;
    });
  }
  Conn conn;
  unsigned next_stream = 1;
};

void Report(const Options& o, std::vector<double> us, double seconds) {
  std::sort(us.begin(), us.end());
  double mean = 0;
  for (double v : us) mean += v;
  mean /= static_cast<double>(us.size());
  std::printf("%s %.1f %.1f %.1f\n", o.label.c_str(), us[us.size() / 2], mean, static_cast<double>(us.size()) / seconds);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  bool puts = false, handshakes = false;
  int code = base::ParseCommandLine(
      "forward-bench: etcd Put latency on one connection, or new-connection rate", argc, argv,
      [&](base::Flags& app) {
        app.RequireSubcommand();
        base::Flags put_cmd = app.Subcommand("puts", "N sequential Put calls on one established connection", puts);
        base::Flags handshake_cmd =
            app.Subcommand("handshakes", "N new connections (until etcd's HTTP/2 SETTINGS)", handshakes);
        for (base::Flags* cmd : {&put_cmd, &handshake_cmd}) {
          cmd->Option("--to", o.to, "unix:PATH or tcp:PORT: plaintext to the forwarder");
          cmd->Option("--tls", o.tls_port, "127.0.0.1:PORT of etcd, directly over TLS");
          cmd->Option("--ca", o.ca, "etcd's server CA (with --tls)");
          cmd->Option("--cert", o.cert, "client certificate (with --tls)");
          cmd->Option("--key", o.key, "client key file (with --tls)");
          cmd->Option("--count", o.count, "items (default 2000)");
          cmd->Option("--label", o.label, "row label");
        }
        handshake_cmd.Option("--parallel", o.parallel, "connections at once (default 1)");
      });
  if (code >= 0) return code;
  try {
    if (puts) {
      Http2 h(o);
      h.Put("bench/warmup", "x");
      std::vector<double> us;
      auto start = Clock::now();
      for (int i = 0; i < o.count; ++i) {
        auto t0 = Clock::now();
        h.Put("bench/" + std::to_string(i % 100), "value-" + std::to_string(i));
        us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
      Report(o, us, std::chrono::duration<double>(Clock::now() - start).count());
      return 0;
    }
    std::vector<std::vector<double>> per(static_cast<std::size_t>(o.parallel));
    std::atomic<bool> failed{false};
    auto start = Clock::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < o.parallel; ++t) {
      threads.emplace_back([&, t] {
        try {
          for (int i = t; i < o.count; i += o.parallel) {
            auto t0 = Clock::now();
            Http2 h(o);
            h.ReadUntil([](unsigned type, unsigned flags, unsigned) { return type == 4 && (flags & 1) == 0; });
            per[static_cast<std::size_t>(t)].push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
          }
        } catch (const std::exception& e) {
          std::fprintf(stderr, "forward-bench: %s\n", e.what());
          failed = true;
        }
      });
    }
    for (auto& th : threads) th.join();
    if (failed) return 1;
    std::vector<double> us;
    for (auto& v : per) us.insert(us.end(), v.begin(), v.end());
    Report(o, us, std::chrono::duration<double>(Clock::now() - start).count());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "forward-bench: %s\n", e.what());
    return 1;
  }
}
