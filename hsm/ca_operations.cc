// SPDX-License-Identifier: Apache-2.0
#include "hsm/ca_operations.h"

#include <openssl/err.h>
#include <sys/random.h>

#include "base/failure.h"
#include "base/duration.h"
#include "base/files.h"
#include "pki/certificate_profile.h"
#include "pki/csr.h"
#include "pki/key.h"
#include "pki/verify.h"

namespace hsm {
namespace {

using base::ExitCode;
using base::Failure;

TokenKey LoginAndFind(Session& session, const KeyAccess& access, const Pkcs11Uri& uri) {
  if (uri.type && *uri.type != "private") {
    throw Failure(ExitCode::kUsage, "bad-uri", "the key URI must name type=private (or no type)");
  }
  session.LoginWith(access.pin, &uri);
  return session.FindPrivateKey(uri.object, uri.id);
}

}  // namespace

OpenKey::OpenKey(const KeyAccess& access)
    : uri(Pkcs11Uri::Parse(access.key_uri)),
      module(ModulePath(access.module, &uri)),
      session(module, SelectorFor(uri), false),
      key(LoginAndFind(session, access, uri)) {}

std::vector<unsigned char> SignSha256(const TokenKey& key, const unsigned char* message,
                                      std::size_t size) {
  pki::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  std::size_t len = 0;
  if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.private_key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, message, size) != 1) {
    pki::ThrowOpenSsl(ExitCode::kUnavailable, "token-sign-failed", "the token refused to sign");
  }
  std::vector<unsigned char> signature(len);
  if (EVP_DigestSign(ctx.get(), signature.data(), &len, message, size) != 1) {
    pki::ThrowOpenSsl(ExitCode::kUnavailable, "token-sign-failed", "the token refused to sign");
  }
  signature.resize(len);
  return signature;
}

std::string CreateCaCertificate(const KeyAccess& access, const std::string& subject, int days,
                                std::chrono::system_clock::time_point now) {
  return CreateRootCaCertificate(access, subject, days, 0, now);
}

std::string CreateRootCaCertificate(const KeyAccess& access, const std::string& subject, int days, int path_len,
                                    std::chrono::system_clock::time_point now) {
  if (path_len < 0 || path_len > 1) {
    throw Failure(ExitCode::kUsage, "bad-path-len", "--path-len must be 0 (single tier) or 1 (root of intermediates)");
  }
  if (days < 1 || days > 36500) {
    throw Failure(ExitCode::kUsage, "bad-days", "--days must be between 1 and 36500");
  }
  OpenKey open(access);
  pki::CaCertificateFields fields;
  fields.subject = subject;
  fields.public_key = open.key.public_key.get();
  fields.serial = pki::RandomSerial();
  fields.not_before = now - std::chrono::minutes(5);
  fields.not_after = now + std::chrono::hours(24) * days;
  pki::X509Ptr cert = pki::BuildRootCaCertificate(fields, path_len);
  pki::SignCertificate(cert.get(), open.key.private_key.get());
  if (X509_verify(cert.get(), open.key.public_key.get()) != 1) {
    pki::ThrowOpenSsl(ExitCode::kUnavailable, "token-sign-failed",
                      "the token's signature does not verify with its public key");
  }
  return pki::ToPem(cert.get());
}

std::string SignIntermediate(const KeyAccess& root, const std::string& root_cert_path, const std::string& csr_pem,
                             int days, std::chrono::system_clock::time_point now) {
  if (days < 1 || days > 36500) throw Failure(ExitCode::kUsage, "bad-days", "--days must be between 1 and 36500");
  pki::X509Ptr root_cert = pki::ReadCertificateFile(root_cert_path);
  pki::BasicConstraintsPtr bc(
      static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(root_cert.get(), NID_basic_constraints, nullptr, nullptr)));
  if (!bc || bc->ca == 0) throw Failure(ExitCode::kDataErr, "not-a-ca", root_cert_path + " is not a CA certificate");
  if (bc->pathlen != nullptr && ASN1_INTEGER_get(bc->pathlen) < 1) {
    throw Failure(ExitCode::kDataErr, "root-path-length",
                  root_cert_path + " limits its path length to 0 (a single-tier CA): it cannot certify "
                  "intermediates; make the root with 'etcd-hsm ca create --path-len 1'");
  }
  pki::X509ReqPtr req = pki::DecodeCsr(std::vector<unsigned char>(csr_pem.begin(), csr_pem.end()));
  pki::CsrFacts facts = pki::InspectCsr(req.get());
  auto bad = [](const std::string& why) { throw Failure(ExitCode::kDataErr, "bad-csr", why); };
  if (!facts.public_key) bad("the CSR's key cannot be decoded");
  if (!facts.signature_valid) bad("the CSR's self-signature does not verify");
  if (facts.requests_extensions || facts.other_attributes > 0) {
    bad("the CSR carries extensions or attributes: use one made by 'etcd-hsm ca csr'");
  }
  if (facts.subject.empty()) bad("the CSR has no subject");
  // An intermediate named like its root makes every chain ambiguous (a verifier looks the issuer
  // up by name): each signer host's intermediate needs a name of its own.
  if (X509_NAME_cmp(X509_REQ_get_subject_name(req.get()), X509_get_subject_name(root_cert.get())) == 0) {
    bad("the CSR's subject '" + pki::NameToString(X509_REQ_get_subject_name(req.get())) +
        "' is the root's own: give each signer host's intermediate its own name (ca csr --subject)");
  }
  pki::KeyDescription key = pki::DescribeKey(facts.public_key.get());
  bool strong = (key.kind == pki::KeyDescription::Kind::kEc && !key.ec_explicit_parameters &&
                 (key.curve == "P-256" || key.curve == "P-384")) ||
                (key.kind == pki::KeyDescription::Kind::kRsa && key.bits >= 2048 && key.rsa_exponent_ok);
  if (!strong) {
    throw Failure(ExitCode::kNoPerm, "key-type", key.name + " is not accepted for an intermediate CA (EC P-256/P-384, RSA >= 2048)");
  }
  auto not_after = now + std::chrono::hours(24) * days;
  if (not_after > pki::NotAfter(root_cert.get())) {
    throw Failure(ExitCode::kUsage, "bad-days",
                  "--days " + std::to_string(days) + " reaches past the root's notAfter " +
                      base::FormatRfc3339(pki::NotAfter(root_cert.get())));
  }
  OpenKey open(root);
  EVP_PKEY* root_public = X509_get0_pubkey(root_cert.get());
  if (root_public == nullptr || !pki::SamePublicKey(root_public, open.key.public_key.get())) {
    throw Failure(ExitCode::kUnavailable, "ca-key-mismatch", root_cert_path + " does not belong to the token key " + root.key_uri);
  }
  pki::IntermediateCertificateFields fields;
  fields.subject = X509_REQ_get_subject_name(req.get());
  fields.public_key = facts.public_key.get();
  fields.serial = pki::RandomSerial();
  fields.not_before = std::max(now - std::chrono::minutes(5), pki::NotBefore(root_cert.get()));
  fields.not_after = not_after;
  pki::X509Ptr cert = pki::BuildIntermediateCertificate(fields, root_cert.get());
  pki::SignCertificate(cert.get(), open.key.private_key.get());
  if (X509_verify(cert.get(), root_public) != 1) {
    pki::ThrowOpenSsl(ExitCode::kUnavailable, "token-sign-failed", "the root token's signature does not verify");
  }
  return pki::ToPem(cert.get());
}

std::string CreateCaRequest(const KeyAccess& access, const std::string& subject) {
  OpenKey open(access);
  pki::X509ReqPtr req(X509_REQ_new());
  pki::X509NamePtr name = pki::ParseSubject(subject);
  if (!req || X509_REQ_set_version(req.get(), 0) != 1 ||
      X509_REQ_set_subject_name(req.get(), name.get()) != 1 ||
      X509_REQ_set_pubkey(req.get(), open.key.public_key.get()) != 1) {
    pki::ThrowOpenSsl(ExitCode::kSoftware, "internal", "cannot build the CA request");
  }
  pki::SignRequest(req.get(), open.key.private_key.get());
  return pki::ToPem(req.get());
}

std::string BuildCaBundle(const std::vector<std::string>& files,
                          std::chrono::system_clock::time_point now) {
  if (files.empty()) throw Failure(ExitCode::kUsage, "usage", "name at least one CA certificate");
  std::string bundle;
  for (const auto& file : files) {
    for (auto& cert : pki::ReadCertificateBundleFile(file)) {
      if (X509_check_ca(cert.get()) == 0) {
        throw Failure(ExitCode::kDataErr, "not-a-ca",
                      file + ": '" + pki::NameToString(X509_get_subject_name(cert.get())) +
                          "' is not a CA certificate");
      }
      if (pki::NotAfter(cert.get()) <= now) {
        throw Failure(ExitCode::kDataErr, "ca-expired",
                      file + ": '" + pki::NameToString(X509_get_subject_name(cert.get())) +
                          "' has expired; an expired CA does not belong in a bundle");
      }
      bundle += pki::ToPem(cert.get());
    }
  }
  return bundle;
}

std::vector<CheckResult> CheckCaKey(const KeyAccess& access, const std::string& ca_cert_path,
                                    std::chrono::system_clock::time_point now,
                                    const std::string& ca_chain_path, const std::string& ca_bundle_path) {
  pki::X509Ptr cert = pki::ReadCertificateFile(ca_cert_path);
  OpenKey open(access);
  std::vector<CheckResult> results;
  auto add = [&](bool ok, const std::string& name, const std::string& detail) {
    results.push_back({ok, name, detail});
  };
  EVP_PKEY* cert_key = X509_get0_pubkey(cert.get());
  add(cert_key != nullptr && pki::SamePublicKey(cert_key, open.key.public_key.get()),
      "key-matches-certificate",
      "token key " + pki::DescribeKey(open.key.public_key.get()).name + ", sha256 " +
          pki::PublicKeySha256(open.key.public_key.get()).substr(0, 16) + "…");

  unsigned char message[32];
  if (getrandom(message, sizeof message, 0) != static_cast<ssize_t>(sizeof message)) {
    throw Failure(ExitCode::kSoftware, "internal", "getrandom failed");
  }
  std::vector<unsigned char> signature = SignSha256(open.key, message, sizeof message);
  bool verified = false;
  if (cert_key != nullptr) {
    pki::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
    verified = EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, cert_key) == 1 &&
               EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), message,
                                sizeof message) == 1;
    ERR_clear_error();
  }
  add(verified, "test-signature",
      verified ? "SHA-256 signature made in the token verifies with the certificate's key"
               : "a signature made in the token does not verify with the certificate's key");

  const KeyAttributes& a = open.key.attributes;
  auto flag = [](const std::optional<bool>& v) { return !v ? "unknown" : *v ? "true" : "false"; };
  add(a.sensitive.value_or(false) && a.always_sensitive.value_or(false), "sensitive",
      std::string("CKA_SENSITIVE=") + flag(a.sensitive) + " CKA_ALWAYS_SENSITIVE=" +
          flag(a.always_sensitive));
  add(a.extractable.has_value() && !*a.extractable && a.never_extractable.value_or(false),
      "never-extractable",
      std::string("CKA_EXTRACTABLE=") + flag(a.extractable) + " CKA_NEVER_EXTRACTABLE=" +
          flag(a.never_extractable));
  add(a.sign.value_or(false) && a.token.value_or(false) && a.is_private.value_or(false),
      "token-private-sign",
      std::string("CKA_TOKEN=") + flag(a.token) + " CKA_PRIVATE=" + flag(a.is_private) +
          " CKA_SIGN=" + flag(a.sign));
  // A signing key that can also decrypt, unwrap or derive gives whoever holds the PIN more than
  // signatures (RSA decryption oracles, key agreement); a CA key must be sign-only.
  bool sign_only = a.decrypt.has_value() && !*a.decrypt && a.unwrap.has_value() && !*a.unwrap &&
                   a.derive.has_value() && !*a.derive;
  add(sign_only, "sign-only",
      std::string("CKA_DECRYPT=") + flag(a.decrypt) + " CKA_UNWRAP=" + flag(a.unwrap) +
          " CKA_DERIVE=" + flag(a.derive) + (sign_only ? "" : ": make a new key with 'etcd-hsm keygen'"));
  add(X509_check_ca(cert.get()) != 0, "certificate-is-ca",
      pki::NameToString(X509_get_subject_name(cert.get())));
  auto not_after = pki::NotAfter(cert.get());
  auto days_left = std::chrono::duration_cast<std::chrono::hours>(not_after - now).count() / 24;
  add(pki::NotBefore(cert.get()) <= now && now < not_after, "certificate-valid",
      now < not_after ? std::to_string(days_left) + " days left" : "expired");
  if (ca_chain_path.empty()) return results;

  std::vector<pki::X509Ptr> chain = pki::ReadCertificateBundleFile(ca_chain_path);
  auto subject = [](X509* c) { return "'" + pki::NameToString(X509_get_subject_name(c)) + "'"; };
  add(!chain.empty() && X509_cmp(chain.front().get(), cert.get()) == 0, "chain-starts-with-ca",
      chain.empty() ? ca_chain_path + " holds no certificate"
                    : ca_chain_path + " starts with " + subject(chain.front().get()) +
                          (X509_cmp(chain.front().get(), cert.get()) == 0 ? "" : ", not with the CA certificate"));
  std::string links = std::to_string(chain.size()) + " certificate(s), each issued by the next";
  for (std::size_t i = 1; i < chain.size(); ++i) {
    X509* child = chain[i - 1].get();
    X509* parent = chain[i].get();
    EVP_PKEY* parent_key = X509_get0_pubkey(parent);
    if (X509_check_issued(parent, child) != X509_V_OK || parent_key == nullptr || X509_verify(child, parent_key) != 1) {
      links = subject(parent) + " did not issue " + subject(child);
      break;
    }
  }
  ERR_clear_error();
  add(links.find("did not issue") == std::string::npos, "chain-links", links);
  std::string profile;
  for (const auto& c : chain) {
    if (std::string diff = pki::ChainCaProfileDifference(c.get()); !diff.empty()) {
      profile = subject(c.get()) + ": " + diff;
      break;
    }
  }
  // Members' certificates (#26) need serverAuth in every intermediate's EKU too: an intermediate
  // signed before #26 still issues to masters, and the line says what it cannot do.
  bool members = true;
  for (const auto& c : chain) members = members && pki::ChainCaProfileDifference(c.get(), pki::LeafProfile::kServer).empty();
  add(profile.empty(), "chain-ca-profile",
      !profile.empty() ? profile
      : members        ? "every certificate may stand in a chain, for masters and etcd members"
                       : "every certificate may stand in a chain for masters; not for etcd members (an "
                         "extendedKeyUsage without serverAuth: re-sign the intermediate with this version's "
                         "ca sign-intermediate before issuing etcd-server or etcd-peer)");
  auto earliest = pki::TimePoint::max();
  bool all_valid = !chain.empty();
  for (const auto& c : chain) {
    all_valid = all_valid && pki::NotBefore(c.get()) <= now && now < pki::NotAfter(c.get());
    earliest = std::min(earliest, pki::NotAfter(c.get()));
  }
  add(all_valid, "chain-valid",
      chain.empty() ? "empty"
                    : "the chain expires " + base::FormatRfc3339(earliest) + " (" +
                          std::to_string(std::chrono::duration_cast<std::chrono::hours>(earliest - now).count() / 24) +
                          " days)");
  if (!ca_bundle_path.empty() && !chain.empty()) {
    std::vector<pki::X509Ptr> roots = pki::ReadCertificateBundleFile(ca_bundle_path);
    std::vector<X509*> anchors, untrusted;
    for (auto& r : roots) anchors.push_back(r.get());
    for (std::size_t i = 1; i < chain.size(); ++i) untrusted.push_back(chain[i].get());
    std::string error = pki::VerifyChain(chain.front().get(), anchors, now, nullptr, untrusted, X509_PURPOSE_ANY);
    add(error.empty(), "chain-to-root",
        error.empty() ? "the chain leads to a root in " + ca_bundle_path : error + " (roots: " + ca_bundle_path + ")");
  }
  return results;
}

}  // namespace hsm
