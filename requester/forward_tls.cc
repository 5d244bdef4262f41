// SPDX-License-Identifier: Apache-2.0
#include "requester/forward_tls.h"

#include <vector>

#include "base/failure.h"

namespace requester {

using base::ExitCode;
using base::Failure;

namespace {

void SetProtocol(SSL_CTX* ctx) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);  // every connection authenticates afresh
  // No TLS 1.2 renegotiation: it would make SSL_read sign with the key outside the token's turn.
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  static const unsigned char kAlpn[] = {2, 'h', '2'};
  if (SSL_CTX_set_alpn_protos(ctx, kAlpn, sizeof kAlpn) != 0) {
    pki::ThrowOpenSsl(ExitCode::kSoftware, "internal", "cannot offer ALPN h2");
  }
}

// Leaf and chain, as stored by request/renew: the first certificate is ours, the rest its chain.
void UseCertificateFile(SSL_CTX* ctx, const std::string& path) {
  std::vector<pki::X509Ptr> certs = pki::ReadCertificateBundleFile(path);
  if (certs.empty()) throw Failure(ExitCode::kNoInput, "cert-missing", "no certificate in " + path);
  if (SSL_CTX_use_certificate(ctx, certs[0].get()) != 1) {
    pki::ThrowOpenSsl(ExitCode::kDataErr, "cert-unusable", "cannot use the certificate in " + path);
  }
  for (std::size_t i = 1; i < certs.size(); ++i) {
    if (SSL_CTX_add1_chain_cert(ctx, certs[i].get()) != 1) {
      pki::ThrowOpenSsl(ExitCode::kDataErr, "cert-unusable", "cannot use the chain in " + path);
    }
  }
}

bool SameFile(const struct stat& a, const struct stat& b) {
  return a.st_ino == b.st_ino && a.st_dev == b.st_dev && a.st_size == b.st_size &&
         a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}

}  // namespace

SslCtxPtr BuildClientContext(const RequesterConfig& config, EVP_PKEY* key, TokenGate& gate) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) pki::ThrowOpenSsl(ExitCode::kSoftware, "internal", "cannot create a TLS context");
  SetProtocol(ctx.get());
  if (SSL_CTX_load_verify_locations(ctx.get(), config.forward.etcd_ca.c_str(), nullptr) != 1) {
    pki::ThrowOpenSsl(ExitCode::kNoInput, "etcd-ca", "cannot load etcd's CA from " + config.forward.etcd_ca);
  }
  UseCertificateFile(ctx.get(), config.cert);
  std::lock_guard token(gate);
  if (SSL_CTX_use_PrivateKey(ctx.get(), key) != 1 || SSL_CTX_check_private_key(ctx.get()) != 1) {
    pki::ThrowOpenSsl(ExitCode::kDataErr, "key-mismatch", "the certificate in " + config.cert + " is not for this key");
  }
  return ctx;
}

ReloadingContext::ReloadingContext(std::string cert_path, std::function<SslCtxPtr()> build,
                                   std::function<void(const std::string&)> log)
    : cert_path_(std::move(cert_path)), build_(std::move(build)), log_(std::move(log)) {}

std::shared_ptr<SSL_CTX> ReloadingContext::Current() {
  struct stat st {};
  bool have = ::stat(cert_path_.c_str(), &st) == 0;
  std::lock_guard lock(mutex_);
  if (context_ && !have) return context_;  // mid-replacement or removed: keep serving what we have
  if (context_ && SameFile(st, cert_stat_)) return context_;
  try {
    SslCtxPtr fresh = build_();
    bool first = !context_;
    context_ = std::shared_ptr<SSL_CTX>(fresh.release(), SSL_CTX_free);
    cert_stat_ = st;
    if (!first) log_("forward: new connections now present the certificate in " + cert_path_);
  } catch (const Failure& f) {
    if (!context_) throw;
    log_(std::string("forward: keeping the previous certificate: ") + f.what());
    cert_stat_ = st;  // do not retry on every connection; the next replacement is tried again
  }
  return context_;
}

void ReloadingContext::Reset() {
  std::lock_guard lock(mutex_);
  context_.reset();
}

}  // namespace requester
