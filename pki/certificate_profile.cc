#include "pki/certificate_profile.h"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <sys/random.h>

#include <cerrno>
#include <ctime>

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

X509Ptr BuildClientCertificate(const ClientCertificateFields& fields, X509* ca_cert) {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) BuildFailed("version");
  SetSerial(cert.get(), fields.serial);
  X509NamePtr subject(X509_NAME_new());
  if (X509_NAME_add_entry_by_NID(subject.get(), NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(fields.common_name.c_str()),
                                 -1, -1, 0) != 1 ||
      X509_set_subject_name(cert.get(), subject.get()) != 1 ||
      X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert)) != 1 ||
      X509_set_pubkey(cert.get(), fields.subject_key) != 1) {
    BuildFailed("names");
  }
  SetValidity(cert.get(), fields.not_before, fields.not_after);

  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, ca_cert, cert.get(), nullptr, nullptr, 0);
  bool rsa = DescribeKey(fields.subject_key).kind == KeyDescription::Kind::kRsa;
  AddExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
  AddExtension(cert.get(), &ctx, NID_key_usage,
               rsa ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature");
  AddExtension(cert.get(), &ctx, NID_ext_key_usage, "clientAuth");
  AddExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
  AddExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
  return cert;
}

X509Ptr BuildCaCertificate(const CaCertificateFields& fields) {
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
  AddExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
  AddExtension(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
  AddExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
  AddExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
  return cert;
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
