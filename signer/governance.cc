// SPDX-License-Identifier: Apache-2.0
#include "signer/governance.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <string_view>
#include <toml++/toml.h>

#include "base/duration.h"
#include "base/failure.h"
#include "base/files.h"
#include "base/path_trust.h"
#include "base/text.h"
#include "pki/verify.h"
#include "signer/approval.h"
#include "signer/audit_chain.h"
#include "signer/policy.h"

namespace signer {
namespace {

using base::ExitCode;
using base::Failure;

[[noreturn]] void Invalid(const std::string& file, const std::string& why) {
  throw Failure(ExitCode::kDataErr, "governance-invalid", file + ": " + why);
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

Failure TooLarge(const std::string& path) {
  return Failure(ExitCode::kDataErr, "governance-invalid",
                 path + " is larger than " + std::to_string(kMaxGovernanceBytes) + " bytes");
}

// A file nobody but root and `owners` can change (as the approval lists, #14): the governance
// document decides who gets certificates, its certificate who may decide. Opened and checked; the
// caller reads it (at most kMaxGovernanceBytes, which `size` from fstat already respects).
base::UniqueFd OpenTrustedFile(const std::string& path, const std::vector<uid_t>& owners, const std::string& what,
                               std::size_t& size) {
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
  size = static_cast<std::size_t>(st.st_size);
  if (size > kMaxGovernanceBytes) throw TooLarge(path);
  return fd;
}

// Its bytes, whole. Memory a request touches is paid in page faults, dear on a virtual machine:
// a 64 KiB stack buffer appended to a string cost the governance check 0.7 ms a request (#30).
// So: one string of the size fstat saw, read into directly, grown only if the file grew since.
std::string ReadTrustedFile(const std::string& path, const std::vector<uid_t>& owners, const std::string& what) {
  std::size_t size = 0;
  base::UniqueFd fd = OpenTrustedFile(path, owners, what, size);
  std::string bytes(size + 1, '\0');  // one more: the end is seen, not assumed
  std::size_t got = 0;
  for (;;) {
    if (got == bytes.size()) {
      if (got > kMaxGovernanceBytes) throw TooLarge(path);
      bytes.resize(std::min(bytes.size() * 2, kMaxGovernanceBytes + 1));
    }
    ssize_t n = ::read(fd.get(), bytes.data() + got, bytes.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Failure(ExitCode::kUnavailable, "governance-missing", "cannot read " + path);
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  bytes.resize(got);
  return bytes;
}

// Its SHA-256, without holding it: 16 KiB at a time.
std::string HashTrustedFile(const std::string& path, const std::vector<uid_t>& owners, const std::string& what) {
  std::size_t size = 0;
  base::UniqueFd fd = OpenTrustedFile(path, owners, what, size);
  Sha256Stream hash;
  char buf[16384];
  for (std::size_t total = 0;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Failure(ExitCode::kUnavailable, "governance-missing", "cannot read " + path);
    if (n == 0) break;
    total += static_cast<std::size_t>(n);
    if (total > kMaxGovernanceBytes) throw TooLarge(path);
    hash.Update(std::string_view(buf, static_cast<std::size_t>(n)));
  }
  return hash.FinalHex();
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

}  // namespace

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
  pki::NormalizeGovernanceState(s, file);
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

GovernanceDocument LoadInstalledGovernance(const SignerConfig& config) {
  std::vector<uid_t> owners = ListOwners(config);
  std::vector<pki::X509Ptr> certs = TrustedGovernanceCerts(config, owners);
  std::string pem = ReadTrustedFile(config.governance_file, owners, "governance document");
  return ReadGovernance(pem, Raw(certs), config.governance_file);
}

namespace {

constexpr const char* kIndexHeader = "etcd-signer governance index v1";

std::int64_t UnixSeconds(pki::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

// What an issuing request needs of a verified document, one entry per line, bound to the exact
// bytes of the document and of governance_cert it was verified with.
std::string EncodeGovernanceIndex(const GovernanceState& s, const std::string& document_sha256,
                                  const std::string& certificates_sha256) {
  std::string out = std::string(kIndexHeader) + "\ndocument " + document_sha256 + "\ncertificates " +
                    certificates_sha256 + "\nversion " + std::to_string(s.version) + "\nissued " +
                    std::to_string(UnixSeconds(s.issued)) + "\nexpires " + std::to_string(UnixSeconds(s.expires)) + "\n";
  for (const std::string& name : s.denied_identities) out += "deny-identity " + name + "\n";
  for (const GovernanceKey& k : s.denied_keys) out += "deny-key " + k.identity + " " + k.sha256 + "\n";
  for (const GovernanceKey& k : s.approved_keys) out += "approve-key " + k.identity + " " + k.sha256 + "\n";
  return out;
}

// The index's decisions, when it was written for exactly these bytes; nothing otherwise (an index
// of another document, of other certificates, or not of this shape: the full check decides).
std::optional<GovernanceState> DecodeGovernanceIndex(std::string_view text, const std::string& document_sha256,
                                                     const std::string& certificates_sha256) {
  GovernanceState s;
  std::size_t line_no = 0;
  auto number = [](std::string_view v) -> std::optional<std::int64_t> {
    if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
    return std::stoll(std::string(v));
  };
  while (!text.empty()) {
    std::size_t end = text.find('\n');
    if (end == std::string_view::npos) return std::nullopt;  // every line ends in a newline
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end + 1);
    std::size_t space = line.find(' ');
    std::string_view word = line.substr(0, space);
    std::string_view rest = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
    switch (line_no++) {
      case 0: if (line != kIndexHeader) return std::nullopt; continue;
      case 1: if (word != "document" || rest != document_sha256) return std::nullopt; continue;
      case 2: if (word != "certificates" || rest != certificates_sha256) return std::nullopt; continue;
      case 3: {
        auto v = number(rest);
        if (word != "version" || !v) return std::nullopt;
        s.version = static_cast<std::uint64_t>(*v);
        continue;
      }
      case 4:
      case 5: {
        auto v = number(rest);
        if (word != (line_no == 5 ? "issued" : "expires") || !v) return std::nullopt;
        (line_no == 5 ? s.issued : s.expires) = pki::TimePoint(std::chrono::seconds(*v));
        continue;
      }
      default: break;
    }
    if (word == "deny-identity") {
      s.denied_identities.emplace_back(rest);
      continue;
    }
    std::size_t split = rest.find(' ');
    if (split == std::string_view::npos) return std::nullopt;
    GovernanceKey key{std::string(rest.substr(0, split)), std::string(rest.substr(split + 1))};
    if (word == "deny-key") s.denied_keys.push_back(std::move(key));
    else if (word == "approve-key") s.approved_keys.push_back(std::move(key));
    else return std::nullopt;
  }
  // The look-ups search sorted lists: an index that is not sorted is not ours.
  if (line_no < 6 || !std::is_sorted(s.denied_identities.begin(), s.denied_identities.end()) ||
      !std::is_sorted(s.denied_keys.begin(), s.denied_keys.end()) ||
      !std::is_sorted(s.approved_keys.begin(), s.approved_keys.end())) {
    return std::nullopt;
  }
  return s;
}

}  // namespace

std::string GovernanceIndexPath(const SignerConfig& config) { return config.governance_file + ".index"; }

GovernanceDocument LoadGovernanceDecisions(const SignerConfig& config) {
  std::vector<uid_t> owners = ListOwners(config);
  // The index holds the decisions; the document is only hashed, to bind the index to it.
  std::string document_sha256 = HashTrustedFile(config.governance_file, owners, "governance document");
  std::string certs = ReadTrustedFile(config.governance_cert, owners, "governance certificate");
  std::string index_path = GovernanceIndexPath(config);
  if (::access(index_path.c_str(), F_OK) == 0) {
    std::string index = ReadTrustedFile(index_path, owners, "governance index");
    if (std::optional<GovernanceState> state = DecodeGovernanceIndex(index, document_sha256, Sha256Hex(certs))) {
      GovernanceDocument doc;
      doc.state = std::move(*state);
      doc.sha256 = std::move(document_sha256);
      return doc;
    }
  }
  return LoadInstalledGovernance(config);
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
  // The decisions of the document just verified, for issuing requests (#30): bound to its bytes
  // and to governance_cert's, so a document or certificate changed by other means is verified in
  // full again.
  std::string certs_pem = ReadTrustedFile(config.governance_cert, ListOwners(config), "governance certificate");
  base::AtomicFileWriter(GovernanceIndexPath(config), 0644)
      .Write(EncodeGovernanceIndex(doc.state, Sha256Hex(pem), Sha256Hex(certs_pem)));
  return doc;
}

}  // namespace signer
