// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// wallet_sync.h: prepaid wallets shared through Redis, the part of
// RedisSync that makes every instance spend from one balance
// (SyncOptions::share_wallets). The protocol is pg2_wallet and
// pg2_wallet_credit (redis_functions.h); the hot path's side is in
// sync_link.h.
//
// Per tracked account this instance's wallet word holds its lease: what it
// may spend without asking Redis. The strand adds grants to it and takes
// back what it returns; everything else that changes it is the hot path's
// spend (debits, and refunds at commit). So at any read of the word,
//   spent = granted - returned - word,
// and each call sends that cumulative spend and the word as the lease it
// holds (Redis keeps c + r = granted - returned). A lost reply's grant is
// never added here and the next call's lease replaces it in Redis. The
// lease is topped up to a target (4 x the spend per round, at least
// SyncOptions::min_round_units, and far from empty a quarter of the
// balance per instance; all of it above the plan's minimum balance at the
// most, which every call sends: Redis grants nothing below the minimum but
// the one request that may start at it), kept while the account was used
// within refresh_idle, refreshed every refresh_interval, and handed back
// when idle, on Drain, or when Redis took it back while this instance was
// silent.
//
// Credits count once per id. Redis numbers the credits applied to a wallet
// (a log of the newest 256, pg2_wallet) and each reply carries those this
// instance has not seen, up to 32 a call: the instance keeps the newest
// kMaxKnownCredits of them, with the seq and the total they add up to.
// When a call may meet lost writes (its epoch is newer than the one its
// credits came from, or Redis answers flag 64: the hash lacks them) it
// re-sends them all, and the hash takes what it lacks: the ids are marked
// applied again and the credits become what this instance knew plus what
// was credited to the hash that it did not know.
//
// A wallet word that held a balance before the sync first tracked it (a
// credit applied before Attach) becomes a credit in Redis with an id of
// this instance's, once.
//
// Thread safety: confined to the sync strand; Stats() from any thread.

#ifndef PLANGATE_SYNC_WALLET_SYNC_H_
#define PLANGATE_SYNC_WALLET_SYNC_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "core/sync_link.h"
#include "plangate/clock.h"
#include "plangate/sync.h"
#include "redis/cluster_client.h"
#include "sync/record_view.h"

namespace plangate::internal {

struct WalletSyncStats {
  uint64_t wallets = 0;   // wallets tracked
  uint64_t credits = 0;   // credits applied (new ids)
  uint64_t grants = 0;    // lease grants received
  uint64_t granted = 0;   // micro-units granted in total
  uint64_t returned = 0;  // micro-units handed back
  uint64_t errors = 0;    // failed batches, error replies
};

class WalletSync {
 public:
  // The credits an instance remembers per wallet (and re-sends after a
  // loss): ids older than these can count again when re-sent after one.
  static constexpr size_t kMaxKnownCredits = 256;

  using ErrorSink = std::function<void(const std::string& what)>;
  // The dataset epoch every call carries (RedisSync's), and a request to
  // resolve it again (a reply said the caller is behind).
  using EpochSource = std::function<const std::string&()>;
  using EpochStale = std::function<void()>;

  WalletSync(Enforcer& enforcer, SyncLink& link,
             std::shared_ptr<redis::ClusterClient> client,
             const SyncOptions& options, EpochSource epoch,
             EpochStale epoch_stale, ErrorSink on_error);

  // One step (the epoch must be known): tracks new wallets, sends one
  // batch when none is on the wire.
  void Round(int64_t steady_ms);
  // While on, hands every lease back and takes none (Drain); Idle() once
  // Redis has them.
  void ReturnAll(bool on);
  bool Idle() const;
  WalletSyncStats Stats() const;

 private:
  // A credit in the wallet hash's log (pg2_wallet, redis_functions.h).
  struct KnownCredit {
    int64_t seq = 0;
    int64_t total = 0;  // the credits after it
    int64_t amount = 0;
    std::string id;
  };
  struct Wallet {
    uint32_t index = 0;
    uint8_t gen = 0;
    std::string account;
    std::string key;
    int64_t granted = 0;     // added to the word by this strand
    int64_t returned = 0;    // taken from it by this strand
    int64_t sent_cum = -1;   // what the last call said was spent
    int64_t sent_held = -1;  // and held
    int64_t last_cum = 0;
    int64_t round_spend = 0;  // largest spend per round lately
    int64_t unit = 0;         // the largest spend in one round seen
    uint64_t downs = 0;       // downs_ when the spend was last measured
    uint64_t wanted = 0;      // SyncLink::wallet_wanted as last read
    int64_t balance = -1;     // the cluster's, as last heard
    // The credits as this instance knows them: the hash's credit log up
    // to seq known_cn (of history `hid`), which adds up to known_cr, and
    // the newest kMaxKnownCredits of its entries; re-sent after a loss.
    int64_t known_cn = 0;
    int64_t known_cr = 0;
    std::string hid;
    std::deque<KnownCredit> known;
    std::string credits_epoch;  // the epoch the call they came from carried
    bool resend = false;        // Redis asked for them (flag 64)
    int64_t sent_cn = 0;        // known_cn as the call on the wire sent it
    int64_t instances = 1;
    int64_t last_reply = -1'000'000'000;  // steady ms
    int64_t last_use = 0;                 // steady ms the spend last moved
    bool starved = false;                 // the last want was granted nothing
    bool in_flight = false;
  };
  struct Sent {
    Wallet* wallet = nullptr;  // null: a credit
    WalletCredit credit;
    int64_t sent_at = 0;        // Enforcer clock
    std::string epoch;          // the epoch the call carried
    bool with_credits = false;  // it re-sent the known credits
  };

  void Track(uint32_t index, uint8_t gen, int64_t steady_ms);
  void OnReplies(std::vector<Sent> sent,
                 absl::StatusOr<std::vector<redis::Reply>> replies);
  void OnWalletReply(Wallet& w, const Sent& s, const redis::Reply& r);
  // The credit log entries of a reply, "seq:total:amount:id" each.
  bool Learn(Wallet& w, int64_t through, int64_t upto, const std::string& hid,
             const redis::Reply& entries);
  void Error(const std::string& what);

  Enforcer& enforcer_;
  const PublishedFacts facts_;  // read only: each wallet's minimum balance
  SyncLink& link_;
  std::shared_ptr<redis::ClusterClient> client_;
  SyncOptions options_;
  Clock& clock_;
  EpochSource epoch_;
  EpochStale epoch_stale_;
  ErrorSink on_error_;

  bool in_flight_ = false;
  bool returning_ = false;
  // Rounds that found the connection down, and batches that failed.
  uint64_t downs_ = 0;
  uint64_t seq_ = 0;
  uint64_t local_credits_ = 0;
  // By record index; the generation is checked on every use.
  absl::flat_hash_map<uint32_t, std::unique_ptr<Wallet>> wallets_;
  std::vector<WalletCredit> to_credit_;

  std::atomic<uint64_t> count_{0}, credits_{0}, grants_{0}, granted_{0},
      returned_{0}, errors_{0};
};

}  // namespace plangate::internal

#endif  // PLANGATE_SYNC_WALLET_SYNC_H_
