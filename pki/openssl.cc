// SPDX-License-Identifier: Apache-2.0
#include "pki/openssl.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "base/files.h"

namespace pki {

void LeaveOpenSslCleanupToExit() { OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, nullptr); }

std::string DrainOpenSslErrors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

void ThrowOpenSsl(base::ExitCode code, const std::string& reason, const std::string& what) {
  std::string detail = DrainOpenSslErrors();
  throw base::Failure(code, reason, detail.empty() ? what : what + " (" + detail + ")");
}

namespace {
template <typename Writer>
std::string WritePem(Writer write, const char* what) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || write(bio.get()) != 1) {
    ThrowOpenSsl(base::ExitCode::kSoftware, "encode-failed", std::string("cannot encode ") + what);
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}
}  // namespace

std::string ToPem(X509* cert) {
  return WritePem([cert](BIO* b) { return PEM_write_bio_X509(b, cert); }, "certificate");
}

std::string ToPem(X509_REQ* req) {
  return WritePem([req](BIO* b) { return PEM_write_bio_X509_REQ(b, req); }, "CSR");
}

std::string PublicKeyToPem(EVP_PKEY* key) {
  return WritePem([key](BIO* b) { return PEM_write_bio_PUBKEY(b, key); }, "public key");
}

std::vector<unsigned char> ToDer(X509_REQ* req) {
  int len = i2d_X509_REQ(req, nullptr);
  if (len <= 0) ThrowOpenSsl(base::ExitCode::kSoftware, "encode-failed", "cannot encode CSR");
  std::vector<unsigned char> out(static_cast<std::size_t>(len));
  unsigned char* p = out.data();
  i2d_X509_REQ(req, &p);
  return out;
}

std::vector<unsigned char> PublicKeyToDer(EVP_PKEY* key) {
  int len = i2d_PUBKEY(key, nullptr);
  if (len <= 0) ThrowOpenSsl(base::ExitCode::kSoftware, "encode-failed", "cannot encode key");
  std::vector<unsigned char> out(static_cast<std::size_t>(len));
  unsigned char* p = out.data();
  i2d_PUBKEY(key, &p);
  return out;
}

std::vector<X509Ptr> ParseCertificatesPem(const std::string& pem, const std::string& what) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  std::vector<X509Ptr> certs;
  for (;;) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) break;
    certs.push_back(std::move(cert));
  }
  ERR_clear_error();  // the loop always ends on a "no start line" error
  if (certs.empty()) {
    throw base::Failure(base::ExitCode::kDataErr, "bad-certificate",
                        what + " contains no PEM certificate");
  }
  return certs;
}

std::vector<X509Ptr> ReadCertificateBundleFile(const std::string& path) {
  return ParseCertificatesPem(base::ReadFileLimited(path, 1 << 20, "ca-cert"), path);
}

X509Ptr ReadCertificateFile(const std::string& path) {
  return std::move(ReadCertificateBundleFile(path).front());
}

std::string Hex(const unsigned char* data, std::size_t size, char separator) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < size; ++i) {
    if (separator != '\0' && i > 0) out.push_back(separator);
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 0xf]);
  }
  return out;
}

std::string Sha256Hex(const std::vector<unsigned char>& bytes) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(bytes.data(), bytes.size(), digest);
  return Hex(digest, sizeof digest);
}

bool SamePublicKey(EVP_PKEY* a, EVP_PKEY* b) { return EVP_PKEY_eq(a, b) == 1; }

}  // namespace pki
