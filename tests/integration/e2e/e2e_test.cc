// SPDX-License-Identifier: Apache-2.0
// The whole product against a real etcd: SoftHSM CA made with etcd-hsm → sshd with the signer as a
// forced command → etcd-requester → etcd with --client-cert-auth → etcdctl.
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <signal.h>
#include <sys/wait.h>

#include <cstdlib>
#include <thread>

#include "base/files.h"
#include "etcd_fixture.h"
#include "hsm/session.h"
#include "pki/certificate_profile.h"
#include "test_support.h"

namespace {

using namespace testing_support;
using namespace std::chrono_literals;

class EndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    token_ = std::make_unique<CaToken>(dir_ / "ca-token");
    ssh_ = std::make_unique<SshServer>(dir_.path());
    etcd_ = std::make_unique<EtcdServer>(dir_.path());
    WriteSignerConfig(token_->key_uri, token_->ca_cert, token_->ca_cert);
    ssh_key_ = ssh_->NewClientKey("kubemaster-1-ssh");
    ssh_->Authorize(ssh_key_, "SOFTHSM2_CONF=" + token_->conf + " " + Binary("etcd-signer") +
                                  " --config " + (dir_ / "signer.toml") + " --identity kubemaster-1 sign");
    ssh_->Start();
  }

  void WriteSignerConfig(const std::string& key_uri, const std::string& ca_cert,
                         const std::string& ca_bundle, const std::string& extra = "") {
    WriteFile(dir_ / "signer.toml",
              "module = \"" + std::string(kSoftHsmModule) + "\"\nkey = \"" + key_uri +
                  "\"\npin_file = \"" + token_->pin_file + "\"\nca_cert = \"" + ca_cert +
                  "\"\nca_bundle = \"" + ca_bundle + "\"\naudit_log = \"" + (dir_ / "audit.log") +
                  "\"\nlock_file = \"" + (dir_ / "token.lock") + "\"\nsyslog = false\n" + extra);
  }

  std::vector<std::string> RequesterArgs(const std::string& verb) {
    return {Binary("etcd-requester"), verb, "--name", "kubemaster-1", "--server",
            ssh_->user() + "@127.0.0.1:" + std::to_string(ssh_->port()), "--ssh-key", ssh_key_,
            "--known-hosts", ssh_->known_hosts(), "--key-file", dir_ / "client.key", "--cert",
            dir_ / "client.pem", "--ca-bundle", dir_ / "ca-bundle.pem", "--ca-sha256", RootSha256(token_->ca_cert)};
  }

  RunResult Requester(const std::string& verb, std::vector<std::string> extra = {}) {
    auto args = RequesterArgs(verb);
    args.insert(args.end(), extra.begin(), extra.end());
    return testing_support::Run(args, {.timeout = 60s});
  }

  // Signs a client certificate with the token's CA key in-process, with any validity and EKU:
  // the certificates the signer itself would never issue.
  void MintWithTokenCa(const std::string& key_uri_object, const std::string& ca_cert_path,
                       pki::TimePoint not_before, pki::TimePoint not_after, bool client_auth,
                       const std::string& cert_out, const std::string& key_out) {
    ::setenv("SOFTHSM2_CONF", token_->conf.c_str(), 1);
    pki::EvpPkeyPtr leaf_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    pki::X509Ptr ca = pki::ReadCertificateFile(ca_cert_path);
    pki::LeafCertificateFields fields{"kubemaster-1", leaf_key.get(), pki::RandomSerial(), not_before, not_after};
    pki::X509Ptr cert = pki::BuildLeafCertificate(fields, ca.get());
    if (!client_auth) {
      X509_EXTENSION_free(X509_delete_ext(cert.get(), X509_get_ext_by_NID(cert.get(), NID_ext_key_usage, -1)));
      X509V3_CTX ctx;
      X509V3_set_ctx_nodb(&ctx);
      X509V3_set_ctx(&ctx, ca.get(), cert.get(), nullptr, nullptr, 0);
      pki::X509ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, NID_ext_key_usage, "serverAuth"));
      X509_add_ext(cert.get(), ext.get(), -1);
    }
    {
      hsm::Module module(kSoftHsmModule);
      hsm::Session session(module, hsm::TokenSelector{std::string("etcd-ca"), std::nullopt}, false);
      session.Login(base::ReadSecretFile(token_->pin_file));
      hsm::TokenKey key = session.FindPrivateKey(key_uri_object, std::nullopt);
      pki::SignCertificate(cert.get(), key.private_key.get());
    }
    WriteFile(cert_out, pki::ToPem(cert.get()));
    pki::BioPtr bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_PrivateKey(bio.get(), leaf_key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    WriteFile(key_out, std::string(data, static_cast<std::size_t>(len)), 0600);
  }

  RunResult Put(const std::string& cert, const std::string& key, const std::string& value) {
    return etcd_->Ctl(cert, key, {"put", "/e2e/key", value});
  }

  TempDir dir_;
  std::unique_ptr<CaToken> token_;
  std::unique_ptr<SshServer> ssh_;
  std::unique_ptr<EtcdServer> etcd_;
  std::string ssh_key_;
};

// #11: "accepted" means "works": for every key the policy accepts, and for a compressed point,
// the signer's certificate is used by etcdctl (Go's TLS stack) against etcd --client-cert-auth.
TEST_F(EndToEnd, EveryAcceptedKeyTypeAndEncodingWorksWithEtcdctl) {
  etcd_->Start(token_->ca_cert);
  struct KeyCase {
    std::string name;
    std::vector<std::string> genpkey;
    bool compressed = false;
  };
  std::vector<KeyCase> cases{
      {"ec-p256", {"-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"}},
      {"ec-p384", {"-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"}},
      {"rsa-2048", {"-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"}},
      {"rsa-3072", {"-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"}},
      {"rsa-4096", {"-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096"}},
      {"ec-p256-compressed", {"-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"}, true},
      {"ec-p384-compressed", {"-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"}, true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::string key = dir_ / (c.name + ".key");
    std::vector<std::string> gen{"genpkey", "-out", key};
    gen.insert(gen.end(), c.genpkey.begin(), c.genpkey.end());
    ASSERT_EQ(OpenSsl(gen).exit_code, 0);
    std::string csr_key = key;
    if (c.compressed) {  // the same key, its public point sent compressed in the CSR
      csr_key = dir_ / (c.name + ".compressed.key");
      ASSERT_EQ(OpenSsl({"ec", "-in", key, "-conv_form", "compressed", "-out", csr_key}).exit_code, 0);
    }
    RunResult csr = OpenSsl({"req", "-new", "-key", csr_key, "-subj", "/CN=kubemaster-1"});
    ASSERT_EQ(csr.exit_code, 0) << csr.err;
    RunResult issued = testing_support::Run(
        {Binary("etcd-signer"), "--config", dir_ / "signer.toml", "--lock-file", dir_ / "local-token.lock",
         "--audit-log", dir_ / "local-audit.log", "--identity", "kubemaster-1", "sign"},
        {.input = OpenSsl({"base64"}, csr.out).out, .env = token_->env()});
    ASSERT_EQ(issued.exit_code, 0) << issued.err;
    std::string cert = dir_ / (c.name + ".pem");
    WriteFile(cert, issued.out);
    if (c.compressed) {
      RunResult text = OpenSsl({"x509", "-in", cert, "-noout", "-text"});
      EXPECT_NE(text.out.find("pub:\n                    04:"), std::string::npos) << text.out;  // uncompressed
    }
    RunResult put = etcd_->Ctl(cert, key, {"put", "/e2e/" + c.name, c.name});
    ASSERT_EQ(put.exit_code, 0) << put.err;
    RunResult get = etcd_->Ctl(cert, key, {"get", "/e2e/" + c.name, "--print-value-only"});
    EXPECT_EQ(get.out, c.name + "\n") << get.err;
  }
}

TEST_F(EndToEnd, RequestedCertificateWorksWithEtcdClientCertAuth) {
  RunResult r = Requester("request");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  etcd_->Start(token_->ca_cert);
  RunResult put = Put(dir_ / "client.pem", dir_ / "client.key", "hello from kubemaster-1");
  ASSERT_EQ(put.exit_code, 0) << put.err;
  RunResult get = etcd_->Ctl(dir_ / "client.pem", dir_ / "client.key", {"get", "/e2e/key", "--print-value-only"});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  EXPECT_EQ(get.out, "hello from kubemaster-1\n");
}

TEST_F(EndToEnd, EtcdRefusesForeignExpiredAndNonClientCertificates) {
  etcd_->Start(token_->ca_cert);
  // Another CA's certificate, otherwise perfect.
  ASSERT_EQ(OpenSsl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-keyout", dir_ / "rogue-ca.key", "-out", dir_ / "rogue-ca.pem", "-days", "2",
                     "-subj", "/CN=etcd-ca"}).exit_code, 0);
  ASSERT_EQ(OpenSsl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-keyout", dir_ / "rogue.key", "-out", dir_ / "rogue.csr", "-subj", "/CN=kubemaster-1"}).exit_code, 0);
  WriteFile(dir_ / "client.ext", "extendedKeyUsage=clientAuth\n");
  ASSERT_EQ(OpenSsl({"x509", "-req", "-in", dir_ / "rogue.csr", "-CA", dir_ / "rogue-ca.pem", "-CAkey",
                     dir_ / "rogue-ca.key", "-CAcreateserial", "-days", "1", "-extfile", dir_ / "client.ext",
                     "-out", dir_ / "rogue.pem"}).exit_code, 0);
  RunResult rogue = Put(dir_ / "rogue.pem", dir_ / "rogue.key", "x");
  EXPECT_NE(rogue.exit_code, 0);

  auto now = std::chrono::system_clock::now();
  MintWithTokenCa("ca-key", token_->ca_cert, now - 2h, now - 1h, true, dir_ / "expired.pem", dir_ / "expired.key");
  RunResult expired = Put(dir_ / "expired.pem", dir_ / "expired.key", "x");
  EXPECT_NE(expired.exit_code, 0);

  MintWithTokenCa("ca-key", token_->ca_cert, now - 1h, now + 1h, false, dir_ / "server-only.pem", dir_ / "server-only.key");
  RunResult no_client_auth = Put(dir_ / "server-only.pem", dir_ / "server-only.key", "x");
  EXPECT_NE(no_client_auth.exit_code, 0);

  // The control: the same CA key with a valid window and clientAuth is accepted, so the three
  // refusals above are about what differs.
  MintWithTokenCa("ca-key", token_->ca_cert, now - 1h, now + 1h, true, dir_ / "good.pem", dir_ / "good.key");
  RunResult good = Put(dir_ / "good.pem", dir_ / "good.key", "x");
  EXPECT_EQ(good.exit_code, 0) << good.err;
}

TEST_F(EndToEnd, CaRotationWithOverlapThenRetirement) {
  ASSERT_EQ(Requester("request").exit_code, 0);
  ASSERT_EQ(testing_support::Run({Binary("etcd-hsm"), "keygen", "--module", kSoftHsmModule, "--token", "etcd-ca",
                 "--pin-file", token_->pin_file, "--label", "ca-key-2", "--type", "ec-p256"},
                {.env = token_->env()}).exit_code, 0);
  std::string new_uri = "pkcs11:token=etcd-ca;object=ca-key-2;type=private";
  RunResult created = testing_support::Run({Binary("etcd-hsm"), "ca", "create", "--module", kSoftHsmModule, "--key", new_uri,
                           "--pin-file", token_->pin_file, "--subject", "CN=etcd-ca 2", "--days", "30",
                           "--out", dir_ / "ca2.pem"}, {.env = token_->env()});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  GiveToSigner(token_->dir);  // the new key's objects were made by root
  RunResult bundle = testing_support::Run({Binary("etcd-hsm"), "ca", "bundle", dir_ / "ca2.pem", token_->ca_cert, "--out",
                          dir_ / "bundle.pem"});
  ASSERT_EQ(bundle.exit_code, 0) << bundle.err;

  // Overlap: etcd trusts both; the old certificate still works.
  etcd_->Start(dir_ / "bundle.pem");
  std::string old_cert = ReadFile(dir_ / "client.pem");
  WriteFile(dir_ / "old.pem", old_cert);
  ASSERT_EQ(Put(dir_ / "old.pem", dir_ / "client.key", "old CA").exit_code, 0);

  // The signer switches to the new CA and serves the bundle. What the signer says never replaces
  // the requester's roots by itself (#24): `ca` shows the old and new fingerprints and changes
  // nothing; the operator accepts the new root by its fingerprint.
  WriteSignerConfig(new_uri, dir_ / "ca2.pem", dir_ / "bundle.pem");
  const std::string installed = ReadFile(dir_ / "ca-bundle.pem");
  RunResult changed = Requester("ca");
  EXPECT_EQ(changed.exit_code, 65) << changed.err;
  EXPECT_NE(changed.err.find("etcd-requester: ca-changed: "), std::string::npos) << changed.err;
  EXPECT_EQ(ReadFile(dir_ / "ca-bundle.pem"), installed);
  RunResult ca = Requester("ca", {"--accept-sha256", RootSha256(dir_ / "ca2.pem")});
  ASSERT_EQ(ca.exit_code, 0) << ca.err;
  // The new root first, then the installed root the signer still lists (the overlap).
  EXPECT_EQ(ReadFile(dir_ / "ca-bundle.pem"), ReadFile(dir_ / "ca2.pem") + installed);
  RunResult renewed = Requester("renew", {"--force"});
  ASSERT_EQ(renewed.exit_code, 0) << renewed.err;
  RunResult issuer = OpenSsl({"x509", "-in", dir_ / "client.pem", "-noout", "-issuer"});
  EXPECT_NE(issuer.out.find("etcd-ca 2"), std::string::npos) << issuer.out;
  ASSERT_EQ(Put(dir_ / "client.pem", dir_ / "client.key", "new CA").exit_code, 0);
  ASSERT_EQ(Put(dir_ / "old.pem", dir_ / "client.key", "old CA, overlap").exit_code, 0);

  // Retirement: etcd trusts only the new CA; the old certificate is refused, the new one works.
  etcd_->Start(dir_ / "ca2.pem");
  EXPECT_NE(Put(dir_ / "old.pem", dir_ / "client.key", "old CA, retired").exit_code, 0);
  EXPECT_EQ(Put(dir_ / "client.pem", dir_ / "client.key", "new CA only").exit_code, 0);
}

}  // namespace
