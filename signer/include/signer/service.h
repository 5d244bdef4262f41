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
};

// Builds an Invocation from the environment: SSH_ORIGINAL_COMMAND when set (what the client
// asked for), else `argv_words` joined (local use: `etcd-signer --config f sign`).
Invocation InvocationFromEnvironment(const std::string& argv_words);

// Things tests inject.
struct Environment {
  std::function<pki::TimePoint()> now = [] { return std::chrono::system_clock::now(); };
  std::function<pki::Serial()> serial = pki::RandomSerial;
  int input_fd = 0;
  std::FILE* output = stdout;
};

// Reads at most kMaxInputBytes from `fd` within `timeout`. Failure(kDataErr): "oversize",
// "input-timeout".
std::string ReadInput(int fd, std::chrono::milliseconds timeout);

// Runs one request and returns the process exit code. `config_error` is a failure met while
// loading the configuration (reported and audited like any other).
int Serve(const SignerConfig& config, const Invocation& invocation, const Environment& env,
          const std::optional<base::Failure>& config_error = std::nullopt);

}  // namespace signer
