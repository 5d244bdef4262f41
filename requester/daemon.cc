// run: the renewal daemon.
#include <signal.h>

#include <algorithm>

#include "base/deadline.h"
#include "base/failure.h"
#include "requester/exchange.h"
#include "requester/requester.h"

namespace requester {

using base::Failure;
using std::chrono::seconds;

int RunDaemon(RequesterConfig c, const std::function<RequesterConfig()>& reload, const RequesterEnv& env) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  Backoff backoff(seconds(1), seconds(300), env.uniform01);
  Log(env, "running for " + c.name + " (certificate " + c.cert + ")");
  for (;;) {
    std::chrono::milliseconds wait{0};
    StoredCertificate stored = InspectCertificate(c, env.now());
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
        c = reload();
        Log(env, "configuration reloaded");
      } catch (const Failure& f) {
        Log(env, std::string("reload failed, keeping the old configuration: ") + f.what());
      }
    }
  }
}

}  // namespace requester
