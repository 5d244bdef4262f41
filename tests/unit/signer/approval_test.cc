// SPDX-License-Identifier: Apache-2.0
// Approval and deny lists (#14): the file format, the decision, the edits etcd-signerctl makes and
// the audit views (pending, serials).
#include "signer/approval.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "base/duration.h"
#include "base/files.h"
#include "signer/audit.h"
#include "signer/audit_chain.h"
#include "signer/audit_report.h"
#include "signer/list_edit.h"
#include "test_support.h"

namespace {

using base::ExitCode;
using base::Failure;
using signer::ApprovalGate;
using signer::ApprovalList;
using signer::ListKind;
using testing_support::ReadFile;
using testing_support::TempDir;
using testing_support::WriteFile;

const std::string kKeyA(64, 'a');
const std::string kKeyB = std::string(63, '0') + "b";
const std::string kKeyC = "c826a1f2b3d40000000000000000000000000000000000000000000000007384";

template <typename F>
std::pair<ExitCode, std::string> Caught(F&& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const Failure& e) {
    if (message) *message = e.what();
    return {e.code(), e.reason()};
  }
  return {ExitCode::kOk, ""};
}

// --- the file format ---------------------------------------------------------------------------

TEST(ApprovalList, ParsesEntriesCommentsBlankLinesAndTrailingComments) {
  ApprovalList list = ApprovalList::Parse(
      "# approved keys\n"
      "\n"
      "kubemaster-1 " +
          kKeyA +
          "\n"
          "   \t\n"
          "  # indented comment\n"
          "kubemaster-2\t" +
          kKeyB +
          "  rebuilt 2026-11-27 by ops # x\n"
          "kubemaster-3 " +
          kKeyC,  // no final newline
      ListKind::kKeys, "approved_keys");
  EXPECT_EQ(list.size(), 3u);
  EXPECT_TRUE(list.Contains("kubemaster-1", kKeyA));
  EXPECT_TRUE(list.Contains("kubemaster-2", kKeyB));
  EXPECT_TRUE(list.Contains("kubemaster-3", kKeyC));
  // A pair, not a name or a key alone.
  EXPECT_FALSE(list.Contains("kubemaster-1", kKeyB));
  EXPECT_FALSE(list.Contains("kubemaster-2", kKeyA));
  EXPECT_FALSE(list.Contains("kubemaster-1", ""));
  EXPECT_FALSE(list.Contains("kubemaster-1x", kKeyA));
  EXPECT_TRUE(ApprovalList::Parse("", ListKind::kKeys, "f").size() == 0);
}

TEST(ApprovalList, EveryMalformedLineIsAConfigurationErrorNamingFileAndLine) {
  struct Case {
    std::string line;
    std::string says;
  };
  for (const Case& c : std::vector<Case>{
           {"kubemaster-1", "no key after the name"},
           {"kubemaster-1 " + kKeyA.substr(1), "is not a key SHA-256"},
           {"kubemaster-1 " + std::string(64, 'A'), "is not a key SHA-256"},  // lowercase only
           {"kubemaster-1 " + kKeyA + "0", "is not a key SHA-256"},
           {"kubemaster-1 SHA256:aMg1DFUExIP0pr63bJPO1m5nA6VuuskTV6Or/OFY864",
            "is an SSH key fingerprint"},
           {kKeyA + " kubemaster-1", "is not a key SHA-256"},  // fields swapped
           {"kubemaster-1 " + kKeyA + "\r", "carriage return"},
           {"kubemaster-1 " + kKeyA + " comment\x01", "control character"},
           {std::string(65, 'k') + " " + kKeyA, "is not a name"},
           {"kube\xc3\xa9 " + kKeyA, "is not a name"},
       }) {
    std::string text = "# header\nkubemaster-9 " + kKeyB + "\n" + c.line + "\n";
    std::string message;
    auto [code, reason] = Caught(
        [&] { ApprovalList::Parse(text, ListKind::kKeys, "/etc/etcd-signer/approved_keys"); },
        &message);
    EXPECT_EQ(code, ExitCode::kConfig) << c.line;
    EXPECT_EQ(reason, "bad-config") << c.line;
    EXPECT_EQ(message.rfind("/etc/etcd-signer/approved_keys:3: ", 0), 0u) << message;
    EXPECT_NE(message.find(c.says), std::string::npos) << message;
    EXPECT_EQ(message.find('\r'), std::string::npos);
    EXPECT_EQ(message.find('\x01'), std::string::npos);
  }
}

TEST(ApprovalList, NameListsTakeOneNamePerLine) {
  ApprovalList names =
      ApprovalList::Parse("# stolen 2026-11-27\nkubemaster-3\nkubemaster-7 rebuilt\n",
                          ListKind::kNames, "denied_identities");
  EXPECT_EQ(names.size(), 2u);
  EXPECT_TRUE(names.Contains("kubemaster-3"));
  EXPECT_TRUE(names.Contains("kubemaster-7"));
  EXPECT_FALSE(names.Contains("kubemaster-1"));
  EXPECT_FALSE(names.Contains("kubemaster-"));
  std::string message;
  EXPECT_EQ(
      Caught([&] { ApprovalList::Parse("ok\nbad\x7f\n", ListKind::kNames, "d"); }, &message).first,
      ExitCode::kConfig);
  EXPECT_EQ(message.rfind("d:2: ", 0), 0u) << message;
}

TEST(ApprovalList, AMissingConfiguredFileFailsClosed) {
  TempDir dir;
  std::string message;
  auto [code, reason] =
      Caught([&] { ApprovalList::Load(dir / "absent", ListKind::kKeys); }, &message);
  EXPECT_EQ(code, ExitCode::kConfig);
  EXPECT_EQ(reason, "bad-config");
  EXPECT_NE(message.find(dir / "absent"), std::string::npos) << message;
}

TEST(ListContains, ScansLikeTheSetAcrossReadBoundariesAndNamesTheBadLine) {
  TempDir dir;
  // About 300 KB: lines cross the scanner's 64 KiB reads at many places.
  std::string text = "# big list\n";
  std::vector<std::pair<std::string, std::string>> pairs;
  for (int i = 0; i < 2500; ++i) {
    std::string key = signer::Sha256Hex("k" + std::to_string(i));
    pairs.emplace_back("kubemaster-" + std::to_string(i), key);
    text += pairs.back().first + " " + key +
            (i % 3 == 0 ? "" : "  a comment, UTF-8 \xc3\xa9 allowed") + "\n";
  }
  text += "kubemaster-last " + kKeyA;  // no final newline
  WriteFile(dir / "keys", text);
  ApprovalList set = ApprovalList::Load(dir / "keys", ListKind::kKeys);
  EXPECT_EQ(set.size(), 2501u);
  for (int i : {0, 1, 577, 578, 1234, 2499}) {
    const auto& [name, key] = pairs[static_cast<std::size_t>(i)];
    EXPECT_TRUE(signer::ListContains(dir / "keys", ListKind::kKeys, name, key)) << i;
    EXPECT_TRUE(set.Contains(name, key)) << i;
    EXPECT_FALSE(signer::ListContains(dir / "keys", ListKind::kKeys, name, kKeyB)) << i;
  }
  EXPECT_TRUE(signer::ListContains(dir / "keys", ListKind::kKeys, "kubemaster-last", kKeyA));
  EXPECT_FALSE(signer::ListContains(dir / "keys", ListKind::kKeys, "kubemaster-las", kKeyA));
  // A bad line far past the first read is named by its number, by both readers.
  auto lines = testing_support::Lines(text);
  lines[2000] = "kubemaster-2000 " + kKeyA.substr(0, 63) + "g";
  std::string broken;
  for (const auto& l : lines) broken += l + "\n";
  WriteFile(dir / "keys", broken);
  std::string m1, m2;
  EXPECT_EQ(Caught(
                [&] {
                  signer::ListContains(dir / "keys", ListKind::kKeys, "kubemaster-1",
                                       pairs[1].second);
                },
                &m1)
                .second,
            "bad-config");
  EXPECT_EQ(Caught([&] { ApprovalList::Load(dir / "keys", ListKind::kKeys); }, &m2).second,
            "bad-config");
  EXPECT_EQ(m1.rfind(dir / "keys:2001: ", 0), 0u) << m1;
  EXPECT_EQ(m1, m2);
  EXPECT_EQ(Caught([&] { signer::ListContains(dir / "absent", ListKind::kNames, "x"); }).second,
            "bad-config");
}

TEST(ListContains, EightBytesAtATimeAgreesWithOneByteAtATime) {
  // Every byte value in every position of the key and of a comment word.
  for (int b = 0; b < 256; ++b) {
    for (std::size_t pos : {0u, 7u, 8u, 31u, 63u}) {
      std::string key = kKeyC;
      key[pos] = static_cast<char>(b);
      bool hex = (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f');
      EXPECT_EQ(signer::IsKeySha256(key), hex) << b << " at " << pos;
    }
    // ... and of a name, whose first eight bytes are checked as one word.
    std::string name = "kubemaster-1";
    name[3] = static_cast<char>(b);
    if (b != '\n') {
      signer::ListLine parsed;
      std::string why_name;
      std::string line = name + " " + kKeyA;  // the parsed views point into it
      bool name_ok = signer::ParseListLine(line, ListKind::kKeys, parsed, why_name);
      EXPECT_EQ(name_ok, b > ' ' && b < 0x7f) << "name byte " << b << ": " << why_name;
      if (name_ok) {
        EXPECT_EQ(parsed.name, name);
      }
    }
    std::string comment = "0123456789abcdef";
    comment[5] = static_cast<char>(b);
    if (b == '\n') continue;
    signer::ListLine out;
    std::string why;
    bool ok =
        signer::ParseListLine("kubemaster-1 " + kKeyA + " " + comment, ListKind::kKeys, out, why);
    bool expected = !(b < 0x20 && b != '\t') && b != 0x7f;
    EXPECT_EQ(ok, expected) << b << ": " << why;
  }
}

// --- the decision ------------------------------------------------------------------------------

struct Lists {
  TempDir dir;
  signer::SignerConfig config;
  Lists() {
    WriteFile(dir / "approved", "kubemaster-1 " + kKeyA + "\nkubemaster-2 " + kKeyB + "\n");
    WriteFile(dir / "denied", "kubemaster-2 " + kKeyB + "\nkubemaster-1 " + kKeyC + "\n");
    WriteFile(dir / "names", "kubemaster-3\n");
    config.approval = signer::ApprovalMode::kNewKeys;
    config.approved_keys = dir / "approved";
    config.denied_keys = dir / "denied";
    config.denied_identities = dir / "names";
    config.config_file = dir / "signer.toml";
  }
};

TEST(ApprovalGate, ApprovedPassesUnknownIsPendingDeniedIsRefused) {
  Lists l;
  ApprovalGate gate(l.config);
  EXPECT_EQ(Caught([&] { gate.CheckIdentity("kubemaster-1"); }).first, ExitCode::kOk);
  EXPECT_EQ(Caught([&] { gate.CheckKey("kubemaster-1", kKeyA); }).first, ExitCode::kOk);
  // An approved key under another name is not approved for it.
  std::string message;
  auto pending = Caught([&] { gate.CheckKey("kubemaster-4", kKeyA); }, &message);
  EXPECT_EQ(pending, std::make_pair(ExitCode::kTempFail, std::string("pending-approval")));
  EXPECT_NE(message.find(kKeyA), std::string::npos) << message;
  EXPECT_NE(message.find("etcd-signerctl --config " + (l.dir / "signer.toml") +
                         " approve kubemaster-4 " + kKeyA),
            std::string::npos)
      << message;
  // Deny wins over approval.
  EXPECT_EQ(Caught([&] { gate.CheckKey("kubemaster-2", kKeyB); }),
            std::make_pair(ExitCode::kNoPerm, std::string("key-denied")));
  EXPECT_EQ(Caught([&] { gate.CheckKey("kubemaster-1", kKeyC); }),
            std::make_pair(ExitCode::kNoPerm, std::string("key-denied")));
  EXPECT_EQ(Caught([&] { gate.CheckIdentity("kubemaster-3"); }),
            std::make_pair(ExitCode::kNoPerm, std::string("identity-denied")));
}

TEST(ApprovalGate, WithApprovalOffOnlyTheDenyListsApply) {
  Lists l;
  l.config.approval = signer::ApprovalMode::kNone;
  ApprovalGate gate(l.config);
  EXPECT_EQ(Caught([&] { gate.CheckKey("kubemaster-4", kKeyA); }).first, ExitCode::kOk);
  EXPECT_EQ(Caught([&] { gate.CheckKey("kubemaster-1", kKeyC); }).second, "key-denied");
  EXPECT_EQ(Caught([&] { gate.CheckIdentity("kubemaster-3"); }).second, "identity-denied");
  // Nothing configured: nothing is read, everything passes.
  signer::SignerConfig none;
  ApprovalGate open(none);
  EXPECT_EQ(Caught([&] { open.CheckIdentity("kubemaster-3"); }).first, ExitCode::kOk);
  EXPECT_EQ(Caught([&] { open.CheckKey("kubemaster-3", kKeyC); }).first, ExitCode::kOk);
}

TEST(ApprovalGate, AMalformedListRefusesEveryRequestAsAConfigurationError) {
  Lists l;
  WriteFile(l.dir / "approved",
            "kubemaster-1 " + kKeyA + "\nkubemaster-2 " + kKeyB.substr(2) + "\n");
  ApprovalGate gate(l.config);
  std::string message;
  EXPECT_EQ(Caught([&] { gate.CheckKey("kubemaster-1", kKeyA); }, &message).second, "bad-config");
  EXPECT_NE(message.find(l.dir / "approved:2: "), std::string::npos) << message;
}

TEST(ApprovalGate, AListOthersCanWriteIsAConfigurationError) {
  Lists l;
  ::chmod((l.dir / "names").c_str(), 0664);
  ApprovalGate gate(l.config);
  std::string message;
  EXPECT_EQ(Caught([&] { gate.CheckIdentity("kubemaster-1"); }, &message).second, "list-unsafe");
  EXPECT_NE(message.find("writable by group or others"), std::string::npos) << message;
  ::chmod((l.dir / "names").c_str(), 0640);
  EXPECT_EQ(Caught([&] { gate.CheckIdentity("kubemaster-1"); }).first, ExitCode::kOk);
}

TEST(ApprovalGate, TheApproveCommandLeavesOutTheDefaultConfig) {
  signer::SignerConfig c;
  c.config_file = signer::kDefaultConfigFile;
  EXPECT_EQ(signer::ApproveCommand(c, "kubemaster-1", kKeyA),
            "etcd-signerctl approve kubemaster-1 " + kKeyA);
  c.config_file = "/srv/signer.toml";
  EXPECT_EQ(signer::ApproveCommand(c, "kubemaster-1", kKeyA),
            "etcd-signerctl --config /srv/signer.toml approve kubemaster-1 " + kKeyA);
}

TEST(Config, ApprovalKeysAreReadAndNewKeysNeedsAnApprovalFile) {
  TempDir dir;
  WriteFile(
      dir / "a.toml",
      "key = \"pkcs11:token=t;object=k\"\nca_cert = \"/ca.pem\"\napproval = \"new-keys\"\n"
      "approved_keys = \"/etc/a\"\ndenied_keys = \"/etc/d\"\ndenied_identities = \"/etc/n\"\n");
  signer::SignerConfig c;
  signer::LoadConfigFile(dir / "a.toml", c);
  EXPECT_EQ(c.approval, signer::ApprovalMode::kNewKeys);
  EXPECT_EQ(c.approved_keys, "/etc/a");
  EXPECT_EQ(c.denied_keys, "/etc/d");
  EXPECT_EQ(c.denied_identities, "/etc/n");
  EXPECT_EQ(c.config_file, dir / "a.toml");
  EXPECT_NO_THROW(signer::ValidateConfig(c));
  c.approved_keys.clear();
  EXPECT_EQ(Caught([&] { signer::ValidateConfig(c); }).second, "bad-config");
  WriteFile(dir / "b.toml", "approval = \"all\"\n");
  signer::SignerConfig d;
  EXPECT_EQ(Caught([&] { signer::LoadConfigFile(dir / "b.toml", d); }).second, "bad-config");
  EXPECT_EQ(d.approval, signer::ApprovalMode::kNone);
}

// --- the edits ---------------------------------------------------------------------------------

TEST(ListEdits, ApproveAddsOnceKeepsCommentsAndReplaceDropsTheNamesOtherKeys) {
  TempDir dir;
  std::string path = dir / "approved";
  // A missing file is created (0644).
  auto edit = signer::AddKey(path, "kubemaster-1", kKeyA, "approved by ops", false);
  EXPECT_TRUE(edit.added);
  EXPECT_EQ(ReadFile(path), "kubemaster-1 " + kKeyA + " approved by ops\n");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  // Hand-written lines and comments survive; the mode the operator chose is kept.
  WriteFile(path, "# fleet A\n" + ReadFile(path) + "\nkubemaster-2 " + kKeyB + "\n", 0640);
  edit = signer::AddKey(path, "kubemaster-1", kKeyC, "new key", false);
  EXPECT_TRUE(edit.added);
  EXPECT_EQ(edit.removed, 0u);
  EXPECT_EQ(ReadFile(path), "# fleet A\nkubemaster-1 " + kKeyA +
                                " approved by ops\n\nkubemaster-2 " + kKeyB + "\nkubemaster-1 " +
                                kKeyC + " new key\n");
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  // Approving again changes nothing.
  std::string before = ReadFile(path);
  edit = signer::AddKey(path, "kubemaster-1", kKeyC, "again", false);
  EXPECT_FALSE(edit.added);
  EXPECT_EQ(ReadFile(path), before);
  // --replace: kubemaster-1's other key goes, kubemaster-2 stays.
  edit = signer::AddKey(path, "kubemaster-1", kKeyC, "", true);
  EXPECT_FALSE(edit.added);
  EXPECT_EQ(edit.removed, 1u);
  ApprovalList list = ApprovalList::Load(path, ListKind::kKeys);
  EXPECT_EQ(list.size(), 2u);
  EXPECT_TRUE(list.Contains("kubemaster-1", kKeyC));
  EXPECT_FALSE(list.Contains("kubemaster-1", kKeyA));
  EXPECT_TRUE(list.Contains("kubemaster-2", kKeyB));
  EXPECT_NE(ReadFile(path).find("# fleet A\n"), std::string::npos);
  // No temporary file is left behind.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 2);  // approved, approved.lock
}

TEST(ListEdits, RemoveAndNameEdits) {
  TempDir dir;
  std::string keys = dir / "keys";
  WriteFile(keys, "kubemaster-1 " + kKeyA + "\nkubemaster-1 " + kKeyB + "\n# kubemaster-1 " +
                      kKeyA + "\n");
  auto edit = signer::RemoveKey(keys, "kubemaster-1", kKeyA);
  EXPECT_EQ(edit.removed, 1u);
  EXPECT_EQ(ReadFile(keys), "kubemaster-1 " + kKeyB + "\n# kubemaster-1 " + kKeyA + "\n");
  EXPECT_EQ(signer::RemoveKey(keys, "kubemaster-1", kKeyA).removed, 0u);

  std::string names = dir / "names";
  EXPECT_TRUE(signer::AddName(names, "kubemaster-3", "stolen").added);
  EXPECT_FALSE(signer::AddName(names, "kubemaster-3", "again").added);
  EXPECT_TRUE(signer::AddName(names, "kubemaster-4", "").added);
  EXPECT_EQ(ReadFile(names), "kubemaster-3 stolen\nkubemaster-4\n");
  EXPECT_EQ(signer::RemoveName(names, "kubemaster-3").removed, 1u);
  EXPECT_EQ(ReadFile(names), "kubemaster-4\n");
  EXPECT_EQ(signer::RemoveName(names, "kubemaster-3").removed, 0u);
}

TEST(ListEdits, RefusesBadArgumentsAMalformedFileAndABusyLock) {
  TempDir dir;
  std::string keys = dir / "keys";
  EXPECT_EQ(Caught([&] { signer::AddKey(keys, "kubemaster 1", kKeyA, "", false); }).first,
            ExitCode::kUsage);
  EXPECT_EQ(Caught([&] { signer::AddKey(keys, "kubemaster-1", "SHA256:abc", "", false); }).first,
            ExitCode::kUsage);
  EXPECT_EQ(Caught([&] { signer::AddName(keys, "", ""); }).first, ExitCode::kUsage);
  EXPECT_NE(::access(keys.c_str(), F_OK), 0);  // nothing was created
  // A file the operator broke by hand is never rewritten.
  std::string broken = "kubemaster-1 " + kKeyA + "\nkubemaster-2 nothex\n";
  WriteFile(keys, broken);
  std::string message;
  EXPECT_EQ(Caught([&] { signer::AddKey(keys, "kubemaster-3", kKeyC, "", false); }, &message).first,
            ExitCode::kConfig);
  EXPECT_NE(message.find(keys + ":2: "), std::string::npos) << message;
  EXPECT_EQ(ReadFile(keys), broken);
  // A list in a directory that does not exist cannot be written: 73.
  EXPECT_EQ(Caught([&] { signer::AddName(dir / "no/such/dir/names", "kubemaster-1", ""); }),
            std::make_pair(ExitCode::kCantCreate, std::string("write-failed")));
  // Another edit holds the lock: 75, and the file is untouched.
  WriteFile(keys, "");
  base::PrivateLock held(keys + ".lock", std::chrono::milliseconds(100));
  EXPECT_EQ(Caught([&] {
              signer::AddKey(keys, "kubemaster-3", kKeyC, "", false, std::chrono::milliseconds(50));
            }),
            std::make_pair(ExitCode::kTempFail, std::string("lock-busy")));
  EXPECT_EQ(ReadFile(keys), "");
}

TEST(ListEdits, AnEditKeepsTheFilesOwner) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to own a file as another account";
  TempDir dir;
  std::string keys = dir / "keys";
  WriteFile(keys, "", 0640);
  ASSERT_EQ(::chown(keys.c_str(), 65534, 65534), 0);
  signer::AddKey(keys, "kubemaster-1", kKeyA, "", false);
  struct stat st {};
  ASSERT_EQ(::stat(keys.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);
  EXPECT_EQ(st.st_gid, 65534u);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

// --- the audit views ---------------------------------------------------------------------------

signer::AuditEntry Entry(const std::string& outcome, const std::string& cn, const std::string& key,
                         const std::string& time, const std::string& peer = "10.0.0.1 1") {
  signer::AuditRecord r;
  r.time = time;
  r.outcome = outcome;
  r.verb = "sign";
  r.common_name = cn;
  r.identity = cn;
  r.ssh_peer = peer;
  r.public_key_sha256 = key;
  r.seq = 1;
  r.prev = std::string(64, '0');
  auto e = signer::ParseAuditEntry(signer::ToJson(r));
  EXPECT_TRUE(e.has_value());
  return *e;
}

TEST(Pending, OneRowPerNameAndKeyWithFirstLastCountAndPeer) {
  signer::PendingSummary s;
  s.Add(Entry("pending", "kubemaster-2", kKeyB, "2026-11-27T10:00:00Z", "10.0.0.2 1"));
  s.Add(Entry("pending", "kubemaster-1", kKeyA, "2026-11-27T09:00:00Z", "10.0.0.1 1"));
  s.Add(Entry("issued", "kubemaster-1", kKeyC, "2026-11-27T09:30:00Z"));
  s.Add(Entry("refused", "kubemaster-1", kKeyC, "2026-11-27T09:31:00Z"));
  s.Add(Entry("pending", "kubemaster-1", kKeyA, "2026-11-27T11:00:00Z", "10.0.0.9 2"));
  auto keys = s.Keys();
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].name, "kubemaster-1");
  EXPECT_EQ(keys[0].key_sha256, kKeyA);
  EXPECT_EQ(keys[0].count, 2u);
  EXPECT_EQ(base::FormatRfc3339(keys[0].first_seen), "2026-11-27T09:00:00Z");
  EXPECT_EQ(base::FormatRfc3339(keys[0].last_seen), "2026-11-27T11:00:00Z");
  EXPECT_EQ(keys[0].last_peer, "10.0.0.9 2");
  EXPECT_EQ(keys[1].name, "kubemaster-2");
  std::string table = signer::FormatPending(keys);
  EXPECT_NE(table.find("kubemaster-1 "), std::string::npos);
  EXPECT_NE(table.find(kKeyA), std::string::npos);  // whole, to be copied into `approve`
  EXPECT_EQ(testing_support::Lines(table).size(), 3u);
}

TEST(Serials, TheFormOpensslPrintsAfterSerialEquals) {
  EXPECT_EQ(signer::CrlSerial("428eba22f1c09d3e0f4fad"), "428EBA22F1C09D3E0F4FAD");
  EXPECT_EQ(signer::CrlSerial("abc"), "0ABC");
  EXPECT_FALSE(signer::CrlSerial(""));
  EXPECT_FALSE(signer::CrlSerial("42:8e"));
  EXPECT_FALSE(signer::CrlSerial("-42"));
}

}  // namespace
