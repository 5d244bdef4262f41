// SPDX-License-Identifier: Apache-2.0
// The real certmonger daemon (Debian's certmonger 0.79) on a private D-Bus, with
// `etcd-requester certmonger` as its CA helper, talking to the real signer through a real sshd with
// a SoftHSM CA: certmonger owns the key and the schedule, the signer issues, the requester
// verifies. One test on purpose: the daemon, the bus and the signer are set up once.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <thread>

#include "test_support.h"

namespace {

using namespace testing_support;
using namespace std::chrono_literals;

class Certmonger : public ::testing::Test {
 protected:
  void SetUp() override {
    ssh_key_ = signer_.AddMaster("kubemaster-1");
    signer_.Start();  // hands everything under the directory made so far to the signer account
    WriteFile(
        dir_ / "requester.toml",
        "server = \"" + signer_.ssh.user() + "@127.0.0.1:" + std::to_string(signer_.ssh.port()) +
            "\"\nssh_key = \"" + ssh_key_ + "\"\nknown_hosts = \"" + signer_.ssh.known_hosts() +
            "\"\nca_bundle = \"" + (dir_ / "ca-bundle.pem") + "\"\nca_sha256 = \"" +
            RootSha256(signer_.ca.ca_cert) + "\"\nconnect_timeout = \"5s\"\n" +
            // certmonger's key settings do not apply: certmonger owns the key; ignored here.
            "key_file = \"/nonexistent/never-read.key\"\n");
    // certmonger's state stays in this directory: requests, CAs, its local CA and its
    // certmonger.conf (CERTMONGER_CONFIG_DIR), never /var/lib/certmonger.
    for (const char* sub :
         {"cm", "cm/config", "cm/requests", "cm/cas", "cm/local", "cm/tmp", "out"}) {
      ASSERT_EQ(::mkdir((dir_ / sub).c_str(), 0700), 0) << sub;
    }
    env_ = {{"DBUS_SESSION_BUS_ADDRESS", "unix:path=" + (dir_ / "cm/bus")},
            {"CERTMONGER_CONFIG_DIR", dir_ / "cm/config"},
            {"CERTMONGER_REQUESTS_DIR", dir_ / "cm/requests"},
            {"CERTMONGER_CAS_DIR", dir_ / "cm/cas"},
            {"CERTMONGER_LOCAL_CA_DIR", dir_ / "cm/local"},
            {"CERTMONGER_TMPDIR", dir_ / "cm/tmp"}};
    bus_ = std::make_unique<Process>(
        std::vector<std::string>{"/usr/bin/dbus-daemon", "--session", "--nofork", "--nopidfile",
                                 "--address=unix:path=" + (dir_ / "cm/bus")},
        env_, dir_ / "cm/dbus.log");
    for (int i = 0; i < 100 && !std::filesystem::exists(dir_ / "cm/bus"); ++i)
      std::this_thread::sleep_for(50ms);
    ASSERT_TRUE(std::filesystem::exists(dir_ / "cm/bus")) << ReadFile(dir_ / "cm/dbus.log");
  }

  // `clock_offset`: e.g. "+17h", certmonger (and so its helper) running that far ahead, through
  // libfaketime preloaded into the daemon itself (the faketime wrapper would stand between the
  // daemon and our SIGTERM).
  void StartCertmonger(const std::string& clock_offset = "") {
    if (daemon_) daemon_->Stop();
    auto env = env_;
    if (!clock_offset.empty()) {
      env["LD_PRELOAD"] = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
      env["FAKETIME"] = clock_offset;
    }
    // -s: session bus; -n: stay in the foreground; -B: no idle timeout; -d 3: log states and
    // helpers.
    daemon_ = std::make_unique<Process>(
        std::vector<std::string>{"/usr/sbin/certmonger", "-s", "-n", "-B", "-d", "3"}, env,
        dir_ / ("cm/certmonger" + clock_offset + ".log"));
    for (int i = 0; i < 100; ++i) {
      RunResult owner = testing_support::Run(
          {"/usr/bin/dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus",
           "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner",
           "string:org.fedorahosted.certmonger"},
          {.env = env_});
      if (owner.out.find("boolean true") != std::string::npos) return;
      std::this_thread::sleep_for(100ms);
    }
    FAIL() << "certmonger did not come up on the private bus: "
           << ReadFile(dir_ / "cm/certmonger.log");
  }

  RunResult Getcert(std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/bin/getcert");
    return testing_support::Run(args, {.env = env_, .timeout = 120s});
  }

  std::string List(const std::string& id) { return Getcert({"list", "-s", "-i", id}).out; }

  // Waits until `getcert list` shows `status` for `id` (getcert -w returns once certmonger is no
  // longer busy with it, which for a retry schedule is not the end).
  bool WaitForStatus(const std::string& id, const std::string& status,
                     std::chrono::seconds limit = 60s) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      if (List(id).find("status: " + status + "\n") != std::string::npos) return true;
      std::this_thread::sleep_for(200ms);
    }
    return false;
  }

  std::string Field(const std::string& cert, const std::string& what) {
    return OpenSsl({"x509", "-in", cert, "-noout", what}).out;
  }

  TempDir dir_;
  SignerDeployment signer_{dir_.path()};
  std::string ssh_key_;
  std::map<std::string, std::string> env_;
  std::unique_ptr<Process> bus_;
  std::unique_ptr<Process> daemon_;
};

TEST_F(Certmonger, IssuesRenewsAndShowsRefusalsThroughTheRealDaemon) {
  // What operator-guide.md recommends for 24 h certificates: renew when 6 h are left.
  WriteFile(dir_ / "cm/config/certmonger.conf",
            "[defaults]\nenroll_ttls = 21600\nnotify_ttls = 7200\n");
  StartCertmonger();
  // The helper runs on the real clock even while certmonger's is moved ahead below: libfaketime
  // preloaded in front of a sanitizer runtime (the ASan build links it dynamically) stops the
  // helper before main().
  const std::string helper = "/usr/bin/env -u LD_PRELOAD -u FAKETIME " + Binary("etcd-requester") +
                             " certmonger --config " + (dir_ / "requester.toml");
  RunResult add = Getcert({"add-ca", "-s", "-c", "etcd", "-e", helper});
  ASSERT_EQ(add.exit_code, 0) << add.out << add.err;

  // A certificate for certmonger's own key (RSA 2048, its default), with its CA:FALSE + SKI
  // extensionRequest and friendlyName: accepted by the signer, verified by the helper.
  const std::string cert = dir_ / "out/kubemaster-1.crt", key = dir_ / "out/kubemaster-1.key";
  RunResult request = Getcert({"request", "-s", "-c", "etcd", "-I", "etcd-client", "-f", cert, "-k",
                               key, "-N", "CN=kubemaster-1", "-w"});
  EXPECT_EQ(request.exit_code, 0) << request.out << request.err;
  ASSERT_TRUE(WaitForStatus("etcd-client", "MONITORING"))
      << List("etcd-client") << ReadFile(dir_ / "cm/certmonger.log");
  EXPECT_NE(List("etcd-client").find("subject: CN=kubemaster-1\n"), std::string::npos)
      << List("etcd-client");
  ASSERT_TRUE(std::filesystem::exists(cert));
  EXPECT_EQ(Field(cert, "-pubkey"), OpenSsl({"pkey", "-in", key, "-pubout"}).out)
      << "the key is certmonger's";
  EXPECT_EQ(Field(cert, "-subject"), "subject=CN = kubemaster-1\n");
  RunResult chains =
      OpenSsl({"verify", "-purpose", "sslclient", "-CAfile", signer_.ca.ca_cert, cert});
  EXPECT_EQ(chains.exit_code, 0) << chains.out << chains.err;
  // The profile, not the request, decided the extensions: clientAuth only, no SAN.
  std::string text = Field(cert, "-text");
  EXPECT_NE(text.find("TLS Web Client Authentication"), std::string::npos);
  EXPECT_EQ(text.find("Subject Alternative Name"), std::string::npos);
  // The helper fetched the signer's bundle on first contact over the verified connection.
  EXPECT_EQ(ReadFile(dir_ / "ca-bundle.pem"), ReadFile(signer_.ca.ca_cert));
  // FETCH-ROOTS: certmonger recorded the signer's root under the CA.
  // IDENTIFY and FETCH-ROOTS: certmonger's record of the CA names the helper and holds the
  // signer's root under its CN.
  std::string ca_record;
  for (const auto& f : std::filesystem::directory_iterator(dir_ / "cm/cas")) {
    std::string t = ReadFile(f.path());
    if (t.rfind("id=etcd\n", 0) == 0) ca_record = t;
  }
  EXPECT_NE(ca_record.find("ca_aka=etcd-requester "), std::string::npos) << ca_record;
  EXPECT_NE(ca_record.find("ca_root_certs=etcd-ca test\n -----BEGIN CERTIFICATE-----\n"),
            std::string::npos)
      << ca_record;
  std::string root_pem = ReadFile(signer_.ca.ca_cert);
  std::string root_line = root_pem.substr(28, 64);  // the first base64 line
  EXPECT_NE(ca_record.find(" " + root_line + "\n"), std::string::npos) << ca_record;
  std::string audit = ReadFile(dir_ / "audit.log");
  EXPECT_NE(audit.find("\"outcome\":\"issued\""), std::string::npos) << audit;

  // Renewal on demand: a new serial for the same key.
  const std::string first_serial = Field(cert, "-serial");
  RunResult resubmit = Getcert({"resubmit", "-s", "-i", "etcd-client", "-w"});
  EXPECT_EQ(resubmit.exit_code, 0) << resubmit.out << resubmit.err;
  ASSERT_TRUE(WaitForStatus("etcd-client", "MONITORING")) << List("etcd-client");
  for (int i = 0; i < 50 && Field(cert, "-serial") == first_serial; ++i)
    std::this_thread::sleep_for(100ms);
  EXPECT_NE(Field(cert, "-serial"), first_serial);
  EXPECT_EQ(Field(cert, "-pubkey"), OpenSsl({"pkey", "-in", key, "-pubout"}).out);

  // enroll_ttls is honoured. certmonger checks a certificate when it starts; restarted with its
  // clock 17 h ahead (7 h left) it keeps the certificate, where its default thresholds (28 d, 7 d,
  // 3 d, 2 d, 1 d, 12 h, 6 h, 2 h, 1 h) would renew it now, having crossed 12 h; 19 h ahead (5 h
  // left) it renews.
  auto issued = [&] {
    std::size_t n = 0;
    for (const auto& line : Lines(ReadFile(dir_ / "audit.log")))
      n += line.find("\"outcome\":\"issued\"") != std::string::npos;
    return n;
  };
  const std::string renewed_serial = Field(cert, "-serial");
  const std::size_t issued_so_far = issued();
  StartCertmonger("+17h");
  std::this_thread::sleep_for(3s);
  EXPECT_TRUE(WaitForStatus("etcd-client", "MONITORING")) << List("etcd-client");
  EXPECT_EQ(issued(), issued_so_far) << "renewed with 7 h left: enroll_ttls was not honoured";
  EXPECT_EQ(Field(cert, "-serial"), renewed_serial);
  StartCertmonger("+19h");
  for (int i = 0; i < 300 && Field(cert, "-serial") == renewed_serial; ++i)
    std::this_thread::sleep_for(100ms);
  EXPECT_NE(Field(cert, "-serial"), renewed_serial)
      << "not renewed with 5 h left" << ReadFile(dir_ / "cm/certmonger+19h.log");
  EXPECT_EQ(issued(), issued_so_far + 1);
  EXPECT_TRUE(WaitForStatus("etcd-client", "MONITORING")) << List("etcd-client");
  StartCertmonger();  // the real clock again

  // A refusal: the signer's own line becomes certmonger's ca-error, and certmonger stops there.
  RunResult bad =
      Getcert({"request", "-s", "-c", "etcd", "-I", "not-a-master", "-f", dir_ / "out/bad.crt",
               "-k", dir_ / "out/bad.key", "-N", "CN=not-a-master", "-w"});
  ASSERT_TRUE(WaitForStatus("not-a-master", "CA_REJECTED")) << List("not-a-master");
  EXPECT_NE(List("not-a-master").find("ca-error: etcd-signer: name-policy: "), std::string::npos)
      << List("not-a-master");
  EXPECT_FALSE(std::filesystem::exists(dir_ / "out/bad.crt"));
  // This SSH key is bound to kubemaster-1: another master's name is the signer's identity-mismatch.
  Getcert({"request", "-s", "-c", "etcd", "-I", "other", "-f", dir_ / "out/other.crt", "-k",
           dir_ / "out/other.key", "-N", "CN=kubemaster-2", "-w"});
  ASSERT_TRUE(WaitForStatus("other", "CA_REJECTED")) << List("other");
  EXPECT_NE(List("other").find("ca-error: etcd-signer: identity-mismatch: "), std::string::npos)
      << List("other");

  // The waiting answers, through the helper alone: signers that answer 75 (an approval pending,
  // a busy token) and one whose token refused its PIN, as forced commands of their own.
  WriteFile(dir_ / "fake-signer",
            "#!/bin/sh\ncat >/dev/null\necho \"etcd-signer: $2: a sentence\" >&2\nexit $1\n", 0755);
  RunResult csr = OpenSsl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                           "-nodes", "-subj", "/CN=kubemaster-1", "-keyout", dir_ / "out/req.key",
                           "-out", dir_ / "out/req.pem"});
  ASSERT_EQ(csr.exit_code, 0) << csr.err;
  struct Wait {
    std::string exit_and_reason;
    int status;
    std::string out;
  };
  int fakes = 0;
  for (const Wait& w : std::vector<Wait>{
           {"75 pending-approval", 5, "300\npending-approval\n"},
           {"75 token-busy", 5, "60\ntoken-busy\n"},
           {"69 pin-incorrect", 4, "etcd-signer: pin-incorrect: a sentence\n"},
           {"69 token-unavailable", 3, "etcd-signer: token-unavailable: a sentence\n"},
           {"77 key-type", 2, "etcd-signer: key-type: a sentence\n"}}) {
    std::string fake_key = signer_.ssh.NewClientKey("fake-" + std::to_string(++fakes));
    signer_.ssh.Authorize(fake_key, (dir_ / "fake-signer") + " " + w.exit_and_reason);
    std::string toml = ReadFile(dir_ / "requester.toml");
    toml.replace(toml.find(ssh_key_), ssh_key_.size(), fake_key);
    WriteFile(dir_ / "fake.toml", toml);
    RunResult r = testing_support::Run(
        {Binary("etcd-requester"), "certmonger", "--config", dir_ / "fake.toml"},
        {.env = {{"CERTMONGER_OPERATION", "POLL"},
                 {"CERTMONGER_CA_COOKIE", "x"},
                 {"CERTMONGER_CSR", ReadFile(dir_ / "out/req.pem")}}});
    EXPECT_EQ(r.exit_code, w.status) << w.exit_and_reason << ": " << r.out << r.err;
    EXPECT_EQ(r.out, w.out) << w.exit_and_reason;
  }

  // The signer unreachable: CA_UNREACHABLE with our line, and the certificate in place untouched.
  const std::string before = ReadFile(cert);
  signer_.ssh.Stop();
  Getcert({"resubmit", "-s", "-i", "etcd-client"});
  ASSERT_TRUE(WaitForStatus("etcd-client", "CA_UNREACHABLE")) << List("etcd-client");
  EXPECT_NE(List("etcd-client").find("ca-error: etcd-requester: connect-failed: "),
            std::string::npos)
      << List("etcd-client");
  EXPECT_EQ(ReadFile(cert), before);
}

}  // namespace
