// SPDX-License-Identifier: Apache-2.0
// Hardware-attested master keys (#27), the signer's side: enrolling a master's TPM (its EK
// certificate checked against ek_roots, its AK proven to live in the TPM holding that EK by
// credential activation) and checking, for each etcd-client request, that the CSR's key is a
// non-duplicable key certified by the enrolled AK. docs/protocol.md §8 is the contract.
//
// Enrollments live in enrollment_dir (the signer account's directory, 0700): NAME.json for an
// enrolled TPM, NAME.challenge for an enrollment between its two steps. Both are written
// atomically and read without following links, owned by the signer account; a file of another
// owner or mode is `enrollment-unsafe`.
#pragma once

#include <optional>
#include <string>

#include "pki/attestation.h"
#include "pki/certificate_profile.h"
#include "signer/config.h"

namespace signer {

// How long an enrollment challenge may wait for its answer.
constexpr std::chrono::seconds kChallengeLifetime{300};

struct Enrollment {
  std::string identity;
  std::string ek_sha256;   // SHA-256 of the EK's canonical public key: the TPM's identity
  std::string ek_issuer;   // the EK certificate's issuer (RFC 2253) and serial (hex), for operators
  std::string ek_serial;
  pki::Bytes ak_public;    // the AK's TPM2B_PUBLIC
  std::string ak_sha256;   // SHA-256 of ak_public's bytes
  std::string time;        // RFC 3339: enrolled (or challenged)
  // With approval = "new-keys" (#14), a new TPM waits for an operator (etcd-signerctl enrollment
  // approve); the same TPM enrolling again keeps its approval.
  bool approved = true;
};

// enroll: the body {"identity", "ek_certificate" (base64 DER), "ak_public" (base64 TPM2B_PUBLIC)}
// checked (identity against the binding and name_pattern; the EK against ek_roots; the AK's
// attributes), a fresh secret sealed to that EK and AK (TPM2_MakeCredential), the challenge kept
// for kChallengeLifetime. A TPM other than the one already enrolled for the identity is refused
// (77 enrollment-exists: an operator removes the old one first). `*facts` gets what was learnt,
// for the audit record, even when a check fails. Returns the answer line
// {"credential_blob": base64, "encrypted_secret": base64}.
std::string BeginEnrollment(const SignerConfig& config, const std::string& body, pki::TimePoint now,
                            Enrollment* facts);

// activate: the body {"identity", "secret" (base64)}; the identity's challenge is consumed (one
// answer per challenge), must be unexpired and its secret must match (77 credential-mismatch,
// 77 no-challenge). Then the enrollment is on file. Returns it; `*facts` gets what was learnt, for
// the audit record, even when a check fails.
Enrollment FinishEnrollment(const SignerConfig& config, const std::string& body, pki::TimePoint now,
                            Enrollment* facts);

// The enrollment on file for `identity`, if any.
std::optional<Enrollment> FindEnrollment(const SignerConfig& config, const std::string& identity);
std::vector<Enrollment> ListEnrollments(const SignerConfig& config);
// Removes the identity's enrollment (an operator's command). False when there was none.
bool RemoveEnrollment(const SignerConfig& config, const std::string& identity);
// Approves the identity's enrollment (an operator's command, root's or the signer account's); the
// file keeps its owner. Failure(kNoInput, "not-enrolled") when there is none; when `ek_sha256` is
// given it must be the enrolled TPM's (Failure(kDataErr, "ek-mismatch")).
Enrollment ApproveEnrollment(const SignerConfig& config, const std::string& identity, const std::string& ek_sha256);
// The command an operator runs to approve `identity`'s TPM.
std::string ApproveEnrollmentCommand(const SignerConfig& config, const std::string& identity,
                                     const std::string& ek_sha256);

// A sign/check body with `--attested`: the base64 CSR, a line ".", the base64 evidence.
struct AttestedBody {
  std::string csr;
  std::optional<pki::Bytes> evidence;
};
AttestedBody SplitAttestedBody(const std::string& body, bool attested);

// The attestation policy for an etcd-client request by `identity`: returns whether the key was
// attested. Off: false, evidence unread. Optional/required: evidence, when sent, must verify
// against the identity's enrolled AK (pki::VerifyEvidence's reasons; ak-not-enrolled when none);
// required without evidence is 77 attestation-required; a TPM enrolled but not approved yet is
// 75 enrollment-pending with the command that approves it.
bool CheckAttestation(const SignerConfig& config, const std::string& identity, const std::optional<pki::Bytes>& evidence,
                      const pki::Bytes& csr_der, const std::string& csr_key_sha256);

std::string AttestationModeName(AttestationMode mode);

}  // namespace signer
