// SPDX-License-Identifier: Apache-2.0
// The fleet's signed governance document (#29) as operators run it: STATE.toml signed with a
// governance key in its own SoftHSM token (root's, never the signer account's), checked with the
// openssl CLI independently, installed with etcd-signerctl, and obeyed by the real etcd-signer
// behind sshd: approvals from the document only, denials from it and the local lists, expiry
// enforced, the `crl` verb serving its revocations and `info` its version and digest.
//
// ctest runs each TEST in its own process, so each TEST is one scenario on a fresh deployment.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <nlohmann/json.hpp>
#include <thread>

#include "pki/governance.h"
#include "test_support.h"

namespace {

using namespace testing_support;
using namespace std::chrono_literals;

std::string SignerLine(const std::string& err) {
  auto lines = Lines(err);
  return lines.empty() ? "" : lines.back();
}

struct Csr {
  std::string b64, key_sha256;
};

class Governance : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    deployment_ = new SignerDeployment(dir_->path());
    master_key_ = new std::string(deployment_->AddMaster("kubemaster-1"));
    deployment_->Start();  // hands what is in the directory so far to the signer account
    // The governance tokens are made after that: root's, which the signer account cannot use.
    governance_ = new CaToken(*dir_ / "governance-token");
    other_ = new CaToken(*dir_ / "other-token");
    WriteFile(*dir_ / "governance.crt", ReadFile(governance_->ca_cert), 0644);
  }
  static void TearDownTestSuite() {
    delete other_;
    delete governance_;
    delete master_key_;
    delete deployment_;
    delete dir_;
  }

  void SetUp() override {
    // Each scenario starts from no installed document.
    for (const char* name : {"governance.cms", "governance.cms.version", "governance.cms.index"}) {
      ::unlink((*dir_ / name).c_str());
    }
  }

  static void UseGovernance(const std::string& extra = "approval = \"new-keys\"\n") {
    deployment_->WriteSignerConfig("governance_file = \"" + (*dir_ / "governance.cms") + "\"\ngovernance_cert = \"" +
                                   (*dir_ / "governance.crt") + "\"\n" + extra);
  }

  static Csr NewCsr(const std::string& cn, const std::string& file) {
    Csr csr;
    std::string key = *dir_ / (file + ".key");
    RunResult req = OpenSsl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                             "-keyout", key, "-subj", "/CN=" + cn});
    EXPECT_EQ(req.exit_code, 0) << req.err;
    csr.b64 = OpenSsl({"base64"}, req.out).out;
    std::string spki = OpenSsl({"pkey", "-in", key, "-pubout", "-outform", "DER"}).out;
    csr.key_sha256 = OpenSsl({"dgst", "-sha256", "-r"}, spki).out.substr(0, 64);
    return csr;
  }

  // etcd-signerctl governance sign with `token`'s key; STATE.toml from `state`.
  static RunResult SignState(const std::string& name, const std::string& state, const std::string& previous = "",
                             const CaToken* token = nullptr) {
    if (token == nullptr) token = governance_;
    WriteFile(*dir_ / (name + ".toml"), state, 0644);
    std::vector<std::string> args{Binary("etcd-signerctl"), "governance", "sign", "--module", kSoftHsmModule,
                                  "--key", token->key_uri, "--pin-file", token->pin_file, "--cert", token->ca_cert,
                                  "--state", *dir_ / (name + ".toml"), "--out", *dir_ / (name + ".cms")};
    if (!previous.empty()) args.insert(args.end(), {"--previous", *dir_ / (previous + ".cms")});
    RunOptions options;
    options.env = token->env();
    return testing_support::Run(args, options);
  }

  static RunResult Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {Binary("etcd-signerctl"), "--config", *dir_ / "signer.toml"});
    return testing_support::Run(args);
  }

  static RunResult Install(const std::string& name) { return Ctl({"governance", "install", *dir_ / (name + ".cms")}); }

  static RunResult Ask(const std::string& request, const std::string& body = "") {
    return deployment_->ssh.Ssh(*master_key_, request, body);
  }

  static nlohmann::json LastRecord() {
    auto lines = Lines(ReadFile(*dir_ / "audit.log"));
    return lines.empty() ? nlohmann::json::object() : nlohmann::json::parse(lines.back());
  }

  static std::string Sha256File(const std::string& path) {
    return OpenSsl({"dgst", "-sha256", "-r", path}).out.substr(0, 64);
  }

  static TempDir* dir_;
  static SignerDeployment* deployment_;
  static std::string* master_key_;
  static CaToken* governance_;
  static CaToken* other_;
};
TempDir* Governance::dir_ = nullptr;
SignerDeployment* Governance::deployment_ = nullptr;
std::string* Governance::master_key_ = nullptr;
CaToken* Governance::governance_ = nullptr;
CaToken* Governance::other_ = nullptr;

// The document is CMS SignedData that openssl verifies on its own, with the canonical content
// that `show` prints; install keeps order (never the same or an older version), refuses an
// expired document, a foreign signer, a tampered byte, a malformed source and a name that can
// never match, and every refusal leaves the installed document and its mark as they were.
TEST_F(Governance, SignedVerifiedIndependentlyAndInstalledOnlyForward) {
  UseGovernance();
  const std::string a = std::string(64, 'a');
  RunResult one = SignState("v1", "expires = \"" + UtcIn(86400) + "\"\ndenied_identities = [\"kubemaster-9\"]\n"
                                  "approved_keys = [{identity = \"kubemaster-1\", sha256 = \"" + a + "\"}]\n"
                                  "revoked = [{serial = \"0A1B\", reason = \"keyCompromise\"}]\n");
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_NE(one.out.find("signed governance version 1 (1 denied identities, 0 denied keys, 1 approved keys, 1 revoked serials)"),
            std::string::npos)
      << one.out;

  // openssl, independently: the signature verifies with the governance certificate, and the
  // content is what `show --json` reports.
  RunResult verify = OpenSsl({"cms", "-verify", "-inform", "PEM", "-in", *dir_ / "v1.cms", "-CAfile",
                              *dir_ / "governance.crt", "-purpose", "any"});
  ASSERT_EQ(verify.exit_code, 0) << verify.err;
  auto content = nlohmann::json::parse(verify.out);
  EXPECT_EQ(content["version"], 1);
  EXPECT_EQ(content["denied_identities"], nlohmann::json::array({"kubemaster-9"}));
  EXPECT_EQ(content["revoked"][0]["serial"], "0A1B");
  RunResult show = Ctl({"governance", "show", *dir_ / "v1.cms", "--json"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  auto shown = nlohmann::json::parse(show.out);
  EXPECT_EQ(shown["approved_keys"], content["approved_keys"]);
  EXPECT_EQ(shown["sha256"], Sha256File(*dir_ / "v1.cms"));
  EXPECT_EQ(shown["verified_with"], *dir_ / "governance.crt");
  RunResult human = Ctl({"governance", "show", *dir_ / "v1.cms"});
  EXPECT_NE(human.out.find("signed by         "), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("  0A1B keyCompromise"), std::string::npos) << human.out;

  RunResult installed = Install("v1");
  ASSERT_EQ(installed.exit_code, 0) << installed.err;
  EXPECT_EQ(ReadFile(*dir_ / "governance.cms"), ReadFile(*dir_ / "v1.cms"));
  EXPECT_EQ(ReadFile(*dir_ / "governance.cms.version"), "1\n");
  // The index of the verified document (#30), bound to its bytes: what issuing requests read.
  std::string doc_sha = OpenSsl({"dgst", "-sha256", "-r", *dir_ / "governance.cms"}).out.substr(0, 64);
  std::vector<std::string> index = Lines(ReadFile(*dir_ / "governance.cms.index"));
  ASSERT_GE(index.size(), 6u);
  EXPECT_EQ(index[0], "etcd-signer governance index v1");
  EXPECT_EQ(index[1], "document " + doc_sha);
  EXPECT_EQ(index[3], "version 1");

  auto refused = [&](const std::string& doc, int code, const std::string& reason) {
    RunResult r = Install(doc);
    EXPECT_EQ(r.exit_code, code) << doc << ": " << r.err;
    EXPECT_EQ(r.err.rfind("etcd-signerctl: " + reason + ": ", 0), 0u) << doc << ": " << r.err;
    EXPECT_EQ(Lines(r.err).size(), 1u) << r.err;
    EXPECT_EQ(r.out, "");
  };
  // The same document again (a repeated push) is no change; another document of the same version is.
  RunResult again = Install("v1");
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out.rfind("already installed: governance version 1; SHA-256 ", 0), 0u) << again.out;
  ASSERT_EQ(SignState("v1b", "version = 1\nexpires = \"" + UtcIn(86400) + "\"\n").exit_code, 0);
  refused("v1b", 65, "governance-rollback");

  ASSERT_EQ(SignState("v2", "expires = \"" + UtcIn(86400) + "\"\n", "v1").exit_code, 0);
  ASSERT_EQ(Install("v2").exit_code, 0);
  const std::string in_force = ReadFile(*dir_ / "governance.cms");
  EXPECT_EQ(in_force, ReadFile(*dir_ / "v2.cms"));
  EXPECT_EQ(ReadFile(*dir_ / "governance.cms.version"), "2\n");
  refused("v1", 65, "governance-rollback");  // an older one, validly signed: a replay

  // Signed by a key that is not governance_cert's.
  ASSERT_EQ(SignState("foreign", "version = 9\nexpires = \"" + UtcIn(86400) + "\"\n", "", other_).exit_code, 0);
  refused("foreign", 65, "governance-signature");
  // One byte of the signed content changed.
  ASSERT_EQ(SignState("v3", "expires = \"" + UtcIn(86400) + "\"\n", "v2").exit_code, 0);
  std::string der = OpenSsl({"cms", "-cmsout", "-inform", "PEM", "-in", *dir_ / "v3.cms", "-outform", "DER"}).out;
  std::size_t at = der.find("\"version\":3");
  ASSERT_NE(at, std::string::npos);
  der[at + 10] = '7';
  WriteFile(*dir_ / "tampered.der", der);
  WriteFile(*dir_ / "tampered.cms",
            OpenSsl({"cms", "-cmsout", "-inform", "DER", "-in", *dir_ / "tampered.der", "-outform", "PEM"}).out);
  refused("tampered", 65, "governance-signature");
  // A name no request can carry here (outside name_pattern, no member).
  ASSERT_EQ(SignState("unmatchable", "version = 10\nexpires = \"" + UtcIn(86400) + "\"\ndenied_identities = [\"worker-1\"]\n")
                .exit_code,
            0);
  refused("unmatchable", 65, "governance-name");
  // Expired by the time it is installed.
  RunResult late = Ctl({"--now", UtcIn(2 * 86400), "governance", "install", *dir_ / "v3.cms"});
  EXPECT_EQ(late.exit_code, 65) << late.err;
  EXPECT_EQ(late.err.rfind("etcd-signerctl: governance-expired: ", 0), 0u) << late.err;
  // Nothing of the refusals stayed: version 2 is in force.
  EXPECT_EQ(ReadFile(*dir_ / "governance.cms"), in_force);
  EXPECT_EQ(ReadFile(*dir_ / "governance.cms.version"), "2\n");

  // Sources that must not be signed: unknown fields, duplicates, contradictions, bad forms.
  for (const std::string& bad : std::vector<std::string>{
           "expires = \"" + UtcIn(86400) + "\"\nallowed_identities = [\"kubemaster-1\"]\n",
           "expires = \"" + UtcIn(86400) + "\"\ndenied_identities = [\"kubemaster-2\", \"kubemaster-2\"]\n",
           "expires = \"" + UtcIn(86400) + "\"\ndenied_keys = [{identity = \"kubemaster-1\", sha256 = \"" + a +
               "\"}]\napproved_keys = [{identity = \"kubemaster-1\", sha256 = \"" + a + "\"}]\n",
           "expires = \"" + UtcIn(86400) + "\"\napproved_keys = [{identity = \"kubemaster-1\", sha256 = \"ABC\"}]\n",
           "expires = \"" + UtcIn(86400) + "\"\nrevoked = [{serial = \"0A1B\", reason = \"keyCompromise\"}, "
                                           "{serial = \"0a1b\", reason = \"superseded\"}]\n",
           "expires = \"" + UtcIn(86400) + "\"\nrevoked = [{serial = \"0A1B\", reason = \"lost\"}]\n",
           "denied_identities = []\n",
       }) {
    RunResult r = SignState("bad", bad);
    EXPECT_EQ(r.exit_code, 65) << bad << r.err;
    EXPECT_EQ(r.err.rfind("etcd-signerctl: governance-invalid: ", 0), 0u) << bad << r.err;
  }
}

// The signer obeys the installed document: approvals only from it (a locally approved key is a
// configuration error), its denials and the local lists' both, every decision audited with the
// document's version; `info` says which document is in force; `crl` serves its revocations
// signed with this host's CA key; an expired document stops issuing with 69 governance-expired.
TEST_F(Governance, TheSignerObeysTheInstalledDocumentAndServesItsCrl) {
  Csr csr = NewCsr("kubemaster-1", "m1");
  WriteFile(*dir_ / "denied_identities", "# none\n", 0644);
  UseGovernance("approval = \"new-keys\"\ndenied_identities = \"" + (*dir_ / "denied_identities") + "\"\n");

  // No document installed: nothing is issued, and the reason says why.
  RunResult none = Ask("sign", csr.b64);
  EXPECT_EQ(none.exit_code, 69) << none.err;
  EXPECT_EQ(SignerLine(none.err).rfind("etcd-signer: governance-missing: ", 0), 0u) << none.err;

  ASSERT_EQ(SignState("v1", "expires = \"" + UtcIn(86400) + "\"\n").exit_code, 0);
  ASSERT_EQ(Install("v1").exit_code, 0);
  RunResult pending = Ask("sign", csr.b64);
  EXPECT_EQ(pending.exit_code, 75) << pending.err;
  EXPECT_NE(SignerLine(pending.err).find("is not approved in the governance document (version 1)"), std::string::npos)
      << pending.err;
  EXPECT_EQ(LastRecord().value("governance_version", 0), 1);

  ASSERT_EQ(SignState("v2",
                      "expires = \"" + UtcIn(40 * 86400) + "\"\napproved_keys = [{identity = \"kubemaster-1\", sha256 = \"" +
                          csr.key_sha256 + "\"}]\nrevoked = [{serial = \"0A1B\", reason = \"keyCompromise\"}, "
                                           "{serial = \"2C\", reason = \"superseded\"}]\n",
                      "v1")
                .exit_code,
            0);
  ASSERT_EQ(Install("v2").exit_code, 0);
  RunResult issued = Ask("sign", csr.b64);
  ASSERT_EQ(issued.exit_code, 0) << issued.err;
  EXPECT_EQ(LastRecord().value("outcome", ""), "issued");
  EXPECT_EQ(LastRecord().value("governance_version", 0), 2);

  // info: the version and the document's digest, as sha256sum computes it.
  RunResult info = Ask("info");
  ASSERT_EQ(info.exit_code, 0) << info.err;
  auto j = nlohmann::json::parse(info.out);
  EXPECT_EQ(j["governance_version"], 2);
  EXPECT_EQ(j["governance_sha256"], Sha256File(*dir_ / "governance.cms"));
  EXPECT_EQ(j["governance_state"], "ok");
  EXPECT_EQ(j["crl_number"], 2);

  // crl: the document's serials, cRLNumber 2, signed by this host's CA key (openssl checks).
  RunResult crl = Ask("crl");
  ASSERT_EQ(crl.exit_code, 0) << crl.err;
  WriteFile(*dir_ / "served.crl", crl.out.substr(0, crl.out.find("-----END X509 CRL-----") + 23));
  RunResult text = OpenSsl({"crl", "-in", *dir_ / "served.crl", "-noout", "-text", "-CAfile", deployment_->ca.ca_cert});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.err.find("verify OK"), std::string::npos) << text.err;
  EXPECT_NE(text.out.find("Serial Number: 0A1B"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("Serial Number: 2C"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("X509v3 CRL Number: \n                2"), std::string::npos) << text.out;

  // The document's denial, then a local one on top of a document that allows.
  ASSERT_EQ(SignState("v3", "expires = \"" + UtcIn(86400) + "\"\ndenied_identities = [\"kubemaster-1\"]\n"
                            "approved_keys = [{identity = \"kubemaster-1\", sha256 = \"" + csr.key_sha256 + "\"}]\n",
                      "v2")
                .exit_code,
            0);
  ASSERT_EQ(Install("v3").exit_code, 0);
  RunResult denied = Ask("sign", csr.b64);
  EXPECT_EQ(denied.exit_code, 77) << denied.err;
  EXPECT_EQ(SignerLine(denied.err).rfind("etcd-signer: identity-denied: ", 0), 0u) << denied.err;
  ASSERT_EQ(SignState("v4", "expires = \"" + UtcIn(86400) + "\"\napproved_keys = [{identity = \"kubemaster-1\", sha256 = \"" +
                                csr.key_sha256 + "\"}]\n",
                      "v3")
                .exit_code,
            0);
  ASSERT_EQ(Install("v4").exit_code, 0);
  ASSERT_EQ(Ask("sign", csr.b64).exit_code, 0);
  WriteFile(*dir_ / "denied_identities", "kubemaster-1 emergency on this host\n", 0644);
  RunResult local = Ask("sign", csr.b64);
  EXPECT_EQ(local.exit_code, 77) << local.err;
  EXPECT_NE(SignerLine(local.err).find("(denied_identities)"), std::string::npos) << local.err;
  WriteFile(*dir_ / "denied_identities", "# none\n", 0644);

  // Version 4 expires in a day, inside governance_warning (7 days): `info` warns.
  EXPECT_EQ(nlohmann::json::parse(Ask("info").out)["governance_state"], "expiring");
  // A document that expires in 5 s: once expired every issuing request is refused, renewals
  // included.
  auto installed_at = std::chrono::steady_clock::now();
  ASSERT_EQ(SignState("v5", "expires = \"" + UtcIn(5) + "\"\napproved_keys = [{identity = \"kubemaster-1\", sha256 = \"" +
                                csr.key_sha256 + "\"}]\n",
                      "v4")
                .exit_code,
            0);
  ASSERT_EQ(Install("v5").exit_code, 0);
  std::this_thread::sleep_until(installed_at + 6s);
  RunResult expired = Ask("sign", csr.b64);
  EXPECT_EQ(expired.exit_code, 69) << expired.err;
  EXPECT_EQ(SignerLine(expired.err).rfind("etcd-signer: governance-expired: ", 0), 0u) << expired.err;
  EXPECT_EQ(LastRecord().value("reason", ""), "governance-expired");
  EXPECT_EQ(nlohmann::json::parse(Ask("info").out)["governance_state"], "expired");
  EXPECT_EQ(Ask("crl").exit_code, 69);

  // Approvals come only from the document: a local approved_keys listing the key allows nothing
  // (the packaged signer.toml names one; with a document it is not consulted).
  ASSERT_EQ(SignState("v6", "expires = \"" + UtcIn(86400) + "\"\n", "v5").exit_code, 0);
  ASSERT_EQ(Install("v6").exit_code, 0);
  WriteFile(*dir_ / "approved_keys", "kubemaster-1 " + csr.key_sha256 + "\n", 0644);
  UseGovernance("approval = \"new-keys\"\napproved_keys = \"" + (*dir_ / "approved_keys") + "\"\n");
  RunResult local_approval = Ask("sign", csr.b64);
  EXPECT_EQ(local_approval.exit_code, 75) << local_approval.err;
  EXPECT_NE(SignerLine(local_approval.err).find("is not approved in the governance document (version 6)"), std::string::npos)
      << local_approval.err;
}

// etcd members fetch the CRL themselves (etcd-requester crl): verified against the pinned root,
// stored only when its cRLNumber is higher, unchanged when equal, a lower one refused, one from
// an untrusted CA refused; every refusal leaves etcd's file as it was.
TEST_F(Governance, MembersFetchTheCrlVerifiedAndOnlyForward) {
  UseGovernance("");
  const std::string crl_file = *dir_ / "etcd-crl.pem";
  // `bundle`: trust another CA bundle instead (and no pinned root). The member pins the
  // governance certificate (`governance`), so the CRL must be the signed document's list.
  auto fetch = [&](const std::string& bundle = "", const std::string& governance = *dir_ / "governance.crt") {
    std::vector<std::string> args = deployment_->RequesterArgs("crl", "kubemaster-1", *master_key_);
    args.insert(args.end(), {"--crl-file", crl_file, "--governance-cert", governance});
    if (!bundle.empty()) {
      auto at = std::find(args.begin(), args.end(), "--ca-bundle");
      *(at + 1) = bundle;
      args.erase(std::find(args.begin(), args.end(), "--ca-sha256"), std::find(args.begin(), args.end(), "--ca-sha256") + 2);
    }
    return testing_support::Run(args);
  };
  ASSERT_EQ(SignState("v1", "expires = \"" + UtcIn(86400) + "\"\nrevoked = [{serial = \"0A1B\", reason = \"keyCompromise\"}]\n")
                .exit_code,
            0);
  ASSERT_EQ(Install("v1").exit_code, 0);
  RunResult first = fetch();
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_NE(first.out.find("stored cRLNumber 1 (1 revoked serials"), std::string::npos) << first.out;
  RunResult text = OpenSsl({"crl", "-in", crl_file, "-noout", "-text", "-CAfile", deployment_->ca.ca_cert});
  EXPECT_NE(text.err.find("verify OK"), std::string::npos) << text.err;
  EXPECT_NE(text.out.find("Serial Number: 0A1B"), std::string::npos) << text.out;
  RunResult again = fetch();
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out.rfind("unchanged: ", 0), 0u) << again.out;

  ASSERT_EQ(SignState("v2", "expires = \"" + UtcIn(86400) + "\"\nrevoked = [{serial = \"0A1B\", reason = \"keyCompromise\"}, "
                            "{serial = \"77\", reason = \"keyCompromise\"}]\n",
                      "v1")
                .exit_code,
            0);
  ASSERT_EQ(Install("v2").exit_code, 0);
  RunResult second = fetch();
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.out.find("stored cRLNumber 2 (2 revoked serials"), std::string::npos) << second.out;
  const std::string v2 = ReadFile(crl_file);

  // A governance certificate that did not sign the document: refused, the file stays.
  RunResult ungoverned = fetch("", other_->ca_cert);
  EXPECT_EQ(ungoverned.exit_code, 65) << ungoverned.err;
  EXPECT_NE(ungoverned.err.find("governance-signature"), std::string::npos) << ungoverned.err;
  EXPECT_EQ(ReadFile(crl_file), v2);

  // A CA we do not trust: the signer's answer is refused and the file stays.
  RunResult untrusted = fetch(other_->ca_cert);
  EXPECT_EQ(untrusted.exit_code, 65) << untrusted.err;
  EXPECT_NE(untrusted.err.find("untrusted-crl"), std::string::npos) << untrusted.err;
  EXPECT_EQ(ReadFile(crl_file), v2);

  // A file already holding a higher cRLNumber (made by hand with etcd-hsm crl): the signer's
  // older list must not replace it.
  WriteFile(*dir_ / "number", "41\n", 0600);
  RunOptions hsm_env;
  hsm_env.env = other_->env();
  RunResult manual = testing_support::Run({Binary("etcd-hsm"), "crl", "--module", kSoftHsmModule, "--key", other_->key_uri, "--pin-file",
                          other_->pin_file, "--ca-cert", other_->ca_cert, "--revoke", "0A1B", "--days", "1", "--out",
                          *dir_ / "manual.pem", "--crl-number-file", *dir_ / "number"},
                         hsm_env);
  ASSERT_EQ(manual.exit_code, 0) << manual.err;
  WriteFile(crl_file, ReadFile(*dir_ / "manual.pem"), 0644);
  RunResult rollback = fetch();
  EXPECT_EQ(rollback.exit_code, 65) << rollback.err;
  EXPECT_NE(rollback.err.find("crl-rollback"), std::string::npos) << rollback.err;
  EXPECT_EQ(ReadFile(crl_file), ReadFile(*dir_ / "manual.pem"));
}

// A document the signer account could replace is not trusted, and one signed by another key is
// not obeyed: the signer refuses to issue rather than follow it.
TEST_F(Governance, TheSignerTrustsOnlyRootsDocumentSignedByTheGovernanceKey) {
  Csr csr = NewCsr("kubemaster-1", "m1");
  UseGovernance();
  ASSERT_EQ(SignState("v1", "expires = \"" + UtcIn(86400) + "\"\napproved_keys = [{identity = \"kubemaster-1\", sha256 = \"" +
                                csr.key_sha256 + "\"}]\n")
                .exit_code,
            0);
  ASSERT_EQ(Install("v1").exit_code, 0);
  ASSERT_EQ(Ask("sign", csr.b64).exit_code, 0);

  // Root's file replaced in place by a validly formed document of another key.
  ASSERT_EQ(SignState("foreign", "version = 5\nexpires = \"" + UtcIn(86400) + "\"\n"
                                 "approved_keys = [{identity = \"kubemaster-1\", sha256 = \"" + csr.key_sha256 + "\"}]\n",
                      "", other_)
                .exit_code,
            0);
  WriteFile(*dir_ / "governance.cms", ReadFile(*dir_ / "foreign.cms"), 0644);
  RunResult foreign = Ask("sign", csr.b64);
  EXPECT_EQ(foreign.exit_code, 65) << foreign.err;
  EXPECT_EQ(SignerLine(foreign.err).rfind("etcd-signer: governance-signature: ", 0), 0u) << foreign.err;
  EXPECT_EQ(nlohmann::json::parse(Ask("info").out)["governance_state"], "governance-signature");

  // The right document, but a file the signer account owns: it could write its own policy.
  WriteFile(*dir_ / "governance.cms", ReadFile(*dir_ / "v1.cms"), 0644);
  GiveToSigner(*dir_ / "governance.cms");
  RunResult unsafe = Ask("sign", csr.b64);
  EXPECT_EQ(unsafe.exit_code, 78) << unsafe.err;
  EXPECT_EQ(SignerLine(unsafe.err).rfind("etcd-signer: governance-unsafe: ", 0), 0u) << unsafe.err;

  // Root's again, but larger than any governance document may be: refused by its size, unread.
  ASSERT_EQ(::chown((*dir_ / "governance.cms").c_str(), 0, 0), 0);
  WriteFile(*dir_ / "governance.cms", std::string(pki::kMaxGovernanceBytes + 1, 'A'), 0644);
  RunResult huge = Ask("sign", csr.b64);
  EXPECT_EQ(huge.exit_code, 65) << huge.err;
  EXPECT_EQ(SignerLine(huge.err).rfind("etcd-signer: governance-invalid: ", 0), 0u) << huge.err;
  EXPECT_NE(huge.err.find("is larger than 16777216 bytes"), std::string::npos) << huge.err;
  EXPECT_EQ(huge.out, "");
}

}  // namespace
