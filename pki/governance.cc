// SPDX-License-Identifier: Apache-2.0
#include "pki/governance.h"

#include <openssl/pem.h>  // before cms.h: its PEM_read_bio_CMS
#include <openssl/cms.h>
#include <openssl/err.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "base/duration.h"
#include "base/failure.h"
#include "base/text.h"

namespace pki {
namespace {

using base::ExitCode;
using base::Failure;

// A certificate name of this project: a master's or a member's, lower-case letters, digits, '-'
// and '.', starting and ending with a letter or digit, at most 63 characters.
bool IsLabelName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(name.front()) || !alnum(name.back())) return false;
  return std::all_of(name.begin(), name.end(), [&](char c) { return alnum(c) || c == '-' || c == '.'; });
}

using CmsPtr = std::unique_ptr<CMS_ContentInfo, OpenSslDeleter<CMS_ContentInfo_free>>;
using BioPtr = std::unique_ptr<BIO, OpenSslDeleter<BIO_free_all>>;
// A stack that does not own its certificates.
void FreeStackOnly(STACK_OF(X509) * stack) { sk_X509_free(stack); }
using BorrowedX509Stack = std::unique_ptr<STACK_OF(X509), OpenSslDeleter<FreeStackOnly>>;

std::string BioBytes(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

constexpr const char* kFormat = "etcd-hsm-signer governance 1";

[[noreturn]] void Invalid(const std::string& file, const std::string& why);

GovernanceRevocation Revocation(const std::string& serial, const std::string& reason, const std::string& file) {
  GovernanceRevocation r;
  try {
    r.serial = ParseSerial(serial);
    r.reason = ParseReason(reason);
  } catch (const Failure& f) {
    Invalid(file, std::string("revoked: ") + f.what());
  }
  return r;
}

[[noreturn]] void Invalid(const std::string& file, const std::string& why) {
  throw Failure(ExitCode::kDataErr, "governance-invalid", file + ": " + why);
}

bool IsLowerHex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// A name any signer could issue to: a member's or a master's (both are lower-case DNS-like labels).
void CheckNameSyntax(const std::string& name, const std::string& file, const std::string& where) {
  if (!IsLabelName(name)) {
    Invalid(file, where + ": '" + base::Printable(name, 80) +
                      "' is not a certificate name (lower-case letters, digits, '-' and '.', at most 63)");
  }
}

// Sorts every list, refuses duplicates and contradictions, and checks each entry's form: the one
// place both the source and the signed content are judged.
}  // namespace

void NormalizeGovernanceState(GovernanceState& s, const std::string& file) {
  for (const auto& name : s.denied_identities) CheckNameSyntax(name, file, "denied_identities");
  for (auto* keys : {&s.denied_keys, &s.approved_keys}) {
    const char* list = keys == &s.denied_keys ? "denied_keys" : "approved_keys";
    for (const auto& k : *keys) {
      CheckNameSyntax(k.identity, file, list);
      if (!IsLowerHex64(k.sha256)) {
        Invalid(file, std::string(list) + ": sha256 '" + base::Printable(k.sha256, 80) +
                          "' is not 64 lower-case hex digits (etcd-signerctl pending prints them)");
      }
    }
    std::sort(keys->begin(), keys->end());
    if (auto d = std::adjacent_find(keys->begin(), keys->end()); d != keys->end()) {
      Invalid(file, std::string(list) + ": " + d->identity + " " + d->sha256 + " is listed twice");
    }
  }
  std::sort(s.denied_identities.begin(), s.denied_identities.end());
  if (auto d = std::adjacent_find(s.denied_identities.begin(), s.denied_identities.end()); d != s.denied_identities.end()) {
    Invalid(file, "denied_identities: " + *d + " is listed twice");
  }
  for (const auto& k : s.approved_keys) {
    if (std::binary_search(s.denied_keys.begin(), s.denied_keys.end(), k)) {
      Invalid(file, k.identity + " " + k.sha256 + " is both approved and denied: which was meant?");
    }
  }
  std::sort(s.revoked.begin(), s.revoked.end(), [](const auto& a, const auto& b) {
    return a.serial.size() != b.serial.size() ? a.serial.size() < b.serial.size() : a.serial < b.serial;
  });
  for (std::size_t i = 1; i < s.revoked.size(); ++i) {
    if (s.revoked[i].serial == s.revoked[i - 1].serial) {
      Invalid(file, "revoked: serial " + SerialText(s.revoked[i].serial) + " is listed twice");
    }
  }
}

bool GovernanceState::DeniesIdentity(std::string_view name) const {
  return std::binary_search(denied_identities.begin(), denied_identities.end(), name,
                            [](auto a, auto b) { return std::string_view(a) < std::string_view(b); });
}

bool GovernanceState::DeniesKey(std::string_view name, std::string_view sha256) const {
  return std::binary_search(denied_keys.begin(), denied_keys.end(), GovernanceKey{std::string(name), std::string(sha256)});
}

bool GovernanceState::ApprovesKey(std::string_view name, std::string_view sha256) const {
  return std::binary_search(approved_keys.begin(), approved_keys.end(), GovernanceKey{std::string(name), std::string(sha256)});
}

std::vector<std::string> GovernanceState::Names() const {
  std::set<std::string> names(denied_identities.begin(), denied_identities.end());
  for (const auto& k : denied_keys) names.insert(k.identity);
  for (const auto& k : approved_keys) names.insert(k.identity);
  return {names.begin(), names.end()};
}

std::string EncodeGovernanceContent(const GovernanceState& s) {
  nlohmann::ordered_json j;
  j["governance"] = kFormat;
  j["version"] = s.version;
  j["issued"] = base::FormatRfc3339(s.issued);
  j["expires"] = base::FormatRfc3339(s.expires);
  j["denied_identities"] = s.denied_identities;
  auto keys = [](const std::vector<GovernanceKey>& list) {
    nlohmann::ordered_json a = nlohmann::ordered_json::array();
    for (const auto& k : list) a.push_back({{"identity", k.identity}, {"sha256", k.sha256}});
    return a;
  };
  j["denied_keys"] = keys(s.denied_keys);
  j["approved_keys"] = keys(s.approved_keys);
  j["revoked"] = nlohmann::ordered_json::array();
  for (const auto& r : s.revoked) {
    j["revoked"].push_back({{"serial", SerialText(r.serial)}, {"reason", ReasonName(r.reason)}});
  }
  return j.dump();
}

GovernanceState DecodeGovernanceContent(std::string_view content, const std::string& file) {
  nlohmann::json j = nlohmann::json::parse(content, nullptr, false);
  if (j.is_discarded() || !j.is_object()) Invalid(file, "the signed content is not a JSON object");
  GovernanceState s;
  try {
    if (j.at("governance") != kFormat) Invalid(file, "the signed content is not a governance document of this format");
    s.version = j.at("version").get<std::uint64_t>();
    s.issued = base::ParseRfc3339(j.at("issued").get<std::string>());
    s.expires = base::ParseRfc3339(j.at("expires").get<std::string>());
    s.denied_identities = j.at("denied_identities").get<std::vector<std::string>>();
    for (const char* list : {"denied_keys", "approved_keys"}) {
      auto& keys = std::string_view(list) == "denied_keys" ? s.denied_keys : s.approved_keys;
      for (const auto& k : j.at(list)) keys.push_back({k.at("identity").get<std::string>(), k.at("sha256").get<std::string>()});
    }
    for (const auto& r : j.at("revoked")) {
      s.revoked.push_back(Revocation(r.at("serial").get<std::string>(), r.at("reason").get<std::string>(), file));
    }
  } catch (const nlohmann::json::exception& e) {
    Invalid(file, std::string("the signed content does not have the document's fields: ") + e.what());
  } catch (const Failure& f) {
    if (f.reason() == "governance-invalid") throw;
    Invalid(file, std::string("the signed content: ") + f.what());
  }
  if (s.version == 0) Invalid(file, "version 0 is not a document's version");
  NormalizeGovernanceState(s, file);
  // One state, one content: unknown fields, another order or spacing, unsorted or repeated
  // entries all encode differently, and are refused rather than half-understood.
  if (EncodeGovernanceContent(s) != content) Invalid(file, "the signed content is not in canonical form (unknown fields or order)");
  return s;
}

std::string SignGovernance(const GovernanceState& state, X509* cert, EVP_PKEY* key) {
  std::string content = EncodeGovernanceContent(state);
  BioPtr data(BIO_new_mem_buf(content.data(), static_cast<int>(content.size())));
  if (X509_check_private_key(cert, key) != 1 && !SamePublicKey(X509_get0_pubkey(cert), key)) {
    ERR_clear_error();
    throw Failure(ExitCode::kUsage, "cert-key-mismatch", "the certificate given (--cert) does not belong to the governance key");
  }
  ERR_clear_error();
  CmsPtr cms(CMS_sign(cert, key, nullptr, data.get(), CMS_BINARY | CMS_NOSMIMECAP));
  if (!cms) {
    throw Failure(ExitCode::kUnavailable, "governance-sign-failed", "the token did not sign the document: " + DrainOpenSslErrors());
  }
  BioPtr out(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_CMS(out.get(), cms.get()) != 1) {
    throw Failure(ExitCode::kSoftware, "governance-sign-failed", "cannot encode the document: " + DrainOpenSslErrors());
  }
  return BioBytes(out.get());
}

GovernanceDocument ReadGovernance(std::string_view pem, const std::vector<X509*>& trusted, const std::string& file) {
  if (pem.size() > kMaxGovernanceBytes) Invalid(file, "larger than " + std::to_string(kMaxGovernanceBytes) + " bytes");
  BioPtr in(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  CmsPtr cms(PEM_read_bio_CMS(in.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!cms) Invalid(file, "not a PEM CMS document (-----BEGIN CMS-----)");
  std::string rest = BioBytes(in.get());
  if (rest.find_first_not_of(" \t\r\n") != std::string::npos) Invalid(file, "holds more than one PEM block");
  if (OBJ_obj2nid(CMS_get0_type(cms.get())) != NID_pkcs7_signed ||
      OBJ_obj2nid(CMS_get0_eContentType(cms.get())) != NID_pkcs7_data) {
    Invalid(file, "not a CMS SignedData over data");
  }
  STACK_OF(CMS_SignerInfo)* infos = CMS_get0_SignerInfos(cms.get());
  if (infos == nullptr || sk_CMS_SignerInfo_num(infos) != 1) Invalid(file, "must have exactly one signature");
  CMS_SignerInfo* info = sk_CMS_SignerInfo_value(infos, 0);
  BorrowedX509Stack certs(sk_X509_new_null());
  unsigned flags = CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY;
  if (!trusted.empty()) {
    // Pinned: the signature must be by one of these certificates' keys; certificates carried in
    // the document say nothing.
    X509* match = nullptr;
    for (X509* t : trusted) {
      if (CMS_SignerInfo_cert_cmp(info, t) == 0) match = t;
    }
    if (match == nullptr) {
      throw Failure(ExitCode::kDataErr, "governance-signature",
                    file + ": not signed by a governance certificate of this host (governance_cert)");
    }
    sk_X509_push(certs.get(), match);
    flags |= CMS_NOINTERN;
  }
  BioPtr out(BIO_new(BIO_s_mem()));
  int ok = CMS_verify(cms.get(), certs.get(), nullptr, nullptr, out.get(), flags);
  if (ok != 1) {
    std::string why = DrainOpenSslErrors();
    throw Failure(ExitCode::kDataErr, "governance-signature", file + ": the signature does not verify (" + why + ")");
  }
  GovernanceDocument doc;
  STACK_OF(X509)* signers = CMS_get0_signers(cms.get());
  if (signers != nullptr && sk_X509_num(signers) == 1) {
    X509* signer = sk_X509_value(signers, 0);
    X509_up_ref(signer);
    doc.signer.reset(signer);
  }
  sk_X509_free(signers);
  if (!doc.signer) Invalid(file, "the signer's certificate is not in the document");
  std::string content = BioBytes(out.get());
  doc.state = DecodeGovernanceContent(content, file);
  doc.sha256 = Sha256Hex(std::vector<unsigned char>(pem.begin(), pem.end()));
  doc.pem = std::string(pem);
  return doc;
}

CrlFields GovernanceCrlFields(const GovernanceState& state) {
  CrlFields fields;
  for (const auto& r : state.revoked) fields.entries.push_back({r.serial, r.reason, state.issued});
  fields.number = state.version;
  fields.this_update = state.issued;
  fields.next_update = state.expires;
  return fields;
}

}  // namespace pki
