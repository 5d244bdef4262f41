// SPDX-License-Identifier: Apache-2.0
// The forwarder's pieces (#18, #25), each alone: the listening socket and its safety, the TLS
// context's reload when the certificate is replaced, which endpoint is tried first, the bounded
// failure log, and the stop that ends every wait. The whole forwarder against a real etcd is in
// tests/integration/e2e/forward_test.cc.
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "base/failure.h"
#include "requester/forward.h"
#include "requester/forward_io.h"
#include "requester/forward_listener.h"
#include "requester/forward_tls.h"
#include "requester/forward_upstream.h"
#include "test_support.h"

namespace {

using testing_support::TempDir;
using testing_support::WriteFile;

requester::ListenAddress UnixAt(const std::string& path) {
  requester::ListenAddress a;
  a.unix_socket = true;
  a.path = path;
  return a;
}

// A socket file at `path` that nobody serves: what a forwarder that died leaves behind.
void LeaveStaleSocket(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.c_str(), path.size());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ::close(fd);
}

std::string ListenFailure(const std::string& path) {
  try {
    requester::Listener listener(UnixAt(path), "unix:" + path, 0660, "");
  } catch (const base::Failure& f) {
    EXPECT_EQ(f.reason(), "listen-failed");
    return f.what();
  }
  return "";
}

TEST(Listener, MakesTheSocketWithItsModeAndRemovesItWhenItGoes) {
  TempDir dir;
  std::string path = dir / "etcd.sock";
  {
    requester::Listener listener(UnixAt(path), "unix:" + path, 0600, "");
    struct stat st {};
    ASSERT_EQ(::lstat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u);
  }
  EXPECT_NE(::access(path.c_str(), F_OK), 0);
}

TEST(Listener, ReplacesAStaleSocketButNeverAFileOrALiveSocket) {
  TempDir dir;
  std::string path = dir / "etcd.sock";
  LeaveStaleSocket(path);
  { requester::Listener listener(UnixAt(path), "unix:" + path, 0660, ""); }

  WriteFile(path, "not a socket", 0644);
  EXPECT_NE(ListenFailure(path).find("exists and is not a socket"), std::string::npos);
  EXPECT_EQ(testing_support::ReadFile(path), "not a socket");
  ::unlink(path.c_str());

  requester::Listener live(UnixAt(path), "unix:" + path, 0660, "");
  EXPECT_NE(ListenFailure(path).find("another process is listening"), std::string::npos);
}

// #24 point 9: a socket in a directory that another account can write is one they can replace
// between two runs (kube-apiserver would then talk to them as this master). /tmp is refused, and so
// is a directory owned by another account; nothing is created in either.
TEST(Listener, RefusesADirectoryAnotherAccountCanWrite) {
  auto unsafe = [](const std::string& path) {
    try {
      requester::Listener listener(UnixAt(path), "unix:" + path, 0660, "");
    } catch (const base::Failure& f) {
      EXPECT_EQ(f.code(), base::ExitCode::kConfig) << f.what();
      EXPECT_EQ(f.reason(), "listen-unsafe") << f.what();
      return std::string(f.what());
    }
    return std::string("listened");
  };
  std::string in_tmp = "/tmp/etcd-forward-test-" + std::to_string(::getpid()) + ".sock";
  EXPECT_NE(unsafe(in_tmp).find("/tmp is writable by group or others (mode 1777)"), std::string::npos);
  EXPECT_NE(::access(in_tmp.c_str(), F_OK), 0);
  TempDir dir;
  ASSERT_EQ(::chown(dir.path().c_str(), 65534, 65534), 0);
  EXPECT_NE(unsafe(dir / "etcd.sock").find("is owned by uid 65534"), std::string::npos);
  ASSERT_EQ(::chown(dir.path().c_str(), 0, 0), 0);
  ASSERT_EQ(::chmod(dir.path().c_str(), 0775), 0);
  EXPECT_NE(unsafe(dir / "etcd.sock").find("writable by group or others (mode 0775)"), std::string::npos);
}

// #24 point 9: only "nobody listens" makes a socket stale. A forwarder that may not connect to a
// live socket (EACCES: root's 0600 socket, probed by another account) must not remove it.
TEST(Listener, AProbeThatIsRefusedAccessNeverRemovesTheSocket) {
  TempDir dir;
  ASSERT_EQ(::chown(dir.path().c_str(), 65534, 65534), 0);  // the prober's own directory
  std::string path = dir / "etcd.sock";
  // A live socket of root's, 0600, served (bound and listening) by this process.
  int live = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.c_str(), path.size());
  ASSERT_EQ(::bind(live, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  ASSERT_EQ(::listen(live, 1), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
    try {
      requester::Listener taken(UnixAt(path), "unix:" + path, 0660, "");
      ::_exit(3);  // it replaced a live socket
    } catch (const base::Failure& f) {
      ::_exit(std::string(f.what()).find("cannot be probed (Permission denied)") != std::string::npos ? 0 : 4);
    }
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "3: the live socket was replaced; 4: another error";
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0) << "the live socket is gone";
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  ::close(live);
}

TEST(Listener, AGroupThatDoesNotExistIsAConfigurationErrorAndLeavesNoSocket) {
  TempDir dir;
  std::string path = dir / "etcd.sock";
  try {
    requester::Listener listener(UnixAt(path), "unix:" + path, 0660, "no-such-group-25");
    FAIL() << "no error";
  } catch (const base::Failure& f) {
    EXPECT_EQ(f.code(), base::ExitCode::kConfig);
  }
  EXPECT_NE(::access(path.c_str(), F_OK), 0);
}

TEST(Listener, ListensOnALoopbackPort) {
  requester::ListenAddress a;
  a.ip = "127.0.0.1";
  a.port = 0;  // any free port
  requester::Listener listener(a, "127.0.0.1:0", 0660, "");
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ASSERT_EQ(::getsockname(listener.fd(), reinterpret_cast<sockaddr*>(&ss), &len), 0);
  EXPECT_EQ(ss.ss_family, AF_INET);
}

TEST(EndpointChoice, TriesTheOneThatServedLastFirstThenTheOthersInOrder) {
  requester::EndpointChoice choice(3);
  EXPECT_EQ(choice.Order(), (std::vector<std::size_t>{0, 1, 2}));
  choice.Prefer(2);
  EXPECT_EQ(choice.Order(), (std::vector<std::size_t>{2, 0, 1}));
}

TEST(RateLimitedLog, HoldsBackWhatIsOverTheBurstAndSaysHowManyInTheNextWindow) {
  using Clock = requester::RateLimitedLog::Clock;
  Clock::time_point now = Clock::now();
  std::vector<std::string> written;
  requester::RateLimitedLog log([&](const std::string& line) { written.push_back(line); }, 3,
                                std::chrono::seconds(10), [&] { return now; });
  for (int i = 0; i < 5; ++i) log.Write("failure " + std::to_string(i));
  EXPECT_EQ(written, (std::vector<std::string>{"failure 0", "failure 1", "failure 2"}));
  now += std::chrono::seconds(10);
  log.Write("failure 5");
  ASSERT_EQ(written.size(), 4u);
  EXPECT_EQ(written.back(), "failure 5 (2 earlier failures were not logged)");
}

requester::SslCtxPtr NewContext() {
  return requester::SslCtxPtr(SSL_CTX_new(TLS_client_method()));
}

TEST(ReloadingContext, RebuildsOnlyWhenTheCertificateFileIsReplaced) {
  TempDir dir;
  std::string cert = dir / "client.pem";
  WriteFile(cert, "first", 0644);
  int builds = 0;
  std::vector<std::string> logged;
  requester::ReloadingContext context(
      cert, [&] { ++builds; return NewContext(); }, [&](const std::string& line) { logged.push_back(line); });
  auto first = context.Current();
  EXPECT_EQ(context.Current(), first);
  EXPECT_EQ(builds, 1);
  WriteFile(dir / "new.pem", "second, longer", 0644);
  ASSERT_EQ(::rename((dir / "new.pem").c_str(), cert.c_str()), 0);
  EXPECT_NE(context.Current(), first);
  EXPECT_EQ(builds, 2);
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_NE(logged[0].find("new connections now present the certificate"), std::string::npos);
}

TEST(ReloadingContext, KeepsThePreviousContextWhenTheReplacementDoesNotBuildOrTheFileIsGone) {
  TempDir dir;
  std::string cert = dir / "client.pem";
  WriteFile(cert, "first", 0644);
  bool fail = false;
  std::vector<std::string> logged;
  requester::ReloadingContext context(
      cert,
      [&] {
        if (fail) throw base::Failure(base::ExitCode::kDataErr, "key-mismatch", "not for this key");
        return NewContext();
      },
      [&](const std::string& line) { logged.push_back(line); });
  auto first = context.Current();
  ::unlink(cert.c_str());
  EXPECT_EQ(context.Current(), first);
  fail = true;
  WriteFile(cert, "a bad replacement", 0644);
  EXPECT_EQ(context.Current(), first);
  EXPECT_EQ(context.Current(), first);
  ASSERT_EQ(logged.size(), 1u);  // tried once per replacement, not on every connection
  EXPECT_NE(logged[0].find("keeping the previous certificate: not for this key"), std::string::npos);
}

TEST(ReloadingContext, AFirstBuildThatFailsIsTheCallersFailure) {
  TempDir dir;
  requester::ReloadingContext context(
      dir / "client.pem", []() -> requester::SslCtxPtr { throw base::Failure(base::ExitCode::kNoInput, "cert-missing", "none"); },
      [](const std::string&) {});
  EXPECT_THROW(context.Current(), base::Failure);
}

TEST(StopSignal, EndsEveryWaitOnceRaised) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
  requester::StopSignal stop;
  ASSERT_EQ(::write(pair[1], "x", 1), 1);
  EXPECT_TRUE(requester::WaitFor(pair[0], POLLIN, 1000, stop));
  EXPECT_FALSE(stop.raised());
  stop.Raise();
  EXPECT_TRUE(stop.raised());
  EXPECT_FALSE(requester::WaitFor(pair[0], POLLIN, 1000, stop));
  ::close(pair[0]);
  ::close(pair[1]);
}

}  // namespace
