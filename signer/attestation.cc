// SPDX-License-Identifier: Apache-2.0
#include "signer/attestation.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "base/duration.h"
#include "base/failure.h"
#include "base/fd.h"
#include "base/files.h"
#include "base/name_pattern.h"
#include "signer/approval.h"
#include "pki/base64.h"
#include "pki/key.h"

namespace signer {
namespace {

using base::ExitCode;
using base::Failure;
using nlohmann::json;

constexpr std::size_t kMaxStoreFile = 64 * 1024;

[[noreturn]] void Unsafe(const std::string& message) {
  throw Failure(ExitCode::kConfig, "enrollment-unsafe", message);
}

[[noreturn]] void BadBody(const std::string& message) {
  throw Failure(ExitCode::kDataErr, "attestation-invalid", message);
}

// The enrollment directory: writable by its owner only, and that owner is the signer account
// (or root) when the signer reads it; root (etcd-signerctl) reads a signer account's directory.
// Returns the owner, whom every file in it must belong to.
uid_t CheckDirectory(const std::string& dir) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    throw Failure(ExitCode::kUnavailable, "enrollment-unavailable",
                  "the enrollment directory " + dir + " is missing (mkdir -m 0700 it, owned by the signer account)");
  }
  if (!S_ISDIR(st.st_mode)) Unsafe("the enrollment directory " + dir + " is not a directory");
  if ((::geteuid() != 0 && st.st_uid != ::geteuid() && st.st_uid != 0) || (st.st_mode & 022) != 0) {
    Unsafe("the enrollment directory " + dir + " can be changed by an account other than the signer's or root");
  }
  return st.st_uid;
}

// A master's name as a file name of the store: nothing but what name_pattern's default admits.
bool StorableName(const std::string& identity) {
  return !identity.empty() && identity.size() <= 64 &&
         identity.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") == std::string::npos;
}

std::string PathFor(const SignerConfig& c, const std::string& identity, const char* suffix) {
  if (!StorableName(identity)) {
    throw Failure(ExitCode::kNoPerm, "name-policy",
                  "'" + identity.substr(0, 64) + "' cannot have a TPM enrollment (lower-case letters, digits and '-')");
  }
  return c.enrollment_dir + "/" + identity + suffix;
}

// A file of the store, read through the descriptor that was checked; nothing when missing.
std::optional<std::string> ReadStoreFile(const std::string& path, uid_t owner) {
  base::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::nullopt;
    Unsafe("cannot open " + path + " (" + std::string(std::strerror(errno)) + "): a link or unreadable");
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || (st.st_uid != owner && st.st_uid != ::geteuid()) || (st.st_mode & 077) != 0 ||
      st.st_nlink != 1 || st.st_size > static_cast<off_t>(kMaxStoreFile)) {
    Unsafe(path + " is not a private (0600) regular file of the signer account");
  }
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) Unsafe("cannot read " + path);
    got += static_cast<std::size_t>(n);
  }
  return text;
}

// A JSON object of exactly `keys`, each a string (the request bodies and the store's files).
json StrictObject(const std::string& text, std::initializer_list<const char*> keys, const std::string& what) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception&) {
    BadBody(what + " is not JSON");
  }
  if (!j.is_object() || j.size() != keys.size()) BadBody(what + " must be an object with exactly its fields");
  for (const char* k : keys) {
    if (!j.contains(k) || !j[k].is_string()) BadBody(what + " lacks the string field \"" + std::string(k) + "\"");
  }
  return j;
}

pki::Bytes Base64Field(const json& j, const char* key, const std::string& what) {
  auto bytes = pki::DecodeBase64(j[key].get<std::string>());
  if (!bytes) BadBody(what + ": \"" + key + "\" is not base64");
  return *bytes;
}

std::string B64(const pki::Bytes& b) { return pki::EncodeBase64(b.data(), b.size()); }

std::string Sha256Hex(const pki::Bytes& b) { return pki::Sha256Hex(b); }

// The identity a request may enroll: the bound one, and a master's name (a file name, too).
void CheckIdentity(const SignerConfig& c, const std::string& identity) {
  if (!c.identity.empty() && identity != c.identity) {
    throw Failure(ExitCode::kNoPerm, "identity-mismatch",
                  "this SSH key may enroll a TPM for " + c.identity + " only, not " + identity.substr(0, 64));
  }
  if (!StorableName(identity) || !base::CompiledNamePattern(c.name_pattern).Matches(identity)) {
    throw Failure(ExitCode::kNoPerm, "name-policy",
                  "'" + identity.substr(0, 64) + "' is not a master's name (name_pattern): only masters enroll TPMs");
  }
}

json EnrollmentJson(const Enrollment& e) {
  json j = json::object();
  j["identity"] = e.identity;
  j["ek_sha256"] = e.ek_sha256;
  j["ek_issuer"] = e.ek_issuer;
  j["ek_serial"] = e.ek_serial;
  j["ak_public"] = B64(e.ak_public);
  j["ak_sha256"] = e.ak_sha256;
  j["time"] = e.time;
  j["approved"] = e.approved;
  return j;
}

Enrollment EnrollmentFrom(const json& j, const std::string& path) {
  Enrollment e;
  try {
    e.identity = j.at("identity").get<std::string>();
    e.ek_sha256 = j.at("ek_sha256").get<std::string>();
    e.ek_issuer = j.at("ek_issuer").get<std::string>();
    e.ek_serial = j.at("ek_serial").get<std::string>();
    e.ak_sha256 = j.at("ak_sha256").get<std::string>();
    e.time = j.at("time").get<std::string>();
    e.approved = j.at("approved").get<bool>();
    auto ak = pki::DecodeBase64(j.at("ak_public").get<std::string>());
    if (!ak || Sha256Hex(*ak) != e.ak_sha256) throw json::other_error::create(501, "ak", nullptr);
    e.ak_public = std::move(*ak);
  } catch (const json::exception&) {
    throw Failure(ExitCode::kConfig, "enrollment-unsafe", path + " is not an enrollment record");
  }
  return e;
}

std::string Rfc3339(pki::TimePoint t) { return base::FormatRfc3339(t); }

}  // namespace

std::string AttestationModeName(AttestationMode mode) {
  switch (mode) {
    case AttestationMode::kOff: return "off";
    case AttestationMode::kOptional: return "optional";
    case AttestationMode::kRequired: return "required";
  }
  return "off";
}

std::optional<Enrollment> FindEnrollment(const SignerConfig& c, const std::string& identity) {
  uid_t owner = CheckDirectory(c.enrollment_dir);
  std::string path = PathFor(c, identity, ".json");
  std::optional<std::string> text = ReadStoreFile(path, owner);
  if (!text) return std::nullopt;
  json j;
  try {
    j = json::parse(*text);
  } catch (const json::exception&) {
    throw Failure(ExitCode::kConfig, "enrollment-unsafe", path + " is not JSON");
  }
  Enrollment e = EnrollmentFrom(j, path);
  if (e.identity != identity) throw Failure(ExitCode::kConfig, "enrollment-unsafe", path + " names another identity");
  return e;
}

std::vector<Enrollment> ListEnrollments(const SignerConfig& c) {
  CheckDirectory(c.enrollment_dir);
  std::vector<Enrollment> out;
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(c.enrollment_dir.c_str()), ::closedir);
  if (!dir) return out;
  std::vector<std::string> names;
  while (dirent* d = ::readdir(dir.get())) {
    std::string name = d->d_name;
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0) names.push_back(name.substr(0, name.size() - 5));
  }
  std::sort(names.begin(), names.end());
  for (const std::string& n : names) {
    if (auto e = FindEnrollment(c, n)) out.push_back(std::move(*e));
  }
  return out;
}

bool RemoveEnrollment(const SignerConfig& c, const std::string& identity) {
  CheckDirectory(c.enrollment_dir);
  if (!StorableName(identity)) return false;
  ::unlink(PathFor(c, identity, ".challenge").c_str());
  return ::unlink(PathFor(c, identity, ".json").c_str()) == 0;
}

std::string BeginEnrollment(const SignerConfig& c, const std::string& body, pki::TimePoint now, Enrollment* facts) {
  json j = StrictObject(body, {"identity", "ek_certificate", "ak_public"}, "the enrollment request");
  facts->identity = j["identity"].get<std::string>();
  CheckIdentity(c, facts->identity);
  pki::Bytes ek_der = Base64Field(j, "ek_certificate", "the enrollment request");
  facts->ak_public = Base64Field(j, "ak_public", "the enrollment request");
  std::vector<pki::X509Ptr> roots = pki::ReadCertificateBundleFile(c.ek_roots);
  pki::X509Ptr ek = pki::VerifyEkCertificate(ek_der, roots, now);
  EVP_PKEY* ek_key = X509_get0_pubkey(ek.get());
  facts->ek_sha256 = pki::CanonicalizeKey(ek_key).sha256;
  pki::BioPtr issuer(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(issuer.get(), X509_get_issuer_name(ek.get()), 0, XN_FLAG_RFC2253);
  char* issuer_text = nullptr;
  long issuer_len = BIO_get_mem_data(issuer.get(), &issuer_text);
  facts->ek_issuer.assign(issuer_text, static_cast<std::size_t>(issuer_len));
  pki::BignumPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(ek.get()), nullptr));
  char* hex = serial ? BN_bn2hex(serial.get()) : nullptr;
  facts->ek_serial = hex != nullptr ? hex : "";
  OPENSSL_free(hex);
  pki::CheckAttestationKey(facts->ak_public);
  facts->ak_sha256 = Sha256Hex(facts->ak_public);
  facts->time = Rfc3339(now);
  // One TPM per identity, once: another TPM for an enrolled name is an operator's decision.
  CheckDirectory(c.enrollment_dir);
  if (std::optional<Enrollment> old = FindEnrollment(c, facts->identity); old && old->ek_sha256 != facts->ek_sha256) {
    throw Failure(ExitCode::kNoPerm, "enrollment-exists",
                  facts->identity + " is enrolled with another TPM (EK SHA-256 " + old->ek_sha256 +
                      "); an operator removes that enrollment first: etcd-signerctl enrollment remove " + facts->identity);
  }
  pki::Bytes secret(32);
  if (RAND_bytes(secret.data(), static_cast<int>(secret.size())) != 1) {
    throw Failure(ExitCode::kSoftware, "internal", "no random bytes");
  }
  pki::Credential cred = pki::MakeCredential(ek_key, pki::TpmObjectName(facts->ak_public), secret);
  json challenge = EnrollmentJson(*facts);
  challenge["secret_sha256"] = Sha256Hex(secret);
  challenge["expires"] =
      std::chrono::duration_cast<std::chrono::seconds>((now + kChallengeLifetime).time_since_epoch()).count();
  OPENSSL_cleanse(secret.data(), secret.size());
  base::AtomicFileWriter(PathFor(c, facts->identity, ".challenge"), 0600).Write(challenge.dump() + "\n");
  json answer = json::object();
  answer["credential_blob"] = B64(cred.id_object);
  answer["encrypted_secret"] = B64(cred.encrypted_secret);
  return answer.dump() + "\n";
}

Enrollment FinishEnrollment(const SignerConfig& c, const std::string& body, pki::TimePoint now, Enrollment* facts) {
  json j = StrictObject(body, {"identity", "secret"}, "the activation");
  std::string identity = j["identity"].get<std::string>();
  facts->identity = identity;
  CheckIdentity(c, identity);
  pki::Bytes secret = Base64Field(j, "secret", "the activation");
  uid_t owner = CheckDirectory(c.enrollment_dir);
  std::string path = PathFor(c, identity, ".challenge");
  std::optional<std::string> text = ReadStoreFile(path, owner);
  // One answer per challenge, right or wrong: a second guess needs a new challenge (and a new record).
  ::unlink(path.c_str());
  auto none = [&](const std::string& why) {
    return Failure(ExitCode::kNoPerm, "no-challenge", "no enrollment of " + identity + " is waiting for its answer (" +
                                                          why + "): start again with enroll");
  };
  if (!text) throw none("none was started, or it was answered already");
  json ch;
  try {
    ch = json::parse(*text);
  } catch (const json::exception&) {
    throw Failure(ExitCode::kConfig, "enrollment-unsafe", path + " is not JSON");
  }
  Enrollment e = EnrollmentFrom(ch, path);
  *facts = e;
  std::int64_t expires = ch.value("expires", std::int64_t{0});
  if (std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count() > expires) {
    throw none("its challenge expired");
  }
  std::string got = Sha256Hex(secret);
  std::string want = ch.value("secret_sha256", std::string());
  if (got.size() != want.size() || CRYPTO_memcmp(got.data(), want.data(), got.size()) != 0) {
    throw Failure(ExitCode::kNoPerm, "credential-mismatch",
                  "the answer is not the secret sealed to the EK and AK that " + identity +
                      " enrolled: another TPM answered, or the AK is not in the TPM that holds that EK");
  }
  e.time = Rfc3339(now);
  // A new TPM waits for an operator when approval is on; the same TPM again keeps its standing.
  std::optional<Enrollment> old = FindEnrollment(c, identity);
  e.approved = c.approval != ApprovalMode::kNewKeys || (old && old->ek_sha256 == e.ek_sha256 && old->approved);
  *facts = e;
  base::AtomicFileWriter(PathFor(c, identity, ".json"), 0600).Write(EnrollmentJson(e).dump() + "\n");
  return e;
}

AttestedBody SplitAttestedBody(const std::string& body, bool attested) {
  if (!attested) return {body, std::nullopt};
  std::size_t dot = body.find('.');
  if (dot == std::string::npos) BadBody("--attested, but the body holds no '.' line and evidence after the CSR");
  auto evidence = pki::DecodeBase64(std::string_view(body).substr(dot + 1));
  if (!evidence) BadBody("the evidence after the CSR is not base64");
  return {body.substr(0, dot), std::move(*evidence)};
}

Enrollment ApproveEnrollment(const SignerConfig& c, const std::string& identity, const std::string& ek_sha256) {
  uid_t owner = CheckDirectory(c.enrollment_dir);
  std::optional<Enrollment> e = FindEnrollment(c, identity);
  if (!e) throw Failure(ExitCode::kNoInput, "not-enrolled", identity + " has no enrollment on this signer host");
  if (!ek_sha256.empty() && ek_sha256 != e->ek_sha256) {
    throw Failure(ExitCode::kDataErr, "ek-mismatch",
                  identity + "'s enrolled TPM has EK SHA-256 " + e->ek_sha256 + ", not " + ek_sha256);
  }
  e->approved = true;
  base::AtomicFileWriter writer(PathFor(c, identity, ".json"), 0600);
  writer.set_owner(owner, static_cast<unsigned>(-1));
  writer.Write(EnrollmentJson(*e).dump() + "\n");
  return *e;
}

std::string ApproveEnrollmentCommand(const SignerConfig& c, const std::string& identity, const std::string& ek_sha256) {
  std::string command = "etcd-signerctl";
  if (!c.config_file.empty() && c.config_file != kDefaultConfigFile) command += " --config " + c.config_file;
  return command + " enrollment approve " + identity + " " + ek_sha256;
}

bool CheckAttestation(const SignerConfig& c, const std::string& identity, const std::optional<pki::Bytes>& evidence,
                      const pki::Bytes& csr_der, const std::string& csr_key_sha256) {
  if (c.attestation == AttestationMode::kOff) return false;
  if (!evidence) {
    if (c.attestation == AttestationMode::kRequired) {
      throw Failure(ExitCode::kNoPerm, "attestation-required",
                    "this signer issues etcd-client certificates only for keys attested by an enrolled TPM "
                    "(attestation = \"required\"); the master needs tpm_key and attestation = true");
    }
    return false;
  }
  std::optional<Enrollment> enrolled = FindEnrollment(c, identity);
  if (!enrolled) {
    throw Failure(ExitCode::kNoPerm, "ak-not-enrolled",
                  "no TPM is enrolled for " + identity + " on this signer (the requester enrolls it: enroll, activate)");
  }
  if (!enrolled->approved) {
    throw Failure(ExitCode::kTempFail, "enrollment-pending",
                  "the TPM enrolled for " + identity + " (EK issuer " + enrolled->ek_issuer + ", serial " +
                      enrolled->ek_serial + ") is not approved yet; an operator approves it on the signer host with: " +
                      ApproveEnrollmentCommand(c, identity, enrolled->ek_sha256));
  }
  pki::VerifyEvidence(pki::DecodeEvidence(*evidence), enrolled->ak_public, csr_der, csr_key_sha256);
  return true;
}

}  // namespace signer
