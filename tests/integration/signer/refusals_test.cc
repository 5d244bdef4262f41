// SPDX-License-Identifier: Apache-2.0
// Every bad input gets: its documented exit code, one stderr line "etcd-signer: <reason>: ...",
// nothing on stdout, and exactly one audit record with that reason. Real SoftHSM token, real binary.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_support.h"

namespace {

using namespace testing_support;
using namespace std::chrono_literals;

struct Refusal {
  std::string name;
  int exit_code;
  std::string reason;
  std::string input;                                  // stdin
  std::map<std::string, std::string> env;             // e.g. SSH_ORIGINAL_COMMAND
  std::vector<std::string> flags;                     // operator flags added to argv
  RunOptions options;                                 // drip / keep_stdin_open
};

// One CA token, shared by the read-only rows; each row gets a fresh audit log.
class SignerRefuses : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    token_ = new CaToken(*dir_ / "token");
    other_ = new CaToken(*dir_ / "other");
    WriteFile(*dir_ / "wrong.pin", "000000\n", 0400);
    ::mkdir((*dir_ / "empty-tokens").c_str(), 0755);
    WriteFile(*dir_ / "empty.conf", "directories.tokendir = " + (*dir_ / "empty-tokens") + "\nobjectstore.backend = file\n");
  }
  static void TearDownTestSuite() {
    delete other_;
    delete token_;
    delete dir_;
  }

  static std::string Csr(const std::vector<std::string>& args) {
    RunResult r = OpenSsl(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  }
  static std::string B64(const std::string& bytes) { return OpenSsl({"base64"}, bytes).out; }
  static std::string EcCsr(const std::string& subject, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                                  "-nodes", "-keyout", "/dev/null", "-subj", subject};
    args.insert(args.end(), extra.begin(), extra.end());
    return Csr(args);
  }

  RunResult RunSigner(const Refusal& row, const std::string& audit) {
    std::vector<std::string> argv{Binary("etcd-signer"), "--module", kSoftHsmModule, "--key", token_->key_uri,
                                  "--pin-file", token_->pin_file, "--ca-cert", token_->ca_cert,
                                  "--audit-log", audit, "--lock-file", audit + ".token-lock", "--no-syslog",
                                  "--input-timeout", "2s"};
    argv.insert(argv.end(), row.flags.begin(), row.flags.end());
    argv.push_back("sign");
    RunOptions options = row.options;
    options.input = row.input;
    options.env = token_->env();
    for (const auto& [k, v] : row.env) options.env[k] = v;
    options.timeout = 30s;
    return testing_support::Run(argv, options);
  }

  static TempDir* dir_;
  static CaToken* token_;
  static CaToken* other_;
};
TempDir* SignerRefuses::dir_ = nullptr;
CaToken* SignerRefuses::token_ = nullptr;
CaToken* SignerRefuses::other_ = nullptr;

TEST_F(SignerRefuses, EveryBadInputWithItsCodeReasonAndAuditRecord) {
  const std::string good = EcCsr("/CN=kubemaster-1");
  std::string tampered = good;
  {
    // Flip a character inside the base64 body near the end (the signature).
    auto end = tampered.find("-----END");
    tampered[end - 10] = tampered[end - 10] == 'A' ? 'B' : 'A';
  }
  std::string cert_pem = ReadFile(token_->ca_cert);
  std::string cert_der = OpenSsl({"x509", "-in", token_->ca_cert, "-outform", "DER"}).out;
  std::string big(70 * 1024, 'A');
  std::string rsa1024 = Csr({"req", "-new", "-newkey", "rsa:1024", "-nodes", "-keyout", "/dev/null", "-subj", "/CN=kubemaster-1"});
  std::string k256 = Csr({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp256k1", "-nodes",
                          "-keyout", "/dev/null", "-subj", "/CN=kubemaster-1"});
  std::string p521 = Csr({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521", "-nodes",
                          "-keyout", "/dev/null", "-subj", "/CN=kubemaster-1"});
  std::string ed25519 = Csr({"req", "-new", "-newkey", "ed25519", "-nodes", "-keyout", "/dev/null", "-subj", "/CN=kubemaster-1"});
  std::string rsa_e3;
  {
    RunResult key = OpenSsl({"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-pkeyopt", "rsa_keygen_pubexp:3"});
    WriteFile(*dir_ / "e3.key", key.out, 0600);
    rsa_e3 = Csr({"req", "-new", "-key", *dir_ / "e3.key", "-subj", "/CN=kubemaster-1"});
  }

  std::string explicit_params;
  {
    RunResult key = OpenSsl({"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-pkeyopt",
                             "ec_param_enc:explicit"});
    WriteFile(*dir_ / "explicit.key", key.out, 0600);
    explicit_params = Csr({"req", "-new", "-key", *dir_ / "explicit.key", "-subj", "/CN=kubemaster-1"});
  }

  const std::string b64 = B64(good);
  std::vector<Refusal> rows = {
      {"not base64", 65, "not-base64", "this is not base64!!\n"},
      {"base64 of garbage", 65, "not-a-csr", B64("garbage garbage garbage")},
      {"empty stdin", 65, "empty-input", ""},
      {"whitespace only", 65, "empty-input", " \n\t\n"},
      {"raw PEM not base64-wrapped", 65, "not-base64", good},
      {"certificate PEM instead of CSR", 65, "not-a-csr", B64(cert_pem)},
      {"certificate DER instead of CSR", 65, "not-a-csr", B64(cert_der)},
      {"tampered signature", 65, "bad-signature", B64(tampered)},
      {"base64 with bad padding", 65, "not-base64", b64.substr(0, b64.size() - 3) + "=A\n"},
      {"empty CN", 77, "name-policy", B64(EcCsr("/CN="))},
      {"no subject", 77, "name-policy", B64(EcCsr("/"))},
      {"uppercase name", 77, "name-policy", B64(EcCsr("/CN=Kubemaster-1"))},
      {"suffixed name", 77, "name-policy", B64(EcCsr("/CN=kubemaster-1.evil.example"))},
      {"trailing dash", 77, "name-policy", B64(EcCsr("/CN=kubemaster-"))},
      {"other prefix", 77, "name-policy", B64(EcCsr("/CN=etcd-admin"))},
      {"underscore in name", 77, "name-policy", B64(EcCsr("/CN=kubemaster_1"))},
      {"space in name", 77, "name-policy", B64(EcCsr("/CN=kubemaster-1 "))},
      {"extra O=system:masters", 77, "subject-attributes", B64(EcCsr("/CN=kubemaster-1/O=system:masters"))},
      {"two CNs", 77, "subject-attributes", B64(EcCsr("/CN=kubemaster-1/CN=kubemaster-2"))},
      {"OU before CN", 77, "subject-attributes", B64(EcCsr("/OU=x/CN=kubemaster-1"))},
      {"weak RSA-1024", 77, "key-size", B64(rsa1024)},
      {"RSA exponent 3", 77, "key-type", B64(rsa_e3)},
      {"curve secp256k1", 77, "key-type", B64(k256)},
      {"curve P-521", 77, "key-type", B64(p521)},
      {"Ed25519", 77, "key-type", B64(ed25519)},
      {"P-256 with explicit curve parameters (RFC 5480, CVE-2020-0601 class)", 77, "key-type", B64(explicit_params)},
      {"requested SAN", 77, "extensions-requested", B64(EcCsr("/CN=kubemaster-1", {"-addext", "subjectAltName=DNS:etcd.example"}))},
      {"requested CA:TRUE", 77, "extensions-requested", B64(EcCsr("/CN=kubemaster-1", {"-addext", "basicConstraints=critical,CA:TRUE"}))},
      {"challengePassword attribute", 77, "csr-attributes", ""},  // filled below
      {"oversize stdin", 65, "oversize", big},
      {"slow stdin", 65, "input-timeout", b64, {}, {}, {.drip = 200ms}},
      {"stalled stdin", 65, "input-timeout", b64.substr(0, 20), {}, {}, {.keep_stdin_open = true}},
      {"unknown verb", 64, "unknown-verb", b64, {{"SSH_ORIGINAL_COMMAND", "issue"}}},
      {"shell metacharacters", 64, "bad-request", b64, {{"SSH_ORIGINAL_COMMAND", "sign; cat /etc/shadow"}}},
      {"command substitution", 64, "bad-request", b64, {{"SSH_ORIGINAL_COMMAND", "sign $(id)"}}},
      {"option injection --identity", 64, "bad-request", b64, {{"SSH_ORIGINAL_COMMAND", "sign --identity kubemaster-9"}}},
      {"option injection --config", 64, "bad-request", b64, {{"SSH_ORIGINAL_COMMAND", "sign --config=/tmp/evil.toml"}}},
      {"newline in command", 64, "bad-request", b64, {{"SSH_ORIGINAL_COMMAND", "sign\nca"}}},
      {"malformed lifetime", 64, "bad-lifetime", b64, {{"SSH_ORIGINAL_COMMAND", "sign --lifetime 10x"}}},
      {"lifetime below minimum", 77, "lifetime-too-short", b64, {{"SSH_ORIGINAL_COMMAND", "sign --lifetime 60"}}},
      {"identity mismatch", 77, "identity-mismatch", b64, {}, {"--identity", "kubemaster-2"}},
      {"token absent", 69, "token-not-found", b64, {{"SOFTHSM2_CONF", *dir_ / "empty.conf"}}},
      {"wrong PIN", 69, "pin-incorrect", b64, {}, {"--pin-file", *dir_ / "wrong.pin"}},
      {"missing CA certificate", 69, "ca-cert-missing", b64, {}, {"--ca-cert", *dir_ / "nope.pem"}},
      {"CA cert of another key", 69, "ca-key-mismatch", b64, {}, {"--ca-cert", other_->ca_cert}},
      {"missing key in token", 69, "key-not-found", b64, {}, {"--key", "pkcs11:token=etcd-ca;object=nokey"}},
      {"missing module", 69, "module-not-found", b64, {}, {"--module", "/usr/lib/nope/libnope.so"}},
      {"bad name pattern (operator)", 78, "bad-config", b64, {}, {"--name-pattern", "(["}},
  };
  // challengePassword needs an openssl config on stdin: rebuild that row's CSR with one.
  {
    WriteFile(*dir_ / "cp.cnf", "[req]\ndistinguished_name=dn\nattributes=attrs\nprompt=no\n[dn]\nCN=kubemaster-1\n"
                                "[attrs]\nchallengePassword=hunter22\n");
    for (auto& row : rows) {
      if (row.reason == "csr-attributes") {
        row.input = B64(Csr({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                             "-keyout", "/dev/null", "-config", *dir_ / "cp.cnf"}));
      }
    }
  }
  ASSERT_GE(rows.size(), 30u);
  int index = 0;
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    std::string audit = *dir_ / ("audit-" + std::to_string(index++) + ".log");
    RunResult r = RunSigner(row, audit);
    EXPECT_EQ(r.exit_code, row.exit_code) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out.substr(0, 200);
    auto lines = Lines(r.err);
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_EQ(lines[0].rfind("etcd-signer: " + row.reason + ": ", 0), 0u) << lines[0];
    auto records = Lines(ReadFile(audit));
    ASSERT_EQ(records.size(), 1u) << ReadFile(audit);
    auto record = nlohmann::json::parse(records[0]);
    EXPECT_EQ(record["outcome"], "refused");
    EXPECT_EQ(record["reason"], row.reason);
    EXPECT_EQ(record["exit_code"], row.exit_code);
    EXPECT_EQ(record["serial"], "");
  }
  // The token still works with the right PIN after the wrong one: a single attempt, no lockout.
  Refusal ok{"good", 0, "", b64};
  RunResult r = RunSigner(ok, *dir_ / "audit-ok.log");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("-----BEGIN CERTIFICATE-----", 0), 0u);
}

}  // namespace
