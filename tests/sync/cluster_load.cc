// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "sync/cluster_load.h"

#include <fmt/format.h>

#include <atomic>
#include <random>
#include <thread>

#include "plangate/catalog.h"
#include "plangate/enforcer.h"
#include "redis/cluster_slot.h"
#include "sync/sync_test_util.h"

namespace plangate::testing {

std::vector<std::string> SpreadAccounts(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(fmt::format("a{}", i));
  return out;
}

std::vector<std::string> AccountsInSlot(int slot, int m) {
  std::vector<std::string> out;
  for (int i = 0; static_cast<int>(out.size()) < m; ++i) {
    std::string id = fmt::format("hot{}", i);
    if (internal::redis::KeyHashSlot(id) == slot) out.push_back(id);
  }
  return out;
}

absl::StatusOr<ClusterLoadResult> RunClusterLoad(RedisCluster& cluster,
                                                 const ClusterLoad& load) {
  RedisOptions redis = cluster.ClientOptions();
  redis.cluster_refresh = std::chrono::milliseconds(500);
  return RunSyncLoad(
      redis, [&cluster] { return cluster.HashFieldByKey("pg:{*", "t"); }, load);
}

absl::StatusOr<ClusterLoadResult> RunSyncLoad(const RedisOptions& redis,
                                              const HashTotals& totals,
                                              const ClusterLoad& load) {
  const std::string catalog_json = fmt::format(
      R"({{"version": 1, "plans": [{{"id": "cap", "limits": [
        {{"id": "monthly", "meter": "requests", "window": "billing_period",
          "limit": {}, "redis_down": "fail_closed"}}]}}]}})",
      load.cap);
  auto catalog = Catalog::Parse(catalog_json);
  if (!catalog.ok()) return catalog.status();
  const int n = load.instances;
  std::vector<Instance> inst(n);
  for (int i = 0; i < n; ++i) {
    EnforcerOptions eo;
    eo.max_subjects = load.accounts.size() * 2 + 64;
    auto e = Enforcer::Create(*catalog, eo);
    if (!e.ok()) return e.status();
    inst[i].enforcer = std::move(*e);
    SyncOptions o = TestSyncOptions(0);
    o.redis = redis;
    o.redis.command_timeout = std::chrono::milliseconds(1000);
    o.redis.connect_timeout = std::chrono::milliseconds(500);
    o.redis.reconnect_initial = std::chrono::milliseconds(20);
    o.redis.reconnect_max = std::chrono::milliseconds(200);
    o.expected_instances = n;
    o.max_batch = 4096;
    auto s = RedisSync::Start(*inst[i].enforcer, o);
    if (!s.ok()) return s.status();
    inst[i].sync = std::move(*s);
    for (const std::string& a : load.accounts) {
      AccountUpdate up;
      up.account_id = a;
      up.plan_id = "cap";
      up.anchor_ms = kAnchorMs;
      if (absl::Status st = inst[i].enforcer->UpsertAccount(up); !st.ok()) {
        return st;
      }
    }
  }
  for (int i = 0; i < n; ++i) {
    if (absl::Status st = inst[i].sync->Flush(std::chrono::seconds(30));
        !st.ok()) {
      return absl::DeadlineExceededError(
          fmt::format("instance {} first flush: {} ({})", i, st.ToString(),
                      inst[i].sync->LastError()));
    }
  }
  const size_t accounts = load.accounts.size();
  std::vector<std::atomic<int64_t>> admitted(accounts);
  for (auto& a : admitted) a = 0;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      std::mt19937 rng(static_cast<uint32_t>(i * 7919 + 1));
      std::uniform_int_distribution<size_t> pick(0, accounts - 1);
      while (!stop.load(std::memory_order_relaxed)) {
        const size_t k = pick(rng);
        if (inst[i].Check(load.accounts[k]).admitted()) {
          admitted[k].fetch_add(1, std::memory_order_relaxed);
        }
        std::this_thread::sleep_for(load.pace);
      }
    });
  }
  std::this_thread::sleep_for(load.before);
  absl::Status during = load.during ? load.during() : absl::OkStatus();
  std::this_thread::sleep_for(load.after);
  const auto give_up =
      std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    int64_t sum = 0;
    for (auto& a : admitted) sum += a.load(std::memory_order_relaxed);
    if (sum >= load.until_admitted ||
        std::chrono::steady_clock::now() > give_up) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop = true;
  for (auto& t : threads) t.join();
  if (!during.ok()) return during;

  ClusterLoadResult res;
  for (int i = 0; i < n; ++i) {
    absl::Status st = inst[i].sync->Flush(std::chrono::seconds(30));
    const SyncStats s = inst[i].sync->Stats();
    res.log += fmt::format(
        "instance {}: flush {}, rounds {}, errors {}, redirections {}, "
        "refreshes {}, primaries {}, epoch changes {}, recoveries {}, last "
        "error: {}\n",
        i, st.ToString(), s.rounds, s.errors, s.redirections,
        s.cluster_refreshes, s.cluster_primaries, s.epoch_changes, s.recoveries,
        inst[i].sync->LastError());
    res.stats.push_back(s);
    if (i == 0) res.prometheus = inst[i].sync->PrometheusText();
    if (!st.ok()) return absl::DeadlineExceededError(res.log);
  }
  auto keys = totals();
  if (!keys.ok()) return keys.status();
  for (const auto& [key, t] : *keys) {
    const size_t open = key.find('{');
    const size_t close = key.find('}', open);
    res.in_redis[key.substr(open + 1, close - open - 1)] += t;
    res.total_in_redis += t;
  }
  for (size_t k = 0; k < accounts; ++k) {
    const int64_t a = admitted[k].load();
    if (a > 0) res.admitted[load.accounts[k]] = a;
    res.total_admitted += a;
  }
  return res;
}

}  // namespace plangate::testing
