// SPDX-License-Identifier: Apache-2.0
// chain-bench: what verifying the signer's answer costs the requester, for a lone leaf and for a
// leaf followed by its intermediate (#12): the whole of pki::VerifyIssuedCertificate (strict PEM
// parse, leaf profile, CA profile of each chain certificate, path to the trust bundle).
//
//   chain-bench --label L --answer PEM --anchors BUNDLE --key KEY.pem --name CN [--seconds S]
//
// KEY.pem is the requester's key (its public half is what the certificate must carry).
// Output: one tab-separated line  label  count  seconds  per_item_us  items_per_s
#include <openssl/pem.h>

#include <chrono>
#include <cstdio>

#include "base/failure.h"
#include "base/files.h"
#include "base/flags.h"
#include "pki/openssl.h"
#include "pki/verify.h"

int main(int argc, char** argv) {
  std::string label, answer_path, anchors_path, key_path, name;
  double seconds = 2;
  int code = base::ParseCommandLine(
      "chain-bench: time pki::VerifyIssuedCertificate over one answer", argc, argv,
      [&](base::Flags& app) {
        app.Option("--label", label, "Row label").Required();
        app.Option("--answer", answer_path, "The signer's answer (PEM: leaf, then chain)").Required();
        app.Option("--anchors", anchors_path, "Trust bundle (roots)").Required();
        app.Option("--key", key_path, "The requester's private key (PEM)").Required();
        app.Option("--name", name, "The master name (the certificate's CN)").Required();
        app.Option("--seconds", seconds, "How long to measure").Range(0.1, 600.0);
      });
  if (code >= 0) return code;
  try {
    std::string answer = base::ReadFileLimited(answer_path, 1 << 20, "answer");
    std::vector<pki::X509Ptr> anchors = pki::ReadCertificateBundleFile(anchors_path);
    std::string key_pem = base::ReadFileLimited(key_path, 64 * 1024, "key");
    pki::BioPtr bio(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
    pki::EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    if (!key) throw base::Failure(base::ExitCode::kDataErr, "key", "cannot read " + key_path);
    pki::IssuedCertificateExpectations want;
    want.public_key = key.get();
    want.common_name = name;
    for (auto& a : anchors) want.trust_anchors.push_back(a.get());
    want.now = std::chrono::system_clock::now();
    std::size_t chain = pki::VerifyIssuedCertificate(answer, want).chain.size();  // fails loudly
    using Clock = std::chrono::steady_clock;
    auto start = Clock::now();
    auto until = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    long count = 0;
    while (Clock::now() < until) {
      for (int i = 0; i < 50; ++i) pki::VerifyIssuedCertificate(answer, want);
      count += 50;
    }
    double took = std::chrono::duration<double>(Clock::now() - start).count();
    std::printf("%s\t%ld\t%.3f\t%.2f\t%.0f\n", label.c_str(), count, took, took * 1e6 / static_cast<double>(count),
                static_cast<double>(count) / took);
    std::fprintf(stderr, "chain-bench: %s: leaf + %zu chain certificate(s) verified %ld times\n", label.c_str(), chain,
                 count);
    return 0;
  } catch (const base::Failure& f) {
    std::fprintf(stderr, "chain-bench: %s: %s\n", f.reason().c_str(), f.what());
    return static_cast<int>(f.code());
  }
}
