// SPDX-License-Identifier: Apache-2.0
#include "signerctl/context.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cerrno>
#include <thread>

#include "base/duration.h"
#include "base/failure.h"
#include "base/files.h"
#include "base/text.h"

namespace signerctl {

using base::ExitCode;
using base::Failure;

Context MakeContext(const std::string& now_text, const std::string& config_path) {
  Context ctx;
  ctx.now = std::chrono::system_clock::now();
  if (!now_text.empty()) {
    try {
      ctx.now = base::ParseRfc3339(now_text);
    } catch (const Failure& f) {
      throw Failure(ExitCode::kUsage, "usage", "--now: " + std::string(f.what()));
    }
  }
  ctx.config_path = config_path;
  if (!config_path.empty()) signer::LoadConfigFile(config_path, ctx.config);
  return ctx;
}

namespace {

// "client_ip client_port" from SSH_CONNECTION (the fleet's push), or "local".
std::string SshPeer() {
  const char* connection = std::getenv("SSH_CONNECTION");
  if (connection == nullptr || *connection == '\0') return "local";
  std::string c = connection;
  std::size_t first = c.find(' ');
  return base::Printable(c.substr(0, first == std::string::npos ? first : c.find(' ', first + 1)), 64);
}

std::string RunningAccount() {
  struct passwd* pw = ::getpwuid(::geteuid());
  return pw != nullptr ? pw->pw_name : std::to_string(::geteuid());
}

}  // namespace

void RecordInSignerLog(const Context& ctx, signer::AuditRecord r, const std::string& what) {
  if (ctx.config.audit_log.empty()) return;
  const std::string& log = ctx.config.audit_log;
  if (::access(log.c_str(), F_OK) != 0 || ::access((log + ".lock").c_str(), F_OK) != 0) {
    std::fprintf(stderr, "etcd-signerctl: note: %s has not been started by the signer yet; this %s is not recorded there\n",
                 log.c_str(), what.c_str());
    return;
  }
  r.time = base::FormatRfc3339(ctx.now);
  r.user = RunningAccount();
  r.ssh_peer = SshPeer();
  try {
    signer::AuditLog(log, ctx.config.syslog).Write(r);
  } catch (const base::Failure& f) {
    std::fprintf(stderr, "etcd-signerctl: warning: the %s was not recorded in the audit log: %s\n", what.c_str(), f.what());
  }
}

void Print(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
}

void AddAuditFilesOption(base::Flags& cmd, std::vector<std::string>& files) {
  cmd.Option("files", files, "Audit log files, oldest first (default: audit_log.1 audit_log)");
}

// Every file is checked before anything is printed: a listing that stops half-way at an unsafe
// file would look like the whole log.
std::vector<std::string> Checked(std::vector<std::string> files) {
  struct stat st {};
  for (const auto& file : files) {
    if (::lstat(file.c_str(), &st) == 0) signer::OpenAuditFile(file);  // a missing one: as each verb says
  }
  return files;
}

std::vector<std::string> AuditFiles(const Context& ctx, const std::vector<std::string>& given) {
  if (!given.empty()) return Checked(given);
  if (ctx.config.audit_log.empty()) {
    throw Failure(ExitCode::kUsage, "usage", "give audit log files, or --config with audit_log set");
  }
  std::vector<std::string> files;
  std::string rotated = ctx.config.audit_log + ".1";
  if (::access(rotated.c_str(), F_OK) == 0) files.push_back(rotated);
  files.push_back(ctx.config.audit_log);
  return Checked(files);
}

TimePoint WindowStart(const Context& ctx, const std::string& text, const std::string& fallback) {
  const std::string& window = text.empty() ? fallback : text;
  if (window.empty()) return TimePoint::min();
  try {
    return ctx.now - base::ParseDuration(window);
  } catch (const Failure& f) {
    throw Failure(ExitCode::kUsage, "usage", "--since: " + std::string(f.what()));
  }
}

void ForEachEntry(const std::vector<std::string>& files,
                  const std::function<void(const signer::AuditEntry&)>& each) {
  for (const auto& file : files) {
    signer::ForEachLine(file, [&](std::string_view line, bool) {
      if (auto e = signer::ParseAuditEntry(line)) each(*e);
      return true;
    });
  }
}

std::optional<RecordedHead> RecordedHeadOf(const std::vector<std::string>& files) {
  if (files.empty()) return std::nullopt;
  std::string source = files.back() + ".lock";
  auto head = signer::ParseHead(base::ReadStoredHead(source));
  if (!head) return std::nullopt;
  return RecordedHead{*head, source};
}

std::optional<std::string> TerminatedLineAt(const std::string& path, std::uint64_t offset) {
  base::UniqueFd fd = signer::OpenAuditFile(path);
  std::string line;
  char chunk[4096];
  for (off_t at = static_cast<off_t>(offset); line.size() < (1u << 20);) {
    ssize_t n = ::pread(fd.get(), chunk, sizeof chunk, at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    std::string_view got(chunk, static_cast<std::size_t>(n));
    auto nl = got.find('\n');
    line.append(got.substr(0, nl));
    if (nl != std::string_view::npos) return line;
    at += n;
  }
  return std::nullopt;
}

signer::ChainVerifier VerifyChain(const std::vector<std::string>& files, const std::vector<signer::ChainHead>& heads) {
  signer::ChainVerifier verifier(heads);
  for (std::size_t i = 0; i < files.size(); ++i) {
    const std::string& file = files[i];
    verifier.BeginFile(file);
    std::uint64_t offset = 0;
    std::optional<std::string> unterminated;
    signer::ForEachLine(file, [&](std::string_view line, bool terminated) {
      if (!terminated) {
        unterminated = std::string(line);
        return true;
      }
      offset += line.size() + 1;
      return verifier.Feed(line, true);
    });
    if (verifier.broken()) break;
    if (unterminated) {
      // The newest file may be in the middle of an append (a reader can see part of a write):
      // look again shortly before calling its last line torn.
      if (i + 1 == files.size()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        if (auto whole = TerminatedLineAt(file, offset)) {
          verifier.Feed(*whole, true);
          continue;
        }
      }
      verifier.Feed(*unterminated, false);
      break;
    }
  }
  verifier.Finish();
  return verifier;
}

}  // namespace signerctl
