// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// Check latency and throughput, side by side with a baseline that does the
// same counting under a mutex in an absl::flat_hash_map. Compare within one
// run: the machines are small and noisy, and Debian's Google Benchmark is a
// debug build whose loop costs a few ns.
//
//   BM_CheckLatency/{Plangate,Baseline}/<accounts>: per-call latency of one
//     check with 3 applicable limits (monthly, daily, per-minute sliding),
//     timed with the TSC around the call only; counters p50_ns and p99_ns
//     come from a histogram of every call. The reservation is committed
//     outside the timed region. ...PlangatePrefetch: the same with
//     Enforcer::Prefetch of the next account after each commit.
//   BM_Throughput/{Plangate,Baseline}/{Distinct,Hot}: check + commit per
//     iteration on 1 and 2 threads, on distinct accounts per thread or one
//     hot account for all.

#include <benchmark/benchmark.h>
#include <x86intrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "mutex_map_baseline.h"
#include "plangate/catalog.h"
#include "plangate/enforcer.h"

namespace {

using plangate::bench::kCatalog;
using plangate::bench::kNow;
using plangate::bench::MutexMapBaseline;

// Shared state per account count: built once, reused by every benchmark.
struct World {
  std::vector<std::string> ids;
  std::unique_ptr<plangate::Enforcer> enforcer;
  MutexMapBaseline baseline;
};

World& GetWorld(size_t accounts) {
  static std::map<size_t, std::unique_ptr<World>> worlds;
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  auto& w = worlds[accounts];
  if (w) return *w;
  w = std::make_unique<World>();
  auto catalog = plangate::Catalog::Parse(kCatalog);
  plangate::EnforcerOptions options;
  options.max_subjects = accounts + 16;
  options.max_reservations = 1 << 16;
  w->enforcer = std::move(*plangate::Enforcer::Create(*catalog, options));
  w->ids.reserve(accounts);
  for (size_t i = 0; i < accounts; ++i) {
    // Realistic ids: a prefix and a 20-char suffix.
    w->ids.push_back("acct_" +
                     std::to_string(1'000'000'000'000'000'000ull + i * 7919));
    auto s = w->enforcer->UpsertAccount(
        {.account_id = w->ids.back(), .plan_id = "p", .anchor_ms = kNow});
    if (!s.ok()) std::abort();
    w->baseline.Add(w->ids.back());
  }
  return *w;
}

// TSC ticks per ns, calibrated once against steady_clock.
double TicksPerNs() {
  static const double ratio = [] {
    const auto t0 = std::chrono::steady_clock::now();
    const uint64_t c0 = __rdtsc();
    while (std::chrono::steady_clock::now() - t0 <
           std::chrono::milliseconds(50)) {
    }
    const uint64_t c1 = __rdtsc();
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::steady_clock::now() - t0)
                        .count();
    return static_cast<double>(c1 - c0) / static_cast<double>(ns);
  }();
  return ratio;
}

inline uint64_t Stamp() {
  _mm_lfence();
  const uint64_t t = __rdtsc();
  _mm_lfence();
  return t;
}

// The ids of `count` requests laid out one after another, as a gateway
// holds the key of the request it just parsed: hot in cache, not behind a
// random pointer.
struct RequestStream {
  std::string bytes;
  std::vector<uint32_t> offsets;
  std::vector<uint16_t> lengths;
  std::string_view at(size_t i) const {
    i &= offsets.size() - 1;
    return {bytes.data() + offsets[i], lengths[i]};
  }
};

RequestStream MakeStream(const World& w, size_t count, uint32_t seed,
                         size_t base = 0, size_t span = 0) {
  if (span == 0) span = w.ids.size();
  RequestStream s;
  std::mt19937 rng(seed);
  for (size_t i = 0; i < count; ++i) {
    const std::string& id = w.ids[base + rng() % span];
    s.offsets.push_back(static_cast<uint32_t>(s.bytes.size()));
    s.lengths.push_back(static_cast<uint16_t>(id.size()));
    s.bytes += id;
  }
  return s;
}

void ReportPercentiles(benchmark::State& state, std::vector<uint64_t>& ticks,
                       uint64_t overhead) {
  if (ticks.empty()) return;
  std::sort(ticks.begin(), ticks.end());
  const double per_ns = TicksPerNs();
  auto at = [&](double q) {
    const uint64_t t =
        ticks[static_cast<size_t>(q * static_cast<double>(ticks.size() - 1))];
    return static_cast<double>(t > overhead ? t - overhead : 0) / per_ns;
  };
  state.counters["p50_ns"] = at(0.50);
  state.counters["p99_ns"] = at(0.99);
  state.counters["timer_ns"] = static_cast<double>(overhead) / per_ns;
}

uint64_t TimerOverhead() {
  static const uint64_t overhead = [] {
    std::vector<uint64_t> t(100'000);
    for (auto& x : t) {
      const uint64_t a = Stamp();
      x = Stamp() - a;
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  }();
  return overhead;
}

// Times `check(id, now)` alone per call, into a histogram; `after(result)`
// runs untimed (the plangate commit), then `next(id)` with the next call's
// id (a host's Prefetch when the next request's headers arrive).
template <typename CheckFn, typename AfterFn, typename NextFn>
void MeasureLatency(benchmark::State& state, CheckFn check, AfterFn after,
                    NextFn next) {
  World& w = GetWorld(static_cast<size_t>(state.range(0)));
  const RequestStream stream = MakeStream(w, 1 << 20, 1);
  std::vector<uint64_t> ticks;
  ticks.reserve(1 << 22);
  const uint64_t overhead = TimerOverhead();
  size_t i = 0;
  int64_t now = kNow;
  for (auto _ : state) {
    const std::string_view id = stream.at(i++);
    const uint64_t t0 = Stamp();
    const auto result = check(w, id, ++now);
    const uint64_t t1 = Stamp();
    if (ticks.size() < ticks.capacity()) ticks.push_back(t1 - t0);
    after(w, result);
    next(w, stream.at(i));
    benchmark::DoNotOptimize(result);
  }
  ReportPercentiles(state, ticks, overhead);
}

void NoNext(World&, std::string_view) {}

void BM_CheckLatencyPlangate(benchmark::State& state) {
  MeasureLatency(
      state,
      [](World& w, std::string_view id, int64_t now) {
        return w.enforcer->Check({.account_id = id, .now_ms = now});
      },
      [](World& w, const plangate::Decision& d) {
        w.enforcer->Commit({.reservation = d.reservation});
      },
      NoNext);
}

// The same, with Enforcer::Prefetch of the next account issued after the
// commit: the gap between the hint and the timed check is only the
// benchmark's untimed commit and bookkeeping (a gateway parses a body in
// between, which hides more of the miss).
void BM_CheckLatencyPlangatePrefetch(benchmark::State& state) {
  MeasureLatency(
      state,
      [](World& w, std::string_view id, int64_t now) {
        return w.enforcer->Check({.account_id = id, .now_ms = now});
      },
      [](World& w, const plangate::Decision& d) {
        w.enforcer->Commit({.reservation = d.reservation});
      },
      [](World& w, std::string_view next) { w.enforcer->Prefetch(next); });
}

void BM_CheckLatencyBaseline(benchmark::State& state) {
  MeasureLatency(
      state,
      [](World& w, std::string_view id, int64_t now) {
        return w.baseline.Check(id, now);
      },
      [](World&, bool) {}, NoNext);
}

constexpr size_t kThroughputAccounts = 100'000;

// range(0): 0 = distinct accounts per thread (each thread its own half of
// the accounts), 1 = one hot account for all threads. check_and_settle
// gets the request's id and the id of the request two ahead (for a
// Prefetch).
template <typename Fn>
void MeasureThroughput(benchmark::State& state, Fn check_and_settle) {
  World& w = GetWorld(kThroughputAccounts);
  const bool hot = state.range(0) == 1;
  const size_t half = w.ids.size() / 2;
  const RequestStream stream =
      MakeStream(w, 1 << 16, static_cast<uint32_t>(state.thread_index()) + 7,
                 state.thread_index() % 2 == 0 ? 0 : half, half);
  size_t i = 0;
  for (auto _ : state) {
    const std::string_view id = hot ? std::string_view(w.ids[0]) : stream.at(i);
    const std::string_view ahead = hot ? id : stream.at(i + 2);
    check_and_settle(w, id, ahead, kNow + static_cast<int64_t>(++i >> 12));
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_ThroughputPlangate(benchmark::State& state) {
  MeasureThroughput(
      state, [](World& w, std::string_view id, std::string_view, int64_t now) {
        const plangate::Decision d =
            w.enforcer->Check({.account_id = id, .now_ms = now});
        w.enforcer->Commit({.reservation = d.reservation});
        benchmark::DoNotOptimize(d);
      });
}

// As BM_ThroughputPlangate, with the host's Prefetch of the request two
// ahead (what a gateway does when a request's headers arrive, before its
// body is parsed): the record's lines come in while earlier checks run.
void BM_ThroughputPlangatePrefetch(benchmark::State& state) {
  MeasureThroughput(state, [](World& w, std::string_view id,
                              std::string_view ahead, int64_t now) {
    w.enforcer->Prefetch(ahead);
    const plangate::Decision d =
        w.enforcer->Check({.account_id = id, .now_ms = now});
    w.enforcer->Commit({.reservation = d.reservation});
    benchmark::DoNotOptimize(d);
  });
}

void BM_ThroughputBaseline(benchmark::State& state) {
  MeasureThroughput(
      state, [](World& w, std::string_view id, std::string_view, int64_t now) {
        benchmark::DoNotOptimize(w.baseline.Check(id, now));
      });
}

BENCHMARK(BM_CheckLatencyPlangate)->Arg(100'000)->Arg(1'000'000);
BENCHMARK(BM_CheckLatencyPlangatePrefetch)->Arg(100'000)->Arg(1'000'000);
BENCHMARK(BM_CheckLatencyBaseline)->Arg(100'000)->Arg(1'000'000);
BENCHMARK(BM_ThroughputPlangate)
    ->ArgNames({"hot"})
    ->Arg(0)
    ->Arg(1)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(BM_ThroughputPlangatePrefetch)
    ->ArgNames({"hot"})
    ->Arg(0)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(BM_ThroughputBaseline)
    ->ArgNames({"hot"})
    ->Arg(0)
    ->Arg(1)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
