// SPDX-License-Identifier: Apache-2.0
// etcd-hsm crl: a certificate revocation list signed in the token (for etcd's --client-crl-file).
#include <cstdio>
#include <memory>

#include "base/duration.h"
#include "base/failure.h"
#include "base/files.h"
#include "etcd_hsm_verbs.h"
#include "hsm/crl.h"

namespace etcd_hsm {
namespace {

using base::ExitCode;
using base::Failure;

struct CrlFlags {
  std::string module, key_uri, ca_cert, out, number_file;
  hsm::PinSource pin;
  std::vector<std::string> revoke;
  std::string revoke_file, reason = "unspecified";
  int days = 0;
};

void RequireOneRevocationSource(const CrlFlags& f) {
  if (f.revoke.empty() == f.revoke_file.empty()) {
    throw Failure(ExitCode::kUsage, "usage", "crl needs either --revoke SERIAL... or --revoke-file FILE");
  }
}

// The serials to revoke: --revoke-file's lines, or --revoke's serials.
std::vector<pki::RevocationRequest> Revocations(const CrlFlags& f) {
  if (!f.revoke_file.empty()) {
    return pki::ParseRevocationList(base::ReadFileLimited(f.revoke_file, 8u << 20, "bad-revoke-file"));
  }
  std::vector<pki::RevocationRequest> entries;
  for (const auto& text : f.revoke) entries.push_back({pki::ParseSerial(text), std::nullopt});
  return entries;
}

int Crl(const Context& ctx, const CrlFlags& f) {
  RequireOneRevocationSource(f);
  hsm::CrlRequest request;
  request.ca_cert_path = f.ca_cert;
  request.default_reason = pki::ParseReason(f.reason);
  request.days = f.days;
  request.out = f.out;
  request.number_file = f.number_file;
  request.revoke = Revocations(f);
  hsm::CrlSummary summary = hsm::IssueCrl({f.module, f.key_uri, f.pin}, request, ctx.now);
  std::fprintf(stderr, "etcd-hsm: wrote %s: CRL number %llu, %zu entries (%zu new), next update %s\n",
               f.out.c_str(), static_cast<unsigned long long>(summary.number), summary.entries, summary.added,
               base::FormatRfc3339(summary.next_update).c_str());
  return 0;
}

}  // namespace

VerbRun DefineCrl(base::Flags& cmd) {
  auto f = std::make_shared<CrlFlags>();
  cmd.Option("--module", f->module, "PKCS#11 module path (or module-path= in the URI)");
  cmd.Option("--key", f->key_uri, "RFC 7512 URI of the issuing CA key (a signer's CA/intermediate, or the root)")
      .Required();
  cmd.Option("--ca-cert", f->ca_cert, "The issuer's certificate (PEM): the CRL's issuer and AKI").Required();
  cmd.Option("--revoke", f->revoke, "Serial(s) to revoke, hex as 'openssl x509 -serial -noout' prints them");
  cmd.Option("--revoke-file", f->revoke_file, "File of 'SERIAL [REASON]' lines ('#' comments, blank lines)");
  cmd.Option("--reason", f->reason,
                 "Reason for entries that name none: unspecified, keyCompromise, cACompromise, "
                 "affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn")
      .ShowDefault();
  cmd.Option("--days", f->days, "nextUpdate = now + days (1-3650)").Required();
  cmd.Option("--out", f->out, "The CRL file: replaced atomically; an existing one of this issuer is continued")
      .Required();
  cmd.Option("--crl-number-file", f->number_file, "File keeping the last cRLNumber used (created if missing)");
  AddPinOptions(cmd, f->pin);
  return [f](const Context& ctx) { return Crl(ctx, *f); };
}

}  // namespace etcd_hsm
