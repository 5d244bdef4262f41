// SPDX-License-Identifier: Apache-2.0
#include "signer/governance.h"

#include <openssl/pem.h>  // before cms.h: its PEM_read_bio_CMS
#include <openssl/cms.h>
#include <openssl/err.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <nlohmann/json.hpp>
#include <set>
#include <toml++/toml.h>

#include "base/duration.h"
#include "base/failure.h"
#include "base/files.h"
#include "base/path_trust.h"
#include "base/text.h"
#include "pki/verify.h"
#include "signer/approval.h"
#include "signer/policy.h"

namespace signer {
namespace {

using base::ExitCode;
using base::Failure;

constexpr const char* kFormat = "etcd-hsm-signer governance 1";

[[noreturn]] void Invalid(const std::string& file, const std::string& why) {
  throw Failure(ExitCode::kDataErr, "governance-invalid", file + ": " + why);
}

bool IsLowerHex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// A name any signer could issue to: a member's or a master's (both are lower-case DNS-like labels).
void CheckNameSyntax(const std::string& name, const std::string& file, const std::string& where) {
  if (!IsMemberName(name)) {
    Invalid(file, where + ": '" + base::Printable(name, 80) +
                      "' is not a certificate name (lower-case letters, digits, '-' and '.', at most 63)");
  }
}

// Sorts every list, refuses duplicates and contradictions, and checks each entry's form: the one
// place both the source and the signed content are judged.
void Normalize(GovernanceState& s, const std::string& file) {
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
      Invalid(file, "revoked: serial " + pki::SerialText(s.revoked[i].serial) + " is listed twice");
    }
  }
}

// --- STATE.toml ---------------------------------------------------------------------------------

void OnlyKeys(const toml::table& t, std::initializer_list<std::string_view> allowed, const std::string& file,
              const std::string& where) {
  for (const auto& [key, value] : t) {
    if (std::find(allowed.begin(), allowed.end(), key.str()) == allowed.end()) {
      Invalid(file, where + "unknown key '" + base::Printable(key.str(), 64) + "'");
    }
  }
}

std::string TomlString(const toml::node& node, const std::string& file, const std::string& what) {
  if (!node.is_string()) Invalid(file, what + " must be a string");
  return std::string(*node.value<std::string_view>());
}

const toml::array& TomlArray(const toml::node& node, const std::string& file, const std::string& what) {
  if (!node.is_array()) Invalid(file, what + " must be an array");
  return *node.as_array();
}

pki::TimePoint TomlTime(const toml::node& node, const std::string& file) {
  std::string text;
  if (node.is_string()) {
    text = *node.value<std::string>();
  } else if (node.is_date_time()) {
    const toml::date_time& dt = *node.as_date_time()->operator->();
    if (!dt.offset || dt.offset->minutes != 0) Invalid(file, "expires must be a UTC time (…Z)");
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04u-%02u-%02uT%02u:%02u:%02uZ", dt.date.year, dt.date.month, dt.date.day,
                  dt.time.hour, dt.time.minute, dt.time.second);
    text = buf;
  } else {
    Invalid(file, "expires must be an RFC 3339 UTC time, e.g. 2027-01-31T00:00:00Z");
  }
  try {
    return base::ParseRfc3339(text);
  } catch (const Failure&) {
    Invalid(file, "expires '" + base::Printable(text, 40) + "' is not an RFC 3339 UTC time like 2027-01-31T00:00:00Z");
  }
}

std::vector<GovernanceKey> TomlKeys(const toml::node& node, const std::string& file, const std::string& list) {
  std::vector<GovernanceKey> keys;
  for (const toml::node& item : TomlArray(node, file, list)) {
    if (!item.is_table()) Invalid(file, list + " entries are {identity = \"…\", sha256 = \"…\"}");
    const toml::table& t = *item.as_table();
    OnlyKeys(t, {"identity", "sha256"}, file, list + ": ");
    if (!t.contains("identity") || !t.contains("sha256")) Invalid(file, list + " entries need identity and sha256");
    keys.push_back({TomlString(*t.get("identity"), file, list + ".identity"), TomlString(*t.get("sha256"), file, list + ".sha256")});
  }
  return keys;
}

GovernanceRevocation Revocation(const std::string& serial, const std::string& reason, const std::string& file) {
  GovernanceRevocation r;
  try {
    r.serial = pki::ParseSerial(serial);
    r.reason = pki::ParseReason(reason);
  } catch (const Failure& f) {
    Invalid(file, std::string("revoked: ") + f.what());
  }
  return r;
}

// --- reading files that decide ----------------------------------------------------------------

// The bytes of a file nobody but root and `owners` can change (as the approval lists, #14): the
// governance document decides who gets certificates, its certificate who may decide.
std::string ReadTrustedFile(const std::string& path, const std::vector<uid_t>& owners, const std::string& what) {
  struct stat st {};
  base::UniqueFd fd;
  try {
    fd = base::OpenRegularFile(path, "governance-missing", st);
  } catch (const Failure& f) {
    throw Failure(ExitCode::kUnavailable, "governance-missing", "cannot read the " + what + ": " + f.what());
  }
  if (auto problem = base::OthersCanChange(path, st, owners)) {
    throw Failure(ExitCode::kConfig, "governance-unsafe",
                  path + " cannot be trusted: " + *problem +
                      " (keep the governance files root's, or list_admin's, in directories only they can write)");
  }
  if (static_cast<std::size_t>(st.st_size) > kMaxGovernanceBytes) {
    throw Failure(ExitCode::kDataErr, "governance-invalid", path + " is larger than " + std::to_string(kMaxGovernanceBytes) + " bytes");
  }
  std::string bytes;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Failure(ExitCode::kUnavailable, "governance-missing", "cannot read " + path);
    if (n == 0) break;
    bytes.append(buf, static_cast<std::size_t>(n));
    if (bytes.size() > kMaxGovernanceBytes) {
      throw Failure(ExitCode::kDataErr, "governance-invalid", path + " is larger than " + std::to_string(kMaxGovernanceBytes) + " bytes");
    }
  }
  return bytes;
}

std::vector<pki::X509Ptr> TrustedGovernanceCerts(const SignerConfig& config, const std::vector<uid_t>& owners) {
  std::string pem = ReadTrustedFile(config.governance_cert, owners, "governance certificate");
  std::vector<pki::X509Ptr> certs;
  try {
    certs = pki::ParseCertificatesPem(pem, config.governance_cert);
  } catch (const Failure& f) {
    throw Failure(ExitCode::kConfig, "bad-config", std::string("governance_cert: ") + f.what());
  }
  if (certs.empty()) throw Failure(ExitCode::kConfig, "bad-config", "governance_cert " + config.governance_cert + " holds no certificate");
  return certs;
}

std::vector<X509*> Raw(const std::vector<pki::X509Ptr>& certs) {
  std::vector<X509*> raw;
  for (const auto& c : certs) raw.push_back(c.get());
  return raw;
}

using CmsPtr = std::unique_ptr<CMS_ContentInfo, pki::OpenSslDeleter<CMS_ContentInfo_free>>;
using BioPtr = std::unique_ptr<BIO, pki::OpenSslDeleter<BIO_free_all>>;
// A stack that does not own its certificates.
void FreeStackOnly(STACK_OF(X509) * stack) { sk_X509_free(stack); }
using BorrowedX509Stack = std::unique_ptr<STACK_OF(X509), pki::OpenSslDeleter<FreeStackOnly>>;

std::string BioBytes(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

}  // namespace

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

GovernanceState ParseGovernanceToml(std::string_view text, const std::string& file) {
  if (text.size() > kMaxGovernanceBytes) Invalid(file, "larger than " + std::to_string(kMaxGovernanceBytes) + " bytes");
  toml::table t;
  try {
    t = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    Invalid(file, "line " + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
  }
  OnlyKeys(t, {"version", "expires", "denied_identities", "denied_keys", "approved_keys", "revoked"}, file, "");
  GovernanceState s;
  if (const toml::node* v = t.get("version")) {
    if (!v->is_integer() || *v->value<std::int64_t>() < 1) Invalid(file, "version must be a positive integer");
    s.version = static_cast<std::uint64_t>(*v->value<std::int64_t>());
  }
  if (!t.contains("expires")) Invalid(file, "expires is required (an RFC 3339 UTC time): a policy must be renewed to stay in force");
  s.expires = TomlTime(*t.get("expires"), file);
  if (const toml::node* v = t.get("denied_identities")) {
    for (const toml::node& item : TomlArray(*v, file, "denied_identities")) {
      s.denied_identities.push_back(TomlString(item, file, "denied_identities entries"));
    }
  }
  if (const toml::node* v = t.get("denied_keys")) s.denied_keys = TomlKeys(*v, file, "denied_keys");
  if (const toml::node* v = t.get("approved_keys")) s.approved_keys = TomlKeys(*v, file, "approved_keys");
  if (const toml::node* v = t.get("revoked")) {
    for (const toml::node& item : TomlArray(*v, file, "revoked")) {
      if (!item.is_table()) Invalid(file, "revoked entries are {serial = \"HEX\", reason = \"keyCompromise\"}");
      const toml::table& r = *item.as_table();
      OnlyKeys(r, {"serial", "reason"}, file, "revoked: ");
      if (!r.contains("serial") || !r.contains("reason")) Invalid(file, "revoked entries need serial and reason");
      s.revoked.push_back(Revocation(TomlString(*r.get("serial"), file, "revoked.serial"),
                                     TomlString(*r.get("reason"), file, "revoked.reason"), file));
    }
  }
  Normalize(s, file);
  return s;
}

std::string EncodeGovernanceToml(const GovernanceState& s) {
  // Every value is a name, 64 hex digits, a serial or a reason (checked when parsed), so no
  // quoting beyond the quotes is needed; toml++ would read the same back.
  std::string out = "# etcd-hsm-signer governance state (etcd-signerctl governance sign --state)\n";
  if (s.version > 0) out += "version = " + std::to_string(s.version) + "\n";
  out += "expires = \"" + base::FormatRfc3339(s.expires) + "\"\n";
  out += "denied_identities = [";
  for (std::size_t i = 0; i < s.denied_identities.size(); ++i) out += (i ? ", \"" : "\"") + s.denied_identities[i] + "\"";
  out += "]\n";
  auto keys = [&](const char* name, const std::vector<GovernanceKey>& list) {
    out += std::string(name) + " = [\n";
    for (const auto& k : list) out += "  {identity = \"" + k.identity + "\", sha256 = \"" + k.sha256 + "\"},\n";
    out += "]\n";
  };
  keys("denied_keys", s.denied_keys);
  keys("approved_keys", s.approved_keys);
  out += "revoked = [\n";
  for (const auto& r : s.revoked) {
    out += "  {serial = \"" + pki::SerialText(r.serial) + "\", reason = \"" + pki::ReasonName(r.reason) + "\"},\n";
  }
  out += "]\n";
  return out;
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
    j["revoked"].push_back({{"serial", pki::SerialText(r.serial)}, {"reason", pki::ReasonName(r.reason)}});
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
  Normalize(s, file);
  // One state, one content: unknown fields, another order or spacing, unsorted or repeated
  // entries all encode differently, and are refused rather than half-understood.
  if (EncodeGovernanceContent(s) != content) Invalid(file, "the signed content is not in canonical form (unknown fields or order)");
  return s;
}

std::string SignGovernance(const GovernanceState& state, X509* cert, EVP_PKEY* key) {
  std::string content = EncodeGovernanceContent(state);
  BioPtr data(BIO_new_mem_buf(content.data(), static_cast<int>(content.size())));
  if (X509_check_private_key(cert, key) != 1 && !pki::SamePublicKey(X509_get0_pubkey(cert), key)) {
    ERR_clear_error();
    throw Failure(ExitCode::kUsage, "cert-key-mismatch", "the certificate given (--cert) does not belong to the governance key");
  }
  ERR_clear_error();
  CmsPtr cms(CMS_sign(cert, key, nullptr, data.get(), CMS_BINARY | CMS_NOSMIMECAP));
  if (!cms) {
    throw Failure(ExitCode::kUnavailable, "governance-sign-failed", "the token did not sign the document: " + pki::DrainOpenSslErrors());
  }
  BioPtr out(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_CMS(out.get(), cms.get()) != 1) {
    throw Failure(ExitCode::kSoftware, "governance-sign-failed", "cannot encode the document: " + pki::DrainOpenSslErrors());
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
    std::string why = pki::DrainOpenSslErrors();
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
  doc.sha256 = pki::Sha256Hex(std::vector<unsigned char>(pem.begin(), pem.end()));
  return doc;
}

GovernanceDocument LoadInstalledGovernance(const SignerConfig& config) {
  std::vector<uid_t> owners = ListOwners(config);
  std::vector<pki::X509Ptr> certs = TrustedGovernanceCerts(config, owners);
  std::string pem = ReadTrustedFile(config.governance_file, owners, "governance document");
  return ReadGovernance(pem, Raw(certs), config.governance_file);
}

void RequireUnexpired(const GovernanceDocument& document, pki::TimePoint now) {
  if (now >= document.state.expires) {
    throw Failure(ExitCode::kUnavailable, "governance-expired",
                  "the governance document (version " + std::to_string(document.state.version) + ") expired at " +
                      base::FormatRfc3339(document.state.expires) +
                      ": this signer issues nothing on stale policy; install a newer one (etcd-signerctl governance install)");
  }
}

void RequireMatchableNames(const GovernanceState& state, const SignerConfig& config) {
  SignerConfig rules = config;
  rules.identity.clear();
  for (const std::string& name : state.Names()) {
    if (config.members.count(name) != 0) continue;
    try {
      CheckName(name, rules);
    } catch (const Failure& f) {
      throw Failure(ExitCode::kDataErr, "governance-name",
                    "'" + base::Printable(name, 80) + "' can never be a certificate's name on this host (" + f.what() +
                        "): an entry for it would decide nothing");
    }
  }
}

std::string GovernanceMarkPath(const SignerConfig& config) { return config.governance_file + ".version"; }

std::uint64_t ReadGovernanceMark(const SignerConfig& config) {
  std::string path = GovernanceMarkPath(config);
  if (::access(path.c_str(), F_OK) != 0 && errno == ENOENT) return 0;
  std::string text = ReadTrustedFile(path, ListOwners(config), "governance high-water mark");
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (text.empty() || text.size() > 19 || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    throw Failure(ExitCode::kConfig, "governance-unsafe", path + " must hold one decimal version and a newline");
  }
  return std::stoull(text);
}

GovernanceDocument InstallGovernance(const SignerConfig& config, std::string_view pem, pki::TimePoint now) {
  std::vector<uid_t> owners = ListOwners(config);
  std::vector<pki::X509Ptr> certs = TrustedGovernanceCerts(config, owners);
  GovernanceDocument doc = ReadGovernance(pem, Raw(certs), "the document");
  if (now >= doc.state.expires) {
    throw Failure(ExitCode::kDataErr, "governance-expired",
                  "the document (version " + std::to_string(doc.state.version) + ") expired at " +
                      base::FormatRfc3339(doc.state.expires) + "; sign a new one");
  }
  RequireMatchableNames(doc.state, config);
  // One install at a time: the check of the mark and the writes after it are one step.
  base::PrivateLock lock(config.governance_file + ".lock", std::chrono::seconds(10));
  std::uint64_t mark = ReadGovernanceMark(config);
  if (::access(config.governance_file.c_str(), F_OK) == 0) {
    try {
      mark = std::max(mark, LoadInstalledGovernance(config).state.version);
    } catch (const Failure&) {
      // A damaged installed document is replaced; the mark still stands against a rollback.
    }
  }
  if (doc.state.version <= mark) {
    throw Failure(ExitCode::kDataErr, "governance-rollback",
                  "the document's version " + std::to_string(doc.state.version) + " is not above version " +
                      std::to_string(mark) + ", the highest installed here: an older policy cannot come back");
  }
  // The document first, then the mark: a crash between them leaves a document above the mark,
  // which the next install still compares against.
  base::AtomicFileWriter(config.governance_file, 0644).Write(pem);
  base::AtomicFileWriter(GovernanceMarkPath(config), 0644).Write(std::to_string(doc.state.version) + "\n");
  return doc;
}

pki::CrlFields GovernanceCrlFields(const GovernanceState& state) {
  pki::CrlFields fields;
  for (const auto& r : state.revoked) fields.entries.push_back({r.serial, r.reason, state.issued});
  fields.number = state.version;
  fields.this_update = state.issued;
  fields.next_update = state.expires;
  return fields;
}

}  // namespace signer
