// SPDX-License-Identifier: Apache-2.0
// pki/attestation (#27): each check of a signing request's TPM evidence, on evidence built here in
// software (an OpenSSL key standing in for the AK, TPM structures marshalled with tpm2-tss's MU),
// so that every field can be wrong in exactly one way. The real TPM path is in
// tests/integration/requester/attestation_test.cc.
#include "pki/attestation.h"

#include <gtest/gtest.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <tss2/tss2_mu.h>

#include <cstring>
#include <functional>

#include "base/failure.h"
#include "pki/csr.h"
#include "pki/key.h"

namespace pki {
namespace {

constexpr TPMA_OBJECT kFixed = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN;
constexpr TPMA_OBJECT kAkAttributes = kFixed | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;
constexpr TPMA_OBJECT kKeyAttributes = kFixed | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT;

EvpPkeyPtr NewEcKey() { return EvpPkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")); }

template <typename T>
Bytes Marshal(const T& value, TSS2_RC (*marshal)(const T*, uint8_t*, size_t, size_t*)) {
  Bytes buf(4096);
  size_t size = 0;
  EXPECT_EQ(marshal(&value, buf.data(), buf.size(), &size), TSS2_RC_SUCCESS);
  buf.resize(size);
  return buf;
}

// The TPM2B_PUBLIC of an EC P-256 key with `attributes`; an AK carries ECDSA/SHA-256 as its scheme.
Bytes PublicOf(EVP_PKEY* key, TPMA_OBJECT attributes) {
  TPM2B_PUBLIC pub{};
  pub.publicArea.type = TPM2_ALG_ECC;
  pub.publicArea.nameAlg = TPM2_ALG_SHA256;
  pub.publicArea.objectAttributes = attributes;
  auto& ecc = pub.publicArea.parameters.eccDetail;
  ecc.symmetric.algorithm = TPM2_ALG_NULL;
  ecc.scheme.scheme = (attributes & TPMA_OBJECT_RESTRICTED) != 0 ? TPM2_ALG_ECDSA : TPM2_ALG_NULL;
  ecc.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
  ecc.curveID = TPM2_ECC_NIST_P256;
  ecc.kdf.scheme = TPM2_ALG_NULL;
  CanonicalKey canonical = CanonicalizeKey(key);
  const Bytes& point = canonical.key_bits;  // 04 || X || Y
  EXPECT_EQ(point.size(), 65u);
  pub.publicArea.unique.ecc.x.size = 32;
  std::memcpy(pub.publicArea.unique.ecc.x.buffer, point.data() + 1, 32);
  pub.publicArea.unique.ecc.y.size = 32;
  std::memcpy(pub.publicArea.unique.ecc.y.buffer, point.data() + 33, 32);
  return Marshal(pub, Tss2_MU_TPM2B_PUBLIC_Marshal);
}

struct Parts {
  TPMS_ATTEST attest{};
  EVP_PKEY* signer = nullptr;
};

class Evidence : public ::testing::Test {
 protected:
  void SetUp() override {
    ak_ = NewEcKey();
    key_ = NewEcKey();
    csr_ = BuildCsr("kubemaster-1", key_.get());
    csr_der_ = ToDer(csr_.get());
    csr_key_ = CanonicalizeKey(key_.get()).sha256;
  }

  // TPM2_Certify's output as a TPM would make it for key_public, signed by `signer`.
  AttestationEvidence Make(const Bytes& key_public, EVP_PKEY* signer,
                           const std::function<void(TPMS_ATTEST&)>& change = nullptr) {
    TPMS_ATTEST a{};
    a.magic = TPM2_GENERATED_VALUE;
    a.type = TPM2_ST_ATTEST_CERTIFY;
    Bytes digest(SHA256_DIGEST_LENGTH);
    SHA256(csr_der_.data(), csr_der_.size(), digest.data());
    a.extraData.size = 32;
    std::memcpy(a.extraData.buffer, digest.data(), 32);
    Bytes name = TpmObjectName(key_public);
    a.attested.certify.name.size = static_cast<UINT16>(name.size());
    std::memcpy(a.attested.certify.name.name, name.data(), name.size());
    if (change) change(a);
    Bytes body = Marshal(a, Tss2_MU_TPMS_ATTEST_Marshal);
    TPM2B_ATTEST attest2b{};
    attest2b.size = static_cast<UINT16>(body.size());
    std::memcpy(attest2b.attestationData, body.data(), body.size());
    // ECDSA over the TPMS_ATTEST, as the TPM signs with a restricted ECDSA/SHA-256 key.
    EvpMdCtxPtr md(EVP_MD_CTX_new());
    size_t der_len = 0;
    EXPECT_EQ(EVP_DigestSignInit(md.get(), nullptr, EVP_sha256(), nullptr, signer), 1);
    EXPECT_EQ(EVP_DigestSign(md.get(), nullptr, &der_len, body.data(), body.size()), 1);
    Bytes der(der_len);
    EXPECT_EQ(EVP_DigestSign(md.get(), der.data(), &der_len, body.data(), body.size()), 1);
    const unsigned char* p = der.data();
    ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len));
    TPMT_SIGNATURE s{};
    s.sigAlg = TPM2_ALG_ECDSA;
    s.signature.ecdsa.hash = TPM2_ALG_SHA256;
    s.signature.ecdsa.signatureR.size =
        static_cast<UINT16>(BN_bn2bin(ECDSA_SIG_get0_r(sig), s.signature.ecdsa.signatureR.buffer));
    s.signature.ecdsa.signatureS.size =
        static_cast<UINT16>(BN_bn2bin(ECDSA_SIG_get0_s(sig), s.signature.ecdsa.signatureS.buffer));
    ECDSA_SIG_free(sig);
    return {key_public, PublicOf(signer, kAkAttributes),
            Marshal(attest2b, Tss2_MU_TPM2B_ATTEST_Marshal), Marshal(s, Tss2_MU_TPMT_SIGNATURE_Marshal)};
  }

  AttestationEvidence Good() { return Make(PublicOf(key_.get(), kKeyAttributes), ak_.get()); }
  Bytes EnrolledAk() { return PublicOf(ak_.get(), kAkAttributes); }

  // The reason VerifyEvidence gives, or "" when it accepts.
  std::string ReasonFor(const AttestationEvidence& e) {
    try {
      VerifyEvidence(DecodeEvidence(EncodeEvidence(e)), EnrolledAk(), csr_der_, csr_key_);
      return "";
    } catch (const base::Failure& f) {
      return f.reason();
    }
  }

  EvpPkeyPtr ak_, key_;
  X509ReqPtr csr_;
  Bytes csr_der_;
  std::string csr_key_;
};

TEST_F(Evidence, ATpmCertifiedNonDuplicableKeyOfTheCsrIsAccepted) { EXPECT_EQ(ReasonFor(Good()), ""); }

TEST_F(Evidence, EachFieldWrongInOneWayHasItsReason) {
  // Another AK than the enrolled one (evidence from a second TPM).
  EvpPkeyPtr other = NewEcKey();
  EXPECT_EQ(ReasonFor(Make(PublicOf(key_.get(), kKeyAttributes), other.get())), "ak-not-enrolled");
  // Evidence made for another CSR (replayed with a new request).
  EXPECT_EQ(ReasonFor(Make(PublicOf(key_.get(), kKeyAttributes), ak_.get(),
                           [](TPMS_ATTEST& a) { a.extraData.buffer[0] ^= 1; })),
            "attestation-invalid");
  // Not generated by a TPM, or not a certification.
  EXPECT_EQ(ReasonFor(Make(PublicOf(key_.get(), kKeyAttributes), ak_.get(), [](TPMS_ATTEST& a) { a.magic = 0; })),
            "attestation-invalid");
  EXPECT_EQ(ReasonFor(Make(PublicOf(key_.get(), kKeyAttributes), ak_.get(),
                           [](TPMS_ATTEST& a) { a.type = TPM2_ST_ATTEST_CREATION; })),
            "attestation-invalid");
  // A TPM key certified, but the CSR is for a file key.
  EvpPkeyPtr file_key = NewEcKey();
  EXPECT_EQ(ReasonFor(Make(PublicOf(file_key.get(), kKeyAttributes), ak_.get())), "attestation-invalid");
  // The certified name is another object's than the public area sent with it.
  AttestationEvidence swapped = Make(PublicOf(file_key.get(), kKeyAttributes), ak_.get());
  swapped.key_public = PublicOf(key_.get(), kKeyAttributes);
  EXPECT_EQ(ReasonFor(swapped), "attestation-invalid");
  // The signature does not verify.
  AttestationEvidence tampered = Good();
  tampered.signature[tampered.signature.size() - 1] ^= 1;
  EXPECT_EQ(ReasonFor(tampered), "attestation-invalid");
  // A duplicable or imported key (each of the three attributes missing).
  for (TPMA_OBJECT missing : {TPMA_OBJECT_FIXEDTPM, TPMA_OBJECT_FIXEDPARENT, TPMA_OBJECT_SENSITIVEDATAORIGIN}) {
    EXPECT_EQ(ReasonFor(Make(PublicOf(key_.get(), kKeyAttributes & ~missing), ak_.get())), "key-not-fixed") << missing;
  }
}

TEST_F(Evidence, TheWireFormatIsStrict) {
  Bytes wire = EncodeEvidence(Good());
  EXPECT_NO_THROW(DecodeEvidence(wire));
  auto reason = [](const Bytes& w) {
    try {
      DecodeEvidence(w);
      return std::string();
    } catch (const base::Failure& f) {
      return f.reason();
    }
  };
  Bytes trailing = wire;
  trailing.push_back(0);
  EXPECT_EQ(reason(trailing), "attestation-invalid");
  EXPECT_EQ(reason(Bytes(wire.begin(), wire.end() - 1)), "attestation-invalid");
  Bytes magic = wire;
  magic[0] = 'X';
  EXPECT_EQ(reason(magic), "attestation-invalid");
  EXPECT_EQ(reason(Bytes(kMaxEvidenceBytes + 1, 0)), "attestation-invalid");
  EXPECT_EQ(reason({}), "attestation-invalid");
  // The first TPM2B_PUBLIC's size one larger than its structure: does not decode as four structures.
  Bytes size = wire;
  size[5] = static_cast<unsigned char>(size[5] + 1);
  EXPECT_EQ(reason(size), "attestation-invalid");
}

TEST(AttestationKey, OnlyARestrictedNonDuplicableSigningKeyMayBeAnAk) {
  EvpPkeyPtr key = NewEcKey();
  EXPECT_NO_THROW(CheckAttestationKey(PublicOf(key.get(), kAkAttributes)));
  auto reason = [&](TPMA_OBJECT attributes) {
    try {
      CheckAttestationKey(PublicOf(key.get(), attributes));
      return std::string();
    } catch (const base::Failure& f) {
      return f.reason();
    }
  };
  EXPECT_EQ(reason(kKeyAttributes), "ak-not-restricted");  // an ordinary key could sign any TPMS_ATTEST
  EXPECT_EQ(reason(kAkAttributes & ~TPMA_OBJECT_FIXEDTPM), "ak-not-restricted");
  EXPECT_EQ(reason(kAkAttributes | TPMA_OBJECT_DECRYPT), "ak-not-restricted");
}

TEST(Credential, IsAnIdObjectAndASecretForAn2048BitEk) {
  EvpPkeyPtr ek(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)));
  Bytes name(34, 0x0b);
  Credential c = MakeCredential(ek.get(), name, Bytes(32, 7));
  // TPM2B_ID_OBJECT: size, then the HMAC as a TPM2B (32) and the encrypted TPM2B_DIGEST (2 + 32).
  ASSERT_EQ(c.id_object.size(), 2u + 2u + 32u + 34u);
  EXPECT_EQ(c.id_object[0] * 256 + c.id_object[1], 68);
  ASSERT_EQ(c.encrypted_secret.size(), 2u + 256u);
  // A fresh seed each time: two credentials for the same secret differ.
  EXPECT_NE(MakeCredential(ek.get(), name, Bytes(32, 7)).encrypted_secret, c.encrypted_secret);
}

}  // namespace
}  // namespace pki
