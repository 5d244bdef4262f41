// SPDX-License-Identifier: Apache-2.0
// #26: the request word --profile, the [members.NAME] tables and the role rule, as pure pieces.
#include <gtest/gtest.h>

#include "base/failure.h"
#include "pki/csr.h"
#include "pki/key.h"
#include "signer/config.h"
#include "signer/issuance.h"
#include "signer/policy.h"
#include "signer/request_line.h"
#include "test_support.h"

namespace {

using namespace std::chrono_literals;
using base::ExitCode;
using base::Failure;
using testing_support::Reason;

std::pair<ExitCode, std::string> Caught(const std::function<void()>& f) {
  try {
    f();
  } catch (const Failure& e) {
    return {e.code(), e.reason()};
  }
  return {ExitCode::kOk, ""};
}

TEST(MemberRequestLine, ProfileIsAWordOfSignOnly) {
  EXPECT_EQ(signer::ParseRequestLine("sign").profile, pki::LeafProfile::kClient);
  EXPECT_EQ(signer::ParseRequestLine("sign --profile etcd-server").profile, pki::LeafProfile::kServer);
  EXPECT_EQ(signer::ParseRequestLine("sign --profile=etcd-peer --lifetime 1h").profile, pki::LeafProfile::kPeer);
  EXPECT_EQ(signer::ParseRequestLine("sign --profile etcd-client").profile, pki::LeafProfile::kClient);
  struct Case {
    const char* line;
    const char* reason;
  };
  for (const Case& c : std::vector<Case>{{"sign --profile etcd-admin", "unknown-profile"},
                                         {"sign --profile", "bad-request"},
                                         {"sign --profile etcd-server --profile etcd-peer", "bad-request"},
                                         {"sign --format k8s --profile etcd-server", "bad-request"},
                                         {"ca --profile etcd-server", "bad-request"}}) {
    auto [code, reason] = Caught([&] { signer::ParseRequestLine(c.line); });
    EXPECT_EQ(code, ExitCode::kUsage) << c.line;
    EXPECT_EQ(reason, c.reason) << c.line;
  }
}

class MemberConfig : public ::testing::Test {
 protected:
  signer::SignerConfig Load(const std::string& toml) {
    testing_support::WriteFile(dir_ / "signer.toml", "key = \"pkcs11:object=ca-key\"\nca_cert = \"/ca.pem\"\n" + toml);
    signer::SignerConfig c;
    signer::LoadConfigFile(dir_ / "signer.toml", c);
    signer::ValidateConfig(c);
    return c;
  }
  testing_support::TempDir dir_;
};

TEST_F(MemberConfig, TablesOfDnsNamesAndAddresses) {
  signer::SignerConfig c = Load(
      "[members.etcd-1]\ndns = [\"etcd-1\", \"etcd-1.cluster.example\"]\nip = [\"10.0.0.1\", \"fd00::1\"]\n"
      "[members.etcd-2]\nip = [\"10.0.0.2\"]\n");
  ASSERT_EQ(c.members.size(), 2u);
  EXPECT_EQ(c.members["etcd-1"].dns, (std::vector<std::string>{"etcd-1", "etcd-1.cluster.example"}));
  EXPECT_EQ(c.members["etcd-1"].ip, (std::vector<std::string>{"10.0.0.1", "fd00::1"}));
  EXPECT_TRUE(c.members["etcd-2"].dns.empty());
  for (const char* bad : {
           "[members.etcd-1]\n",                                      // no names at all
           "[members.etcd-1]\ndns = [\"*.example\"]\n",               // a wildcard
           "[members.etcd-1]\ndns = [\"a,DNS:evil\"]\n",              // a second name smuggled in
           "[members.etcd-1]\nip = [\"10.0.0.300\"]\n",
           "[members.etcd-1]\ndns = \"etcd-1\"\n",                    // not an array
           "[members.etcd-1]\nuri = [\"spiffe://x\"]\n",              // unknown key
           "[members.Etcd-1]\ndns = [\"etcd-1\"]\n",                  // a name no CN check would match
           "[members.kubemaster-1]\ndns = [\"kubemaster-1\"]\n",      // a master's name: roles overlap
           "members = 1\n",
       }) {
    EXPECT_EQ(Reason([&] { Load(bad); }), "bad-config") << bad;
  }
}

TEST_F(MemberConfig, EachRoleItsOwnProfilesAndNamesFromTheSignerOnly) {
  signer::SignerConfig c = Load("[members.etcd-1]\ndns = [\"etcd-1\"]\nip = [\"127.0.0.1\"]\n");
  using P = pki::LeafProfile;
  struct Case {
    const char* identity;
    const char* cn;
    P profile;
    const char* reason;  // "" = allowed
  };
  std::vector<Case> cases{
      {"etcd-1", "etcd-1", P::kServer, ""},
      {"etcd-1", "etcd-1", P::kPeer, ""},
      {"kubemaster-1", "kubemaster-1", P::kClient, ""},
      {"", "kubemaster-7", P::kClient, ""},
      {"etcd-1", "etcd-1", P::kClient, "profile-not-allowed"},
      {"kubemaster-1", "kubemaster-1", P::kServer, "profile-not-allowed"},
      {"kubemaster-1", "kubemaster-1", P::kPeer, "profile-not-allowed"},
      {"etcd-9", "etcd-9", P::kServer, "member-unknown"},
      {"", "etcd-1", P::kServer, "member-identity-required"},
      {"", "etcd-1", P::kClient, "profile-not-allowed"},
      {"etcd-1", "etcd-2", P::kPeer, "identity-mismatch"},
  };
  for (const Case& k : cases) {
    signer::SignerConfig bound = c;
    bound.identity = k.identity;
    auto [code, reason] = Caught([&] { signer::CheckRole(k.cn, k.profile, bound); });
    EXPECT_EQ(reason, k.reason) << k.identity << " " << k.cn << " " << pki::ProfileName(k.profile);
    if (*k.reason) {
      EXPECT_EQ(code, ExitCode::kNoPerm) << k.reason;
    }
  }
  signer::SignerConfig bound = c;
  bound.identity = "etcd-1";
  EXPECT_EQ(signer::CheckRole("etcd-1", P::kServer, bound), c.members["etcd-1"]);

  // Through the whole policy: the approval carries the configured names, and the certificate built
  // from it is exactly the profile with them, whatever the CSR said.
  pki::EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  pki::X509ReqPtr req = pki::BuildCsr("etcd-1", key.get());
  signer::RequestFacts facts;
  signer::Approval approval = signer::ApplyPolicy(req.get(), std::nullopt, bound, facts, P::kPeer);
  EXPECT_EQ(approval.profile, P::kPeer);
  EXPECT_EQ(approval.names, c.members["etcd-1"]);
  pki::EvpPkeyPtr ca_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  pki::CaCertificateFields cf{"CN=etcd-ca", ca_key.get(), pki::RandomSerial(), now - 1h, now + 48h};
  pki::X509Ptr ca = pki::BuildCaCertificate(cf);
  pki::SignCertificate(ca.get(), ca_key.get());
  signer::Validity validity{now - 5min, now + 24h};
  pki::X509Ptr cert = signer::IssueCertificate(approval, ca.get(), ca_key.get(), validity, pki::RandomSerial());
  EXPECT_EQ(pki::CarriedSubjectAltNames(cert.get()), c.members["etcd-1"]);
  // A master's approval never carries names.
  signer::SignerConfig master = c;
  master.identity = "kubemaster-1";
  pki::X509ReqPtr master_req = pki::BuildCsr("kubemaster-1", key.get());
  signer::RequestFacts master_facts;
  EXPECT_TRUE(signer::ApplyPolicy(master_req.get(), std::nullopt, master, master_facts).names.empty());
}

}  // namespace
