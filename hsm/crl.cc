// SPDX-License-Identifier: Apache-2.0
#include "hsm/crl.h"

#include <openssl/err.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <map>

#include "base/failure.h"
#include "base/files.h"

namespace hsm {
namespace {

using base::ExitCode;
using base::Failure;

constexpr std::size_t kMaxCrlBytes = 32u << 20;  // 100,000 entries are about 5 MB of PEM

std::uint64_t ReadNumberFile(const std::string& path) {
  std::string text = base::ReadFileLimited(path, 64, "bad-crl-number-file");
  if (!text.empty() && text.back() == '\n') text.pop_back();
  bool digits = !text.empty() && text.size() <= 20 &&
                std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  std::uint64_t value = 0;
  if (digits) {
    for (char c : text) {
      std::uint64_t digit = static_cast<std::uint64_t>(c - '0');
      if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) {
        digits = false;
        break;
      }
      value = value * 10 + digit;
    }
  }
  if (!digits) {
    throw Failure(ExitCode::kDataErr, "bad-crl-number-file",
                  path + " must hold one decimal number (the last cRLNumber used) and a newline");
  }
  return value;
}

void CheckIssuer(X509* ca, const std::string& path) {
  auto refuse = [&](const std::string& why) {
    throw Failure(ExitCode::kDataErr, "not-a-crl-issuer", path + " " + why);
  };
  if (X509_check_ca(ca) == 0) refuse("is not a CA certificate");
  if ((X509_get_extension_flags(ca) & EXFLAG_KUSAGE) != 0 &&
      (X509_get_key_usage(ca) & KU_CRL_SIGN) == 0) {
    refuse("does not allow cRLSign in its keyUsage");
  }
  if (X509_get0_subject_key_id(ca) == nullptr) {
    refuse("has no subjectKeyIdentifier for the CRL's authorityKeyIdentifier");
  }
}

// The CRL already at --out, if any: ours to continue, or a refusal.
pki::X509CrlPtr ReadPrevious(const std::string& path, X509* ca) {
  if (::access(path.c_str(), F_OK) != 0) return nullptr;
  pki::X509CrlPtr crl =
      pki::ParseCrlPem(base::ReadFileLimited(path, kMaxCrlBytes, "bad-crl"), path);
  EVP_PKEY* key = X509_get0_pubkey(ca);
  bool same_name = X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(ca)) == 0;
  bool verifies = key != nullptr && X509_CRL_verify(crl.get(), key) == 1;
  ERR_clear_error();
  if (!same_name || !verifies) {
    throw Failure(ExitCode::kDataErr, "crl-issuer-mismatch",
                  path + " is a CRL of '" + pki::NameToString(X509_CRL_get_issuer(crl.get())) +
                      "'" + (same_name ? " whose signature does not verify with " : ", not of ") +
                      pki::NameToString(X509_get_subject_name(ca)) +
                      ": one CRL file per issuer; choose another --out");
  }
  return crl;
}

}  // namespace

CrlSummary IssueCrl(const KeyAccess& access, const CrlRequest& request,
                    std::chrono::system_clock::time_point now) {
  if (request.days < 1 || request.days > 3650) {
    throw Failure(ExitCode::kUsage, "bad-days", "--days must be between 1 and 3650");
  }
  if (request.out.empty()) throw Failure(ExitCode::kUsage, "usage", "--out is required");
  pki::X509Ptr ca = pki::ReadCertificateFile(request.ca_cert_path);
  CheckIssuer(ca.get(), request.ca_cert_path);

  // Read the last number, sign, write: two runs interleaving here would issue the same number.
  // The lock is a private 0600 file next to the CRL, waited for until the --timeout deadline.
  base::PrivateLock lock(request.out + ".lock", std::chrono::hours(1));
  pki::X509CrlPtr previous = ReadPrevious(request.out, ca.get());
  std::uint64_t last = 0;
  std::map<pki::SerialBytes, pki::CrlEntry> entries;
  if (previous) {
    last = pki::CrlNumber(previous.get()).value_or(0);
    for (auto& entry : pki::CrlEntries(previous.get()))
      entries.emplace(entry.serial, std::move(entry));
  }
  if (!request.number_file.empty() && ::access(request.number_file.c_str(), F_OK) == 0) {
    last = std::max(last, ReadNumberFile(request.number_file));
  }
  if (last == std::numeric_limits<std::uint64_t>::max()) {
    throw Failure(ExitCode::kDataErr, "bad-crl", "the last cRLNumber cannot be incremented");
  }
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  std::uint64_t number =
      std::max(last + 1, static_cast<std::uint64_t>(std::max<long long>(seconds, 0)));

  std::size_t added = 0;
  for (const auto& wanted : request.revoke) {
    auto it = entries.find(wanted.serial);
    if (it != entries.end()) {
      // Listed before: the date it was revoked stays; a reason named now corrects the old one.
      if (wanted.reason) it->second.reason = *wanted.reason;
      continue;
    }
    entries.emplace(
        wanted.serial,
        pki::CrlEntry{wanted.serial, wanted.reason.value_or(request.default_reason), now});
    ++added;
  }

  pki::CrlFields fields;
  fields.number = number;
  fields.this_update = now;
  fields.next_update = now + std::chrono::hours(24) * request.days;
  for (auto& [serial, entry] : entries) fields.entries.push_back(entry);

  OpenKey open(access);
  EVP_PKEY* ca_key = X509_get0_pubkey(ca.get());
  if (ca_key == nullptr || !pki::SamePublicKey(ca_key, open.key.public_key.get())) {
    throw Failure(ExitCode::kUnavailable, "ca-key-mismatch",
                  request.ca_cert_path + " does not belong to the token key " + access.key_uri);
  }
  pki::X509CrlPtr crl = pki::BuildCrl(fields, ca.get());
  pki::SignCrl(crl.get(), open.key.private_key.get());
  if (X509_CRL_verify(crl.get(), ca_key) != 1) {
    pki::ThrowOpenSsl(ExitCode::kUnavailable, "token-sign-failed",
                      "the token's CRL signature does not verify with " + request.ca_cert_path);
  }
  std::string pem = pki::ToPem(crl.get());
  // The number is on disk before the CRL that uses it: a crash in between skips a number, never
  // reuses one.
  if (!request.number_file.empty()) {
    base::AtomicFileWriter(request.number_file, 0644).Write(std::to_string(number) + "\n");
  }
  base::AtomicFileWriter(request.out, 0644).Write(pem);
  return CrlSummary{number, fields.entries.size(), added, fields.next_update};
}

}  // namespace hsm
