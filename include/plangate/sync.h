// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// sync.h: cluster-wide counts through Redis.
//
// A RedisSync attaches to one Enforcer and keeps its counters in step with
// every other instance that uses the same Redis (and key prefix). Checks
// never wait for Redis: the sync component ships each counter's usage in
// pipelined batches on an interval and brings back the cluster totals, which
// the counter cache then decides on.
//
//  - Exactly once: each instance writes its cumulative usage per (subject,
//    limit, window) as its own field of a Redis hash, with a sequence number;
//    a Redis 7 Function adds only the difference to the total. A retried or
//    reordered flush is a no-op, and a write Redis lost (restart without
//    persistence, failover) is restored by the next flush.
//  - Leases: on leasable counters an instance admits only within a lease
//    it took atomically from Redis; grants are at most remaining / (2 *
//    active instances), so instances together never pass the cap. Unused
//    leases go back when idle or on Drain; Redis never takes a lease from
//    a silent instance (it may be cut off and still admitting on it).
//  - Redis down: each limit's `redis_down` policy (catalog) decides:
//    fail_open, fail_closed (the lease left) or local_share (the lease
//    left plus a down reserve Redis set aside for the instance). Usage is
//    kept and replayed.
//  - Data loss: a restart without data, FLUSHALL or a failover to a replica
//    that missed writes is detected (a dataset epoch, the replication id),
//    and no lease is granted on a counter until the instances that held it
//    re-sent what they used and hold. docs/sync.md states each bound.
//  - Keys: <prefix>:{<account>}:<scope>:<sub>:<meter>:<window>:<f|s>:<start>;
//    every key of an account shares the hash tag, so Redis Cluster works.
//
// Thread safety: Start, Drain, Stats, PrometheusText and the destructor may
// be called from any thread (not concurrently with the destructor). All
// Redis work runs on one strand of the io_context.

#ifndef PLANGATE_SYNC_H_
#define PLANGATE_SYNC_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace plangate {

class Enforcer;
struct AccountUpdate;

// Where and how to reach Redis.
struct RedisOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string unix_socket;  // used instead of host:port when set
  std::string user;         // ACL user (AUTH user password); empty: default
  std::string password;     // AUTH when set
  int db = 0;               // SELECT when not 0
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds command_timeout{1000};  // per pipelined batch
  // Reconnect delay: min(max, initial * 2^attempt), with full jitter.
  std::chrono::milliseconds reconnect_initial{50};
  std::chrono::milliseconds reconnect_max{5000};

  // TLS (host:port only; rediss:// URLs set `tls`). The server's
  // certificate chain is verified against tls_ca_file and/or tls_ca_dir
  // (OpenSSL's default trust store when both are empty), and its name
  // against tls_server_name (default: `host`; an IP address is matched
  // against the certificate's IP SANs), which is also sent as SNI unless it
  // is an IP address. A failed verification fails the connection attempt
  // with the reason OpenSSL gives ("certificate has expired", "hostname
  // mismatch", "unable to get local issuer certificate", ...).
  bool tls = false;
  bool tls_verify = true;       // false: accept any certificate (testing)
  std::string tls_ca_file;      // PEM file of trusted CAs
  std::string tls_ca_dir;       // directory of hashed CA certs (c_rehash)
  std::string tls_cert_file;    // client certificate (PEM), for mutual TLS
  std::string tls_key_file;     // its private key (PEM)
  std::string tls_server_name;  // name to verify and send as SNI

  // Redis Cluster (docs/sync.md, "Redis Cluster"): host:port is a seed;
  // the slot map comes from CLUSTER SLOTS and every primary gets its own
  // connection with these options. redis://...?cluster=1 sets it.
  bool cluster = false;
  std::chrono::milliseconds cluster_refresh{10000};  // slot map re-read
  int cluster_max_redirects = 5;  // MOVED / ASK per command, then an error

  // Redis Sentinel (docs/sync.md, "Deployments"): when `sentinels` is not
  // empty, host, port and unix_socket are ignored. Before every connection
  // attempt the sentinels are asked, in turn (the last one that answered
  // first), for the address of `sentinel_master` (SENTINEL
  // get-master-addr-by-name); the node reached there must say it is a
  // master (ROLE) before it is used, else the attempt fails and the
  // sentinels are asked again after the backoff. A READONLY reply (the node
  // was demoted) drops the connection, which asks them again too. user,
  // password, db and the TLS options apply to the master; the sentinels
  // get sentinel_user / sentinel_password (AUTH when set) and the same TLS
  // options. Not with `cluster`. redis-sentinel:// URLs set these.
  struct Address {
    std::string host;
    int port = 26379;
  };
  std::vector<Address> sentinels;
  std::string sentinel_master;
  std::string sentinel_user;
  std::string sentinel_password;
};

// redis://[[user]:password@]host[:port][/db], the same with rediss:// (TLS:
// sets RedisOptions::tls; the other TLS options are set by the caller),
// unix:///path/to.sock[?db=N], or
// redis-sentinel://[[user]:password@]host[:port][,host[:port]...]/master[/db]
// (rediss-sentinel:// with TLS; sentinel port 26379 by default; the
// credentials are the master's, RedisOptions::sentinel_password is set by
// the caller). InvalidArgument naming the part that is wrong.
absl::StatusOr<RedisOptions> ParseRedisUrl(std::string_view url);

struct SyncOptions {
  RedisOptions redis;
  std::string key_prefix = "pg";
  // Unique per process start (cumulative fields must never shrink); empty
  // means a random 64-bit id.
  std::string instance_id;
  // A flush round starts this often (or as soon as the previous one ends,
  // if that is later). One round is one pipelined round trip.
  std::chrono::milliseconds flush_interval{10};
  size_t max_batch = 4096;  // commands per pipeline
  // Counters changed within refresh_idle are read back at least this often,
  // so that this instance sees the others' usage even when it adds none.
  std::chrono::milliseconds refresh_interval{100};
  std::chrono::milliseconds refresh_idle{std::chrono::seconds(30)};
  // Leases near the hard cap of billing, annual and daily fixed windows.
  bool leases = true;
  // The least number of instances assumed to share an account (the lease
  // margin uses max(this, instances Redis has seen on the counter)).
  int expected_instances = 1;
  // D_max: the per-instance usage per flush round the lease margin assumes
  // at least (it uses max(this, 2 x the measured usage per round)).
  // Counters switch to leases once remaining <= instances * that, or 1/16
  // of the cap, whichever is more.
  int64_t min_round_units = 1000;
  // A leased counter this instance has not synced yet in its current window
  // (first sight, new window) admits at most hard * cold_start_share /
  // instances units until the first reply (about one flush_interval);
  // checks past that get 429 quota_syncing. The default 0 is strict: N
  // instances never pass the hard cap, even right after a restart, at the
  // price of that short wait for counters never seen (UpsertAccount starts
  // the sync of an account's counters at once, so registered accounts are
  // usually ready before their first check). With a share s > 0, an
  // instance that starts cold while the cluster is at the cap may pass it
  // by up to s * hard / instances.
  double cold_start_share = 0.0;
  // An instance that has not called for a counter in lease_ttl counts as
  // silent there (it no longer divides the remainder; its leases stay
  // held); an idle counter gives its lease back after lease_ttl / 2; after
  // a data loss, a counter waits at most lease_ttl for the instances that
  // held it to re-send.
  std::chrono::milliseconds lease_ttl{10000};
  // Without a successful round trip for this long, Redis counts as down
  // and the redis_down policies apply.
  std::chrono::milliseconds unavailable_after{2000};
  // Counters with unsent usage kept while Redis is down; past this bound
  // the oldest closed windows are dropped (SyncStats::pending_dropped).
  size_t max_pending = size_t{1} << 20;
  // Window keys expire this long after their window ends.
  std::chrono::milliseconds key_retention{std::chrono::hours(24 * 35)};
  // Accounts' state (plan, anchor, subscription state, past-due deadline,
  // scheduled change, overrides, default model) lives in Redis:
  // UpsertAccount on any instance is applied by every instance within
  // about account_poll_interval plus a round trip, an account first seen
  // here is loaded from Redis (decided as an unknown account until it is),
  // and SeedAccount stores a state only where Redis has none. false: each
  // instance keeps its own, as without a sync.
  bool share_accounts = true;
  std::chrono::milliseconds account_poll_interval{50};
  // Prepaid wallets live in Redis: each instance spends from a lease of
  // the account's one balance (so instances together never spend more than
  // it holds), credits apply once per WalletUpdate::credit_id, and a check
  // on a wallet this instance holds no lease of yet gets 429 quota_syncing
  // (about one round) while the balance says it could pass. An instance
  // without an answer from Redis for lease_ttl stops spending its lease.
  // false: each instance's wallet is its own.
  bool share_wallets = true;
};

struct SyncStats {
  bool connected = false;
  bool redis_up = false;          // answered within unavailable_after
  uint64_t counters = 0;          // counters (subject, limit, window) tracked
  uint64_t leased_counters = 0;   // of which in lease mode
  uint64_t rounds = 0;            // flush rounds answered
  uint64_t round_trips = 0;       // pipelines answered (one per round)
  uint64_t commands = 0;          // FCALLs answered
  uint64_t retries = 0;           // rounds that failed and were sent again
  uint64_t errors = 0;            // failed rounds + error replies
  uint64_t timeouts = 0;          // rounds failed by the command timeout
  uint64_t reconnects = 0;        // connections made after the first
  uint64_t lease_grants = 0;      // grants received with units > 0
  uint64_t lease_units = 0;       // units granted in total
  uint64_t lease_returns = 0;     // leases handed back
  uint64_t units_flushed = 0;     // own usage acknowledged by Redis
  uint64_t events_won = 0;        // threshold events this instance delivered
  uint64_t pending = 0;           // counters with usage Redis has not acked
  uint64_t pending_dropped = 0;   // closed windows dropped at max_pending
  uint64_t dirty_overflow = 0;    // records whose dirty mark did not queue
  uint64_t epoch_changes = 0;     // dataset epochs changed (Redis lost data)
  uint64_t recoveries = 0;        // counters held by a recovery after a loss
  int64_t last_sync_age_ms = -1;  // since the last good round; -1: never
  // Shared account state (SyncOptions::share_accounts).
  uint64_t accounts_held = 0;    // accounts whose stored state is known
  uint64_t accounts_loaded = 0;  // stored states applied here
  uint64_t accounts_stored = 0;  // states this instance wrote
  uint64_t account_feed_entries = 0;
  uint64_t account_errors = 0;             // failed batches, bad stored states
  uint64_t account_sightings_dropped = 0;  // first sightings not queued
  // Shared wallets (SyncOptions::share_wallets).
  uint64_t wallets = 0;          // wallets tracked
  uint64_t wallet_credits = 0;   // credits applied (new ids)
  uint64_t wallet_granted = 0;   // micro-units of leases received
  uint64_t wallet_returned = 0;  // micro-units handed back
  uint64_t wallet_errors = 0;
  // Redis Cluster (RedisOptions::cluster; all 0 for one server).
  uint64_t redirections = 0;       // MOVED and ASK replies followed
  uint64_t cluster_refreshes = 0;  // slot maps read (CLUSTER SLOTS)
  uint64_t cluster_primaries = 0;  // primaries in the slot map
  // Per node: "host:port", pipelines it answered, commands that failed
  // there (not connected, lost mid-batch), MOVED / ASK it answered.
  struct Node {
    std::string node;
    uint64_t round_trips = 0;
    uint64_t errors = 0;
    uint64_t redirections = 0;
  };
  std::vector<Node> cluster_nodes;
};

class RedisSync {
 public:
  // Attaches to `enforcer` (which must outlive the RedisSync) and starts
  // connecting. With io == nullptr the RedisSync runs its own thread;
  // otherwise the host runs `io`. FailedPrecondition when the enforcer
  // already has a sync attached; InvalidArgument for bad options.
  static absl::StatusOr<std::unique_ptr<RedisSync>> Start(
      Enforcer& enforcer, SyncOptions options,
      boost::asio::io_context* io = nullptr);

  // Stops without draining (usage not yet acked stays counted locally but
  // is not sent). Call Drain first for a graceful shutdown.
  ~RedisSync();
  RedisSync(const RedisSync&) = delete;
  RedisSync& operator=(const RedisSync&) = delete;

  // For a graceful shutdown: flushes all pending usage and returns every
  // lease; OK when Redis acknowledged everything before `timeout`,
  // DeadlineExceeded otherwise. Checks after it wait for new leases.
  absl::Status Drain(std::chrono::milliseconds timeout);
  // Flushes all pending usage (and syncs counters never synced yet),
  // keeping leases: a barrier for tests, reports and handovers.
  absl::Status Flush(std::chrono::milliseconds timeout);

  SyncStats Stats() const;
  // Prometheus text exposition (sync and enforcer counters).
  std::string PrometheusText() const;
  const std::string& instance_id() const;
  // The last connection or reply error, for logs ("" when none yet).
  std::string LastError() const;

  class Impl;

 private:
  explicit RedisSync(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Stores an account's state in Redis as UpsertAccount on an instance with
// a sharing RedisSync would (SyncOptions::share_accounts), for admin tools
// and billing hooks that run no Enforcer: every instance using
// `key_prefix` applies it within about account_poll_interval. The state is
// not checked against a catalog (instances that do not know its plan log
// an error and keep the account's last state). Returns the stored version.
// Blocking; runs its own connection (TLS and Cluster as `redis` says) and
// gives up after `timeout` with DeadlineExceeded. Thread safety: may be
// called from any thread.
absl::StatusOr<int64_t> StoreAccountState(
    const RedisOptions& redis, std::string_view key_prefix,
    const AccountUpdate& update,
    std::chrono::milliseconds timeout = std::chrono::seconds(5));

// An account's shared wallet as Redis holds it
// (<prefix>:{<account>}:wallet, SyncOptions::share_wallets; the fields are
// pg2_wallet's, src/sync/redis_functions.h). All in micro-units.
struct StoredWallet {
  bool exists = false;    // false: no hash (nothing credited or spent yet)
  int64_t credits = 0;    // every credit applied, corrections included
  int64_t spent = 0;      // the instances' cumulative spend (t)
  int64_t leased = 0;     // what the instances hold as leases (L)
  int64_t balance = 0;    // credits - spent (leases are part of it)
  int64_t available = 0;  // credits - spent - leased: not yet leased
  int64_t instances = 0;  // instances that have called (n)
  std::string epoch;      // the dataset epoch it was written under ("")
  // Leases are held back (a recovery after a data loss) until this server
  // time (Unix ms); 0 when none is under way.
  int64_t recovering_until_ms = 0;
  // For the credit id asked about (ReadStoredWallet, CreditStoredWallet):
  // whether it was applied in this dataset, and its amount.
  bool credit_applied = false;
  int64_t credit_amount = 0;
};

struct StoredWalletCredit {
  // false: the id was applied before (by a gateway or a tool) and nothing
  // changed; wallet.credit_amount is what that first credit applied.
  bool applied = false;
  StoredWallet wallet;  // as read right after the credit
};

// Credits `micros` (negative: a correction) to an account's shared wallet,
// once per `credit_id`, as Enforcer::UpdateWallet with that credit_id does
// on an instance with a sharing RedisSync: the same Function
// (pg2_wallet_credit) with the dataset epoch of <prefix>:epoch (or "" when
// no instance has created it yet), so an id applied here and sent by a
// gateway, in either order, counts once. A correction that would leave
// less than is spent or leased is refused (FailedPrecondition, with the
// figures Redis gives) and changes nothing. InvalidArgument for an empty
// account or credit id, a zero amount or one past 2^53 (Lua numbers are
// doubles); DeadlineExceeded when Redis does not answer within `timeout`
// and Unavailable when a batch fails (both say when the credit was sent
// and may or may not be applied: send it again with the same id);
// Internal for an error or unexpected reply. Blocking; runs its own
// connection (TLS, Cluster and Sentinel as `redis` says). Thread safety:
// may be called from any thread.
absl::StatusOr<StoredWalletCredit> CreditStoredWallet(
    const RedisOptions& redis, std::string_view key_prefix,
    std::string_view account_id, std::string_view credit_id, int64_t micros,
    std::chrono::milliseconds timeout = std::chrono::seconds(5));

// Reads an account's shared wallet (nothing is written; the Function
// library is not needed). With a non-empty `credit_id`, the result's
// credit_applied / credit_amount say whether and with what amount that id
// was applied in this dataset. Errors as CreditStoredWallet's.
absl::StatusOr<StoredWallet> ReadStoredWallet(
    const RedisOptions& redis, std::string_view key_prefix,
    std::string_view account_id, std::string_view credit_id = {},
    std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace plangate

#endif  // PLANGATE_SYNC_H_
