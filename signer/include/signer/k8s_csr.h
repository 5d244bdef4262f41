// SPDX-License-Identifier: Apache-2.0
// Kubernetes CertificateSigningRequest objects (certificates.k8s.io/v1, JSON) as the body of
// `sign --format k8s`, and the same object with its status as the answer. The body is attacker
// input: it is parsed strictly here and nowhere else (docs/protocol.md §6).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/duration.h"
#include "base/failure.h"
#include "pki/openssl.h"
#include "signer/config.h"

namespace signer {

// Kubernetes refuses spec.expirationSeconds below ten minutes; so does the signer, whatever
// lifetime_min says. The field is an int32.
constexpr std::int64_t kK8sMinExpirationSeconds = 600;
constexpr std::int64_t kK8sMaxExpirationSeconds = 2147483647;
// Nesting allowed anywhere in the object, and the size of the (ignored, echoed) metadata.
constexpr int kK8sMaxDepth = 32;
constexpr std::size_t kK8sMaxMetadataBytes = 16 * 1024;

// The parts of an accepted object the signer uses. Nothing here is checked against policy yet.
struct K8sCsr {
  // apiVersion, kind, metadata and spec as received, serialized again (pure ASCII): echoed in the
  // answer. Any status the client sent is dropped.
  std::string echo_json;
  std::string signer_name;
  std::vector<std::string> usages;
  std::optional<base::Seconds> expiration;  // spec.expirationSeconds, when present
  std::vector<unsigned char> request;       // spec.request, base64-decoded (a PEM CSR)
};

// Strict structural parse. Failure(kDataErr): "empty-input" (nothing or only whitespace),
// "k8s-object" (not exactly one JSON object, duplicate keys, nesting beyond kK8sMaxDepth, wrong
// apiVersion/kind, an unknown top-level or spec field, a field of the wrong type, spec.request not
// base64, expirationSeconds not an int32 >= 0, metadata larger than kK8sMaxMetadataBytes).
K8sCsr ParseK8sCsr(const std::string& body);

// The object's own demands against the operator's settings. Failure(kNoPerm): "k8s-signer-name"
// (spec.signerName != config.signer_name), "k8s-usages" (empty, duplicate, outside {"client auth",
// "digital signature", "key encipherment"}, or without "client auth"), "lifetime-too-short"
// (expirationSeconds below kK8sMinExpirationSeconds).
void CheckK8sSpec(const K8sCsr& csr, const SignerConfig& config);

// spec.request → the CSR, through the same decoder as the base64 body. Failure(kDataErr,
// "not-a-csr") when it is not one PEM CERTIFICATE REQUEST block.
pki::X509ReqPtr DecodeK8sRequest(const K8sCsr& csr);

// The sign path's body step for --format k8s: Parse → (store in `parsed`) → CheckK8sSpec →
// DecodeK8sRequest. `parsed` is set as soon as the object is well-formed, so that a later refusal
// can still answer with the client's object.
pki::X509ReqPtr DecodeK8sBody(const std::string& body, const SignerConfig& config,
                              std::optional<K8sCsr>& parsed);

// The answer: the client's object with status.certificate = base64(`pem`) and one condition
// {"type":"Approved","status":"True","reason":`reason`,"message":`message`}. One line + "\n".
std::string EncodeK8sIssued(const K8sCsr& csr, const std::string& pem, const std::string& reason,
                            const std::string& message, std::chrono::system_clock::time_point now);

// A refusal: the client's object (or, when it could not be parsed, a bare CertificateSigningRequest)
// with one condition "Denied" (policy, exit 77) or "Failed" (anything else) whose reason is the
// failure's reason code and message its sentence. One line + "\n".
std::string EncodeK8sRefusal(const K8sCsr* csr, const base::Failure& failure,
                             std::chrono::system_clock::time_point now);

}  // namespace signer
