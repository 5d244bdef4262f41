// SPDX-License-Identifier: Apache-2.0
// #18: the forwarder. etcdctl (gRPC, HTTP/2) reaches a real etcd with --client-cert-auth through
// `etcd-requester run` with forward_listen (one daemon renews and forwards with one token session)
// and through `etcd-requester forward`, with the key in SoftHSM and in a TPM (swtpm + tpm2-pkcs11).
// An `openssl s_server` is the TLS probe that shows which certificate a new connection presents.
#include <gtest/gtest.h>
#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "etcd_fixture.h"
#include "software_tpm.h"
#include "test_support.h"

namespace {

using namespace testing_support;
using namespace std::chrono_literals;

// Polls `done` every 100 ms for up to `limit`.
template <typename F>
bool WaitUntil(F done, std::chrono::milliseconds limit) {
  for (auto end = std::chrono::steady_clock::now() + limit; std::chrono::steady_clock::now() < end;) {
    if (done()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return done();
}

class Forward : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* sub : {"signer", "master", "etcd"}) ASSERT_EQ(::mkdir((dir_ / sub).c_str(), 0700), 0);
    signer_ = std::make_unique<SignerDeployment>(dir_ / "signer");
    ssh_key_ = signer_->AddMaster("kubemaster-1");
    signer_->Start();
    etcd_ = std::make_unique<EtcdServer>(dir_ / "etcd");
    etcd_->Start(signer_->ca.ca_cert);
  }

  // requester.toml for kubemaster-1 with the key `key_lines` and the forwarder's settings.
  std::string WriteConfig(const std::string& key_lines, const std::string& forward_lines) {
    std::string path = dir_ / "master/requester.toml";
    WriteFile(path, "name = \"kubemaster-1\"\nserver = \"" + signer_->ssh.user() + "@127.0.0.1:" +
                        std::to_string(signer_->ssh.port()) + "\"\nssh_key = \"" + ssh_key_ + "\"\nknown_hosts = \"" +
                        signer_->ssh.known_hosts() + "\"\ncert = \"" + Cert() + "\"\nca_bundle = \"" +
                        (dir_ / "master/ca-bundle.pem") + "\"\nca_sha256 = \"" + RootSha256(signer_->ca.ca_cert) +
                        "\"\nconnect_timeout = \"5s\"\n" + key_lines +
                        forward_lines);
    return path;
  }
  std::string Cert() const { return dir_ / "master/client.pem"; }
  std::string Socket() const { return dir_ / "master/etcd.sock"; }
  std::string EtcdCa() const { return dir_ / "etcd/server-ca.pem"; }

  RunResult Ctl(const std::string& socket, const std::vector<std::string>& args) {
    std::vector<std::string> argv{"/usr/bin/etcdctl", "--endpoints", "unix://" + socket, "--dial-timeout", "5s",
                                  "--command-timeout", "15s"};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing_support::Run(argv, {.timeout = 30s});
  }

  static std::string Serial(const std::string& pem) {
    std::string out = OpenSsl({"x509", "-noout", "-serial"}, pem).out;
    EXPECT_EQ(out.rfind("serial=", 0), 0u) << out;
    return out.substr(0, out.find('\n'));
  }

  TempDir dir_;
  std::unique_ptr<SignerDeployment> signer_;
  std::unique_ptr<EtcdServer> etcd_;
  std::string ssh_key_;
};

// True when the process ignores SIGPIPE (SigIgn in /proc/PID/status, bit SIGPIPE - 1).
bool IgnoresSigpipe(int pid) {
  for (const auto& line : Lines(ReadFile("/proc/" + std::to_string(pid) + "/status"))) {
    if (line.rfind("SigIgn:", 0) == 0) return ((std::stoull(line.substr(7), nullptr, 16) >> (SIGPIPE - 1)) & 1) != 0;
  }
  return false;
}

// A plaintext connection to 127.0.0.1:port (-1 when refused).
int Dial(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// One connection that sends a line and waits for the far end to close.
void Poke(int port) {
  int fd = Dial(port);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "probe\n", 6), 6);
  ::shutdown(fd, SHUT_WR);
  char buf[256];
  while (::read(fd, buf, sizeof buf) > 0) {
  }
  ::close(fd);
}

// The daemon gets its first certificate with the SoftHSM key it shares with the forwarder, then
// serves etcdctl over a 0640 unix socket while the first endpoint is down; a certificate renewed
// while a watch is open: the watch keeps delivering, new connections present the new certificate
// (seen by an s_server probe through `forward`); 50 etcdctl at once; SIGTERM removes the socket.
TEST_F(Forward, SoftHsmKeyDaemonServesEtcdctlAcrossFailoverRenewalAndLoad) {
  CaToken master(dir_ / "master/token");  // the master's own SoftHSM token (its CA key is unused)
  const std::string key_lines = "key = \"pkcs11:token=etcd-ca;object=etcd-client\"\nmodule = \"" +
                                std::string(kSoftHsmModule) + "\"\npin_file = \"" + master.pin_file + "\"\n";
  const int dead = FreePort();
  std::string config = WriteConfig(
      key_lines, "forward_listen = \"unix:" + Socket() + "\"\nforward_endpoints = [\"https://127.0.0.1:" +
                     std::to_string(dead) + "\", \"https://127.0.0.1:" + std::to_string(etcd_->port()) +
                     "\"]\nforward_ca = \"" + EtcdCa() + "\"\nforward_listen_mode = \"0640\"\n");
  const std::string log = dir_ / "master/daemon.log";
  // Started with SIGPIPE's default action, as systemd starts it (this test runner ignores SIGPIPE,
  // and that would be inherited).
  Process daemon({"/usr/bin/env", "--default-signal=PIPE", Binary("etcd-requester"), "run", "--config", config},
                 master.env(), log);
  ASSERT_TRUE(WaitUntil([&] { return ReadFile(log).find("forwarding unix:") != std::string::npos; }, 60s))
      << ReadFile(log);
  EXPECT_NE(ReadFile(log).find("generated a new EC P-256 key in token"), std::string::npos) << ReadFile(log);

  struct stat st {};
  ASSERT_EQ(::lstat(Socket().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  // OpenSSL writes to etcd with write(): a connection etcd reset must not SIGPIPE the daemon.
  EXPECT_TRUE(IgnoresSigpipe(daemon.pid())) << ReadFile("/proc/" + std::to_string(daemon.pid()) + "/status");

  RunResult put = Ctl(Socket(), {"put", "greeting", "hello"});
  ASSERT_EQ(put.exit_code, 0) << put.err << ReadFile(log);
  RunResult get = Ctl(Socket(), {"get", "greeting", "--print-value-only"});
  EXPECT_EQ(get.out, "hello\n") << get.err;
  EXPECT_NE(ReadFile(log).find("https://127.0.0.1:" + std::to_string(dead) + ": cannot connect"), std::string::npos)
      << ReadFile(log);

  // A TLS probe that prints the client certificate of each connection, behind `forward` on loopback.
  const int probe_port = FreePort();
  int listen_port = FreePort();
  while (listen_port == probe_port) listen_port = FreePort();
  const std::string probe_log = dir_ / "master/probe.log";
  Process probe({"/bin/sh", "-c",
                 "sleep 300 | exec /usr/bin/openssl s_server -accept " + std::to_string(probe_port) + " -cert " +
                     (dir_ / "etcd/server.pem") + " -key " + (dir_ / "etcd/server.key") + " -CAfile " +
                     signer_->ca.ca_cert + " -Verify 1 -alpn h2"},
                {}, probe_log);
  ASSERT_TRUE(WaitForPort(probe_port, 10s)) << ReadFile(probe_log);
  const std::string forward_log = dir_ / "master/forward.log";
  Process forward({"/usr/bin/env", "--default-signal=PIPE", Binary("etcd-requester"), "forward", "--config", config,
                   "--listen", "127.0.0.1:" + std::to_string(listen_port), "--endpoint",
                   "https://127.0.0.1:" + std::to_string(probe_port)},
                  master.env(), forward_log);
  ASSERT_TRUE(WaitForPort(listen_port, 30s)) << ReadFile(forward_log);
  EXPECT_TRUE(IgnoresSigpipe(forward.pid()));
  Poke(listen_port);
  const std::string first = ReadFile(Cert());
  ASSERT_TRUE(WaitUntil([&] { return ReadFile(probe_log).find("subject=CN = kubemaster-1") != std::string::npos; }, 10s))
      << ReadFile(probe_log) << ReadFile(forward_log);
  EXPECT_NE(ReadFile(probe_log).find(first.substr(0, first.find("-----END CERTIFICATE-----"))), std::string::npos);

  // A watch on a connection made before the renewal.
  const std::string watch_log = dir_ / "master/watch.log";
  Process watch({"/usr/bin/etcdctl", "--endpoints", "unix://" + Socket(), "watch", "w"}, {}, watch_log);
  ASSERT_TRUE(WaitUntil([&] {
    Ctl(Socket(), {"put", "w", "before"});
    return ReadFile(watch_log).find("before") != std::string::npos;
  }, 20s)) << ReadFile(watch_log);

  RunResult renewed = testing_support::Run({Binary("etcd-requester"), "renew", "--force", "--config", config},
                          {.env = master.env(), .timeout = 60s});
  ASSERT_EQ(renewed.exit_code, 0) << renewed.err;
  const std::string second = ReadFile(Cert());
  ASSERT_NE(Serial(first), Serial(second));

  ASSERT_EQ(Ctl(Socket(), {"put", "w", "after"}).exit_code, 0) << ReadFile(log);
  EXPECT_TRUE(WaitUntil([&] { return ReadFile(watch_log).find("after") != std::string::npos; }, 10s))
      << "the watch stopped delivering: " << ReadFile(watch_log);
  EXPECT_TRUE(watch.Running());
  EXPECT_NE(ReadFile(log).find("new connections now present the certificate"), std::string::npos) << ReadFile(log);

  Poke(listen_port);
  EXPECT_TRUE(WaitUntil([&] {
    return ReadFile(probe_log).find(second.substr(0, second.find("-----END CERTIFICATE-----"))) != std::string::npos;
  }, 10s)) << "the new connection did not present the renewed certificate " << Serial(second) << ":\n"
           << ReadFile(probe_log) << ReadFile(forward_log);

  // 50 etcdctl at once through the one daemon.
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < 50; ++i) {
    clients.emplace_back([&, i] {
      if (Ctl(Socket(), {"put", "load/" + std::to_string(i), std::to_string(i)}).exit_code == 0) ok++;
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 50) << ReadFile(log);
  RunResult count = Ctl(Socket(), {"get", "load/", "--prefix", "--keys-only"});
  std::size_t keys = 0;
  for (const auto& line : Lines(count.out)) keys += line.rfind("load/", 0) == 0 ? 1 : 0;
  EXPECT_EQ(keys, 50u) << count.out << count.err;

  // What is at the socket's path is never taken over: a live socket (the daemon's) and a file.
  RunResult taken = testing_support::Run({Binary("etcd-requester"), "forward", "--config", config, "--listen",
                                          "unix:" + Socket()},
                                         {.env = master.env(), .timeout = 30s});
  EXPECT_EQ(taken.exit_code, 73) << taken.err;
  EXPECT_NE(taken.err.find("another process is listening on " + Socket()), std::string::npos) << taken.err;
  EXPECT_EQ(Ctl(Socket(), {"get", "greeting", "--print-value-only"}).out, "hello\n") << "the daemon's socket is gone";
  const std::string file = dir_ / "master/not-a-socket";
  WriteFile(file, "keep me\n");
  RunResult not_socket = testing_support::Run({Binary("etcd-requester"), "forward", "--config", config, "--listen",
                                               "unix:" + file},
                                              {.env = master.env(), .timeout = 30s});
  EXPECT_EQ(not_socket.exit_code, 73) << not_socket.err;
  EXPECT_NE(not_socket.err.find("exists and is not a socket"), std::string::npos) << not_socket.err;
  EXPECT_EQ(ReadFile(file), "keep me\n");

  watch.Stop();
  ::kill(daemon.pid(), SIGTERM);
  int wstatus = 0;
  ASSERT_EQ(::waitpid(daemon.pid(), &wstatus, 0), daemon.pid());
  EXPECT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) << ReadFile(log);
  EXPECT_NE(::access(Socket().c_str(), F_OK), 0) << "the socket outlived the daemon";
}

// etcd must be proven, not assumed: a server whose certificate does not name the endpoint's address, one that
// will not speak HTTP/2 (no ALPN h2), and one whose certificate etcd's CA did not issue are each
// refused; the client is closed without a byte from any of them.
TEST_F(Forward, RefusesServersThatAreNotProvenToBeEtcd) {
  const std::string key_file = dir_ / "master/keys/client.key";
  ASSERT_EQ(::mkdir((dir_ / "master/keys").c_str(), 0700), 0);
  std::string config = WriteConfig("key_file = \"" + key_file + "\"\n", "forward_ca = \"" + EtcdCa() + "\"\n");
  RunResult request = testing_support::Run({Binary("etcd-requester"), "request", "--config", config}, {.timeout = 60s});
  ASSERT_EQ(request.exit_code, 0) << request.err;

  auto s_server = [&](const std::string& address, const std::string& cert, const std::string& key, bool alpn,
                      const std::string& log) {
    return std::make_unique<Process>(
        std::vector<std::string>{"/bin/sh", "-c",
                                 "sleep 120 | exec /usr/bin/openssl s_server -accept " + address +
                                     " -cert " + cert + " -key " + key + (alpn ? " -alpn h2" : "")},
        std::map<std::string, std::string>{}, log);
  };
  // Trusted by etcd's CA, names 127.0.0.1, but no ALPN.
  const int no_alpn = FreePort();
  auto plain = s_server(std::to_string(no_alpn), dir_ / "etcd/server.pem", dir_ / "etcd/server.key", false, dir_ / "master/no-alpn.log");
  // ALPN h2 and 127.0.0.1, but self-signed.
  ASSERT_EQ(OpenSsl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                     dir_ / "master/imposter.key", "-out", dir_ / "master/imposter.pem", "-days", "1", "-subj",
                     "/CN=etcd", "-addext", "subjectAltName=IP:127.0.0.1"})
                .exit_code,
            0);
  int imposter_port = FreePort();
  while (imposter_port == no_alpn) imposter_port = FreePort();
  auto imposter = s_server(std::to_string(imposter_port), dir_ / "master/imposter.pem", dir_ / "master/imposter.key", true,
                           dir_ / "master/imposter.log");
  // etcd's own certificate and ALPN h2, on an address the certificate does not name (127.0.0.2).
  int elsewhere_port = FreePort();
  while (elsewhere_port == no_alpn || elsewhere_port == imposter_port) elsewhere_port = FreePort();
  auto elsewhere = s_server("127.0.0.2:" + std::to_string(elsewhere_port), dir_ / "etcd/server.pem",
                            dir_ / "etcd/server.key", true, dir_ / "master/elsewhere.log");
  ASSERT_TRUE(WaitForPort(no_alpn, 10s) && WaitForPort(imposter_port, 10s));
  ASSERT_TRUE(WaitUntil([&] { return ReadFile(dir_ / "master/elsewhere.log").find("ACCEPT") != std::string::npos; }, 10s));

  int listen_port = FreePort();
  while (listen_port == no_alpn || listen_port == imposter_port || listen_port == elsewhere_port) listen_port = FreePort();
  const std::string log = dir_ / "master/forward.log";
  Process forward({Binary("etcd-requester"), "forward", "--config", config, "--listen",
                   "127.0.0.1:" + std::to_string(listen_port),
                   "--endpoint", "https://127.0.0.2:" + std::to_string(elsewhere_port),
                   "--endpoint", "https://127.0.0.1:" + std::to_string(no_alpn),
                   "--endpoint", "https://127.0.0.1:" + std::to_string(imposter_port)},
                  {}, log);
  ASSERT_TRUE(WaitForPort(listen_port, 30s)) << ReadFile(log);
  int fd = Dial(listen_port);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24), 24);
  timeval tv{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char byte;
  // Closed (0), or reset because our preface was never read (-1): either way not one byte.
  EXPECT_LE(::read(fd, &byte, 1), 0) << "a byte reached the client: " << ReadFile(log);
  ::close(fd);
  ASSERT_TRUE(WaitUntil([&] { return ReadFile(log).find("no etcd endpoint could be reached") != std::string::npos; }, 10s))
      << ReadFile(log);
  const std::string text = ReadFile(log);
  EXPECT_NE(text.find("https://127.0.0.2:" + std::to_string(elsewhere_port) +
                      ": etcd's certificate is not trusted: IP address mismatch"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(std::to_string(no_alpn) + ": etcd did not agree to HTTP/2 (ALPN h2)"), std::string::npos) << text;
  EXPECT_NE(text.find(std::to_string(imposter_port) + ": etcd's certificate is not trusted: self-signed certificate"),
            std::string::npos)
      << text;
}

// #27, end to end with etcd: a signer with attestation = "required"; the master's key made in its
// TPM through ESAPI (tpm_key), enrolled on first contact, certified for its CSR; the same TPM key
// then signs the forwarder's TLS handshakes with etcd --client-cert-auth.
TEST_F(Forward, AttestedTpmKeyIsIssuedAndServesEtcdctlThroughForward) {
  TpmManufacturer manufacturer(dir_ / "manufacturer");
  EndorsedTpm tpm(dir_ / "master/endorsed-tpm", manufacturer);
  WriteFile(dir_ / "signer/ek_roots.pem", manufacturer.RootsPem(), 0644);
  ASSERT_EQ(::mkdir((dir_ / "signer/enrollments").c_str(), 0700), 0);
  GiveToSigner(dir_ / "signer/enrollments");
  signer_->WriteSignerConfig("attestation = \"required\"\nek_roots = \"" + (dir_ / "signer/ek_roots.pem") +
                             "\"\nenrollment_dir = \"" + (dir_ / "signer/enrollments") + "\"\n");
  std::string config = WriteConfig("tpm_key = \"" + (dir_ / "master/client.tpmkey") + "\"\ntcti = \"" + tpm.tcti() +
                                       "\"\nattestation = true\n",
                                   "forward_endpoints = [\"https://127.0.0.1:" + std::to_string(etcd_->port()) +
                                       "\"]\nforward_ca = \"" + EtcdCa() + "\"\n");
  RunResult request = testing_support::Run({Binary("etcd-requester"), "request", "--config", config},
                                           {.env = tpm.env(), .timeout = 90s});
  ASSERT_EQ(request.exit_code, 0) << request.err;
  EXPECT_NE(request.err.find("enrolled this TPM"), std::string::npos) << request.err;
  std::string audit = ReadFile(dir_ / "signer/audit.log");
  EXPECT_NE(audit.find("\"attested\":true"), std::string::npos) << audit;

  const std::string log = dir_ / "master/forward.log";
  Process forward({Binary("etcd-requester"), "forward", "--config", config, "--listen", "unix:" + Socket(),
                   "--listen-mode", "0600"},
                  tpm.env(), log);
  ASSERT_TRUE(WaitUntil([&] { return ReadFile(log).find("forwarding unix:") != std::string::npos; }, 30s))
      << ReadFile(log);
  RunResult put = Ctl(Socket(), {"put", "attested", "signed by an enrolled TPM"});
  ASSERT_EQ(put.exit_code, 0) << put.err << ReadFile(log);
  EXPECT_EQ(Ctl(Socket(), {"get", "attested", "--print-value-only"}).out, "signed by an enrolled TPM\n");
}

// The key in a TPM (swtpm + tpm2-pkcs11): no key file anywhere, etcdctl works through `forward`.
TEST_F(Forward, TpmKeyServesEtcdctlThroughForward) {
  SoftwareTpm tpm(dir_ / "master/tpm");
  const std::string module = SoftwareTpm::kModule;
  const std::map<std::string, std::string>& env = tpm.env();
  std::string config = WriteConfig("key = \"pkcs11:token=node;object=etcd-client\"\nmodule = \"" + module +
                                       "\"\npin_file = \"" + tpm.pin_file + "\"\n",
                                   "forward_endpoints = [\"https://127.0.0.1:" + std::to_string(etcd_->port()) +
                                       "\"]\nforward_ca = \"" + EtcdCa() + "\"\n");
  RunResult request = testing_support::Run({Binary("etcd-requester"), "request", "--config", config}, {.env = env, .timeout = 90s});
  ASSERT_EQ(request.exit_code, 0) << request.err;

  const std::string log = dir_ / "master/forward.log";
  Process forward({Binary("etcd-requester"), "forward", "--config", config, "--listen", "unix:" + Socket(),
                   "--listen-mode", "0600"},
                  env, log);
  ASSERT_TRUE(WaitUntil([&] { return ReadFile(log).find("forwarding unix:") != std::string::npos; }, 30s))
      << ReadFile(log);
  struct stat st {};
  ASSERT_EQ(::lstat(Socket().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  RunResult put = Ctl(Socket(), {"put", "tpm", "signed in the TPM"});
  ASSERT_EQ(put.exit_code, 0) << put.err << ReadFile(log);
  EXPECT_EQ(Ctl(Socket(), {"get", "tpm", "--print-value-only"}).out, "signed in the TPM\n");

  // Bounded: with --max-connections 1, a second client is closed at once while the first is open.
  // (One forwarder at a time here: swtpm without a resource manager has room for one client's
  // objects; a real TPM is shared through the kernel's /dev/tpmrm0.)
  forward.Stop();
  const int bounded_port = FreePort();
  const std::string bounded_log = dir_ / "master/bounded.log";
  Process bounded({Binary("etcd-requester"), "forward", "--config", config, "--listen",
                   "127.0.0.1:" + std::to_string(bounded_port), "--max-connections", "1"},
                  env, bounded_log);
  ASSERT_TRUE(WaitForPort(bounded_port, 30s)) << ReadFile(bounded_log);
  std::this_thread::sleep_for(1s);  // WaitForPort's own connection is served and closed first
  int held = Dial(bounded_port);
  ASSERT_GE(held, 0);
  std::this_thread::sleep_for(500ms);  // accepted and counted before the next one
  int second = Dial(bounded_port);
  ASSERT_GE(second, 0);
  timeval tv{10, 0};
  ::setsockopt(second, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char byte;
  EXPECT_EQ(::read(second, &byte, 1), 0) << "the second connection was not closed: " << ReadFile(bounded_log);
  EXPECT_TRUE(WaitUntil([&] { return ReadFile(bounded_log).find("refused a new one (1 so far)") != std::string::npos; }, 5s))
      << ReadFile(bounded_log);
  ::close(second);
  ::close(held);
}

// Plaintext never leaves the host: only a unix socket or a loopback IP literal may listen, and
// only https:// endpoints are accepted. Refused before any key or file is touched.
TEST(ForwardUsage, RefusesNonLoopbackListenersAndPlaintextEndpoints) {
  auto forward = [](const std::string& listen, const std::string& endpoint) {
    return testing_support::Run({Binary("etcd-requester"), "forward", "--listen", listen, "--endpoint", endpoint, "--etcd-ca",
                "/nonexistent/ca.pem", "--key-file", "/nonexistent/k", "--cert", "/nonexistent/c"});
  };
  for (const std::string listen : {"0.0.0.0:2379", "[::]:2379", "10.0.0.1:2379", "localhost:2379", "unix:relative.sock",
                                   "2379"}) {
    RunResult r = forward(listen, "https://127.0.0.1:2379");
    EXPECT_EQ(r.exit_code, 64) << listen;
    EXPECT_NE(r.err.find("etcd-requester: bad-listen: "), std::string::npos) << listen << ": " << r.err;
  }
  for (const std::string endpoint : {"http://127.0.0.1:2379", "127.0.0.1:2379", "https://u@h:2379", "https://h:2379/x",
                                     "https://h:99999"}) {
    RunResult r = forward("127.0.0.1:2379", endpoint);
    EXPECT_EQ(r.exit_code, 64) << endpoint;
    EXPECT_NE(r.err.find("etcd-requester: bad-endpoint: "), std::string::npos) << endpoint << ": " << r.err;
  }
  // A socket mode that is not octal or has more than permission bits, and a connection bound out of range.
  for (const std::string mode : {"0999", "4777", "rw"}) {
    RunResult r = testing_support::Run({Binary("etcd-requester"), "forward", "--listen", "unix:/run/x.sock",
                                        "--listen-mode", mode, "--endpoint", "https://127.0.0.1:2379", "--etcd-ca",
                                        "/nonexistent/ca.pem", "--key-file", "/nonexistent/k", "--cert", "/nonexistent/c"});
    EXPECT_EQ(r.exit_code, 64) << mode << ": " << r.err;
    EXPECT_NE(r.err.find("--listen-mode: "), std::string::npos) << r.err;
  }
  RunResult unbounded = testing_support::Run({Binary("etcd-requester"), "forward", "--listen", "127.0.0.1:2379",
                                              "--max-connections", "0", "--endpoint", "https://127.0.0.1:2379",
                                              "--etcd-ca", "/nonexistent/ca.pem", "--key-file", "/nonexistent/k",
                                              "--cert", "/nonexistent/c"});
  EXPECT_EQ(unbounded.exit_code, 78) << unbounded.err;
  EXPECT_NE(unbounded.err.find("forward_max_connections must be 1..4096"), std::string::npos) << unbounded.err;
  // The accepted forms get as far as the missing key file.
  RunResult ok = forward("[::1]:2379", "https://[::1]:2379");
  EXPECT_NE(ok.exit_code, 0);
  EXPECT_EQ(ok.err.find("bad-listen"), std::string::npos) << ok.err;
  EXPECT_EQ(ok.err.find("bad-endpoint"), std::string::npos) << ok.err;
  EXPECT_NE(ok.err.find("/nonexistent"), std::string::npos) << ok.err;
}

}  // namespace
