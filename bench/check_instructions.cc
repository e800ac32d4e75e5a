// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// check_instructions: the instruction count of one check + commit on a hot
// account with the check benchmark's three limits (monthly with grace,
// daily, per-minute sliding), side by side with the mutex + hash map
// baseline (mutex_map_baseline.h) doing the same counting. Instruction counts
// do not depend on a noisy machine, so this is the figure to hold the hot path
// to (target:
// <= 300 per check + commit).
//
// Run it under callgrind, collecting only inside the two measured loops:
//
//   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//     --collect-atstart=no --toggle-collect='*MeasuredPlangate*' \
//     build/release/bench/check_instructions --checks 20000
//
// (the same with '*MeasuredBaseline*' for the baseline); tools/test.sh's
// bench stage does both and prints instructions per check + commit. Run
// without valgrind it just does the work once and prints nothing but a
// line, so the bench stage's plain run of every bench binary passes.
// --usage-by-model turns per-model usage on and names a model in every
// check. --denied checks an account whose daily limit is used up: every
// check is a denial (MeasuredPlangateDenied; 429 storms). --accounts N checks N
// accounts in a fixed pseudo-random order (MeasuredPlangateMany /
// MeasuredBaselineMany): with --cache-sim=yes, callgrind's last-level misses
// per check count the cache lines a check brings in from memory. --synced
// PORT attaches a RedisSync (leases on, one instance) to a redis-server on
// 127.0.0.1:PORT and counts MeasuredPlangateSynced, beside
// MeasuredPlangateClocked: the same enforcer's checks before the sync is
// attached. Both read the Enforcer's clock (a sync brings counters in step
// for the clock's windows), so the two differ by the sync's part of a check
// only; the sync's own threads are not counted (callgrind toggles
// collection per thread). Other flags (the benchmark flags the bench stage
// passes) are ignored.

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mutex_map_baseline.h"
#include "plangate/catalog.h"
#include "plangate/enforcer.h"
#include "plangate/sync.h"

namespace {

using plangate::bench::kCatalog;
using plangate::bench::kNow;
using Baseline = plangate::bench::MutexMapBaseline;

// noinline: callgrind's --toggle-collect names these.
__attribute__((noinline)) int64_t MeasuredPlangate(plangate::Enforcer& e,
                                                   int checks) {
  int64_t admitted = 0;
  for (int i = 0; i < checks; ++i) {
    const plangate::Decision d =
        e.Check({.account_id = "acme", .now_ms = kNow + i});
    admitted += d.admitted();
    e.Commit({.reservation = d.reservation, .success = true});
  }
  return admitted;
}

// Checks at the Enforcer's clock (now_ms 0), in local mode and with a sync
// attached (--synced): one loop under two names for callgrind (noipa: not
// folded into one function).
__attribute__((always_inline)) inline int64_t CheckAtClock(
    plangate::Enforcer& e, int checks) {
  int64_t admitted = 0;
  for (int i = 0; i < checks; ++i) {
    const plangate::Decision d = e.Check({.account_id = "acme"});
    admitted += d.admitted();
    e.Commit({.reservation = d.reservation, .success = true});
  }
  return admitted;
}
__attribute__((noinline, noipa)) int64_t MeasuredPlangateClocked(
    plangate::Enforcer& e, int checks) {
  return CheckAtClock(e, checks);
}
__attribute__((noinline, noipa)) int64_t MeasuredPlangateSynced(
    plangate::Enforcer& e, int checks) {
  return CheckAtClock(e, checks);
}

// --synced PORT: the clocked checks without, then with a RedisSync.
int RunSynced(int checks, int port) {
  auto catalog = plangate::Catalog::Parse(kCatalog);
  if (!catalog.ok()) return 1;
  auto enforcer = plangate::Enforcer::Create(*catalog);
  if (!enforcer.ok()) return 1;
  plangate::Enforcer& e = **enforcer;
  // Anchored now: the monthly period of the clock's instant.
  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count();
  if (!e.UpsertAccount(
            {.account_id = "acme", .plan_id = "p", .anchor_ms = now_ms})
           .ok()) {
    return 1;
  }
  (void)e.Check({.account_id = "acme"});  // warm
  const int64_t local = MeasuredPlangateClocked(e, checks);
  plangate::SyncOptions o;
  o.redis.port = port;
  o.key_prefix = "check_instructions:" + std::to_string(::getpid());
  o.flush_interval = std::chrono::milliseconds(5);
  auto sync = plangate::RedisSync::Start(e, o);
  if (!sync.ok()) {
    std::fprintf(stderr, "check_instructions: %s\n",
                 sync.status().ToString().c_str());
    return 1;
  }
  // Until the account's counters are in step with Redis (ready): before
  // that a check takes the cold-start path.
  for (int i = 0; i < 200; ++i) {
    (void)e.Check({.account_id = "acme"});
    if (!(*sync)->Flush(std::chrono::milliseconds(1000)).ok()) return 1;
  }
  const int64_t synced = MeasuredPlangateSynced(e, checks);
  (void)(*sync)->Flush(std::chrono::milliseconds(1000));
  std::printf(
      "check_instructions: %d checks, %lld admitted local, %lld "
      "synced\n",
      checks, static_cast<long long>(local), static_cast<long long>(synced));
  return local == checks && synced == checks ? 0 : 1;
}

// The same with per-model usage on ("usage_by_model", --usage-by-model):
// every check names a model, counted apart.
__attribute__((noinline)) int64_t MeasuredPlangateByModel(plangate::Enforcer& e,
                                                          int checks) {
  int64_t admitted = 0;
  for (int i = 0; i < checks; ++i) {
    const plangate::Decision d =
        e.Check({.account_id = "acme", .model = "gpt-4o", .now_ms = kNow + i});
    admitted += d.admitted();
    e.Commit({.reservation = d.reservation, .success = true});
  }
  return admitted;
}

// Every check denied (the daily limit is used up): what a client that
// keeps retrying past its limit costs.
__attribute__((noinline)) int64_t MeasuredPlangateDenied(plangate::Enforcer& e,
                                                         int checks) {
  int64_t denied = 0;
  for (int i = 0; i < checks; ++i) {
    const plangate::Decision d =
        e.Check({.account_id = "acme", .now_ms = kNow + i});
    denied += !d.admitted();
  }
  return denied;
}

__attribute__((noinline)) int64_t MeasuredBaseline(Baseline& b, int checks) {
  int64_t admitted = 0;
  for (int i = 0; i < checks; ++i) admitted += b.Check("acme", kNow + i);
  return admitted;
}

// Many accounts, in a pseudo-random order both loops share: under
// callgrind --cache-sim=yes the last-level misses per check say how many
// cache lines a check brings in from memory (target: at most one dependent
// DRAM miss per check).
std::vector<std::string> ids;
std::vector<uint32_t> order;

__attribute__((noinline)) int64_t MeasuredPlangateMany(plangate::Enforcer& e,
                                                       int checks) {
  int64_t admitted = 0;
  for (int i = 0; i < checks; ++i) {
    const plangate::Decision d =
        e.Check({.account_id = ids[order[i]], .now_ms = kNow + i});
    admitted += d.admitted();
    e.Commit({.reservation = d.reservation, .success = true});
  }
  return admitted;
}

__attribute__((noinline)) int64_t MeasuredBaselineMany(Baseline& b,
                                                       int checks) {
  int64_t admitted = 0;
  for (int i = 0; i < checks; ++i) {
    admitted += b.Check(ids[order[i]], kNow + i);
  }
  return admitted;
}

int RunMany(int checks, int accounts) {
  auto catalog = plangate::Catalog::Parse(kCatalog);
  if (!catalog.ok()) return 1;
  plangate::EnforcerOptions options;
  options.max_subjects = static_cast<size_t>(accounts) * 2;
  auto enforcer = plangate::Enforcer::Create(*catalog, options);
  if (!enforcer.ok()) return 1;
  Baseline baseline;
  for (int a = 0; a < accounts; ++a) {
    ids.push_back("acct-" + std::to_string(a));
    if (!(*enforcer)
             ->UpsertAccount(
                 {.account_id = ids.back(), .plan_id = "p", .anchor_ms = kNow})
             .ok()) {
      return 1;
    }
    baseline.Add(ids.back());
  }
  uint64_t x = 88172645463325252ull;  // xorshift64: the same order each run
  for (int i = 0; i < checks; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    order.push_back(static_cast<uint32_t>(x % static_cast<uint64_t>(accounts)));
  }
  // Warm: every account seen once (period caches), outside the measured
  // loops; what stays in cache after that is what a busy gateway has.
  for (const std::string& id : ids) {
    const plangate::Decision d =
        (*enforcer)->Check({.account_id = id, .now_ms = kNow});
    (*enforcer)->Commit({.reservation = d.reservation, .success = true});
    (void)baseline.Check(id, kNow);
  }
  const int64_t a = MeasuredPlangateMany(**enforcer, checks);
  const int64_t b = MeasuredBaselineMany(baseline, checks);
  std::printf(
      "check_instructions: %d checks on %d accounts, %lld and %lld "
      "admitted\n",
      checks, accounts, static_cast<long long>(a), static_cast<long long>(b));
  return a == checks && b == checks ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  int checks = 1000;
  int accounts = 1;
  bool by_model = false;
  bool denied = false;
  int synced_port = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--checks") == 0 && i + 1 < argc) {
      checks = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--usage-by-model") == 0) {
      by_model = true;
    } else if (std::strcmp(argv[i], "--denied") == 0) {
      denied = true;
    } else if (std::strcmp(argv[i], "--accounts") == 0 && i + 1 < argc) {
      accounts = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--synced") == 0 && i + 1 < argc) {
      synced_port = std::atoi(argv[++i]);
    }
  }
  if (accounts > 1) return RunMany(checks, accounts);
  if (synced_port > 0) return RunSynced(checks, synced_port);
  std::string json = kCatalog;
  if (by_model) json.insert(1, R"("usage_by_model": true, )");
  if (denied) {
    // The daily limit: one request a day (the warm-up below takes it).
    const std::string daily = R"("window": "day", "limit": 1000000000000)";
    json.replace(json.find(daily), daily.size(),
                 R"("window": "day", "limit": 1)");
  }
  auto catalog = plangate::Catalog::Parse(json);
  if (!catalog.ok()) return 1;
  auto enforcer = plangate::Enforcer::Create(*catalog);
  if (!enforcer.ok()) return 1;
  if (!(*enforcer)
           ->UpsertAccount(
               {.account_id = "acme", .plan_id = "p", .anchor_ms = kNow})
           .ok()) {
    return 1;
  }
  Baseline baseline;
  baseline.Add("acme");
  // Warm both (first sight, period caches), outside the measured calls.
  (void)(*enforcer)->Check(
      {.account_id = "acme", .model = "gpt-4o", .now_ms = kNow});
  (void)baseline.Check("acme", kNow);
  if (denied) {
    const int64_t d = MeasuredPlangateDenied(**enforcer, checks);
    std::printf("check_instructions: %d checks, %lld denied\n", checks,
                static_cast<long long>(d));
    return d == checks ? 0 : 1;
  }
  const int64_t a = by_model ? MeasuredPlangateByModel(**enforcer, checks)
                             : MeasuredPlangate(**enforcer, checks);
  const int64_t b = MeasuredBaseline(baseline, checks);
  std::printf("check_instructions: %d checks, %lld and %lld admitted\n", checks,
              static_cast<long long>(a), static_cast<long long>(b));
  return a == checks && b == checks ? 0 : 1;
}
