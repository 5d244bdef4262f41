// SPDX-License-Identifier: Apache-2.0
// The forwarder's TLS client side towards etcd (#18): the context every connection is made from
// (TLS 1.2+, ALPN h2, etcd verified against forward_ca, our leaf and chain, the key in the token),
// and its reload when a renewal replaces the certificate.
#pragma once

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <sys/stat.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "pki/openssl.h"
#include "requester/config.h"
#include "requester/forward.h"

namespace requester {

using SslCtxPtr = std::unique_ptr<SSL_CTX, pki::OpenSslDeleter<SSL_CTX_free>>;

// A client context for `config`'s certificate file and etcd CA, with `key` (used under `gate`: the
// check that the certificate is for the key signs nothing, but it is a use of the token). Failure:
// "etcd-ca" (kNoInput), "cert-missing" (kNoInput), "cert-unusable", "key-mismatch" (kDataErr).
SslCtxPtr BuildClientContext(const RequesterConfig& config, EVP_PKEY* key, TokenGate& gate);

// The client context for the certificate on disk now: rebuilt when the file was replaced (a
// renewal renames a new file into place; its inode, size or mtime changed), so new connections
// present the new certificate while existing ones keep theirs. Thread-safe.
class ReloadingContext {
 public:
  ReloadingContext(std::string cert_path, std::function<SslCtxPtr()> build,
                   std::function<void(const std::string&)> log);

  // The first call builds the context (its Failure is the caller's). Later, a replacement that does
  // not build is logged and the previous context kept until the file is replaced again; while the
  // file is missing (mid-replacement, removed) the previous one is kept too.
  std::shared_ptr<SSL_CTX> Current();
  // Drops the context (the last reference to the key, before its token goes).
  void Reset();

 private:
  const std::string cert_path_;
  const std::function<SslCtxPtr()> build_;
  const std::function<void(const std::string&)> log_;
  std::mutex mutex_;
  std::shared_ptr<SSL_CTX> context_;
  struct stat cert_stat_ {};
};

}  // namespace requester
