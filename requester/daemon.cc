// SPDX-License-Identifier: Apache-2.0
// run: the renewal daemon.
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>

#include "base/deadline.h"
#include "base/duration.h"
#include "base/failure.h"
#include "base/fd.h"
#include "requester/certificate_watch.h"
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

// The longest sleep: hourly while the certificate's directory is watched (a file system where
// inotify misses a change, e.g. NFS, still gets noticed), every minute when it cannot be.
constexpr std::chrono::milliseconds kMaxWaitWatched{3600 * 1000};
constexpr std::chrono::milliseconds kMaxWaitUnwatched{60 * 1000};
// After a change, wait until the directory has been quiet this long before looking: `rm` then
// `cp`, or a writer's close and then a chmod, are one replacement, not a missing certificate.
constexpr std::chrono::milliseconds kSettle{200};

// What ended a wait: a signal, the certificate file changing, or the time (neither).
struct Wakeup {
  int signal = 0;
  bool certificate_changed = false;
};

Wakeup WaitFor(std::chrono::milliseconds wait, int signal_fd, CertificateWatch& watch) {
  using std::chrono::steady_clock;
  const auto until = steady_clock::now() + wait;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - steady_clock::now());
    pollfd fds[2] = {{signal_fd, POLLIN, 0}, {watch.fd(), POLLIN, 0}};
    int n = ::poll(fds, 2, static_cast<int>(std::max<std::int64_t>(left.count(), 0)));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return {};
    if ((fds[0].revents & POLLIN) != 0) {
      signalfd_siginfo info{};
      if (::read(signal_fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        return {.signal = static_cast<int>(info.ssi_signo)};
      }
    }
    if ((fds[1].revents & POLLIN) != 0 && watch.Drain()) {
      // Bounded: a directory that never goes quiet (other files in it) must not hold the daemon.
      pollfd settle{watch.fd(), POLLIN, 0};
      for (int i = 0; i < 25 && watch.active() && ::poll(&settle, 1, static_cast<int>(kSettle.count())) > 0; ++i) {
        watch.Drain();
      }
      return {.certificate_changed = true};
    }
  }
}

// Watches c.cert's directory; says once when that is not possible and how the daemon copes.
std::unique_ptr<CertificateWatch> WatchCertificate(const std::string& cert, const RequesterEnv& env, bool& warned) {
  auto watch = std::make_unique<CertificateWatch>(cert);
  if (!watch->active() && !warned) {
    Log(env, "cannot watch the certificate's directory (" + watch->error() +
                 "); looking at the certificate every minute instead");
  }
  warned = !watch->active();
  return watch;
}

std::string DescribeStored(const StoredCertificate& stored) {
  std::string text = StateName(stored.state);
  if (stored.state == CertificateState::kFresh) {
    text += ", serial " + stored.serial + ", expires " + base::FormatRfc3339(stored.not_after) + ", renewing at " +
            base::FormatRfc3339(stored.renew_at);
  }
  return text;
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
  base::UniqueFd signal_fd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (signal_fd.get() < 0) {
    throw Failure(base::ExitCode::kSoftware, "internal", std::string("signalfd: ") + std::strerror(errno));
  }
  // The forwarder's OpenSSL writes to etcd with write(): a reset connection must be an error, not
  // SIGPIPE ending the daemon (the hook's child gets every signal's default back, hook.cc).
  if (forwarding) ::signal(SIGPIPE, SIG_IGN);
  Backoff backoff(seconds(1), seconds(300), env.uniform01);
  Log(env, "running for " + c.name + " (certificate " + c.cert + ")");
  bool watch_warned = false;
  std::unique_ptr<CertificateWatch> watch = WatchCertificate(c.cert, env, watch_warned);
  bool certificate_changed = false;
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
    if (!watch->active()) watch = WatchCertificate(c.cert, env, watch_warned);
    StoredCertificate stored = InspectCertificate(c, env.now());
    if (certificate_changed) {
      // Someone else replaced it (renew --force, certmonger, an operator's copy): from now on its
      // schedule counts, whatever the old certificate's was.
      Log(env, "certificate " + c.cert + " changed on disk: " + DescribeStored(stored));
      certificate_changed = false;
    }
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
      wait = std::clamp(wait, std::chrono::milliseconds(1000), watch->active() ? kMaxWaitWatched : kMaxWaitUnwatched);
    } else {
      try {
        // A wedged token or connection must not wedge the daemon: bound each attempt.
        base::Deadline deadline(c.connect_timeout + c.io_timeout + seconds(60), [&] {
          Log(env, "deadline: an attempt took too long; exiting so that systemd restarts us");
          return true;
        });
        RequestOutcome outcome = Attempt(c, env, /*create_key=*/stored.state == CertificateState::kMissing);
        Log(env, "renewed: " + outcome.message);
        watch->Drain();  // our own rename onto the certificate is not someone else's change
        backoff.Reset();
        continue;
      } catch (const Failure& f) {
        if (IsLocalPinFailure(f)) {
          // Never retry a PIN our token refused: TPMs and HSMs lock the user PIN after a few wrong
          // logins. A signer's PIN problem never stops us (#24): that signer rests (TrySigners)
          // while the others are still asked.
          Log(env, f.reason() + ": " + f.what() + "; stopping: this host's token refused our PIN, and trying "
                       "again would lock the token's user PIN; fix the PIN, then restart etcd-requester");
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
    Wakeup wakeup = WaitFor(wait, signal_fd.get(), *watch);
    certificate_changed = wakeup.certificate_changed;
    int sig = wakeup.signal;
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
        bool new_path = fresh.cert != c.cert;
        c = fresh;
        if (new_path) watch = WatchCertificate(c.cert, env, watch_warned);
        Log(env, "configuration reloaded");
      } catch (const Failure& f) {
        Log(env, std::string("reload failed, keeping the old configuration: ") + f.what());
      }
    }
  }
}

}  // namespace requester
