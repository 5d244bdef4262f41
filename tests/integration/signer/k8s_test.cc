// SPDX-License-Identifier: Apache-2.0
// `sign --format k8s`: certificates.k8s.io/v1 CertificateSigningRequest objects in and out, with
// the real signer binary and a SoftHSM token, locally and through a real sshd. The objects are
// written as plain JSON following the Kubernetes API reference, not with this project's code.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "signer/service.h"
#include "test_support.h"

namespace {

using namespace testing_support;
using namespace std::chrono_literals;
using nlohmann::json;

constexpr const char* kSignerName = "etcd-hsm-signer.example.com/etcd-client";

std::string B64(const std::string& bytes) {
  std::string out = OpenSsl({"base64", "-A"}, bytes).out;
  return out;
}

std::string Unbase64(const std::string& text) { return OpenSsl({"base64", "-d", "-A"}, text).out; }

std::string EcCsr(const std::string& dir, const std::string& cn) {
  RunResult r = OpenSsl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                         "-keyout", dir + "/" + cn + ".key", "-subj", "/CN=" + cn});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

json Object(const std::string& csr_pem, const std::string& name = "kubemaster-1-etcd") {
  return json::parse(R"({
    "apiVersion": "certificates.k8s.io/v1",
    "kind": "CertificateSigningRequest",
    "metadata": {"name": ")" + name + R"(", "labels": {"app": "etcd"}},
    "spec": {
      "request": ")" + B64(csr_pem) + R"(",
      "signerName": ")" + kSignerName + R"(",
      "expirationSeconds": 3600,
      "usages": ["digital signature", "key encipherment", "client auth"]
    }
  })");
}

const json& OnlyCondition(const json& answer) {
  static const json kNone;
  if (!answer.contains("status") || !answer["status"].contains("conditions") ||
      answer["status"]["conditions"].size() != 1) {
    ADD_FAILURE() << "no single condition in " << answer.dump();
    return kNone;
  }
  return answer["status"]["conditions"][0];
}

class SignerK8s : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    token_ = new CaToken(*dir_ / "token");
  }
  static void TearDownTestSuite() {
    delete token_;
    delete dir_;
  }

  RunResult RunSigner(const std::string& request, const std::string& body, const std::string& audit,
                      std::vector<std::string> flags = {}) {
    std::vector<std::string> argv{Binary("etcd-signer"), "--module", kSoftHsmModule, "--key", token_->key_uri,
                                  "--pin-file", token_->pin_file, "--ca-cert", token_->ca_cert,
                                  "--audit-log", audit, "--lock-file", audit + ".token-lock", "--no-syslog",
                                  "--input-timeout", "2s"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.push_back("sign");
    RunOptions options;
    options.input = body;
    options.env = token_->env();
    options.env["SSH_ORIGINAL_COMMAND"] = request;
    options.timeout = 30s;
    return testing_support::Run(argv, options);
  }

  static TempDir* dir_;
  static CaToken* token_;
};
TempDir* SignerK8s::dir_ = nullptr;
CaToken* SignerK8s::token_ = nullptr;

TEST_F(SignerK8s, IssuesTheObjectWithAnApprovedConditionAndACertificateThatVerifies) {
  json in = Object(EcCsr(dir_->path(), "kubemaster-1"));
  std::string audit = *dir_ / "issued.log";
  RunResult r = RunSigner("sign --format k8s", in.dump(2), audit);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  ASSERT_EQ(Lines(r.out).size(), 1u) << r.out;
  json out = json::parse(r.out);
  EXPECT_EQ(out["apiVersion"], "certificates.k8s.io/v1");
  EXPECT_EQ(out["kind"], "CertificateSigningRequest");
  EXPECT_EQ(out["metadata"], in["metadata"]);
  EXPECT_EQ(out["spec"], in["spec"]);
  const json& c = OnlyCondition(out);
  EXPECT_EQ(c["type"], "Approved");
  EXPECT_EQ(c["status"], "True");
  EXPECT_EQ(c["reason"], "etcd-client");
  std::string pem = Unbase64(out["status"]["certificate"].get<std::string>());
  ASSERT_EQ(pem.rfind("-----BEGIN CERTIFICATE-----", 0), 0u) << pem;
  WriteFile(*dir_ / "k8s-issued.pem", pem);
  RunResult verify = OpenSsl({"verify", "-purpose", "sslclient", "-CAfile", token_->ca_cert, *dir_ / "k8s-issued.pem"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  RunResult text = OpenSsl({"x509", "-in", *dir_ / "k8s-issued.pem", "-noout", "-subject", "-dates"});
  EXPECT_NE(text.out.find("CN = kubemaster-1"), std::string::npos) << text.out;
  // The certificate's key is the CSR's key.
  RunResult cert_key = OpenSsl({"x509", "-in", *dir_ / "k8s-issued.pem", "-noout", "-pubkey"});
  RunResult csr_key = OpenSsl({"pkey", "-in", *dir_ / "kubemaster-1.key", "-pubout"});
  EXPECT_EQ(cert_key.out, csr_key.out);
  auto records = Lines(ReadFile(audit));
  ASSERT_EQ(records.size(), 1u);
  json record = json::parse(records[0]);
  EXPECT_EQ(record["outcome"], "issued");
  EXPECT_EQ(record["cn"], "kubemaster-1");
  EXPECT_EQ(record["requested_lifetime"], 3600);
  EXPECT_EQ(record["granted_lifetime"], 3600);  // expirationSeconds is the requested lifetime
}

TEST_F(SignerK8s, ALongExpirationIsClampedAndNoneGetsTheDefault) {
  json in = Object(EcCsr(dir_->path(), "kubemaster-2"));
  in["spec"]["expirationSeconds"] = 30 * 86400;
  RunResult r = RunSigner("sign --format=k8s", in.dump(), *dir_ / "clamp.log", {"--lifetime-max", "2d"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(Lines(ReadFile(*dir_ / "clamp.log"))[0])["granted_lifetime"], 2 * 86400);
  in["spec"].erase("expirationSeconds");
  r = RunSigner("sign --format k8s", in.dump(), *dir_ / "default.log");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(Lines(ReadFile(*dir_ / "default.log"))[0])["granted_lifetime"], 86400);
}

TEST_F(SignerK8s, EveryRefusalIsTheObjectWithItsConditionExitCodeStderrLineAndAuditRecord) {
  std::string pem = EcCsr(dir_->path(), "kubemaster-1");
  auto with = [&](const std::function<void(json&)>& change) {
    json j = Object(pem);
    change(j);
    return j.dump();
  };
  struct Row {
    std::string name;
    std::string body;
    int exit_code;
    std::string reason;
    std::string condition;  // Denied / Failed
    bool echoes_spec;
    std::vector<std::string> flags = {};
  };
  std::vector<Row> rows = {
      {"not JSON", "hello", 65, "k8s-object", "Failed", false},
      {"a base64 CSR instead of an object", B64(pem), 65, "k8s-object", "Failed", false},
      {"empty", "", 65, "empty-input", "Failed", false},
      {"v1beta1", with([](json& j) { j["apiVersion"] = "certificates.k8s.io/v1beta1"; }), 65, "k8s-object", "Failed", false},
      {"unknown spec field", with([](json& j) { j["spec"]["isCA"] = true; }), 65, "k8s-object", "Failed", false},
      {"another signer", with([](json& j) { j["spec"]["signerName"] = "kubernetes.io/kube-apiserver-client"; }), 77,
       "k8s-signer-name", "Denied", true},
      {"server auth usage", with([](json& j) { j["spec"]["usages"] = {"client auth", "server auth"}; }), 77,
       "k8s-usages", "Denied", true},
      {"no client auth", with([](json& j) { j["spec"]["usages"] = {"digital signature"}; }), 77, "k8s-usages",
       "Denied", true},
      {"expiration below 600", with([](json& j) { j["spec"]["expirationSeconds"] = 599; }), 77,
       "lifetime-too-short", "Denied", true, {"--lifetime-min", "60"}},
      {"request is DER", with([&](json& j) {
         j["spec"]["request"] = B64(OpenSsl({"req", "-outform", "DER"}, pem).out);
       }), 65, "not-a-csr", "Failed", true},
      {"name policy", with([&](json& j) { j["spec"]["request"] = B64(EcCsr(dir_->path(), "etcd-admin")); }), 77,
       "name-policy", "Denied", true},
      {"identity binding", with([](json&) {}), 77, "identity-mismatch", "Denied", true, {"--identity", "kubemaster-2"}},
      {"wrong PIN", with([](json&) {}), 69, "pin-incorrect", "Failed", true, {"--pin-file", *dir_ / "wrong.pin"}},
  };
  WriteFile(*dir_ / "wrong.pin", "000000\n", 0400);
  int index = 0;
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    std::string audit = *dir_ / ("refused-" + std::to_string(index++) + ".log");
    RunResult r = RunSigner("sign --format k8s", row.body, audit, row.flags);
    EXPECT_EQ(r.exit_code, row.exit_code) << r.err;
    auto lines = Lines(r.err);
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_EQ(lines[0].rfind("etcd-signer: " + row.reason + ": ", 0), 0u) << lines[0];
    ASSERT_EQ(Lines(r.out).size(), 1u) << r.out;
    json out = json::parse(r.out);
    EXPECT_EQ(out["kind"], "CertificateSigningRequest");
    EXPECT_EQ(out.contains("spec"), row.echoes_spec) << r.out;
    EXPECT_FALSE(out["status"].contains("certificate"));
    const json& c = OnlyCondition(out);
    EXPECT_EQ(c["type"], row.condition);
    EXPECT_EQ(c["status"], "True");
    EXPECT_EQ(c["reason"], row.reason);
    // The condition's message is the stderr line's sentence.
    EXPECT_EQ("etcd-signer: " + row.reason + ": " + c["message"].get<std::string>(), lines[0]);
    auto records = Lines(ReadFile(audit));
    ASSERT_EQ(records.size(), 1u) << ReadFile(audit);
    json record = json::parse(records[0]);
    EXPECT_EQ(record["outcome"], "refused");
    EXPECT_EQ(record["reason"], row.reason);
    EXPECT_EQ(record["exit_code"], row.exit_code);
    EXPECT_EQ(record["serial"], "");
  }
}

TEST_F(SignerK8s, TheRequestLineDecidesTheFormat) {
  std::string pem = EcCsr(dir_->path(), "kubemaster-1");
  // An object without --format k8s is not base64: today's answer, no object.
  RunResult r = RunSigner("sign", Object(pem).dump(), *dir_ / "plain.log");
  EXPECT_EQ(r.exit_code, 65);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_EQ(r.err.rfind("etcd-signer: not-base64: ", 0), 0u) << r.err;
  // --lifetime with --format k8s is a bad request line: no object either (the format is unknown).
  r = RunSigner("sign --format k8s --lifetime 1h", Object(pem).dump(), *dir_ / "both.log");
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_EQ(r.err.rfind("etcd-signer: bad-request: ", 0), 0u) << r.err;
  r = RunSigner("sign --format yaml", Object(pem).dump(), *dir_ / "yaml.log");
  EXPECT_EQ(r.exit_code, 64);
  // The configured signer name is what objects must carry, and `info` shows it.
  json in = Object(pem);
  in["spec"]["signerName"] = "example.org/etcd";
  r = RunSigner("sign --format k8s", in.dump(), *dir_ / "named.log", {"--signer-name", "example.org/etcd"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = RunSigner("info", "", *dir_ / "info.log", {"--signer-name", "example.org/etcd"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["signer_name"], "example.org/etcd");
  r = RunSigner("info", "", *dir_ / "info2.log");
  EXPECT_EQ(json::parse(r.out)["signer_name"], kSignerName);
  r = RunSigner("info", "", *dir_ / "info3.log", {"--signer-name", "Not A Name"});
  EXPECT_EQ(r.exit_code, 78) << r.err;
}

TEST(SignerK8sOverSsh, ObjectsThroughTheForcedCommand) {
  TempDir dir;
  SignerDeployment deployment(dir.path());
  std::string key = deployment.AddMaster("kubemaster-1");
  deployment.Start();
  std::string pem = EcCsr(dir.path(), "kubemaster-1");
  RunResult r = deployment.ssh.Ssh(key, "sign --format k8s", Object(pem).dump());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json out = json::parse(r.out);
  EXPECT_EQ(OnlyCondition(out)["type"], "Approved");
  WriteFile(dir / "issued.pem", Unbase64(out["status"]["certificate"].get<std::string>()));
  RunResult verify = OpenSsl({"verify", "-purpose", "sslclient", "-CAfile", deployment.ca.ca_cert, dir / "issued.pem"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  // Key A bound to kubemaster-1 asks for kubemaster-2: Denied, 77, the object still comes back.
  r = deployment.ssh.Ssh(key, "sign --format k8s", Object(EcCsr(dir.path(), "kubemaster-2")).dump());
  EXPECT_EQ(r.exit_code, 77) << r.err;
  // (sshd may add its own "Could not chdir to home directory" line before the signer's.)
  auto err_lines = Lines(r.err);
  ASSERT_FALSE(err_lines.empty());
  EXPECT_EQ(err_lines.back().rfind("etcd-signer: identity-mismatch: ", 0), 0u) << r.err;
  json denied = json::parse(r.out);
  EXPECT_EQ(OnlyCondition(denied)["type"], "Denied");
  EXPECT_EQ(OnlyCondition(denied)["reason"], "identity-mismatch");
  auto records = Lines(ReadFile(dir / "audit.log"));
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(json::parse(records[0])["outcome"], "issued");
  EXPECT_EQ(json::parse(records[1])["reason"], "identity-mismatch");
  EXPECT_EQ(json::parse(records[1])["ssh_peer"].get<std::string>().rfind("127.0.0.1 ", 0), 0u);
}

// The issued-or-deadline decision (protocol.md §5) holds for objects too: nothing is printed
// unless the main thread decided, and a withheld certificate becomes a Failed object.
class K8sDecision : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    GTEST_FLAG_SET(death_test_style, "fast");
    dir_ = new TempDir();
    token_ = new CaToken(*dir_ / "ca-token");
    WriteFile(*dir_ / "object.json", Object(EcCsr(dir_->path(), "kubemaster-1")).dump());
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
    config_.deadline = std::chrono::seconds(1);
  }
  int Serve(const std::function<void(const std::string&)>& stage) {
    signer::Environment env;
    env.input_fd = ::open((*dir_ / "object.json").c_str(), O_RDONLY);
    // stdout is a pipe, as under sshd: the file-size limit that fills the "disk" must not hit it.
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe");
    env.output = ::fdopen(fds[1], "w");
    env.at_stage = stage;
    int rc = signer::Serve(config_, signer::Invocation{"sign --format k8s", "local", ""}, env);
    std::fclose(env.output);
    ::close(env.input_fd);
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
    ::close(fds[0]);
    out_ = out;  // kept in memory: the test's file-size limit may still be in force here
    return rc;
  }

  static TempDir* dir_;
  static CaToken* token_;
  TempDir work_;
  signer::SignerConfig config_;
  std::string out_;
};
TempDir* K8sDecision::dir_ = nullptr;
CaToken* K8sDecision::token_ = nullptr;

TEST_F(K8sDecision, ADeadlineBeforeTheCommitPrintsNoObject) {
  EXPECT_EXIT(Serve([](const std::string& stage) {
                if (stage == "signed") std::this_thread::sleep_for(1500ms);
              }),
              ::testing::ExitedWithCode(75), "etcd-signer: deadline: ");
  EXPECT_EQ(out_, "");
  auto records = Lines(ReadFile(config_.audit_log));
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(json::parse(records[0])["reason"], "deadline");
}

TEST_F(K8sDecision, AWithheldCertificateIsAFailedObjectWithoutIt) {
  config_.deadline = std::chrono::seconds(10);
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
  json out = json::parse(out_);
  EXPECT_FALSE(out["status"].contains("certificate")) << out.dump();
  EXPECT_EQ(OnlyCondition(out)["type"], "Failed");
  EXPECT_EQ(OnlyCondition(out)["reason"], "audit-failed");
  EXPECT_EQ(ReadFile(config_.audit_log), "");
  // Next request: issued, and the answer is the object with the certificate.
  ASSERT_EQ(Serve(nullptr), 0);
  out = json::parse(out_);
  EXPECT_EQ(OnlyCondition(out)["type"], "Approved");
  EXPECT_TRUE(out["status"].contains("certificate"));
}

}  // namespace
