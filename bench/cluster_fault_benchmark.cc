// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// cluster_fault_benchmark: the hard cap and the time to recover under real
// Redis failures, for N = 2, 4, 8 instances (tests/sync/fault_cluster.h:
// one process, one Enforcer + RedisSync per instance, each behind its own
// TCP proxy, one account with a billing-period cap of 6,000 requests).
// Each run is one fault, caused once the cluster admitted 90% of the cap
// (where a lease granted from an incomplete total would pass it: `over`),
// and once at 40% (where most of the cap is left: `resume_ms`), with the
// local_share policy; fail_closed is run for N = 4.
//
// Counters per run (one iteration each; the time is the run's wall time):
//   over       admitted - cap (target <= 0)
//   lost       Redis total - admitted (target 0; for instance death, what
//              the dead instance admitted but never flushed, negated)
//   resume_ms  from the end of the fault until every live instance had a
//              round with Redis and admitted after it; -1 when the cap was
//              reached before the fault ended
//
//   build/release/bench/cluster_fault_benchmark
//
// Starts its own redis-servers (PLANGATE_TEST_REDIS_SERVER or redis-server
// on PATH).

#include <benchmark/benchmark.h>

#include <cstdio>

#include "sync/fault_cluster.h"

namespace {

using plangate::RedisDownPolicy;
using plangate::testing::Fault;
using plangate::testing::FaultRun;
using plangate::testing::RunFault;

void BM_Fault(benchmark::State& state, Fault fault, RedisDownPolicy policy) {
  FaultRun run;
  run.fault = fault;
  run.policy = policy;
  run.instances = static_cast<int>(state.range(0));
  run.fault_at = static_cast<double>(state.range(1)) / 100;
  run.after = std::chrono::milliseconds(run.fault_at > 0.5 ? 1000 : 1500);
  if (fault == Fault::kPartition) {
    run.outage = run.lease_ttl + run.lease_ttl / 2;
  }
  for (auto _ : state) {
    auto r = RunFault(run);
    if (!r.ok()) {
      state.SkipWithError(std::string(r.status().message()).c_str());
      return;
    }
    state.counters["over"] = static_cast<double>(r->admitted - run.hard);
    state.counters["lost"] = static_cast<double>(r->redis_total - r->admitted);
    state.counters["resume_ms"] = r->resume_ms;
    state.counters["admitted"] = static_cast<double>(r->admitted);
  }
}

void Register() {
  const Fault faults[] = {Fault::kRestartEmpty, Fault::kFlushAll,
                          Fault::kFailover, Fault::kPartition,
                          Fault::kInstanceDeath};
  for (const Fault f : faults) {
    const std::string name = std::string("BM_Fault/") +
                             plangate::testing::FaultName(f) + "/local_share";
    benchmark::RegisterBenchmark(name.c_str(), BM_Fault, f,
                                 RedisDownPolicy::kLocalShare)
        ->ArgsProduct({{2, 4, 8}, {40, 90}})
        ->ArgNames({"n", "at%"})
        ->Iterations(1)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    const std::string closed = std::string("BM_Fault/") +
                               plangate::testing::FaultName(f) + "/fail_closed";
    benchmark::RegisterBenchmark(closed.c_str(), BM_Fault, f,
                                 RedisDownPolicy::kFailClosed)
        ->Args({4, 90})
        ->ArgNames({"n", "at%"})
        ->Iterations(1)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
}

}  // namespace

int main(int argc, char** argv) {
  Register();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
