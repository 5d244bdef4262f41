// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "base/failure.h"
#include "base/files.h"
#include "pki/certificate_profile.h"
#include "requester/config.h"
#include "requester/key_store.h"
#include "requester/renewal.h"
#include "requester/requester.h"
#include "test_support.h"

namespace {

using namespace std::chrono_literals;
using requester::Backoff;
using requester::CertificateState;
using requester::RenewalSchedule;
using testing_support::TempDir;

const pki::TimePoint kT0 = std::chrono::system_clock::from_time_t(1800000000);

TEST(RenewalSchedule, JitterSpansSeventyToNinetyPercent) {
  RenewalSchedule s;
  auto nb = kT0, na = kT0 + 100h;
  EXPECT_EQ(s.RenewAt(nb, na, 0.0), kT0 + 70h);
  EXPECT_EQ(s.RenewAt(nb, na, 0.5), kT0 + 80h);
  EXPECT_EQ(s.RenewAt(nb, na, 1.0), kT0 + 90h);
  EXPECT_EQ(s.RenewAt(nb, na, -3.0), kT0 + 70h);  // out-of-range draws are clamped
  EXPECT_EQ(s.RenewAt(nb, na, 7.0), kT0 + 90h);
}

TEST(RenewalSchedule, StableUniformIsStablePerSerialAndSpread) {
  double a = RenewalSchedule::StableUniform("00aa11bb");
  EXPECT_EQ(a, RenewalSchedule::StableUniform("00aa11bb"));
  EXPECT_NE(a, RenewalSchedule::StableUniform("00aa11bc"));
  double lo = 1, hi = 0;
  for (int i = 0; i < 1000; ++i) {
    double u = RenewalSchedule::StableUniform(std::to_string(i));
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    lo = std::min(lo, u);
    hi = std::max(hi, u);
  }
  EXPECT_LT(lo, 0.05);
  EXPECT_GT(hi, 0.95);
}

TEST(Backoff, ExponentialWithJitterBetweenOneSecondAndFiveMinutes) {
  double u = 1.0;
  Backoff b(1s, 300s, [&] { return u; });
  EXPECT_EQ(b.Next(), 1000ms);  // base 1 s
  EXPECT_EQ(b.Next(), 2000ms);
  EXPECT_EQ(b.Next(), 4000ms);
  EXPECT_EQ(b.failures(), 3);
  u = 0.0;
  EXPECT_EQ(b.Next(), 4000ms);  // base 8 s, lowest draw = half
  for (int i = 0; i < 6; ++i) b.Next();  // 16 s … 512 s: past the cap
  for (int i = 0; i < 100; ++i) {
    u = (i % 2) ? 1.0 : 0.0;
    auto w = b.Next();
    EXPECT_LE(w, 300000ms);
    EXPECT_GE(w, 150000ms);  // at the cap the jitter stays in [cap/2, cap]
  }
  b.Reset();
  u = 0.0;
  EXPECT_EQ(b.Next(), 1000ms);  // never below 1 s
}

// Writes a certificate for `name` valid [nb, na) signed by a throwaway CA.
void WriteCert(const std::string& path, const std::string& name, pki::TimePoint nb, pki::TimePoint na) {
  pki::EvpPkeyPtr ca_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  pki::CaCertificateFields cf{"CN=test CA", ca_key.get(), pki::RandomSerial(), nb - 1h, na + 1h};
  pki::X509Ptr ca = pki::BuildCaCertificate(cf);
  pki::SignCertificate(ca.get(), ca_key.get());
  pki::EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  pki::LeafCertificateFields f{name, key.get(), pki::RandomSerial(), nb, na};
  pki::X509Ptr cert = pki::BuildLeafCertificate(f, ca.get());
  pki::SignCertificate(cert.get(), ca_key.get());
  testing_support::WriteFile(path, pki::ToPem(cert.get()));
}

TEST(ClockSkew, ComparesMidpointsSoASlowRoundTripIsNotMistakenForSkew) {
  using requester::ClockSkew;
  using requester::DescribeSkew;
  // This host an hour behind; the answer took a second and crossed a second boundary: the
  // signer said :01 (read at :01.2 on its clock), we sent at :00.7 and received at :01.7 on ours.
  auto skew = ClockSkew(kT0 + 700ms, kT0 + 1700ms, kT0 + 3601s);
  EXPECT_EQ(skew, -3600300ms);
  EXPECT_EQ(DescribeSkew(skew), "1h behind");
  // Same clocks, a fast answer within one second.
  skew = ClockSkew(kT0 + 100ms, kT0 + 500ms, kT0);
  EXPECT_EQ(skew, -200ms);
  EXPECT_EQ(DescribeSkew(skew), "0s ahead of");
  // Ahead by 9m12s: seconds still shown below ten minutes.
  skew = ClockSkew(kT0 + 552s, kT0 + 552s + 1000ms, kT0);
  EXPECT_EQ(DescribeSkew(skew), "9m12s ahead of");
  // From ten minutes up, whole minutes.
  EXPECT_EQ(DescribeSkew(-3569s), "59m behind");
  EXPECT_EQ(DescribeSkew(599600ms), "10m ahead of");
  EXPECT_EQ(DescribeSkew(-86400s - 40s), "1d1m behind");
}

TEST(InspectCertificate, StatesFromMissingToFresh) {
  TempDir dir;
  requester::RequesterConfig c;
  c.name = "kubemaster-1";
  c.cert = dir / "cert.pem";
  EXPECT_EQ(requester::InspectCertificate(c, kT0).state, CertificateState::kMissing);
  testing_support::WriteFile(c.cert, "garbage");
  EXPECT_EQ(requester::InspectCertificate(c, kT0).state, CertificateState::kUnreadable);
  WriteCert(c.cert, "kubemaster-1", kT0, kT0 + 100h);
  auto s = requester::InspectCertificate(c, kT0 + 1h);
  EXPECT_EQ(s.state, CertificateState::kFresh);
  EXPECT_GE(s.renew_at, kT0 + 70h);
  EXPECT_LE(s.renew_at, kT0 + 90h);
  EXPECT_EQ(requester::InspectCertificate(c, s.renew_at - 1s).state, CertificateState::kFresh);
  EXPECT_EQ(requester::InspectCertificate(c, s.renew_at).state, CertificateState::kDue);
  EXPECT_EQ(requester::InspectCertificate(c, kT0 + 100h).state, CertificateState::kExpired);
  WriteCert(c.cert, "kubemaster-2", kT0, kT0 + 100h);
  auto other = requester::InspectCertificate(c, kT0 + 1h);
  EXPECT_EQ(other.state, CertificateState::kUnreadable);
  EXPECT_NE(other.detail.find("kubemaster-2"), std::string::npos);
}

TEST(AtomicStore, CrashBetweenFsyncAndRenameKeepsTheOldFile) {
  TempDir dir;
  std::string path = dir / "cert.pem";
  testing_support::WriteFile(path, "old certificate\n");
  base::AtomicFileWriter writer(path);
  writer.set_fault_hook([](const std::string&) { throw std::runtime_error("simulated crash"); });
  EXPECT_THROW(writer.Write("new certificate\n"), std::runtime_error);
  EXPECT_EQ(testing_support::ReadFile(path), "old certificate\n");
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);  // no temp file left behind
  base::AtomicFileWriter(path).Write("new certificate\n");
  EXPECT_EQ(testing_support::ReadFile(path), "new certificate\n");
}

TEST(FileKeyStore, CreatesOnce0600AndRefusesUnsafeFiles) {
  TempDir dir;
  requester::RequesterConfig c;
  c.key_file = dir / "key.pem";
  {
    auto store = requester::MakeKeyStore(c);
    try {
      store->Open(false);
      ADD_FAILURE() << "opened a missing key";
    } catch (const base::Failure& f) {
      EXPECT_EQ(f.reason(), "key-missing");
    }
  }
  std::string first;
  {
    auto store = requester::MakeKeyStore(c);
    EXPECT_TRUE(store->Open(true));
    first = pki::PublicKeySha256(store->public_key());
  }
  struct stat st {};
  ASSERT_EQ(::stat(c.key_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  {
    auto store = requester::MakeKeyStore(c);
    EXPECT_FALSE(store->Open(true));  // reused, not regenerated
    EXPECT_EQ(pki::PublicKeySha256(store->public_key()), first);
  }
  ::chmod(c.key_file.c_str(), 0644);
  try {
    requester::MakeKeyStore(c)->Open(true);
    ADD_FAILURE() << "accepted a 0644 key";
  } catch (const base::Failure& f) {
    EXPECT_EQ(f.reason(), "key-file-unsafe");
  }
  ::chmod(c.key_file.c_str(), 0600);
  requester::RequesterConfig link = c;
  link.key_file = dir / "link.pem";
  ASSERT_EQ(::symlink(c.key_file.c_str(), link.key_file.c_str()), 0);
  try {
    requester::MakeKeyStore(link)->Open(true);
    ADD_FAILURE() << "followed a symlink";
  } catch (const base::Failure& f) {
    EXPECT_EQ(f.reason(), "key-file-unsafe");
  }
}

TEST(Config, ServerNamesAndRequiredSettings) {
  auto s = requester::ParseServer("signer@host.example:2222");
  EXPECT_EQ(s.user, "signer");
  EXPECT_EQ(s.host, "host.example");
  EXPECT_EQ(s.port, 2222);
  EXPECT_EQ(requester::ParseServer("u@h").port, 22);
  auto v6 = requester::ParseServer("u@[::1]:2200");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, 2200);
  for (const char* bad : {"host", "@host", "u@", "u@h:0", "u@h:70000", "u@h:abc", "u@h:", "u w@h", "u@h'x"}) {
    EXPECT_THROW(requester::ParseServer(bad), base::Failure) << bad;
  }
  requester::RequesterConfig c;
  c.name = "kubemaster-1";
  c.cert = "/c.pem";
  c.key_file = "/k.pem";
  c.servers = {"u@h"};
  EXPECT_THROW(requester::ValidateConfig(c, true), base::Failure);  // no known_hosts
  c.known_hosts = "/kh";
  EXPECT_NO_THROW(requester::ValidateConfig(c, true));
  c.key_uri = "pkcs11:token=a;object=b";
  EXPECT_THROW(requester::ValidateConfig(c, true), base::Failure);  // both key kinds
  c.key_file.clear();
  c.key_uri.clear();
  EXPECT_THROW(requester::ValidateConfig(c, true), base::Failure);  // neither
}

TEST(Config, TomlFileCarriesTheFlags) {
  TempDir dir;
  testing_support::WriteFile(dir / "r.toml",
                             "name = \"kubemaster-4\"\nserver = \"s@h:2\"\nknown_hosts = \"/kh\"\nkey_file = \"/k\"\n"
                             "cert = \"/c\"\nlifetime = \"2h\"\nio_timeout = 7\npost_renew_hook = [\"/bin/true\", \"x\"]\n");
  requester::RequesterConfig c;
  requester::LoadConfigFile(dir / "r.toml", c);
  EXPECT_EQ(c.name, "kubemaster-4");
  EXPECT_EQ(c.lifetime, 2h);
  EXPECT_EQ(c.io_timeout, 7s);
  EXPECT_EQ(c.post_renew_hook, (std::vector<std::string>{"/bin/true", "x"}));
  testing_support::WriteFile(dir / "bad.toml", "nmae = \"typo\"\n");
  EXPECT_THROW(requester::LoadConfigFile(dir / "bad.toml", c), base::Failure);
}

TEST(Status, JsonAndPrometheusCarryExpiryAndFailures) {
  TempDir dir;
  requester::RequesterConfig c;
  c.name = "kubemaster-1";
  c.cert = dir / "cert.pem";
  c.key_file = dir / "k.pem";
  auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  WriteCert(c.cert, "kubemaster-1", now - 1h, now + 23h);
  requester::RequesterState state;
  state.last_success = base::FormatRfc3339(now - 1h);
  state.consecutive_failures = 3;
  state.last_error = "connect-failed: down";
  requester::SaveState(c.StateFile(), state);
  auto j = nlohmann::json::parse(requester::RenderStatus(c, now, requester::StatusFormat::kJson));
  EXPECT_EQ(j["seconds_left"], 23 * 3600);
  EXPECT_EQ(j["consecutive_failures"], 3);
  EXPECT_EQ(j["state"], "fresh");
  std::string prom = requester::RenderStatus(c, now, requester::StatusFormat::kPrometheus);
  EXPECT_NE(prom.find("etcd_requester_consecutive_failures{name=\"kubemaster-1\"} 3\n"), std::string::npos) << prom;
  EXPECT_NE(prom.find("etcd_requester_certificate_seconds_left{name=\"kubemaster-1\"} 82800\n"), std::string::npos);
  EXPECT_NE(prom.find("etcd_requester_certificate_valid{name=\"kubemaster-1\"} 1\n"), std::string::npos);
  std::string human = requester::RenderStatus(c, now, requester::StatusFormat::kHuman);
  EXPECT_NE(human.find("failures        3 (last: connect-failed: down)"), std::string::npos) << human;
}

}  // namespace
