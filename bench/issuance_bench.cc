// issuance-bench: in one process, with the token already loaded and logged in, how many
// certificates per second can be issued (profile build + signature in the token + self-check), and
// how many raw signatures per second does the token make? The difference is what our code adds on
// top of the token.
//
//   issuance-bench --module SO --key PKCS11-URI --pin-file FILE --ca-cert PEM --csr-b64 FILE
//                  [--seconds S]
//
// Output: two tab-separated lines
//   token-sign      ops  seconds  ops_per_s
//   issuance        ops  seconds  ops_per_s
#include <openssl/evp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "base/failure.h"
#include "base/files.h"
#include "hsm/module.h"
#include "hsm/pin.h"
#include "hsm/session.h"
#include "hsm/uri.h"
#include "pki/certificate_profile.h"
#include "pki/openssl.h"
#include "signer/issuance.h"
#include "signer/policy.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string module, key, pin_file, ca_cert, csr_b64;
  double seconds = 3;
};

[[noreturn]] void Usage(const std::string& why) {
  std::fprintf(stderr,
               "issuance-bench: %s\nusage: issuance-bench --module SO --key URI --pin-file FILE --ca-cert PEM "
               "--csr-b64 FILE [--seconds S]\n",
               why.c_str());
  std::exit(64);
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") Usage("issuance rate vs raw token signature rate");
    if (i + 1 >= argc) Usage(a + " needs a value");
    std::string v = argv[++i];
    if (a == "--module") o.module = v;
    else if (a == "--key") o.key = v;
    else if (a == "--pin-file") o.pin_file = v;
    else if (a == "--ca-cert") o.ca_cert = v;
    else if (a == "--csr-b64") o.csr_b64 = v;
    else if (a == "--seconds") o.seconds = std::atof(v.c_str());
    else Usage("unknown flag " + a);
  }
  if (o.module.empty() || o.key.empty() || o.pin_file.empty() || o.ca_cert.empty() || o.csr_b64.empty() ||
      o.seconds <= 0) {
    Usage("all of --module --key --pin-file --ca-cert --csr-b64 are required");
  }
  return o;
}

// Runs `op` repeatedly for about `seconds` and prints the rate.
void Measure(const char* label, double seconds, const std::function<void()>& op) {
  op();  // warm-up, and a failure shows before timing starts
  long ops = 0;
  auto start = Clock::now();
  double elapsed = 0;
  while (elapsed < seconds) {
    op();
    ++ops;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  }
  std::printf("%s\t%ld\t%.2f\t%.1f\n", label, ops, elapsed, static_cast<double>(ops) / elapsed);
}

}  // namespace

int main(int argc, char** argv) try {
  Options o = ParseArgs(argc, argv);
  hsm::Pkcs11Uri uri = hsm::Pkcs11Uri::Parse(o.key);
  hsm::Module module(o.module);
  hsm::Session session(module, hsm::SelectorFor(uri), false);
  std::string pin = hsm::ReadPin(hsm::PinSource{o.pin_file, {}}, &uri);
  session.Login(pin);
  base::Scrub(pin);
  hsm::TokenKey key = session.FindPrivateKey(uri.object, uri.id);
  pki::X509Ptr ca = pki::ReadCertificateFile(o.ca_cert);
  pki::X509ReqPtr csr = signer::DecodeRequestBody(base::ReadFileLimited(o.csr_b64, 64 * 1024));

  // Raw: one SHA-256 + signature over a to-be-signed certificate's typical size (~450 bytes).
  std::string tbs(450, 'x');
  Measure("token-sign", o.seconds, [&] {
    pki::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
    std::size_t len = 0;
    if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.private_key.get()) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(tbs.data()), tbs.size()) != 1) {
      throw base::Failure(base::ExitCode::kUnavailable, "token-sign-failed", "cannot size the signature");
    }
    std::string sig(len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                       reinterpret_cast<const unsigned char*>(tbs.data()), tbs.size()) != 1) {
      throw base::Failure(base::ExitCode::kUnavailable, "token-sign-failed", "the token did not sign");
    }
  });

  Measure("issuance", o.seconds, [&] {
    signer::Approval approval{"kubemaster-1", pki::EvpPkeyPtr(X509_REQ_get_pubkey(csr.get())), std::chrono::hours(24)};
    auto validity = signer::ComputeValidity(ca.get(), std::chrono::system_clock::now(), approval.lifetime,
                                            std::chrono::minutes(5), std::chrono::minutes(10));
    pki::X509Ptr cert = signer::IssueCertificate(approval, ca.get(), key.private_key.get(), validity,
                                                 pki::RandomSerial());
    if (pki::ToPem(cert.get()).empty()) {
      throw base::Failure(base::ExitCode::kSoftware, "internal", "empty certificate");
    }
  });
  return 0;
} catch (const base::Failure& f) {
  std::fprintf(stderr, "%s\n", base::FailureLine("issuance-bench", f).c_str());
  return static_cast<int>(f.code());
}
