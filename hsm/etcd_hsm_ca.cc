// SPDX-License-Identifier: Apache-2.0
// etcd-hsm's verbs on CA certificates: ca create, ca csr, ca sign-intermediate, ca bundle, check.
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "base/failure.h"
#include "base/files.h"
#include "etcd_hsm_verbs.h"
#include "hsm/ca_operations.h"

namespace etcd_hsm {
namespace {

using base::ExitCode;
using base::Failure;

// The CA key in its token, as every CA verb names it.
struct KeyFlags {
  std::string module, key_uri;
  hsm::PinSource pin;
  hsm::KeyAccess Access() const { return {module, key_uri, pin}; }
};

struct CaRequestFlags {  // ca create, ca csr
  KeyFlags key;
  std::string subject = "CN=etcd-ca", out;
  int days = 3650, path_len = 0;
};

// `ca csr`'s default subject names this host: intermediates of different signer hosts must not
// share a name, or no chain, CRL or operator can tell which host issued what (#24 point 11).
std::string HostSubject() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') {
    throw Failure(ExitCode::kUsage, "usage", "this host has no name: give the intermediate's --subject");
  }
  std::string name(host);
  name = name.substr(0, name.find('.'));
  return "CN=etcd-ca " + name;
}

void AddCaRequestOptions(base::Flags& cmd, CaRequestFlags& f) {
  cmd.Option("--module", f.key.module, "PKCS#11 module path (or module-path= in the URI)");
  cmd.Option("--key", f.key.key_uri, "RFC 7512 URI of the CA key, e.g. pkcs11:token=etcd-ca;object=ca-key")
      .Required();
  cmd.Option("--subject", f.subject, "Subject, e.g. CN=etcd-ca,O=Example").ShowDefault();
  cmd.Option("--out", f.out, "Output file (refuses to overwrite; default stdout)");
  AddPinOptions(cmd, f.key.pin);
}

struct SignIntermediateFlags {
  KeyFlags key;
  std::string ca_cert, csr_file, out;
  int days = 3650;
};

int SignIntermediate(const Context& ctx, const SignIntermediateFlags& f) {
  std::string csr_pem = base::ReadFileLimited(f.csr_file, 64 * 1024, "bad-csr");
  Emit(hsm::SignIntermediate(f.key.Access(), f.ca_cert, csr_pem, f.days, ctx.now), f.out);
  return 0;
}

struct BundleFlags {
  std::vector<std::string> files;
  std::string out;
};

struct CheckFlags {
  KeyFlags key;
  std::string ca_cert, chain, roots;
};

int Check(const Context& ctx, const CheckFlags& f) {
  bool all = true;
  for (const auto& r : hsm::CheckCaKey(f.key.Access(), f.ca_cert, ctx.now, f.chain, f.roots)) {
    std::printf("%-4s %-24s %s\n", r.ok ? "ok" : "FAIL", r.name.c_str(), r.detail.c_str());
    all = all && r.ok;
  }
  if (!all) throw Failure(ExitCode::kDataErr, "check-failed", "at least one check failed (see above)");
  return 0;
}

}  // namespace

VerbRun DefineCaCreate(base::Flags& cmd) {
  auto f = std::make_shared<CaRequestFlags>();
  AddCaRequestOptions(cmd, *f);
  cmd.Option("--days", f->days, "Validity in days").ShowDefault();
  cmd.Option("--path-len", f->path_len,
                 "Path length: 0 signs leaves only (single tier), 1 makes the root of a two-tier CA")
      .ShowDefault();
  return [f](const Context& ctx) {
    Emit(hsm::CreateRootCaCertificate(f->key.Access(), f->subject, f->days, f->path_len, ctx.now), f->out);
    return 0;
  };
}

VerbRun DefineCaCsr(base::Flags& cmd) {
  auto f = std::make_shared<CaRequestFlags>();
  f->subject.clear();
  AddCaRequestOptions(cmd, *f);
  cmd.Find("--subject").Help("Subject, e.g. 'CN=etcd client CA signer-a' (default: CN=etcd-ca HOSTNAME)");
  return [f](const Context&) {
    if (f->subject.empty()) f->subject = HostSubject();
    Emit(hsm::CreateCaRequest(f->key.Access(), f->subject), f->out);
    return 0;
  };
}

VerbRun DefineCaSignIntermediate(base::Flags& cmd) {
  auto f = std::make_shared<SignIntermediateFlags>();
  cmd.Option("--module", f->key.module, "PKCS#11 module path (or module-path= in the URI)");
  cmd.Option("--key", f->key.key_uri, "RFC 7512 URI of the ROOT key").Required();
  cmd.Option("--ca-cert", f->ca_cert, "The root's certificate (PEM)").Required();
  cmd.Option("--csr", f->csr_file, "The intermediate's CSR (PEM, from 'etcd-hsm ca csr')").Required();
  cmd.Option("--days", f->days, "Validity in days (never past the root's)").ShowDefault();
  cmd.Option("--out", f->out, "Output file (refuses to overwrite; default stdout)");
  AddPinOptions(cmd, f->key.pin);
  return [f](const Context& ctx) { return SignIntermediate(ctx, *f); };
}

VerbRun DefineCaBundle(base::Flags& cmd) {
  auto f = std::make_shared<BundleFlags>();
  cmd.Option("certs", f->files, "CA certificate files, current first").Required();
  cmd.Option("--out", f->out, "Output file (refuses to overwrite; default stdout)");
  return [f](const Context& ctx) {
    Emit(hsm::BuildCaBundle(f->files, ctx.now), f->out);
    return 0;
  };
}

VerbRun DefineCheck(base::Flags& cmd) {
  auto f = std::make_shared<CheckFlags>();
  cmd.Option("--module", f->key.module, "PKCS#11 module path (or module-path= in the URI)");
  cmd.Option("--key", f->key.key_uri, "RFC 7512 URI of the CA key").Required();
  cmd.Option("--ca-cert", f->ca_cert, "CA certificate (PEM)").Required();
  cmd.Option("--ca-chain", f->chain,
                 "The signer's ca_chain (PEM: the CA certificate, then its issuers up to, not including, the root)");
  cmd.Option("--ca-bundle", f->roots, "With --ca-chain: the roots the chain must lead to (PEM)");
  AddPinOptions(cmd, f->key.pin);
  return [f](const Context& ctx) { return Check(ctx, *f); };
}

}  // namespace etcd_hsm
