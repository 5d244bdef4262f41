// SPDX-License-Identifier: Apache-2.0
// audit-bench: what the audit log's hash chain costs (#13), and how fast its readers are.
//
//   audit-bench --dir DIR [--appends N] [--records M] [--keep]
//
// 1. N appends through the real path (signer::AuditLog::Write: lock, head from the lock file,
//    seq/prev, write, fsync, head stored), against N unchained appends of the same line
//    (base::AppendLineLocked, the path before the chain). The difference is the chain's cost.
// 2. A log of M chained records (realistic issued/refused records for 50 identities, written
//    directly, not fsync'd per line), then the readers over it: verify (parse + SHA-256 of every
//    line), report (per-identity summary), and a plain line scan as the I/O floor.
//
// Output: tab-separated lines  label  count  seconds  per_item_us  items_per_s
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>

#include "base/duration.h"
#include "base/files.h"
#include "base/flags.h"
#include "signer/audit.h"
#include "signer/audit_chain.h"
#include "signer/audit_report.h"

namespace {

using Clock = std::chrono::steady_clock;

void Row(const char* label, long count, double seconds) {
  std::printf("%s\t%ld\t%.3f\t%.2f\t%.0f\n", label, count, seconds,
              seconds * 1e6 / static_cast<double>(count), static_cast<double>(count) / seconds);
  std::fflush(stdout);
}

double Time(const std::function<void()>& op) {
  auto start = Clock::now();
  op();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

signer::AuditRecord Sample(long i, std::chrono::system_clock::time_point t) {
  signer::AuditRecord r;
  r.time = base::FormatRfc3339(t);
  r.verb = "sign";
  r.identity = "kubemaster-" + std::to_string(i % 50);
  r.common_name = r.identity;
  r.user = "etcd-signer";
  r.ssh_peer = "10.0.0." + std::to_string(i % 250) + " 39338";
  r.ssh_key_sha256 = "SHA256:q0nE0NjyKmnr5oWdqPyDMn2r4gRDdLbz0+0Wq2J1lXQ";
  r.key_type = "EC P-256";
  r.public_key_sha256 = signer::Sha256Hex(r.identity);
  if (i % 10 == 9) {
    r.outcome = "refused";
    r.exit_code = 77;
    r.reason = "identity-mismatch";
    r.message = "the CN 'kubemaster-x' is not this key's identity";
    return r;
  }
  r.outcome = "issued";
  r.serial = signer::Sha256Hex(std::to_string(i)).substr(0, 40);
  r.not_before = base::FormatRfc3339(t - std::chrono::minutes(5));
  r.not_after = base::FormatRfc3339(t + std::chrono::hours(24));
  r.granted_lifetime = 86400;
  return r;
}

}  // namespace

int main(int argc, char** argv) try {
  std::string dir;
  long appends = 2000, records = 1000000;
  bool keep = false;
  int code = base::ParseCommandLine(
      "audit-bench: the audit chain's append cost, and verify/report over a large log", argc, argv,
      [&](base::Flags& app) {
        app.Option("--dir", dir, "Work directory (on the file system the audit log would use)")
            .Required();
        app.Option("--appends", appends, "fsync'd appends per append row")
            .Range(1, 1000000);
        app.Option("--records", records, "Records in the generated log")
            .Range(1, 100000000);
        app.Switch("--keep", keep, "Keep DIR/big.log (to time etcd-signerctl on it)");
      });
  if (code >= 0) return code;

  auto now = std::chrono::system_clock::now();
  std::string plain_log = dir + "/plain.log", chained_log = dir + "/chained.log";
  std::remove(plain_log.c_str());
  std::remove((plain_log + ".lock").c_str());
  std::remove(chained_log.c_str());
  std::remove((chained_log + ".lock").c_str());
  std::string line = signer::ToJson(Sample(1, now));
  Row("append-unchained", appends, Time([&] {
        for (long i = 0; i < appends; ++i) base::AppendLineLocked(plain_log, line);
      }));
  signer::AuditLog audit(chained_log, false);
  signer::AuditRecord record = Sample(1, now);
  Row("append-chained", appends, Time([&] {
        for (long i = 0; i < appends; ++i) audit.Write(record);
      }));

  std::string big = dir + "/big.log";
  std::uintmax_t bytes = 0;
  Row("generate", records, Time([&] {
        std::ofstream out(big, std::ios::binary | std::ios::trunc);
        signer::ChainHead head;
        auto t0 = now - std::chrono::seconds(records);
        for (long i = 0; i < records; ++i) {
          signer::AuditRecord r = Sample(i, t0 + std::chrono::seconds(i));
          r.seq = head.seq + 1;
          r.prev = head.hash;
          std::string l = signer::ToJson(r);
          head = signer::ChainHead{r.seq, signer::Sha256Hex(l)};
          out << l << '\n';
          bytes += l.size() + 1;
        }
      }));
  std::printf("# %ld records, %.1f MB\n", records, static_cast<double>(bytes) / 1e6);
  long lines = 0;
  Row("scan-lines", records, Time([&] {
        signer::ForEachLine(big, [&](std::string_view, bool) {
          ++lines;
          return true;
        });
      }));
  Row("verify", records, Time([&] {
        signer::ChainVerifier v;
        v.BeginFile(big);
        signer::ForEachLine(
            big, [&](std::string_view l, bool terminated) { return v.Feed(l, terminated); });
        if (!v.Finish() || v.records() != static_cast<std::uint64_t>(records)) {
          throw std::runtime_error("verify failed: " +
                                   (v.broken() ? v.broken()->message : std::string("count")));
        }
      }));
  Row("report", records, Time([&] {
        signer::AuditSummary summary(now - std::chrono::hours(24 * 7), now);
        signer::ForEachLine(big, [&](std::string_view l, bool) {
          if (auto e = signer::ParseAuditEntry(l)) summary.Add(*e);
          return true;
        });
        if (summary.Identities().size() != 50)
          throw std::runtime_error("report: wrong identity count");
      }));
  if (!keep) std::remove(big.c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "audit-bench: %s\n", e.what());
  return 1;
}
