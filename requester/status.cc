// SPDX-License-Identifier: Apache-2.0
// status: the stored certificate and the state file, for people (text) and programs (JSON,
// Prometheus textfile). `status` only reads; it writes the metrics file only when asked (#15).
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string_view>

#include "base/failure.h"
#include "requester/exchange.h"
#include "requester/requester.h"

namespace requester {

using base::Failure;
using std::chrono::seconds;

namespace {

enum class Tone { kGood, kWarn, kBad };

std::string Paint(const std::string& text, Tone tone, bool colour) {
  if (!colour) return text;
  const char* code = tone == Tone::kGood ? "\x1b[32m" : tone == Tone::kWarn ? "\x1b[33m" : "\x1b[1;31m";
  return code + text + "\x1b[0m";
}

Tone ToneOf(CertificateState state) {
  switch (state) {
    case CertificateState::kFresh: return Tone::kGood;
    case CertificateState::kDue: return Tone::kWarn;
    default: return Tone::kBad;
  }
}

}  // namespace

bool WantsColour(std::FILE* stream) {
  if (stream == nullptr || ::isatty(::fileno(stream)) != 1) return false;
  const char* no_color = std::getenv("NO_COLOR");
  if (no_color != nullptr && *no_color != '\0') return false;
  const char* term = std::getenv("TERM");
  return term != nullptr && *term != '\0' && std::string_view(term) != "dumb";
}

std::string RenderStatus(const RequesterConfig& c, TimePoint now, StatusFormat format) {
  StoredCertificate s = InspectCertificate(c, now);
  RequesterState state = LoadState(c.StateFile());
  bool has_cert = s.state != CertificateState::kMissing && s.state != CertificateState::kUnreadable;
  auto epoch = [](TimePoint t) { return std::chrono::duration_cast<seconds>(t.time_since_epoch()).count(); };
  long long left = has_cert ? std::chrono::duration_cast<seconds>(s.not_after - now).count() : 0;
  // The last attempt met a signer that holds new keys for approval (#14): nothing is wrong here;
  // an operator has to act on the signer host. The daemon keeps asking, with backoff.
  const bool pending = state.last_signer_reason == "pending-approval";
  if (format == StatusFormat::kJson) {
    nlohmann::ordered_json j;
    j["name"] = c.name;
    j["certificate"] = c.cert;
    j["state"] = StateName(s.state);
    if (!s.detail.empty()) j["detail"] = s.detail;
    if (has_cert) {
      j["serial"] = s.serial;
      j["not_before"] = base::FormatRfc3339(s.not_before);
      j["not_after"] = base::FormatRfc3339(s.not_after);
      j["renew_at"] = base::FormatRfc3339(s.renew_at);
      j["seconds_left"] = left;
    }
    j["last_attempt"] = state.last_attempt;
    j["last_success"] = state.last_success;
    j["consecutive_failures"] = state.consecutive_failures;
    j["last_error"] = state.last_error;
    j["pending_approval"] = pending;
    j["served_by"] = state.served_by;
    j["signer_errors"] = state.signer_errors;
    // What an operator compares with each signer host's audit log (etcd-signerctl audit verify --head).
    nlohmann::ordered_json witness = nlohmann::ordered_json::object();
    for (const auto& [server, w] : state.signer_witness) {
      witness[server] = {{"head", w.head}, {"time", w.time}};
      if (!w.warning.empty()) witness[server]["warning"] = w.warning;
    }
    j["audit_witness"] = witness;
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  if (format == StatusFormat::kPrometheus) {
    std::string label = "{name=\"" + c.name + "\"}";
    std::string out;
    auto metric = [&](const std::string& name, const std::string& help, long long value) {
      out += "# HELP " + name + " " + help + "\n# TYPE " + name + " gauge\n" + name + label + " " +
             std::to_string(value) + "\n";
    };
    metric("etcd_requester_certificate_valid", "1 if a certificate is stored and not expired.",
           has_cert && left > 0 ? 1 : 0);
    metric("etcd_requester_certificate_expiry_timestamp_seconds", "notAfter of the stored certificate.",
           has_cert ? epoch(s.not_after) : 0);
    metric("etcd_requester_certificate_seconds_left", "Seconds until the stored certificate expires.",
           has_cert ? left : 0);
    long long last_success = 0;
    if (!state.last_success.empty()) {
      try {
        last_success = epoch(base::ParseRfc3339(state.last_success));
      } catch (const Failure&) {
      }
    }
    metric("etcd_requester_last_success_timestamp_seconds", "Time of the last successful request.", last_success);
    metric("etcd_requester_consecutive_failures", "Failed attempts since the last success.",
           state.consecutive_failures);
    metric("etcd_requester_pending_approval",
           "1 while the signer waits for an operator to approve this host's key (etcd-signerctl approve).",
           pending ? 1 : 0);
    return out;
  }
  const bool colour = format == StatusFormat::kHumanColour;
  std::string out;
  // The keys padded to one column, so the values line up; colour codes only inside the values.
  auto row = [&](const std::string& k, const std::string& v) {
    out += k + std::string(k.size() < 16 ? 16 - k.size() : 1, ' ') + v + "\n";
  };
  row("name", c.name);
  row("certificate", c.cert + " (" + Paint(StateName(s.state), ToneOf(s.state), colour) + ")");
  if (!s.detail.empty()) row("problem", s.detail);
  if (has_cert) {
    row("serial", s.serial);
    row("valid", base::FormatRfc3339(s.not_before) + " to " + base::FormatRfc3339(s.not_after));
    row(left > 0 ? "expires" : "expired", Ago(s.not_after, now));
    row("renews", base::FormatRfc3339(s.renew_at) + " (" + Ago(s.renew_at, now) + ")");
  }
  row("key", c.key_file.empty() ? c.key_uri : c.key_file);
  row("last success", state.last_success.empty() ? "never" : state.last_success);
  row("failures", Paint(std::to_string(state.consecutive_failures),
                        state.consecutive_failures == 0 ? Tone::kGood : Tone::kBad, colour) +
                      (state.last_error.empty() ? "" : " (last: " + state.last_error + ")"));
  if (pending) {
    row("approval", Paint("PENDING", Tone::kWarn, colour) + ": the signer waits for an operator to approve this host's key; the command "
                    "is in the last error (etcd-signerctl approve NAME SHA256, on the signer host)");
  }
  if (!state.served_by.empty() && c.servers.size() > 1) row("served by", state.served_by);
  for (const auto& [server, error] : state.signer_errors) row("signer failed", server + ": " + error);
  // Each signer's audit head as this master saw it: `etcd-signerctl audit verify --head SEQ:HASH`
  // on that host proves its log still holds what it answered (#24).
  for (const auto& [server, w] : state.signer_witness) {
    row("audit witness", server + ": " + w.head + " (" + w.time + ")");
    if (!w.warning.empty()) row("audit warning", Paint(server + ": " + w.warning, Tone::kBad, colour));
  }
  return out;
}

int ShowStatus(const RequesterConfig& c, const RequesterEnv& env, StatusFormat format,
               const std::string& metrics_file) {
  const TimePoint now = env.now();
  if (format == StatusFormat::kHuman && WantsColour(env.out)) format = StatusFormat::kHumanColour;
  std::string text = RenderStatus(c, now, format);
  std::fwrite(text.data(), 1, text.size(), env.out);
  std::fflush(env.out);
  if (metrics_file.empty()) return 0;
  // Asked for, so a failure to write it is the exit status; the status above is printed anyway:
  // it is what the operator needs to see when the metrics path is wrong.
  try {
    std::string dir = std::filesystem::path(metrics_file).parent_path().string();
    if (!dir.empty() && !std::filesystem::exists(dir)) {
      throw Failure(base::ExitCode::kCantCreate, "write-failed",
                    "the metrics directory " + dir +
                        " does not exist (Debian's node exporter reads /var/lib/prometheus/node-exporter); "
                        "create it or name another --prometheus FILE");
    }
    base::AtomicFileWriter(metrics_file, 0644).Write(RenderStatus(c, now, StatusFormat::kPrometheus));
  } catch (const Failure& f) {
    std::optional<Failure> enriched = WithRunningAs(f);
    const Failure& shown = enriched ? *enriched : f;
    // The command's one error line, like every other verb's: no log time in front (#28 puts times
    // on the daemon's log lines, not on a command's answer).
    std::string line = base::FailureLine("etcd-requester", shown) + "\n";
    std::fwrite(line.data(), 1, line.size(), env.log);
    std::fflush(env.log);
    return static_cast<int>(shown.code());
  }
  return 0;
}

}  // namespace requester
