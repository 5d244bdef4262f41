// SPDX-License-Identifier: Apache-2.0
// Reading records back: the fast flat-record path agrees with the full JSON parser, and the
// report's flags follow their documented thresholds.
#include "signer/audit_report.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/duration.h"
#include "signer/audit.h"
#include "signer/audit_chain.h"

namespace {

using namespace std::chrono_literals;
using signer::AuditEntry;
using signer::TimePoint;

TimePoint At(const char* rfc3339) {
  return base::ParseRfc3339(rfc3339);
}

TEST(SplitFlatRecord, TakesWhatToJsonWritesAndLeavesEverythingElseToTheFullParser) {
  signer::AuditRecord r;
  r.time = "2026-11-23T04:17:35Z";
  r.outcome = "issued";
  r.seq = 12;
  r.prev = std::string(64, 'a');
  r.granted_lifetime = 86400;
  std::vector<signer::RawField> fields;
  const std::string line = signer::ToJson(r);  // the fields are views into it
  ASSERT_TRUE(signer::SplitFlatRecord(line, fields));
  auto j = nlohmann::json::parse(line);
  ASSERT_EQ(fields.size(), j.size());
  for (const auto& f : fields) {
    auto& value = j[std::string(f.key)];
    EXPECT_EQ(f.is_string, value.is_string()) << f.key;
    EXPECT_EQ(std::string(f.value), value.is_string() ? value.get<std::string>() : value.dump())
        << f.key;
  }
  for (const char* other :
       {"", "{", "{\"a\":1", "{\"a\":\"b\\\"c\"}", "{\"a\":{\"b\":1}}", "{\"a\":[1]}",
        "{\"a\":1.5}", "{\"a\":01}", "{\"a\":1,\"a\":2}", "{\"a\":1,}", "{\"a\" :1}",
        "{\"a\":\"\xc3\xa9\"}", "{\"a\":tru}", "x{\"a\":1}"}) {
    EXPECT_FALSE(signer::SplitFlatRecord(other, fields)) << other;
  }
  EXPECT_TRUE(signer::SplitFlatRecord("{\"a\":true,\"b\":null,\"c\":-3,\"d\":\"\"}", fields));
  EXPECT_EQ(fields.size(), 4u);
}

TEST(ParseAuditEntry, EscapedTextTakesTheFullParserAndGivesTheSameEntry) {
  signer::AuditRecord r;
  r.time = "2026-11-23T04:17:35Z";
  r.outcome = "refused";
  r.reason = "name-policy";
  r.identity = "kubemaster-1";
  r.common_name = "evil\"\xe2\x80\xae";
  r.not_after = "2026-11-24T04:17:35Z";
  r.seq = 3;
  r.prev = signer::kGenesisPrev;
  auto e = signer::ParseAuditEntry(signer::ToJson(r));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->cn, r.common_name);
  EXPECT_EQ(e->seq, 3u);
  EXPECT_EQ(e->time, At("2026-11-23T04:17:35Z"));
  EXPECT_EQ(e->not_after, At("2026-11-24T04:17:35Z"));
  r.common_name = "plain";
  auto fast = signer::ParseAuditEntry(signer::ToJson(r));
  ASSERT_TRUE(fast);
  EXPECT_EQ(fast->reason, "name-policy");
  EXPECT_EQ(fast->not_after, e->not_after);
  EXPECT_FALSE(signer::ParseAuditEntry("{\"time\":\"2026-13-01T00:00:00Z\"}"));  // no such month
  EXPECT_FALSE(signer::ParseAuditEntry("{\"outcome\":\"issued\"}"));             // no time
  EXPECT_FALSE(signer::ParseAuditEntry("{\"v\":1,\"seq\":3,\"pr"));              // a torn fragment
}

AuditEntry Entry(const char* time, const char* outcome, const char* key = "k1",
                 const char* who = "kubemaster-1") {
  AuditEntry e;
  e.time = At(time);
  e.outcome = outcome;
  e.identity = who;
  if (std::string(outcome) == "issued") {
    e.public_key_sha256 = key;
    e.serial = std::string("s-") + time;
    e.not_before = e.time;
    e.not_after = e.time + 24h;
  } else {
    e.reason = "identity-mismatch";
  }
  return e;
}

TEST(AuditSummary, FlagsFollowTheirThresholds) {
  TimePoint since = At("2026-11-20T00:00:00Z");
  TimePoint now = At("2026-11-22T22:00:00Z");
  signer::AuditSummary s(since, now);
  s.Add(Entry("2026-11-19T00:00:00Z", "issued", "k1"));  // before the window: not new
  s.Add(Entry("2026-11-22T00:00:00Z", "issued", "k2"));  // new key; 22 h of 24 h at `now`
  // Four refusals within ten minutes are not a burst; the fifth, 10 min 1 s after the first,
  // neither.
  for (const char* t : {"2026-11-21T10:00:00Z", "2026-11-21T10:03:00Z", "2026-11-21T10:06:00Z",
                        "2026-11-21T10:09:00Z", "2026-11-21T10:10:01Z"}) {
    s.Add(Entry(t, "refused"));
  }
  auto ids = s.Identities();
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids[0].issued, 1u);
  EXPECT_EQ(ids[0].refused, 5u);
  EXPECT_EQ(ids[0].key_changes, 1u);
  EXPECT_EQ(ids[0].Flags(), (std::vector<std::string>{"new-key", "stopped-renewing"}));
  s.Add(Entry("2026-11-21T10:10:02Z", "refused"));  // five within 10 minutes now
  s.Add(Entry("2026-11-22T21:30:00Z", "issued", "k2", "kubemaster-9"));
  ids = s.Identities();
  EXPECT_EQ(ids[0].Flags(),
            (std::vector<std::string>{"new-key", "refusal-burst", "stopped-renewing"}));
  EXPECT_EQ(ids[1].who, "kubemaster-9");
  EXPECT_EQ(ids[1].Flags(), (std::vector<std::string>{"new-name"}));
  EXPECT_EQ(ids[0].last_refusal_reason, "identity-mismatch");
  EXPECT_EQ(ids[0].by_reason.at({"issued", ""}), 2u);
  EXPECT_EQ(ids[0].by_reason.at({"refused", "identity-mismatch"}), 6u);
}

TEST(AuditSummary, AnUnboundKeyIsSummarisedByTheNameItAskedFor) {
  signer::AuditSummary s(TimePoint::min(), At("2026-11-22T00:00:00Z"));
  AuditEntry e = Entry("2026-11-21T00:00:00Z", "refused", "", "");
  e.cn = "kubemaster-7";
  s.Add(e);
  ASSERT_EQ(s.Identities().size(), 1u);
  EXPECT_EQ(s.Identities()[0].who, "cn:kubemaster-7");
}

TEST(ShortAge, PicksOneUnit) {
  EXPECT_EQ(signer::ShortAge(45s), "45s");
  EXPECT_EQ(signer::ShortAge(12min), "12m");
  EXPECT_EQ(signer::ShortAge(5h), "5h");
  EXPECT_EQ(signer::ShortAge(72h), "3d");
  EXPECT_EQ(signer::ShortAge(-5s), "0s");
}

}  // namespace
