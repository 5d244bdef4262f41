// SPDX-License-Identifier: Apache-2.0
// What operators type for `etcd-hsm crl`: serials, reasons, revoke files; and the CRL built from
// them.
#include "pki/crl.h"

#include <gtest/gtest.h>

#include "base/failure.h"

namespace {

using pki::ParseReason;
using pki::ParseRevocationList;
using pki::ParseSerial;
using pki::RevocationReason;
using pki::SerialBytes;

std::string ReasonOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const base::Failure& e) {
    return e.reason() + " " + std::to_string(static_cast<int>(e.code()));
  }
  return "no failure";
}

TEST(ParseSerial, AcceptsWhatOpensslPrintsInEitherCaseAndWithColons) {
  SerialBytes want{0x4a, 0x1f, 0x00, 0xbe};
  EXPECT_EQ(ParseSerial("4A1F00BE"), want);
  EXPECT_EQ(ParseSerial("4a1f00be"), want);
  EXPECT_EQ(ParseSerial("4a:1F:00:be"), want);
  EXPECT_EQ(ParseSerial("004A1F00BE"), want);  // a leading zero octet names the same integer
  EXPECT_EQ(ParseSerial("A"), SerialBytes{0x0a});
  EXPECT_EQ(pki::SerialText(want), "4A1F00BE");
  EXPECT_EQ(ParseSerial(std::string(40, 'f')).size(), 20u);
}

TEST(ParseSerial, RefusesAnythingElseWithUsage) {
  for (const char* bad : {"", "serial=4A1F", "0x4A1F", "4A 1F", "4A:1F:", ":4A", "4A::1F", "4:A1F",
                          "4A1G", "0", "00:00", "+4A", "-4A", "4A1F\n"}) {
    EXPECT_EQ(ReasonOf([&] { ParseSerial(bad); }), "bad-serial 64") << "'" << bad << "'";
  }
  EXPECT_EQ(ReasonOf([] { ParseSerial(std::string(41, 'f')); }), "bad-serial 64");
}

TEST(ParseReason, TakesRfc5280NamesOnly) {
  EXPECT_EQ(ParseReason("keyCompromise"), RevocationReason::kKeyCompromise);
  EXPECT_EQ(ParseReason("KEYCOMPROMISE"), RevocationReason::kKeyCompromise);
  EXPECT_EQ(ParseReason("cACompromise"), RevocationReason::kCaCompromise);
  EXPECT_EQ(ParseReason("superseded"), RevocationReason::kSuperseded);
  EXPECT_EQ(ParseReason("cessationOfOperation"), RevocationReason::kCessationOfOperation);
  EXPECT_EQ(pki::ReasonName(RevocationReason::kCaCompromise), "cACompromise");
  for (const char* bad : {"", "certificateHold", "removeFromCRL", "key-compromise", "1"}) {
    EXPECT_EQ(ReasonOf([&] { ParseReason(bad); }), "bad-reason 64") << bad;
  }
}

TEST(ParseRevocationList, ReadsSerialsAndOptionalReasonsSkippingCommentsAndBlankLines) {
  auto list = ParseRevocationList(
      "# incident 2026-11-27\n\n4A1F superseded\r\n  0b:cd\tkeyCompromise\n4a1f superseded\nEF\n");
  ASSERT_EQ(list.size(), 3u);  // the repeated 4A1F is one entry
  EXPECT_EQ(list[0].serial, (SerialBytes{0x4a, 0x1f}));
  EXPECT_EQ(list[0].reason, RevocationReason::kSuperseded);
  EXPECT_EQ(list[1].serial, (SerialBytes{0x0b, 0xcd}));
  EXPECT_EQ(list[1].reason, RevocationReason::kKeyCompromise);
  EXPECT_FALSE(list[2].reason.has_value());
  EXPECT_TRUE(ParseRevocationList("").empty());
}

TEST(ParseRevocationList, NamesTheLineOfEachMistake) {
  auto failure = [](const std::string& text) {
    try {
      ParseRevocationList(text);
    } catch (const base::Failure& e) {
      return e.reason() + " " + std::to_string(static_cast<int>(e.code())) + " " + e.what();
    }
    return std::string("no failure");
  };
  EXPECT_EQ(failure("AB\nzz\n").rfind("bad-revoke-file 65 line 2: serial 'zz'", 0), 0u)
      << failure("AB\nzz\n");
  EXPECT_EQ(failure("AB nope\n").rfind("bad-revoke-file 65 line 1: reason 'nope'", 0), 0u);
  EXPECT_EQ(failure("AB superseded extra\n").rfind("bad-revoke-file 65 line 1: expected", 0), 0u);
  EXPECT_EQ(failure("AB superseded\nab keyCompromise\n")
                .rfind("bad-revoke-file 65 line 2: serial AB is listed twice", 0),
            0u);
}

TEST(BuildCrl, CarriesIssuerNumberEntriesAndReasonsAndReadsBack) {
  pki::EvpPkeyPtr key(EVP_EC_gen("P-256"));
  ASSERT_TRUE(key);
  auto now = std::chrono::system_clock::from_time_t(1800000000);
  pki::CaCertificateFields ca_fields{"CN=crl unit CA", key.get(), pki::RandomSerial(),
                                     now - std::chrono::hours(1), now + std::chrono::hours(240)};
  pki::X509Ptr ca = pki::BuildCaCertificate(ca_fields);
  pki::SignCertificate(ca.get(), key.get());
  pki::CrlFields fields;
  fields.number = 42;
  fields.this_update = now;
  fields.next_update = now + std::chrono::hours(24);
  fields.entries = {{{0x7f, 0x01}, RevocationReason::kKeyCompromise, now - std::chrono::hours(2)},
                    {{0x01}, RevocationReason::kUnspecified, now}};
  pki::X509CrlPtr crl = pki::BuildCrl(fields, ca.get());
  pki::SignCrl(crl.get(), key.get());
  EXPECT_EQ(X509_CRL_verify(crl.get(), key.get()), 1);
  EXPECT_EQ(X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(ca.get())), 0);
  EXPECT_EQ(X509_CRL_get_version(crl.get()), X509_CRL_VERSION_2);

  pki::X509CrlPtr back = pki::ParseCrlPem(pki::ToPem(crl.get()), "test");
  EXPECT_EQ(pki::CrlNumber(back.get()), 42u);
  auto entries = pki::CrlEntries(back.get());
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].serial, SerialBytes{0x01});  // sorted by serial
  EXPECT_EQ(entries[0].reason, RevocationReason::kUnspecified);
  EXPECT_EQ(entries[1].serial, (SerialBytes{0x7f, 0x01}));
  EXPECT_EQ(entries[1].reason, RevocationReason::kKeyCompromise);
  EXPECT_EQ(entries[1].revoked_at, now - std::chrono::hours(2));
  // An unspecified reason is left out (RFC 5280 §5.3.1), a named one is a reasonCode extension.
  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(back.get());
  EXPECT_EQ(X509_REVOKED_get_ext_count(sk_X509_REVOKED_value(revoked, 0)), 0);
  EXPECT_EQ(X509_REVOKED_get_ext_count(sk_X509_REVOKED_value(revoked, 1)), 1);

  std::string pem = pki::ToPem(crl.get());
  EXPECT_EQ(ReasonOf([&] { pki::ParseCrlPem("# comment\n" + pem, "x"); }), "bad-crl 65");
  EXPECT_EQ(ReasonOf([&] { pki::ParseCrlPem(pem + pem, "x"); }), "bad-crl 65");
  EXPECT_EQ(ReasonOf([&] { pki::ParseCrlPem(pem + "junk\n", "x"); }), "bad-crl 65");
  EXPECT_EQ(ReasonOf([&] { pki::ParseCrlPem(pki::ToPem(ca.get()), "x"); }), "bad-crl 65");
}

}  // namespace
