// SPDX-License-Identifier: Apache-2.0
// EC_KEY_METHOD is OpenSSL's (deprecated, still supported) way to give a key a signer of its own;
// libp11 does the same for token keys. A key with a foreign method stays on OpenSSL's legacy
// path, so every signature (CSR, TLS, the SSH agent's) comes here.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "requester/tpm.h"

#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include <array>
#include <cstring>
#include <sstream>

#include "base/failure.h"
#include "pki/base64.h"

namespace requester {
namespace {

using base::ExitCode;
using base::Failure;

constexpr TPM2_HANDLE kSrkHandle = 0x81000001;
constexpr TPM2_HANDLE kEkHandle = 0x81010001;
constexpr TPM2_HANDLE kEkCertIndex = 0x01c00002;

[[noreturn]] void TpmFailed(const char* what, TSS2_RC rc, const char* reason = "tpm-unavailable") {
  throw Failure(ExitCode::kUnavailable, reason, std::string(what) + " failed: " + Tss2_RC_Decode(rc));
}

template <typename T>
struct EsysFree {
  void operator()(T* p) const { Esys_Free(p); }
};
template <typename T>
using EsysPtr = std::unique_ptr<T, EsysFree<T>>;

template <typename T>
pki::Bytes Marshal(const T& value, TSS2_RC (*marshal)(const T*, uint8_t*, size_t, size_t*)) {
  std::array<uint8_t, 4096> buf{};
  std::size_t size = 0;
  if (marshal(&value, buf.data(), buf.size(), &size) != TSS2_RC_SUCCESS) {
    throw Failure(ExitCode::kSoftware, "internal", "a TPM structure does not marshal");
  }
  return pki::Bytes(buf.begin(), buf.begin() + static_cast<long>(size));
}

template <typename T>
T Unmarshal(const pki::Bytes& bytes, TSS2_RC (*unmarshal)(const uint8_t*, size_t, size_t*, T*), const char* what) {
  T value{};
  std::size_t offset = 0;
  if (unmarshal(bytes.data(), bytes.size(), &offset, &value) != TSS2_RC_SUCCESS || offset != bytes.size()) {
    throw Failure(ExitCode::kDataErr, "attestation-invalid", std::string("the ") + what + " does not decode");
  }
  return value;
}

TPM2B_PUBLIC SrkTemplate() {
  TPM2B_PUBLIC t{};
  t.publicArea.type = TPM2_ALG_ECC;
  t.publicArea.nameAlg = TPM2_ALG_SHA256;
  t.publicArea.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                                  TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED |
                                  TPMA_OBJECT_DECRYPT;
  auto& ecc = t.publicArea.parameters.eccDetail;
  ecc.symmetric.algorithm = TPM2_ALG_AES;
  ecc.symmetric.keyBits.aes = 128;
  ecc.symmetric.mode.aes = TPM2_ALG_CFB;
  ecc.scheme.scheme = TPM2_ALG_NULL;
  ecc.curveID = TPM2_ECC_NIST_P256;
  ecc.kdf.scheme = TPM2_ALG_NULL;
  t.publicArea.unique.ecc.x.size = 32;
  t.publicArea.unique.ecc.y.size = 32;
  return t;
}

// TCG EK Credential Profile, template L-1 (RSA 2048, AES-128-CFB, PolicySecret(endorsement)).
TPM2B_PUBLIC EkTemplate() {
  static const uint8_t kPolicy[32] = {0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xB3, 0xF8, 0x1A, 0x90, 0xCC,
                                      0x8D, 0x46, 0xA5, 0xD7, 0x24, 0xFD, 0x52, 0xD7, 0x6E, 0x06, 0x52,
                                      0x0B, 0x64, 0xF2, 0xA1, 0xDA, 0x1B, 0x33, 0x14, 0x69, 0xAA};
  TPM2B_PUBLIC t{};
  t.publicArea.type = TPM2_ALG_RSA;
  t.publicArea.nameAlg = TPM2_ALG_SHA256;
  t.publicArea.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                                  TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
  t.publicArea.authPolicy.size = sizeof kPolicy;
  std::memcpy(t.publicArea.authPolicy.buffer, kPolicy, sizeof kPolicy);
  auto& rsa = t.publicArea.parameters.rsaDetail;
  rsa.symmetric.algorithm = TPM2_ALG_AES;
  rsa.symmetric.keyBits.aes = 128;
  rsa.symmetric.mode.aes = TPM2_ALG_CFB;
  rsa.scheme.scheme = TPM2_ALG_NULL;
  rsa.keyBits = 2048;
  rsa.exponent = 0;
  t.publicArea.unique.rsa.size = 256;
  return t;
}

TPM2B_PUBLIC AkTemplate() {
  TPM2B_PUBLIC t{};
  t.publicArea.type = TPM2_ALG_ECC;
  t.publicArea.nameAlg = TPM2_ALG_SHA256;
  t.publicArea.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                                  TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;
  auto& ecc = t.publicArea.parameters.eccDetail;
  ecc.symmetric.algorithm = TPM2_ALG_NULL;
  ecc.scheme.scheme = TPM2_ALG_ECDSA;
  ecc.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
  ecc.curveID = TPM2_ECC_NIST_P256;
  ecc.kdf.scheme = TPM2_ALG_NULL;
  // A fixed unique value: the same AK from the same endorsement seed, every time.
  static const char kUnique[] = "etcd-requester attestation key";
  t.publicArea.unique.ecc.x.size = sizeof kUnique - 1;
  std::memcpy(t.publicArea.unique.ecc.x.buffer, kUnique, sizeof kUnique - 1);
  return t;
}

TPM2B_PUBLIC SigningKeyTemplate() {
  TPM2B_PUBLIC t{};
  t.publicArea.type = TPM2_ALG_ECC;
  t.publicArea.nameAlg = TPM2_ALG_SHA256;
  t.publicArea.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                                  TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT;
  auto& ecc = t.publicArea.parameters.eccDetail;
  ecc.symmetric.algorithm = TPM2_ALG_NULL;
  ecc.scheme.scheme = TPM2_ALG_NULL;  // chosen per signature: ECDSA with the digest's hash
  ecc.curveID = TPM2_ECC_NIST_P256;
  ecc.kdf.scheme = TPM2_ALG_NULL;
  return t;
}

TPM2B_AUTH AuthValue(const std::string& auth) {
  TPM2B_AUTH a{};
  if (auth.size() > sizeof a.buffer) {
    throw Failure(ExitCode::kConfig, "tpm-key", "the PIN is longer than the TPM's authValue (32 bytes)");
  }
  a.size = static_cast<UINT16>(auth.size());
  std::memcpy(a.buffer, auth.data(), auth.size());
  return a;
}

int KeyIndex() {
  static const int index = EC_KEY_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

}  // namespace

struct Tpm::State {
  std::mutex mu;
  TSS2_TCTI_CONTEXT* tcti = nullptr;
  ESYS_CONTEXT* esys = nullptr;
  // A loaded object, and whether it is ours to flush (transient) or only to close (persistent).
  struct ObjectRef {
    ESYS_TR tr = ESYS_TR_NONE;
    bool transient = false;
  };
  ObjectRef parent;
  ESYS_TR key = ESYS_TR_NONE;
  ESYS_TR ak = ESYS_TR_NONE;
  ObjectRef ek;
  EC_KEY_METHOD* method = nullptr;

  ~State() {
    if (esys != nullptr) {
      if (key != ESYS_TR_NONE) Esys_FlushContext(esys, key);
      FlushAk();
      FlushParent();
      FlushEk();
      Esys_Finalize(&esys);
    }
    if (tcti != nullptr) Tss2_TctiLdr_Finalize(&tcti);
    if (method != nullptr) EC_KEY_METHOD_free(method);
  }

  // A persistent object at `handle`, or nothing.
  ESYS_TR Persistent(TPM2_HANDLE handle) {
    ESYS_TR tr = ESYS_TR_NONE;
    if (Esys_TR_FromTPMPublic(esys, handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &tr) != TSS2_RC_SUCCESS) {
      return ESYS_TR_NONE;
    }
    return tr;
  }

  ESYS_TR CreatePrimary(ESYS_TR hierarchy, const TPM2B_PUBLIC& tmpl, TPM2B_PUBLIC** out_public) {
    TPM2B_SENSITIVE_CREATE sensitive{};
    TPM2B_DATA outside{};
    TPML_PCR_SELECTION pcrs{};
    ESYS_TR handle = ESYS_TR_NONE;
    TSS2_RC rc = Esys_CreatePrimary(esys, hierarchy, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive, &tmpl,
                                    &outside, &pcrs, &handle, out_public, nullptr, nullptr, nullptr);
    if (rc != TSS2_RC_SUCCESS) TpmFailed("TPM2_CreatePrimary", rc);
    return handle;
  }

  // The persistent object at `handle` when the TPM has one, else a transient primary from `tmpl`.
  ESYS_TR PersistentOrPrimary(ObjectRef& ref, TPM2_HANDLE handle, ESYS_TR hierarchy, const TPM2B_PUBLIC& tmpl) {
    if (ref.tr == ESYS_TR_NONE) {
      ref.tr = Persistent(handle);
      ref.transient = ref.tr == ESYS_TR_NONE;
      if (ref.transient) ref.tr = CreatePrimary(hierarchy, tmpl, nullptr);
    }
    return ref.tr;
  }
  ESYS_TR Parent() { return PersistentOrPrimary(parent, kSrkHandle, ESYS_TR_RH_OWNER, SrkTemplate()); }
  ESYS_TR Ek() { return PersistentOrPrimary(ek, kEkHandle, ESYS_TR_RH_ENDORSEMENT, EkTemplate()); }

  // A TPM without a resource manager (swtpm, a TCTI straight to the device) holds three loaded
  // objects: the parent and the AK go as soon as they are used, so that only the key stays.
  void Release(ObjectRef& ref) {
    if (ref.tr == ESYS_TR_NONE) return;
    if (ref.transient) Esys_FlushContext(esys, ref.tr); else Esys_TR_Close(esys, &ref.tr);
    ref.tr = ESYS_TR_NONE;
  }
  void FlushParent() { Release(parent); }
  void FlushEk() { Release(ek); }
  void FlushAk() {
    if (ak != ESYS_TR_NONE) Esys_FlushContext(esys, ak);
    ak = ESYS_TR_NONE;
  }

  ESYS_TR Ak(TPM2B_PUBLIC** out_public) {
    if (ak == ESYS_TR_NONE || out_public != nullptr) {
      if (ak != ESYS_TR_NONE) Esys_FlushContext(esys, ak);
      ak = CreatePrimary(ESYS_TR_RH_ENDORSEMENT, AkTemplate(), out_public);
    }
    return ak;
  }
};

std::string EncodeTpmKeyFile(const TpmKeyBlobs& b) {
  return "etcd-requester tpm2 key v1\npublic " + pki::EncodeBase64(b.public_area.data(), b.public_area.size()) +
         "\nprivate " + pki::EncodeBase64(b.private_area.data(), b.private_area.size()) + "\n";
}

TpmKeyBlobs DecodeTpmKeyFile(const std::string& text) {
  auto bad = [] {
    return Failure(ExitCode::kConfig, "tpm-key-file",
                   "the TPM key file is not \"etcd-requester tpm2 key v1\" with a public and a private line");
  };
  std::istringstream in(text);
  std::string header, pub_word, pub_b64, priv_word, priv_b64, rest;
  if (!std::getline(in, header) || header != "etcd-requester tpm2 key v1") throw bad();
  if (!(in >> pub_word >> pub_b64 >> priv_word >> priv_b64) || pub_word != "public" || priv_word != "private") {
    throw bad();
  }
  if (in >> rest) throw bad();
  auto pub = pki::DecodeBase64(pub_b64);
  auto priv = pki::DecodeBase64(priv_b64);
  if (!pub || !priv) throw bad();
  TpmKeyBlobs blobs{std::move(*pub), std::move(*priv)};
  try {
    Unmarshal<TPM2B_PUBLIC>(blobs.public_area, Tss2_MU_TPM2B_PUBLIC_Unmarshal, "public area");
    Unmarshal<TPM2B_PRIVATE>(blobs.private_area, Tss2_MU_TPM2B_PRIVATE_Unmarshal, "private area");
  } catch (const Failure&) {
    throw bad();
  }
  return blobs;
}

Tpm::Tpm(const std::string& tcti) : s_(std::make_unique<State>()) {
  // tpm2-tss logs its own errors to stderr unless told otherwise; ours say it in one line.
  ::setenv("TSS2_LOG", "all+NONE", 0);
  TSS2_RC rc = Tss2_TctiLdr_Initialize(tcti.c_str(), &s_->tcti);
  if (rc != TSS2_RC_SUCCESS) {
    throw Failure(ExitCode::kUnavailable, "tpm-unavailable",
                  "cannot reach the TPM through \"" + tcti + "\": " + Tss2_RC_Decode(rc));
  }
  rc = Esys_Initialize(&s_->esys, s_->tcti, nullptr);
  if (rc != TSS2_RC_SUCCESS) TpmFailed("Esys_Initialize", rc);
}

Tpm::~Tpm() = default;

TpmKeyBlobs Tpm::CreateSigningKey(const std::string& auth) {
  std::lock_guard lock(s_->mu);
  TPM2B_SENSITIVE_CREATE sensitive{};
  sensitive.sensitive.userAuth = AuthValue(auth);
  TPM2B_PUBLIC tmpl = SigningKeyTemplate();
  TPM2B_DATA outside{};
  TPML_PCR_SELECTION pcrs{};
  TPM2B_PRIVATE* out_private = nullptr;
  TPM2B_PUBLIC* out_public = nullptr;
  TSS2_RC rc = Esys_Create(s_->esys, s_->Parent(), ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive, &tmpl,
                           &outside, &pcrs, &out_private, &out_public, nullptr, nullptr, nullptr);
  EsysPtr<TPM2B_PRIVATE> priv(out_private);
  EsysPtr<TPM2B_PUBLIC> pub(out_public);
  s_->FlushParent();
  if (rc != TSS2_RC_SUCCESS) TpmFailed("TPM2_Create", rc, "tpm-key");
  return {Marshal(*pub, Tss2_MU_TPM2B_PUBLIC_Marshal), Marshal(*priv, Tss2_MU_TPM2B_PRIVATE_Marshal)};
}

namespace {

ECDSA_SIG* SignWithTpm(const unsigned char* digest, int digest_len, const BIGNUM*, const BIGNUM*, EC_KEY* eckey) {
  auto* s = static_cast<Tpm::State*>(EC_KEY_get_ex_data(eckey, KeyIndex()));
  TPMT_SIG_SCHEME scheme{};
  scheme.scheme = TPM2_ALG_ECDSA;
  switch (digest_len) {
    case 32: scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256; break;
    case 48: scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA384; break;
    case 64: scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA512; break;
    default: return nullptr;
  }
  if (s == nullptr) return nullptr;
  TPM2B_DIGEST d{};
  d.size = static_cast<UINT16>(digest_len);
  std::memcpy(d.buffer, digest, static_cast<std::size_t>(digest_len));
  TPMT_TK_HASHCHECK ticket{};
  ticket.tag = TPM2_ST_HASHCHECK;
  ticket.hierarchy = TPM2_RH_NULL;
  TPMT_SIGNATURE* out = nullptr;
  TSS2_RC rc;
  {
    std::lock_guard lock(s->mu);
    rc = Esys_Sign(s->esys, s->key, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &d, &scheme, &ticket, &out);
  }
  EsysPtr<TPMT_SIGNATURE> sig(out);
  if (rc != TSS2_RC_SUCCESS) return nullptr;
  const TPMS_SIGNATURE_ECDSA& e = sig->signature.ecdsa;
  BIGNUM* r = BN_bin2bn(e.signatureR.buffer, e.signatureR.size, nullptr);
  BIGNUM* ss = BN_bin2bn(e.signatureS.buffer, e.signatureS.size, nullptr);
  ECDSA_SIG* result = ECDSA_SIG_new();
  if (r == nullptr || ss == nullptr || result == nullptr || ECDSA_SIG_set0(result, r, ss) != 1) {
    BN_free(r);
    BN_free(ss);
    ECDSA_SIG_free(result);
    return nullptr;
  }
  return result;
}

}  // namespace

pki::EvpPkeyPtr Tpm::LoadSigningKey(const TpmKeyBlobs& blobs, const std::string& auth) {
  TPM2B_PUBLIC pub = Unmarshal<TPM2B_PUBLIC>(blobs.public_area, Tss2_MU_TPM2B_PUBLIC_Unmarshal, "public area");
  TPM2B_PRIVATE priv = Unmarshal<TPM2B_PRIVATE>(blobs.private_area, Tss2_MU_TPM2B_PRIVATE_Unmarshal, "private area");
  pki::EvpPkeyPtr public_key = pki::TpmPublicKey(blobs.public_area);
  std::lock_guard lock(s_->mu);
  if (s_->key == ESYS_TR_NONE) {
    TSS2_RC rc = Esys_Load(s_->esys, s_->Parent(), ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &priv, &pub, &s_->key);
    s_->FlushParent();  // a loaded key needs its parent no more
    if (rc != TSS2_RC_SUCCESS) TpmFailed("TPM2_Load of the key (made by another TPM, or under another SRK?)", rc, "tpm-key");
    TPM2B_AUTH a = AuthValue(auth);
    Esys_TR_SetAuth(s_->esys, s_->key, &a);
  }
  if (s_->method == nullptr) {
    s_->method = EC_KEY_METHOD_new(EC_KEY_OpenSSL());
    int (*sign)(int, const unsigned char*, int, unsigned char*, unsigned int*, const BIGNUM*, const BIGNUM*,
                EC_KEY*) = nullptr;
    int (*setup)(EC_KEY*, BN_CTX*, BIGNUM**, BIGNUM**) = nullptr;
    EC_KEY_METHOD_get_sign(EC_KEY_OpenSSL(), &sign, &setup, nullptr);
    EC_KEY_METHOD_set_sign(s_->method, sign, setup, SignWithTpm);
  }
  // The public point, from the key the TPM holds; the private half stays there.
  EC_KEY* eckey = EC_KEY_dup(EVP_PKEY_get0_EC_KEY(public_key.get()));
  pki::EvpPkeyPtr out(EVP_PKEY_new());
  if (eckey == nullptr || !out || EC_KEY_set_method(eckey, s_->method) != 1 ||
      EC_KEY_set_ex_data(eckey, KeyIndex(), s_.get()) != 1 || EVP_PKEY_assign_EC_KEY(out.get(), eckey) != 1) {
    EC_KEY_free(eckey);
    throw Failure(ExitCode::kSoftware, "internal", "cannot make an OpenSSL key for the TPM key");
  }
  return out;
}

pki::Bytes Tpm::EkCertificate() {
  std::lock_guard lock(s_->mu);
  ESYS_TR index = s_->Persistent(kEkCertIndex);
  if (index == ESYS_TR_NONE) {
    throw Failure(ExitCode::kUnavailable, "ek-certificate-missing",
                  "the TPM holds no RSA EK certificate at NV index 0x01c00002 (see etcd-requester(8), ATTESTATION)");
  }
  TPM2B_NV_PUBLIC* nv_public = nullptr;
  TSS2_RC rc = Esys_NV_ReadPublic(s_->esys, index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv_public, nullptr);
  EsysPtr<TPM2B_NV_PUBLIC> nvp(nv_public);
  if (rc != TSS2_RC_SUCCESS) {
    Esys_TR_Close(s_->esys, &index);
    TpmFailed("TPM2_NV_ReadPublic of the EK certificate", rc, "ek-certificate-missing");
  }
  std::size_t size = nvp->nvPublic.dataSize;
  pki::Bytes der;
  while (der.size() < size) {
    UINT16 chunk = static_cast<UINT16>(std::min<std::size_t>(size - der.size(), 512));
    TPM2B_MAX_NV_BUFFER* data = nullptr;
    rc = Esys_NV_Read(s_->esys, index, index, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, chunk,
                      static_cast<UINT16>(der.size()), &data);
    EsysPtr<TPM2B_MAX_NV_BUFFER> d(data);
    if (rc != TSS2_RC_SUCCESS || d->size == 0) {
      Esys_TR_Close(s_->esys, &index);
      TpmFailed("TPM2_NV_Read of the EK certificate", rc, "ek-certificate-missing");
    }
    der.insert(der.end(), d->buffer, d->buffer + d->size);
  }
  Esys_TR_Close(s_->esys, &index);
  // The index is often larger than the certificate: keep exactly the DER SEQUENCE.
  if (der.size() >= 4 && der[0] == 0x30 && der[1] == 0x82) {
    std::size_t total = 4 + (static_cast<std::size_t>(der[2]) << 8 | der[3]);
    if (total <= der.size()) der.resize(total);
  }
  return der;
}

pki::Bytes Tpm::AkPublic() {
  std::lock_guard lock(s_->mu);
  TPM2B_PUBLIC* out = nullptr;
  s_->Ak(&out);
  EsysPtr<TPM2B_PUBLIC> pub(out);
  s_->FlushAk();
  return Marshal(*pub, Tss2_MU_TPM2B_PUBLIC_Marshal);
}

pki::Bytes Tpm::ActivateCredential(const pki::Credential& credential) {
  TPM2B_ID_OBJECT blob = Unmarshal<TPM2B_ID_OBJECT>(credential.id_object, Tss2_MU_TPM2B_ID_OBJECT_Unmarshal,
                                                    "credential blob");
  TPM2B_ENCRYPTED_SECRET secret = Unmarshal<TPM2B_ENCRYPTED_SECRET>(
      credential.encrypted_secret, Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal, "encrypted secret");
  std::lock_guard lock(s_->mu);
  ESYS_TR ak = s_->Ak(nullptr);
  ESYS_TR ek = s_->Ek();
  // The EK is used under its policy: PolicySecret of the endorsement hierarchy.
  TPMT_SYM_DEF sym{};
  sym.algorithm = TPM2_ALG_NULL;
  ESYS_TR session = ESYS_TR_NONE;
  TSS2_RC rc = Esys_StartAuthSession(s_->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                     nullptr, TPM2_SE_POLICY, &sym, TPM2_ALG_SHA256, &session);
  if (rc != TSS2_RC_SUCCESS) {
    s_->FlushAk();
    s_->FlushEk();
    TpmFailed("TPM2_StartAuthSession", rc);
  }
  rc = Esys_PolicySecret(s_->esys, ESYS_TR_RH_ENDORSEMENT, session, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                         nullptr, nullptr, nullptr, 0, nullptr, nullptr);
  if (rc != TSS2_RC_SUCCESS) {
    Esys_FlushContext(s_->esys, session);
    s_->FlushAk();
    s_->FlushEk();
    TpmFailed("TPM2_PolicySecret(endorsement)", rc);
  }
  TPM2B_DIGEST* out = nullptr;
  rc = Esys_ActivateCredential(s_->esys, ak, ek, ESYS_TR_PASSWORD, session, ESYS_TR_NONE, &blob, &secret, &out);
  EsysPtr<TPM2B_DIGEST> cert_info(out);
  Esys_FlushContext(s_->esys, session);
  s_->FlushAk();
  s_->FlushEk();
  if (rc != TSS2_RC_SUCCESS) {
    throw Failure(ExitCode::kNoPerm, "credential-not-for-this-tpm",
                  std::string("this TPM cannot open the signer's credential (it was made for another EK or AK): ") +
                      Tss2_RC_Decode(rc));
  }
  return pki::Bytes(cert_info->buffer, cert_info->buffer + cert_info->size);
}

pki::AttestationEvidence Tpm::Certify(const pki::Bytes& qualifying) {
  std::lock_guard lock(s_->mu);
  if (s_->key == ESYS_TR_NONE) throw Failure(ExitCode::kSoftware, "internal", "Certify before LoadSigningKey");
  TPM2B_PUBLIC* ak_out = nullptr;
  ESYS_TR ak = s_->Ak(&ak_out);
  EsysPtr<TPM2B_PUBLIC> ak_public(ak_out);
  TPM2B_PUBLIC* key_out = nullptr;
  TSS2_RC rc = Esys_ReadPublic(s_->esys, s_->key, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &key_out, nullptr, nullptr);
  EsysPtr<TPM2B_PUBLIC> key_public(key_out);
  if (rc != TSS2_RC_SUCCESS) TpmFailed("TPM2_ReadPublic of the key", rc);
  TPM2B_DATA data{};
  if (qualifying.size() > sizeof data.buffer) throw Failure(ExitCode::kSoftware, "internal", "qualifying data too long");
  data.size = static_cast<UINT16>(qualifying.size());
  std::memcpy(data.buffer, qualifying.data(), qualifying.size());
  TPMT_SIG_SCHEME scheme{};
  scheme.scheme = TPM2_ALG_NULL;  // the AK's own: ECDSA/SHA-256
  TPM2B_ATTEST* attest_out = nullptr;
  TPMT_SIGNATURE* sig_out = nullptr;
  rc = Esys_Certify(s_->esys, s_->key, ak, ESYS_TR_PASSWORD, ESYS_TR_PASSWORD, ESYS_TR_NONE, &data, &scheme,
                    &attest_out, &sig_out);
  EsysPtr<TPM2B_ATTEST> attest(attest_out);
  EsysPtr<TPMT_SIGNATURE> sig(sig_out);
  s_->FlushAk();
  if (rc != TSS2_RC_SUCCESS) TpmFailed("TPM2_Certify", rc);
  pki::AttestationEvidence e;
  e.key_public = Marshal(*key_public, Tss2_MU_TPM2B_PUBLIC_Marshal);
  e.ak_public = Marshal(*ak_public, Tss2_MU_TPM2B_PUBLIC_Marshal);
  e.attest = Marshal(*attest, Tss2_MU_TPM2B_ATTEST_Marshal);
  e.signature = Marshal(*sig, Tss2_MU_TPMT_SIGNATURE_Marshal);
  return e;
}

}  // namespace requester
