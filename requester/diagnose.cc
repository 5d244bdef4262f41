// SPDX-License-Identifier: Apache-2.0
// diagnose: the runbook's checks, one line each, every signer in this master's order.
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>

#include "base/failure.h"
#include "base/text.h"
#include "pki/verify.h"
#include "requester/exchange.h"
#include "requester/key_store.h"
#include "requester/requester.h"

namespace requester {

using base::Failure;
using std::chrono::seconds;

bool Diagnose(const RequesterConfig& c, const RequesterEnv& env) {
  bool all = true;
  auto line = [&](bool ok, const std::string& check, const std::string& detail, const std::string& fix = "") {
    std::string text = std::string(ok ? "ok   " : "FAIL ") + check +
                       std::string(check.size() < 14 ? 14 - check.size() : 1, ' ') + detail + "\n";
    if (!ok && !fix.empty()) text += "     fix: " + fix + "\n";
    std::fwrite(text.data(), 1, text.size(), env.out);
    std::fflush(env.out);
    all = all && ok;
    return ok;
  };
  // A check that cannot be made, with the reason: neither passes nor fails.
  auto skip = [&](const std::string& check, const std::string& detail) {
    std::string text = "skip " + check + std::string(check.size() < 14 ? 14 - check.size() : 1, ' ') + detail + "\n";
    std::fwrite(text.data(), 1, text.size(), env.out);
    std::fflush(env.out);
  };
  try {
    CheckName(c);
    line(true, "name", "'" + c.name + "' is a valid master name");
  } catch (const Failure& f) {
    line(false, "name", f.what(), "use the node's name in the form kubemaster-<id>, e.g. kubemaster-1");
  }
  // Every signer is checked, in the order this master tries them (#12).
  for (const std::string& server : ServerOrder(c)) {
  const std::string at = c.servers.size() > 1 ? server + ": " : "";
    std::optional<SshOptions> options;
    try {
      options = SshOptionsFor(c, server);
    } catch (const Failure& f) {
      line(false, "server", at + f.what(), "set --server USER@HOST[:PORT]");
    }
    bool tcp_ok = false;
    if (options) {
      // Plain TCP first: tells "network/firewall" apart from "SSH" problems.
      addrinfo hints{};
      hints.ai_socktype = SOCK_STREAM;
      addrinfo* res = nullptr;
      std::string port = std::to_string(options->server.port);
      std::string detail;
      if (getaddrinfo(options->server.host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) {
        detail = "cannot resolve " + options->server.host;
      } else {
        int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        ::connect(fd, res->ai_addr, res->ai_addrlen);
        pollfd p{fd, POLLOUT, 0};
        int err = 0;
        socklen_t len = sizeof err;
        if (::poll(&p, 1, static_cast<int>(c.connect_timeout.count() * 1000)) == 1 &&
            ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
          tcp_ok = true;
          detail = options->server.host + ":" + port + " accepts TCP connections";
        } else {
          detail = "cannot connect to " + options->server.host + ":" + port + ": " +
                   (err != 0 ? std::strerror(err) : "timed out");
        }
        ::close(fd);
        freeaddrinfo(res);
      }
      line(tcp_ok, "tcp", at + detail, "check the signer host is up, sshd listens on that port, and firewalls allow it");
    }
    std::optional<SshClient> ssh;
    if (tcp_ok) {
      try {
        ssh.emplace(*options);
        line(true, "ssh", at + "host key matches " + c.known_hosts + " and the signer accepted our key");
      } catch (const Failure& f) {
        line(false, "ssh", at + f.what(),
             f.reason() == "auth-failed" ? "add this host's SSH public key to the signer's authorized_keys "
                                           "with the forced command"
                                         : "fix known_hosts or the SSH key as the message says");
      }
    }
    if (ssh) {
      try {
        TimePoint sent = env.now();
        ExecResult r = ssh->Exec("info", "");
        TimePoint received = env.now();
        if (r.exit_status != 0) SignerFailed(r);
        auto j = nlohmann::json::parse(r.out);
        line(true, "signer", at + "etcd-signer " + base::Printable(j.value("version", std::string("?")), 64) + ", lifetime " +
                                 base::FormatDuration(seconds(j.value("lifetime_min", 0))) + " to " +
                                 base::FormatDuration(seconds(j.value("lifetime_max", 0))));
        // The signer's `info` names the identity its forced command binds this SSH key to; a
        // request for another name would be refused identity-mismatch. Without --identity there
        // is nothing to compare: the signer's name policy alone decides, so say so ("skip").
        if (j.contains("identity") && j["identity"].is_string()) {
          std::string bound = base::Printable(j["identity"].get<std::string>(), 128);
          line(bound == c.name, "identity",
               at + (bound == c.name ? "this SSH key is bound to '" + c.name + "' (the forced command's --identity)"
                                     : "this SSH key is bound to '" + bound + "', not '" + c.name + "'"),
               "use the right --name or ask the operator to fix the forced command's --identity");
        } else {
          skip("identity", at + "the signer's forced command has no --identity: this SSH key may ask for any "
                                "name its policy allows; bind it (--identity " + c.name + ") on the signer");
        }
        TimePoint signer_time = base::ParseRfc3339(j.value("time", std::string()));
        auto skew = ClockSkew(sent, received, signer_time);
        bool skew_ok = std::chrono::abs(skew) <= c.skew_tolerance;
        line(skew_ok, "clock",
             at + "this host is " + DescribeSkew(skew) + " the signer (tolerance " +
                 base::FormatDuration(c.skew_tolerance) + ")",
             "synchronize time (chrony/systemd-timesyncd) on this host and the signer");
      } catch (const std::exception& e) {
        // The text may quote the signer's bytes (a JSON parse error shows what it read).
        line(false, "signer", at + base::Printable(e.what(), kMaxSignerLine), "check the forced command in authorized_keys runs etcd-signer");
      }
    }
  }
  std::unique_ptr<KeyStore> keys;
  try {
    keys = MakeKeyStore(c);
    keys->Open(false);
    line(true, "key", keys->Describe() + " is present");
  } catch (const Failure& f) {
    keys.reset();
    std::optional<Failure> enriched = WithRunningAs(f);
    line(false, "key", (enriched ? *enriched : f).what(),
         "run 'etcd-requester request' to create the key (or fix the PIN/token, or the files' owner)");
  }
  StoredCertificate stored = InspectCertificate(c, env.now());
  if (stored.state == CertificateState::kMissing || stored.state == CertificateState::kUnreadable) {
    line(false, "certificate", c.cert + ": " + (stored.detail.empty() ? "missing" : stored.detail),
         "run 'etcd-requester request'");
  } else {
    bool valid = stored.state != CertificateState::kExpired;
    line(valid, "certificate",
         valid ? "valid until " + base::FormatRfc3339(stored.not_after) : "expired at " + base::FormatRfc3339(stored.not_after),
         "run 'etcd-requester renew --force' (an expired certificate is simply requested again)");
    if (keys) {
      pki::X509Ptr cert = pki::ReadCertificateFile(c.cert);
      bool match = pki::SamePublicKey(X509_get0_pubkey(cert.get()), keys->public_key());
      line(match, "key-match", match ? "the certificate belongs to our key" : "the certificate is for another key",
           "run 'etcd-requester renew --force' to get a certificate for the current key");
    }
    if (!c.ca_bundle.empty()) {
      try {
        auto anchors = pki::ReadCertificateBundleFile(c.ca_bundle);
        std::vector<X509*> raw;
        for (auto& a : anchors) raw.push_back(a.get());
        std::vector<pki::X509Ptr> stored_certs = pki::ReadCertificateBundleFile(c.cert);  // leaf, then chain
        std::vector<X509*> chain;
        for (std::size_t i = 1; i < stored_certs.size(); ++i) chain.push_back(stored_certs[i].get());
        // Trust only: validity and clock have their own lines, so check at a time inside it.
        TimePoint when = std::clamp(env.now(), stored.not_before, stored.not_after - seconds(1));
        std::string error = pki::VerifyChain(stored_certs.front().get(), raw, when, nullptr, chain);
        line(error.empty(), "ca-bundle", error.empty() ? "the certificate chains to " + c.ca_bundle : error,
             "run 'etcd-requester ca' to refresh the bundle after a CA rotation");
      } catch (const Failure& f) {
        line(false, "ca-bundle", f.what(), "run 'etcd-requester ca'");
      }
    }
  }
  return all;
}

}  // namespace requester
