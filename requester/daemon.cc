// SPDX-License-Identifier: Apache-2.0
// run: the renewal daemon.
#include <signal.h>

#include <algorithm>

#include "base/deadline.h"
#include "base/failure.h"
#include "requester/exchange.h"
#include "requester/forward.h"
#include "requester/key_store.h"
#include "requester/token_agent.h"
#include "requester/requester.h"

namespace requester {

using base::Failure;
using std::chrono::seconds;

namespace {

bool SameForwarding(const ForwardConfig& a, const ForwardConfig& b) {
  return a.listen == b.listen && a.endpoints == b.endpoints && a.etcd_ca == b.etcd_ca &&
         a.listen_group == b.listen_group && a.listen_mode == b.listen_mode && a.max_connections == b.max_connections;
}

}  // namespace

int RunDaemon(RequesterConfig c, const std::function<RequesterConfig()>& reload, const RequesterEnv& outer_env) {
  RequesterEnv env = outer_env;
  // With forward_listen the daemon also forwards (#18): the key is opened once, here, and shared.
  const bool forwarding = !c.forward.listen.empty();
  std::unique_ptr<KeyStore> shared_key;
  TokenGate gate;
  std::unique_ptr<Forwarder> forwarder;
  if (forwarding) {
    ValidateForwardConfig(c);
    if (!c.key_uri.empty() && IsTokenKey(c.ssh_key)) {
      throw Failure(base::ExitCode::kConfig, "bad-config",
                    "forward_listen in run needs the SSH key in a file: the token stays open for the forwarder, and "
                    "an SSH key in a token would load the module a second time; run `etcd-requester forward` as a "
                    "service of its own instead");
    }
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // The forwarder's OpenSSL writes to etcd with write(): a reset connection must be an error, not
  // SIGPIPE ending the daemon (the hook's child gets every signal's default back, hook.cc).
  if (forwarding) ::signal(SIGPIPE, SIG_IGN);
  Backoff backoff(seconds(1), seconds(300), env.uniform01);
  Log(env, "running for " + c.name + " (certificate " + c.cert + ")");
  if (forwarding) {
    try {
      shared_key = MakeKeyStore(c);
      if (shared_key->Open(/*create=*/true)) Log(env, "generated a new EC P-256 key in " + shared_key->Describe());
    } catch (const Failure& f) {
      Log(env, f.reason() + ": " + f.what() + "; stopping: the forwarder needs the key");
      return static_cast<int>(f.code());
    }
    env.shared_key = shared_key.get();
    env.key_gate = &gate;
  }
  for (;;) {
    std::chrono::milliseconds wait{0};
    StoredCertificate stored = InspectCertificate(c, env.now());
    if (forwarding && !forwarder && stored.state != CertificateState::kMissing &&
        stored.state != CertificateState::kUnreadable) {
      // The forwarder starts with the first stored certificate and picks up every renewal itself.
      try {
        forwarder = std::make_unique<Forwarder>(c, shared_key->private_key(), gate, env);
        forwarder->Start();
        Log(env, "forwarding " + forwarder->Describe());
      } catch (const Failure& f) {
        Log(env, f.reason() + ": " + f.what() + "; stopping: the forwarder cannot start");
        return static_cast<int>(f.code());
      }
    }
    if (stored.state == CertificateState::kFresh) {
      wait = std::chrono::duration_cast<std::chrono::milliseconds>(stored.renew_at - env.now());
      // Wake at least hourly: someone may have removed or replaced the certificate.
      wait = std::clamp(wait, std::chrono::milliseconds(1000), std::chrono::milliseconds(3600 * 1000));
    } else {
      try {
        // A wedged token or connection must not wedge the daemon: bound each attempt.
        base::Deadline deadline(c.connect_timeout + c.io_timeout + seconds(60), [&] {
          Log(env, "deadline: an attempt took too long; exiting so that systemd restarts us");
          return true;
        });
        RequestOutcome outcome = Attempt(c, env, /*create_key=*/stored.state == CertificateState::kMissing);
        Log(env, "renewed: " + outcome.message);
        backoff.Reset();
        continue;
      } catch (const Failure& f) {
        if (IsPinFailure(f)) {
          // Never retry a refused PIN: TPMs and HSMs lock the user PIN after a few wrong logins, and
          // the signer's token is shared by every master (N daemons retrying lock it in minutes).
          auto* refusal = dynamic_cast<const SignerRefusal*>(&f);
          std::string whose = refusal != nullptr ? "the signer's token refused its PIN" : "this host's token refused our PIN";
          Log(env, f.reason() + ": " + f.what() + "; stopping: " + whose +
                       ", and trying again would lock the token's user PIN; fix the PIN, then restart etcd-requester");
          return static_cast<int>(f.code());
        }
        wait = backoff.Next();
        Log(env, f.reason() + ": " + f.what() + "; retrying in " +
                     base::FormatDuration(std::chrono::duration_cast<seconds>(wait)) + " (attempt " +
                     std::to_string(backoff.failures()) + ")");
      }
    }
    if (!c.prometheus_file.empty()) {
      try {
        base::AtomicFileWriter(c.prometheus_file, 0644).Write(RenderStatus(c, env.now(), StatusFormat::kPrometheus));
      } catch (const Failure& f) {
        Log(env, std::string("cannot write metrics: ") + f.what());
      }
    }
    timespec ts{static_cast<time_t>(wait.count() / 1000), static_cast<long>((wait.count() % 1000) * 1000000)};
    int sig = sigtimedwait(&set, nullptr, &ts);
    if (sig == SIGTERM || sig == SIGINT) {
      Log(env, "stopping on signal " + std::to_string(sig));
      return 0;
    }
    if (sig == SIGHUP) {
      try {
        RequesterConfig fresh = reload();
        if (forwarding && (!SameForwarding(fresh.forward, c.forward) || fresh.key_uri != c.key_uri ||
                           fresh.key_file != c.key_file || fresh.cert != c.cert)) {
          Log(env, "reload: the forwarder's settings, key and certificate path change only with a restart; "
                   "keeping them");
          fresh.forward = c.forward;
          fresh.key_uri = c.key_uri;
          fresh.key_file = c.key_file;
          fresh.module = c.module;
          fresh.pin = c.pin;
          fresh.cert = c.cert;
        }
        c = fresh;
        Log(env, "configuration reloaded");
      } catch (const Failure& f) {
        Log(env, std::string("reload failed, keeping the old configuration: ") + f.what());
      }
    }
  }
}

}  // namespace requester
