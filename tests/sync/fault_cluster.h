// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// fault_cluster.h: several gateway instances (Enforcer + RedisSync each, in
// one process) on one account with a hard cap, or with one prepaid wallet
// shared through Redis (FaultRun::wallet_micros), each reaching Redis
// through its own TcpProxy, while a real fault happens to Redis or to one
// of them. The cap fault test asserts on the result;
// bench/cluster_fault_benchmark prints it for N = 2, 4, 8, and
// bench/wallet_fault_benchmark checks the wallet's.
//
// Faults, all caused for real once the cluster admitted `fault_at` of the
// cap (or spent it of the balance):
//   kRestartEmpty   redis-server SIGKILLed, restarted without data after
//                   `outage`
//   kFlushAll       FLUSHALL
//   kFailover       the replica stops receiving (its replication link
//                   blackholed), writes go on, the primary is SIGKILLed,
//                   and after `outage` the replica is promoted (REPLICAOF
//                   NO ONE) and every proxy points at it: it missed the
//                   last writes
//   kPartition      instance 0 cut off (its proxy blackholed) for `outage`
//                   while the others go on
//   kInstanceDeath  instance 0 stops and its RedisSync is destroyed without
//                   a drain: it dies holding its leases and its unsent usage
//
// Thread safety: RunFault is a blocking call from one thread.

#ifndef PLANGATE_TESTS_SYNC_FAULT_CLUSTER_H_
#define PLANGATE_TESTS_SYNC_FAULT_CLUSTER_H_

#include <chrono>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "plangate/catalog.h"

namespace plangate::testing {

enum class Fault {
  kNone,
  kRestartEmpty,
  kFlushAll,
  kFailover,
  kPartition,
  kInstanceDeath,
};
const char* FaultName(Fault f);

struct FaultRun {
  Fault fault = Fault::kNone;
  RedisDownPolicy policy = RedisDownPolicy::kFailClosed;
  int instances = 3;
  int64_t hard = 6000;
  // Each instance's thread checks once per `pace`.
  std::chrono::microseconds pace{500};
  double fault_at = 0.4;  // of the cap, admitted cluster-wide
  std::chrono::milliseconds outage{700};
  // Traffic after the fault ends (a wallet run stops sooner, once every
  // live instance was refused 402 for 300 ms on end).
  std::chrono::milliseconds after{1500};
  std::chrono::milliseconds lease_ttl{1000};
  // When > 0: instead of the cap, the account's plan requires a prepaid
  // wallet shared through Redis, which every instance credits with
  // `wallet_micros` under one credit id (it counts once) before the
  // traffic; each admitted request debits `price_micros`, and `hard` is
  // unused. The result's admitted, redis_total and dead_* are then micros.
  int64_t wallet_micros = 0;
  int64_t price_micros = 100;
};

struct FaultResult {
  int64_t admitted = 0;       // by every instance, the dead one included
  int64_t redis_total = 0;    // after the drain, on the serving primary
  int64_t dead_admitted = 0;  // kInstanceDeath: by the dead instance
  int64_t dead_flushed = 0;   // kInstanceDeath: its usage Redis holds
  // Wallet runs. redis_total is the wallet's t after the drain, with the
  // dead instance's spend counted as what it had reported (dead_flushed):
  // a lease Redis later took back from it as spent is dead_taken_back.
  int64_t dead_leased = 0;      // its lease in Redis when it died
  int64_t dead_taken_back = 0;  // of that, counted as spent by the end
  int64_t credited = 0;         // the wallet's credits after the drain
  int64_t admitted_at_fault = 0;
  int64_t admitted_during = 0;  // while the fault lasted
  // From the end of the fault until every live instance completed a round
  // with Redis and admitted a request after it (-1: some never did).
  double resume_ms = -1;
  uint64_t epoch_changes = 0;  // summed over the instances
  uint64_t recoveries = 0;
  std::string log;  // per-instance sync figures, for failure messages
};

absl::StatusOr<FaultResult> RunFault(const FaultRun& run);

}  // namespace plangate::testing

#endif  // PLANGATE_TESTS_SYNC_FAULT_CLUSTER_H_
