#include "pki/verify.h"

#include <openssl/err.h>

namespace pki {
namespace {
[[noreturn]] void Reject(const std::string& reason, const std::string& message) {
  ERR_clear_error();
  throw base::Failure(base::ExitCode::kDataErr, reason, message);
}
}  // namespace

std::string VerifyChain(X509* cert, const std::vector<X509*>& anchors, TimePoint now) {
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
  if (ok != 1) error = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
  ERR_clear_error();
  return error;
}

X509Ptr VerifyIssuedCertificate(const std::string& pem, const IssuedCertificateExpectations& want) {
  std::vector<X509Ptr> certs;
  try {
    certs = ParseCertificatesPem(pem, "the signer's answer");
  } catch (const base::Failure&) {
    Reject("cert-unparsable", "the signer's answer is not a PEM certificate");
  }
  if (certs.size() != 1) Reject("cert-unparsable", "the signer's answer holds more than one certificate");
  X509Ptr cert = std::move(certs.front());
  EVP_PKEY* key = X509_get0_pubkey(cert.get());
  if (key == nullptr || !SamePublicKey(key, want.public_key)) {
    Reject("cert-wrong-key", "the certificate is not for our key");
  }
  std::string cn = CommonName(X509_get_subject_name(cert.get()));
  if (cn != want.common_name) {
    Reject("cert-wrong-name",
           "the certificate is for '" + cn + "', not '" + want.common_name + "'");
  }
  auto* eku = static_cast<EXTENDED_KEY_USAGE*>(
      X509_get_ext_d2i(cert.get(), NID_ext_key_usage, nullptr, nullptr));
  ExtendedKeyUsagePtr eku_owner(eku);
  bool client_auth = false;
  for (int i = 0; eku != nullptr && i < sk_ASN1_OBJECT_num(eku); ++i) {
    if (OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i)) == NID_client_auth) client_auth = true;
  }
  if (!client_auth) Reject("cert-no-client-auth", "the certificate lacks the clientAuth usage");
  TimePoint not_before = NotBefore(cert.get());
  TimePoint not_after = NotAfter(cert.get());
  if (want.now + want.skew_tolerance < not_before) {
    Reject("cert-not-yet-valid",
           "the certificate is not valid yet: check the clocks of this host and the signer");
  }
  if (want.now >= not_after) Reject("cert-expired", "the certificate has already expired");
  if (!want.trust_anchors.empty()) {
    // Validate at a time inside the validity window so a small forward skew is tolerated.
    TimePoint at = want.now < not_before ? not_before : want.now;
    std::string error = VerifyChain(cert.get(), want.trust_anchors, at);
    if (!error.empty()) {
      Reject("cert-untrusted", "the certificate does not chain to the CA bundle: " + error);
    }
  }
  return cert;
}

}  // namespace pki
