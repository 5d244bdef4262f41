// SPDX-License-Identifier: Apache-2.0
// request, renew and ca: one exchange with the first signer that answers (#12), verified, stored.
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/failure.h"
#include "base/text.h"
#include "pki/base64.h"
#include "pki/csr.h"
#include "pki/verify.h"
#include "requester/attestation.h"
#include "requester/exchange.h"
#include "requester/forward.h"
#include "requester/key_store.h"
#include "requester/requester.h"
#include "requester/ssh_client.h"
#include "requester/token_agent.h"

namespace requester {
namespace {

using base::ExitCode;
using base::Failure;
using std::chrono::seconds;

bool Exists(const std::string& path) { return !path.empty() && ::access(path.c_str(), F_OK) == 0; }

// A certificate directory that does not exist is a setup step left out (#15): say which directory
// to create before a key is made or a signature spent.
void CheckCertificateDirectory(const std::string& cert) {
  std::string dir = std::filesystem::path(cert).parent_path().string();
  if (dir.empty()) dir = ".";
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 && errno == ENOENT) {
    throw Failure(ExitCode::kCantCreate, "write-failed",
                  "the certificate directory " + dir + " does not exist; create it (mkdir -p " + dir +
                      ") writable by the account that runs etcd-requester");
  }
}

RequestOutcome DoRequest(const RequesterConfig& c, const RequesterEnv& env, bool create_key,
                         RequesterState& state) {
  CheckName(c);  // before any network traffic
  CheckCertificateDirectory(c.cert);
  RequestOutcome outcome;
  std::unique_ptr<KeyStore> keys;
  std::string body;
  std::string fetched_bundle;  // the pinned root fetched on first contact, stored with the certificate
  std::string audit_head;      // the serving signer's audit head after its record of this answer
  bool stored = false;
  // A request that fails must not leave behind a key it made (#15): the next `request` would adopt
  // a key no certificate was ever issued for. Except when the signer holds that very key for an
  // operator's approval (pending-approval): it is the one to approve. A key made in a token stays
  // (see etcd-requester(8)): it never leaves the token and the next request uses it.
  auto forget_new_key = [&](const Failure& f) {
    if (stored || !outcome.generated_key || c.key_file.empty()) return;
    auto* refusal = dynamic_cast<const SignerRefusal*>(&f);
    if (refusal != nullptr && refusal->signer_reason() == "pending-approval") return;
    keys.reset();
    if (::unlink(c.key_file.c_str()) == 0) {
      Log(env, "removed the key this request made (" + c.key_file + "): nothing was issued for it");
    }
  };
  std::optional<pki::IssuedCertificate> issued;
  std::string served_by;
  try {
    auto open_keys = [&] {
      keys = env.shared_key != nullptr ? BorrowKeyStore(*env.shared_key) : MakeKeyStore(c);
      if (keys->Open(create_key)) {
        outcome.generated_key = true;
        Log(env, "generated a new EC P-256 key in " + keys->Describe());
      }
      std::unique_lock<std::mutex> gate;  // the forwarder's handshakes use the same key (#18)
      if (env.key_gate != nullptr) gate = std::unique_lock(*env.key_gate);
      pki::X509ReqPtr csr = pki::BuildCsr(c.name, keys->private_key());
      if (gate.owns_lock()) gate.unlock();
      std::vector<unsigned char> der = pki::ToDer(csr.get());
      body = pki::EncodeBase64(der.data(), der.size(), 76);
      // With attestation (#27) the TPM certifies this very key for this very CSR.
      if (c.attestation) body = AttestedBody(AttestingTpm(*keys), der, body);
    };
    // An SSH key in a token authenticates while no other module is loaded (one C_Initialize per
    // process): then each connection comes first and the certificate key after it. Otherwise a key
    // problem is reported before any connection.
    const bool ssh_key_in_token = IsTokenKey(c.ssh_key);
    if (!ssh_key_in_token) open_keys();

    served_by = TrySigners(c, env, state, [&](const std::string& server) {
      if (ssh_key_in_token) keys.reset();
      // The session lives only as long as the exchange: it is closed before the hook runs.
      SshClient ssh(SshOptionsFor(c, server));
      if (!keys) open_keys();
      fetched_bundle.clear();
      audit_head.clear();
      try {
        issued = SignOver(ssh, c, env, body, keys->public_key(), c.name, &fetched_bundle, &audit_head);
      } catch (const SignerRefusal& r) {
        // A signer that does not know this TPM yet: enroll it there, once, and ask again (#27).
        if (!c.attestation || r.signer_reason() != "ak-not-enrolled") throw;
        EnrollTpm(ssh, c, env, AttestingTpm(*keys));
        state.tpm_enrolled[server] = base::FormatRfc3339(env.now());
        issued = SignOver(ssh, c, env, body, keys->public_key(), c.name, &fetched_bundle, &audit_head);
      }
    });
    state.served_by = served_by;
    if (std::string warning = KeepWitness(state, served_by, audit_head, base::FormatRfc3339(env.now()));
        !warning.empty()) {
      Log(env, "WARNING: " + warning);
    }

    // Leaf and chain: what kube-apiserver and etcdctl present to etcd.
    base::AtomicFileWriter writer(c.cert, 0644);
    if (env.store_fault) writer.set_fault_hook(env.store_fault);
    writer.Write(issued->Pem());
    stored = true;
    // The pinned root the answer was verified against, fetched on first contact: only now, with
    // the certificate it verified, so that a refused request leaves no bundle behind.
    if (!fetched_bundle.empty()) {
      base::AtomicFileWriter(c.ca_bundle, 0644).Write(fetched_bundle);
      Log(env, "stored the pinned root (SHA-256 " + c.ca_sha256 + ") in " + c.ca_bundle);
    }
  } catch (const Failure& f) {
    forget_new_key(f);
    throw;
  }
  X509* cert = issued->leaf.get();
  outcome.renewed = true;
  outcome.serial = pki::SerialHex(cert);
  outcome.not_after = pki::NotAfter(cert);
  outcome.message = "stored a certificate for " + c.name + " in " + c.cert + " (serial " + outcome.serial +
                    ", valid until " + base::FormatRfc3339(outcome.not_after) +
                    (c.servers.size() > 1 ? ", from " + served_by : "") + ")";
  keys.reset();  // release the token before running the hook
  RunHook(c, env);
  return outcome;
}

}  // namespace

RequestOutcome Attempt(const RequesterConfig& c, const RequesterEnv& env, bool create_key) {
  RequesterState state = LoadState(c.StateFile());
  state.last_attempt = base::FormatRfc3339(env.now());
  try {
    RequestOutcome outcome = DoRequest(c, env, create_key, state);
    state.last_success = state.last_attempt;
    state.consecutive_failures = 0;
    state.last_error.clear();
    state.last_signer_reason.clear();
    try {
      SaveState(c.StateFile(), state);
    } catch (const Failure& f) {
      Log(env, std::string("cannot save the state file: ") + f.what());
    }
    return outcome;
  } catch (const Failure& f) {
    std::optional<Failure> enriched = WithRunningAs(f);
    const Failure& shown = enriched ? *enriched : f;
    state.consecutive_failures += 1;
    state.last_error = shown.reason() + ": " + shown.what();
    auto* refusal = dynamic_cast<const SignerRefusal*>(&f);
    state.last_signer_reason = refusal != nullptr ? refusal->signer_reason() : "";
    try {
      SaveState(c.StateFile(), state);
    } catch (...) {
    }
    if (enriched) throw *enriched;
    throw;
  }
}

std::string RunningAs() {
  uid_t uid = ::geteuid();
  std::string who = "uid " + std::to_string(uid);
  if (const passwd* pw = ::getpwuid(uid); pw != nullptr && pw->pw_name != nullptr) {
    who = std::string(pw->pw_name) + ", " + who;
  }
  return "running as " + who;
}

std::optional<Failure> WithRunningAs(const Failure& f) {
  // The signer's line is the signer's; ours gets the account only where a permission was refused.
  if (dynamic_cast<const SignerRefusal*>(&f) != nullptr) return std::nullopt;
  std::string message = f.what();
  if (message.find("Permission denied") == std::string::npos || message.find("(running as ") != std::string::npos) {
    return std::nullopt;
  }
  return Failure(f.code(), f.reason(), message + " (" + RunningAs() + ")");
}

StoredCertificate InspectCertificate(const RequesterConfig& c, TimePoint now,
                                     const RenewalSchedule& schedule) {
  StoredCertificate s;
  if (!Exists(c.cert)) return s;
  try {
    pki::X509Ptr cert = pki::ReadCertificateFile(c.cert);
    s.serial = pki::SerialHex(cert.get());
    s.common_name = pki::CommonName(X509_get_subject_name(cert.get()));
    s.not_before = pki::NotBefore(cert.get());
    s.not_after = pki::NotAfter(cert.get());
    s.renew_at = schedule.RenewAt(s.not_before, s.not_after, RenewalSchedule::StableUniform(s.serial));
  } catch (const Failure& f) {
    s.state = CertificateState::kUnreadable;
    s.detail = f.what();
    return s;
  }
  if (s.common_name != c.name) {
    s.state = CertificateState::kUnreadable;
    s.detail = "the stored certificate is for '" + s.common_name + "', not '" + c.name + "'";
  } else if (now >= s.not_after) {
    s.state = CertificateState::kExpired;
  } else if (now >= s.renew_at) {
    s.state = CertificateState::kDue;
  } else {
    s.state = CertificateState::kFresh;
  }
  return s;
}

RequesterState LoadState(const std::string& path) {
  RequesterState state;
  if (!Exists(path)) return state;
  try {
    auto j = nlohmann::json::parse(base::ReadFileLimited(path, 64 * 1024, "state-file"));
    state.last_attempt = j.value("last_attempt", "");
    state.last_success = j.value("last_success", "");
    state.consecutive_failures = j.value("consecutive_failures", 0);
    state.last_error = j.value("last_error", "");
    state.last_signer_reason = j.value("last_signer_reason", "");
    state.served_by = j.value("served_by", "");
    if (j.contains("signer_errors") && j["signer_errors"].is_object()) {
      for (auto& [server, error] : j["signer_errors"].items()) {
        if (error.is_string()) state.signer_errors[server] = error.get<std::string>();
      }
    }
    if (j.contains("signer_pin_backoff") && j["signer_pin_backoff"].is_object()) {
      for (auto& [server, b] : j["signer_pin_backoff"].items()) {
        if (b.is_object()) state.signer_pin_backoff[server] = {b.value("until", ""), b.value("count", 0)};
      }
    }
    if (j.contains("signer_witness") && j["signer_witness"].is_object()) {
      for (auto& [server, w] : j["signer_witness"].items()) {
        if (w.is_object()) state.signer_witness[server] = {w.value("head", ""), w.value("time", ""), w.value("warning", "")};
      }
    }
    if (j.contains("tpm_enrolled") && j["tpm_enrolled"].is_object()) {
      for (auto& [server, time] : j["tpm_enrolled"].items()) {
        if (time.is_string()) state.tpm_enrolled[server] = time.get<std::string>();
      }
    }
  } catch (const std::exception&) {
    // A damaged state file only loses counters; it must never stop a renewal.
  }
  return state;
}

void SaveState(const std::string& path, const RequesterState& s) {
  nlohmann::ordered_json j;
  j["last_attempt"] = s.last_attempt;
  j["last_success"] = s.last_success;
  j["consecutive_failures"] = s.consecutive_failures;
  j["last_error"] = s.last_error;
  j["last_signer_reason"] = s.last_signer_reason;
  j["served_by"] = s.served_by;
  j["signer_errors"] = s.signer_errors;
  nlohmann::ordered_json backoff = nlohmann::ordered_json::object();
  for (const auto& [server, b] : s.signer_pin_backoff) backoff[server] = {{"until", b.until}, {"count", b.count}};
  j["signer_pin_backoff"] = backoff;
  nlohmann::ordered_json witness = nlohmann::ordered_json::object();
  for (const auto& [server, w] : s.signer_witness) {
    witness[server] = {{"head", w.head}, {"time", w.time}};
    if (!w.warning.empty()) witness[server]["warning"] = w.warning;
  }
  j["signer_witness"] = witness;
  j["tpm_enrolled"] = s.tpm_enrolled;
  base::AtomicFileWriter(path, 0644).Write(j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

RequestOutcome Request(const RequesterConfig& c, const RequesterEnv& env) {
  return Attempt(c, env, /*create_key=*/true);
}

RequestOutcome Renew(const RequesterConfig& c, const RequesterEnv& env, bool force) {
  CheckName(c);
  StoredCertificate stored = InspectCertificate(c, env.now());
  if (!force && stored.state == CertificateState::kFresh) {
    RequestOutcome outcome;
    outcome.serial = stored.serial;
    outcome.not_after = stored.not_after;
    outcome.message = "not due: the certificate renews at " + base::FormatRfc3339(stored.renew_at) +
                      " (" + Ago(stored.renew_at, env.now()) + ")";
    return outcome;
  }
  // Renewal reuses the key; only a first `request` creates one. Forced, it is the operator asking
  // now: signers resting after a PIN problem are asked too.
  RequesterEnv now_env = env;
  now_env.ignore_signer_backoff = force;
  return Attempt(c, now_env, /*create_key=*/false);
}

void FetchCa(const RequesterConfig& c, const RequesterEnv& env, const std::string& accept_sha256) {
  std::vector<pki::X509Ptr> fetched;
  RequesterState ignored;
  TrySigners(c, env, ignored, [&](const std::string& server) {
    SshClient ssh(SshOptionsFor(c, server));
    fetched = FetchBundle(ssh);
  });
  std::string pem;
  for (auto& a : fetched) pem += pki::ToPem(a.get());
  if (c.ca_bundle.empty()) {
    if (!accept_sha256.empty()) {
      throw Failure(ExitCode::kUsage, "usage", "--accept-sha256 needs --ca-bundle: the file to store the root in");
    }
    std::fwrite(pem.data(), 1, pem.size(), env.out);
    return;
  }
  // What a signer says never replaces the operator's roots by itself (#24): only a root that the
  // operator names by its fingerprint is stored, alone.
  const bool installed = Exists(c.ca_bundle);
  std::string old_fingerprints = "none";
  if (installed) {
    std::vector<pki::X509Ptr> current = pki::ReadCertificateBundleFile(c.ca_bundle);
    old_fingerprints.clear();
    for (auto& a : current) old_fingerprints += (old_fingerprints.empty() ? "" : ", ") + pki::CertificateSha256(a.get());
  }
  std::string wanted = !accept_sha256.empty() ? accept_sha256 : installed ? "" : c.ca_sha256;
  if (wanted.empty()) {
    std::string new_fingerprints;
    for (auto& a : fetched) new_fingerprints += (new_fingerprints.empty() ? "" : ", ") + pki::CertificateSha256(a.get());
    if (!installed) {
      throw Failure(ExitCode::kConfig, "no-trust-anchor",
                    c.ca_bundle + " does not exist and no root is pinned: the signer offers " + new_fingerprints +
                        "; check the root's fingerprint out of band, then run `etcd-requester ca --accept-sha256 "
                        "SHA256` (or set ca_sha256)");
    }
    if (old_fingerprints == new_fingerprints) {
      std::fprintf(env.out, "%s matches the signer's CA bundle (%s)\n", c.ca_bundle.c_str(), old_fingerprints.c_str());
      return;
    }
    throw Failure(ExitCode::kDataErr, "ca-changed",
                  "the signer's CA bundle differs from " + c.ca_bundle + ": installed " + old_fingerprints +
                      ", the signer's " + new_fingerprints +
                      "; nothing was changed. After checking the new root out of band, replace it with "
                      "`etcd-requester ca --accept-sha256 SHA256`");
  }
  // The named root, then those installed roots that the signer still lists (a rotation's overlap:
  // a signer not yet switched stays verifiable); a root the signer dropped is retired.
  std::string fetched_fingerprints;
  for (auto& a : fetched) fetched_fingerprints += pki::CertificateSha256(a.get()) + " ";
  std::vector<pki::X509Ptr> root = PinnedRoots(std::move(fetched), wanted, "the signer");
  std::string bundle = pki::ToPem(root.front().get());
  std::string kept;
  if (installed) {
    for (auto& a : pki::ReadCertificateBundleFile(c.ca_bundle)) {
      std::string fp = pki::CertificateSha256(a.get());
      if (fp != wanted && fetched_fingerprints.find(fp) != std::string::npos) {
        bundle += pki::ToPem(a.get());
        kept += ", " + fp;
      }
    }
  }
  base::AtomicFileWriter(c.ca_bundle, 0644).Write(bundle);
  std::fprintf(env.out, "%s: roots were %s; now %s%s\n", c.ca_bundle.c_str(), old_fingerprints.c_str(),
               wanted.c_str(), kept.c_str());
  Log(env, "stored the root " + wanted + kept + " in " + c.ca_bundle + " (was: " + old_fingerprints + ")");
}

}  // namespace requester
