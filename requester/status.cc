// SPDX-License-Identifier: Apache-2.0
// status: the stored certificate and the state file, for people (text) and programs (JSON,
// Prometheus textfile). `status` only reads; it writes the metrics file only when asked (#15).
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
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
    j["profile"] = pki::ProfileName(c.profile);
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
    j["attestation"] = c.attestation;
    j["tpm_enrolled"] = state.tpm_enrolled;
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
    // A member's certificates (#26) are told apart by their profile; a master's keep the one label.
    std::string label = "{name=\"" + c.name + "\"" +
                        (pki::IsMemberProfile(c.profile) ? std::string(",profile=\"") + pki::ProfileName(c.profile) + "\"" : "") +
                        "}";
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
  row("profile", pki::ProfileName(c.profile));
  row("certificate", c.cert + " (" + Paint(StateName(s.state), ToneOf(s.state), colour) + ")");
  if (!s.detail.empty()) row("problem", s.detail);
  if (has_cert) {
    row("serial", s.serial);
    row("valid", base::FormatRfc3339(s.not_before) + " to " + base::FormatRfc3339(s.not_after));
    row(left > 0 ? "expires" : "expired", Ago(s.not_after, now));
    row("renews", base::FormatRfc3339(s.renew_at) + " (" + Ago(s.renew_at, now) + ")");
  }
  row("key", !c.key_file.empty() ? c.key_file : !c.tpm_key.empty() ? "TPM key " + c.tpm_key : c.key_uri);
  if (c.attestation) {
    // #27: which signers know this TPM; the next request enrolls it with any other.
    std::string enrolled;
    for (const auto& [server, time] : state.tpm_enrolled) enrolled += (enrolled.empty() ? "" : ", ") + server + " (" + time + ")";
    row("attestation", enrolled.empty() ? "on: not enrolled with any signer yet (the next request enrolls)"
                                        : "on: enrolled with " + enrolled);
  }
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

namespace {

// Prometheus' text format wants each family once, its samples together: regroup the families of
// several certificates' texts, in the order they first appear.
std::string MergePrometheus(const std::vector<std::string>& texts) {
  std::vector<std::string> order;
  std::map<std::string, std::pair<std::string, std::string>> families;  // name -> (comments, samples)
  for (const std::string& text : texts) {
    std::size_t start = 0;
    while (start < text.size()) {
      std::size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      std::string line = text.substr(start, end - start);
      start = end + 1;
      if (line.empty()) continue;
      bool comment = line.rfind("# ", 0) == 0;
      std::string name = comment ? line.substr(7, line.find(' ', 7) - 7) : line.substr(0, line.find_first_of("{ "));
      if (families.find(name) == families.end()) order.push_back(name);
      auto& [comments, samples] = families[name];
      if (!comment) samples += line + "\n";
      else if (comments.find(line) == std::string::npos) comments += line + "\n";
    }
  }
  std::string out;
  for (const std::string& name : order) out += families[name].first + families[name].second;
  return out;
}

}  // namespace

std::string RenderStatuses(const std::vector<RequesterConfig>& configs, TimePoint now, StatusFormat format) {
  if (configs.size() == 1) return RenderStatus(configs.front(), now, format);
  std::vector<std::string> parts;
  for (const RequesterConfig& c : configs) parts.push_back(RenderStatus(c, now, format));
  if (format == StatusFormat::kPrometheus) return MergePrometheus(parts);
  std::string out = format == StatusFormat::kJson ? "[" : "";
  for (std::size_t i = 0; i < parts.size(); ++i) {
    std::string part = parts[i];
    if (format == StatusFormat::kJson) {
      while (!part.empty() && part.back() == '\n') part.pop_back();
      out += (i ? "," : "") + part;
    } else {
      out += (i ? "\n" : "") + part;
    }
  }
  return format == StatusFormat::kJson ? out + "]\n" : out;
}

int ShowStatus(const RequesterConfig& c, const RequesterEnv& env, StatusFormat format,
               const std::string& metrics_file) {
  return ShowStatus(std::vector<RequesterConfig>{c}, env, format, metrics_file);
}

int ShowStatus(const std::vector<RequesterConfig>& configs, const RequesterEnv& env, StatusFormat format,
               const std::string& metrics_file) {
  const TimePoint now = env.now();
  if (format == StatusFormat::kHuman && WantsColour(env.out)) format = StatusFormat::kHumanColour;
  std::string text = RenderStatuses(configs, now, format);
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
    base::AtomicFileWriter(metrics_file, 0644).Write(RenderStatuses(configs, now, StatusFormat::kPrometheus));
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

std::vector<RequesterConfig> LoadConfigDirectory(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".toml" && entry.is_regular_file()) files.push_back(entry.path().string());
  }
  if (ec) throw Failure(base::ExitCode::kConfig, "bad-config", "cannot read the directory " + dir + ": " + ec.message());
  if (files.empty()) throw Failure(base::ExitCode::kConfig, "bad-config", "no *.toml configuration in " + dir);
  std::sort(files.begin(), files.end());
  std::vector<RequesterConfig> configs;
  for (const std::string& file : files) {
    RequesterConfig c;
    LoadConfigFile(file, c);
    ValidateConfig(c, false);
    configs.push_back(std::move(c));
  }
  return configs;
}

}  // namespace requester
