// SPDX-License-Identifier: Apache-2.0
// `sign --format k8s`: the CertificateSigningRequest parser, its checks and the answer objects.
// Objects are written as plain JSON following the certificates.k8s.io/v1 API reference.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/failure.h"
#include "pki/base64.h"
#include "pki/csr.h"
#include "signer/k8s_csr.h"
#include "signer/policy.h"
#include "signer/request_line.h"

namespace {

using base::ExitCode;
using base::Failure;
using nlohmann::json;

template <typename F>
std::pair<ExitCode, std::string> Caught(F&& f) {
  try {
    f();
  } catch (const Failure& e) {
    return {e.code(), e.reason()};
  }
  return {ExitCode::kOk, ""};
}

std::string B64(const std::string& s) {
  return pki::EncodeBase64(reinterpret_cast<const unsigned char*>(s.data()), s.size());
}

std::string CsrPem(const std::string& cn = "kubemaster-1") {
  pki::EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  return pki::ToPem(pki::BuildCsr(cn, key.get()).get());
}

json Object(const std::string& pem) {
  return json{{"apiVersion", "certificates.k8s.io/v1"},
              {"kind", "CertificateSigningRequest"},
              {"metadata", {{"name", "kubemaster-1-etcd"}, {"labels", {{"app", "etcd"}}}}},
              {"spec",
               {{"request", B64(pem)},
                {"signerName", signer::kDefaultSignerName},
                {"expirationSeconds", 86400},
                {"usages", {"digital signature", "key encipherment", "client auth"}}}}};
}

TEST(K8sRequestLine, FormatK8sIsAcceptedAloneAndNotWithLifetime) {
  using signer::BodyFormat;
  EXPECT_EQ(signer::ParseRequestLine("sign").format, BodyFormat::kBase64Csr);
  EXPECT_EQ(signer::ParseRequestLine("sign --format k8s").format, BodyFormat::kK8s);
  EXPECT_EQ(signer::ParseRequestLine("sign --format=k8s").format, BodyFormat::kK8s);
  for (const char* bad : {"sign --format", "sign --format pem", "sign --format=K8S", "sign --format k8s --format k8s",
                          "sign --format k8s --lifetime 1h", "sign --lifetime=1h --format=k8s", "ca --format k8s",
                          "info --format=k8s"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(Caught([&] { signer::ParseRequestLine(bad); }),
              std::make_pair(ExitCode::kUsage, std::string("bad-request")));
  }
}

TEST(K8sCsr, AGoodObjectParsesAndItsCsrDecodes) {
  std::string pem = CsrPem();
  signer::K8sCsr csr = signer::ParseK8sCsr(Object(pem).dump());
  EXPECT_EQ(csr.signer_name, signer::kDefaultSignerName);
  EXPECT_EQ(csr.usages.size(), 3u);
  ASSERT_TRUE(csr.expiration);
  EXPECT_EQ(csr.expiration->count(), 86400);
  EXPECT_EQ(std::string(csr.request.begin(), csr.request.end()), pem);
  signer::SignerConfig config;
  EXPECT_EQ(Caught([&] { signer::CheckK8sSpec(csr, config); }).first, ExitCode::kOk);
  pki::X509ReqPtr req = signer::DecodeK8sRequest(csr);
  ASSERT_TRUE(req);
  signer::RequestFacts facts;
  signer::Approval approval = signer::ApplyPolicy(req.get(), csr.expiration, config, facts);
  EXPECT_EQ(approval.common_name, "kubemaster-1");
  EXPECT_EQ(approval.lifetime.count(), 86400);
  // Without expirationSeconds the signer's default applies; what the API server adds is accepted.
  json j = Object(pem);
  j["spec"].erase("expirationSeconds");
  j["spec"]["username"] = "system:admin";
  j["spec"]["uid"] = "1234";
  j["spec"]["groups"] = {"system:masters", "system:authenticated"};
  j["spec"]["extra"] = {{"scopes", {"a"}}};
  j["status"] = {{"conditions", {{{"type", "Approved"}, {"status", "True"}}}}};
  signer::K8sCsr second = signer::ParseK8sCsr(j.dump(2));
  EXPECT_FALSE(second.expiration);
  EXPECT_EQ(json::parse(second.echo_json).count("status"), 0u);  // the client's status is dropped
}

TEST(K8sCsr, EveryMalformedObjectIsK8sObject) {
  std::string pem = CsrPem();
  auto with = [&](const std::function<void(json&)>& change) {
    json j = Object(pem);
    change(j);
    return j.dump();
  };
  std::string deep(40, '[');
  deep += std::string(40, ']');
  std::vector<std::pair<std::string, std::string>> rows = {
      {"not JSON", "this is not json"},
      {"base64 body (the other format)", B64(pem)},
      {"trailing garbage", Object(pem).dump() + " {}"},
      {"two documents", Object(pem).dump() + Object(pem).dump()},
      {"an array", "[" + Object(pem).dump() + "]"},
      {"a string", "\"CertificateSigningRequest\""},
      {"comment", "/* x */" + Object(pem).dump()},
      {"invalid UTF-8", with([](json& j) { j["metadata"]["name"] = "x"; }).replace(0, 0, "\xff")},
      {"too deep", with([&](json& j) { j["metadata"]["annotations"] = json::parse(deep); })},
      {"duplicate spec key", R"({"apiVersion":"certificates.k8s.io/v1","kind":"CertificateSigningRequest","spec":{"signerName":"a/b","signerName":")" +
                                 std::string(signer::kDefaultSignerName) + R"(","request":")" + B64(pem) +
                                 R"(","usages":["client auth"]}})"},
      {"duplicate top key", R"({"kind":"x","apiVersion":"certificates.k8s.io/v1","kind":"CertificateSigningRequest","spec":{"signerName":"a/b","request":")" +
                                B64(pem) + R"(","usages":["client auth"]}})"},
      {"v1beta1", with([](json& j) { j["apiVersion"] = "certificates.k8s.io/v1beta1"; })},
      {"no apiVersion", with([](json& j) { j.erase("apiVersion"); })},
      {"wrong kind", with([](json& j) { j["kind"] = "ConfigMap"; })},
      {"kind not a string", with([](json& j) { j["kind"] = 1; })},
      {"unknown top-level field", with([](json& j) { j["data"] = "x"; })},
      {"metadata not an object", with([](json& j) { j["metadata"] = "x"; })},
      {"metadata too large", with([](json& j) { j["metadata"]["annotations"]["a"] = std::string(17000, 'a'); })},
      {"status not an object", with([](json& j) { j["status"] = 1; })},
      {"no spec", with([](json& j) { j.erase("spec"); })},
      {"spec an array", with([](json& j) { j["spec"] = json::array(); })},
      {"unknown spec field", with([](json& j) { j["spec"]["isCA"] = true; })},
      {"mistyped spec.username", with([](json& j) { j["spec"]["username"] = 5; })},
      {"mistyped spec.groups", with([](json& j) { j["spec"]["groups"] = {1}; })},
      {"no request", with([](json& j) { j["spec"].erase("request"); })},
      {"request not base64", with([](json& j) { j["spec"]["request"] = "not base64!"; })},
      {"request empty", with([](json& j) { j["spec"]["request"] = ""; })},
      {"no signerName", with([](json& j) { j["spec"].erase("signerName"); })},
      {"no usages", with([](json& j) { j["spec"].erase("usages"); })},
      {"usages a string", with([](json& j) { j["spec"]["usages"] = "client auth"; })},
      {"expiration a string", with([](json& j) { j["spec"]["expirationSeconds"] = "86400"; })},
      {"expiration a float", with([](json& j) { j["spec"]["expirationSeconds"] = 86400.5; })},
      {"expiration negative", with([](json& j) { j["spec"]["expirationSeconds"] = -1; })},
      {"expiration beyond int32", with([](json& j) { j["spec"]["expirationSeconds"] = 2147483648LL; })},
      {"expiration beyond uint64", [&] {
         std::string b = with([](json& j) { j["spec"]["expirationSeconds"] = 123456; });
         return b.replace(b.find("123456"), 6, "99999999999999999999999");
       }()},
  };
  for (const auto& [name, body] : rows) {
    SCOPED_TRACE(name);
    EXPECT_EQ(Caught([&] { signer::ParseK8sCsr(body); }),
              std::make_pair(ExitCode::kDataErr, std::string("k8s-object")));
  }
  EXPECT_EQ(Caught([&] { signer::ParseK8sCsr(" \n"); }), std::make_pair(ExitCode::kDataErr, std::string("empty-input")));
}

TEST(K8sCsr, PolicyRefusalsOfTheSpec) {
  std::string pem = CsrPem();
  signer::SignerConfig config;
  auto check = [&](const std::function<void(json&)>& change) {
    json j = Object(pem);
    change(j);
    return Caught([&] { signer::CheckK8sSpec(signer::ParseK8sCsr(j.dump()), config); });
  };
  auto refused = [](const char* reason) { return std::make_pair(ExitCode::kNoPerm, std::string(reason)); };
  EXPECT_EQ(check([](json& j) { j["spec"]["signerName"] = "kubernetes.io/kube-apiserver-client"; }), refused("k8s-signer-name"));
  EXPECT_EQ(check([](json& j) { j["spec"]["signerName"] = std::string(signer::kDefaultSignerName) + " "; }), refused("k8s-signer-name"));
  EXPECT_EQ(check([](json& j) { j["spec"]["usages"] = {"client auth", "server auth"}; }), refused("k8s-usages"));
  EXPECT_EQ(check([](json& j) { j["spec"]["usages"] = {"digital signature"}; }), refused("k8s-usages"));
  EXPECT_EQ(check([](json& j) { j["spec"]["usages"] = json::array(); }), refused("k8s-usages"));
  EXPECT_EQ(check([](json& j) { j["spec"]["usages"] = {"client auth", "client auth"}; }), refused("k8s-usages"));
  EXPECT_EQ(check([](json& j) { j["spec"]["usages"] = {"client auth", "cert sign"}; }), refused("k8s-usages"));
  EXPECT_EQ(check([](json& j) { j["spec"]["usages"] = {"Client Auth"}; }), refused("k8s-usages"));
  EXPECT_EQ(check([](json& j) { j["spec"]["expirationSeconds"] = 599; }), refused("lifetime-too-short"));
  EXPECT_EQ(check([](json& j) { j["spec"]["expirationSeconds"] = 0; }), refused("lifetime-too-short"));
  EXPECT_EQ(check([](json& j) { j["spec"]["expirationSeconds"] = 600; }).first, ExitCode::kOk);
  EXPECT_EQ(check([](json& j) { j["spec"]["usages"] = {"client auth"}; }).first, ExitCode::kOk);
  config.signer_name = "example.org/other";
  EXPECT_EQ(check([](json&) {}), refused("k8s-signer-name"));
  // Even when the operator allows shorter lifetimes, Kubernetes' minimum holds.
  config = signer::SignerConfig{};
  config.lifetime_min = base::Seconds(60);
  EXPECT_EQ(check([](json& j) { j["spec"]["expirationSeconds"] = 300; }), refused("lifetime-too-short"));
  // Above lifetime_max the request is clamped, as with --lifetime.
  signer::K8sCsr big = signer::ParseK8sCsr(
      [&] { json j = Object(pem); j["spec"]["expirationSeconds"] = 2147483647; return j.dump(); }());
  signer::RequestFacts facts;
  EXPECT_EQ(signer::ApplyPolicy(signer::DecodeK8sRequest(big).get(), big.expiration, config, facts).lifetime,
            config.lifetime_max);
}

TEST(K8sCsr, TheCsrInsideGoesThroughTheSameDecoderAndPolicy) {
  signer::SignerConfig config;
  auto decode = [&](const std::string& request_bytes) {
    json j = Object(CsrPem());
    j["spec"]["request"] = B64(request_bytes);
    std::optional<signer::K8sCsr> parsed;
    return Caught([&] {
      auto req = signer::DecodeK8sBody(j.dump(), config, parsed);
      signer::RequestFacts facts;
      signer::ApplyPolicy(req.get(), parsed->expiration, config, facts);
    });
  };
  std::string pem = CsrPem();
  auto der = pki::DecodeBase64(pem.substr(pem.find('\n') + 1, pem.find("-----END") - pem.find('\n') - 1));
  ASSERT_TRUE(der);
  EXPECT_EQ(decode(std::string(der->begin(), der->end())), std::make_pair(ExitCode::kDataErr, std::string("not-a-csr")));
  EXPECT_EQ(decode("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            std::make_pair(ExitCode::kDataErr, std::string("not-a-csr")));
  EXPECT_EQ(decode("garbage"), std::make_pair(ExitCode::kDataErr, std::string("not-a-csr")));
  EXPECT_EQ(decode(CsrPem("etcd-admin")), std::make_pair(ExitCode::kNoPerm, std::string("name-policy")));
  EXPECT_EQ(decode(CsrPem("kubemaster-2")).first, ExitCode::kOk);
  config.identity = "kubemaster-1";
  EXPECT_EQ(decode(CsrPem("kubemaster-2")), std::make_pair(ExitCode::kNoPerm, std::string("identity-mismatch")));
  // A refusal after parsing keeps the parsed object for the answer.
  std::optional<signer::K8sCsr> parsed;
  json j = Object(CsrPem());
  j["spec"]["signerName"] = "x.example/y";
  EXPECT_EQ(Caught([&] { signer::DecodeK8sBody(j.dump(), config, parsed); }).second, "k8s-signer-name");
  EXPECT_TRUE(parsed.has_value());
}

TEST(K8sCsr, AnswersAreTheObjectWithStatus) {
  std::string pem = CsrPem();
  json in = Object(pem);
  in["status"] = {{"certificate", "Zm9v"}};
  in["metadata"]["annotations"] = {{"note", "caf\xc3\xa9 \xe2\x80\xae"}};
  signer::K8sCsr csr = signer::ParseK8sCsr(in.dump());
  auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1800000000));
  std::string issued = signer::EncodeK8sIssued(csr, "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
                                               "etcd-client", "issued", now);
  ASSERT_EQ(issued.back(), '\n');
  EXPECT_EQ(issued.find('\n'), issued.size() - 1);  // one line
  for (unsigned char c : issued) EXPECT_LT(c, 0x80);  // pure ASCII
  json out = json::parse(issued);
  EXPECT_EQ(out["apiVersion"], "certificates.k8s.io/v1");
  EXPECT_EQ(out["kind"], "CertificateSigningRequest");
  EXPECT_EQ(out["metadata"], in["metadata"]);
  EXPECT_EQ(out["spec"], in["spec"]);
  auto cert = pki::DecodeBase64(out["status"]["certificate"].get<std::string>());
  ASSERT_TRUE(cert);
  EXPECT_EQ(std::string(cert->begin(), cert->end()), "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n");
  ASSERT_EQ(out["status"]["conditions"].size(), 1u);
  EXPECT_EQ(out["status"]["conditions"][0]["type"], "Approved");
  EXPECT_EQ(out["status"]["conditions"][0]["status"], "True");
  EXPECT_EQ(out["status"]["conditions"][0]["reason"], "etcd-client");
  EXPECT_EQ(out["status"]["conditions"][0]["lastUpdateTime"], "2027-01-15T08:00:00Z");

  json denied = json::parse(signer::EncodeK8sRefusal(&csr, Failure(ExitCode::kNoPerm, "name-policy", "no"), now));
  EXPECT_EQ(denied["spec"], in["spec"]);
  EXPECT_EQ(denied["status"].count("certificate"), 0u);
  EXPECT_EQ(denied["status"]["conditions"][0]["type"], "Denied");
  EXPECT_EQ(denied["status"]["conditions"][0]["reason"], "name-policy");
  EXPECT_EQ(denied["status"]["conditions"][0]["message"], "no");
  json failed = json::parse(signer::EncodeK8sRefusal(nullptr, Failure(ExitCode::kDataErr, "k8s-object", "bad"), now));
  EXPECT_EQ(failed["kind"], "CertificateSigningRequest");
  EXPECT_EQ(failed.count("spec"), 0u);
  EXPECT_EQ(failed["status"]["conditions"][0]["type"], "Failed");
  EXPECT_EQ(failed["status"]["conditions"][0]["reason"], "k8s-object");
  // A key waiting for approval (#14) is Pending in Kubernetes' terms: no condition at all.
  json pending = json::parse(
      signer::EncodeK8sRefusal(&csr, Failure(ExitCode::kTempFail, "pending-approval", "approve it"), now));
  EXPECT_EQ(pending["spec"], in["spec"]);
  EXPECT_TRUE(pending["status"].is_object());
  EXPECT_EQ(pending["status"].count("conditions"), 0u);
  EXPECT_EQ(pending["status"].count("certificate"), 0u);
}

}  // namespace
