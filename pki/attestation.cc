// SPDX-License-Identifier: Apache-2.0
#include "pki/attestation.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509_vfy.h>
#include <tss2/tss2_mu.h>

#include <array>
#include <cstring>

#include "base/failure.h"
#include "pki/certificate_profile.h"

namespace pki {
namespace {

using base::ExitCode;
using base::Failure;

[[noreturn]] void Invalid(const std::string& message) {
  throw Failure(ExitCode::kDataErr, "attestation-invalid", message);
}

// Unmarshals one T at *offset of `data`, then re-marshals it and demands the same bytes: one
// structure, one encoding. `what` names it in the error.
template <typename T>
T Take(const Bytes& data, std::size_t* offset, const char* what,
       TSS2_RC (*unmarshal)(const uint8_t*, size_t, size_t*, T*),
       TSS2_RC (*marshal)(const T*, uint8_t*, size_t, size_t*), Bytes* raw = nullptr) {
  T value{};
  std::size_t start = *offset;
  if (unmarshal(data.data(), data.size(), offset, &value) != TSS2_RC_SUCCESS) {
    Invalid(std::string("the ") + what + " does not decode");
  }
  std::array<uint8_t, kMaxEvidenceBytes> again{};
  std::size_t written = 0;
  if (marshal(&value, again.data(), again.size(), &written) != TSS2_RC_SUCCESS || written != *offset - start ||
      std::memcmp(again.data(), data.data() + start, written) != 0) {
    Invalid(std::string("the ") + what + " is not canonically marshalled");
  }
  if (raw != nullptr) raw->assign(data.begin() + static_cast<long>(start), data.begin() + static_cast<long>(*offset));
  return value;
}

TPM2B_PUBLIC DecodePublic(const Bytes& bytes, const char* what) {
  std::size_t offset = 0;
  TPM2B_PUBLIC pub = Take<TPM2B_PUBLIC>(bytes, &offset, what, Tss2_MU_TPM2B_PUBLIC_Unmarshal, Tss2_MU_TPM2B_PUBLIC_Marshal);
  if (offset != bytes.size()) Invalid(std::string("the ") + what + " has bytes after it");
  return pub;
}

Bytes Sha256(const uint8_t* data, std::size_t size) {
  Bytes out(SHA256_DIGEST_LENGTH);
  SHA256(data, size, out.data());
  return out;
}

Bytes NameOf(const TPMT_PUBLIC& area) {
  if (area.nameAlg != TPM2_ALG_SHA256) Invalid("the object's name algorithm is not SHA-256");
  std::array<uint8_t, sizeof(TPMT_PUBLIC)> buf{};
  std::size_t size = 0;
  if (Tss2_MU_TPMT_PUBLIC_Marshal(&area, buf.data(), buf.size(), &size) != TSS2_RC_SUCCESS) {
    Invalid("the object's public area does not marshal");
  }
  Bytes name = {0x00, 0x0b};  // TPM2_ALG_SHA256, big-endian
  Bytes digest = Sha256(buf.data(), size);
  name.insert(name.end(), digest.begin(), digest.end());
  return name;
}

// A public key of `type` from the parameters in `bld`; attestation-invalid with `failure` otherwise.
EvpPkeyPtr PublicKeyFrom(OSSL_PARAM_BLD* bld, const char* type, const char* failure) {
  OsslParamPtr params(bld != nullptr ? OSSL_PARAM_BLD_to_param(bld) : nullptr);
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* key = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    DrainOpenSslErrors();
    Invalid(failure);
  }
  return EvpPkeyPtr(key);
}

EvpPkeyPtr EcP256Key(const TPMS_ECC_POINT& point) {
  if (point.x.size == 0 || point.x.size > 32 || point.y.size == 0 || point.y.size > 32) {
    Invalid("the EC point is not a P-256 point");
  }
  unsigned char octets[65] = {0x04};
  std::memcpy(octets + 1 + 32 - point.x.size, point.x.buffer, point.x.size);
  std::memcpy(octets + 33 + 32 - point.y.size, point.y.buffer, point.y.size);
  OsslParamBldPtr bld(OSSL_PARAM_BLD_new());
  OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
  OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, octets, sizeof octets);
  EvpPkeyPtr out = PublicKeyFrom(bld.get(), "EC", "the EC point is not on P-256");
  // fromdata does not check the point: the canonical form does (and throws key-type if off-curve).
  try {
    CanonicalizeKey(out.get());
  } catch (const Failure&) {
    Invalid("the EC point is not on P-256");
  }
  return out;
}

EvpPkeyPtr RsaKey(const TPMT_PUBLIC& area) {
  const TPM2B_PUBLIC_KEY_RSA& n = area.unique.rsa;
  uint32_t e = area.parameters.rsaDetail.exponent == 0 ? 65537 : area.parameters.rsaDetail.exponent;
  if (n.size == 0) Invalid("the RSA modulus is empty");
  BignumPtr bn_n(BN_bin2bn(n.buffer, n.size, nullptr));
  BignumPtr bn_e(BN_new());
  OsslParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !bld || BN_set_word(bn_e.get(), e) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    Invalid("the RSA key cannot be built");
  }
  return PublicKeyFrom(bld.get(), "RSA", "the RSA key cannot be built");
}

EvpPkeyPtr KeyOf(const TPMT_PUBLIC& area) {
  if (area.type == TPM2_ALG_ECC) {
    if (area.parameters.eccDetail.curveID != TPM2_ECC_NIST_P256) Invalid("the EC key is not on P-256");
    return EcP256Key(area.unique.ecc);
  }
  if (area.type == TPM2_ALG_RSA) return RsaKey(area);
  Invalid("the object is neither an ECC nor an RSA key");
}

bool Has(TPMA_OBJECT attributes, TPMA_OBJECT bits) { return (attributes & bits) == bits; }

constexpr TPMA_OBJECT kFixed = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN;

// The AK's ECDSA signature over `signed_bytes`.
bool VerifiesWith(EVP_PKEY* ak, const TPMT_SIGNATURE& sig, const Bytes& signed_bytes) {
  if (sig.sigAlg != TPM2_ALG_ECDSA || sig.signature.ecdsa.hash != TPM2_ALG_SHA256) return false;
  const TPMS_SIGNATURE_ECDSA& e = sig.signature.ecdsa;
  BignumPtr r(BN_bin2bn(e.signatureR.buffer, e.signatureR.size, nullptr));
  BignumPtr s(BN_bin2bn(e.signatureS.buffer, e.signatureS.size, nullptr));
  ECDSA_SIG* der_sig = ECDSA_SIG_new();
  if (!r || !s || der_sig == nullptr || ECDSA_SIG_set0(der_sig, r.get(), s.get()) != 1) {
    ECDSA_SIG_free(der_sig);
    return false;
  }
  r.release();
  s.release();
  unsigned char* der = nullptr;
  int der_len = i2d_ECDSA_SIG(der_sig, &der);
  ECDSA_SIG_free(der_sig);
  if (der_len <= 0) return false;
  EvpMdCtxPtr md(EVP_MD_CTX_new());
  bool ok = md && EVP_DigestVerifyInit(md.get(), nullptr, EVP_sha256(), nullptr, ak) == 1 &&
            EVP_DigestVerify(md.get(), der, static_cast<std::size_t>(der_len), signed_bytes.data(),
                             signed_bytes.size()) == 1;
  OPENSSL_free(der);
  DrainOpenSslErrors();
  return ok;
}

// KDFa (TPM 2.0 Part 1, 11.4.10.2) with SHA-256: `bits` of HMAC(key, i || label\0 || u || v || bits).
Bytes Kdfa(const Bytes& key, const char* label, const Bytes& context_u, const Bytes& context_v, uint32_t bits) {
  Bytes out;
  for (uint32_t i = 1; out.size() * 8 < bits; ++i) {
    Bytes in = {static_cast<unsigned char>(i >> 24), static_cast<unsigned char>(i >> 16),
                static_cast<unsigned char>(i >> 8), static_cast<unsigned char>(i)};
    in.insert(in.end(), label, label + std::strlen(label) + 1);
    in.insert(in.end(), context_u.begin(), context_u.end());
    in.insert(in.end(), context_v.begin(), context_v.end());
    for (int shift : {24, 16, 8, 0}) in.push_back(static_cast<unsigned char>(bits >> shift));
    unsigned char block[EVP_MAX_MD_SIZE];
    unsigned int block_len = 0;
    if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), in.data(), in.size(), block, &block_len) ==
        nullptr) {
      throw Failure(ExitCode::kSoftware, "internal", "HMAC failed");
    }
    out.insert(out.end(), block, block + block_len);
  }
  out.resize(bits / 8);
  return out;
}

void PutU16(Bytes& out, std::size_t value) {
  out.push_back(static_cast<unsigned char>(value >> 8));
  out.push_back(static_cast<unsigned char>(value));
}

constexpr unsigned char kMagic[4] = {'E', 'K', 'A', '1'};

}  // namespace

Bytes EncodeEvidence(const AttestationEvidence& e) {
  Bytes out(kMagic, kMagic + sizeof kMagic);
  for (const Bytes* part : {&e.key_public, &e.ak_public, &e.attest, &e.signature}) {
    out.insert(out.end(), part->begin(), part->end());
  }
  return out;
}

AttestationEvidence DecodeEvidence(const Bytes& wire) {
  if (wire.size() > kMaxEvidenceBytes) Invalid("the evidence is larger than 4096 bytes");
  if (wire.size() < sizeof kMagic || std::memcmp(wire.data(), kMagic, sizeof kMagic) != 0) {
    Invalid("the evidence does not start with EKA1");
  }
  AttestationEvidence e;
  std::size_t offset = sizeof kMagic;
  Take<TPM2B_PUBLIC>(wire, &offset, "certified key's public area", Tss2_MU_TPM2B_PUBLIC_Unmarshal,
                     Tss2_MU_TPM2B_PUBLIC_Marshal, &e.key_public);
  Take<TPM2B_PUBLIC>(wire, &offset, "AK's public area", Tss2_MU_TPM2B_PUBLIC_Unmarshal, Tss2_MU_TPM2B_PUBLIC_Marshal,
                     &e.ak_public);
  Take<TPM2B_ATTEST>(wire, &offset, "attestation", Tss2_MU_TPM2B_ATTEST_Unmarshal, Tss2_MU_TPM2B_ATTEST_Marshal,
                     &e.attest);
  Take<TPMT_SIGNATURE>(wire, &offset, "signature", Tss2_MU_TPMT_SIGNATURE_Unmarshal, Tss2_MU_TPMT_SIGNATURE_Marshal,
                       &e.signature);
  if (offset != wire.size()) Invalid("the evidence has bytes after its signature");
  return e;
}

Bytes TpmObjectName(const Bytes& tpm2b_public) {
  return NameOf(DecodePublic(tpm2b_public, "public area").publicArea);
}

EvpPkeyPtr TpmPublicKey(const Bytes& tpm2b_public) {
  return KeyOf(DecodePublic(tpm2b_public, "public area").publicArea);
}

void CheckAttestationKey(const Bytes& ak_public) {
  const TPMT_PUBLIC ak = DecodePublic(ak_public, "AK's public area").publicArea;
  if (!Has(ak.objectAttributes, kFixed | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT) ||
      (ak.objectAttributes & TPMA_OBJECT_DECRYPT) != 0) {
    throw Failure(ExitCode::kNoPerm, "ak-not-restricted",
                  "the attestation key is not a restricted signing key that was made in its TPM and cannot leave it "
                  "(restricted, sign, fixedTPM, fixedParent, sensitiveDataOrigin, not decrypt)");
  }
  if (ak.type != TPM2_ALG_ECC || ak.parameters.eccDetail.curveID != TPM2_ECC_NIST_P256 ||
      ak.parameters.eccDetail.scheme.scheme != TPM2_ALG_ECDSA ||
      ak.parameters.eccDetail.scheme.details.ecdsa.hashAlg != TPM2_ALG_SHA256 || ak.nameAlg != TPM2_ALG_SHA256) {
    Invalid("the attestation key is not ECC P-256 with ECDSA/SHA-256 and a SHA-256 name");
  }
  KeyOf(ak);  // the point is on the curve
}

void VerifyEvidence(const AttestationEvidence& e, const Bytes& enrolled_ak_public, const Bytes& csr_der,
                    const std::string& csr_key_sha256) {
  // 1. The AK: the enrolled one, byte for byte (its name and its key follow from these bytes).
  if (e.ak_public.size() != enrolled_ak_public.size() ||
      CRYPTO_memcmp(e.ak_public.data(), enrolled_ak_public.data(), e.ak_public.size()) != 0) {
    throw Failure(ExitCode::kNoPerm, "ak-not-enrolled",
                  "the evidence is signed by an attestation key that is not the one enrolled for this identity");
  }
  // 2. The signature over the TPMS_ATTEST, then its contents.
  std::size_t offset = 0;
  TPM2B_ATTEST attest2b = Take<TPM2B_ATTEST>(e.attest, &offset, "attestation", Tss2_MU_TPM2B_ATTEST_Unmarshal,
                                             Tss2_MU_TPM2B_ATTEST_Marshal);
  Bytes signed_bytes(attest2b.attestationData, attest2b.attestationData + attest2b.size);
  offset = 0;
  TPMT_SIGNATURE sig = Take<TPMT_SIGNATURE>(e.signature, &offset, "signature", Tss2_MU_TPMT_SIGNATURE_Unmarshal,
                                            Tss2_MU_TPMT_SIGNATURE_Marshal);
  EvpPkeyPtr ak = TpmPublicKey(e.ak_public);
  if (!VerifiesWith(ak.get(), sig, signed_bytes)) {
    Invalid("the attestation's signature does not verify with the enrolled attestation key");
  }
  offset = 0;
  TPMS_ATTEST attest = Take<TPMS_ATTEST>(signed_bytes, &offset, "attestation body", Tss2_MU_TPMS_ATTEST_Unmarshal,
                                         Tss2_MU_TPMS_ATTEST_Marshal);
  if (offset != signed_bytes.size()) Invalid("the attestation body has bytes after it");
  if (attest.magic != TPM2_GENERATED_VALUE) Invalid("the attestation was not generated by a TPM");
  if (attest.type != TPM2_ST_ATTEST_CERTIFY) Invalid("the attestation is not a TPM2_Certify");
  Bytes want_extra = Sha256(csr_der.data(), csr_der.size());
  if (attest.extraData.size != want_extra.size() ||
      std::memcmp(attest.extraData.buffer, want_extra.data(), want_extra.size()) != 0) {
    Invalid("the attestation was made for another request (its qualifying data is not the CSR's SHA-256)");
  }
  // 3. What was certified: this public area, whose key is the CSR's.
  const TPMT_PUBLIC key = DecodePublic(e.key_public, "certified key's public area").publicArea;
  Bytes name = NameOf(key);
  const TPM2B_NAME& certified = attest.attested.certify.name;
  if (certified.size != name.size() || std::memcmp(certified.name, name.data(), name.size()) != 0) {
    Invalid("the attestation certifies another object than the public area sent with it");
  }
  if (key.type != TPM2_ALG_ECC) Invalid("the certified key is not an ECC key");
  EvpPkeyPtr key_pkey = KeyOf(key);
  if (CanonicalizeKey(key_pkey.get()).sha256 != csr_key_sha256) {
    Invalid("the certified key is not the CSR's key");
  }
  // 4. A key that was made inside this TPM and can never leave it.
  if (!Has(key.objectAttributes, kFixed)) {
    throw Failure(ExitCode::kNoPerm, "key-not-fixed",
                  "the CSR's key can leave its TPM or was imported into it (it lacks fixedTPM, fixedParent or "
                  "sensitiveDataOrigin)");
  }
}

X509Ptr VerifyEkCertificate(const Bytes& der, const std::vector<X509Ptr>& roots, TimePoint now) {
  auto bad = [](const std::string& m) { return Failure(ExitCode::kDataErr, "ek-invalid", m); };
  if (der.empty() || der.size() > kMaxEkCertificateBytes) throw bad("the EK certificate is empty or larger than 8 KiB");
  const unsigned char* p = der.data();
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert || p != der.data() + der.size()) {
    DrainOpenSslErrors();
    throw bad("the EK certificate is not one DER certificate");
  }
  unsigned char* again = nullptr;
  int again_len = i2d_X509(cert.get(), &again);
  bool canonical = again_len == static_cast<int>(der.size()) && std::memcmp(again, der.data(), der.size()) == 0;
  OPENSSL_free(again);
  if (!canonical) throw bad("the EK certificate's DER is not canonical");
  EVP_PKEY* key = X509_get0_pubkey(cert.get());
  if (key == nullptr || EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA || EVP_PKEY_get_bits(key) != 2048) {
    DrainOpenSslErrors();
    throw bad("the EK certificate's key is not RSA 2048 (the TCG default EK template L-1)");
  }
  X509StorePtr store(X509_STORE_new());
  X509StackPtr untrusted(sk_X509_new_null());
  for (const X509Ptr& r : roots) {
    X509_STORE_add_cert(store.get(), r.get());
    sk_X509_push(untrusted.get(), r.get());
  }
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), untrusted.get());
  // An operator's bundle may hold a manufacturer's intermediate CA alone: it is then an anchor.
  X509_STORE_CTX_set_flags(ctx.get(), X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_USE_CHECK_TIME);
  X509_STORE_CTX_set_time(ctx.get(), 0, std::chrono::system_clock::to_time_t(now));
  int ok = X509_verify_cert(ctx.get());
  int err = X509_STORE_CTX_get_error(ctx.get());
  DrainOpenSslErrors();
  if (ok != 1) {
    throw Failure(ExitCode::kNoPerm, "ek-untrusted",
                  std::string("the EK certificate does not chain to ek_roots: ") + X509_verify_cert_error_string(err));
  }
  return cert;
}

Credential MakeCredential(EVP_PKEY* ek, const Bytes& ak_name, const Bytes& secret) {
  auto internal = [](const char* m) { return Failure(ExitCode::kSoftware, "internal", m); };
  Bytes seed(32);
  if (RAND_bytes(seed.data(), static_cast<int>(seed.size())) != 1) throw internal("no random bytes");
  // The seed, for the EK only: RSA-OAEP with the EK's name algorithm and the label "IDENTITY".
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, ek, nullptr));
  static const char kLabel[] = "IDENTITY";
  unsigned char* label = static_cast<unsigned char*>(OPENSSL_memdup(kLabel, sizeof kLabel));
  std::size_t out_len = 0;
  if (!ctx || label == nullptr || EVP_PKEY_encrypt_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), EVP_sha256()) != 1 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), EVP_sha256()) != 1 ||
      EVP_PKEY_CTX_set0_rsa_oaep_label(ctx.get(), label, sizeof kLabel) != 1) {
    OPENSSL_free(label);
    DrainOpenSslErrors();
    throw internal("RSA-OAEP setup failed");
  }
  if (EVP_PKEY_encrypt(ctx.get(), nullptr, &out_len, seed.data(), seed.size()) != 1) throw internal("RSA-OAEP failed");
  Bytes encrypted(out_len);
  if (EVP_PKEY_encrypt(ctx.get(), encrypted.data(), &out_len, seed.data(), seed.size()) != 1) {
    throw internal("RSA-OAEP failed");
  }
  encrypted.resize(out_len);
  // The credential, encrypted with a key only that seed and that AK's name give (AES-128-CFB, the
  // EK template's symmetric), and an HMAC that binds it to the name.
  Bytes sym_key = Kdfa(seed, "STORAGE", ak_name, {}, 128);
  Bytes plain;
  PutU16(plain, secret.size());
  plain.insert(plain.end(), secret.begin(), secret.end());
  Bytes enc_identity(plain.size());
  unsigned char iv[16] = {0};
  int len = 0;
  EVP_CIPHER_CTX* cipher = EVP_CIPHER_CTX_new();
  bool ok = cipher != nullptr && EVP_EncryptInit_ex(cipher, EVP_aes_128_cfb(), nullptr, sym_key.data(), iv) == 1 &&
            EVP_EncryptUpdate(cipher, enc_identity.data(), &len, plain.data(), static_cast<int>(plain.size())) == 1;
  EVP_CIPHER_CTX_free(cipher);
  if (!ok || len != static_cast<int>(plain.size())) throw internal("AES-CFB failed");
  Bytes hmac_key = Kdfa(seed, "INTEGRITY", {}, {}, 256);
  Bytes mac_in = enc_identity;
  mac_in.insert(mac_in.end(), ak_name.begin(), ak_name.end());
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha256(), hmac_key.data(), static_cast<int>(hmac_key.size()), mac_in.data(), mac_in.size(), mac,
           &mac_len) == nullptr) {
    throw internal("HMAC failed");
  }
  Credential c;
  Bytes id;
  PutU16(id, mac_len);
  id.insert(id.end(), mac, mac + mac_len);
  id.insert(id.end(), enc_identity.begin(), enc_identity.end());
  PutU16(c.id_object, id.size());
  c.id_object.insert(c.id_object.end(), id.begin(), id.end());
  PutU16(c.encrypted_secret, encrypted.size());
  c.encrypted_secret.insert(c.encrypted_secret.end(), encrypted.begin(), encrypted.end());
  OPENSSL_cleanse(seed.data(), seed.size());
  return c;
}

}  // namespace pki
