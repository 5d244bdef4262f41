// SPDX-License-Identifier: Apache-2.0
// Issue #17, requester side, through the real programs: a real sshd whose forced command runs the
// real etcd-signer on a SoftHSM CA.
//   - the signer's own wrong PIN stops the daemon after one attempt (item 2);
//   - the post-renew hook inherits no PIN, no descriptor and no blocked or ignored signal (item 5);
//   - known_hosts markers: @revoked is honoured, and no trust-on-first-use next to markers (item 8).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <regex>
#include <sstream>
#include <thread>

#include "test_support.h"

namespace {

using namespace testing_support;
using namespace std::chrono_literals;

class RequesterSecurity : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = std::make_unique<CaToken>(dir_ / "ca-token");
    ssh_ = std::make_unique<SshServer>(dir_.path());
    WriteSignerConfig(ca_->pin_file);
    ssh_key_ = ssh_->NewClientKey("master-ssh");
    ssh_->Authorize(ssh_key_, "SOFTHSM2_CONF=" + ca_->conf + " " + Binary("etcd-signer") + " --config " +
                                  (dir_ / "signer.toml") + " --identity kubemaster-1 sign");
    ssh_->Start();  // hands everything under dir_ to the signer account
    // The master's own files live in a directory only root owns, as on a real master: the
    // requester refuses key files in directories another account could write or own.
    ServerKey();  // before a test rewrites known_hosts
    master_ = dir_ / "master";
    ASSERT_EQ(::mkdir(master_.c_str(), 0700), 0);
  }

  void WriteSignerConfig(const std::string& pin_file) {
    WriteFile(dir_ / "signer.toml", "module = \"" + std::string(kSoftHsmModule) + "\"\nkey = \"" + ca_->key_uri +
                                        "\"\npin_file = \"" + pin_file + "\"\nca_cert = \"" + ca_->ca_cert +
                                        "\"\naudit_log = \"" + (dir_ / "audit.log") + "\"\nlock_file = \"" + (dir_ / "token.lock") +
                                        "\"\nsyslog = false\n");
  }

  std::string Server() const { return ssh_->user() + "@127.0.0.1:" + std::to_string(ssh_->port()); }

  std::vector<std::string> Args(const std::string& verb, std::vector<std::string> extra = {}) {
    std::vector<std::string> a{Binary("etcd-requester"), verb, "--name", "kubemaster-1", "--server", Server(),
                               "--ssh-key", ssh_key_, "--known-hosts", ssh_->known_hosts(), "--cert",
                               master_ + "/client.pem", "--ca-bundle", master_ + "/ca-bundle.pem",
                               "--ca-sha256", RootSha256(ca_->ca_cert), "--connect-timeout", "5s"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  std::vector<std::string> FileKey() const { return {"--key-file", master_ + "/client.key"}; }

  RunResult Do(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {}) {
    return testing_support::Run(args, {.env = env, .timeout = 60s});
  }

  // The server's host key ("ssh-ed25519 AAAA..."), from the known_hosts the fixture wrote.
  std::string ServerKey() {
    if (server_key_.empty()) {
      std::istringstream words(Lines(ReadFile(ssh_->known_hosts())).at(0));
      std::string host, type, blob;
      words >> host >> type >> blob;
      server_key_ = type + " " + blob;
    }
    return server_key_;
  }
  // Another ed25519 public key ("ssh-ed25519 AAAA..."), made once.
  std::string OtherKey() {
    if (!std::filesystem::exists(dir_ / "other.pub")) {
      testing_support::Run({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", dir_ / "other"});
    }
    std::string pub = ReadFile(dir_ / "other.pub");
    std::istringstream words(pub);
    std::string type, blob;
    words >> type >> blob;
    return type + " " + blob;
  }
  std::string HostPattern() const { return "[127.0.0.1]:" + std::to_string(ssh_->port()); }

  // Waits for a background process to end; false if it still runs after `limit`.
  static bool WaitForExit(Process& p, std::chrono::milliseconds limit) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (p.Running()) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(100ms);
    }
    return true;
  }

  TempDir dir_;
  std::unique_ptr<CaToken> ca_;
  std::unique_ptr<SshServer> ssh_;
  std::string ssh_key_;
  std::string master_;
  std::string server_key_;
};

// ---- Item 2: the signer's PIN refusal is never retried ----------------------------------------

// #24: the signer's PIN problem costs its token exactly one login per back-off period, and never
// stops the daemon (one signer's answer must not take a master down for good).
TEST_F(RequesterSecurity, SignersWrongPinRestsThatSignerAfterExactlyOneAttempt) {
  // The signer's own PIN file is wrong: every sign request costs one failed CA-token login.
  WriteFile(dir_ / "wrong.pin", "000000\n", 0400);
  GiveToSigner(dir_ / "wrong.pin");
  WriteSignerConfig(dir_ / "wrong.pin");
  // The CA bundle is already here, so the only request the daemon makes is `sign`.
  WriteFile(master_ + "/ca-bundle.pem", ReadFile(ca_->ca_cert));

  // The one-shot verb keeps the operator-facing reason and shows the signer's own line.
  RunResult once = Do(Args("request", FileKey()));
  EXPECT_EQ(once.exit_code, 69) << once.err;
  EXPECT_NE(once.err.find("etcd-requester: signer-refused: etcd-signer: pin-incorrect: "), std::string::npos)
      << once.err;
  ASSERT_EQ(Lines(ReadFile(dir_ / "audit.log")).size(), 1u);
  // That answer made the signer rest: the daemon does not ask it again.
  std::filesystem::remove(master_ + "/client.pem.state.json");

  Process daemon(Args("run", FileKey()), {}, master_ + "/daemon.log");
  // The daemon's first retry would come after 1 s, the next after 2 s more: 8 s is plenty to see
  // several; the signer is asked once, and the daemon keeps running.
  bool ended = WaitForExit(daemon, 8s);
  std::string log = ReadFile(master_ + "/daemon.log");
  ASSERT_FALSE(ended) << "one signer's PIN answer stopped the daemon:\n" << log;
  std::vector<std::string> audit = Lines(ReadFile(dir_ / "audit.log"));
  // The one-shot request's record, then exactly one more: one CA-token login attempt by the daemon.
  ASSERT_EQ(audit.size(), 2u) << ReadFile(dir_ / "audit.log");
  EXPECT_NE(audit[1].find("pin-incorrect"), std::string::npos) << audit[1];
  EXPECT_NE(log.find("pin-incorrect"), std::string::npos) << log;
  EXPECT_NE(log.find("signer-pin-backoff"), std::string::npos) << log;
  EXPECT_NE(log.find("is not asked until"), std::string::npos) << log;
  EXPECT_FALSE(std::filesystem::exists(master_ + "/client.pem"));
  daemon.Stop();
}

TEST_F(RequesterSecurity, AHostileSignersLineCannotInjectTerminalEscapes) {
  // A forced command that is not etcd-signer (or a compromised one) says whatever it likes.
  std::string liar = ssh_->NewClientKey("liar-ssh");
  ssh_->Authorize(liar, "printf 'etcd-signer: pin-locked: \\033]0;owned\\007\\033[2Jgone\\n' >&2; exit 69");
  GiveToSigner(dir_ / "authorized_keys");
  auto args = Args("request", FileKey());
  std::replace(args.begin(), args.end(), ssh_key_, liar);
  WriteFile(master_ + "/ca-bundle.pem", ReadFile(ca_->ca_cert));
  RunResult r = Do(args);
  EXPECT_EQ(r.exit_code, 69) << r.err;
  EXPECT_EQ(r.err.find('\033'), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\007'), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("etcd-signer: pin-locked: \\x1b]0;owned\\x07\\x1b[2Jgone"), std::string::npos) << r.err;

  // The daemon logs the same escaped line (its `pin-` code makes that signer rest, #24).
  std::replace(args.begin(), args.end(), std::string("request"), std::string("run"));
  Process daemon(args, {}, master_ + "/daemon.log");
  std::string log;
  for (int i = 0; i < 100 && log.find("pin-locked") == std::string::npos; ++i) {
    std::this_thread::sleep_for(50ms);
    log = ReadFile(master_ + "/daemon.log");
  }
  EXPECT_NE(log.find("etcd-signer: pin-locked: \\x1b]0;owned"), std::string::npos) << log;
  EXPECT_EQ(log.find('\033'), std::string::npos) << log;
  EXPECT_TRUE(daemon.Running()) << log;
  daemon.Stop();
}

// ---- Item 5: the post-renew hook inherits nothing secret --------------------------------------

// A hook that records what it inherited: its descriptors, its environment, its signal mask and
// ignored set. Perl rather than sh: dash empties the signal mask when it starts, so a shell script
// would never see a mask it inherited.
std::string WriteHook(const std::string& dir) {
  std::string hook = dir + "/hook.pl";
  WriteFile(hook,
            "#!/usr/bin/perl\n"
            "use strict;\n"
            "my $out = shift;\n"
            "opendir(my $d, '/proc/self/fd') or die;\n"
            "my @fds = map { \"$_ -> \" . (readlink(\"/proc/self/fd/$_\") // '?') } grep { /^\\d+$/ } readdir($d);\n"
            "closedir($d);\n"
            "open(my $s, '<', '/proc/self/status') or die;\n"
            "my @sig = grep { /^Sig(Blk|Ign):/ } <$s>;\n"
            "close($s);\n"
            "open(my $o, '>', \"$out.fd\") or die; print $o join(\"\\n\", sort @fds), \"\\n\"; close($o);\n"
            "open($o, '>', \"$out.sig\") or die; print $o @sig; close($o);\n"
            "open($o, '>', \"$out.env\") or die; print $o map { \"$_=$ENV{$_}\\n\" } sort keys %ENV; close($o);\n"
            "open($o, '>', \"$out.done\") or die; close($o);\n",
            0755);
  return hook;
}

// Every descriptor the hook had other than 0-2 and the one it opened on /proc/self/fd itself to
// list them (which shows as /proc/<its pid>/fd).
std::vector<std::string> LeakedDescriptors(const std::string& listing) {
  std::vector<std::string> leaked;
  static const std::regex kEntry(R"(^(\d+) -> (.*)$)");
  static const std::regex kOwnDir(R"(^/proc/\d+/fd$)");
  int entries = 0;
  for (const std::string& line : Lines(listing)) {
    std::smatch m;
    if (!std::regex_match(line, m, kEntry)) {
      leaked.push_back("unexpected line: " + line);
      continue;
    }
    ++entries;
    int fd = std::stoi(m[1]);
    if (fd <= 2) continue;
    if (std::regex_match(m[2].str(), kOwnDir)) continue;
    leaked.push_back(line);
  }
  if (entries < 3) leaked.push_back("unexpected listing: " + listing);
  return leaked;
}

void ExpectCleanHook(const std::string& out, const std::string& pin) {
  std::string env = ReadFile(out + ".env");
  EXPECT_FALSE(env.empty());
  EXPECT_EQ(env.find(pin), std::string::npos) << "the hook inherited the PIN:\n" << env;
  EXPECT_EQ(env.find("NODE_PIN"), std::string::npos) << env;
  std::vector<std::string> leaked = LeakedDescriptors(ReadFile(out + ".fd"));
  EXPECT_TRUE(leaked.empty()) << "the hook inherited descriptors:\n"
                              << ::testing::PrintToString(leaked) << "\n" << ReadFile(out + ".fd");
  std::string sig = ReadFile(out + ".sig");
  EXPECT_NE(sig.find("SigBlk:\t0000000000000000\n"), std::string::npos) << sig;
  // No ordinary signal (1-31) ignored either: an inherited SIG_IGN survives exec. glibc's
  // posix_spawn itself leaves its two internal signals (32, 33: thread cancellation and setxid,
  // which no program sends) ignored in every child, so those bits are not ours to judge.
  std::size_t at = sig.find("SigIgn:\t");
  ASSERT_NE(at, std::string::npos) << sig;
  unsigned long long ignored = std::stoull(sig.substr(at + 8, 16), nullptr, 16);
  constexpr unsigned long long kSigFpe = 1ULL << (SIGFPE - 1);  // perl ignores SIGFPE at startup
  EXPECT_EQ(ignored & 0x7fffffffULL & ~kSigFpe, 0u) << sig;
}

TEST_F(RequesterSecurity, PostRenewHookInheritsNoPinNoDescriptorAndNoSignalState) {
  // The requester's key in its own SoftHSM token, its PIN in an environment variable.
  std::string node = master_ + "/node-token";
  ASSERT_EQ(::mkdir(node.c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((node + "/tokens").c_str(), 0700), 0);
  WriteFile(node + "/softhsm2.conf", "directories.tokendir = " + node + "/tokens\nobjectstore.backend = file\n");
  const std::string pin = "86420975";
  WriteFile(node + "/pin", pin + "\n", 0400);
  WriteFile(node + "/so.pin", "13579135\n", 0400);
  std::map<std::string, std::string> env{{"SOFTHSM2_CONF", node + "/softhsm2.conf"}, {"NODE_PIN", pin}};
  ASSERT_EQ(Do({Binary("etcd-hsm"), "init-token", "--module", kSoftHsmModule, "--label", "node", "--so-pin-file",
                node + "/so.pin", "--pin-file", node + "/pin"}, env).exit_code, 0);
  std::string hook = WriteHook(master_);
  std::vector<std::string> key{"--key", "pkcs11:token=node;object=etcd-client", "--module", kSoftHsmModule,
                               "--pin-env", "NODE_PIN"};

  // One-shot `request`.
  auto request = Args("request", key);
  request.insert(request.end(), {"--post-renew-hook", hook, master_ + "/request"});
  RunResult r = Do(request, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(std::filesystem::exists(master_ + "/request.done")) << r.err;
  ExpectCleanHook(master_ + "/request", pin);

  // The daemon, where SIGHUP/SIGINT/SIGTERM are blocked for sigtimedwait: a second certificate path
  // so that it renews at once.
  auto run = Args("run", key);
  std::replace(run.begin(), run.end(), master_ + "/client.pem", master_ + "/second.pem");
  run.insert(run.end(), {"--post-renew-hook", hook, master_ + "/run"});
  Process daemon(run, env, master_ + "/daemon.log");
  for (int i = 0; i < 300 && !std::filesystem::exists(master_ + "/run.done"); ++i) std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(std::filesystem::exists(master_ + "/run.done")) << ReadFile(master_ + "/daemon.log");
  ASSERT_TRUE(daemon.Running()) << ReadFile(master_ + "/daemon.log");
  ExpectCleanHook(master_ + "/run", pin);
  ::kill(daemon.pid(), SIGTERM);
  ASSERT_TRUE(WaitForExit(daemon, 10s));
  EXPECT_TRUE(WIFEXITED(daemon.status()) && WEXITSTATUS(daemon.status()) == 0) << ReadFile(master_ + "/daemon.log");
}

// ---- Item 8: known_hosts markers ----------------------------------------------------------------

TEST_F(RequesterSecurity, RevokedHostKeyIsRefusedEvenWithAcceptNew) {
  const std::string revoked = "@revoked * " + ServerKey() + "\n";
  WriteFile(ssh_->known_hosts(), revoked);
  RunResult r = Do(Args("ca", {"--accept-new-host-key"}));
  EXPECT_EQ(r.exit_code, 77) << r.err;
  EXPECT_NE(r.err.find("etcd-requester: host-key-revoked: "), std::string::npos) << r.err;
  EXPECT_EQ(ReadFile(ssh_->known_hosts()), revoked);  // nothing was added
  EXPECT_FALSE(std::filesystem::exists(master_ + "/ca-bundle.pem"));
}

TEST_F(RequesterSecurity, RevokedHostKeyIsRefusedEvenWhenAlsoListedAsTrusted) {
  const std::string both = "@revoked " + HostPattern() + " " + ServerKey() + "\n" + HostPattern() + " " +
                           ServerKey() + "\n";
  WriteFile(ssh_->known_hosts(), both);
  RunResult r = Do(Args("ca"));
  EXPECT_EQ(r.exit_code, 77) << r.err;
  EXPECT_NE(r.err.find("etcd-requester: host-key-revoked: "), std::string::npos) << r.err;
  // In either order.
  const std::string reversed = HostPattern() + " " + ServerKey() + "\n@revoked * " + ServerKey() + "\n";
  WriteFile(ssh_->known_hosts(), reversed);
  r = Do(Args("ca"));
  EXPECT_EQ(r.exit_code, 77) << r.err;
  EXPECT_NE(r.err.find("etcd-requester: host-key-revoked: "), std::string::npos) << r.err;
  EXPECT_EQ(ReadFile(ssh_->known_hosts()), reversed);
}

TEST_F(RequesterSecurity, NoTrustOnFirstUseWhenKnownHostsHasMarkers) {
  // Markers we do not evaluate (a CA for host certificates) or that name other keys: the file is
  // managed by hand, and accept-new would quietly bypass what it says.
  for (const std::string& marker : {"@cert-authority *.example.internal " + OtherKey() + "\n",
                                    "@revoked * " + OtherKey() + "\n"}) {
    WriteFile(ssh_->known_hosts(), marker);
    RunResult r = Do(Args("ca", {"--accept-new-host-key"}));
    EXPECT_EQ(r.exit_code, 77) << marker << r.err;
    EXPECT_NE(r.err.find("etcd-requester: host-key-unknown: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("marker"), std::string::npos) << r.err;
    EXPECT_EQ(ReadFile(ssh_->known_hosts()), marker);
  }
  // A marker for another key does not get in the way of a host that is listed.
  const std::string listed = "@revoked * " + OtherKey() + "\n" + HostPattern() + " " + ServerKey() + "\n";
  WriteFile(ssh_->known_hosts(), listed);
  RunResult ok = Do(Args("ca"));
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

TEST_F(RequesterSecurity, PlainTrustOnFirstUseStillWorks) {
  const std::string server_key = ServerKey();
  WriteFile(ssh_->known_hosts(), "");
  RunResult r = Do(Args("request", {"--key-file", master_ + "/client.key", "--accept-new-host-key"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(ReadFile(ssh_->known_hosts()).find(server_key), std::string::npos) << ReadFile(ssh_->known_hosts());
  RunResult again = Do(Args("renew", {"--key-file", master_ + "/client.key", "--force"}));
  EXPECT_EQ(again.exit_code, 0) << again.err;
}

}  // namespace
