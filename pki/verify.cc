// SPDX-License-Identifier: Apache-2.0
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
// "" when `sent` is exactly path[1 .. n-1): the verified path without the leaf and its anchor.
std::string ChainDifference(const std::vector<X509Ptr>& sent, const std::vector<X509Ptr>& path) {
  const std::size_t between = path.size() >= 2 ? path.size() - 2 : 0;
  if (sent.size() > between) {
    return "the answer carries " + std::to_string(sent.size()) + " chain certificate(s) where the verified path has " +
           std::to_string(between) + " intermediate(s): only the path to the trust anchor is accepted";
  }
  if (sent.size() < between) return "the answer lacks intermediates of the verified path";
  for (std::size_t i = 0; i < sent.size(); ++i) {
    if (X509_cmp(sent[i].get(), path[i + 1].get()) != 0) {
      return "chain certificate " + std::to_string(i + 1) + " is not the next link of the verified path";
    }
  }
  return "";
}

}  // namespace

std::string CertificateSha256(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(cert, EVP_sha256(), md, &n) != 1) {
    ERR_clear_error();
    throw base::Failure(base::ExitCode::kSoftware, "internal", "cannot hash a certificate");
  }
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned i = 0; i < n; ++i) {
    hex += kHex[md[i] >> 4];
    hex += kHex[md[i] & 15];
  }
  return hex;
}

std::optional<std::string> ParseSha256Fingerprint(std::string_view text) {
  for (std::string_view prefix : {"sha256:", "SHA256:", "sha256 Fingerprint=", "SHA256 Fingerprint="}) {
    if (text.substr(0, prefix.size()) == prefix) {
      text.remove_prefix(prefix.size());
      break;
    }
  }
  std::string hex;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == ':' && i % 3 == 2 && i + 1 < text.size()) continue;  // openssl's "AB:CD:..." form
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
    hex += c;
  }
  if (hex.size() != 64) return std::nullopt;
  return hex;
}

std::string VerifyChain(X509* cert, const std::vector<X509*>& anchors, TimePoint now, X509Ptr* issuer,
                        const std::vector<X509*>& untrusted, int purpose, std::vector<X509Ptr>* path) {
  X509StorePtr store(X509_STORE_new());
  for (X509* anchor : anchors) X509_STORE_add_cert(store.get(), anchor);
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  X509StackPtr intermediates(sk_X509_new_null());
  for (X509* c : untrusted) sk_X509_push(intermediates.get(), c);
  if (!store || !ctx || !intermediates ||
      X509_STORE_CTX_init(ctx.get(), store.get(), cert, intermediates.get()) != 1) {
    return "cannot set up verification";
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, std::chrono::system_clock::to_time_t(now));
  X509_VERIFY_PARAM_set_purpose(param, purpose);
  int ok = X509_verify_cert(ctx.get());
  std::string error;
  if (ok != 1) {
    error = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
  } else {
    STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx.get());
    if (issuer != nullptr && sk_X509_num(chain) >= 2) {
      X509* found = sk_X509_value(chain, 1);
      X509_up_ref(found);
      issuer->reset(found);
    }
    if (path != nullptr) {
      path->clear();
      for (int i = 0; i < sk_X509_num(chain); ++i) {
        X509* link = sk_X509_value(chain, i);
        X509_up_ref(link);
        path->emplace_back(link);
      }
    }
  }
  ERR_clear_error();
  return error;
}

std::vector<X509Ptr> ParseCertificateAnswer(const std::string& text) {
  static const std::string kBegin = "-----BEGIN CERTIFICATE-----\n";
  static const std::string kEnd = "-----END CERTIFICATE-----";
  auto bad = [](const std::string& why) { Reject("cert-profile", "the signer's answer " + why); };
  if (text.empty()) bad("is empty");
  std::vector<X509Ptr> certs;
  std::size_t at = 0;
  while (at < text.size()) {
    if (certs.size() == 1 + kMaxChainCertificates) bad("holds more certificates than a leaf and its chain");
    if (text.compare(at, kBegin.size(), kBegin) != 0) {
      bad(certs.empty() ? "does not start with a PEM certificate header"
                        : "has bytes after the certificate (only PEM certificate blocks may follow it)");
    }
    std::size_t end = text.find(kEnd, at + kBegin.size());
    if (end == std::string::npos) bad("has no PEM certificate footer");
    std::string body = text.substr(at + kBegin.size(), end - at - kBegin.size());
    for (char c : body) {
      bool b64 = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
                 c == '/' || c == '=' || c == '\n';
      if (!b64) bad("has a PEM block with headers or characters outside base64");
    }
    auto der = DecodeBase64(body);
    if (!der || der->empty()) bad("is not valid base64 inside a PEM block");
    const unsigned char* p = der->data();
    X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der->size())));
    if (!cert) Reject("cert-unparsable", "the signer's answer is not an X.509 certificate");
    if (p != der->data() + der->size()) bad("has bytes after a certificate's DER");
    certs.push_back(std::move(cert));
    at = end + kEnd.size();
    if (at < text.size()) {
      if (text[at] != '\n') bad("has bytes after the certificate (exactly PEM blocks are accepted)");
      ++at;  // the newline that ends the block
    }
  }
  return certs;
}

std::string IssuedCertificate::Pem() const {
  std::string pem = ToPem(leaf.get());
  for (const auto& c : chain) pem += ToPem(c.get());
  return pem;
}

IssuedCertificate VerifyIssuedCertificate(const std::string& pem, const IssuedCertificateExpectations& want) {
  std::vector<X509Ptr> certs = ParseCertificateAnswer(pem);
  IssuedCertificate issued;
  issued.leaf = std::move(certs.front());
  for (std::size_t i = 1; i < certs.size(); ++i) issued.chain.push_back(std::move(certs[i]));
  X509* cert = issued.leaf.get();
  // The reasons operators already know come first; every other deviation is cert-profile.
  EVP_PKEY* key = X509_get0_pubkey(cert);
  if (key == nullptr || !SamePublicKey(key, want.public_key)) {
    Reject("cert-wrong-key", "the certificate is not for our key");
  }
  X509_NAME* subject = X509_get_subject_name(cert);
  if (X509_NAME_entry_count(subject) == 1) {
    std::string cn = CommonName(subject);
    if (cn != want.common_name) {
      Reject("cert-wrong-name",
             "the certificate is for '" + base::Printable(cn, 64) + "', not '" + want.common_name + "'");
    }
  }
  TimePoint not_before = NotBefore(cert);
  TimePoint not_after = NotAfter(cert);
  if (want.now + want.skew_tolerance < not_before) {
    Reject("cert-not-yet-valid",
           "the certificate is not valid yet: check the clocks of this host and the signer");
  }
  if (want.now >= not_after) Reject("cert-expired", "the certificate has already expired");
  // The profile first (its sentence names the difference better than OpenSSL's chain errors, e.g.
  // for a duplicate extension), then the chain, then what only the issuer can tell.
  LeafProfileExpectations profile{want.common_name, want.public_key, nullptr};
  profile.profile = want.profile;
  const std::string not_profile = std::string("the certificate is not profile ") + ProfileName(want.profile) + ": ";
  if (std::string diff = LeafProfileDifference(cert, profile); !diff.empty()) Reject("cert-profile", not_profile + diff);
  for (const auto& c : issued.chain) {
    if (std::string diff = ChainCaProfileDifference(c.get(), want.profile); !diff.empty()) Reject("cert-profile", diff);
  }
  // Trust anchors are never absent (#24): an answer from any issuer would otherwise be stored.
  if (want.trust_anchors.empty()) {
    Reject("cert-untrusted", "no trust anchor is configured to verify the certificate against");
  }
  // Validate at a time inside the validity window so a small forward skew is tolerated.
  TimePoint at = want.now < not_before ? not_before : want.now;
  std::vector<X509*> untrusted;
  for (const auto& c : issued.chain) untrusted.push_back(c.get());
  X509Ptr issuer;
  std::vector<X509Ptr> path;
  std::string error = VerifyChain(cert, want.trust_anchors, at, &issuer, untrusted, ProfilePurpose(want.profile), &path);
  if (!error.empty()) {
    Reject("cert-untrusted", "the certificate does not chain to the CA bundle: " + error);
  }
  // What is stored (and what the forwarder presents) is exactly the verified path: the leaf, then
  // each intermediate up to, not including, the trust anchor it ends in (#24). Anything more or
  // different (a certificate etcd might reject, e.g. one on its CRL) is the signer's choice of an
  // outage, and is refused.
  if (std::string diff = ChainDifference(issued.chain, path); !diff.empty()) Reject("cert-chain", diff);
  profile.issuer = issuer.get();
  if (std::string diff = LeafProfileDifference(cert, profile); !diff.empty()) Reject("cert-profile", not_profile + diff);
  return issued;
}

}  // namespace pki
