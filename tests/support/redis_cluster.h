// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// redis_cluster.h: a real Redis Cluster on loopback for a test.
//
// RedisCluster::Start() runs primaries * (1 + replicas) redis-servers
// (RedisServer, each in its own temp dir) with --cluster-enabled yes and
// --cluster-config-file nodes.conf there, then builds the cluster the way
// `redis-cli --cluster create` does: distinct config epochs, CLUSTER MEET,
// the 16384 slots split evenly over the primaries (ADDSLOTSRANGE), CLUSTER
// REPLICATE on the replicas; it returns once every node reports
// cluster_state:ok with every slot covered and every replica's link up.
// Nodes 0 .. primaries - 1 start as the primaries. The cluster does not
// require full coverage (--cluster-require-full-coverage no), so the other
// shards keep serving while one is failing over.
//
// Thread safety: none; use a RedisCluster from the thread that started it.

#ifndef PLANGATE_TESTS_SUPPORT_REDIS_CLUSTER_H_
#define PLANGATE_TESTS_SUPPORT_REDIS_CLUSTER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "plangate/sync.h"
#include "support/redis_server.h"

namespace plangate::testing {

class RedisCluster {
 public:
  struct Options {
    int primaries = 3;
    int replicas = 1;  // per primary
    int node_timeout_ms = 1000;
  };
  static absl::StatusOr<std::unique_ptr<RedisCluster>> Start(Options options);

  int size() const { return static_cast<int>(nodes_.size()); }
  RedisServer& node(int i) { return *nodes_[i]; }
  const std::string& node_id(int i) const { return ids_[i]; }
  // Seeded with node 0, RedisOptions::cluster set.
  RedisOptions ClientOptions() const;

  // The index of the node that serves `slot` as its primary, as node
  // `asked` sees it.
  absl::StatusOr<int> PrimaryOfSlot(int slot, int asked) const;
  // A running replica of primary `primary`.
  absl::StatusOr<int> ReplicaOf(int primary) const;
  // Every running node reports cluster_state:ok and the same primary for
  // every slot; every running replica's link is up.
  absl::Status WaitHealthy(std::chrono::milliseconds deadline) const;

  // Moves `slot` from primary `from` to primary `to` as redis-cli
  // --cluster reshard does: SETSLOT IMPORTING / MIGRATING, then MIGRATE key
  // by key (calling between() after each), then SETSLOT NODE on every
  // primary (replicas follow).
  absl::Status MigrateSlot(int slot, int from, int to,
                           const std::function<void()>& between);

  // For every key matching `pattern` on every running primary: HGET
  // `field` (keys on no primary are missing; a key on two is an error).
  absl::StatusOr<std::map<std::string, int64_t>> HashFieldByKey(
      const std::string& pattern, const std::string& field) const;

 private:
  RedisCluster() = default;
  bool IsPrimary(int i) const;

  Options options_;
  std::vector<std::unique_ptr<RedisServer>> nodes_;
  std::vector<std::string> ids_;
};

}  // namespace plangate::testing

#endif  // PLANGATE_TESTS_SUPPORT_REDIS_CLUSTER_H_
