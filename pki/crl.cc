// SPDX-License-Identifier: Apache-2.0
#include "pki/crl.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>

#include "base/failure.h"
#include "base/text.h"

namespace pki {
namespace {

using base::ExitCode;
using base::Failure;

constexpr std::size_t kMaxSerialOctets = 20;  // RFC 5280 §4.1.2.2
constexpr std::size_t kMaxRevokeLines = 100000;

[[noreturn]] void BadSerial(std::string_view text, const std::string& why) {
  throw Failure(ExitCode::kUsage, "bad-serial",
                "serial '" + base::Printable(text, 64) + "' " + why +
                    " (hex as 'openssl x509 -serial -noout' prints it after serial=, optionally "
                    "with colons)");
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

struct NamedReason {
  RevocationReason reason;
  const char* name;
};
constexpr std::array<NamedReason, 7> kReasons{{
    {RevocationReason::kUnspecified, "unspecified"},
    {RevocationReason::kKeyCompromise, "keyCompromise"},
    {RevocationReason::kCaCompromise, "cACompromise"},
    {RevocationReason::kAffiliationChanged, "affiliationChanged"},
    {RevocationReason::kSuperseded, "superseded"},
    {RevocationReason::kCessationOfOperation, "cessationOfOperation"},
    {RevocationReason::kPrivilegeWithdrawn, "privilegeWithdrawn"},
}};

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

[[noreturn]] void BuildFailed(const std::string& what) {
  ThrowOpenSsl(ExitCode::kSoftware, "internal", "cannot build the CRL: " + what);
}

Asn1TimePtr Time(TimePoint t) {
  // ASN1_TIME_set picks UTCTime before 2050 and GeneralizedTime after, as RFC 5280 §5.1.2.4 wants.
  Asn1TimePtr out(ASN1_TIME_set(nullptr, std::chrono::system_clock::to_time_t(t)));
  if (!out) BuildFailed("time");
  return out;
}

Asn1IntegerPtr Integer(const SerialBytes& bytes) {
  BignumPtr bn(BN_bin2bn(bytes.data(), static_cast<int>(bytes.size()), nullptr));
  if (!bn) BuildFailed("integer");
  Asn1IntegerPtr integer(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!integer) BuildFailed("integer");
  return integer;
}

SerialBytes Magnitude(const ASN1_INTEGER* integer) {
  BignumPtr bn(ASN1_INTEGER_to_BN(integer, nullptr));
  if (!bn) return {};
  SerialBytes out(static_cast<std::size_t>(BN_num_bytes(bn.get())));
  BN_bn2bin(bn.get(), out.data());
  return out;
}

}  // namespace

SerialBytes ParseSerial(std::string_view text) {
  if (text.empty()) BadSerial(text, "is empty");
  bool colons = text.find(':') != std::string_view::npos;
  std::string digits;
  if (colons) {
    std::size_t start = 0;
    for (;;) {
      std::size_t end = text.find(':', start);
      std::string_view group =
          text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
      if (group.size() != 2)
        BadSerial(text, "has a colon-separated group that is not two hex digits");
      digits.append(group);
      if (end == std::string_view::npos) break;
      start = end + 1;
    }
  } else {
    digits.assign(text);
  }
  for (char c : digits) {
    if (HexDigit(c) < 0) BadSerial(text, "is not hexadecimal");
  }
  std::size_t first = digits.find_first_not_of('0');
  if (first == std::string::npos) BadSerial(text, "is zero, which no certificate of ours carries");
  digits.erase(0, first);
  if (digits.size() % 2 != 0) digits.insert(digits.begin(), '0');
  if (digits.size() / 2 > kMaxSerialOctets) BadSerial(text, "is longer than 20 octets");
  SerialBytes out;
  for (std::size_t i = 0; i < digits.size(); i += 2) {
    out.push_back(static_cast<unsigned char>(HexDigit(digits[i]) * 16 + HexDigit(digits[i + 1])));
  }
  return out;
}

std::string SerialText(const SerialBytes& serial) {
  std::string hex = Hex(serial.data(), serial.size());
  std::transform(hex.begin(), hex.end(), hex.begin(),
                 [](char c) { return static_cast<char>(std::toupper(c)); });
  return hex;
}

RevocationReason ParseReason(std::string_view text) {
  for (const auto& r : kReasons) {
    if (EqualsIgnoringCase(text, r.name)) return r.reason;
  }
  std::string names;
  for (const auto& r : kReasons) names += std::string(names.empty() ? "" : ", ") + r.name;
  throw Failure(ExitCode::kUsage, "bad-reason",
                "reason '" + base::Printable(text, 64) + "' is not one of " + names);
}

std::string ReasonName(RevocationReason reason) {
  for (const auto& r : kReasons) {
    if (r.reason == reason) return r.name;
  }
  return "reason-" + std::to_string(static_cast<int>(reason));
}

std::vector<RevocationRequest> ParseRevocationList(std::string_view text) {
  std::vector<RevocationRequest> out;
  std::map<SerialBytes, std::optional<RevocationReason>> seen;
  std::size_t line_number = 0;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    std::string_view line =
        text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    start = end == std::string_view::npos ? text.size() : end + 1;
    if (++line_number > kMaxRevokeLines) {
      throw Failure(ExitCode::kDataErr, "bad-revoke-file", "more than 100000 lines");
    }
    auto fail = [&](const std::string& why) {
      throw Failure(ExitCode::kDataErr, "bad-revoke-file",
                    "line " + std::to_string(line_number) + ": " + why);
    };
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::vector<std::string_view> words;
    std::size_t at = 0;
    while (at < line.size()) {
      while (at < line.size() && (line[at] == ' ' || line[at] == '\t')) ++at;
      std::size_t word_end = at;
      while (word_end < line.size() && line[word_end] != ' ' && line[word_end] != '\t') ++word_end;
      if (word_end > at) words.push_back(line.substr(at, word_end - at));
      at = word_end;
    }
    if (words.empty() || words.front().front() == '#') continue;
    if (words.size() > 2)
      fail("expected 'SERIAL [REASON]', found " + std::to_string(words.size()) + " words");
    RevocationRequest request;
    try {
      request.serial = ParseSerial(words[0]);
      if (words.size() == 2) request.reason = ParseReason(words[1]);
    } catch (const Failure& f) {
      fail(f.what());
    }
    auto [it, inserted] = seen.emplace(request.serial, request.reason);
    if (!inserted) {
      if (it->second != request.reason)
        fail("serial " + SerialText(request.serial) + " is listed twice with different reasons");
      continue;
    }
    out.push_back(std::move(request));
  }
  return out;
}

X509CrlPtr BuildCrl(const CrlFields& fields, X509* issuer) {
  X509CrlPtr crl(X509_CRL_new());
  if (!crl || X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1) BuildFailed("version");
  if (X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer)) != 1)
    BuildFailed("issuer");
  Asn1TimePtr this_update = Time(fields.this_update), next_update = Time(fields.next_update);
  if (X509_CRL_set1_lastUpdate(crl.get(), this_update.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next_update.get()) != 1) {
    BuildFailed("thisUpdate/nextUpdate");
  }
  for (const CrlEntry& entry : fields.entries) {
    X509RevokedPtr revoked(X509_REVOKED_new());
    Asn1IntegerPtr serial = Integer(entry.serial);
    Asn1TimePtr when = Time(entry.revoked_at);
    if (!revoked || X509_REVOKED_set_serialNumber(revoked.get(), serial.get()) != 1 ||
        X509_REVOKED_set_revocationDate(revoked.get(), when.get()) != 1) {
      BuildFailed("entry " + SerialText(entry.serial));
    }
    if (entry.reason != RevocationReason::kUnspecified) {
      Asn1EnumeratedPtr code(ASN1_ENUMERATED_new());
      if (!code || ASN1_ENUMERATED_set(code.get(), static_cast<int>(entry.reason)) != 1 ||
          X509_REVOKED_add1_ext_i2d(revoked.get(), NID_crl_reason, code.get(), 0, 0) != 1) {
        BuildFailed("reason of " + SerialText(entry.serial));
      }
    }
    // add0: on success the CRL owns the entry, so ours lets go of it.
    if (X509_CRL_add0_revoked(crl.get(), revoked.get()) != 1) {
      BuildFailed("entry " + SerialText(entry.serial));
    }
    static_cast<void>(revoked.release());
  }
  if (X509_CRL_sort(crl.get()) != 1) BuildFailed("sort");

  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, nullptr, nullptr, crl.get(), 0);
  // "keyid:always": a CA without a subjectKeyIdentifier is refused rather than given an AKI
  // naming it by issuer and serial.
  X509ExtensionPtr aki(
      X509V3_EXT_conf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always"));
  if (!aki || X509_CRL_add_ext(crl.get(), aki.get(), -1) != 1)
    BuildFailed("authorityKeyIdentifier");
  Asn1IntegerPtr number(ASN1_INTEGER_new());
  if (!number || ASN1_INTEGER_set_uint64(number.get(), fields.number) != 1 ||
      X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, 0) != 1) {
    BuildFailed("cRLNumber");
  }
  return crl;
}

void SignCrl(X509_CRL* crl, EVP_PKEY* key) {
  if (X509_CRL_sign(crl, key, EVP_sha256()) <= 0) {
    ThrowOpenSsl(ExitCode::kUnavailable, "token-sign-failed", "the token did not sign the CRL");
  }
}

std::string ToPem(X509_CRL* crl) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_CRL(bio.get(), crl) != 1) {
    ThrowOpenSsl(ExitCode::kSoftware, "encode-failed", "cannot encode the CRL");
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

X509CrlPtr ParseCrlPem(const std::string& text, const std::string& what) {
  auto bad = [&](const std::string& why) {
    throw Failure(ExitCode::kDataErr, "bad-crl", what + " " + why);
  };
  static const std::string kBegin = "-----BEGIN X509 CRL-----";
  std::size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || text.compare(first, kBegin.size(), kBegin) != 0) {
    bad("does not start with a '" + kBegin + "' block");
  }
  if (text.find("-----BEGIN", first + 1) != std::string::npos) bad("holds more than one PEM block");
  BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  X509CrlPtr crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
  if (!crl) {
    std::string detail = DrainOpenSslErrors();
    bad("is not a readable CRL" + (detail.empty() ? std::string() : " (" + detail + ")"));
  }
  char rest[64];
  int left = BIO_read(bio.get(), rest, sizeof rest);
  for (int i = 0; i < left; ++i) {
    if (std::string_view(" \t\r\n").find(rest[i]) == std::string_view::npos)
      bad("has text after its PEM block");
  }
  ERR_clear_error();
  return crl;
}

std::optional<std::uint64_t> CrlNumber(X509_CRL* crl) {
  int critical = 0;
  Asn1IntegerPtr number(
      static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(crl, NID_crl_number, &critical, nullptr)));
  if (!number) {
    if (critical == -1) {
      ERR_clear_error();
      return std::nullopt;
    }
    throw Failure(ExitCode::kDataErr, "bad-crl", "the CRL's cRLNumber does not decode");
  }
  std::uint64_t value = 0;
  if (ASN1_INTEGER_get_uint64(&value, number.get()) != 1) {
    ERR_clear_error();
    throw Failure(ExitCode::kDataErr, "bad-crl",
                  "the CRL's cRLNumber is negative or larger than 64 bits");
  }
  return value;
}

std::vector<CrlEntry> CrlEntries(X509_CRL* crl) {
  std::vector<CrlEntry> out;
  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl);
  for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i) {
    X509_REVOKED* r = sk_X509_REVOKED_value(revoked, i);
    CrlEntry entry;
    entry.serial = Magnitude(X509_REVOKED_get0_serialNumber(r));
    entry.revoked_at = ToTimePoint(X509_REVOKED_get0_revocationDate(r));
    Asn1EnumeratedPtr code(static_cast<ASN1_ENUMERATED*>(
        X509_REVOKED_get_ext_d2i(r, NID_crl_reason, nullptr, nullptr)));
    if (code) entry.reason = static_cast<RevocationReason>(ASN1_ENUMERATED_get(code.get()));
    out.push_back(std::move(entry));
  }
  ERR_clear_error();
  return out;
}

}  // namespace pki
