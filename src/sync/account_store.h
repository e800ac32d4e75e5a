// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// account_store.h: accounts' state (plan, anchor, subscription state,
// past-due deadline, scheduled change, overrides, default model) shared
// through Redis, the part of RedisSync that keeps every instance's
// accounts the same (SyncOptions::share_accounts).
//
// Data flow, one way each:
//  - host -> Redis: UpsertAccount / SeedAccount apply the state here and
//    queue it on the link (sync_link.h); the store writes it with
//    pg2_acct_put (redis_functions.h), which versions it, and announces
//    the new version on the feed stream (XADD).
//  - Redis -> every instance: each round that is poll_interval after the
//    last, XREAD reads the feed from where this instance left it; an entry
//    for an account this instance holds, with a newer version than it
//    applied, is loaded (HMGET) and applied (SyncAccess::ApplyAccount,
//    which does not publish it back).
//  - First sight: a check that meets an account with no record inserts
//    one and queues it (LookupAccount); the store loads its state. Until
//    it is applied, the account is decided as the host configured for
//    unknown accounts (the catalog's default plan, or 403
//    unknown_account).
//  - Data loss (a new dataset epoch, RedisSync): every state this instance
//    applied is written back with its version ("restore"); the highest
//    version wins.
// A load whose account has a store queued or on the wire is not applied:
// the store's reply brings the state Redis kept, which is applied if it
// is not the one applied here already.
//
// Thread safety: confined to the sync strand (every method runs on it);
// Stats() may be called from any thread.

#ifndef PLANGATE_SYNC_ACCOUNT_STORE_H_
#define PLANGATE_SYNC_ACCOUNT_STORE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "core/sync_link.h"
#include "redis/cluster_client.h"

namespace plangate::internal {

struct AccountStoreStats {
  uint64_t held = 0;          // accounts whose stored state was applied
  uint64_t loaded = 0;        // states read from Redis and applied
  uint64_t stored = 0;        // states written (set, seed, restore)
  uint64_t feed_entries = 0;  // feed entries read
  uint64_t errors = 0;        // failed batches, error replies, bad states
  uint64_t sightings_dropped = 0;
};

class AccountStore {
 public:
  using ErrorSink = std::function<void(const std::string& what)>;
  // Each feed poll also reads the dataset epoch (`epoch_key`) and hands
  // the reply to `on_epoch`, so a loss is seen even when no counter moves.
  using EpochSink = std::function<void(const redis::Reply& epoch)>;

  AccountStore(Enforcer& enforcer, SyncLink& link,
               std::shared_ptr<redis::ClusterClient> client, std::string prefix,
               std::chrono::milliseconds poll_interval, std::string epoch_key,
               EpochSink on_epoch, ErrorSink on_error);

  // One step: takes what the link queued and, when no batch of the
  // store's is on the wire and the client is ready, sends one.
  void Round(int64_t steady_ms);
  // Redis lost data: write back every state applied here.
  void OnDataLoss();
  // Nothing of the store's is queued or on the wire.
  bool Idle() const;
  AccountStoreStats Stats() const;

 private:
  struct Held {
    int64_t version = 0;  // the stored version applied here; 0: none
    std::string doc;      // its document
  };
  enum class OpKind : uint8_t {
    kEpoch,
    kFeedTail,
    kFeedRead,
    kPut,
    kAnnounce,
    kLoad
  };
  struct Op {
    OpKind kind;
    std::string account;
    AccountPublish publish;  // kPut (restore: publish.update unused)
    std::string mode;        // kPut
    std::string doc;         // kPut: the document sent
    int64_t version = 0;     // kAnnounce
    bool force = false;      // kLoad: apply even at the same version
  };

  void OnReplies(std::vector<Op> ops,
                 absl::StatusOr<std::vector<redis::Reply>> replies);
  void OnFeed(const redis::Reply& entries);
  void Apply(const std::string& account, int64_t version, std::string doc,
             bool force);
  void Error(const std::string& what);

  Enforcer& enforcer_;
  SyncLink& link_;
  std::shared_ptr<redis::ClusterClient> client_;
  std::string prefix_;
  std::string feed_key_;
  std::chrono::milliseconds poll_interval_;
  std::string epoch_key_;
  EpochSink on_epoch_;
  ErrorSink on_error_;

  bool in_flight_ = false;
  bool restore_ = false;
  std::string feed_id_;  // where the feed was read up to; empty: unknown
  int64_t last_poll_ms_ = 0;
  absl::flat_hash_map<std::string, Held> held_;
  std::vector<AccountPublish> to_put_;
  std::vector<std::pair<std::string, int64_t>> to_announce_;
  // Loads to send: account -> force.
  absl::flat_hash_map<std::string, bool> to_load_;
  // Accounts with a put queued or on the wire (their loads wait for it).
  absl::flat_hash_map<std::string, int> putting_;

  std::atomic<uint64_t> held_count_{0}, loaded_{0}, stored_{0},
      feed_entries_{0}, errors_{0};
};

}  // namespace plangate::internal

#endif  // PLANGATE_SYNC_ACCOUNT_STORE_H_
