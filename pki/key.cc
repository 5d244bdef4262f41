// SPDX-License-Identifier: Apache-2.0
#include "pki/key.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include <vector>

#include "pki/openssl.h"

namespace pki {

KeyDescription DescribeKey(EVP_PKEY* key) {
  KeyDescription d;
  int id = EVP_PKEY_get_base_id(key);
  d.bits = EVP_PKEY_get_bits(key);
  if (id == EVP_PKEY_EC) {
    d.kind = KeyDescription::Kind::kEc;
    char group[64] = {0};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &len) == 1) {
      int nid = OBJ_sn2nid(group);
      if (nid == NID_undef) nid = OBJ_ln2nid(group);
      if (nid == NID_X9_62_prime256v1) {
        d.curve = "P-256";
      } else if (nid == NID_secp384r1) {
        d.curve = "P-384";
      } else if (nid == NID_secp521r1) {
        d.curve = "P-521";
      } else {
        d.curve = group;
      }
    } else {
      d.curve = "explicit-parameters";
    }
    char encoding[32] = {0};
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_EC_ENCODING, encoding, sizeof encoding,
                                       &len) == 1) {
      d.ec_explicit_parameters = std::string(encoding) == OSSL_PKEY_EC_ENCODING_EXPLICIT;
    }
    d.name = "EC " + d.curve;
  } else if (id == EVP_PKEY_RSA) {
    d.kind = KeyDescription::Kind::kRsa;
    BIGNUM* e = nullptr;
    if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) == 1) {
      BignumPtr owned(e);
      BignumPtr min(BN_new());
      BN_set_word(min.get(), 65537);
      d.rsa_exponent_ok = BN_is_odd(e) && BN_cmp(e, min.get()) >= 0;
    }
    d.name = "RSA " + std::to_string(d.bits);
  } else if (id == EVP_PKEY_RSA_PSS) {
    d.name = "RSA-PSS " + std::to_string(d.bits);
  } else {
    const char* type = OBJ_nid2sn(id);
    d.name = type != nullptr ? type : "unknown";
  }
  return d;
}

namespace {

[[noreturn]] void CannotCanonicalize(const std::string& what) {
  ThrowOpenSsl(base::ExitCode::kDataErr, "key-type", "cannot re-encode the public key: " + what);
}

// DER of a SEQUENCE around `content` (RSAPublicKey's outer layer).
std::vector<unsigned char> DerSequence(const std::vector<unsigned char>& content) {
  std::vector<unsigned char> out{0x30};
  std::size_t n = content.size();
  if (n < 0x80) {
    out.push_back(static_cast<unsigned char>(n));
  } else {
    std::vector<unsigned char> len;
    for (; n > 0; n >>= 8) len.insert(len.begin(), static_cast<unsigned char>(n & 0xff));
    out.push_back(static_cast<unsigned char>(0x80 | len.size()));
    out.insert(out.end(), len.begin(), len.end());
  }
  out.insert(out.end(), content.begin(), content.end());
  return out;
}

void AppendDerInteger(std::vector<unsigned char>& out, const BIGNUM* value) {
  Asn1IntegerPtr integer(BN_to_ASN1_INTEGER(value, nullptr));
  int len = integer ? i2d_ASN1_INTEGER(integer.get(), nullptr) : 0;
  if (len <= 0) CannotCanonicalize("an RSA number does not encode");
  std::size_t at = out.size();
  out.resize(at + static_cast<std::size_t>(len));
  unsigned char* cursor = out.data() + at;
  i2d_ASN1_INTEGER(integer.get(), &cursor);
}

void CanonicalEc(EVP_PKEY* key, CanonicalKey& out) {
  char group_name[64] = {0};
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group_name, sizeof group_name, &len) != 1) {
    CannotCanonicalize("the EC key names no curve");
  }
  int nid = OBJ_txt2nid(group_name);
  if (nid == NID_undef) nid = EC_curve_nist2nid(group_name);
  if (nid == NID_undef) CannotCanonicalize("the EC key's curve has no OID");
  // The point's affine coordinates, whatever form it arrived in: OpenSSL's decoder has already
  // checked that the point lies on its curve (a compressed point is decompressed there). Writing
  // them out as 04 || X || Y is the uncompressed form; no EC_GROUP is built for it, which was
  // most of the cost of canonicalizing (#30).
  BIGNUM* x = nullptr;
  BIGNUM* y = nullptr;
  if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1) CannotCanonicalize("no EC point");
  BignumPtr x_owner(x);
  if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1) CannotCanonicalize("no EC point");
  BignumPtr y_owner(y);
  // The field size from the encoded point (the key's bits are the group order's, which can differ).
  unsigned char encoded[256];
  size_t encoded_len = 0;
  if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, encoded, sizeof encoded,
                                      &encoded_len) != 1 ||
      encoded_len < 2) {
    CannotCanonicalize("no EC point");
  }
  bool compressed = encoded[0] == POINT_CONVERSION_COMPRESSED || encoded[0] == (POINT_CONVERSION_COMPRESSED | 1);
  std::size_t field = compressed ? encoded_len - 1 : (encoded_len - 1) / 2;
  out.key_bits.assign(1 + 2 * field, 0);
  out.key_bits[0] = POINT_CONVERSION_UNCOMPRESSED;
  if (BN_bn2binpad(x, out.key_bits.data() + 1, static_cast<int>(field)) != static_cast<int>(field) ||
      BN_bn2binpad(y, out.key_bits.data() + 1 + field, static_cast<int>(field)) != static_cast<int>(field)) {
    CannotCanonicalize("the EC point does not encode");
  }
  out.kind = KeyDescription::Kind::kEc;
  out.curve_nid = nid;
}

void CanonicalRsa(EVP_PKEY* key, CanonicalKey& out) {
  BIGNUM* n = nullptr;
  BIGNUM* e = nullptr;
  if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) != 1) CannotCanonicalize("no RSA modulus");
  BignumPtr n_owner(n);
  if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) != 1) CannotCanonicalize("no RSA exponent");
  BignumPtr e_owner(e);
  std::vector<unsigned char> numbers;
  AppendDerInteger(numbers, n);
  AppendDerInteger(numbers, e);
  out.key_bits = DerSequence(numbers);  // RSAPublicKey ::= SEQUENCE { modulus, publicExponent }
  out.kind = KeyDescription::Kind::kRsa;
}

}  // namespace

void SetCanonicalKey(X509_PUBKEY* pub, const CanonicalKey& key) {
  bool ec = key.kind == KeyDescription::Kind::kEc;
  auto* bits = static_cast<unsigned char*>(OPENSSL_memdup(key.key_bits.data(), key.key_bits.size()));
  // set0_param takes ownership of `bits` (and of the objects, which OBJ_nid2obj returns as static
  // entries that are never freed) only when it succeeds.
  if (pub == nullptr || bits == nullptr ||
      X509_PUBKEY_set0_param(pub, OBJ_nid2obj(ec ? NID_X9_62_id_ecPublicKey : NID_rsaEncryption),
                             ec ? V_ASN1_OBJECT : V_ASN1_NULL, ec ? OBJ_nid2obj(key.curve_nid) : nullptr, bits,
                             static_cast<int>(key.key_bits.size())) != 1) {
    OPENSSL_free(bits);
    ThrowOpenSsl(base::ExitCode::kSoftware, "internal", "cannot set the public key");
  }
}

CanonicalKey CanonicalizeKey(EVP_PKEY* key) {
  // A token-backed key (libp11) may be a legacy EC_KEY/RSA key without provider parameters:
  // decode it afresh from its SubjectPublicKeyInfo first. A provider key (any key OpenSSL decoded,
  // e.g. from a CSR or certificate) has them already.
  EvpPkeyPtr decoded;
  if (EVP_PKEY_get0_provider(key) == nullptr) {
    std::vector<unsigned char> spki = PublicKeyToDer(key);
    const unsigned char* cursor = spki.data();
    decoded.reset(d2i_PUBKEY(nullptr, &cursor, static_cast<long>(spki.size())));
    if (!decoded) CannotCanonicalize("its SubjectPublicKeyInfo does not decode");
    key = decoded.get();
  }
  CanonicalKey out;
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_EC: CanonicalEc(key, out); break;
    case EVP_PKEY_RSA: CanonicalRsa(key, out); break;
    default: throw base::Failure(base::ExitCode::kDataErr, "key-type", "only EC and RSA keys are re-encoded");
  }
  X509PubkeyPtr pub(X509_PUBKEY_new());
  SetCanonicalKey(pub.get(), out);
  int len = i2d_X509_PUBKEY(pub.get(), nullptr);
  if (len <= 0) CannotCanonicalize("its SubjectPublicKeyInfo does not encode");
  out.spki_der.resize(static_cast<std::size_t>(len));
  unsigned char* cursor = out.spki_der.data();
  i2d_X509_PUBKEY(pub.get(), &cursor);
  out.sha256 = Sha256Hex(out.spki_der);
  return out;
}

EvpPkeyPtr CanonicalPublicKey(EVP_PKEY* key) {
  CanonicalKey canonical = CanonicalizeKey(key);
  const unsigned char* cursor = canonical.spki_der.data();
  EvpPkeyPtr out(d2i_PUBKEY(nullptr, &cursor, static_cast<long>(canonical.spki_der.size())));
  if (!out) CannotCanonicalize("its canonical SubjectPublicKeyInfo does not decode");
  return out;
}

std::string PublicKeySha256(EVP_PKEY* key) {
  if (DescribeKey(key).kind != KeyDescription::Kind::kOther) {
    try {
      return CanonicalizeKey(key).sha256;
    } catch (const base::Failure&) {
      // Not canonicalizable (a curve without a name, a point off its curve): never issued, but a
      // refusal's record still names the key, by its DER as it is.
    }
  }
  // Other key types have one encoding only (Ed25519, ...): their DER as it is.
  return Sha256Hex(PublicKeyToDer(key));
}

}  // namespace pki
