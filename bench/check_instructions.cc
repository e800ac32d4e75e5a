// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// check_instructions: the instruction count of one check + commit on a hot
// account with the check benchmark's three limits (monthly with grace,
// daily, per-minute sliding), side by side with the mutex + hash map
// baseline doing the same counting. Instruction counts do not depend on a
// noisy machine, so this is the figure to hold the hot path to (target:
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
// Flags other than --checks (the benchmark flags the bench stage passes)
// are ignored.

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "plangate/catalog.h"
#include "plangate/enforcer.h"

namespace {

constexpr int64_t kNow = 1'706'659'200'000;  // 2024-01-31T00:00:00Z

constexpr char kCatalog[] = R"({"version": 1, "plans": [{"id": "p", "limits": [
  {"id": "monthly", "limit": 1000000000000, "grace": 0.1},
  {"id": "daily", "window": "day", "limit": 1000000000000},
  {"id": "rpm", "window": "minute", "mode": "sliding", "limit": 1000000000000}
]}]})";

// The same rule under one mutex in a hash map (bench/check_benchmark.cc's
// baseline, kept in step with it).
struct Baseline {
  struct Counters {
    int64_t monthly = 0, daily = 0, minute = 0, prev_minute = 0;
    int64_t day_index = 0, minute_index = 0;
  };
  bool Check(std::string_view id, int64_t now_ms) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = map.find(absl::string_view(id.data(), id.size()));
    if (it == map.end()) return false;
    Counters& c = it->second;
    const int64_t day = now_ms / 86'400'000, minute = now_ms / 60'000;
    if (c.day_index != day) c.day_index = day, c.daily = 0;
    if (c.minute_index != minute) {
      c.prev_minute = c.minute_index + 1 == minute ? c.minute : 0;
      c.minute = 0;
      c.minute_index = minute;
    }
    const int64_t left = 60'000 - now_ms % 60'000;
    const int64_t estimate = c.minute + c.prev_minute * left / 60'000;
    constexpr int64_t kCap = 1'000'000'000'000;
    if (c.monthly + 1 > kCap + kCap / 10 || c.daily + 1 > kCap ||
        estimate + 1 > kCap) {
      return false;
    }
    ++c.monthly, ++c.daily, ++c.minute;
    return true;
  }
  std::mutex mu;
  absl::flat_hash_map<std::string, Counters> map;
};

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

__attribute__((noinline)) int64_t MeasuredBaseline(Baseline& b, int checks) {
  int64_t admitted = 0;
  for (int i = 0; i < checks; ++i) admitted += b.Check("acme", kNow + i);
  return admitted;
}

}  // namespace

int main(int argc, char** argv) {
  int checks = 1000;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--checks") == 0 && i + 1 < argc) {
      checks = std::atoi(argv[++i]);
    }
  }
  auto catalog = plangate::Catalog::Parse(kCatalog);
  if (!catalog.ok()) return 1;
  auto enforcer = plangate::Enforcer::Create(*catalog);
  if (!enforcer.ok()) return 1;
  if (!(*enforcer)
           ->UpsertAccount({.account_id = "acme", .plan_id = "p",
                            .anchor_ms = kNow})
           .ok()) {
    return 1;
  }
  Baseline baseline;
  baseline.map["acme"];
  // Warm both (first sight, period caches), outside the measured calls.
  (void)(*enforcer)->Check({.account_id = "acme", .now_ms = kNow});
  (void)baseline.Check("acme", kNow);
  const int64_t a = MeasuredPlangate(**enforcer, checks);
  const int64_t b = MeasuredBaseline(baseline, checks);
  std::printf("check_instructions: %d checks, %lld and %lld admitted\n",
              checks, static_cast<long long>(a), static_cast<long long>(b));
  return a == checks && b == checks ? 0 : 1;
}
