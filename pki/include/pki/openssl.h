// SPDX-License-Identifier: Apache-2.0
// One owner per OpenSSL handle: a unique_ptr with a deleter type per handle kind. No naked *_free
// outside these aliases.
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <vector>

#include "base/failure.h"

namespace pki {

template <auto Free>
struct OpenSslDeleter {
  template <typename T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};

using BioPtr = std::unique_ptr<BIO, OpenSslDeleter<BIO_free_all>>;
using BignumPtr = std::unique_ptr<BIGNUM, OpenSslDeleter<BN_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslDeleter<EVP_PKEY_free>>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, OpenSslDeleter<EVP_PKEY_CTX_free>>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, OpenSslDeleter<EVP_MD_CTX_free>>;
using X509Ptr = std::unique_ptr<X509, OpenSslDeleter<X509_free>>;
using X509PubkeyPtr = std::unique_ptr<X509_PUBKEY, OpenSslDeleter<X509_PUBKEY_free>>;
// A stack that does not own its certificates (sk_X509_free, not sk_X509_pop_free).
inline void FreeX509Stack(STACK_OF(X509) * s) { sk_X509_free(s); }
using X509StackPtr = std::unique_ptr<STACK_OF(X509), OpenSslDeleter<FreeX509Stack>>;
using EcGroupPtr = std::unique_ptr<EC_GROUP, OpenSslDeleter<EC_GROUP_free>>;
using EcPointPtr = std::unique_ptr<EC_POINT, OpenSslDeleter<EC_POINT_free>>;
using OsslParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, OpenSslDeleter<OSSL_PARAM_BLD_free>>;
using OsslParamPtr = std::unique_ptr<OSSL_PARAM, OpenSslDeleter<OSSL_PARAM_free>>;
using AsnBitStringPtr = std::unique_ptr<ASN1_BIT_STRING, OpenSslDeleter<ASN1_BIT_STRING_free>>;
using X509ReqPtr = std::unique_ptr<X509_REQ, OpenSslDeleter<X509_REQ_free>>;
using X509NamePtr = std::unique_ptr<X509_NAME, OpenSslDeleter<X509_NAME_free>>;
using X509ExtensionPtr = std::unique_ptr<X509_EXTENSION, OpenSslDeleter<X509_EXTENSION_free>>;
using X509StorePtr = std::unique_ptr<X509_STORE, OpenSslDeleter<X509_STORE_free>>;
using X509StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, OpenSslDeleter<X509_STORE_CTX_free>>;
using Asn1IntegerPtr = std::unique_ptr<ASN1_INTEGER, OpenSslDeleter<ASN1_INTEGER_free>>;
using Asn1TimePtr = std::unique_ptr<ASN1_TIME, OpenSslDeleter<ASN1_TIME_free>>;
using Asn1OctetStringPtr =
    std::unique_ptr<ASN1_OCTET_STRING, OpenSslDeleter<ASN1_OCTET_STRING_free>>;
using BasicConstraintsPtr =
    std::unique_ptr<BASIC_CONSTRAINTS, OpenSslDeleter<BASIC_CONSTRAINTS_free>>;
using ExtendedKeyUsagePtr =
    std::unique_ptr<EXTENDED_KEY_USAGE, OpenSslDeleter<EXTENDED_KEY_USAGE_free>>;

// For a process that serves one request and exits (etcd-signer): OpenSSL's atexit handler frees
// every provider, method store and decoder one by one; the kernel frees the whole address space
// at once. Call first in main (#30). Key material is on the token or scrubbed by its owner, never
// left for this clean-up.
void LeaveOpenSslCleanupToExit();

// Drains OpenSSL's error queue into one line ("" when empty).
std::string DrainOpenSslErrors();

// Throws Failure(code, reason, what + the drained OpenSSL errors).
[[noreturn]] void ThrowOpenSsl(base::ExitCode code, const std::string& reason,
                               const std::string& what);

// PEM encoders.
std::string ToPem(X509* cert);
std::string ToPem(X509_REQ* req);
std::string PublicKeyToPem(EVP_PKEY* key);

// DER encoders.
std::vector<unsigned char> ToDer(X509_REQ* req);
std::vector<unsigned char> PublicKeyToDer(EVP_PKEY* key);

// Parses every certificate in a PEM text (a bundle); throws if there is none.
std::vector<X509Ptr> ParseCertificatesPem(const std::string& pem, const std::string& what);

// Reads a PEM certificate file (first certificate) or a bundle.
X509Ptr ReadCertificateFile(const std::string& path);
std::vector<X509Ptr> ReadCertificateBundleFile(const std::string& path);

// Lowercase hex.
std::string Hex(const unsigned char* data, std::size_t size, char separator = '\0');

// SHA-256 of `bytes`, lowercase hex.
std::string Sha256Hex(const std::vector<unsigned char>& bytes);

// The key's fingerprint: SHA-256 of its canonical SubjectPublicKeyInfo DER (pki::CanonicalizeKey,
// pki/key.h), lowercase hex; the same value for every encoding of the same EC or RSA key (#24).
// Defined in key.cc. For a request, use CanonicalKey::sha256 of the one CanonicalKey computed.
std::string PublicKeySha256(EVP_PKEY* key);

// True if the two keys are the same public key.
bool SamePublicKey(EVP_PKEY* a, EVP_PKEY* b);

}  // namespace pki
