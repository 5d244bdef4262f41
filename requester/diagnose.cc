// SPDX-License-Identifier: Apache-2.0
// diagnose: the runbook's checks, one line each, every signer in this master's order. The walk is
// kWalk below: each check one function, in the order the lines are printed.
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>

#include "base/failure.h"
#include "base/fd.h"
#include "base/files.h"
#include "base/text.h"
#include "pki/base64.h"
#include "pki/certificate_profile.h"
#include "pki/crl.h"
#include "pki/csr.h"
#include "pki/key.h"
#include "pki/verify.h"
#include "requester/attestation.h"
#include "requester/exchange.h"
#include "requester/key_store.h"
#include "requester/renewal.h"
#include "requester/requester.h"
#include "requester/token_agent.h"

namespace requester {
namespace {

using base::Failure;
using std::chrono::seconds;

// The lines of a diagnosis: "ok", "FAIL" (with how to fix it) or "skip" (cannot be checked, with
// why); any FAIL fails the whole diagnosis.
class Report {
 public:
  explicit Report(std::FILE* out) : out_(out) {}

  bool Line(bool ok, const std::string& check, const std::string& detail, const std::string& fix = "") {
    std::string text = std::string(ok ? "ok   " : "FAIL ") + Padded(check) + detail + "\n";
    if (!ok && !fix.empty()) text += "     fix: " + fix + "\n";
    Write(text);
    all_ok_ = all_ok_ && ok;
    return ok;
  }

  // A check that cannot be made, with the reason: neither passes nor fails.
  void Skip(const std::string& check, const std::string& detail) { Write("skip " + Padded(check) + detail + "\n"); }

  bool all_ok() const { return all_ok_; }

 private:
  static std::string Padded(const std::string& check) {
    return check + std::string(check.size() < 14 ? 14 - check.size() : 1, ' ');
  }
  void Write(const std::string& text) {
    std::fwrite(text.data(), 1, text.size(), out_);
    std::fflush(out_);
  }

  std::FILE* out_;
  bool all_ok_ = true;
};

struct Diagnosis {
  const RequesterConfig& c;
  const RequesterEnv& env;
  Report report;
  std::unique_ptr<KeyStore> keys;  // CheckKey: the key, when it opens (closed again with a token SSH key)
  pki::EvpPkeyPtr public_key;      // CheckKey: its public half, which outlives `keys`
  std::string csr_body;            // CheckKey: a CSR of it, for the signers' `check` (#28)
};

// --- One signer: server → tcp → ssh → signer, identity, clock --------------------------------

struct SignerCheck {
  Diagnosis& d;
  std::string at;  // "USER@HOST: " when there are several signers
};

std::optional<SshOptions> CheckServer(SignerCheck& s, const std::string& server) {
  try {
    return SshOptionsFor(s.d.c, server);
  } catch (const Failure& f) {
    s.d.report.Line(false, "server", s.at + f.what(), "set --server USER@HOST[:PORT]");
    return std::nullopt;
  }
}

// Plain TCP first: tells "network/firewall" apart from "SSH" problems.
bool CheckTcp(SignerCheck& s, const SshOptions& options) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(options.server.port);
  std::string detail;
  bool tcp_ok = false;
  if (getaddrinfo(options.server.host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) {
    detail = "cannot resolve " + options.server.host;
  } else {
    base::UniqueFd fd(::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    ::connect(fd.get(), res->ai_addr, res->ai_addrlen);
    pollfd p{fd.get(), POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof err;
    if (::poll(&p, 1, static_cast<int>(s.d.c.connect_timeout.count() * 1000)) == 1 &&
        ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
      tcp_ok = true;
      detail = options.server.host + ":" + port + " accepts TCP connections";
    } else {
      detail = "cannot connect to " + options.server.host + ":" + port + ": " + (err != 0 ? std::strerror(err) : "timed out");
    }
    freeaddrinfo(res);
  }
  return s.d.report.Line(tcp_ok, "tcp", s.at + detail,
                         "check the signer host is up, sshd listens on that port, and firewalls allow it");
}

void CheckSsh(SignerCheck& s, const SshOptions& options, std::optional<SshClient>& ssh) {
  try {
    ssh.emplace(options);
    s.d.report.Line(true, "ssh", s.at + "host key matches " + s.d.c.known_hosts + " and the signer accepted our key");
  } catch (const Failure& f) {
    s.d.report.Line(false, "ssh", s.at + f.what(),
                    f.reason() == "auth-failed" ? "add this host's SSH public key to the signer's authorized_keys "
                                                  "with the forced command"
                                                : "fix known_hosts or the SSH key as the message says");
  }
}

std::string AllowIdentityFix(const std::string& name) {
  return "once this master is trusted again, on every signer host: etcd-signerctl allow-identity " + name +
         " (operator-guide.md §8)";
}

// What to do about the reason `sign` would refuse with.
std::string IssuingFix(const std::string& reason, const std::string& name) {
  if (reason == "identity-denied") return AllowIdentityFix(name);
  if (reason == "key-denied") {
    return "this key was denied on the signer (a compromised key): rebuild the master's key (operator-guide.md §8) "
           "and have the new one approved";
  }
  if (reason == "pending-approval") return "an operator approves the key on the signer host with the command above";
  // Attestation (#27).
  if (reason == "ak-not-enrolled") return "run 'etcd-requester request': it enrolls this TPM with that signer first";
  if (reason == "attestation-required") {
    return "this signer needs a TPM-attested key: set tpm_key and attestation = true (etcd-requester(8), ATTESTATION)";
  }
  if (reason == "key-not-fixed") return "the key can leave its TPM: remove the tpm_key file and run 'request' for a new key";
  if (reason == "enrollment-exists") {
    return "the signer has another TPM enrolled for this name: an operator runs etcd-signerctl enrollment remove " + name;
  }
  return "troubleshooting.md, reason '" + base::Printable(reason, 40) + "'";
}

// Would the signer issue to this name and this key now (#28)? `check` runs sign's decisions on a
// CSR of our current key — policy, roles, deny and approval lists — and issues nothing. False
// when the signer is older than `check` (64 unknown-verb): `info` is all there is then.
bool AskCheck(SignerCheck& s, SshClient& ssh) {
  const std::string& name = s.d.c.name;
  try {
    ExecResult r = ssh.Exec(RequestWords(s.d.c, "check"), s.d.csr_body);
    if (r.exit_status == 0) {
      nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
      bool would = j.is_object() && j.contains("would_issue") && j["would_issue"].is_boolean() &&
                   j["would_issue"].get<bool>();
      s.d.report.Line(would, "issuing",
                      s.at + (would ? "the signer would issue to '" + name + "' for this key"
                                    : "the signer's answer to check is not one it sends: " +
                                          base::Printable(r.out, kMaxSignerLine)),
                      "check the forced command in authorized_keys runs etcd-signer");
      return true;
    }
    SignerFailed(r);
  } catch (const SignerRefusal& f) {
    if (f.signer_reason() == "unknown-verb") return false;
    std::string detail = f.signer_reason() == "identity-denied"
                             ? "the signer denies '" + name + "' (denied_identities): it issues no certificate for it"
                             : "the signer would refuse this key: " + std::string(f.what());
    s.d.report.Line(false, "issuing", s.at + detail, IssuingFix(f.signer_reason(), name));
  } catch (const std::exception& e) {
    s.d.report.Line(false, "issuing", s.at + base::Printable(e.what(), kMaxSignerLine),
                    "check the forced command in authorized_keys runs etcd-signer");
  }
  return true;
}

// The signer's `info` names the identity its forced command binds this SSH key to; a request for
// another name would be refused identity-mismatch. Without --identity there is nothing to compare:
// the signer's name policy alone decides, so say so ("skip").
// Would the signer issue to this name now? With our key at hand the signer's `check` says; else
// its `info` says whether the name is on its deny list (#28): a denied master must not see all
// green while every renewal is refused identity-denied.
void CheckIssuing(SignerCheck& s, SshClient& ssh, const nlohmann::json& info) {
  const std::string& name = s.d.c.name;
  if (!s.d.csr_body.empty() && AskCheck(s, ssh)) return;
  if (info.contains("identity_denied_error")) {
    s.d.report.Line(false, "issuing", s.at + "the signer cannot read its denied_identities list, so it issues nothing",
                    "on the signer host: fix the file signer.toml names (etcd-signer(8): owner, mode, format)");
  } else if (info.contains("identity_denied") && info["identity_denied"].is_boolean()) {
    bool denied = info["identity_denied"].get<bool>();
    s.d.report.Line(!denied, "issuing",
                    s.at + (denied ? "the signer denies '" + name + "' (denied_identities): it issues no certificate for it"
                                   : "the signer would issue to '" + name + "' (not in denied_identities)"),
                    AllowIdentityFix(name));
  }
}

void CheckIdentity(SignerCheck& s, SshClient& ssh, const nlohmann::json& info) {
  const std::string& name = s.d.c.name;
  if (!info.contains("identity") || !info["identity"].is_string()) {
    s.d.report.Skip("identity", s.at + "the signer's forced command has no --identity: this SSH key may ask for any "
                                       "name its policy allows; bind it (--identity " + name + ") on the signer");
    CheckIssuing(s, ssh, info);
    return;
  }
  std::string bound = base::Printable(info["identity"].get<std::string>(), 128);
  if (!s.d.report.Line(bound == name, "identity",
                       s.at + (bound == name ? "this SSH key is bound to '" + name + "' (the forced command's --identity)"
                                             : "this SSH key is bound to '" + bound + "', not '" + name + "'"),
                       "use the right --name or ask the operator to fix the forced command's --identity")) {
    return;
  }
  CheckIssuing(s, ssh, info);
}

void CheckClock(SignerCheck& s, const nlohmann::json& info, TimePoint sent, TimePoint received) {
  TimePoint signer_time = base::ParseRfc3339(info.value("time", std::string()));
  auto skew = ClockSkew(sent, received, signer_time);
  bool skew_ok = std::chrono::abs(skew) <= s.d.c.skew_tolerance;
  s.d.report.Line(skew_ok, "clock",
                  s.at + "this host is " + DescribeSkew(skew) + " the signer (tolerance " +
                      base::FormatDuration(s.d.c.skew_tolerance) + ")",
                  "synchronize time (chrony/systemd-timesyncd) on this host and the signer");
}

// `info` over the SSH session: the signer's version and limits, then what they tell.
void CheckSignerInfo(SignerCheck& s, SshClient& ssh) {
  try {
    TimePoint sent = s.d.env.now();
    ExecResult r = ssh.Exec("info", "");
    TimePoint received = s.d.env.now();
    if (r.exit_status != 0) SignerFailed(r);
    auto j = nlohmann::json::parse(r.out);
    s.d.report.Line(true, "signer",
                    s.at + "etcd-signer " + base::Printable(j.value("version", std::string("?")), 64) + ", lifetime " +
                        base::FormatDuration(seconds(j.value("lifetime_min", 0))) + " to " +
                        base::FormatDuration(seconds(j.value("lifetime_max", 0))));
    CheckIdentity(s, ssh, j);
    CheckClock(s, j, sent, received);
  } catch (const std::exception& e) {
    // The text may quote the signer's bytes (a JSON parse error shows what it read).
    s.d.report.Line(false, "signer", s.at + base::Printable(e.what(), kMaxSignerLine),
                    "check the forced command in authorized_keys runs etcd-signer");
  }
}

void CheckSigner(Diagnosis& d, const std::string& server) {
  SignerCheck s{d, d.c.servers.size() > 1 ? server + ": " : ""};
  std::optional<SshOptions> options = CheckServer(s, server);
  if (!options || !CheckTcp(s, *options)) return;
  std::optional<SshClient> ssh;
  CheckSsh(s, *options, ssh);
  if (ssh) CheckSignerInfo(s, *ssh);
}

// --- The certificate: present and valid → our key → chains to the CA bundle ------------------

void CheckKeyMatch(Diagnosis& d) {
  pki::X509Ptr cert = pki::ReadCertificateFile(d.c.cert);
  bool match = pki::SamePublicKey(X509_get0_pubkey(cert.get()), d.public_key.get());
  d.report.Line(match, "key-match", match ? "the certificate belongs to our key" : "the certificate is for another key",
                "run 'etcd-requester renew --force' to get a certificate for the current key");
}

void CheckCaBundle(Diagnosis& d, const StoredCertificate& stored) {
  try {
    auto anchors = pki::ReadCertificateBundleFile(d.c.ca_bundle);
    std::vector<X509*> raw;
    for (auto& a : anchors) raw.push_back(a.get());
    std::vector<pki::X509Ptr> stored_certs = pki::ReadCertificateBundleFile(d.c.cert);  // leaf, then chain
    std::vector<X509*> chain;
    for (std::size_t i = 1; i < stored_certs.size(); ++i) chain.push_back(stored_certs[i].get());
    // Trust only: validity and clock have their own lines, so check at a time inside it.
    TimePoint when = std::clamp(d.env.now(), stored.not_before, stored.not_after - seconds(1));
    std::string error = pki::VerifyChain(stored_certs.front().get(), raw, when, nullptr, chain,
                                         pki::ProfilePurpose(d.c.profile));
    d.report.Line(error.empty(), "ca-bundle", error.empty() ? "the certificate chains to " + d.c.ca_bundle : error,
                  "run 'etcd-requester ca' to refresh the bundle after a CA rotation");
  } catch (const Failure& f) {
    d.report.Line(false, "ca-bundle", f.what(), "run 'etcd-requester ca'");
  }
}

// etcd's view of what this master sends (#28): etcd refuses the handshake when the serial of the
// leaf or of any certificate of the chain after it is in its --client-crl-file, whatever issued the
// CRL (operator-guide.md §8). crl_file names that file; the comparison is etcd's: serials only.
void CheckRevocation(Diagnosis& d) {
  try {
    pki::X509CrlPtr crl = pki::ParseCrlPem(base::ReadFileLimited(d.c.crl_file, 16 << 20), d.c.crl_file);
    std::vector<pki::CrlEntry> entries = pki::CrlEntries(crl.get());
    std::vector<pki::X509Ptr> sent = pki::ReadCertificateBundleFile(d.c.cert);  // leaf, then chain
    for (std::size_t i = 0; i < sent.size(); ++i) {
      pki::SerialBytes serial = pki::ParseSerial(pki::SerialHex(sent[i].get()));
      bool listed = std::any_of(entries.begin(), entries.end(), [&](const pki::CrlEntry& e) { return e.serial == serial; });
      if (!listed) continue;
      std::string text = pki::SerialText(serial);
      if (i == 0) {
        d.report.Line(false, "revocation",
                      "the certificate's serial " + text + " is revoked in " + d.c.crl_file + ": etcd refuses this master",
                      "a compromised master is rebuilt with a new key and its name allowed again (operator-guide.md "
                      "§8); if only this certificate was revoked, 'etcd-requester renew --force' gets a new serial");
      } else {
        d.report.Line(false, "revocation",
                      "the intermediate '" + pki::NameToString(X509_get_subject_name(sent[i].get())) + "' (serial " +
                          text + ") sent with the certificate is revoked in " + d.c.crl_file + ": etcd refuses it",
                      "take its signer host out of 'server' and run 'etcd-requester renew --force' (operator-guide.md §8)");
      }
      return;
    }
    d.report.Line(true, "revocation",
                  "serial " + pki::SerialText(pki::ParseSerial(pki::SerialHex(sent.front().get()))) + " is not in " +
                      d.c.crl_file + " (" + std::to_string(entries.size()) + " entries)");
  } catch (const Failure& f) {
    d.report.Line(false, "revocation", f.what() + std::string(" (etcd refuses every client with such a file)"),
                  "crl_file must name the file etcd's --client-crl-file names: one PEM CRL (openssl crl -in FILE -noout)");
  }
}

// --- The walk -----------------------------------------------------------------------------------

void CheckMasterName(Diagnosis& d) {
  try {
    CheckName(d.c);
    d.report.Line(true, "name", "'" + d.c.name + "' is a valid " +
                                    (pki::IsMemberProfile(d.c.profile) ? "etcd member" : "master") + " name");
  } catch (const Failure& f) {
    d.report.Line(false, "name", f.what(), "use the node's name in the form kubemaster-<id>, e.g. kubemaster-1");
  }
}

// Every signer is checked, in the order this master tries them (#12).
void CheckSigners(Diagnosis& d) {
  for (const std::string& server : ServerOrder(d.c)) CheckSigner(d, server);
}

// With attestation (#27): the TPM certifies the key for the CSR `check` sends, and holds an EK
// certificate to enroll with. Whether each signer has this TPM enrolled is `check`'s answer.
void CheckAttestationEvidence(Diagnosis& d, const std::vector<unsigned char>& der) {
  try {
    Tpm& tpm = AttestingTpm(*d.keys);
    d.csr_body = AttestedBody(tpm, der, d.csr_body);
    pki::Bytes ek = tpm.EkCertificate();
    d.report.Line(true, "attestation",
                  "the TPM certifies this key, and holds an EK certificate (" + std::to_string(ek.size()) +
                      " bytes) to enroll with");
  } catch (const Failure& f) {
    d.report.Line(false, "attestation", f.what(),
                  "the TPM must hold an RSA EK certificate at NV 0x01c00002 (etcd-requester(8), ATTESTATION)");
  }
}

void CheckKey(Diagnosis& d) {
  try {
    d.keys = MakeKeyStore(d.c);
    d.keys->Open(false);
    d.public_key = pki::CanonicalPublicKey(d.keys->public_key());
    pki::X509ReqPtr csr = pki::BuildCsr(d.c.name, d.keys->private_key());
    std::vector<unsigned char> der = pki::ToDer(csr.get());
    d.csr_body = pki::EncodeBase64(der.data(), der.size(), 76);
    d.report.Line(true, "key", d.keys->Describe() + " is present");
    if (d.c.attestation) CheckAttestationEvidence(d, der);
    // An SSH key in a token authenticates only while no other module is loaded (one C_Initialize
    // per process, as in `request`): the key is put away before the signers are asked.
    if (IsTokenKey(d.c.ssh_key)) d.keys.reset();
  } catch (const Failure& f) {
    d.keys.reset();
    d.public_key.reset();
    d.csr_body.clear();
    std::optional<Failure> enriched = WithRunningAs(f);
    d.report.Line(false, "key", (enriched ? *enriched : f).what(),
                  "run 'etcd-requester request' to create the key (or fix the PIN/token, or the files' owner)");
  }
}

void CheckCertificate(Diagnosis& d) {
  StoredCertificate stored = InspectCertificate(d.c, d.env.now());
  if (stored.state == CertificateState::kMissing || stored.state == CertificateState::kUnreadable) {
    d.report.Line(false, "certificate", d.c.cert + ": " + (stored.detail.empty() ? "missing" : stored.detail),
                  "run 'etcd-requester request'");
    return;
  }
  bool valid = stored.state != CertificateState::kExpired;
  d.report.Line(valid, "certificate",
                valid ? "valid until " + base::FormatRfc3339(stored.not_after)
                      : "expired at " + base::FormatRfc3339(stored.not_after),
                "run 'etcd-requester renew --force' (an expired certificate is simply requested again)");
  if (d.public_key) CheckKeyMatch(d);
  if (!d.c.ca_bundle.empty()) CheckCaBundle(d, stored);
  if (!d.c.crl_file.empty()) CheckRevocation(d);
}

using Check = void (*)(Diagnosis&);
// The key before the signers: their `check` is asked with a CSR of it (#28).
constexpr Check kWalk[] = {CheckMasterName, CheckKey, CheckSigners, CheckCertificate};

}  // namespace

bool Diagnose(const RequesterConfig& c, const RequesterEnv& env) {
  Diagnosis d{c, env, Report(env.out), nullptr, nullptr, ""};
  for (Check check : kWalk) check(d);
  return d.report.all_ok();
}

}  // namespace requester
