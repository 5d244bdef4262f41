// SPDX-License-Identifier: Apache-2.0
// The master's side of key attestation (#27): enrolling its TPM with a signer and the evidence
// sent with each CSR. docs/protocol.md §8 is the contract.
#pragma once

#include <string>

#include "pki/attestation.h"
#include "requester/config.h"
#include "requester/key_store.h"
#include "requester/requester.h"
#include "requester/ssh_client.h"
#include "requester/tpm.h"

namespace requester {

// The TPM of an attesting key store; Failure(kConfig, "bad-config") when the key is not a tpm_key
// (ValidateConfig refuses that configuration first; this keeps every caller safe on its own).
Tpm& AttestingTpm(KeyStore& keys);

// enroll then activate over `ssh`: the EK certificate and AK go out, the signer's credential is
// opened by this TPM (TPM2_ActivateCredential) and its secret sent back. The signer's refusals
// are thrown as SignerRefusal, the TPM's own failures as they come.
void EnrollTpm(SshClient& ssh, const RequesterConfig& config, const RequesterEnv& env, Tpm& tpm);

// A `sign --attested` body: the base64 CSR, a line ".", the base64 evidence (TPM2_Certify of the
// loaded key by the AK, qualifyingData = SHA-256 of `csr_der`).
std::string AttestedBody(Tpm& tpm, const pki::Bytes& csr_der, const std::string& csr_base64);

}  // namespace requester
