// SPDX-License-Identifier: Apache-2.0
// The master's TPM through tpm2-tss's ESAPI (#27): its certificate key, made and used inside the
// TPM, and what attestation needs of it (the EK certificate, an AK, TPM2_ActivateCredential,
// TPM2_Certify).
//
// Why not through tpm2-pkcs11: TPM2_Certify needs the certified key's own authorization (ADMIN
// role), and tpm2-pkcs11 keeps a random authValue per key, encrypted in its store under a key
// sealed to the user PIN; nothing outside tpm2-pkcs11 can use it. A key made here has a known
// authValue (the PIN of pin_file/pin_env, or empty), so the same key can sign the CSR, the SSH
// agent's and the forwarder's handshakes, and be certified.
//
// Objects:
//   - the parent: the persistent SRK at 0x81000001 when the TPM has one, else a transient primary
//     from the TCG's ECC P-256 SRK template in the owner hierarchy;
//   - the certificate key: ECC P-256, sign, userWithAuth, fixedTPM, fixedParent,
//     sensitiveDataOrigin, stored as its TPM2B_PUBLIC and TPM2B_PRIVATE (the private part is
//     encrypted by the parent and useless outside this TPM);
//   - the EK: the persistent RSA EK at 0x81010001, else the TCG default template L-1; its
//     certificate from NV index 0x01c00002;
//   - the AK: a primary ECC P-256 restricted signing key (ECDSA/SHA-256) in the endorsement
//     hierarchy, the same every time it is made (so nothing of it is stored).
// One TPM context per object, guarded by a mutex: the forwarder signs from several threads.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "pki/attestation.h"
#include "pki/openssl.h"

namespace requester {

// The TCTI when the configuration names none: the kernel's resource manager.
constexpr const char* kDefaultTcti = "device:/dev/tpmrm0";

struct TpmKeyBlobs {
  pki::Bytes public_area;   // TPM2B_PUBLIC, marshalled
  pki::Bytes private_area;  // TPM2B_PRIVATE, marshalled
};

// The key file (tpm_key): "etcd-requester tpm2 key v1", then "public BASE64" and "private BASE64".
std::string EncodeTpmKeyFile(const TpmKeyBlobs& blobs);
// Failure(kConfig, "tpm-key-file") for anything else.
TpmKeyBlobs DecodeTpmKeyFile(const std::string& text);

class Tpm {
 public:
  // Connects through `tcti` (e.g. "device:/dev/tpmrm0", "swtpm:host=127.0.0.1,port=2321").
  // Failure(kUnavailable, "tpm-unavailable") naming the TPM's or the TCTI's error.
  explicit Tpm(const std::string& tcti);
  ~Tpm();
  Tpm(const Tpm&) = delete;
  Tpm& operator=(const Tpm&) = delete;

  // A new certificate key under the parent, with `auth` as its authValue.
  TpmKeyBlobs CreateSigningKey(const std::string& auth);
  // Loads the key (once per Tpm) and returns an OpenSSL key whose signatures the TPM makes; it
  // must not outlive this Tpm. Failure(kUnavailable, "tpm-key") when the TPM refuses the blobs
  // (another TPM's key, a cleared owner hierarchy).
  pki::EvpPkeyPtr LoadSigningKey(const TpmKeyBlobs& blobs, const std::string& auth);

  // The EK certificate (DER) from NV 0x01c00002. Failure(kUnavailable, "ek-certificate-missing").
  pki::Bytes EkCertificate();
  // The AK's TPM2B_PUBLIC.
  pki::Bytes AkPublic();
  // TPM2_ActivateCredential with the AK and the EK: the secret the signer sealed, or
  // Failure(kNoPerm, "credential-not-for-this-tpm") when this TPM cannot open it.
  pki::Bytes ActivateCredential(const pki::Credential& credential);
  // TPM2_Certify of the loaded certificate key by the AK, qualifyingData = `qualifying`.
  pki::AttestationEvidence Certify(const pki::Bytes& qualifying);

  struct State;  // tpm.cc's own (the key's signing callback reaches it)

 private:
  std::unique_ptr<State> s_;
};

}  // namespace requester
