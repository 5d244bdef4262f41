// SPDX-License-Identifier: Apache-2.0
// The signer's whole run for one SSH request: read → parse → policy → build → sign → emit, with
// an audit record for every outcome and a whole-request deadline.
#pragma once

#include <chrono>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>

#include "base/failure.h"
#include "pki/certificate_profile.h"
#include "signer/config.h"

namespace signer {

// Who asked and what: from the SSH environment (or argv when run locally).
struct Invocation {
  std::string request_text;  // SSH_ORIGINAL_COMMAND, or argv's words
  std::string ssh_peer;      // "ip port" from SSH_CONNECTION; "local" without SSH
  std::string ssh_key_sha256;  // from SSH_USER_AUTH (sshd ExposeAuthInfo yes); "" when absent
};

// The OpenSSH fingerprint ("SHA256:<base64, unpadded>") of the public key in sshd's
// ExposeAuthInfo file (lines "publickey <type> <base64>"), or "" when it has none.
std::string SshKeyFingerprint(const std::string& auth_info_path);

// Builds an Invocation from the environment: SSH_ORIGINAL_COMMAND when set (what the client
// asked for), else `argv_words` joined (local use: `etcd-signer --config f sign`).
Invocation InvocationFromEnvironment(const std::string& argv_words);

// Things tests inject.
struct Environment {
  std::function<pki::TimePoint()> now = [] { return std::chrono::system_clock::now(); };
  std::function<pki::Serial()> serial = pki::RandomSerial;
  int input_fd = 0;
  std::FILE* output = stdout;
  // Called at "signed" (certificate built, not yet committed to) and "committed" (record on file,
  // answer not yet printed); tests stall there to make the deadline fire at the worst moments.
  std::function<void(const std::string& stage)> at_stage;
};

// The `info` answer (protocol.md §2): one JSON object, the signer's version, limits and clock,
// the bound identity and whether it is denied, the governance document in force (#29) and the
// audit chain's head — what `diagnose` and `etcd-signerctl fleet status` read.
std::string InfoJson(const SignerConfig& config, pki::TimePoint now);

// Reads at most kMaxInputBytes from `fd` within `timeout`. Failure(kDataErr): "oversize",
// "input-timeout".
std::string ReadInput(int fd, std::chrono::milliseconds timeout);

// Runs one request and returns the process exit code. `config_error` is a failure met while
// loading the configuration (reported and audited like any other).
int Serve(const SignerConfig& config, const Invocation& invocation, const Environment& env,
          const std::optional<base::Failure>& config_error = std::nullopt);

}  // namespace signer
