// SPDX-License-Identifier: Apache-2.0
// attestation-bench (#27): what key attestation costs. On the master, the TPM's own TPM2_Certify of
// the key (swtpm through --tcti); on the signer, the evidence check of one request (decode,
// signature, binding, attributes: pki::DecodeEvidence + pki::VerifyEvidence) and one enrollment's
// TPM2_MakeCredential. Prints "attest/<what> median_us p10_us p90_us" lines for bench/run.
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <vector>

#include "base/flags.h"
#include "pki/attestation.h"
#include "pki/csr.h"
#include "pki/key.h"
#include "requester/tpm.h"

namespace {

void Measure(const char* label, int runs, const std::function<void()>& step) {
  std::vector<double> us;
  for (int i = 0; i < runs; ++i) {
    auto start = std::chrono::steady_clock::now();
    step();
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(us.begin(), us.end());
  auto at = [&](double q) { return us[static_cast<std::size_t>(q * static_cast<double>(us.size() - 1))]; };
  std::printf("attest/%s\t%.0f\t%.0f\t%.0f\n", label, at(0.5), at(0.1), at(0.9));
}

}  // namespace

int main(int argc, char** argv) {
  std::string tcti;
  int runs = 50;
  int code = base::ParseCommandLine(
      "attestation-bench: TPM2_Certify on swtpm, the signer's evidence check, MakeCredential", argc, argv,
      [&](base::Flags& app) {
        app.Option("--tcti", tcti, "The TPM (e.g. swtpm:host=127.0.0.1,port=2321)").Required();
        app.Option("--runs", runs, "Runs per row");
      });
  if (code >= 0) return code;
  requester::Tpm tpm(tcti);
  pki::EvpPkeyPtr key = tpm.LoadSigningKey(tpm.CreateSigningKey(""), "");
  pki::X509ReqPtr csr = pki::BuildCsr("kubemaster-1", key.get());
  pki::Bytes der = pki::ToDer(csr.get());
  pki::Bytes digest(SHA256_DIGEST_LENGTH);
  SHA256(der.data(), der.size(), digest.data());
  const std::string key_sha256 = pki::CanonicalizeKey(key.get()).sha256;
  pki::Bytes wire;
  Measure("tpm-certify", runs, [&] { wire = pki::EncodeEvidence(tpm.Certify(digest)); });
  const pki::Bytes ak = pki::DecodeEvidence(wire).ak_public;
  Measure("signer-check", runs * 20, [&] { pki::VerifyEvidence(pki::DecodeEvidence(wire), ak, der, key_sha256); });
  pki::EvpPkeyPtr ek(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)));
  const pki::Bytes name = pki::TpmObjectName(ak);
  Measure("make-credential", runs * 4, [&] { pki::MakeCredential(ek.get(), name, pki::Bytes(32, 1)); });
  return 0;
}
