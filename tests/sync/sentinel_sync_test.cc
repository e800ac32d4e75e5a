// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// RedisSync through Redis Sentinel: a primary, a replica and three
// sentinels on loopback (tests/support/redis_sentinel.h), three instances in
// one process (tests/sync/cluster_load.h) reaching Redis only through the
// redis-sentinel:// URL. Through a forced failover (SENTINEL FAILOVER) and
// through the primary killed (the sentinels agree it is down and promote
// the replica), every instance follows to the new master and Redis ends
// with exactly what each account was admitted; no account passes its cap.

#include <catch2/catch.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "support/redis_sentinel.h"
#include "sync/cluster_load.h"

namespace plangate::testing {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<RedisSentinels> StartGroup() {
  auto g = RedisSentinels::Start(RedisSentinels::Options());
  if (!g.ok()) FAIL("cannot start sentinels: " << g.status().ToString());
  return *std::move(g);
}

// HGET t of every pg:{* key on the node the sentinels name now.
HashTotals TotalsOnMaster(RedisSentinels& group) {
  return [&group]() -> absl::StatusOr<std::map<std::string, int64_t>> {
    absl::StatusOr<int> m = group.MasterPerSentinel(0);
    if (!m.ok()) return m.status();
    if (*m < 0) return absl::InternalError("the master is no node of ours");
    RedisServer& node = group.node(*m);
    auto keys = node.Command({"KEYS", "pg:{*"});
    if (!keys.ok()) return keys.status();
    std::map<std::string, int64_t> out;
    for (const auto& key : keys->elements) {
      auto type = node.Command({"TYPE", key.str});
      if (!type.ok()) return type.status();
      if (type->str != "hash") continue;
      auto t = node.Command({"HGET", key.str, "t"});
      if (!t.ok()) return t.status();
      if (t->type != RedisServer::Reply::Type::kString) continue;
      out[key.str] = std::stoll(t->str);
    }
    return out;
  };
}

void CheckExact(const ClusterLoadResult& r, const ClusterLoad& load) {
  INFO(r.log);
  INFO("admitted " << r.total_admitted << ", in redis " << r.total_in_redis);
  CHECK(r.total_admitted > 0);
  CHECK(r.total_in_redis == r.total_admitted);
  int wrong = 0, over = 0;
  std::string first_wrong;
  for (const std::string& a : load.accounts) {
    const auto ad = r.admitted.find(a);
    const auto rd = r.in_redis.find(a);
    const int64_t admitted = ad == r.admitted.end() ? 0 : ad->second;
    const int64_t in_redis = rd == r.in_redis.end() ? 0 : rd->second;
    if (admitted != in_redis && wrong++ == 0) {
      first_wrong =
          absl::StrCat(a, ": admitted ", admitted, ", in redis ", in_redis);
    }
    if (admitted > load.cap) ++over;
  }
  INFO("first mismatch: " << first_wrong);
  CHECK(wrong == 0);
  CHECK(over == 0);
}

RedisOptions ThroughUrl(const RedisSentinels& group) {
  auto o = ParseRedisUrl(group.Url());
  if (!o.ok()) FAIL(o.status().ToString());
  return *o;
}

TEST_CASE("a forced failover mid-run: the instances follow, totals exact",
          "[sync][redis][sentinel]") {
  auto group = StartGroup();
  ClusterLoad load;
  load.accounts = SpreadAccounts(200);
  load.cap = 100;
  load.pace = 200us;
  int promoted = -1;
  load.during = [&]() -> absl::Status {
    absl::StatusOr<int> m = group->Failover(60s);
    if (!m.ok()) return m.status();
    promoted = *m;
    // The old master takes writes until a sentinel demotes it; the totals
    // are exact once it has (the instances follow +switch-master at once,
    // and its writes are lost when it resyncs from the new master).
    return group->WaitReplica(0, 60s);
  };
  load.until_admitted = 200 * 100 * 9 / 10;
  auto r = RunSyncLoad(ThroughUrl(*group), TotalsOnMaster(*group), load);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  CHECK(promoted == 1);
  CheckExact(*r, load);
  for (const SyncStats& s : r->stats) CHECK(s.reconnects > 0);
  CHECK(r->total_admitted >= load.until_admitted);
}

TEST_CASE("the primary killed: the sentinels promote the replica",
          "[sync][redis][sentinel]") {
  auto group = StartGroup();
  ClusterLoad load;
  load.accounts = SpreadAccounts(200);
  load.cap = 100;
  load.pace = 200us;
  load.during = [&]() -> absl::Status {
    if (absl::Status s = group->node(0).Kill(); !s.ok()) return s;
    absl::StatusOr<int> m = group->WaitNewMaster(0, 60s);
    return m.ok() ? absl::OkStatus() : m.status();
  };
  load.until_admitted = 200 * 100 * 9 / 10;
  auto r = RunSyncLoad(ThroughUrl(*group), TotalsOnMaster(*group), load);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  CheckExact(*r, load);
  uint64_t epoch_changes = 0;
  for (const SyncStats& s : r->stats) {
    CHECK(s.reconnects > 0);
    epoch_changes += s.epoch_changes;
  }
  CHECK(epoch_changes > 0);  // the promotion was seen as a possible loss
}

}  // namespace
}  // namespace plangate::testing
