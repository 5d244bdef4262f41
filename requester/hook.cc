// SPDX-License-Identifier: Apache-2.0
// The post-renew hook: the operator's program, run after a certificate was stored.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cstring>
#include <thread>

#include "requester/exchange.h"
#include "requester/requester.h"

extern char** environ;

namespace requester {

// The hook is the operator's program, not ours: it gets the environment (the PIN variable is gone:
// base::ReadSecretEnv removed it when it was read), stdin/stdout/stderr, and nothing else. Every other
// descriptor (a token module's files, a socket) is closed in the child even if a library forgot
// O_CLOEXEC, the signal mask is emptied (the daemon blocks SIGHUP/SIGINT/SIGTERM for sigtimedwait,
// which would make the hook unkillable by them) and every signal gets its default action back (an
// ignored SIGPIPE or SIGINT is inherited across exec otherwise).
void RunHook(const RequesterConfig& c, const RequesterEnv& env) {
  if (c.post_renew_hook.empty()) return;
  RunOperatorProgram(c.post_renew_hook, env, "post-renew hook");
}

bool RunOperatorProgram(std::vector<std::string> argv, const RequesterEnv& env, const std::string& what) {
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  int rc = posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  if (rc == 0) rc = posix_spawnattr_setsigmask(&attr, &none);
  if (rc == 0) rc = posix_spawnattr_setsigdefault(&attr, &all);
  if (rc == 0) rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  // posix_spawnp, no shell: the hook's words are passed as they are.
  if (rc == 0) rc = posix_spawnp(&pid, cargv[0], &actions, &attr, cargv.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    Log(env, what + " '" + argv[0] + "' could not start: " + std::strerror(rc));
    return false;
  }
  int status = 0;
  for (int i = 0; i < 600; ++i) {  // 60 s
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        Log(env, what + " '" + argv[0] + "' failed (status " + std::to_string(status) + ")");
        return false;
      }
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  Log(env, what + " '" + argv[0] + "' took longer than 60s and was killed");
  return false;
}

}  // namespace requester
