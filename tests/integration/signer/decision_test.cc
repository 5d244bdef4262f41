// SPDX-License-Identifier: Apache-2.0
// Issue #17 (1, 6): how a request ends is decided once. The deadline watchdog and the main thread
// race for it; the loser neither writes a record nor prints. And a certificate whose "issued"
// record the audit file refused never leaves. Signer::Serve in-process with a real SoftHSM token;
// the deadline ends the process, so those cases run in a gtest death-test child.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/files.h"
#include "signer/service.h"
#include "test_support.h"

namespace {

using namespace testing_support;
using namespace std::chrono_literals;

class Decision : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // "fast": the child is a fork and writes where this process reads (this process has no threads).
    GTEST_FLAG_SET(death_test_style, "fast");
    dir_ = new TempDir();
    token_ = new CaToken(*dir_ / "ca-token");
    RunResult csr = OpenSsl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                             "-keyout", "/dev/null", "-subj", "/CN=kubemaster-1"});
    ASSERT_EQ(csr.exit_code, 0);
    WriteFile(*dir_ / "csr.b64", OpenSsl({"base64"}, csr.out).out);
  }
  static void TearDownTestSuite() {
    delete token_;
    delete dir_;
  }
  void SetUp() override {
    ::setenv("SOFTHSM2_CONF", token_->conf.c_str(), 1);
    config_.module = kSoftHsmModule;
    config_.key_uri = token_->key_uri;
    config_.pin.file = token_->pin_file;
    config_.ca_cert = token_->ca_cert;
    config_.audit_log = work_ / "audit.log";
    config_.lock_file = work_ / "token.lock";
    config_.syslog = false;
    config_.identity = "kubemaster-1";
    config_.deadline = std::chrono::seconds(1);
  }

  // Serves one `sign` with `stage` called at the signer's stages; stdout goes to work_/out.pem.
  int Serve(const std::function<void(const std::string&)>& stage) {
    signer::Environment env;
    env.input_fd = ::open((*dir_ / "csr.b64").c_str(), O_RDONLY);
    env.output = std::fopen((work_ / "out.pem").c_str(), "w");
    env.at_stage = stage;
    int rc = signer::Serve(config_, signer::Invocation{"sign", "local", ""}, env);
    std::fclose(env.output);
    ::close(env.input_fd);
    return rc;
  }
  std::vector<nlohmann::json> Records() {
    std::vector<nlohmann::json> out;
    for (const auto& line : Lines(ReadFile(work_ / "audit.log"))) out.push_back(nlohmann::json::parse(line));
    return out;
  }

  static TempDir* dir_;
  static CaToken* token_;
  TempDir work_;
  signer::SignerConfig config_;
};
TempDir* Decision::dir_ = nullptr;
CaToken* Decision::token_ = nullptr;

TEST_F(Decision, DeadlineBeforeTheCommitMeansNoCertificateAndOneDeadlineRecord) {
  // Signed, but the deadline fires before the main thread commits: the watchdog decides.
  EXPECT_EXIT(Serve([](const std::string& stage) {
                if (stage == "signed") std::this_thread::sleep_for(1500ms);
              }),
              ::testing::ExitedWithCode(75), "etcd-signer: deadline: ");
  EXPECT_EQ(ReadFile(work_ / "out.pem"), "");
  auto records = Records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["outcome"], "refused");
  EXPECT_EQ(records[0]["reason"], "deadline");
  EXPECT_EQ(records[0]["serial"], "");  // nothing issued, nothing to name
}

TEST_F(Decision, DeadlineAfterTheCommitLetsTheAnswerLeaveWithItsIssuedRecord) {
  // The record is on file; the deadline fires while the answer is being printed: it must neither
  // cut the answer off nor add a "deadline" record for a delivered certificate.
  // A deadline the signer cannot miss on a loaded machine before it commits (token load, login and
  // signature take milliseconds; 3 s leaves room for an ASan build under load), then a stall past it.
  config_.deadline = std::chrono::seconds(3);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EXIT(std::exit(Serve([t0](const std::string& stage) {
                if (stage == "committed") std::this_thread::sleep_until(t0 + 3500ms);
              })),
              ::testing::ExitedWithCode(0), "");
  std::string pem = ReadFile(work_ / "out.pem");
  ASSERT_NE(pem.find("BEGIN CERTIFICATE"), std::string::npos);
  auto records = Records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["outcome"], "issued");
  RunResult serial = OpenSsl({"x509", "-noout", "-serial"}, pem);
  std::string hex = serial.out.substr(serial.out.find('=') + 1);
  hex.erase(hex.find_last_not_of("\n") + 1);
  for (char& c : hex) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  EXPECT_EQ(records[0]["serial"], hex);
}

TEST_F(Decision, AnIssuedRecordTheFileRefusesWithholdsTheCertificate) {
  config_.deadline = std::chrono::seconds(10);
  // The disk fills between signing and the record: the file may grow by 20 bytes only.
  ::signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  ::getrlimit(RLIMIT_FSIZE, &old);
  int rc = Serve([&](const std::string& stage) {
    if (stage != "signed") return;
    struct stat st {};
    ::stat(config_.audit_log.c_str(), &st);
    rlimit tight = old;
    tight.rlim_cur = static_cast<rlim_t>(st.st_size) + 20;
    ::setrlimit(RLIMIT_FSIZE, &tight);
  });
  ::setrlimit(RLIMIT_FSIZE, &old);
  EXPECT_EQ(rc, 69);
  EXPECT_EQ(ReadFile(work_ / "out.pem"), "");
  // No torn line: the file holds whole records only (here: none, the log was new), so the next
  // record parses and the next request is issued.
  EXPECT_EQ(ReadFile(config_.audit_log), "");
  EXPECT_EQ(Serve(nullptr), 0);
  auto records = Records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["outcome"], "issued");
}

TEST_F(Decision, ABusyTokenLockIsATempFailWithinTheDeadline) {
  config_.deadline = std::chrono::seconds(2);
  base::PrivateLock held(config_.lock_file, 1s);
  int rc = Serve(nullptr);
  EXPECT_EQ(rc, 75);  // returned, not _exit'ed: the main thread answered, the watchdog did not have to
  auto records = Records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["reason"], "token-busy");
  EXPECT_EQ(ReadFile(work_ / "out.pem"), "");
}

}  // namespace
