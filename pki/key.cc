#include "pki/key.h"

#include <openssl/core_names.h>
#include <openssl/obj_mac.h>

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

}  // namespace pki
