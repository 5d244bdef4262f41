// SPDX-License-Identifier: Apache-2.0
// issuance-bench: in one process, with the token already loaded and logged in, how many
// certificates per second can be issued (profile build + signature in the token + self-check), and
// how many raw signatures per second does the token make? The difference is what our code adds on
// top of the token.
//
//   issuance-bench --module SO --key PKCS11-URI --pin-file FILE --ca-cert PEM --csr-b64 FILE
//                  [--seconds S] [--rounds R]
//
// The two are measured in alternating windows (R rounds of S/R seconds each, signatures then
// issuances), so that a drift of a shared machine's speed hits both alike; their ratio is what
// bench/run reports. Output: two tab-separated lines, the sums over the rounds
//   token-sign      ops  seconds  ops_per_s
//   issuance        ops  seconds  ops_per_s
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "base/failure.h"
#include "base/files.h"
#include "base/flags.h"
#include "hsm/ca_operations.h"
#include "pki/certificate_profile.h"
#include "pki/key.h"
#include "pki/openssl.h"
#include "signer/issuance.h"
#include "signer/policy.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string module, key, pin_file, ca_cert, csr_b64;
  double seconds = 3;
  int rounds = 6;
};

struct Tally {
  long ops = 0;
  double seconds = 0;
};

// Runs `op` repeatedly for about `seconds`, adding to `tally`.
void Measure(Tally& tally, double seconds, const std::function<void()>& op) {
  long ops = 0;
  auto start = Clock::now();
  double elapsed = 0;
  while (elapsed < seconds) {
    op();
    ++ops;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  }
  tally.ops += ops;
  tally.seconds += elapsed;
}

void Print(const char* label, const Tally& t) {
  std::printf("%s\t%ld\t%.2f\t%.1f\n", label, t.ops, t.seconds, static_cast<double>(t.ops) / t.seconds);
}

}  // namespace

int main(int argc, char** argv) try {
  Options o;
  int code = base::ParseCommandLine(
      "issuance-bench: issuance rate vs raw token signature rate", argc, argv,
      [&](base::Flags& app) {
        app.Option("--module", o.module, "PKCS#11 module (SoftHSM)").Required();
        app.Option("--key", o.key, "PKCS#11 URI of the CA key").Required();
        app.Option("--pin-file", o.pin_file, "File holding the token PIN").Required();
        app.Option("--ca-cert", o.ca_cert, "The CA certificate (PEM)").Required();
        app.Option("--csr-b64", o.csr_b64, "A base64 CSR, as the signer reads it").Required();
        app.Option("--seconds", o.seconds, "Seconds per measurement").Range(0.1, 3600.0);
        app.Option("--rounds", o.rounds, "Alternating windows per measurement").Range(1, 1000);
      });
  if (code >= 0) return code;
  hsm::OpenKey open({o.module, o.key, hsm::PinSource{o.pin_file, {}}});
  pki::X509Ptr ca = pki::ReadCertificateFile(o.ca_cert);
  pki::X509ReqPtr csr = signer::DecodeRequestBody(base::ReadFileLimited(o.csr_b64, 64 * 1024));

  // Raw: one SHA-256 + signature over a to-be-signed certificate's typical size (~450 bytes).
  std::vector<unsigned char> tbs(450, 'x');
  auto sign = [&] { hsm::SignSha256(open.key, tbs.data(), tbs.size()); };
  auto issue = [&] {
    // What the policy adds to an approval: the key's canonical form (ApplyPolicy computes it once).
    signer::Approval approval{"kubemaster-1", pki::EvpPkeyPtr(X509_REQ_get_pubkey(csr.get())), std::chrono::hours(24)};
    approval.key = pki::CanonicalizeKey(approval.public_key.get());
    auto validity = signer::ComputeValidity(ca.get(), std::chrono::system_clock::now(), approval.lifetime,
                                            std::chrono::minutes(5), std::chrono::minutes(10));
    pki::X509Ptr cert = signer::IssueCertificate(approval, ca.get(), open.key.private_key.get(), validity,
                                                 pki::RandomSerial());
    if (pki::ToPem(cert.get()).empty()) {
      throw base::Failure(base::ExitCode::kSoftware, "internal", "empty certificate");
    }
  };
  sign();  // warm-up, and a failure shows before timing starts
  issue();
  Tally signs, issuances;
  double window = o.seconds / o.rounds;
  for (int r = 0; r < o.rounds; ++r) {
    Measure(signs, window, sign);
    Measure(issuances, window, issue);
  }
  Print("token-sign", signs);
  Print("issuance", issuances);
  return 0;
} catch (const base::Failure& f) {
  std::fprintf(stderr, "%s\n", base::FailureLine("issuance-bench", f).c_str());
  return static_cast<int>(f.code());
}
