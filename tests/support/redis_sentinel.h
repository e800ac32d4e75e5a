// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// redis_sentinel.h: a real Redis Sentinel deployment on loopback for a test.
//
// RedisSentinels::Start() runs a primary, `replicas` replicas
// (--replicaof the primary) and `sentinels` sentinels (RedisServer with
// Options::sentinel_config: redis-server --sentinel) that monitor the
// primary as master "mymaster" with the given quorum, and returns once
// every replica's link is up and every sentinel knows every replica and
// every other sentinel (so a failover can start at once). The test can then
// force a failover (SENTINEL FAILOVER) or kill the primary and wait until
// the sentinels name a new master that says it is one.
//
// Thread safety: none; use it from the thread that started it.

#ifndef PLANGATE_TESTS_SUPPORT_REDIS_SENTINEL_H_
#define PLANGATE_TESTS_SUPPORT_REDIS_SENTINEL_H_

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "plangate/sync.h"
#include "support/redis_server.h"

namespace plangate::testing {

class RedisSentinels {
 public:
  struct Options {
    int replicas = 1;
    int sentinels = 3;
    int quorum = 2;
    int down_after_ms = 1000;
    int failover_timeout_ms = 5000;
    std::string master_name = "mymaster";
    // The sentinels' own password (requirepass; they use it with each
    // other too: sentinel sentinel-pass).
    std::string sentinel_password;
  };
  static absl::StatusOr<std::unique_ptr<RedisSentinels>> Start(Options options);

  // Node 0 is the first primary, then the replicas.
  int nodes() const { return static_cast<int>(nodes_.size()); }
  RedisServer& node(int i) { return *nodes_[i]; }
  int sentinels() const { return static_cast<int>(sentinels_.size()); }
  RedisServer& sentinel(int i) { return *sentinels_[i]; }
  const std::string& master_name() const { return options_.master_name; }

  // RedisOptions::sentinels = every sentinel, sentinel_master and
  // sentinel_password set.
  RedisOptions ClientOptions() const;
  // redis-sentinel://127.0.0.1:p1,127.0.0.1:p2,.../mymaster
  std::string Url() const;

  // The node the sentinel `asked` names as master (-1: a port of no node).
  absl::StatusOr<int> MasterPerSentinel(int asked) const;
  // Forces a failover (SENTINEL FAILOVER on sentinel 0) and waits until
  // every running sentinel names another node, which says it is a master.
  // Returns the new master's index.
  absl::StatusOr<int> Failover(std::chrono::milliseconds deadline);
  // Waits until node `i` says it is a replica (a sentinel demotes a former
  // master that is still up when it next polls it, up to 10 s after the
  // switch; until then it still takes writes).
  absl::Status WaitReplica(int i, std::chrono::milliseconds deadline);
  // Waits until sentinel `i` has `n` subscribed clients (CLIENT LIST sub=1).
  absl::Status WaitSubscribers(int i, int n,
                               std::chrono::milliseconds deadline);
  // Waits until every running sentinel names a running node other than
  // `old_master` that says it is a master (after a kill, say).
  absl::StatusOr<int> WaitNewMaster(int old_master,
                                    std::chrono::milliseconds deadline);

 private:
  RedisSentinels() = default;
  absl::Status WaitReady(std::chrono::milliseconds deadline) const;

  Options options_;
  std::vector<std::unique_ptr<RedisServer>> nodes_;
  std::vector<std::unique_ptr<RedisServer>> sentinels_;
};

}  // namespace plangate::testing

#endif  // PLANGATE_TESTS_SUPPORT_REDIS_SENTINEL_H_
