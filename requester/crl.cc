// SPDX-License-Identifier: Apache-2.0
// crl (#29): the fleet's revocations for etcd's --client-crl-file, fetched over the same SSH
// channel as certificates. etcd re-reads that file on every handshake but compares serials only:
// it checks neither the CRL's issuer nor its signature nor its dates, so this side does. A CRL is
// accepted only when its signer chains to our pinned trust, it verifies, it is current, and its
// cRLNumber (the governance document's version) is above the one in place; the file is replaced
// atomically, and a refused answer leaves it as it was.
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <set>

#include "base/duration.h"
#include "base/failure.h"
#include "base/files.h"
#include "base/text.h"
#include "pki/crl.h"
#include "pki/governance.h"
#include "pki/verify.h"
#include "requester/exchange.h"
#include "requester/requester.h"

namespace requester {
namespace {

using base::ExitCode;
using base::Failure;

constexpr std::size_t kMaxCrlBytes = 32u << 20;
constexpr std::string_view kCrlEnd = "-----END X509 CRL-----";

[[noreturn]] void Bad(const std::string& server, const std::string& why) {
  throw Failure(ExitCode::kDataErr, "bad-crl", "the CRL from " + server + " " + why);
}

// The CRL's signer: a CA allowed to sign CRLs.
void CheckCrlIssuer(X509* issuer, const std::string& server) {
  if (X509_check_ca(issuer) == 0) Bad(server, "is signed by a certificate that is no CA");
  if ((X509_get_extension_flags(issuer) & EXFLAG_KUSAGE) != 0 && (X509_get_key_usage(issuer) & KU_CRL_SIGN) == 0) {
    Bad(server, "is signed by a CA whose keyUsage does not allow cRLSign");
  }
}

// The CRL against the signed document sent after it: the same serials, the same version.
void CheckGoverned(const std::string& answer, const std::vector<X509*>& governance, std::uint64_t number,
                   const std::vector<pki::CrlEntry>& entries, const std::string& server) {
  auto refuse = [&](const std::string& why) {
    throw Failure(ExitCode::kDataErr, "crl-not-governed", "the CRL from " + server + " " + why);
  };
  std::size_t at = answer.find("-----BEGIN CMS-----");
  if (at == std::string::npos) refuse("comes without its governance document (a signer older than #29?)");
  pki::GovernanceDocument doc = pki::ReadGovernance(answer.substr(at), governance, "the governance document from " + server);
  if (doc.state.version != number) {
    refuse("has cRLNumber " + std::to_string(number) + " but its governance document is version " +
           std::to_string(doc.state.version));
  }
  std::set<pki::SerialBytes> listed, signed_;
  for (const auto& e : entries) listed.insert(e.serial);
  for (const auto& r : doc.state.revoked) signed_.insert(r.serial);
  if (listed != signed_) refuse("does not list exactly the serials its governance document revokes");
}

}  // namespace

VerifiedCrl VerifyServedCrl(const std::string& answer, const std::vector<X509*>& anchors, TimePoint now,
                            std::chrono::seconds skew, const std::string& server,
                            const std::vector<X509*>& governance) {
  std::size_t start = answer.find_first_not_of(" \t\r\n");
  if (start == std::string::npos || answer.compare(start, 24, "-----BEGIN X509 CRL-----") != 0) {
    Bad(server, "does not start with a PEM CRL");
  }
  std::size_t end = answer.find(kCrlEnd, start);
  if (end == std::string::npos) Bad(server, "has no end");
  end += kCrlEnd.size();
  VerifiedCrl v;
  v.pem = answer.substr(start, end - start) + "\n";
  pki::X509CrlPtr crl = pki::ParseCrlPem(v.pem, "the CRL from " + server);
  // The chain after it: the CRL's signer first, then what issued it, up to (not including) a root.
  std::vector<pki::X509Ptr> chain = pki::ParseCertificatesPem(answer.substr(end), "the CRL's chain from " + server);
  X509* issuer = chain.front().get();
  if (X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(issuer)) != 0) {
    Bad(server, "names issuer '" + pki::NameToString(X509_CRL_get_issuer(crl.get())) + "', not '" +
                    pki::NameToString(X509_get_subject_name(issuer)) + "', the certificate sent with it");
  }
  if (X509_CRL_verify(crl.get(), X509_get0_pubkey(issuer)) != 1) {
    pki::DrainOpenSslErrors();
    Bad(server, "does not verify with the key of '" + pki::NameToString(X509_get_subject_name(issuer)) + "'");
  }
  CheckCrlIssuer(issuer, server);
  std::vector<X509*> untrusted;
  for (std::size_t i = 1; i < chain.size(); ++i) untrusted.push_back(chain[i].get());
  std::string error = pki::VerifyChain(issuer, anchors, now, nullptr, untrusted, X509_PURPOSE_ANY);
  if (!error.empty()) {
    throw Failure(ExitCode::kDataErr, "untrusted-crl",
                  "the CRL from " + server + " is signed by a CA that does not chain to our trust: " + error);
  }
  std::optional<std::uint64_t> number = pki::CrlNumber(crl.get());
  if (!number) Bad(server, "has no cRLNumber: it cannot be ordered against the one in place");
  v.number = *number;
  const ASN1_TIME* last = X509_CRL_get0_lastUpdate(crl.get());
  const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl.get());
  if (next == nullptr) Bad(server, "has no nextUpdate");
  v.this_update = pki::ToTimePoint(last);
  v.next_update = pki::ToTimePoint(next);
  if (v.this_update > now + skew) Bad(server, "starts at " + base::FormatRfc3339(v.this_update) + ", in the future");
  if (v.next_update <= now) {
    throw Failure(ExitCode::kDataErr, "stale-crl",
                  "the CRL from " + server + " (cRLNumber " + std::to_string(v.number) + ") ended at " +
                      base::FormatRfc3339(v.next_update) + ": its governance document expired; the operators sign a new one");
  }
  std::vector<pki::CrlEntry> entries = pki::CrlEntries(crl.get());
  v.entries = entries.size();
  if (!governance.empty()) CheckGoverned(answer, governance, v.number, entries, server);
  return v;
}

std::string FetchCrl(const RequesterConfig& c, const RequesterEnv& env) {
  if (c.crl_file.empty()) {
    throw Failure(ExitCode::kConfig, "bad-config", "crl needs crl_file (--crl-file): the file etcd's --client-crl-file names");
  }
  std::optional<std::uint64_t> current;
  if (::access(c.crl_file.c_str(), F_OK) == 0) {
    try {
      pki::X509CrlPtr in_place = pki::ParseCrlPem(base::ReadFileLimited(c.crl_file, kMaxCrlBytes), c.crl_file);
      current = pki::CrlNumber(in_place.get());
    } catch (const Failure& f) {
      Log(env, "WARNING: " + std::string(f.what()) + ": it is replaced");  // etcd refuses every client with it
    }
  }
  std::vector<pki::X509Ptr> governance_certs;
  if (!c.governance_cert.empty()) governance_certs = pki::ReadCertificateBundleFile(c.governance_cert);
  std::exception_ptr last;
  for (const std::string& server : ServerOrder(c)) {
    try {
      SshClient ssh(SshOptionsFor(c, server));
      std::string fetched;
      std::vector<pki::X509Ptr> anchors = TrustAnchors(c, ssh, &fetched);
      std::vector<X509*> raw;
      for (auto& a : anchors) raw.push_back(a.get());
      std::vector<X509*> governance;
      for (auto& g : governance_certs) governance.push_back(g.get());
      ExecResult r = ssh.Exec("crl", "");
      if (r.exit_status != 0) SignerFailed(r);
      if (r.out.size() > kMaxCrlBytes) Bad(server, "is larger than " + std::to_string(kMaxCrlBytes) + " bytes");
      VerifiedCrl v = VerifyServedCrl(r.out, raw, env.now(), c.skew_tolerance, server, governance);
      std::string what = "cRLNumber " + std::to_string(v.number) + " (" + std::to_string(v.entries) +
                         " revoked serials, until " + base::FormatRfc3339(v.next_update) + ") from " + server;
      if (current && v.number == *current) return "unchanged: " + c.crl_file + " already holds " + what;
      if (current && v.number < *current) {
        throw Failure(ExitCode::kDataErr, "crl-rollback",
                      server + " served cRLNumber " + std::to_string(v.number) + ", below " + std::to_string(*current) +
                          " in " + c.crl_file + ": an older policy cannot come back (is that signer's governance document old?)");
      }
      base::AtomicFileWriter(c.crl_file, 0644).Write(v.pem);
      return "stored " + what + " in " + c.crl_file;
    } catch (const Failure& f) {
      Log(env, "signer " + server + ": " + f.what());
      last = std::current_exception();
    }
  }
  if (last) std::rethrow_exception(last);
  throw Failure(ExitCode::kConfig, "no-server", "no signer is configured (set server)");
}

}  // namespace requester
