// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// RedisSync over a real Redis Cluster (3 primaries + 3 replicas on
// loopback, tests/support/redis_cluster.h), three instances in one process
// (tests/sync/cluster_load.h): with accounts on every shard, through a
// primary killed and its replica promoted, and through a slot migrated
// key by key while the load runs (ASK, then MOVED), Redis ends with
// exactly what each account was admitted, and no account passes its cap.

#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <thread>

#include "redis/cluster_slot.h"
#include "sync/cluster_load.h"

namespace plangate::testing {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<RedisCluster> StartCluster() {
  auto c = RedisCluster::Start(RedisCluster::Options());
  if (!c.ok()) FAIL("cannot start a cluster: " << c.status().ToString());
  return *std::move(c);
}

// Exact per account, the cap held, and every instance used every primary.
void CheckExact(const ClusterLoadResult& r, const ClusterLoad& load) {
  INFO(r.log);
  INFO("admitted " << r.total_admitted << ", in redis " << r.total_in_redis);
  CHECK(r.total_admitted > 0);
  CHECK(r.total_in_redis == r.total_admitted);
  int wrong = 0, over = 0, capped = 0;
  std::string first_wrong;
  for (const std::string& a : load.accounts) {
    const auto ad = r.admitted.find(a);
    const auto rd = r.in_redis.find(a);
    const int64_t admitted = ad == r.admitted.end() ? 0 : ad->second;
    const int64_t in_redis = rd == r.in_redis.end() ? 0 : rd->second;
    if (admitted != in_redis) {
      if (wrong++ == 0) {
        first_wrong = a + ": admitted " + std::to_string(admitted) +
                      ", in redis " + std::to_string(in_redis);
      }
    }
    if (admitted > load.cap) ++over;
    if (admitted == load.cap) ++capped;
  }
  INFO("first mismatch: " << first_wrong
                          << "; accounts at the cap: " << capped);
  CHECK(wrong == 0);
  CHECK(over == 0);
  for (const SyncStats& s : r.stats) {
    CHECK(s.cluster_primaries == 3);
  }
}

TEST_CASE("2,000 accounts over every shard: exact totals, caps held",
          "[sync][redis][cluster]") {
  auto cluster = StartCluster();
  ClusterLoad load;
  load.accounts = SpreadAccounts(2000);
  load.cap = 10;
  load.before = 500ms;
  load.after = 0ms;
  load.until_admitted = 2000 * 10 * 9 / 10;
  auto r = RunClusterLoad(*cluster, load);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  CheckExact(*r, load);
  // Accounts on every primary, and most reached the cap.
  std::set<int> slots;
  for (const auto& a : load.accounts) {
    slots.insert(internal::redis::KeyHashSlot(a) * 3 / 16384);
  }
  CHECK(slots.size() == 3);
  CHECK(r->total_admitted >= load.until_admitted);
  INFO(r->prometheus);
  CHECK(r->prometheus.find("plangate_sync_redis_cluster_primaries 3\n") !=
        std::string::npos);
  CHECK(r->prometheus.find("plangate_sync_redis_node_round_trips_total{node="
                           "\"127.0.0.1:") != std::string::npos);
}

TEST_CASE("a primary killed and its replica promoted mid-run",
          "[sync][redis][cluster]") {
  auto cluster = StartCluster();
  ClusterLoad load;
  // Most accounts are still below the cap when the primary dies, and reach
  // it after the failover.
  load.accounts = SpreadAccounts(300);
  load.cap = 100;
  load.pace = 200us;
  load.during = [&]() -> absl::Status {
    // The primary of the epoch key's slot: every instance loses its epoch
    // source too.
    auto primary =
        cluster->PrimaryOfSlot(internal::redis::KeyHashSlot("pg:epoch"), 0);
    if (!primary.ok()) return primary.status();
    auto replica = cluster->ReplicaOf(*primary);
    if (!replica.ok()) return replica.status();
    if (absl::Status s = cluster->node(*primary).Kill(); !s.ok()) return s;
    // Automatic failover: the replica takes over after node_timeout.
    return cluster->WaitHealthy(60s);
  };
  auto r = RunClusterLoad(*cluster, load);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  CheckExact(*r, load);
  uint64_t epoch_changes = 0;
  for (const SyncStats& s : r->stats) epoch_changes += s.epoch_changes;
  CHECK(epoch_changes > 0);  // the promotion was seen as a possible loss
}

TEST_CASE("a slot migrated key by key mid-run (ASK, then MOVED)",
          "[sync][redis][cluster]") {
  auto cluster = StartCluster();
  const int slot = 777;
  ClusterLoad load;
  load.accounts = AccountsInSlot(slot, 20);
  for (const std::string& a : SpreadAccounts(300)) load.accounts.push_back(a);
  load.cap = 1000;  // far from the cap: every hot account keeps syncing
  load.pace = 50us;
  load.during = [&]() -> absl::Status {
    auto from = cluster->PrimaryOfSlot(slot, 0);
    if (!from.ok()) return from.status();
    const int to = (*from + 1) % 3;
    return cluster->MigrateSlot(slot, *from, to,
                                [] { std::this_thread::sleep_for(30ms); });
  };
  auto r = RunClusterLoad(*cluster, load);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  CheckExact(*r, load);
  uint64_t redirections = 0;
  for (const SyncStats& s : r->stats) redirections += s.redirections;
  CHECK(redirections > 0);
  auto owner = cluster->PrimaryOfSlot(slot, 0);
  REQUIRE(owner.ok());
}

}  // namespace
}  // namespace plangate::testing
