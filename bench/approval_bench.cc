// SPDX-License-Identifier: Apache-2.0
// approval-bench: what the approval and deny checks (#14) cost one request.
//
//   approval-bench --dir DIR [--keys N] [--iterations K]
//
// Writes DIR/approved_keys with N lines (N/2 names with two keys each, comments like the ones
// etcd-signerctl writes), DIR/denied_keys with N/100 lines and DIR/denied_identities with 100
// names, then times what one signer process does per request, K times:
//   request     a fresh ApprovalGate: CheckIdentity + CheckKey for an approved pair: all three
//               files read and parsed strictly line by line (ListContains), the whole per-request
//               cost
//   scan        ListContains over approved_keys alone
//   load        ApprovalList::Load of approved_keys (read + strict parse + hash set), what
//               `etcd-signerctl pending` uses, and what the signer did first
//   parse       ApprovalList::Parse of approved_keys from memory (no read)
//   lookup      Contains on a loaded list (hits and misses alternating)
//
// Output: tab-separated lines  label  count  wall_seconds  wall_us_per_item  cpu_us_per_item
#include <time.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "base/failure.h"
#include "base/files.h"
#include "base/flags.h"
#include "signer/approval.h"
#include "signer/audit_chain.h"
#include "signer/config.h"

namespace {

using Clock = std::chrono::steady_clock;

double CpuSeconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Wall time and this process's CPU time: on a shared machine the first includes waiting for a
// core, the second is what the work costs.
void Row(const char* label, long count, const std::function<void()>& op) {
  double cpu0 = CpuSeconds();
  auto start = Clock::now();
  op();
  double wall = std::chrono::duration<double>(Clock::now() - start).count();
  double cpu = CpuSeconds() - cpu0;
  std::printf("%s\t%ld\t%.3f\t%.2f\t%.2f\n", label, count, wall,
              wall * 1e6 / static_cast<double>(count), cpu * 1e6 / static_cast<double>(count));
  std::fflush(stdout);
}

std::string Name(long i) {
  return "kubemaster-" + std::to_string(i);
}
std::string Key(long i) {
  return signer::Sha256Hex("key " + std::to_string(i));
}

}  // namespace

int main(int argc, char** argv) try {
  std::string dir;
  long keys = 10000, iterations = 2000;
  int code = base::ParseCommandLine(
      "approval-bench: the per-request cost of the approval and deny lists", argc, argv,
      [&](base::Flags& app) {
        app.Option("--dir", dir, "Work directory").Required();
        app.Option("--keys", keys, "Lines in approved_keys").Range(2, 10000000);
        app.Option("--iterations", iterations, "Requests timed").Range(1, 10000000);
      });
  if (code >= 0) return code;

  signer::SignerConfig config;
  config.approval = signer::ApprovalMode::kNewKeys;
  config.approved_keys = dir + "/approved_keys";
  config.denied_keys = dir + "/denied_keys";
  config.denied_identities = dir + "/denied_identities";
  std::string approved = "# approved keys of the fleet\n", denied, names;
  for (long i = 0; i < keys; ++i) {
    approved += Name(i / 2) + " " + Key(i) + " approved 2026-11-27T21:00:00Z by root\n";
  }
  for (long i = 0; i < keys / 100; ++i) denied += Name(i) + " " + Key(keys + i) + " denied\n";
  for (long i = 0; i < 100; ++i) names += Name(keys + i) + " denied\n";
  base::AtomicFileWriter(config.approved_keys).Write(approved);
  base::AtomicFileWriter(config.denied_keys).Write(denied);
  base::AtomicFileWriter(config.denied_identities).Write(names);
  std::printf("# approved_keys: %ld lines, %.2f MB\n", keys,
              static_cast<double>(approved.size()) / 1e6);

  long passed = 0;
  Row("request", iterations, [&] {
    for (long i = 0; i < iterations; ++i) {
      long k = (i * 7919) % keys;  // spread over the file
      signer::ApprovalGate gate(config);
      gate.CheckIdentity(Name(k / 2));
      gate.CheckKey(Name(k / 2), Key(k));
      ++passed;
    }
  });
  if (passed != iterations) throw std::runtime_error("an approved pair was refused");
  Row("scan", iterations, [&] {
    for (long i = 0; i < iterations; ++i) {
      long k = (i * 7919) % keys;
      if (!signer::ListContains(config.approved_keys, signer::ListKind::kKeys, Name(k / 2), Key(k)))
        throw std::runtime_error("an approved pair was not found");
    }
  });
  Row("load", iterations, [&] {
    for (long i = 0; i < iterations; ++i) {
      auto list = signer::ApprovalList::Load(config.approved_keys, signer::ListKind::kKeys);
      if (list.size() != static_cast<std::size_t>(keys)) throw std::runtime_error("wrong size");
    }
  });
  Row("parse", iterations, [&] {
    for (long i = 0; i < iterations; ++i) {
      auto list = signer::ApprovalList::Parse(approved, signer::ListKind::kKeys, "approved_keys");
      if (list.size() != static_cast<std::size_t>(keys)) throw std::runtime_error("wrong size");
    }
  });
  auto list = signer::ApprovalList::Load(config.approved_keys, signer::ListKind::kKeys);
  std::vector<std::pair<std::string, std::string>> probes;
  for (long i = 0; i < 1000; ++i) probes.emplace_back(Name(i / 2), Key(i % 2 == 0 ? i : keys + i));
  long hits = 0, lookups = 1000000;
  Row("lookup", lookups, [&] {
    for (long i = 0; i < lookups; ++i) {
      const auto& [name, key] = probes[static_cast<std::size_t>(i % 1000)];
      hits += list.Contains(name, key) ? 1 : 0;
    }
  });
  if (hits != lookups / 2) throw std::runtime_error("lookup answers are wrong");
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "approval-bench: %s\n", e.what());
  return 1;
}
