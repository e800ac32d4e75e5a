// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// sync_benchmark: plangate with cluster sync against the naive design, side
// by side in one run, on a real redis-server.
//
//  - BM_NaiveIncr: one Redis INCR per request, then compare with the cap
//    (what a gateway without plangate does).
//  - BM_PlangateCheckSynced: Enforcer::Check + Commit with a RedisSync
//    attached and flushing in the background. Counters:
//    redis_cmds_per_check, checks_per_round_trip and sync_cpu_ns_per_check
//    (the CPU the sync's threads spent meanwhile, per check).
//  - BM_PlangateCheckLocal: the same checks without a sync (local mode),
//    the baseline of the sync's per-check cost.
//  - BM_Overshoot/N/leases: N instances hammer one account at its hard
//    cap; counter `overshoot` = admitted - hard (0 is the goal).
//
// Needs a redis-server: PLANGATE_BENCH_REDIS_PORT or
// PLANGATE_TEST_REDIS_PORT (tools/test.sh exports the latter). Without one
// every benchmark is skipped with a message. PLANGATE_BENCH_FLUSH_MS sets
// the sync's flush interval (default 5 ms; the option's default is 10):
// how often the sync strand reads every busy record is part of what sync
// costs a check.

#include <benchmark/benchmark.h>
#include <hiredis/hiredis.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/check_path_access.h"
#include "plangate/catalog.h"
#include "plangate/enforcer.h"
#include "plangate/sync.h"

namespace {

using namespace plangate;

int RedisPort() {
  for (const char* var :
       {"PLANGATE_BENCH_REDIS_PORT", "PLANGATE_TEST_REDIS_PORT"}) {
    if (const char* v = std::getenv(var)) return std::atoi(v);
  }
  return 0;
}

int FlushMs() {
  const char* v = std::getenv("PLANGATE_BENCH_FLUSH_MS");
  const int ms = v != nullptr ? std::atoi(v) : 0;
  return ms > 0 ? ms : 5;
}

constexpr int64_t kAnchorMs = 1767225600000;

std::string CapCatalog(int64_t limit) {
  return R"({"version": 1, "plans": [{"id": "p", "limits": [
    {"id": "monthly", "meter": "requests", "window": "billing_period",
     "limit": )" +
         std::to_string(limit) + "}]}]}";
}

struct Node {
  std::unique_ptr<Enforcer> enforcer;
  std::unique_ptr<RedisSync> sync;
};

// sync == false: the same enforcer in local mode (the baseline of the
// per-check cost with sync on).
Node MakeNode(int64_t limit, const std::string& prefix, bool leases,
              int instances, int accounts, bool sync = true) {
  Node n;
  auto catalog = Catalog::Parse(CapCatalog(limit));
  EnforcerOptions eo;
  eo.max_subjects = 1 << 16;
  n.enforcer = std::move(*Enforcer::Create(*catalog, eo));
  if (!sync) {
    for (int a = 0; a < accounts; ++a) {
      AccountUpdate up;
      up.account_id = "acct" + std::to_string(a);
      up.plan_id = "p";
      up.anchor_ms = kAnchorMs;
      (void)n.enforcer->UpsertAccount(up);
    }
    return n;
  }
  SyncOptions o;
  o.redis.port = RedisPort();
  o.key_prefix = prefix;
  o.leases = leases;
  o.expected_instances = instances;
  o.flush_interval = std::chrono::milliseconds(FlushMs());
  n.sync = std::move(*RedisSync::Start(*n.enforcer, o));
  // Registered after the sync is attached: their counters are primed.
  for (int a = 0; a < accounts; ++a) {
    AccountUpdate up;
    up.account_id = "acct" + std::to_string(a);
    up.plan_id = "p";
    up.anchor_ms = kAnchorMs;
    (void)n.enforcer->UpsertAccount(up);
  }
  (void)n.sync->Flush(std::chrono::milliseconds(5000));
  return n;
}

int64_t CpuNs(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

std::string Unique(const char* what) {
  return std::string(what) +
         std::to_string(
             std::chrono::steady_clock::now().time_since_epoch().count());
}

void BM_NaiveIncr(benchmark::State& state) {
  if (RedisPort() == 0) {
    state.SkipWithError("no redis-server (set PLANGATE_BENCH_REDIS_PORT)");
    return;
  }
  redisContext* ctx = redisConnect("127.0.0.1", RedisPort());
  if (ctx == nullptr || ctx->err != 0) {
    state.SkipWithError("cannot connect to redis-server");
    return;
  }
  const std::string key = Unique("naive:");
  int64_t admitted = 0;
  for (auto _ : state) {
    auto* r =
        static_cast<redisReply*>(redisCommand(ctx, "INCR %s", key.c_str()));
    admitted += r != nullptr && r->integer <= 100000000;
    freeReplyObject(r);
  }
  benchmark::DoNotOptimize(admitted);
  state.counters["redis_cmds_per_check"] = 1;
  redisFree(ctx);
}
BENCHMARK(BM_NaiveIncr)->UseRealTime();

void BM_PlangateCheckSynced(benchmark::State& state) {
  if (RedisPort() == 0) {
    state.SkipWithError("no redis-server (set PLANGATE_BENCH_REDIS_PORT)");
    return;
  }
  const int accounts = static_cast<int>(state.range(0));
  Node node = MakeNode(100000000, Unique("bench"), true, 1, accounts);
  internal::CheckPathAccess::SetFastChecks(*node.enforcer, state.range(1) != 0);
  std::vector<std::string> ids;
  for (int a = 0; a < accounts; ++a) ids.push_back("acct" + std::to_string(a));
  const SyncStats before = node.sync->Stats();
  const int64_t process_before = CpuNs(CLOCK_PROCESS_CPUTIME_ID);
  const int64_t thread_before = CpuNs(CLOCK_THREAD_CPUTIME_ID);
  size_t i = 0;
  int64_t admitted = 0;
  for (auto _ : state) {
    CheckRequest req;
    req.account_id = ids[i++ % ids.size()];
    const Decision d = node.enforcer->Check(req);
    admitted += d.admitted();
    // Committed, as a host does: an uncommitted reservation stays Pending
    // until its expiry, and a table full of them sends every check's
    // reservation to the slow scan.
    CommitRequest commit;
    commit.reservation = d.reservation;
    (void)node.enforcer->Commit(commit);
  }
  // The CPU the sync's threads spent meanwhile (on the other core), per
  // check: the process's less this thread's.
  const int64_t others = (CpuNs(CLOCK_PROCESS_CPUTIME_ID) - process_before) -
                         (CpuNs(CLOCK_THREAD_CPUTIME_ID) - thread_before);
  (void)node.sync->Flush(std::chrono::milliseconds(10000));
  const SyncStats after = node.sync->Stats();
  const double checks = static_cast<double>(state.iterations());
  state.counters["sync_cpu_ns_per_check"] =
      checks > 0 ? static_cast<double>(others) / checks : 0;
  // Under a cap of 100M every check fits: what is not admitted is this
  // instance's lease running short (a transient 429).
  state.counters["admitted"] =
      checks > 0 ? static_cast<double>(admitted) / checks : 0;
  const double cmds = static_cast<double>(after.commands - before.commands);
  const double trips =
      static_cast<double>(after.round_trips - before.round_trips);
  state.counters["redis_cmds_per_check"] = checks > 0 ? cmds / checks : 0;
  state.counters["checks_per_round_trip"] = trips > 0 ? checks / trips : 0;
  benchmark::DoNotOptimize(admitted);
}
// Second argument: 1 with the fast check (fast_check.cc), 0 the general
// path only (what the fast one is checked against).
BENCHMARK(BM_PlangateCheckSynced)
    ->Args({1, 1})
    ->Args({1000, 1})
    ->Args({1, 0})
    ->Args({1000, 0})
    ->UseRealTime();

// The same checks with no sync attached: BM_PlangateCheckSynced / this is
// the per-check cost of cluster sync (target <= 1.2x).
void BM_PlangateCheckLocal(benchmark::State& state) {
  const int accounts = static_cast<int>(state.range(0));
  Node node = MakeNode(100000000, "", true, 1, accounts, /*sync=*/false);
  internal::CheckPathAccess::SetFastChecks(*node.enforcer, state.range(1) != 0);
  std::vector<std::string> ids;
  for (int a = 0; a < accounts; ++a) ids.push_back("acct" + std::to_string(a));
  size_t i = 0;
  int64_t admitted = 0;
  for (auto _ : state) {
    CheckRequest req;
    req.account_id = ids[i++ % ids.size()];
    const Decision d = node.enforcer->Check(req);
    admitted += d.admitted();
    // Committed, as a host does: an uncommitted reservation stays Pending
    // until its expiry, and a table full of them sends every check's
    // reservation to the slow scan.
    CommitRequest commit;
    commit.reservation = d.reservation;
    (void)node.enforcer->Commit(commit);
  }
  benchmark::DoNotOptimize(admitted);
}
BENCHMARK(BM_PlangateCheckLocal)
    ->Args({1, 1})
    ->Args({1000, 1})
    ->Args({1, 0})
    ->Args({1000, 0})
    ->UseRealTime();

// Not a timing: N instances (one thread each) hammer one account whose
// hard cap is 5,000 for 1.5 s; reports admitted - cap.
void BM_Overshoot(benchmark::State& state) {
  if (RedisPort() == 0) {
    state.SkipWithError("no redis-server (set PLANGATE_BENCH_REDIS_PORT)");
    return;
  }
  const int n = static_cast<int>(state.range(0));
  const bool leases = state.range(1) != 0;
  constexpr int64_t kHard = 5000;
  int64_t admitted_total = 0;
  for (auto _ : state) {
    const std::string prefix = Unique("over");
    std::vector<Node> nodes;
    for (int k = 0; k < n; ++k) {
      nodes.push_back(MakeNode(kHard, prefix, leases, n, 1));
    }
    std::atomic<int64_t> admitted{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int k = 0; k < n; ++k) {
      threads.emplace_back([&, k] {
        CheckRequest req;
        req.account_id = "acct0";
        while (!stop.load(std::memory_order_relaxed)) {
          if (nodes[k].enforcer->Check(req).admitted()) {
            admitted.fetch_add(1, std::memory_order_relaxed);
          }
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    stop = true;
    for (auto& t : threads) t.join();
    admitted_total = admitted.load();
  }
  state.counters["admitted"] = static_cast<double>(admitted_total);
  state.counters["overshoot"] = static_cast<double>(admitted_total - kHard);
}
BENCHMARK(BM_Overshoot)
    ->ArgsProduct({{2, 4, 8}, {0, 1}})
    ->ArgNames({"instances", "leases"})
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
