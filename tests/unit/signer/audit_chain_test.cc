// SPDX-License-Identifier: Apache-2.0
// The audit log's hash chain: computing it under the lock, and finding the first broken place.
#include "signer/audit_chain.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "base/failure.h"
#include "base/files.h"
#include "signer/audit.h"
#include "test_support.h"

namespace {

using namespace testing_support;
using signer::ChainHead;
using signer::ChainVerifier;

// What AuditLog does for one record, without syslog.
std::vector<std::string> WriteRecords(const std::string& log, int n,
                                      const std::string& outcome = "issued") {
  signer::AuditLog audit(log, false);
  for (int i = 0; i < n; ++i) {
    signer::AuditRecord r;
    r.time = "2026-11-23T10:00:0" + std::to_string(i % 10) + "Z";
    r.outcome = outcome;
    r.verb = "sign";
    r.identity = "kubemaster-" + std::to_string(i % 3);
    audit.Write(r);
  }
  return Lines(ReadFile(log));
}

// Verifies in-memory lines as one file named "log".
ChainVerifier VerifyLines(const std::vector<std::string>& lines,
                          std::optional<ChainHead> head = std::nullopt,
                          bool last_terminated = true) {
  ChainVerifier v(head);
  v.BeginFile("log");
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (!v.Feed(lines[i], i + 1 < lines.size() || last_terminated)) break;
  }
  v.Finish();
  return v;
}

std::string Message(const ChainVerifier& v) {
  return v.broken() ? v.broken()->message : "(not broken)";
}

TEST(AuditChain, Sha256HexIsLowercaseHexOfTheExactBytes) {
  EXPECT_EQ(signer::Sha256Hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(signer::Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(signer::kGenesisPrev, std::string(64, '0'));
}

TEST(AuditChain, Sha256StreamOverPiecesIsTheHashOfTheWhole) {
  {
    signer::Sha256Stream nothing;
    EXPECT_EQ(nothing.FinalHex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  }
  signer::Sha256Stream abc;
  abc.Update("a");
  abc.Update("");
  abc.Update("bc");
  EXPECT_EQ(abc.FinalHex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // Pieces of the sizes the governance check reads in (16 KiB), the last one short.
  std::string whole(3 * 16384 + 1000, '\0');
  for (std::size_t i = 0; i < whole.size(); ++i) whole[i] = static_cast<char>(i * 131 % 251);
  signer::Sha256Stream chunked;
  for (std::size_t at = 0; at < whole.size(); at += 16384) chunked.Update(std::string_view(whole).substr(at, 16384));
  EXPECT_EQ(chunked.FinalHex(), signer::Sha256Hex(whole));
}

TEST(AuditChain, HeadsParseStrictly) {
  auto h = signer::ParseHead("7:" + std::string(64, 'a'));
  ASSERT_TRUE(h);
  EXPECT_EQ(h->seq, 7u);
  EXPECT_EQ(signer::FormatHead(*h), "7:" + std::string(64, 'a'));
  EXPECT_FALSE(signer::ParseHead("0:" + std::string(64, 'a')));
  EXPECT_FALSE(signer::ParseHead("7:" + std::string(64, 'A')));
  EXPECT_FALSE(signer::ParseHead("7:" + std::string(63, 'a')));
  EXPECT_FALSE(signer::ParseHead("x7:" + std::string(64, 'a')));
  EXPECT_FALSE(signer::ParseHead(std::string(64, 'a')));
}

TEST(AuditChain, RecordsAreNumberedFromOneAndEachHashesThePreviousLine) {
  TempDir dir;
  auto lines = WriteRecords(dir / "audit.log", 5);
  ASSERT_EQ(lines.size(), 5u);
  std::string prev = signer::kGenesisPrev;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    // The chain fields lead the line, in this order, and are part of the hashed bytes.
    EXPECT_EQ(lines[i].rfind(
                  "{\"v\":1,\"seq\":" + std::to_string(i + 1) + ",\"prev\":\"" + prev + "\",", 0),
              0u)
        << lines[i];
    prev = signer::Sha256Hex(lines[i]);
  }
  // The head lives in the private lock file, so the next append does not read the log.
  EXPECT_NE(ReadFile(dir / "audit.log.lock").find(" 5:" + prev + "\n"), std::string::npos)
      << ReadFile(dir / "audit.log.lock");
  ChainVerifier v = VerifyLines(lines);
  EXPECT_FALSE(v.broken()) << Message(v);
  EXPECT_EQ(v.records(), 5u);
  EXPECT_EQ((v.head()), (ChainHead{5, prev}));
}

TEST(AuditChain, AnAppendTrustsTheStoredHeadAndNotTheLog) {
  TempDir dir;
  WriteRecords(dir / "audit.log", 2);
  // Rewrite the head to a different (well-formed) one with the right size: the append uses it,
  // which proves it is not reading the log's last line.
  std::string head = ReadFile(dir / "audit.log.lock");
  auto space = head.find(' ', head.find("size="));
  WriteFile(dir / "audit.log.lock", head.substr(0, space) + " 41:" + std::string(64, 'b') + "\n",
            0600);
  auto lines = WriteRecords(dir / "audit.log", 1);
  EXPECT_EQ(lines.back().rfind("{\"v\":1,\"seq\":42,\"prev\":\"" + std::string(64, 'b') + "\"", 0),
            0u)
      << lines.back();
}

TEST(AuditChain, AMissingHeadIsRecoveredOnceFromTheLastLineOfTheLog) {
  TempDir dir;
  auto lines = WriteRecords(dir / "audit.log", 3);
  ASSERT_EQ(::unlink((dir / "audit.log.lock").c_str()), 0);  // first run after an upgrade
  lines = WriteRecords(dir / "audit.log", 1);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(
      lines[3].rfind("{\"v\":1,\"seq\":4,\"prev\":\"" + signer::Sha256Hex(lines[2]) + "\"", 0), 0u);
  EXPECT_FALSE(VerifyLines(lines).broken()) << Message(VerifyLines(lines));
}

TEST(AuditChain, AStaleHeadLeftByACrashIsRecoveredFromTheLog) {
  TempDir dir;
  WriteRecords(dir / "audit.log", 2);
  std::string old_head = ReadFile(dir / "audit.log.lock");
  WriteRecords(dir / "audit.log", 1);
  // A crash after the log's fsync but before the head's: the head is one record behind.
  WriteFile(dir / "audit.log.lock", old_head, 0600);
  auto lines = WriteRecords(dir / "audit.log", 1);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_FALSE(VerifyLines(lines).broken()) << Message(VerifyLines(lines));
}

TEST(AuditChain, ATornFragmentNeverAdvancesTheChainAndVerifyNamesItsLine) {
  TempDir dir;
  WriteRecords(dir / "audit.log", 2);
  // A writer killed mid-write: a fragment without a newline, the head not advanced.
  WriteFile(dir / "audit.log", ReadFile(dir / "audit.log") + "{\"v\":1,\"seq\":3,\"pr", 0640);
  auto lines = WriteRecords(dir / "audit.log", 1);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[2], "{\"v\":1,\"seq\":3,\"pr");
  // The next record continues from seq 2, over the fragment.
  EXPECT_EQ(
      lines[3].rfind("{\"v\":1,\"seq\":3,\"prev\":\"" + signer::Sha256Hex(lines[1]) + "\"", 0), 0u);
  ChainVerifier v = VerifyLines(lines);
  ASSERT_TRUE(v.broken());
  EXPECT_EQ(v.broken()->line, 3u);
  EXPECT_NE(Message(v).find("log:3: not a JSON record after seq 2 at log:2"), std::string::npos)
      << Message(v);
}

TEST(AuditChain, ALogRotatedAwayContinuesTheChainInTheNewFile) {
  TempDir dir;
  WriteRecords(dir / "audit.log", 3);
  ASSERT_EQ(::rename((dir / "audit.log").c_str(), (dir / "audit.log.1").c_str()), 0);
  auto lines = WriteRecords(dir / "audit.log", 2);
  EXPECT_EQ(lines[0].rfind("{\"v\":1,\"seq\":4,", 0), 0u) << lines[0];
  ChainVerifier v;
  for (const auto& file : {dir / "audit.log.1", dir / "audit.log"}) {
    v.BeginFile(file);
    for (const auto& l : Lines(ReadFile(file))) v.Feed(l, true);
  }
  EXPECT_TRUE(v.Finish()) << Message(v);
  EXPECT_EQ(v.head().seq, 5u);
}

TEST(AuditChain, UnchainedRecordsFromBeforeTheUpgradeAnchorTheFirstRecord) {
  TempDir dir;
  std::string legacy =
      "{\"time\":\"2026-11-01T00:00:00Z\",\"program\":\"etcd-signer\",\"outcome\":\"issued\"}";
  WriteFile(dir / "audit.log", legacy + "\n" + legacy + "\n", 0640);
  auto lines = WriteRecords(dir / "audit.log", 2);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[2].rfind("{\"v\":1,\"seq\":1,\"prev\":\"" + signer::Sha256Hex(legacy) + "\"", 0),
            0u);
  ChainVerifier v = VerifyLines(lines);
  EXPECT_FALSE(v.broken()) << Message(v);
  EXPECT_EQ(v.legacy_records(), 2u);
  // But an unchained line after the chain started is inserted.
  lines.push_back(legacy);
  v = VerifyLines(lines);
  ASSERT_TRUE(v.broken());
  EXPECT_EQ(v.broken()->line, 5u) << Message(v);
}

// #24 point 5: a log that no longer ends in the head the signer recorded (cut, emptied, rewritten)
// is never continued silently. The next append writes a `resync` record naming the gap and fails
// (70 audit-resync); verify breaks at that record; the append after it chains on from it.
std::pair<std::string, std::vector<std::string>> AppendAfterTampering(const std::string& log) {
  std::string reason;
  try {
    WriteRecords(log, 1);
  } catch (const base::Failure& f) {
    reason = f.reason();
  }
  return {reason, Lines(ReadFile(log))};
}

TEST(AuditChain, ACutLogGetsAResyncRecordNamingTheGapAndTheRequestFails) {
  TempDir dir;
  auto lines = WriteRecords(dir / "audit.log", 5);
  WriteFile(dir / "audit.log", lines[0] + "\n" + lines[1] + "\n", 0640);  // records 3..5 cut
  auto [reason, after] = AppendAfterTampering(dir / "audit.log");
  EXPECT_EQ(reason, "audit-resync");
  ASSERT_EQ(after.size(), 3u);
  nlohmann::json resync = nlohmann::json::parse(after[2]);
  EXPECT_EQ(resync["outcome"], "resync");
  EXPECT_EQ(resync["reason"], "audit-resync");
  EXPECT_EQ(resync["seq"], 6);  // past the recorded head: seq numbers are never reused
  EXPECT_NE(resync["message"].get<std::string>().find("the log ends at seq 2 but the recorded head is seq 5:"),
            std::string::npos)
      << resync.dump();
  EXPECT_NE(resync["message"].get<std::string>().find("records 3..5 missing"), std::string::npos) << resync.dump();
  ChainVerifier v = VerifyLines(after);
  ASSERT_TRUE(v.broken());
  EXPECT_EQ(v.broken()->line, 3u);
  EXPECT_NE(Message(v).find("is a resync record"), std::string::npos) << Message(v);
  // The next request is served again, chained on the resync record.
  auto next = WriteRecords(dir / "audit.log", 1);
  ASSERT_EQ(next.size(), 4u);
  EXPECT_EQ(nlohmann::json::parse(next[3])["prev"], signer::Sha256Hex(next[2]));
}

TEST(AuditChain, ARewrittenLastRecordGetsAResyncRecord) {
  TempDir dir;
  auto original = WriteRecords(dir / "audit.log", 3);
  // The last record replaced by another of the same seq (a rewritten history).
  std::string forged = original[2];
  forged.replace(forged.find("issued"), 6, "refused");
  WriteFile(dir / "audit.log", original[0] + "\n" + original[1] + "\n" + forged + "\n", 0640);
  auto [reason, after] = AppendAfterTampering(dir / "audit.log");
  EXPECT_EQ(reason, "audit-resync");
  ASSERT_EQ(after.size(), 4u);
  EXPECT_NE(after[3].find("the log's last record, seq 3, does not hash to the recorded head 3:"), std::string::npos)
      << after[3];
  EXPECT_EQ(nlohmann::json::parse(after[3])["prev"], signer::Sha256Hex(original[2]));  // the true head
}

// An emptied log looks like a rotated one to an append (logrotate's `create` leaves an empty file
// and the chain continues there); `audit verify` and `metrics`, which read the recorded head, tell
// them apart (tests/integration/signerctl).
class Tampered : public ::testing::Test {
 protected:
  void SetUp() override { lines_ = WriteRecords(dir_ / "audit.log", 10); }
  TempDir dir_;
  std::vector<std::string> lines_;
};

TEST_F(Tampered, AChangedByteIsFoundAtTheNextLine) {
  auto pos = lines_[4].find("kubemaster-");
  lines_[4][pos + 11] = '9';
  ChainVerifier v = VerifyLines(lines_);
  ASSERT_TRUE(v.broken());
  EXPECT_EQ(v.broken()->line, 6u);
  EXPECT_NE(Message(v).find("log:6: seq 6: prev does not match the SHA-256 of seq 5 at log:5"),
            std::string::npos)
      << Message(v);
}

TEST_F(Tampered, ADeletedLineIsAGapInSeq) {
  lines_.erase(lines_.begin() + 3);
  ChainVerifier v = VerifyLines(lines_);
  ASSERT_TRUE(v.broken());
  EXPECT_NE(Message(v).find("log:4: seq 5 follows seq 3 at log:3: record 4 missing"),
            std::string::npos)
      << Message(v);
}

TEST_F(Tampered, SwappedLinesAreOutOfOrder) {
  std::swap(lines_[6], lines_[7]);
  ChainVerifier v = VerifyLines(lines_);
  ASSERT_TRUE(v.broken());
  EXPECT_NE(Message(v).find("log:7: seq 8 follows seq 6 at log:6"), std::string::npos)
      << Message(v);
}

TEST_F(Tampered, AnInsertedCopyRepeatsASeq) {
  lines_.insert(lines_.begin() + 5, lines_[4]);
  ChainVerifier v = VerifyLines(lines_);
  ASSERT_TRUE(v.broken());
  EXPECT_NE(
      Message(v).find("log:6: seq 5 follows seq 5 at log:5: a repeated or out-of-order record"),
      std::string::npos)
      << Message(v);
}

TEST_F(Tampered, ACutTailIsFoundOnlyAgainstTheHead) {
  ChainHead head{10, signer::Sha256Hex(lines_[9])};
  EXPECT_FALSE(VerifyLines(lines_, head).broken());
  lines_.resize(7);
  EXPECT_FALSE(VerifyLines(lines_).broken());  // without a head, a shorter chain is a chain
  ChainVerifier v = VerifyLines(lines_, head);
  ASSERT_TRUE(v.broken());
  EXPECT_NE(Message(v).find(
                "log:7: the chain ends at seq 7 but the head is seq 10: records 8..10 missing"),
            std::string::npos)
      << Message(v);
}

TEST_F(Tampered, AChangedLastLineIsFoundAgainstTheHead) {
  ChainHead head{10, signer::Sha256Hex(lines_[9])};
  lines_[9].replace(lines_[9].find("issued"), 6, "issuet");
  EXPECT_FALSE(VerifyLines(lines_).broken());
  ChainVerifier v = VerifyLines(lines_, head);
  ASSERT_TRUE(v.broken());
  EXPECT_NE(Message(v).find("log:10: seq 10 hashes to"), std::string::npos) << Message(v);
}

TEST_F(Tampered, AMissingNewlineAtTheEndIsATornLine) {
  ChainVerifier v = VerifyLines(lines_, std::nullopt, false);
  ASSERT_TRUE(v.broken());
  EXPECT_NE(Message(v).find("log:10: the last line has no newline"), std::string::npos)
      << Message(v);
}

TEST(AuditChain, ForEachLineStreamsAndReportsAnUnterminatedLastLine) {
  TempDir dir;
  std::string big(3 << 20, 'x');  // longer than the 1 MiB line cap and than one read
  WriteFile(dir / "f", "a\n\n" + big + "\nlast", 0600);
  std::vector<std::pair<std::size_t, bool>> seen;
  signer::ForEachLine(dir / "f", [&](std::string_view line, bool terminated) {
    seen.emplace_back(line.size(), terminated);
    return true;
  });
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[0], (std::pair<std::size_t, bool>{1, true}));
  EXPECT_EQ(seen[1], (std::pair<std::size_t, bool>{0, true}));
  EXPECT_EQ(seen[2], (std::pair<std::size_t, bool>{1u << 20, true}));
  EXPECT_EQ(seen[3], (std::pair<std::size_t, bool>{4, false}));
  try {
    signer::ForEachLine(dir / "missing", [](std::string_view, bool) { return true; });
    FAIL();
  } catch (const base::Failure& f) {
    EXPECT_EQ(f.code(), base::ExitCode::kNoInput);
  }
}

}  // namespace
