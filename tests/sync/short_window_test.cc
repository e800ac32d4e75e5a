// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// Short fixed windows are leased like the long ones: 2, 4 and 8 instances
// sending far more than the limit admit at most the limit in every window,
// and Redis holds exactly what each window admitted. Against a real
// redis-server; the windows are real ("2s", on the system clock).

#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/redis_server.h"
#include "sync/sync_test_util.h"

namespace plangate::testing {
namespace {

using std::chrono::milliseconds;

constexpr int64_t kLimit = 100;
constexpr int64_t kWindowMs = 2000;

// Sum of field t of the account's counter key for the window at start_ms.
int64_t RedisTotal(const RedisServer& server, int64_t start_ms) {
  auto keys = server.Command(
      {"KEYS", "pg:{acme}:account::requests:2s:f:" + std::to_string(start_ms)});
  REQUIRE(keys.ok());
  int64_t sum = 0;
  for (const auto& k : keys->elements) {
    auto t = server.Command({"HGET", k.str, "t"});
    REQUIRE(t.ok());
    if (t->type == RedisServer::Reply::Type::kString) sum += std::stoll(t->str);
  }
  return sum;
}

void Run(int n) {
  INFO(n << " instances");
  auto started = RedisServer::Start();
  REQUIRE(started.ok());
  RedisServer& server = **started;
  // local_share, not a short window's default fail_open: a stall of the
  // loaded test machine can make an instance think Redis is down, and
  // fail_open then admits past the limit by design. local_share's down
  // reserves hold the limit through that too, which is what this checks.
  const std::string catalog = R"({"version": 1, "plans": [{"id": "burst",
      "limits": [{"id": "per2s", "window": "2s", "limit": 100,
                  "redis_down": "local_share"}]}]})";
  std::vector<Instance> inst(n);
  for (auto& i : inst) {
    SyncOptions o = TestSyncOptions(server.port());
    o.expected_instances = n;
    REQUIRE_NOTHROW(i = MakeInstance(catalog, "acme", "burst", o));
  }
  // Start on a window boundary, run three whole windows.
  const int64_t now = SystemClock().NowMs();
  const int64_t first = (now / kWindowMs + 1) * kWindowMs;
  const int64_t stop_at = first + 3 * kWindowMs;
  std::this_thread::sleep_for(milliseconds(first - now));
  std::vector<std::map<int64_t, int64_t>> per_window(n);
  // Per instance and window: when the first request was admitted, after
  // the window started (the cold start: the new window's first lease).
  std::vector<std::map<int64_t, int64_t>> first_admit(n);
  std::atomic<int64_t> checks{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t) {
    threads.emplace_back([&, t] {
      SystemClock clock;
      for (;;) {
        const int64_t at = clock.NowMs();
        if (at >= stop_at) break;
        const Decision d = inst[t].Check("acme");
        checks.fetch_add(1, std::memory_order_relaxed);
        if (d.admitted()) {
          if (per_window[t][d.window_start_ms]++ == 0) {
            first_admit[t][d.window_start_ms] = at - d.window_start_ms;
          }
        }
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
    });
  }
  for (auto& th : threads) th.join();
  for (auto& i : inst) {
    const absl::Status s = i.sync->Drain(milliseconds(10000));
    const SyncStats st = i.sync->Stats();
    INFO(s.message() << "; counters " << st.counters << " pending "
                     << st.pending << " leased " << st.leased_counters
                     << " last error " << i.sync->LastError());
    REQUIRE(s.ok());
  }
  std::map<int64_t, int64_t> admitted;
  for (const auto& m : per_window) {
    for (const auto& [start, count] : m) admitted[start] += count;
  }
  // The demand: far more than the limit in every window.
  CHECK(checks.load() >= 10 * kLimit * 3);
  int64_t whole = 0;
  for (const auto& [start, count] : admitted) {
    INFO("window at " << start << ": admitted " << count);
    CHECK(count <= kLimit);
    CHECK(RedisTotal(server, start) == count);
    if (start >= first && start + kWindowMs <= stop_at) whole += count;
  }
  // Most of each window's limit is used, cold starts included.
  CHECK(whole >= 3 * kLimit / 2);
  int64_t worst = 0;
  double sum = 0;
  int windows = 0;
  for (const auto& m : first_admit) {
    for (const auto& [start, ms] : m) {
      if (start < first || start + kWindowMs > stop_at) continue;
      worst = std::max(worst, ms);
      sum += static_cast<double>(ms);
      ++windows;
    }
  }
  WARN(n << " instances: a window's first admit came " << sum / windows
         << " ms after its start on average, " << worst << " ms at worst");
  CHECK(worst < kWindowMs / 4);
}

TEST_CASE("short windows: the limit holds per window across instances",
          "[sync][redis][lease]") {
  for (const int n : {2, 4, 8}) Run(n);
}

}  // namespace
}  // namespace plangate::testing
