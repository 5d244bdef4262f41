// SPDX-License-Identifier: Apache-2.0
// The client's request, from SSH_ORIGINAL_COMMAND (or argv when run locally). It is attacker
// input: parsed strictly here and nowhere else, never handed to a shell.
//
// Grammar (single spaces or tabs between words, at most 256 bytes, printable ASCII only):
//   ""                        -> sign
//   "sign"                    -> sign
//   "sign --lifetime DUR"     -> sign with a requested lifetime (also --lifetime=DUR)
//   "sign --format k8s"       -> sign; the body is a certificates.k8s.io/v1 CertificateSigningRequest
//                                (also --format=k8s; not together with --lifetime)
//   "sign --profile NAME"     -> sign for profile etcd-client (the default), etcd-server or etcd-peer
//                                (also --profile=NAME; not together with --format k8s)
//   "check [--profile NAME] [--lifetime DUR]"
//                             -> what `sign` would decide for the same body, without the token and
//                                without issuing (#28): policy, approval and deny lists
//   "sign ... --attested"     -> sign or check; the body carries TPM2_Certify evidence after the
//                                CSR (#27, docs/protocol.md §8)
//   "ca" | "info" | "crl"     -> those verbs, no arguments (crl: the governance document's
//                                revocations as a CRL signed by this host's CA key, #29)
//   "enroll" | "activate"     -> a master's TPM enrollment, its two steps (#27), no arguments
// Anything else is Failure(kUsage, "unknown-verb" | "bad-request").
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/duration.h"
#include "pki/certificate_profile.h"

namespace signer {

enum class Verb { kSign, kCheck, kCa, kInfo, kCrl, kEnroll, kActivate };

// What `sign` reads on stdin and prints on stdout.
enum class BodyFormat {
  kBase64Csr,  // base64 of a PEM/DER CSR in, PEM certificate out
  kK8s,        // a CertificateSigningRequest object (JSON) in, the same object with status out
};

struct RequestLine {
  Verb verb = Verb::kSign;
  std::optional<base::Seconds> lifetime;  // sign and check only
  BodyFormat format = BodyFormat::kBase64Csr;  // sign only
  pki::LeafProfile profile = pki::LeafProfile::kClient;  // sign and check only
  bool attested = false;  // sign and check: evidence follows the CSR (#27)
};

RequestLine ParseRequestLine(std::string_view text);

std::string VerbName(Verb verb);

}  // namespace signer
