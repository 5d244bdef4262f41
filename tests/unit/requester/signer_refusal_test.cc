// SPDX-License-Identifier: Apache-2.0
// The signer's reason code decides whether the daemon may try again (issue #17, item 2): a refused
// PIN, ours or the signer's, is never retried. The code comes from a line the signer (or whatever
// answers in its place) wrote, so it is parsed strictly.
#include <gtest/gtest.h>

#include "base/failure.h"
#include "requester/requester.h"

namespace {

using base::ExitCode;
using base::Failure;
using requester::IsPinFailure;
using requester::ParseSignerReason;
using requester::SignerRefusal;

TEST(ParseSignerReason, TakesTheKebabCaseCodeOfTheSignersLine) {
  EXPECT_EQ(ParseSignerReason("etcd-signer: pin-incorrect: C_Login failed with CKR_PIN_INCORRECT"), "pin-incorrect");
  EXPECT_EQ(ParseSignerReason("etcd-signer: identity-mismatch: this SSH key may only request 'kubemaster-1'"),
            "identity-mismatch");
  EXPECT_EQ(ParseSignerReason("etcd-signer: x509v3: a: b"), "x509v3");
  EXPECT_EQ(ParseSignerReason("etcd-signer: " + std::string(40, 'a') + ": forty is the limit"), std::string(40, 'a'));
}

TEST(ParseSignerReason, AnythingElseIsUnknown) {
  for (const std::string& line : {
           std::string(""),
           std::string("pin-incorrect: no program name"),
           std::string("etcd-signer: PIN-INCORRECT: upper case"),
           std::string("etcd-signer: pin_incorrect: underscore"),
           std::string("etcd-signer: pin-incorrect"),            // no sentence
           std::string("etcd-signer: pin-incorrect:no space"),
           std::string("etcd-signer: : empty code"),
           std::string("etcd-signer:  pin-incorrect: two spaces"),
           std::string("etcd-signer: pin incorrect: space"),
           std::string("etcd-signer: pin-\x1b[31m: escape"),
           std::string("xetcd-signer: pin-incorrect: prefix"),
           std::string("etcd-signer: " + std::string(41, 'a') + ": too long"),
       }) {
    EXPECT_EQ(ParseSignerReason(line), "") << line;
  }
}

TEST(IsPinFailure, AnyPinReasonFromOurTokenOrTheSigners) {
  EXPECT_TRUE(IsPinFailure(Failure(ExitCode::kUnavailable, "pin-incorrect", "ours")));
  EXPECT_TRUE(IsPinFailure(Failure(ExitCode::kUnavailable, "pin-locked", "ours")));
  EXPECT_TRUE(IsPinFailure(SignerRefusal(ExitCode::kUnavailable, "pin-incorrect", "etcd-signer: pin-incorrect: x")));
  EXPECT_TRUE(IsPinFailure(SignerRefusal(ExitCode::kUnavailable, "pin-locked", "etcd-signer: pin-locked: x")));
  // A PIN file or variable that cannot be read costs no lockout try: a configuration error, and on
  // one signer a reason to try the next (#12).
  EXPECT_FALSE(IsPinFailure(SignerRefusal(ExitCode::kConfig, "pin-file-permissions", "etcd-signer: ...")));
  EXPECT_FALSE(IsPinFailure(SignerRefusal(ExitCode::kConfig, "pin-file", "etcd-signer: ...")));
  EXPECT_FALSE(IsPinFailure(Failure(ExitCode::kConfig, "pin-env", "ours")));

  EXPECT_FALSE(IsPinFailure(Failure(ExitCode::kUnavailable, "connect-failed", "pin-incorrect in the text")));
  EXPECT_FALSE(IsPinFailure(SignerRefusal(ExitCode::kUnavailable, "token-busy", "etcd-signer: token-busy: x")));
  EXPECT_FALSE(IsPinFailure(SignerRefusal(ExitCode::kUnavailable, "", "etcd-signer: PIN-INCORRECT: x")));
  // The reason operators and scripts match on is unchanged.
  SignerRefusal r(ExitCode::kUnavailable, "pin-incorrect", "etcd-signer: pin-incorrect: x");
  EXPECT_EQ(r.reason(), "signer-refused");
  EXPECT_EQ(r.signer_reason(), "pin-incorrect");
  EXPECT_EQ(r.code(), ExitCode::kUnavailable);
}

}  // namespace
