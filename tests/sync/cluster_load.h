// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// cluster_load.h: several gateway instances (Enforcer + RedisSync each, in
// one process) syncing through a real Redis Cluster (RedisCluster), with
// many accounts of one capped plan, checked from one thread per instance
// while `during` runs on the calling thread (a failover, a slot migration).
// Afterwards every instance flushes, and the result holds what each
// account was admitted and what Redis holds for it.
//
// Thread safety: RunClusterLoad and RunSyncLoad are blocking calls from one
// thread (the one that started the cluster).

#ifndef PLANGATE_TESTS_SYNC_CLUSTER_LOAD_H_
#define PLANGATE_TESTS_SYNC_CLUSTER_LOAD_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "plangate/sync.h"
#include "support/redis_cluster.h"

namespace plangate::testing {

struct ClusterLoad {
  std::vector<std::string> accounts;
  int instances = 3;
  int64_t cap = 20;                       // per account, fail_closed
  std::chrono::microseconds pace{20};     // per check, per instance thread
  std::chrono::milliseconds before{800};  // load before `during`
  std::chrono::milliseconds after{1500};  // and after it returned
  std::function<absl::Status()> during;
  // When > 0: after `after`, the load goes on until this many checks were
  // admitted in all (or 30 s passed), so a slow (sanitized) build reaches
  // the same point.
  int64_t until_admitted = 0;
};

struct ClusterLoadResult {
  std::map<std::string, int64_t> admitted;  // per account
  std::map<std::string, int64_t> in_redis;  // t of its counter, per account
  int64_t total_admitted = 0;
  int64_t total_in_redis = 0;
  std::vector<SyncStats> stats;  // per instance, after the flush
  std::string prometheus;        // instance 0's PrometheusText()
  std::string log;               // per-instance figures and last errors
};

absl::StatusOr<ClusterLoadResult> RunClusterLoad(RedisCluster& cluster,
                                                 const ClusterLoad& load);

// The same through any Redis `redis` reaches (one server, Sentinel):
// `totals` returns HGET <key> t for every key matching "pg:{*", read after
// the final flush.
using HashTotals =
    std::function<absl::StatusOr<std::map<std::string, int64_t>>()>;
absl::StatusOr<ClusterLoadResult> RunSyncLoad(const RedisOptions& redis,
                                              const HashTotals& totals,
                                              const ClusterLoad& load);

// `n` account ids ("a<i>") spread over the slots, and `m` ("hot<i>") whose
// hash tag is in `slot`.
std::vector<std::string> SpreadAccounts(int n);
std::vector<std::string> AccountsInSlot(int slot, int m);

}  // namespace plangate::testing

#endif  // PLANGATE_TESTS_SYNC_CLUSTER_LOAD_H_
