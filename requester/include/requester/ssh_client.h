// SPDX-License-Identifier: Apache-2.0
// One SSH connection to the signer (libssh). Host keys are checked against the configured
// known_hosts only (no ~/.ssh/config, no global file, no trust on first use unless asked).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "hsm/pin.h"
#include "requester/config.h"

namespace requester {

struct ExecResult {
  int exit_status = -1;
  std::string out;
  std::string err;
};

struct SshOptions {
  ServerAddress server;
  std::string known_hosts;
  bool accept_new_host_key = false;
  // A key file, a PKCS#11 URI ("pkcs11:...": the key stays in its token and signs through an
  // in-process agent, see token_agent.h; `module`/`pin` open it), or empty: the user's ssh-agent.
  std::string identity_file;
  std::string module;
  hsm::PinSource pin;
  std::chrono::seconds connect_timeout{10};
  std::chrono::seconds io_timeout{30};
};

class SshClient {
 public:
  // Connects, verifies the host key and authenticates. With a token SSH key, the token is opened
  // for the authentication only: no other hsm::Module may be alive meanwhile. Throws Failure: kUnavailable
  // "connect-failed" (TCP/SSH), kNoPerm "host-key-revoked" / "host-key-changed" /
  // "host-key-unknown" / "auth-failed".
  //
  // Host keys: libssh matches the plain known_hosts lines; the OpenSSH marker lines it skips are
  // read here. A key listed on any "@revoked" line is refused (whatever other lines say, and
  // regardless of accept_new_host_key); when the file has any marker line, an unknown host is
  // never accepted on first use. The session's socket is close-on-exec.
  explicit SshClient(const SshOptions& options);
  ~SshClient();
  SshClient(const SshClient&) = delete;
  SshClient& operator=(const SshClient&) = delete;

  // Runs `command` (the signer's request line) with `input` on stdin and EOF after it. Output
  // is capped at 1 MiB per stream. Throws Failure(kTempFail, "io-timeout") or
  // (kUnavailable, "connection-lost").
  ExecResult Exec(const std::string& command, const std::string& input);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Short text of an SSH host key fingerprint and the known_hosts state, for `diagnose`.
std::string DescribeServer(const SshOptions& options);

}  // namespace requester
