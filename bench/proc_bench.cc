// SPDX-License-Identifier: Apache-2.0
// proc-bench: runs one command many times, optionally several at a time, and reports wall-clock
// latency (process start → exit) and the peak resident set size of each run.
//
//   proc-bench --label NAME --runs N [--parallel P] [--warmup W] [--stdin FILE] -- ARGV...
//
// Every run must exit 0 and (with --expect-stdout) print something; a failed run stops the
// benchmark with exit 1 and the command's stderr, so a table never contains failed requests.
// Output: one tab-separated line
//   label runs parallel p50_ms p90_ms p99_ms mean_ms rps max_rss_kib
// Wall time is measured around posix_spawn + wait4; RSS is wait4's ru_maxrss of the child.
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/flags.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string label;
  int runs = 20;
  int parallel = 1;
  int warmup = 2;
  std::string stdin_file;
  bool expect_stdout = false;
  std::vector<std::string> argv;
};

struct Sample {
  double ms = 0;
  long max_rss_kib = 0;
};

Options ParseArgs(int argc, char** argv) {
  Options o;
  int code = base::ParseCommandLine(
      "proc-bench: runs a command repeatedly and reports latency and peak RSS", argc, argv,
      [&](base::Flags& app) {
        app.Option("--label", o.label, "Row label").Required();
        app.Option("--runs", o.runs, "Measured runs").Range(1, 1000000);
        app.Option("--parallel", o.parallel, "Runs at a time").Range(1, 1000);
        app.Option("--warmup", o.warmup, "Unmeasured runs first").Range(0, 1000);
        app.Option("--stdin", o.stdin_file, "File fed to each run's stdin (default /dev/null)");
        app.Switch("--expect-stdout", o.expect_stdout, "A run that prints nothing on stdout fails");
        app.Option("command", o.argv, "The command and its arguments, after --").Required();
      });
  if (code >= 0) std::exit(code);
  return o;
}

// One run: stdin from the file (or /dev/null), stdout and stderr to temporary files that are read
// back only on failure or for --expect-stdout.
Sample RunOnce(const Options& o) {
  char out_path[] = "/tmp/proc-bench-out.XXXXXX";
  char err_path[] = "/tmp/proc-bench-err.XXXXXX";
  int out = ::mkstemp(out_path);
  int err = ::mkstemp(err_path);
  if (out < 0 || err < 0) {
    std::perror("proc-bench: mkstemp");
    std::exit(1);
  }
  ::unlink(out_path);
  ::unlink(err_path);
  int in = ::open(o.stdin_file.empty() ? "/dev/null" : o.stdin_file.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    std::perror("proc-bench: stdin file");
    std::exit(1);
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in, 0);
  posix_spawn_file_actions_adddup2(&actions, out, 1);
  posix_spawn_file_actions_adddup2(&actions, err, 2);
  std::vector<char*> args;
  for (const auto& a : o.argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  auto start = Clock::now();
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(in);
  if (rc != 0) {
    std::fprintf(stderr, "proc-bench: cannot start %s: %s\n", args[0], std::strerror(rc));
    std::exit(1);
  }
  int status = 0;
  struct rusage usage {};
  while (::wait4(pid, &status, 0, &usage) < 0) {
    if (errno != EINTR) {
      std::perror("proc-bench: wait4");
      std::exit(1);
    }
  }
  Sample s;
  s.ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  s.max_rss_kib = usage.ru_maxrss;
  off_t out_size = ::lseek(out, 0, SEEK_END);
  bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && (!o.expect_stdout || out_size > 0);
  if (!ok) {
    char buf[4096];
    ssize_t n = ::pread(err, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    std::fprintf(stderr, "proc-bench: %s: run failed (status %d, %lld bytes on stdout): %s\n", o.label.c_str(),
                 status, static_cast<long long>(out_size), buf);
    std::exit(1);
  }
  ::close(out);
  ::close(err);
  return s;
}

double Percentile(const std::vector<double>& sorted, double p) {
  std::size_t i = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  Options o = ParseArgs(argc, argv);
  for (int i = 0; i < o.warmup; ++i) RunOnce(o);

  std::vector<Sample> samples;
  std::mutex mu;
  std::atomic<int> next{0};
  auto start = Clock::now();
  std::vector<std::thread> workers;
  for (int w = 0; w < o.parallel; ++w) {
    workers.emplace_back([&] {
      while (next.fetch_add(1) < o.runs) {
        Sample s = RunOnce(o);
        std::lock_guard lock(mu);
        samples.push_back(s);
      }
    });
  }
  for (auto& w : workers) w.join();
  double total_s = std::chrono::duration<double>(Clock::now() - start).count();

  std::vector<double> ms;
  double sum = 0;
  long rss = 0;
  for (const auto& s : samples) {
    ms.push_back(s.ms);
    sum += s.ms;
    rss = std::max(rss, s.max_rss_kib);
  }
  std::sort(ms.begin(), ms.end());
  std::printf("%s\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%ld\n", o.label.c_str(), o.runs, o.parallel,
              Percentile(ms, 0.5), Percentile(ms, 0.9), Percentile(ms, 0.99), sum / static_cast<double>(ms.size()),
              static_cast<double>(o.runs) / total_s, rss);
  return 0;
}
