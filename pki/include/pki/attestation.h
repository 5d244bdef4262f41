// SPDX-License-Identifier: Apache-2.0
// TPM 2.0 key attestation (#27): the one module that reads the TPM structures a master sends (its
// endorsement key certificate, its attestation key, TPM2_Certify evidence for a CSR's key) and the
// one that builds what the signer sends back (TPM2_MakeCredential, done in software).
//
// Every blob here is attacker input. Each is unmarshalled with tpm2-tss's MU functions within a
// size limit, must re-marshal to exactly the bytes received (no trailing bytes, no second encoding
// of the same structure) and is checked before any value in it is used. What is supported is
// deliberately narrow, so that nothing else can be slipped in:
//   - EK: RSA 2048 with the TCG default template's AES-128-CFB (EK Credential Profile, template
//     L-1), certified by a chain to the operator's `ek_roots`;
//   - AK: a restricted ECC P-256 signing key (ECDSA, SHA-256) with fixedTPM, fixedParent and
//     sensitiveDataOrigin;
//   - the certified key: an ECC P-256 signing key whose name algorithm is SHA-256.
// Failures are base::Failure with the reason codes of docs/protocol.md §8.
#pragma once

#include <string>
#include <vector>

#include "pki/certificate_profile.h"
#include "pki/key.h"
#include "pki/openssl.h"

namespace pki {

using Bytes = std::vector<unsigned char>;

// Upper bounds on what a request may carry (a TPM2B_PUBLIC is below 700 bytes, an EK certificate
// of a real TPM below 2 KiB).
constexpr std::size_t kMaxEvidenceBytes = 4096;
constexpr std::size_t kMaxEkCertificateBytes = 8192;

// What a requester sends with a CSR: TPM2_Certify over the CSR's key by its enrolled AK, with
// qualifyingData = SHA-256 of the CSR's DER (the evidence is for this CSR, no other).
struct AttestationEvidence {
  Bytes key_public;  // TPM2B_PUBLIC of the certified key
  Bytes ak_public;   // TPM2B_PUBLIC of the AK that signed
  Bytes attest;      // TPM2B_ATTEST (TPMS_ATTEST of type TPM_ST_ATTEST_CERTIFY)
  Bytes signature;   // TPMT_SIGNATURE by the AK over the TPMS_ATTEST
};

// Wire form: "EKA1" then the four structures, marshalled, back to back.
Bytes EncodeEvidence(const AttestationEvidence& evidence);
// Failure(kDataErr, "attestation-invalid") for anything but exactly that within kMaxEvidenceBytes.
AttestationEvidence DecodeEvidence(const Bytes& wire);

// The checks of one signing request, in this order:
//   1. the AK is the one enrolled for the identity (`enrolled_ak_public`, bytes) — else
//      77 ak-not-enrolled;
//   2. the signature verifies with that AK over the TPMS_ATTEST, which is TPM-generated
//      (magic), of type certify, with extraData = SHA-256(csr_der) — else 65 attestation-invalid;
//   3. the certified name is the name of `key_public`, whose key is the CSR's (`csr_key_sha256`,
//      its canonical SHA-256, CanonicalKey::sha256) — else 65 attestation-invalid;
//   4. `key_public` says fixedTPM, fixedParent and sensitiveDataOrigin (made inside this TPM and
//      unable to leave it, not imported) — else 77 key-not-fixed.
void VerifyEvidence(const AttestationEvidence& evidence, const Bytes& enrolled_ak_public, const Bytes& csr_der,
                    const std::string& csr_key_sha256);

// The TPM name of a TPM2B_PUBLIC: nameAlg (SHA-256) || SHA-256(TPMT_PUBLIC). The public must
// decode (65 attestation-invalid).
Bytes TpmObjectName(const Bytes& tpm2b_public);

// The public key in a TPM2B_PUBLIC (ECC P-256 or RSA), as an OpenSSL key. 65 attestation-invalid
// for other types or malformed areas.
EvpPkeyPtr TpmPublicKey(const Bytes& tpm2b_public);

// An AK fit for enrollment: restricted, sign, fixedTPM, fixedParent, sensitiveDataOrigin, not
// decrypt — else 77 ak-not-restricted; ECC P-256 with ECDSA/SHA-256 and nameAlg SHA-256 — else
// 65 attestation-invalid.
void CheckAttestationKey(const Bytes& ak_public);

// The EK certificate, DER, parsed (65 ek-invalid: not one canonical certificate, larger than
// kMaxEkCertificateBytes, not an RSA 2048 key) and verified against `roots` (self-signed ones are
// anchors; intermediates in the same bundle help build the chain) at `now` — else 77 ek-untrusted.
X509Ptr VerifyEkCertificate(const Bytes& der, const std::vector<X509Ptr>& roots, TimePoint now);

// TPM2_MakeCredential in software: `secret` sealed so that only the TPM holding `ek` (its
// private half) can recover it, and only for an object named `ak_name` loaded in that TPM
// (TPM2_ActivateCredential). Returns the TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET, marshalled.
struct Credential {
  Bytes id_object;
  Bytes encrypted_secret;
};
Credential MakeCredential(EVP_PKEY* ek, const Bytes& ak_name, const Bytes& secret);

}  // namespace pki
