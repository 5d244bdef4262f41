// SPDX-License-Identifier: Apache-2.0
#include "pki/key.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>

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

EvpPkeyPtr CanonicalPublicKey(EVP_PKEY* key) {
  auto fail = [](const std::string& what) -> EvpPkeyPtr {
    ThrowOpenSsl(base::ExitCode::kDataErr, "key-type", "cannot re-encode the public key: " + what);
  };
  // A token-backed key (libp11) may be a legacy EC_KEY/RSA key without provider parameters:
  // decode it afresh from its SubjectPublicKeyInfo first. A provider key (any key OpenSSL decoded,
  // e.g. from a CSR or certificate) has them already, and the round trip through OpenSSL 3's
  // encoder and decoder would be half the cost of verifying an answer.
  EvpPkeyPtr decoded;
  if (EVP_PKEY_get0_provider(key) == nullptr) {
    std::vector<unsigned char> spki = PublicKeyToDer(key);
    const unsigned char* cursor = spki.data();
    decoded.reset(d2i_PUBKEY(nullptr, &cursor, static_cast<long>(spki.size())));
    if (!decoded) return fail("its SubjectPublicKeyInfo does not decode");
    key = decoded.get();
  }
  OsslParamBldPtr build(OSSL_PARAM_BLD_new());
  // The builder keeps pointers to what it is given until OSSL_PARAM_BLD_to_param: everything pushed
  // must live at function scope.
  std::vector<unsigned char> point;
  char group_name[64] = {0};
  BignumPtr n_owner, e_owner;
  const char* type = nullptr;
  if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
    type = "EC";
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group_name, sizeof group_name, &len) != 1) {
      return fail("the EC key names no curve");
    }
    EcGroupPtr group(EC_GROUP_new_by_curve_name(OBJ_txt2nid(group_name)));
    size_t encoded_len = 0;
    if (!group || EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, nullptr, 0, &encoded_len) != 1) {
      return fail("no EC point");
    }
    std::vector<unsigned char> encoded(encoded_len);
    EcPointPtr p(EC_POINT_new(group.get()));
    if (!p ||
        EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, encoded.data(), encoded.size(),
                                        &encoded_len) != 1 ||
        EC_POINT_oct2point(group.get(), p.get(), encoded.data(), encoded_len, nullptr) != 1) {
      return fail("the EC point does not decode");
    }
    point.resize(EC_POINT_point2oct(group.get(), p.get(), POINT_CONVERSION_UNCOMPRESSED, nullptr, 0, nullptr));
    if (point.empty() ||
        EC_POINT_point2oct(group.get(), p.get(), POINT_CONVERSION_UNCOMPRESSED, point.data(), point.size(), nullptr) !=
            point.size() ||
        OSSL_PARAM_BLD_push_utf8_string(build.get(), OSSL_PKEY_PARAM_GROUP_NAME, group_name, 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(build.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1) {
      return fail("EC parameters");
    }
  } else if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) {
    type = "RSA";
    BIGNUM* n = nullptr;
    BIGNUM* e = nullptr;
    if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) != 1) return fail("no RSA modulus");
    n_owner.reset(n);
    if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) != 1) return fail("no RSA exponent");
    e_owner.reset(e);
    if (OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
        OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_E, e) != 1) {
      return fail("RSA parameters");
    }
  } else {
    throw base::Failure(base::ExitCode::kDataErr, "key-type", "only EC and RSA keys are re-encoded");
  }
  OsslParamPtr params(OSSL_PARAM_BLD_to_param(build.get()));
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* out = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &out, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return fail("rebuilding the key");
  }
  return EvpPkeyPtr(out);
}

}  // namespace pki
