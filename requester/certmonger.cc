// SPDX-License-Identifier: Apache-2.0
// certmonger's CA helper (certmonger.h): one operation per run, mapped onto the same signer walk,
// SSH client and answer verification as `request` (exchange.h).
#include "requester/certmonger.h"

#include <unistd.h>

#include <optional>
#include <string_view>

#include "base/deadline.h"
#include "base/failure.h"
#include "base/text.h"
#include "pki/base64.h"
#include "pki/csr.h"
#include "pki/verify.h"
#include "requester/exchange.h"
#include "requester/ssh_client.h"

namespace requester {
namespace {

using base::ExitCode;
using base::Failure;

int Status(CertmongerStatus s) {
  return static_cast<int>(s);
}

void Print(std::FILE* out, const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), out);
  std::fflush(out);
}

// What the walk over the signers last heard from a signer that answered with a failure: kept
// because TrySigners, when every signer failed, rethrows a plain Failure that names the last one.
struct LastRefusal {
  std::string signer_reason;
  std::string line;
};

// The settings this helper needs; the key and certificate ones are certmonger's.
void CheckConfig(const RequesterConfig& c) {
  if (c.servers.empty())
    throw Failure(ExitCode::kConfig, "bad-config", "server is required (USER@HOST[:PORT])");
  for (const auto& server : c.servers) ParseServer(server);
  if (c.known_hosts.empty()) {
    throw Failure(ExitCode::kConfig, "bad-config",
                  "known_hosts is required: the signer's host key must be known");
  }
  if (c.ca_bundle.empty()) {
    throw Failure(ExitCode::kConfig, "bad-config",
                  "ca_bundle is required: the certificate is verified against the root the operator "
                  "installed there (or fetched once and checked against ca_sha256)");
  }
  if (c.connect_timeout.count() < 1 || c.io_timeout.count() < 1) {
    throw Failure(ExitCode::kConfig, "bad-config", "timeouts must be at least 1s");
  }
}

// A failure as certmonger should act on it (certmonger.h has the table).
int StatusFor(const Failure& f, const LastRefusal& last, std::FILE* out) {
  if (f.reason() == "signer-refused") {
    // The signer's own line, as certmonger should show it.
    const auto* refusal = dynamic_cast<const SignerRefusal*>(&f);
    std::string line = refusal != nullptr ? std::string(f.what()) : last.line;
    std::string reason = refusal != nullptr ? refusal->signer_reason() : last.signer_reason;
    if (IsPinFailure(f)) {
      // The signer's token refused its PIN: every retry costs one of its few attempts.
      Print(out, line + "\n");
      return Status(CertmongerStatus::kUnderconfigured);
    }
    if (f.code() == ExitCode::kUsage || f.code() == ExitCode::kDataErr ||
        f.code() == ExitCode::kNoPerm) {
      Print(out, line + "\n");
      return Status(CertmongerStatus::kRejected);
    }
    if (f.code() == ExitCode::kTempFail) {
      int delay =
          reason == "pending-approval" ? kPendingApprovalDelaySeconds : kSignerBusyDelaySeconds;
      // The cookie only has to be non-empty (certmonger drops a WAIT answer without one); POLL
      // sends the same CSR again.
      Print(out,
            std::to_string(delay) + "\n" + (reason.empty() ? std::string("retry") : reason) + "\n");
      return Status(CertmongerStatus::kWaitWithDelay);
    }
    Print(out, line + "\n");
    return Status(CertmongerStatus::kUnreachable);
  }
  Print(out, base::FailureLine("etcd-requester", f) + "\n");
  // A PIN our token refused: another try would cost another of its few attempts. Our own
  // refusals need the operator: configuration, a host key that changed or is unknown or
  // revoked, an SSH key the signer does not accept. Everything else may clear by itself.
  if (IsPinFailure(f) || f.code() == ExitCode::kUsage || f.code() == ExitCode::kConfig ||
      f.code() == ExitCode::kNoPerm) {
    return Status(CertmongerStatus::kUnderconfigured);
  }
  return Status(CertmongerStatus::kUnreachable);
}

// Runs `attempt` on each signer in turn (TrySigners), remembering the last signer refusal.
void WalkSigners(const RequesterConfig& c, const RequesterEnv& env, LastRefusal& last,
                 const std::function<void(SshClient&)>& attempt) {
  RequesterState state;  // certmonger keeps the history; nothing is stored here
  TrySigners(c, env, state, [&](const std::string& server) {
    try {
      SshClient ssh(SshOptionsFor(c, server));
      attempt(ssh);
    } catch (const SignerRefusal& r) {
      last = {r.signer_reason(), r.what()};
      throw;
    }
  });
}

int Submit(const RequesterConfig& c, const CertmongerHelperIo& io, const RequesterEnv& env,
           LastRefusal& last) {
  const char* csr_text = io.getenv("CERTMONGER_CSR");
  if (csr_text == nullptr || *csr_text == '\0') {
    Print(io.out,
          "etcd-requester: no-csr: CERTMONGER_CSR is empty: run this as certmonger's CA helper\n");
    return Status(CertmongerStatus::kUnderconfigured);
  }
  pki::X509ReqPtr csr;
  std::string common_name;
  pki::EvpPkeyPtr public_key;
  try {
    std::string_view text(csr_text);
    csr = pki::DecodeCsr(std::vector<unsigned char>(text.begin(), text.end()));
    pki::CsrFacts facts = pki::InspectCsr(csr.get());
    for (const auto& [name, value] : facts.subject) {
      if (name == "CN") {
        common_name = value;
        break;
      }
    }
    public_key = std::move(facts.public_key);
    if (common_name.empty() || !public_key) {
      throw Failure(ExitCode::kDataErr, "not-a-csr", "the CSR has no CN or no readable public key");
    }
  } catch (const Failure& f) {
    Print(io.out, base::FailureLine("etcd-requester", f) + "\n");
    return Status(CertmongerStatus::kRejected);
  }
  std::vector<unsigned char> der = pki::ToDer(csr.get());
  std::string body = pki::EncodeBase64(der.data(), der.size(), 76);
  std::optional<pki::IssuedCertificate> issued;
  // The answer is verified for the CSR's own key and CN: certmonger stores what we print as the
  // certificate of the key it holds.
  WalkSigners(c, env, last, [&](SshClient& ssh) {
    issued = SignOver(ssh, c, env, body, public_key.get(), common_name);
  });
  Print(io.out, issued->Pem());
  Log(env,
      "certmonger: issued serial " + pki::SerialHex(issued->leaf.get()) + " for " + common_name);
  return Status(CertmongerStatus::kIssued);
}

// FETCH-ROOTS: "nickname\nPEM" for the root; every further root after one blank line, nickname
// first. No intermediates: the signer sends its own with each certificate. The roots are the
// operator's (#24): the configured bundle; a signer's are taken only before it is installed, and
// then only the one ca_sha256 pins.
int FetchRoots(const RequesterConfig& c, const CertmongerHelperIo& io, const RequesterEnv& env,
               LastRefusal& last) {
  std::vector<pki::X509Ptr> roots;
  if (::access(c.ca_bundle.c_str(), F_OK) == 0) {
    roots = pki::ReadCertificateBundleFile(c.ca_bundle);
  } else {
    WalkSigners(c, env, last, [&](SshClient& ssh) {
      std::string ignored;
      roots = TrustAnchors(c, ssh, &ignored);
    });
  }
  std::string text;
  for (std::size_t i = 0; i < roots.size(); ++i) {
    std::string nickname = pki::CommonName(X509_get_subject_name(roots[i].get()));
    if (nickname.empty()) nickname = "etcd-ca-" + std::to_string(i + 1);
    if (i == 1) text += "\n";
    text += base::Printable(nickname, 64) + "\n" + pki::ToPem(roots[i].get());
  }
  Print(io.out, text);
  return Status(CertmongerStatus::kIssued);
}

}  // namespace

int RunCertmongerHelper(const std::string& config_path, const CertmongerHelperIo& io,
                        const RequesterEnv& env) {
  const char* op = io.getenv("CERTMONGER_OPERATION");
  const std::string operation = op != nullptr ? op : "";
  if (operation == "IDENTIFY") {
    Print(io.out, std::string("etcd-requester ") + ETCD_SIGNER_VERSION + "\n");
    return Status(CertmongerStatus::kIssued);
  }
  if (operation == "GET-NEW-REQUEST-REQUIREMENTS" ||
      operation == "GET-RENEW-REQUEST-REQUIREMENTS") {
    return Status(
        CertmongerStatus::kIssued);  // nothing beyond the CSR, which certmonger always sets
  }
  bool submit = operation == "SUBMIT" || operation == "POLL";
  if (!submit && operation != "FETCH-ROOTS") return Status(CertmongerStatus::kNotSupported);

  RequesterConfig config;
  try {
    if (config_path.empty())
      throw Failure(ExitCode::kConfig, "bad-config", "--config FILE is required");
    LoadConfigFile(config_path, config);
    CheckConfig(config);
  } catch (const Failure& f) {
    Print(io.out, base::FailureLine("etcd-requester", f) + "\n");
    return Status(CertmongerStatus::kUnderconfigured);
  }
  // A wedged token or signer must not hold certmonger's helper slot forever: past the budget the
  // process ends with "unreachable", which certmonger retries.
  std::FILE* out = io.out;
  base::Deadline deadline(
      config.connect_timeout + config.io_timeout + std::chrono::seconds(60), [out] {
        const char line[] = "etcd-requester: deadline: the signer did not answer in time\n";
        std::fwrite(line, 1, sizeof line - 1, out);
        std::fflush(out);
        ::_exit(Status(CertmongerStatus::kUnreachable));
        return true;
      });
  LastRefusal last;
  try {
    return submit ? Submit(config, io, env, last) : FetchRoots(config, io, env, last);
  } catch (const Failure& f) {
    return StatusFor(f, last, io.out);
  } catch (const std::exception& e) {
    Print(io.out,
          std::string("etcd-requester: internal: ") + base::Printable(e.what(), 200) + "\n");
    return Status(CertmongerStatus::kUnreachable);
  }
}

}  // namespace requester
