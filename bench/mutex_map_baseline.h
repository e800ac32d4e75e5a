// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// mutex_map_baseline.h: what the check benchmarks compare plangate with:
// the benchmark's catalog (three limits: monthly with 10% grace, daily,
// per-minute sliding) and the same rule done the straightforward way, under
// one mutex in a hash map. check_benchmark times both; check_instructions
// counts their instructions.
//
// Thread safety: MutexMapBaseline::Check may be called from any thread;
// Add before the first Check.

#ifndef PLANGATE_BENCH_MUTEX_MAP_BASELINE_H_
#define PLANGATE_BENCH_MUTEX_MAP_BASELINE_H_

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"

namespace plangate::bench {

inline constexpr int64_t kNow = 1'706'659'200'000;  // 2024-01-31T00:00:00Z

inline constexpr char kCatalog[] =
    R"({"version": 1, "plans": [{"id": "p", "limits": [
  {"id": "monthly", "limit": 1000000000000, "grace": 0.1},
  {"id": "daily", "window": "day", "limit": 1000000000000},
  {"id": "rpm", "window": "minute", "mode": "sliding", "limit": 1000000000000}
]}]})";

// The baseline: what a straightforward implementation does. One mutex, a
// hash map from account id to its three counters, the same rule.
class MutexMapBaseline {
 public:
  struct Counters {
    int64_t monthly = 0, daily = 0, minute = 0, prev_minute = 0;
    int64_t day_index = 0, minute_index = 0;
  };
  void Add(const std::string& id) { map_[id]; }
  bool Check(std::string_view id, int64_t now_ms) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(absl::string_view(id.data(), id.size()));
    if (it == map_.end()) return false;
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

 private:
  std::mutex mu_;
  absl::flat_hash_map<std::string, Counters> map_;
};

}  // namespace plangate::bench

#endif  // PLANGATE_BENCH_MUTEX_MAP_BASELINE_H_
