// SPDX-License-Identifier: Apache-2.0
// `etcd-requester certmonger`: certmonger's CA helper interface (certmonger's doc/submit.txt), so
// that certmonger can own the key and the renewal schedule while the signers, the SSH client, the
// failover and the verification of the answer stay ours (exchange.h).
//
// certmonger runs the helper with the operation in CERTMONGER_OPERATION and reads its exit status
// and stdout; every status and line below is what certmonger 0.79 (Debian 12) understands.
#pragma once

#include <cstdio>
#include <functional>
#include <string>

#include "requester/config.h"
#include "requester/requester.h"

namespace requester {

// certmonger's helper exit statuses (doc/submit.txt; submit-e.c reads them).
enum class CertmongerStatus : int {
  kIssued = 0,       // stdout: the certificate (leaf, then the chain), PEM
  kRejected = 2,     // stdout: one line, shown by `getcert list` as ca-error (CA_REJECTED)
  kUnreachable = 3,  // stdout: one line (ca-error); certmonger retries on its own schedule
  kUnderconfigured =
      4,  // stdout: one line (ca-error); certmonger waits for the operator (CA_UNCONFIGURED)
  kWaitWithDelay = 5,  // stdout: "<seconds>\n<cookie>\n"; certmonger POLLs after the delay
  kNotSupported = 6,   // an operation this helper does not implement
};

// Seconds certmonger is asked to wait before it POLLs again: a request waiting for an operator's
// approval on the signer (`pending-approval`, 75) is not decided in seconds; a busy token or a
// request cut off by the signer's deadline (any other 75) usually clears within a minute.
constexpr int kPendingApprovalDelaySeconds = 300;
constexpr int kSignerBusyDelaySeconds = 60;

struct CertmongerHelperIo {
  std::function<const char*(const char*)> getenv;  // the environment certmonger set
  std::FILE* out = stdout;                         // what certmonger reads
};

// Runs one operation. `config_path` is the requester's TOML (server, ssh_key, known_hosts,
// ca_bundle, timeouts, lifetime; the key settings are ignored: certmonger owns the key).
// Never throws: every failure is mapped to a status with one line on `io.out`:
//   SUBMIT/POLL (POLL resubmits the CSR: the signer keeps no pending state of its own)
//     issued → 0 with leaf + chain; the signer's policy refusal (64, 65, 77) → 2 with the signer's
//     line; `pending-approval` (75) → 5 with kPendingApprovalDelaySeconds; any other 75 → 5 with
//     kSignerBusyDelaySeconds; unreachable, SSH or I/O failures, 69, 70, an answer that fails
//     verification → 3; our configuration, the host key, SSH authentication or a PIN refused
//     (ours or the signer's: retrying costs lockout tries) → 4; a CSR we cannot read → 2.
//   IDENTIFY → 0, "etcd-requester <version>"; FETCH-ROOTS → 0 with the signer's `ca` bundle in
//   certmonger's format (nickname line, PEM; further roots after a blank line), 3 or 4 as above;
//   GET-NEW-REQUEST-REQUIREMENTS, GET-RENEW-REQUEST-REQUIREMENTS → 0, nothing (the CSR is all
//   we need); anything else → 6.
int RunCertmongerHelper(const std::string& config_path, const CertmongerHelperIo& io,
                        const RequesterEnv& env);

}  // namespace requester
