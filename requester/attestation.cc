// SPDX-License-Identifier: Apache-2.0
#include "requester/attestation.h"

#include <openssl/sha.h>

#include <nlohmann/json.hpp>

#include "base/failure.h"
#include "pki/base64.h"
#include "requester/exchange.h"

namespace requester {
namespace {

using base::ExitCode;
using base::Failure;
using nlohmann::json;

std::string B64(const pki::Bytes& b) { return pki::EncodeBase64(b.data(), b.size()); }

// The signer's credential answer: exactly two base64 fields.
pki::Credential ParseCredential(const std::string& text) {
  auto bad = [] {
    return Failure(ExitCode::kDataErr, "bad-answer", "the signer's enrollment answer is not a credential");
  };
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception&) {
    throw bad();
  }
  if (!j.is_object() || j.size() != 2 || !j.contains("credential_blob") || !j.contains("encrypted_secret") ||
      !j["credential_blob"].is_string() || !j["encrypted_secret"].is_string()) {
    throw bad();
  }
  auto blob = pki::DecodeBase64(j["credential_blob"].get<std::string>());
  auto secret = pki::DecodeBase64(j["encrypted_secret"].get<std::string>());
  if (!blob || !secret || blob->size() > 1024 || secret->size() > 1024) throw bad();
  return {std::move(*blob), std::move(*secret)};
}

}  // namespace

Tpm& AttestingTpm(KeyStore& keys) {
  Tpm* tpm = keys.tpm();
  if (tpm == nullptr) {
    throw Failure(ExitCode::kConfig, "bad-config",
                  "attestation = true needs the key in tpm_key (" + keys.Describe() + " cannot be attested)");
  }
  return *tpm;
}

void EnrollTpm(SshClient& ssh, const RequesterConfig& c, const RequesterEnv& env, Tpm& tpm) {
  json request = json::object();
  request["identity"] = c.name;
  request["ek_certificate"] = B64(tpm.EkCertificate());
  request["ak_public"] = B64(tpm.AkPublic());
  ExecResult begun = ssh.Exec("enroll", request.dump());
  if (begun.exit_status != 0) SignerFailed(begun);
  pki::Bytes secret = tpm.ActivateCredential(ParseCredential(begun.out));
  json answer = json::object();
  answer["identity"] = c.name;
  answer["secret"] = B64(secret);
  ExecResult done = ssh.Exec("activate", answer.dump());
  if (done.exit_status != 0) SignerFailed(done);
  Log(env, "enrolled this TPM with the signer for " + c.name);
}

std::string AttestedBody(Tpm& tpm, const pki::Bytes& csr_der, const std::string& csr_base64) {
  pki::Bytes digest(SHA256_DIGEST_LENGTH);
  SHA256(csr_der.data(), csr_der.size(), digest.data());
  pki::Bytes evidence = pki::EncodeEvidence(tpm.Certify(digest));
  return csr_base64 + "\n.\n" + pki::EncodeBase64(evidence.data(), evidence.size(), 76) + "\n";
}

}  // namespace requester
