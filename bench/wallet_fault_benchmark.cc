// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// wallet_fault_benchmark: one prepaid wallet shared through Redis under
// real Redis failures, for N = 2, 4, 8 instances (tests/sync/fault_cluster.h
// with FaultRun::wallet_micros: one process, one Enforcer + RedisSync per
// instance, each behind its own TCP proxy, one account whose wallet every
// instance credits with 600,000 micros under one credit id, 100 micros per
// request, each instance checking every 0.5 ms). Each run is one fault,
// caused once 40% and once 90% of the balance was spent, local_share.
//
// Counters per run (one iteration each; the time is the run's wall time):
//   over       micros spent (admitted x price) - credited (target <= 0:
//              the balance never goes negative)
//   lost       Redis's spent (t) - micros spent, after the drain (target 0;
//              for instance death the dead instance counts as what it had
//              reported, so lost = -(its spend it never sent))
//   resume_ms  from the end of the fault until every live instance had a
//              round with Redis and admitted after it; -1 when the balance
//              ran out first (less than a request's price left)
//   left       the balance Redis holds after the drain (spendable)
//   dead_lease for instance death: its lease when it died (held back: it
//              counts as spent once Redis took it back, taken_back)
//
// It is a check: it exits 1 when any run has over > 0, a lost that is not 0
// (for a dead instance: not exactly its unsent spend, or more than its
// lease), a credit counted other than once, a live instance that never
// admitted again with a request's price left or with a tenth of the
// balance left when the fault ended, or fails to run.
//
//   build/release/bench/wallet_fault_benchmark           N = 2, 4, 8
//   build/release/bench/wallet_fault_benchmark --quick   N = 2 (test.sh)
//   ... --verbose: also every run's per-instance figures (stderr)
//
// Starts its own redis-servers (PLANGATE_TEST_REDIS_SERVER or redis-server
// on PATH).

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "sync/fault_cluster.h"

namespace {

using plangate::RedisDownPolicy;
using plangate::testing::Fault;
using plangate::testing::FaultName;
using plangate::testing::FaultResult;
using plangate::testing::FaultRun;
using plangate::testing::RunFault;

constexpr int64_t kBalance = 600'000;
constexpr int64_t kPrice = 100;

bool verbose = false;  // --verbose: every run's per-instance figures
std::vector<std::string> failures;
std::vector<std::string> rows;  // the summary, one line per run

// What is wrong with one run's figures (empty: nothing).
std::string Verdict(const FaultRun& run, const FaultResult& r) {
  const int64_t over = r.admitted - run.wallet_micros;
  const int64_t lost = r.redis_total - r.admitted;
  std::string bad;
  if (over > 0) bad += fmt::format(" over {} > 0;", over);
  if (r.credited != run.wallet_micros) {
    bad += fmt::format(" credits {} != the {} credited once;", r.credited,
                       run.wallet_micros);
  }
  if (run.fault == Fault::kInstanceDeath) {
    // The survivors' spend is exact; the dead one's unsent spend came out
    // of the lease Redis held for it.
    if (lost != r.dead_flushed - r.dead_admitted) {
      bad += fmt::format(" lost {} != the dead instance's unsent {};", lost,
                         r.dead_flushed - r.dead_admitted);
    }
    if (r.dead_admitted > r.dead_flushed + r.dead_leased) {
      bad += fmt::format(
          " the dead instance spent {}, more than reported {} + leased {};",
          r.dead_admitted, r.dead_flushed, r.dead_leased);
    }
  } else if (lost != 0) {
    bad += fmt::format(" lost {} != 0;", lost);
  }
  // Every live instance spends again unless the balance ran out first
  // ("empty": less than a request's price left once they stopped), and
  // with a tenth of it left when the fault ended, it must not run out
  // on some of them only (as in tests/sync/cap_fault_test.cc).
  const int64_t left = r.credited - (r.redis_total + r.dead_taken_back);
  const int64_t spent_by_end = r.admitted_at_fault + r.admitted_during;
  if (r.resume_ms < 0 &&
      (left >= run.price_micros || spent_by_end < run.wallet_micros * 9 / 10)) {
    bad += fmt::format(
        " a live instance never admitted again ({} spent when the fault "
        "ended, {} left);",
        spent_by_end, left);
  }
  return bad;
}

void BM_WalletFault(benchmark::State& state, Fault fault) {
  FaultRun run;
  run.fault = fault;
  run.policy = RedisDownPolicy::kLocalShare;
  run.wallet_micros = kBalance;
  run.price_micros = kPrice;
  run.instances = static_cast<int>(state.range(0));
  run.fault_at = static_cast<double>(state.range(1)) / 100;
  // Long enough to spend the rest after a restart (outage + lease_ttl of
  // recovery) on 2 instances; the run stops once the balance is spent.
  run.after = std::chrono::milliseconds(4000);
  if (fault == Fault::kPartition) {
    run.outage = run.lease_ttl + run.lease_ttl / 2;
  }
  const std::string cell =
      fmt::format("{} n={} at {}%", FaultName(fault), run.instances,
                  static_cast<int>(state.range(1)));
  for (auto _ : state) {
    auto r = RunFault(run);
    if (!r.ok()) {
      const std::string msg(r.status().message());
      failures.push_back(fmt::format("{}: did not run: {}", cell, msg));
      state.SkipWithError(msg.c_str());
      return;
    }
    const int64_t over = r->admitted - run.wallet_micros;
    const int64_t lost = r->redis_total - r->admitted;
    const int64_t left = r->credited - (r->redis_total + r->dead_taken_back);
    state.counters["over"] = static_cast<double>(over);
    state.counters["lost"] = static_cast<double>(lost);
    state.counters["resume_ms"] = r->resume_ms;
    state.counters["left"] = static_cast<double>(left);
    if (fault == Fault::kInstanceDeath) {
      state.counters["dead_lease"] = static_cast<double>(r->dead_leased);
      state.counters["taken_back"] = static_cast<double>(r->dead_taken_back);
    }
    rows.push_back(fmt::format(
        "{:<28} over {:>7} lost {:>5} resume {:>8} left {:>7}{}", cell, over,
        lost,
        r->resume_ms < 0 ? std::string("-")
                         : fmt::format("{:.0f} ms", r->resume_ms),
        left,
        fault == Fault::kInstanceDeath
            ? fmt::format(" dead: spent {} sent {} lease {} taken back {}",
                          r->dead_admitted, r->dead_flushed, r->dead_leased,
                          r->dead_taken_back)
            : ""));
    if (verbose) std::fprintf(stderr, "%s:\n%s", cell.c_str(), r->log.c_str());
    if (const std::string bad = Verdict(run, *r); !bad.empty()) {
      failures.push_back(fmt::format(
          "{}:{} (spent {}, at the fault {}, during {}, redis t {}, "
          "credits {})\n{}",
          cell, bad, r->admitted, r->admitted_at_fault, r->admitted_during,
          r->redis_total, r->credited, r->log));
      state.SkipWithError(bad.c_str());
    }
  }
}

void Register(bool quick) {
  const Fault faults[] = {Fault::kRestartEmpty, Fault::kFlushAll,
                          Fault::kFailover, Fault::kPartition,
                          Fault::kInstanceDeath};
  std::vector<int64_t> ns = {2};
  if (!quick) ns = {2, 4, 8};
  for (const Fault f : faults) {
    const std::string name = std::string("BM_WalletFault/") + FaultName(f);
    benchmark::RegisterBenchmark(name.c_str(), BM_WalletFault, f)
        ->ArgsProduct({ns, {40, 90}})
        ->ArgNames({"n", "at%"})
        ->Iterations(1)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
}

}  // namespace

int main(int argc, char** argv) {
  // --quick and --verbose (ours) before google benchmark sees the flags.
  bool quick = false;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (std::strcmp(argv[i], "--verbose") == 0) {
      verbose = true;
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  Register(quick);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::printf("\nshared wallet of %lld micros, %lld per request:\n",
              static_cast<long long>(kBalance), static_cast<long long>(kPrice));
  for (const std::string& row : rows) std::printf("  %s\n", row.c_str());
  if (!failures.empty()) {
    std::fprintf(stderr, "\nwallet_fault_benchmark: %zu run(s) failed:\n",
                 failures.size());
    for (const std::string& f : failures) {
      std::fprintf(stderr, "  %s\n", f.c_str());
    }
    return 1;
  }
  return 0;
}
