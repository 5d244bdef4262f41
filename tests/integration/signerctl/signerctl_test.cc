// SPDX-License-Identifier: Apache-2.0
// etcd-signerctl on audit logs written by real etcd-signer runs (SoftHSM token, the built
// binary, issued and refused requests): the chain verifies, every kind of tampering is caught at
// its exact place with exit 65, and list/report/metrics say what the records say.
#include <gtest/gtest.h>

#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "base/duration.h"
#include "test_support.h"

namespace {

using namespace testing_support;
using namespace std::chrono_literals;

class Signerctl : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    token_ = new CaToken(*dir_ / "token");
    for (const auto& [name, cn] :
         std::vector<std::pair<std::string, std::string>>{{"m1a", "kubemaster-1"},
                                                          {"m1b", "kubemaster-1"},
                                                          {"m2", "kubemaster-2"},
                                                          {"m3", "kubemaster-3"}}) {
      RunResult csr =
          OpenSsl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                   "-keyout", *dir_ / (name + ".key"), "-subj", "/CN=" + cn});
      ASSERT_EQ(csr.exit_code, 0) << csr.err;
      (*csrs_)[name] = OpenSsl({"base64"}, csr.out).out;
    }
  }
  static void TearDownTestSuite() {
    delete token_;
    delete dir_;
  }

  // One real etcd-signer run, as root, writing `log` (and its lock `log`.lock).
  static RunResult Sign(const std::string& log, const std::string& identity, const std::string& csr,
                        const std::string& request = "sign") {
    std::vector<std::string> argv{Binary("etcd-signer"),
                                  "--module",
                                  kSoftHsmModule,
                                  "--key",
                                  token_->key_uri,
                                  "--pin-file",
                                  token_->pin_file,
                                  "--ca-cert",
                                  token_->ca_cert,
                                  "--audit-log",
                                  log,
                                  "--lock-file",
                                  *dir_ / "token.lock",
                                  "--no-syslog",
                                  "--identity",
                                  identity};
    RunOptions options;
    options.input = (*csrs_)[csr];
    options.env = token_->env();
    options.env["SSH_ORIGINAL_COMMAND"] = request;
    options.env["SSH_CONNECTION"] = "192.0.2.7 40123 192.0.2.1 22";
    options.timeout = 30s;
    return testing_support::Run(argv, options);
  }

  // A log of 8 records: issued, refused (the CN is not the identity), a key change, a longer
  // certificate for kubemaster-2, and a served `info`.
  static std::vector<std::string> MakeLog(const std::string& log) {
    EXPECT_EQ(Sign(log, "kubemaster-1", "m1a").exit_code, 0);
    EXPECT_EQ(Sign(log, "kubemaster-2", "m2", "sign --lifetime 7d").exit_code, 0);
    EXPECT_EQ(Sign(log, "kubemaster-2", "m3").exit_code, 77);
    EXPECT_EQ(Sign(log, "kubemaster-1", "m1a").exit_code, 0);
    EXPECT_EQ(Sign(log, "kubemaster-2", "m3").exit_code, 77);
    EXPECT_EQ(Sign(log, "kubemaster-1", "m1b").exit_code, 0);  // a new key
    EXPECT_EQ(Sign(log, "kubemaster-1", "m1b", "info").exit_code, 0);
    EXPECT_EQ(Sign(log, "kubemaster-2", "m3").exit_code, 77);
    auto lines = Lines(ReadFile(log));
    // The tests index into these records: a signer that died without a record fails them here.
    if (lines.size() != 8) throw std::runtime_error("the reference log has " + std::to_string(lines.size()) + " records, not 8");
    return lines;
  }

  static std::vector<std::string>& Log() {
    static std::vector<std::string> lines = MakeLog(*dir_ / "reference.log");
    return lines;
  }

  static RunResult Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), Binary("etcd-signerctl"));
    return testing_support::Run(args);
  }

  // Writes lines as a log file in this test's directory.
  std::string Put(const std::string& name, const std::vector<std::string>& lines) {
    std::string text;
    for (const auto& l : lines) text += l + "\n";
    WriteFile(work_ / name, text, 0640);
    return work_ / name;
  }

  static std::string Sha256(const std::string& bytes) {
    // The openssl CLI as the independent reference for the hash of a line's exact bytes.
    std::string out = OpenSsl({"dgst", "-sha256", "-r"}, bytes).out;
    return out.substr(0, 64);
  }

  static std::string ConfigFor(const std::string& log) {
    return "audit_log = \"" + log + "\"\nca_cert = \"" + token_->ca_cert + "\"\n";
  }

  TempDir work_;
  static TempDir* dir_;
  static CaToken* token_;
  static std::map<std::string, std::string>* csrs_;
};
TempDir* Signerctl::dir_ = nullptr;
CaToken* Signerctl::token_ = nullptr;
std::map<std::string, std::string>* Signerctl::csrs_ = new std::map<std::string, std::string>();

TEST_F(Signerctl, VerifiesTheChainOfARealLogAndPrintsItsHead) {
  const auto& lines = Log();
  ASSERT_EQ(lines.size(), 8u);
  RunResult r = Ctl({"audit", "verify", Put("audit.log", lines)});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string head = "8:" + Sha256(lines[7]);
  EXPECT_NE(r.out.find("ok: 8 records, seq 1..8, "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("head " + head), std::string::npos) << r.out;
  // Each record's prev is the SHA-256 of the line before it, as openssl computes it.
  for (std::size_t i = 1; i < lines.size(); ++i) {
    auto j = nlohmann::json::parse(lines[i]);
    EXPECT_EQ(j["v"], 1);
    EXPECT_EQ(j["seq"], i + 1);
    EXPECT_EQ(j["prev"], Sha256(lines[i - 1]));
  }
  EXPECT_EQ(nlohmann::json::parse(lines[0])["prev"], std::string(64, '0'));
  EXPECT_EQ(Ctl({"audit", "verify", work_ / "audit.log", "--head", head}).exit_code, 0);
}

// --json for scripts (#28): verify, serials and pending give the facts of their tables as JSON,
// from the same real log.
TEST_F(Signerctl, VerifySerialsAndPendingSpeakJsonForScripts) {
  const auto& lines = Log();
  std::string log = Put("audit.log", lines);
  RunResult verify = Ctl({"audit", "verify", log, "--json"});
  ASSERT_EQ(verify.exit_code, 0) << verify.err;
  auto v = nlohmann::json::parse(verify.out);
  EXPECT_EQ(v["ok"], true);
  EXPECT_EQ(v["records"], 8);
  EXPECT_EQ(v["head"], "8:" + Sha256(lines[7]));
  std::vector<std::string> broken = lines;
  broken[3][broken[3].find("kubemaster")] = 'K';
  RunResult bad = Ctl({"audit", "verify", Put("broken.log", broken), "--json"});
  EXPECT_EQ(bad.exit_code, 65);
  EXPECT_EQ(bad.out, "");

  WriteFile(work_ / "signer.toml", ConfigFor(log), 0644);
  RunResult serials = Ctl({"--config", work_ / "signer.toml", "serials", "--identity", "kubemaster-1", "--json"});
  ASSERT_EQ(serials.exit_code, 0) << serials.err;
  auto rows = nlohmann::json::parse(serials.out);
  RunResult plain = Ctl({"--config", work_ / "signer.toml", "serials", "--identity", "kubemaster-1"});
  ASSERT_EQ(rows.size(), 3u) << serials.out;
  ASSERT_EQ(Lines(plain.out).size(), 3u) << plain.out;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i]["serial"], Lines(plain.out)[i]);
    EXPECT_EQ(rows[i]["profile"], "etcd-client");
    EXPECT_EQ(rows[i]["not_after"], nlohmann::json::parse(lines[rows[i]["seq"].get<std::size_t>() - 1])["not_after"]);
  }

  RunResult pending = Ctl({"--config", work_ / "signer.toml", "pending", "--json"});
  ASSERT_EQ(pending.exit_code, 0) << pending.err;
  EXPECT_EQ(nlohmann::json::parse(pending.out), nlohmann::json::array());
}

TEST_F(Signerctl, AChangedByteIsReportedAtTheLineAfterIt) {
  auto lines = Log();
  lines[2].replace(lines[2].find("kubemaster-3"), 12, "kubemaster-4");
  RunResult r = Ctl({"audit", "verify", Put("audit.log", lines)});
  EXPECT_EQ(r.exit_code, 65);
  EXPECT_EQ(r.err, "etcd-signerctl: chain-broken: " + (work_ / "audit.log") +
                       ":4: seq 4: prev does not match the "
                       "SHA-256 of seq 3 at " +
                       (work_ / "audit.log") +
                       ":3: that line was changed after it was "
                       "written, or this one was forged\n");
}

TEST_F(Signerctl, ADeletedLineIsReportedWithTheMissingSeq) {
  auto lines = Log();
  lines.erase(lines.begin() + 4);
  RunResult r = Ctl({"audit", "verify", Put("audit.log", lines)});
  EXPECT_EQ(r.exit_code, 65);
  EXPECT_NE(r.err.find("audit.log:5: seq 6 follows seq 4 at " + (work_ / "audit.log") +
                       ":4: record 5 missing"),
            std::string::npos)
      << r.err;
}

TEST_F(Signerctl, TwoSwappedLinesAreReportedAtTheFirst) {
  auto lines = Log();
  std::swap(lines[5], lines[6]);
  RunResult r = Ctl({"audit", "verify", Put("audit.log", lines)});
  EXPECT_EQ(r.exit_code, 65);
  EXPECT_NE(r.err.find("audit.log:6: seq 7 follows seq 5 at "), std::string::npos) << r.err;
}

TEST_F(Signerctl, AnInsertedLineIsReportedWhereItIs) {
  auto lines = Log();
  // A forged "issued" record without chain fields, and one that copies the fields of its neighbour.
  auto forged = nlohmann::json::parse(lines[0]);
  forged.erase("v");
  forged.erase("seq");
  forged.erase("prev");
  auto plain = lines;
  plain.insert(plain.begin() + 3, forged.dump());
  RunResult r = Ctl({"audit", "verify", Put("plain.log", plain)});
  EXPECT_EQ(r.exit_code, 65);
  EXPECT_NE(
      r.err.find("plain.log:4: a record without the chain fields v, seq and prev after seq 3 at "),
      std::string::npos)
      << r.err;
  auto copied = lines;
  auto twin = nlohmann::ordered_json::parse(lines[3]);
  twin["serial"] = "00";
  copied.insert(copied.begin() + 4, twin.dump());
  r = Ctl({"audit", "verify", Put("copied.log", copied)});
  EXPECT_EQ(r.exit_code, 65);
  EXPECT_NE(r.err.find("copied.log:5: seq 4 follows seq 4 at "), std::string::npos) << r.err;
}

TEST_F(Signerctl, RotatedFilesVerifyAsOneChainAndADroppedFileIsAGap) {
  std::string log = work_ / "audit.log";
  ASSERT_EQ(Sign(log, "kubemaster-1", "m1a").exit_code, 0);
  ASSERT_EQ(Sign(log, "kubemaster-2", "m3").exit_code, 77);
  ASSERT_EQ(::rename(log.c_str(), (log + ".2").c_str()), 0);  // logrotate, create mode
  ASSERT_EQ(Sign(log, "kubemaster-2", "m2").exit_code, 0);
  ASSERT_EQ(Sign(log, "kubemaster-1", "m1a").exit_code, 0);
  ASSERT_EQ(::rename(log.c_str(), (log + ".1").c_str()), 0);
  ASSERT_EQ(Sign(log, "kubemaster-1", "m1a").exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(Lines(ReadFile(log))[0])["seq"], 5);
  RunResult r = Ctl({"audit", "verify", log + ".2", log + ".1", log});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("ok: 5 records, seq 1..5"), std::string::npos) << r.out;
  // The newest two files alone: a chain that starts later, which is said.
  r = Ctl({"audit", "verify", log + ".1", log});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("starts at seq 3"), std::string::npos) << r.out;
  // The middle file dropped.
  r = Ctl({"audit", "verify", log + ".2", log});
  EXPECT_EQ(r.exit_code, 65);
  EXPECT_EQ(r.err, "etcd-signerctl: chain-broken: " + log + ":1: seq 5 follows seq 2 at " + log +
                       ".2:2: records 3..4 missing (a rotated file between them is missing?)\n");
  // Given in the wrong order.
  r = Ctl({"audit", "verify", log + ".1", log + ".2", log});
  EXPECT_EQ(r.exit_code, 65);
  EXPECT_NE(r.err.find(log + ".2:1: seq 1 follows seq 4 at "), std::string::npos) << r.err;
}

TEST_F(Signerctl, ATruncatedTailIsCaughtAgainstTheHead) {
  const auto& lines = Log();
  std::string head = "8:" + Sha256(lines[7]);
  std::vector<std::string> cut(lines.begin(), lines.begin() + 6);
  std::string log = Put("audit.log", cut);
  EXPECT_EQ(Ctl({"audit", "verify", log}).exit_code, 0);  // a shorter chain is still a chain ...
  RunResult r = Ctl({"audit", "verify", log, "--head", head});  // ... but not the one syslog saw
  EXPECT_EQ(r.exit_code, 65);
  EXPECT_EQ(r.err, "etcd-signerctl: chain-broken: " + log +
                       ":6: the chain ends at seq 6 but the head is seq 8: records 7..8 missing "
                       "(the log was cut "
                       "short)\n");
  // A torn last line (no newline) is named too.
  WriteFile(log, ReadFile(log) + lines[6].substr(0, 40), 0640);
  r = Ctl({"audit", "verify", log});
  EXPECT_EQ(r.exit_code, 65);
  EXPECT_NE(r.err.find(log + ":7: the last line has no newline"), std::string::npos) << r.err;
}

TEST_F(Signerctl, AFragmentLeftByAKilledSignerIsNamedAndTheChainContinuesAroundIt) {
  std::string log = Put("audit.log", Log());
  // What a signer killed mid-write leaves: part of a record, no newline, the head not advanced.
  WriteFile(log, ReadFile(log) + Log()[7].substr(0, 60), 0640);
  ASSERT_EQ(Sign(log, "kubemaster-1", "m1a").exit_code, 0);
  ASSERT_EQ(Sign(log, "kubemaster-2", "m3").exit_code, 77);
  auto lines = Lines(ReadFile(log));
  ASSERT_EQ(lines.size(), 11u);
  RunResult r = Ctl({"audit", "verify", log});
  EXPECT_EQ(r.exit_code, 65);
  EXPECT_EQ(r.err, "etcd-signerctl: chain-broken: " + log +
                       ":9: not a JSON record after seq 8 at " + log +
                       ":8: a fragment left by a writer killed mid-write, or an inserted line\n");
  // The records after it continue the chain from seq 8: without the fragment, it is whole.
  lines.erase(lines.begin() + 8);
  r = Ctl({"audit", "verify", Put("without-fragment.log", lines)});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("ok: 10 records, seq 1..10"), std::string::npos) << r.out;
}

TEST_F(Signerctl, ARecordBeingAppendedWhileVerifyReadsIsNotCalledTorn) {
  const auto& lines = Log();
  std::vector<std::string> first(lines.begin(), lines.begin() + 7);
  std::string log = Put("audit.log", first);
  // Half of record 8 is there when verify starts; the rest arrives 50 ms later, as from a signer
  // whose write a reader caught in the middle.
  WriteFile(log, ReadFile(log) + lines[7].substr(0, 100), 0640);
  std::thread writer([&] {
    std::this_thread::sleep_for(50ms);
    std::FILE* f = std::fopen(log.c_str(), "a");
    std::fputs((lines[7].substr(100) + "\n").c_str(), f);
    std::fclose(f);
  });
  RunResult r = Ctl({"audit", "verify", log});
  writer.join();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("ok: 8 records, seq 1..8"), std::string::npos) << r.out;
}

TEST_F(Signerctl, UsageAndInputErrorsHaveTheirCodes) {
  EXPECT_EQ(Ctl({"audit", "verify", work_ / "missing.log"}).exit_code, 66);
  RunResult r = Ctl({"audit", "verify", Put("audit.log", Log()), "--head", "8:abc"});
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_EQ(r.err, "etcd-signerctl: usage: --head must be SEQ:HASH (64 lowercase hex digits)\n");
  EXPECT_EQ(Ctl({"audit", "frobnicate"}).exit_code, 64);
  EXPECT_EQ(Ctl({"audit", "list"}).exit_code, 64);  // no files and no config
  for (auto verb : std::vector<std::vector<std::string>>{{"--help"},
                                                         {"audit", "--help"},
                                                         {"audit", "verify", "--help"},
                                                         {"audit", "list", "--help"},
                                                         {"audit", "report", "--help"},
                                                         {"metrics", "--help"}}) {
    r = Ctl(verb);
    EXPECT_EQ(r.exit_code, 0) << verb.back();
    EXPECT_NE(r.out.find("Usage:"), std::string::npos) << r.out;
  }
}

TEST_F(Signerctl, ListShowsOneRowPerRequestWithItsFields) {
  const auto& lines = Log();
  std::string log = Put("audit.log", lines);
  WriteFile(work_ / "signer.toml", ConfigFor(log));
  RunResult r = Ctl({"--config", work_ / "signer.toml", "audit", "list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto rows = Lines(r.out);
  ASSERT_EQ(rows.size(), 9u) << r.out;
  EXPECT_EQ(rows[0].rfind("SEQ     AGE      IDENTITY", 0), 0u) << rows[0];
  auto first = nlohmann::json::parse(lines[0]);
  std::string key = first["public_key_sha256"].get<std::string>().substr(0, 12);
  std::string serial = first["serial"].get<std::string>().substr(0, 16);
  std::string expires = first["not_after"].get<std::string>();
  EXPECT_TRUE(
      std::regex_search(rows[1], std::regex("^1 +[0-9]+[smh] +kubemaster-1 +issued +" + key + " +" +
                                            serial + " +" + expires + " +192\\.0\\.2\\.7 40123$")))
      << rows[1];
  EXPECT_TRUE(std::regex_search(
      rows[3], std::regex("^3 .* kubemaster-2 +refused/identity-mismatch +[0-9a-f]{12} +- +- ")))
      << rows[3];
  // Filters.
  r = Ctl({"--config", work_ / "signer.toml", "audit", "list", "--outcome", "refused", "--identity",
           "kubemaster-2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Lines(r.out).size(), 4u) << r.out;
  r = Ctl({"audit", "list", log, "--identity", "kubemaster-1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto json_rows = Lines(r.out);
  ASSERT_EQ(json_rows.size(), 4u) << r.out;  // three issued and the `info`
  EXPECT_EQ(json_rows[0], lines[0]);
  // --since, relative to --now: an hour later, nothing is newer than 30 minutes.
  std::string later = base::FormatRfc3339(std::chrono::system_clock::now() + 1h);
  r = Ctl({"--now", later, "audit", "list", log, "--since", "30m"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Lines(r.out).size(), 1u) << r.out;
  r = Ctl({"--now", later, "audit", "list", log, "--since", "2h"});
  EXPECT_EQ(Lines(r.out).size(), 9u) << r.out;
}

TEST_F(Signerctl, ReportSummarisesEachIdentityAndFlagsWhatNeedsALook) {
  const auto& lines = Log();
  std::string log = Put("audit.log", lines);
  auto last_m1 = nlohmann::json::parse(lines[5]);
  // 23 hours on, kubemaster-1's 24 h certificate is past 90% of its lifetime; kubemaster-2's 7 d
  // one is not.
  std::string later = base::FormatRfc3339(std::chrono::system_clock::now() + 23h);
  RunResult r = Ctl({"--now", later, "audit", "report", log, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = nlohmann::json::parse(r.out);
  ASSERT_EQ(doc["identities"].size(), 2u) << r.out;
  auto m1 = doc["identities"][0];
  auto m2 = doc["identities"][1];
  EXPECT_EQ(m1["identity"], "kubemaster-1");
  EXPECT_EQ(m1["issued"], 3);
  EXPECT_EQ(m1["refused"], 0);
  EXPECT_EQ(m1["key_changes"], 1);
  EXPECT_EQ(m1["last_serial"], last_m1["serial"]);
  EXPECT_EQ(m1["last_not_after"], last_m1["not_after"]);
  EXPECT_EQ(m1["last_public_key_sha256"], last_m1["public_key_sha256"]);
  EXPECT_EQ(m1["flags"], nlohmann::json({"new-name", "new-key", "stopped-renewing"}));
  EXPECT_EQ(m2["identity"], "kubemaster-2");
  EXPECT_EQ(m2["issued"], 1);
  EXPECT_EQ(m2["refused"], 3);
  EXPECT_EQ(m2["key_changes"], 0);
  EXPECT_EQ(m2["last_refusal_reason"], "identity-mismatch");
  EXPECT_EQ(m2["flags"], nlohmann::json({"new-name"}));
  // Five refusals within ten minutes are a burst.
  auto burst = lines;
  std::string log2 = work_ / "burst.log";
  WriteFile(log2, ReadFile(log), 0640);
  for (int i = 0; i < 2; ++i) ASSERT_EQ(Sign(log2, "kubemaster-2", "m3").exit_code, 77);
  r = Ctl({"audit", "report", log2, "--json"});
  doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["identities"][1]["flags"], nlohmann::json({"new-name", "refusal-burst"})) << r.out;
  // The table.
  r = Ctl({"audit", "report", log, "--since", "1d"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto rows = Lines(r.out);
  ASSERT_EQ(rows.size(), 3u) << r.out;
  EXPECT_TRUE(std::regex_search(
      rows[1],
      std::regex("^kubemaster-1 +3 +0 +1 +" + last_m1["serial"].get<std::string>().substr(0, 16))))
      << rows[1];
  EXPECT_NE(rows[2].find("identity-mismatch"), std::string::npos) << rows[2];
  // A week on, nothing is in the window, and nothing is new.
  std::string week = base::FormatRfc3339(std::chrono::system_clock::now() + 24h * 8);
  r = Ctl({"--now", week, "audit", "report", log, "--json"});
  doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["identities"][0]["issued"], 0);
  EXPECT_EQ(doc["identities"][1]["flags"], nlohmann::json({"stopped-renewing"}));
}

TEST_F(Signerctl, MetricsAreWrittenAtomicallyForNodeExporter) {
  const auto& lines = Log();
  std::string log = Put("audit.log", lines);
  WriteFile(work_ / "signer.toml", ConfigFor(log));
  std::string prom = work_ / "etcd_signer.prom";
  auto now = std::chrono::system_clock::now();
  RunResult r = Ctl({"--config", work_ / "signer.toml", "--now", base::FormatRfc3339(now),
                     "metrics", "--prometheus", prom});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string text = ReadFile(prom);
  auto value = [&](const std::string& series) -> long long {
    auto pos = text.find("\n" + series + " ");
    if (pos == std::string::npos) return -999999999;
    return std::stoll(text.substr(pos + series.size() + 2));
  };
  EXPECT_EQ(value("etcd_signer_audit_chain_ok"), 1) << text;
  EXPECT_EQ(value("etcd_signer_audit_chain_head_seq"), 8) << text;
  EXPECT_EQ(value("etcd_signer_requests{identity=\"kubemaster-1\",outcome=\"issued\",reason=\"\"}"),
            3)
      << text;
  EXPECT_EQ(value("etcd_signer_requests{identity=\"kubemaster-2\",outcome=\"refused\",reason="
                  "\"identity-mismatch\"}"),
            3)
      << text;
  EXPECT_EQ(value("etcd_signer_refusals_last_hour{identity=\"kubemaster-2\"}"), 3) << text;
  auto m1 = nlohmann::json::parse(lines[5]);
  auto expiry = std::chrono::duration_cast<std::chrono::seconds>(
                    base::ParseRfc3339(m1["not_after"].get<std::string>()) -
                    base::ParseRfc3339(base::FormatRfc3339(now)))
                    .count();
  EXPECT_EQ(value("etcd_signer_certificate_expiry_seconds{identity=\"kubemaster-1\"}"), expiry)
      << text;
  EXPECT_EQ(value("etcd_signer_last_issued_timestamp_seconds{identity=\"kubemaster-1\"}"),
            std::chrono::duration_cast<std::chrono::seconds>(
                base::ParseRfc3339(m1["time"].get<std::string>()).time_since_epoch())
                .count());
  // The CA certificate's notAfter, as openssl reads it.
  std::string end =
      OpenSsl({"x509", "-noout", "-enddate", "-dateopt", "iso_8601", "-in", token_->ca_cert}).out;
  ASSERT_EQ(end.rfind("notAfter=", 0), 0u) << end;
  std::string iso = end.substr(9, 20);  // "2026-12-27 16:45:00Z"
  iso[10] = 'T';
  EXPECT_EQ(value("etcd_signer_ca_certificate_expiry_seconds"),
            std::chrono::duration_cast<std::chrono::seconds>(
                base::ParseRfc3339(iso) - base::ParseRfc3339(base::FormatRfc3339(now)))
                .count())
      << text << end;
  // No temporary file is left next to it.
  int entries = 0;
  for (const auto& name : Lines(testing_support::Run({"/bin/ls", work_.path()}).out))
    entries += name.find(".prom") != std::string::npos;
  EXPECT_EQ(entries, 1);
  // A broken chain is written as chain_ok 0 (what the alert watches), and exits 65.
  auto broken = lines;
  broken.erase(broken.begin() + 2);
  Put("audit.log", broken);
  r = Ctl({"--config", work_ / "signer.toml", "metrics", "--prometheus", prom});
  EXPECT_EQ(r.exit_code, 65);
  text = ReadFile(prom);
  EXPECT_EQ(value("etcd_signer_audit_chain_ok"), 0) << text;
  EXPECT_EQ(value("etcd_signer_audit_chain_head_seq"), 2) << text;
}

// #24 point 8: a NAME no request can carry would make a list entry that matches nothing (a deny
// of `kubemaster-1,` protects kubemaster-1 not at all). Each such name is a usage error, and the
// files stay exactly as they were.
TEST_F(Signerctl, ListVerbsRefuseNamesThatCanNeverMatchARequest) {
  std::string config = work_ / "signer.toml";
  WriteFile(config, ConfigFor(work_ / "audit.log") + "approved_keys = \"" + (work_ / "approved") +
                        "\"\ndenied_keys = \"" + (work_ / "denied") + "\"\ndenied_identities = \"" +
                        (work_ / "identities") + "\"\n");
  for (const char* f : {"approved", "denied", "identities"}) WriteFile(work_ / f, "# lists\n", 0644);
  const std::string key(64, 'a');
  for (const std::string& bad : {std::string("kubemaster-1,"), std::string(""), std::string("kubemaster-") + std::string(60, '1'),
                                 std::string("kubemaster-1\x1b[2J"), std::string("KubeMaster-1"), std::string("etcd")}) {
    for (const std::vector<std::string>& verb :
         {std::vector<std::string>{"deny-identity", bad}, {"allow-identity", bad}, {"approve", bad, key}, {"deny", bad, key}}) {
      std::vector<std::string> args{"--config", config};
      args.insert(args.end(), verb.begin(), verb.end());
      RunResult r = Ctl(args);
      EXPECT_EQ(r.exit_code, 64) << verb[0] << " '" << bad << "': " << r.out << r.err;
      EXPECT_EQ(Lines(r.err).size(), 1u) << r.err;
      EXPECT_EQ(r.err.rfind("etcd-signerctl: usage: ", 0), 0u) << r.err;
    }
  }
  for (const char* f : {"approved", "denied", "identities"}) EXPECT_EQ(ReadFile(work_ / f), "# lists\n") << f;
  // A name the policy can issue to is still written.
  RunResult ok = Ctl({"--config", config, "deny-identity", "kubemaster-12"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ReadFile(work_ / "identities").find("\nkubemaster-12"), std::string::npos) << ReadFile(work_ / "identities");
}

// #24 point 10: etcd-signerctl runs as root on files in the signer account's directory. It never
// follows a link there (to /etc/shadow, say), never blocks on a FIFO, and never reads a second name
// of a root file (a hard link) or a file a third account planted in that directory.
TEST_F(Signerctl, AuditFilesAreNeverReadThroughALinkAFifoOrFromAPlantedFile) {
  std::string log = Put("audit.log", Log());
  std::string account_dir = work_ / "signer-dir";  // the signer account's, as /var/log/etcd-signer
  ASSERT_EQ(::mkdir(account_dir.c_str(), 0750), 0);
  ASSERT_EQ(::chown(account_dir.c_str(), 65534, 65534), 0);
  std::string link = account_dir + "/link.log";
  ASSERT_EQ(::symlink(log.c_str(), link.c_str()), 0);
  std::string fifo = account_dir + "/fifo.log";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string hard = account_dir + "/hard.log";  // a second name of a root file
  ASSERT_EQ(::link(log.c_str(), hard.c_str()), 0);
  std::string planted = account_dir + "/planted.log";
  WriteFile(planted, ReadFile(log), 0644);
  ASSERT_EQ(::chown(planted.c_str(), 65533, 65533), 0);
  for (const auto& [file, why] : std::vector<std::pair<std::string, std::string>>{
           {link, "is a symbolic link"},
           {fifo, "is not a regular file"},
           {hard, "audit-file-unsafe: " + hard + " has 2 names (hard links) in a directory uid 65534 can write"},
           {planted, "audit-file-unsafe: " + planted + " is owned by uid 65533"}}) {
    for (const std::vector<std::string>& verb : {std::vector<std::string>{"audit", "verify", file},
                                                 {"audit", "list", file}, {"audit", "report", file}}) {
      RunResult r = Ctl(verb);
      EXPECT_EQ(r.exit_code, 66) << verb[1] << " " << file << ": " << r.out << r.err;
      EXPECT_NE(r.err.find(why), std::string::npos) << r.err;
      EXPECT_TRUE(r.out.empty()) << r.out;
    }
  }
  // The account's own file there, and root's own in root's directory: read.
  std::string own = account_dir + "/audit.log";
  WriteFile(own, ReadFile(log), 0640);
  ASSERT_EQ(::chown(own.c_str(), 65534, 65534), 0);
  EXPECT_EQ(Ctl({"audit", "verify", own}).exit_code, 0);
  ::unlink(hard.c_str());
  EXPECT_EQ(Ctl({"audit", "verify", log}).exit_code, 0);
}

// #24 point 5: the readers check the log against the head the signer recorded next to it (the
// .lock), by default. A rotated log (renamed, then a new one) still verifies; one emptied or cut
// in place is an alarm in verify, report and metrics, which a chain alone cannot show.
TEST_F(Signerctl, AnEmptiedOrCutLogIsAnAlarmAgainstTheRecordedHead) {
  std::string log = work_ / "audit.log";
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Sign(log, "kubemaster-1", "m1a").exit_code, 0);
  WriteFile(work_ / "signer.toml", ConfigFor(log));
  auto ctl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"--config", work_ / "signer.toml"});
    return Ctl(args);
  };
  RunResult ok = Ctl({"audit", "verify", log});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("the chain ends in the head the signer recorded in " + log + ".lock"), std::string::npos)
      << ok.out;

  // Rotated: renamed away, the next record in a new file. Both files together verify.
  ASSERT_EQ(::rename(log.c_str(), (log + ".1").c_str()), 0);
  ASSERT_EQ(Sign(log, "kubemaster-1", "m1a").exit_code, 0);
  EXPECT_EQ(ctl({"audit", "verify", log + ".1", log}).exit_code, 0);
  EXPECT_EQ(ctl({"audit", "report"}).exit_code, 0);

  // Emptied in place (no rotation): the files end at seq 3, the signer recorded seq 4.
  WriteFile(log, "", 0640);
  RunResult verify = Ctl({"audit", "verify", log + ".1", log});
  EXPECT_EQ(verify.exit_code, 65) << verify.out;
  EXPECT_NE(verify.err.find("chain-broken: "), std::string::npos) << verify.err;
  EXPECT_NE(verify.err.find("4"), std::string::npos) << verify.err;
  // --no-recorded-head: the files alone are a consistent chain.
  EXPECT_EQ(Ctl({"audit", "verify", log + ".1", log, "--no-recorded-head"}).exit_code, 0);
  RunResult report = ctl({"audit", "report"});
  EXPECT_EQ(report.exit_code, 65);
  EXPECT_EQ(report.out.rfind("ALARM: the audit chain is broken: ", 0), 0u) << report.out;
  RunResult json = ctl({"audit", "report", "--json"});
  EXPECT_EQ(nlohmann::json::parse(json.out)["chain"]["ok"], false) << json.out;
  std::string prom = work_ / "etcd_signer.prom";
  EXPECT_EQ(ctl({"metrics", "--prometheus", prom}).exit_code, 65);
  EXPECT_NE(ReadFile(prom).find("\netcd_signer_audit_chain_ok 0\n"), std::string::npos) << ReadFile(prom);
}

// #24 point 5: `audit list --json` never hands a terminal raw bytes the signer did not write. A
// record with a raw C1 control (U+009B, CSI, as UTF-8) and a bidi override, as a forged line would
// carry them, is printed with every non-ASCII character escaped; the signer's own lines unchanged.
TEST_F(Signerctl, ListJsonEscapesWhatTheSignerWouldHaveEscaped) {
  auto record = nlohmann::json::parse(Log()[0]);
  record["identity"] = "kubemaster-1\xc2\x9b" "2J\xe2\x80\xae";
  std::string raw = record.dump();  // not ensure_ascii: the raw UTF-8 bytes
  ASSERT_NE(raw.find("\xc2\x9b"), std::string::npos);
  std::string log = Put("audit.log", {Log()[1], raw});
  RunResult r = Ctl({"audit", "list", log, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto rows = Lines(r.out);
  ASSERT_EQ(rows.size(), 2u) << r.out;
  EXPECT_EQ(rows[0], Log()[1]);
  for (char c : r.out) EXPECT_TRUE(c == '\n' || (c >= 0x20 && c < 0x7f)) << "a raw byte " << int(static_cast<unsigned char>(c));
  EXPECT_NE(rows[1].find("kubemaster-1\\u009b2J\\u202e"), std::string::npos) << rows[1];
  EXPECT_EQ(nlohmann::json::parse(rows[1])["identity"], record["identity"]);
}

}  // namespace
