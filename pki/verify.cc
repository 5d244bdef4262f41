#include "pki/verify.h"

#include <openssl/err.h>

#include "base/text.h"
#include "pki/base64.h"

namespace pki {
namespace {
[[noreturn]] void Reject(const std::string& reason, const std::string& message) {
  ERR_clear_error();
  throw base::Failure(base::ExitCode::kDataErr, reason, message);
}
}  // namespace

std::string VerifyChain(X509* cert, const std::vector<X509*>& anchors, TimePoint now, X509Ptr* issuer) {
  X509StorePtr store(X509_STORE_new());
  for (X509* anchor : anchors) X509_STORE_add_cert(store.get(), anchor);
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !ctx || X509_STORE_CTX_init(ctx.get(), store.get(), cert, nullptr) != 1) {
    return "cannot set up verification";
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, std::chrono::system_clock::to_time_t(now));
  X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_CLIENT);
  int ok = X509_verify_cert(ctx.get());
  std::string error;
  if (ok != 1) {
    error = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
  } else if (issuer != nullptr) {
    STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx.get());
    if (sk_X509_num(chain) >= 2) {
      X509* found = sk_X509_value(chain, 1);
      X509_up_ref(found);
      issuer->reset(found);
    }
  }
  ERR_clear_error();
  return error;
}

X509Ptr ParseSingleCertificatePem(const std::string& text) {
  static const std::string kBegin = "-----BEGIN CERTIFICATE-----\n";
  static const std::string kEnd = "-----END CERTIFICATE-----";
  auto bad = [](const std::string& why) { Reject("cert-profile", "the signer's answer " + why); };
  if (text.compare(0, kBegin.size(), kBegin) != 0) {
    bad(text.empty() ? "is empty" : "does not start with a PEM certificate header");
  }
  std::size_t end = text.find(kEnd, kBegin.size());
  if (end == std::string::npos) bad("has no PEM certificate footer");
  std::string after = text.substr(end + kEnd.size());
  if (after != "" && after != "\n") bad("has bytes after the certificate (exactly one PEM block is accepted)");
  std::string body = text.substr(kBegin.size(), end - kBegin.size());
  for (char c : body) {
    bool b64 = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
               c == '/' || c == '=' || c == '\n';
    if (!b64) bad("has a PEM block with headers or characters outside base64");
  }
  auto der = DecodeBase64(body);
  if (!der || der->empty()) bad("is not valid base64 inside its PEM block");
  const unsigned char* p = der->data();
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der->size())));
  if (!cert) Reject("cert-unparsable", "the signer's answer is not an X.509 certificate");
  if (p != der->data() + der->size()) bad("has bytes after the certificate's DER");
  return cert;
}

X509Ptr VerifyIssuedCertificate(const std::string& pem, const IssuedCertificateExpectations& want) {
  X509Ptr cert = ParseSingleCertificatePem(pem);
  // The reasons operators already know come first; every other deviation is cert-profile.
  EVP_PKEY* key = X509_get0_pubkey(cert.get());
  if (key == nullptr || !SamePublicKey(key, want.public_key)) {
    Reject("cert-wrong-key", "the certificate is not for our key");
  }
  X509_NAME* subject = X509_get_subject_name(cert.get());
  if (X509_NAME_entry_count(subject) == 1) {
    std::string cn = CommonName(subject);
    if (cn != want.common_name) {
      Reject("cert-wrong-name",
             "the certificate is for '" + base::Printable(cn, 64) + "', not '" + want.common_name + "'");
    }
  }
  TimePoint not_before = NotBefore(cert.get());
  TimePoint not_after = NotAfter(cert.get());
  if (want.now + want.skew_tolerance < not_before) {
    Reject("cert-not-yet-valid",
           "the certificate is not valid yet: check the clocks of this host and the signer");
  }
  if (want.now >= not_after) Reject("cert-expired", "the certificate has already expired");
  // The profile first (its sentence names the difference better than OpenSSL's chain errors, e.g.
  // for a duplicate extension), then the chain, then what only the issuer can tell.
  ClientProfileExpectations profile{want.common_name, want.public_key, nullptr};
  if (std::string diff = ClientProfileDifference(cert.get(), profile); !diff.empty()) {
    Reject("cert-profile", "the certificate is not profile etcd-client: " + diff);
  }
  X509Ptr issuer;
  if (!want.trust_anchors.empty()) {
    // Validate at a time inside the validity window so a small forward skew is tolerated.
    TimePoint at = want.now < not_before ? not_before : want.now;
    std::string error = VerifyChain(cert.get(), want.trust_anchors, at, &issuer);
    if (!error.empty()) {
      Reject("cert-untrusted", "the certificate does not chain to the CA bundle: " + error);
    }
  }
  profile.issuer = issuer.get();
  if (std::string diff = ClientProfileDifference(cert.get(), profile); !diff.empty()) {
    Reject("cert-profile", "the certificate is not profile etcd-client: " + diff);
  }
  return cert;
}

}  // namespace pki
