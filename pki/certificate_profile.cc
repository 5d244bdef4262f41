// SPDX-License-Identifier: Apache-2.0
#include "pki/certificate_profile.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>
#include <sys/random.h>

#include <cerrno>
#include <iterator>
#include <optional>
#include <vector>
#include <ctime>

#include "base/text.h"
#include "pki/key.h"

namespace pki {
namespace {

[[noreturn]] void BuildFailed(const std::string& what) {
  ThrowOpenSsl(base::ExitCode::kSoftware, "internal", "cannot build certificate: " + what);
}

void SetSerial(X509* cert, const Serial& serial) {
  BignumPtr bn(BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr));
  if (!bn) BuildFailed("serial");
  Asn1IntegerPtr integer(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!integer || X509_set_serialNumber(cert, integer.get()) != 1) BuildFailed("serial");
}

void SetValidity(X509* cert, TimePoint not_before, TimePoint not_after) {
  // ASN1_TIME_set picks UTCTime before 2050 and GeneralizedTime after, as RFC 5280 requires.
  Asn1TimePtr nb(ASN1_TIME_set(nullptr, std::chrono::system_clock::to_time_t(not_before)));
  Asn1TimePtr na(ASN1_TIME_set(nullptr, std::chrono::system_clock::to_time_t(not_after)));
  if (!nb || !na || X509_set1_notBefore(cert, nb.get()) != 1 ||
      X509_set1_notAfter(cert, na.get()) != 1) {
    BuildFailed("validity");
  }
}

void AddExtension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  X509ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    BuildFailed(std::string("extension ") + OBJ_nid2sn(nid) + "=" + value);
  }
}

// IP text in its one printed form (inet_ntop of its bytes), or "" when it is not an address.
std::string CanonicalIp(std::string_view text) {
  std::string s(text);
  unsigned char bytes[16];
  char out[INET6_ADDRSTRLEN] = {0};
  if (inet_pton(AF_INET, s.c_str(), bytes) == 1) return inet_ntop(AF_INET, bytes, out, sizeof out);
  if (inet_pton(AF_INET6, s.c_str(), bytes) == 1) return inet_ntop(AF_INET6, bytes, out, sizeof out);
  return "";
}

}  // namespace

Serial RandomSerial() {
  Serial serial{};
  std::size_t filled = 0;
  while (filled < serial.size()) {
    ssize_t n = getrandom(serial.data() + filled, serial.size() - filled, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw base::Failure(base::ExitCode::kSoftware, "internal", "getrandom failed");
    }
    filled += static_cast<std::size_t>(n);
  }
  serial[0] &= 0x7f;
  serial[0] |= 0x01 << 6;  // keep 16 significant bytes: never zero, never shortened
  return serial;
}

const char* ProfileName(LeafProfile profile) {
  switch (profile) {
    case LeafProfile::kServer: return "etcd-server";
    case LeafProfile::kPeer: return "etcd-peer";
    case LeafProfile::kClient: break;
  }
  return "etcd-client";
}

std::optional<LeafProfile> ParseProfile(std::string_view name) {
  for (LeafProfile p : {LeafProfile::kClient, LeafProfile::kServer, LeafProfile::kPeer}) {
    if (name == ProfileName(p)) return p;
  }
  return std::nullopt;
}

bool IsMemberProfile(LeafProfile profile) { return profile != LeafProfile::kClient; }

int ProfilePurpose(LeafProfile profile) {
  return IsMemberProfile(profile) ? X509_PURPOSE_SSL_SERVER : X509_PURPOSE_SSL_CLIENT;
}

bool IsDnsName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  std::size_t start = 0;
  for (;;) {
    std::size_t end = name.find('.', start);
    std::string_view label = name.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
    }
    if (end == std::string_view::npos) return true;
    start = end + 1;
  }
}

bool IsIpAddress(std::string_view text) { return text.size() < INET6_ADDRSTRLEN && !CanonicalIp(text).empty(); }

std::optional<SubjectAltNames> CarriedSubjectAltNames(X509* cert) {
  int critical = 0;
  GENERAL_NAMES* raw = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, &critical, nullptr));
  if (raw == nullptr) return std::nullopt;
  std::optional<SubjectAltNames> names(std::in_place);
  for (int i = 0; names && i < sk_GENERAL_NAME_num(raw); ++i) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(raw, i);
    if (g->type == GEN_DNS) {
      const ASN1_IA5STRING* s = g->d.dNSName;
      names->dns.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                              static_cast<std::size_t>(ASN1_STRING_length(s)));
    } else if (g->type == GEN_IPADD && (ASN1_STRING_length(g->d.iPAddress) == 4 || ASN1_STRING_length(g->d.iPAddress) == 16)) {
      char out[INET6_ADDRSTRLEN] = {0};
      int family = ASN1_STRING_length(g->d.iPAddress) == 4 ? AF_INET : AF_INET6;
      inet_ntop(family, ASN1_STRING_get0_data(g->d.iPAddress), out, sizeof out);
      names->ip.emplace_back(out);
    } else {
      names.reset();
    }
  }
  GENERAL_NAMES_free(raw);
  return names;
}

X509NamePtr ParseSubject(const std::string& subject) {
  X509NamePtr name(X509_NAME_new());
  std::string text = subject;
  char separator = ',';
  if (!text.empty() && text[0] == '/') {
    separator = '/';
    text.erase(0, 1);
  }
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find(separator, start);
    if (end == std::string::npos) end = text.size();
    std::string part = text.substr(start, end - start);
    while (!part.empty() && part.front() == ' ') part.erase(0, 1);
    std::size_t eq = part.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == part.size()) {
      throw base::Failure(base::ExitCode::kUsage, "bad-subject",
                          "subject '" + subject + "' must look like CN=etcd-ca,O=Example");
    }
    std::string key = part.substr(0, eq);
    std::string value = part.substr(eq + 1);
    if (X509_NAME_add_entry_by_txt(name.get(), key.c_str(), MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
                                   0) != 1) {
      ERR_clear_error();
      throw base::Failure(base::ExitCode::kUsage, "bad-subject",
                          "unknown attribute '" + key + "' in subject '" + subject + "'");
    }
    start = end + 1;
  }
  return name;
}

namespace {

// The leaf profiles' extensions, in the order the signer adds them; subjectAltName only for members.
struct ProfileExtension {
  int nid;
  bool critical;
};
constexpr ProfileExtension kLeafExtensions[] = {
    {NID_basic_constraints, true},
    {NID_key_usage, true},
    {NID_ext_key_usage, false},
    {NID_subject_key_identifier, false},
    {NID_authority_key_identifier, false},
    {NID_subject_alt_name, false},  // the subject is not empty (RFC 5280 §4.2.1.6)
};

bool IsRsa(const CanonicalKey& key) { return key.kind == KeyDescription::Kind::kRsa; }

bool Carries(LeafProfile profile, int nid) { return nid != NID_subject_alt_name || IsMemberProfile(profile); }

const char* LeafKeyUsage(const CanonicalKey& key) {
  return IsRsa(key) ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature";
}

// The profile's extended key usages, in the order written.
std::vector<int> ProfileKeyPurposes(LeafProfile profile) {
  if (IsMemberProfile(profile)) return {NID_server_auth, NID_client_auth};
  return {NID_client_auth};
}

std::string KeyPurposesText(LeafProfile profile) {
  std::string text;
  for (int nid : ProfileKeyPurposes(profile)) text += (text.empty() ? "" : ",") + std::string(OBJ_nid2sn(nid));
  return text;
}

std::string SubjectAltNameValue(const SubjectAltNames& names) {
  std::string value;
  for (const std::string& d : names.dns) value += (value.empty() ? "DNS:" : ",DNS:") + d;
  for (const std::string& i : names.ip) value += (value.empty() ? "IP:" : ",IP:") + i;
  return value;
}

std::string ExtensionValue(int nid, const CanonicalKey& key, const LeafCertificateFields& fields) {
  switch (nid) {
    case NID_basic_constraints: return "critical,CA:FALSE";
    case NID_key_usage: return LeafKeyUsage(key);
    case NID_ext_key_usage: return KeyPurposesText(fields.profile);
    case NID_subject_key_identifier: return "hash";
    case NID_subject_alt_name: return SubjectAltNameValue(fields.names);
    default: return "keyid:always";
  }
}

std::string NamesText(const SubjectAltNames& names) {
  std::string value = SubjectAltNameValue(names);
  return value.empty() ? "none" : value;
}

std::string SubjectAltNameDifference(X509* cert, const LeafProfileExpectations& want) {
  std::optional<SubjectAltNames> carried = CarriedSubjectAltNames(cert);
  if (!carried) return "subjectAltName holds something other than DNS names and IP addresses";
  if (want.names) {
    SubjectAltNames expected = *want.names;
    for (std::string& ip : expected.ip) ip = CanonicalIp(ip);
    if (*carried != expected) {
      return "subjectAltName is " + base::Printable(NamesText(*carried), 200) + ", not " + NamesText(expected);
    }
    return "";
  }
  if (carried->empty()) return "subjectAltName is empty";
  for (const std::string& d : carried->dns) {
    if (!IsDnsName(d)) return "subjectAltName carries " + base::Printable(d, 80) + ", which is not a DNS name";
  }
  return "";
}

// SHA-1 of the subjectPublicKey BIT STRING (RFC 5280 §4.2.1.2 method 1), as the builder's "hash".
std::vector<unsigned char> KeyIdOf(X509* cert) {
  const unsigned char* bits = nullptr;
  int len = 0;
  X509_PUBKEY* pub = X509_get_X509_PUBKEY(cert);
  if (pub == nullptr || X509_PUBKEY_get0_param(nullptr, &bits, &len, nullptr, pub) != 1) return {};
  std::vector<unsigned char> id(20);
  unsigned int out = 0;
  if (EVP_Digest(bits, static_cast<std::size_t>(len), id.data(), &out, EVP_sha1(), nullptr) != 1) return {};
  id.resize(out);
  return id;
}

std::vector<unsigned char> Bytes(const ASN1_OCTET_STRING* s) {
  if (s == nullptr) return {};
  const unsigned char* p = ASN1_STRING_get0_data(s);
  return std::vector<unsigned char>(p, p + ASN1_STRING_length(s));
}

std::string SubjectDifference(X509* cert, const std::string& common_name) {
  X509_NAME* subject = X509_get_subject_name(cert);
  int entries = X509_NAME_entry_count(subject);
  if (entries != 1) return "the subject has " + std::to_string(entries) + " attributes, not exactly one CN";
  X509_NAME_ENTRY* entry = X509_NAME_get_entry(subject, 0);
  if (OBJ_obj2nid(X509_NAME_ENTRY_get_object(entry)) != NID_commonName) return "the subject's attribute is not a CN";
  ASN1_STRING* value = X509_NAME_ENTRY_get_data(entry);
  if (ASN1_STRING_type(value) != V_ASN1_UTF8STRING) return "the CN is not a UTF8String";
  std::string cn(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                 static_cast<std::size_t>(ASN1_STRING_length(value)));
  if (cn != common_name) return "the certificate is for '" + base::Printable(cn, 64) + "', not '" + common_name + "'";
  return "";
}

// The key the caller computed, or derived once here into `storage`.
const CanonicalKey& CanonicalKeyOf(const CanonicalKey* given, EVP_PKEY* key, std::optional<CanonicalKey>& storage) {
  if (given != nullptr) return *given;
  if (key == nullptr) throw base::Failure(base::ExitCode::kSoftware, "internal", "no subject key given");
  return storage.emplace(CanonicalizeKey(key));
}

// The SubjectPublicKeyInfo exactly as the certificate carries it (its fields, not a decoded key).
std::vector<unsigned char> CarriedKeyDer(X509* cert) {
  X509_PUBKEY* pub = X509_get_X509_PUBKEY(cert);
  int len = pub != nullptr ? i2d_X509_PUBKEY(pub, nullptr) : 0;
  if (len <= 0) return {};
  std::vector<unsigned char> der(static_cast<std::size_t>(len));
  unsigned char* cursor = der.data();
  i2d_X509_PUBKEY(pub, &cursor);
  return der;
}

// Only on the failure path: is the carried key ours in another encoding, or another key?
std::string KeyDifference(X509* cert, const CanonicalKey& ours) {
  EVP_PKEY* carried = X509_get0_pubkey(cert);
  const unsigned char* cursor = ours.spki_der.data();
  EvpPkeyPtr ours_key(d2i_PUBKEY(nullptr, &cursor, static_cast<long>(ours.spki_der.size())));
  ERR_clear_error();
  if (carried != nullptr && ours_key && SamePublicKey(carried, ours_key.get())) {
    return "the public key is not canonically encoded (RFC 5480)";
  }
  return "the certificate is not for our key";
}

std::string ExtensionsDifference(X509* cert, const LeafProfileExpectations& want, const CanonicalKey& key) {
  int count = X509_get_ext_count(cert);
  bool seen[std::size(kLeafExtensions)] = {};
  for (int i = 0; i < count; ++i) {
    X509_EXTENSION* ext = X509_get_ext(cert, i);
    int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
    std::size_t k = 0;
    while (k < std::size(kLeafExtensions) && kLeafExtensions[k].nid != nid) ++k;
    if (k == std::size(kLeafExtensions) || !Carries(want.profile, nid)) {
      char oid[80] = {0};
      OBJ_obj2txt(oid, sizeof oid, X509_EXTENSION_get_object(ext), 1);
      std::string name = nid != NID_undef ? std::string(OBJ_nid2sn(nid)) + " (" + oid + ")" : std::string(oid);
      return "the certificate carries the extension " + name + ", which the profile does not set";
    }
    if (seen[k]) return std::string("the extension ") + OBJ_nid2sn(nid) + " appears twice";
    seen[k] = true;
    if ((X509_EXTENSION_get_critical(ext) != 0) != kLeafExtensions[k].critical) {
      return std::string("the extension ") + OBJ_nid2sn(nid) + (kLeafExtensions[k].critical ? " is not" : " is") +
             " critical";
    }
  }
  for (std::size_t k = 0; k < std::size(kLeafExtensions); ++k) {
    if (!seen[k] && Carries(want.profile, kLeafExtensions[k].nid)) {
      return std::string("the extension ") + OBJ_nid2sn(kLeafExtensions[k].nid) + " is missing";
    }
  }
  BasicConstraintsPtr bc(static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(cert, NID_basic_constraints, nullptr, nullptr)));
  if (!bc || bc->ca != 0 || bc->pathlen != nullptr) return "basicConstraints is not CA:FALSE";
  AsnBitStringPtr ku(static_cast<ASN1_BIT_STRING*>(X509_get_ext_d2i(cert, NID_key_usage, nullptr, nullptr)));
  if (!ku) return "keyUsage does not decode";
  bool rsa = IsRsa(key);
  for (int bit = 0; bit < 16; ++bit) {
    bool want_bit = bit == 0 || (bit == 2 && rsa);  // digitalSignature (0), keyEncipherment (2)
    if ((ASN1_BIT_STRING_get_bit(ku.get(), bit) != 0) != want_bit) {
      return std::string("keyUsage is not exactly digitalSignature") + (rsa ? "+keyEncipherment" : "");
    }
  }
  if (ASN1_STRING_length(ku.get()) > 2) return "keyUsage carries bits the profile does not set";
  ExtendedKeyUsagePtr eku(static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(cert, NID_ext_key_usage, nullptr, nullptr)));
  std::vector<int> purposes;
  for (int i = 0; eku && i < sk_ASN1_OBJECT_num(eku.get()); ++i) purposes.push_back(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku.get(), i)));
  if (!eku || purposes != ProfileKeyPurposes(want.profile)) {
    std::string text;
    for (int nid : ProfileKeyPurposes(want.profile)) text += (text.empty() ? "" : ", ") + std::string(OBJ_nid2sn(nid));
    return "extendedKeyUsage is not exactly " + text;
  }
  if (Bytes(X509_get0_subject_key_id(cert)) != KeyIdOf(cert)) return "subjectKeyIdentifier is not the key's SHA-1";
  AUTHORITY_KEYID* aki = static_cast<AUTHORITY_KEYID*>(X509_get_ext_d2i(cert, NID_authority_key_identifier, nullptr, nullptr));
  bool aki_ok = aki != nullptr && aki->keyid != nullptr && aki->issuer == nullptr && aki->serial == nullptr &&
                (want.issuer == nullptr || Bytes(aki->keyid) == Bytes(X509_get0_subject_key_id(want.issuer)));
  AUTHORITY_KEYID_free(aki);
  if (!aki_ok) return "authorityKeyIdentifier is not the issuer's key identifier alone";
  if (IsMemberProfile(want.profile)) return SubjectAltNameDifference(cert, want);
  return "";
}

}  // namespace

X509Ptr BuildLeafCertificate(const LeafCertificateFields& fields, X509* ca_cert) {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) BuildFailed("version");
  SetSerial(cert.get(), fields.serial);
  X509NamePtr subject(X509_NAME_new());
  // The key as its numbers, canonically encoded: never the CSR's bytes (a compressed point or
  // explicit curve parameters break Go's TLS stack, etcd's). Its fields are written as they are:
  // X509_set_pubkey would run OpenSSL 3's encoder and then its decoder on them (#30).
  std::optional<CanonicalKey> derived;
  const CanonicalKey& key = CanonicalKeyOf(fields.canonical_key, fields.subject_key, derived);
  if (X509_NAME_add_entry_by_NID(subject.get(), NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(fields.common_name.c_str()),
                                 -1, -1, 0) != 1 ||
      X509_set_subject_name(cert.get(), subject.get()) != 1 ||
      X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert)) != 1) {
    BuildFailed("names");
  }
  SetCanonicalKey(X509_get_X509_PUBKEY(cert.get()), key);
  SetValidity(cert.get(), fields.not_before, fields.not_after);

  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, ca_cert, cert.get(), nullptr, nullptr, 0);
  if (IsMemberProfile(fields.profile) && fields.names.empty()) BuildFailed("a member certificate without names");
  for (const ProfileExtension& e : kLeafExtensions) {
    if (!Carries(fields.profile, e.nid)) continue;
    std::string value = ExtensionValue(e.nid, key, fields);
    AddExtension(cert.get(), &ctx, e.nid, value.c_str());
  }
  return cert;
}

std::string LeafProfileDifference(X509* cert, const LeafProfileExpectations& want) {
  if (X509_get_version(cert) != X509_VERSION_3) return "the certificate is not version 3";
  BignumPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (!serial || BN_is_negative(serial.get()) || BN_is_zero(serial.get()) || BN_num_bytes(serial.get()) > 20) {
    return "the serial number is not a positive integer of at most 20 octets";
  }
  const ASN1_BIT_STRING* issuer_uid = nullptr;
  const ASN1_BIT_STRING* subject_uid = nullptr;
  X509_get0_uids(cert, &issuer_uid, &subject_uid);
  if (issuer_uid != nullptr || subject_uid != nullptr) return "the certificate carries unique identifiers";
  const X509_ALGOR* outer = nullptr;
  X509_get0_signature(nullptr, &outer, cert);
  const X509_ALGOR* inner = X509_get0_tbs_sigalg(cert);
  if (outer == nullptr || inner == nullptr || X509_ALGOR_cmp(outer, inner) != 0) {
    return "the signature algorithm inside the certificate differs from the one outside";
  }
  int sig_nid = X509_get_signature_nid(cert);
  if (sig_nid != NID_ecdsa_with_SHA256 && sig_nid != NID_sha256WithRSAEncryption) {
    return std::string("the signature algorithm is ") + OBJ_nid2sn(sig_nid) + ", not ECDSA or RSA with SHA-256";
  }
  if (std::string diff = SubjectDifference(cert, want.common_name); !diff.empty()) return diff;
  if (want.canonical_key == nullptr && want.public_key == nullptr) return "the certificate is not for our key";
  std::optional<CanonicalKey> derived;
  const CanonicalKey& key = CanonicalKeyOf(want.canonical_key, want.public_key, derived);
  // Our key, canonically encoded: one byte comparison with the canonical form.
  if (CarriedKeyDer(cert) != key.spki_der) return KeyDifference(cert, key);
  TimePoint not_before = NotBefore(cert);
  TimePoint not_after = NotAfter(cert);
  if (not_after <= not_before) return "notAfter is not after notBefore";
  if (want.issuer != nullptr &&
      (not_before < NotBefore(want.issuer) || not_after > NotAfter(want.issuer))) {
    return "the validity reaches outside the issuing CA's";
  }
  return ExtensionsDifference(cert, want, key);
}

X509Ptr BuildCaCertificate(const CaCertificateFields& fields) { return BuildRootCaCertificate(fields, 0); }

X509Ptr BuildRootCaCertificate(const CaCertificateFields& fields, int path_len) {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) BuildFailed("version");
  SetSerial(cert.get(), fields.serial);
  X509NamePtr subject = ParseSubject(fields.subject);
  if (X509_set_subject_name(cert.get(), subject.get()) != 1 ||
      X509_set_issuer_name(cert.get(), subject.get()) != 1 ||
      X509_set_pubkey(cert.get(), fields.public_key) != 1) {
    BuildFailed("names");
  }
  SetValidity(cert.get(), fields.not_before, fields.not_after);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  std::string constraints = "critical,CA:TRUE,pathlen:" + std::to_string(path_len);
  AddExtension(cert.get(), &ctx, NID_basic_constraints, constraints.c_str());
  AddExtension(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
  AddExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
  AddExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
  return cert;
}

X509Ptr BuildIntermediateCertificate(const IntermediateCertificateFields& fields, X509* issuer) {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) BuildFailed("version");
  SetSerial(cert.get(), fields.serial);
  EvpPkeyPtr key = CanonicalPublicKey(fields.public_key);
  if (X509_set_subject_name(cert.get(), fields.subject) != 1 ||
      X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer)) != 1 ||
      X509_set_pubkey(cert.get(), key.get()) != 1) {
    BuildFailed("names");
  }
  SetValidity(cert.get(), fields.not_before, fields.not_after);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert.get(), nullptr, nullptr, 0);
  AddExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
  AddExtension(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
  AddExtension(cert.get(), &ctx, NID_ext_key_usage, "serverAuth,clientAuth");
  AddExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
  AddExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
  return cert;
}

std::string ChainCaProfileDifference(X509* cert, LeafProfile profile) {
  if (X509_get_version(cert) != X509_VERSION_3) return "a chain certificate is not version 3";
  int critical = 0;
  BasicConstraintsPtr bc(
      static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(cert, NID_basic_constraints, &critical, nullptr)));
  if (!bc || bc->ca == 0 || critical != 1) return "a chain certificate is not a CA (critical CA:TRUE)";
  if (bc->pathlen == nullptr || ASN1_INTEGER_get(bc->pathlen) != 0) {
    return "a chain certificate does not limit its path length to 0";
  }
  AsnBitStringPtr ku(static_cast<ASN1_BIT_STRING*>(X509_get_ext_d2i(cert, NID_key_usage, &critical, nullptr)));
  if (!ku || critical != 1 || ASN1_BIT_STRING_get_bit(ku.get(), 5) == 0) {
    return "a chain certificate lacks a critical keyUsage with keyCertSign";
  }
  int eku_index = X509_get_ext_by_NID(cert, NID_ext_key_usage, -1);
  if (eku_index >= 0) {
    ExtendedKeyUsagePtr eku(static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(cert, NID_ext_key_usage, nullptr, nullptr)));
    for (int wanted : ProfileKeyPurposes(profile)) {
      bool found = false;
      for (int i = 0; eku && i < sk_ASN1_OBJECT_num(eku.get()); ++i) {
        found = found || OBJ_obj2nid(sk_ASN1_OBJECT_value(eku.get(), i)) == wanted;
      }
      if (!found) return std::string("a chain certificate's extendedKeyUsage excludes ") + OBJ_nid2sn(wanted);
    }
  }
  return "";
}

void SignCertificate(X509* cert, EVP_PKEY* key) {
  if (X509_sign(cert, key, EVP_sha256()) <= 0) {
    ThrowOpenSsl(base::ExitCode::kUnavailable, "token-sign-failed",
                 "the token did not sign the certificate");
  }
}

void SignRequest(X509_REQ* req, EVP_PKEY* key) {
  if (X509_REQ_sign(req, key, EVP_sha256()) <= 0) {
    ThrowOpenSsl(base::ExitCode::kUnavailable, "token-sign-failed",
                 "the token did not sign the request");
  }
}

TimePoint ToTimePoint(const ASN1_TIME* t) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(t, &tm) != 1) {
    throw base::Failure(base::ExitCode::kDataErr, "bad-certificate", "unreadable time field");
  }
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

TimePoint NotBefore(X509* cert) { return ToTimePoint(X509_get0_notBefore(cert)); }
TimePoint NotAfter(X509* cert) { return ToTimePoint(X509_get0_notAfter(cert)); }

std::string SerialHex(X509* cert) {
  BignumPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (!bn) return "";
  char* hex = BN_bn2hex(bn.get());
  std::string out = hex;
  OPENSSL_free(hex);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string CommonName(X509_NAME* name) {
  int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (index < 0) return "";
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index)));
  if (len < 0) return "";
  std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

std::string NameToString(X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

}  // namespace pki
