// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// The hard cap across instances through real Redis failures
// (fault_cluster.h): for fail_closed and local_share, under a restart
// without data, FLUSHALL, a failover to a replica that missed the last
// writes, one instance cut off for longer than lease_ttl, and an instance
// that dies holding leases, the cluster admits at most the cap, and Redis
// ends with exactly what was admitted (for a dead instance: exactly what it
// had flushed).

#include <catch2/catch.hpp>
#include <string>

#include "sync/fault_cluster.h"

namespace plangate::testing {
namespace {

// Once with most of the cap left at the fault (the cluster must go on
// after it) and once near the cap (where a lease granted from a total that
// misses what other instances used or hold would pass it).
void CheckCapHolds(Fault fault, RedisDownPolicy policy, double fault_at) {
  FaultRun run;
  run.fault = fault;
  run.policy = policy;
  run.fault_at = fault_at;
  if (fault_at > 0.5) run.after = std::chrono::milliseconds(1000);
  if (fault == Fault::kPartition) {
    run.outage = run.lease_ttl + run.lease_ttl / 2;  // longer than lease_ttl
  }
  auto r = RunFault(run);
  INFO(FaultName(fault) << " / " << RedisDownPolicyName(policy) << " at "
                        << fault_at << " of the cap");
  REQUIRE(r.ok());
  INFO("admitted " << r->admitted << " (at the fault " << r->admitted_at_fault
                   << ", during " << r->admitted_during << "), redis total "
                   << r->redis_total << ", dead admitted " << r->dead_admitted
                   << " flushed " << r->dead_flushed << ", resume "
                   << r->resume_ms << " ms\n"
                   << r->log);
  CHECK(r->admitted <= run.hard);
  if (fault == Fault::kInstanceDeath) {
    // The survivors' usage is exact; of the dead instance's, what it had
    // flushed (the rest died with it, inside its lease).
    CHECK(r->dead_flushed <= r->dead_admitted);
    CHECK(r->redis_total - r->dead_flushed == r->admitted - r->dead_admitted);
  } else {
    CHECK(r->redis_total == r->admitted);
  }
  // The cluster keeps serving: it goes on after the fault (unless the cap
  // was reached while it lasted), and most of the cap is reached.
  // With little left when it ended, some instance may rightly get none.
  if (r->admitted_at_fault + r->admitted_during < run.hard - run.hard / 10) {
    CHECK(r->resume_ms >= 0);
  }
  CHECK(r->admitted >= run.hard / 2);
  if (fault == Fault::kRestartEmpty || fault == Fault::kFlushAll ||
      fault == Fault::kFailover) {
    CHECK(r->epoch_changes > 0);  // the loss was seen
  }
}

TEST_CASE("the cap holds: restart without data", "[sync][redis][cap]") {
  for (const RedisDownPolicy p :
       {RedisDownPolicy::kFailClosed, RedisDownPolicy::kLocalShare}) {
    for (const double at : {0.4, 0.9})
      CheckCapHolds(Fault::kRestartEmpty, p, at);
  }
}

TEST_CASE("the cap holds: FLUSHALL", "[sync][redis][cap]") {
  for (const RedisDownPolicy p :
       {RedisDownPolicy::kFailClosed, RedisDownPolicy::kLocalShare}) {
    for (const double at : {0.4, 0.9}) CheckCapHolds(Fault::kFlushAll, p, at);
  }
}

TEST_CASE("the cap holds: failover to a replica that missed writes",
          "[sync][redis][cap]") {
  for (const RedisDownPolicy p :
       {RedisDownPolicy::kFailClosed, RedisDownPolicy::kLocalShare}) {
    for (const double at : {0.4, 0.9}) CheckCapHolds(Fault::kFailover, p, at);
  }
}

TEST_CASE("the cap holds: one instance cut off past lease_ttl",
          "[sync][redis][cap]") {
  for (const RedisDownPolicy p :
       {RedisDownPolicy::kFailClosed, RedisDownPolicy::kLocalShare}) {
    for (const double at : {0.4, 0.9}) CheckCapHolds(Fault::kPartition, p, at);
  }
}

TEST_CASE("the cap holds: an instance dies holding leases",
          "[sync][redis][cap]") {
  for (const RedisDownPolicy p :
       {RedisDownPolicy::kFailClosed, RedisDownPolicy::kLocalShare}) {
    for (const double at : {0.4, 0.9})
      CheckCapHolds(Fault::kInstanceDeath, p, at);
  }
}

}  // namespace
}  // namespace plangate::testing
