// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>
#include <p11-kit/pkcs11.h>

#include "base/failure.h"
#include "hsm/error.h"
#include "hsm/uri.h"

namespace {

using hsm::Pkcs11Uri;

TEST(Pkcs11Uri, ParsesPathAndQueryAttributes) {
  Pkcs11Uri u = Pkcs11Uri::Parse(
      "pkcs11:token=etcd-ca;object=ca-key;type=private;serial=0123abcd;manufacturer=SoftHSM%20project"
      "?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/etcd-signer/token.pin");
  EXPECT_EQ(*u.token, "etcd-ca");
  EXPECT_EQ(*u.object, "ca-key");
  EXPECT_EQ(*u.type, "private");
  EXPECT_EQ(*u.serial, "0123abcd");
  EXPECT_EQ(*u.manufacturer, "SoftHSM project");
  EXPECT_EQ(*u.module_path, "/usr/lib/softhsm/libsofthsm2.so");
  EXPECT_EQ(*u.pin_source, "/etc/etcd-signer/token.pin");
  EXPECT_FALSE(u.id.has_value());
  EXPECT_FALSE(u.model.has_value());
}

TEST(Pkcs11Uri, DecodesBinaryIdsAndIgnoresVendorAttributes) {
  Pkcs11Uri u = Pkcs11Uri::Parse("pkcs11:x-vendor=whatever;id=%01%02%fF;token=a%3Bb");
  ASSERT_TRUE(u.id.has_value());
  EXPECT_EQ(*u.id, (std::vector<unsigned char>{0x01, 0x02, 0xff}));
  EXPECT_EQ(*u.token, "a;b");
  EXPECT_EQ(Pkcs11Uri::Parse(u.ToString()).token, u.token);
  EXPECT_EQ(Pkcs11Uri::Parse(u.ToString()).id, u.id);
}

TEST(Pkcs11Uri, RefusesMalformedUris) {
  for (const std::string bad : {
           "token=etcd-ca",                         // no scheme
           "PKCS11:token=a",                        // wrong scheme case
           "pkcs11:token=",                         // empty value
           "pkcs11:token=a;;object=b",              // empty attribute
           "pkcs11:token=a;",                       // trailing separator
           "pkcs11:token",                          // no '='
           "pkcs11:token=a;token=b",                // repeated
           "pkcs11:tokn=a",                         // unknown attribute (typo)
           "pkcs11:slot-id=0",                      // slot ids are never used
           "pkcs11:token=a%2",                      // truncated escape
           "pkcs11:token=a%zz",                     // bad hex
           "pkcs11:token=a b",                      // unescaped space
           "pkcs11:type=secret",                    // unknown type
           "pkcs11:token=a?pin-value=1234",         // PIN in the URI
           "pkcs11:token=a?module-name=softhsm2",   // unsupported
           "pkcs11:token=a?pin-source=relative/pin", // relative PIN path
           "pkcs11:token=a?",                       // empty query
           "pkcs11:token=a?color=blue",             // unknown query attribute
       }) {
    try {
      Pkcs11Uri::Parse(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const base::Failure& f) {
      EXPECT_EQ(f.code(), base::ExitCode::kUsage) << bad;
      EXPECT_EQ(f.reason(), "bad-uri") << bad;
    }
  }
}

TEST(CkrNames, NamesAndMapping) {
  EXPECT_EQ(hsm::CkrName(CKR_PIN_INCORRECT), "CKR_PIN_INCORRECT");
  EXPECT_EQ(hsm::CkrName(CKR_TOKEN_NOT_PRESENT), "CKR_TOKEN_NOT_PRESENT");
  EXPECT_EQ(hsm::CkrName(0x8000001Bul), "CKR_0x8000001B");
  struct Case {
    unsigned long rv;
    base::ExitCode code;
    const char* reason;
  };
  for (const Case& c : {Case{CKR_PIN_INCORRECT, base::ExitCode::kUnavailable, "pin-incorrect"},
                        Case{CKR_PIN_LOCKED, base::ExitCode::kUnavailable, "pin-locked"},
                        Case{CKR_SESSION_COUNT, base::ExitCode::kTempFail, "token-busy"},
                        Case{CKR_TOKEN_NOT_PRESENT, base::ExitCode::kUnavailable, "token-unavailable"},
                        Case{CKR_GENERAL_ERROR, base::ExitCode::kUnavailable, "token-error"}}) {
    try {
      hsm::ThrowCkr("C_Login", c.rv);
    } catch (const base::Failure& f) {
      EXPECT_EQ(f.code(), c.code) << c.reason;
      EXPECT_EQ(f.reason(), c.reason);
      EXPECT_NE(std::string(f.what()).find(hsm::CkrName(c.rv)), std::string::npos) << f.what();
    }
  }
}

}  // namespace
