// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// enforcer.h: the admit-or-deny decision, once per request.
//
// An Enforcer holds a plan catalog, the accounts the host registered and an
// in-process, lock-free counter cache. Check decides a request against every
// limit of the account's plan that applies to it and, when it admits, counts
// the request's amounts against all of them at once (a denial counts against
// none). Commit settles what Check reserved with the actual amounts once the
// upstream answered; a failed upstream call refunds.
//
//   auto catalog = plangate::Catalog::LoadFile("plans.json");
//   auto enforcer = plangate::Enforcer::Create(*catalog, {});
//   (*enforcer)->UpsertAccount({.account_id = "acme", .plan_id = "pro",
//                               .anchor_ms = renewal_instant_ms});
//   plangate::CheckRequest req{.account_id = "acme"};
//   plangate::Decision d = (*enforcer)->Check(req);
//   if (!d.admitted()) return Deny(d);
//   ... call upstream ...
//   (*enforcer)->Commit({.reservation = d.reservation, .success = ok});
//
// Thread safety: an Enforcer is safe for concurrent access from multiple
// threads without external synchronization. Check, Commit, Peek and Prefetch
// take no lock, allocate nothing and make no system call once a subject has
// been seen; the first sighting of a subject (account, project, key or user, or
// a model of a plan with "usage_by_model") takes a short insert path under
// a mutex. UpsertAccount, ReloadCatalog and
// Maintain are slow-path calls and may take locks and allocate.

#ifndef PLANGATE_ENFORCER_H_
#define PLANGATE_ENFORCER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "plangate/catalog.h"
#include "plangate/clock.h"
#include "plangate/decision.h"
#include "plangate/events.h"

namespace plangate {
namespace internal {
class SyncAccess;
class CheckPathAccess;
}  // namespace internal

struct EnforcerOptions {
  // Behaviour

  // Time source when a request carries no now_ms. Not owned; must outlive
  // the Enforcer. Default: SystemClock::Default().
  Clock* clock = nullptr;

  // An admitted reservation never committed is refunded this long after its
  // check. Default: 10 minutes.
  int64_t reservation_ttl_ms = 10 * 60'000;

  // A subject (project, key or user) whose counters are all zero or past
  // their window may be reclaimed after this long without a check, freeing
  // its slot for another. Accounts registered by UpsertAccount are never
  // reclaimed. Default: 10 minutes.
  int64_t idle_subject_ttl_ms = 10 * 60'000;

  // Receives threshold events (soft nudge, hard cap) from Maintain or
  // DeliverEvents. Not owned; must outlive the Enforcer. Default: none.
  EventSink* event_sink = nullptr;

  // Capacity (memory is allocated up front)

  // Subjects resident at once: accounts plus the projects, keys and users
  // seen. The table holds 128 bytes per slot at a load factor <= 0.7.
  // Default: 131072.
  size_t max_subjects = size_t{1} << 17;
  // The most projects, keys and users one account may have resident at
  // once, for plans without their own "max_subjects": past it the account's
  // requests that need a new one are denied 429 subject_limit (never
  // another account's), so one tenant cannot fill the table for all.
  // 0: a quarter of max_subjects (at least 1).
  size_t subjects_per_account = 0;

  // Reservations outstanding at once (admitted, not yet committed).
  // Default: 65536.
  size_t max_reservations = size_t{1} << 16;

  // Threshold crossings buffered between two deliveries; more are dropped
  // (and counted). Default: 4096.
  size_t event_queue_capacity = 4096;
};

// An amount of one meter. `meter` is an index into Catalog::meters(); get it
// once with Enforcer::MeterId.
struct MeterAmount {
  int meter = 0;
  int64_t amount = 0;
};

// One request to decide. Every string is read during the call only.
struct CheckRequest {
  std::string_view account_id;
  // Narrower scopes; a limit of a scope applies only when its id is set.
  std::string_view project_id;
  std::string_view key_id;
  std::string_view user_id;
  // Live keys are counted. Test (sandbox) keys are checked against the
  // plan's key kinds but never counted. Internal (dashboard, management)
  // traffic is never counted or limited.
  KeyKind key_kind = KeyKind::kLive;
  // On the customer's own provider key: no managed-model allowlist, no
  // wallet debit, and only limits that apply to BYOK or all traffic.
  bool byok = false;
  // The model asked for; empty means the account's default model, which is
  // checked against the plan's managed allowlist all the same.
  std::string_view model;
  // Features the request uses; each must be in the plan.
  std::span<const std::string_view> features;
  // Wallet debit in micro-units for a live, managed request (the per-use
  // price); 0 for none. Reserved at check, settled by Commit like meters.
  int64_t wallet_micros = 0;
  // Amounts by meter. The "requests" meter is 1 unless listed. A meter whose
  // amount is known only afterwards (tokens, cost) takes an estimate here,
  // settled by Commit.
  std::span<const MeterAmount> amounts;
  // The request's instant (Unix ms); 0 reads the Enforcer's clock.
  int64_t now_ms = 0;
  // The host's request id; Commit may name it again as a cross-check.
  uint64_t request_id = 0;
};

// What Commit does with a reservation.
// More of a reservation's meters, while its request runs (a stream's tokens
// as they flow). See Enforcer::Extend.
struct ExtendRequest {
  Reservation reservation;
  // Amounts to add, by meter; a meter not listed adds nothing (the requests
  // meter too).
  std::span<const MeterAmount> amounts;
  int64_t now_ms = 0;  // 0 reads the Enforcer's clock
};

struct CommitRequest {
  Reservation reservation;
  // false: the upstream call failed; everything reserved is refunded.
  bool success = true;
  // Actual amounts for the meters that had estimates; a meter not listed
  // keeps what Check reserved.
  std::span<const MeterAmount> actual;
  // Actual wallet debit; -1 keeps what Check reserved.
  int64_t wallet_micros = -1;
  // When non-zero, must equal the CheckRequest's request_id.
  uint64_t request_id = 0;
};

enum class CommitResult : uint8_t {
  kApplied = 0,  // settled with the actual amounts
  kRefunded,     // the upstream failed: reserved amounts given back
  kDuplicate,    // already settled (committed, refunded, or expired
                 // and its slot since reused): no change
  kExpired,      // the reservation expired and was refunded before
  kInvalid,      // not a reservation of this Enforcer (or id mismatch)
  kEmpty,        // an empty reservation: nothing to do
};
std::string_view CommitResultName(CommitResult result);

enum class SubscriptionState : uint8_t {
  kActive = 0,
  kPastDue = 1,  // admitted with kWarnPastDue until past_due_deadline_ms,
                 // then 402 payment_required
  kBlocked = 2,  // 402 payment_required
};

// An account's own number for one limit of its plan (an enterprise's custom
// quota, or true unlimited), or a user's own number for a user-scope limit
// (a per-user custom rate limit).
struct LimitOverride {
  std::string limit_id;
  std::string user_id;  // empty: the account's limit
  bool unlimited = false;
  int64_t limit = 0;
  double grace = -1;  // negative: keep the plan's grace
};

struct AccountUpdate {
  std::string account_id;
  std::string plan_id;
  // The billing anchor: periods start on its day-of-month and time (UTC).
  int64_t anchor_ms = 0;
  SubscriptionState state = SubscriptionState::kActive;
  int64_t past_due_deadline_ms = 0;
  // A downgrade or cancellation takes effect at the end of the current
  // billing period: the plan the account moves to then (empty: none).
  std::string scheduled_plan_id;
  // The model used when a request names none.
  std::string default_model;
  // Replace the plan's numbers for this account (each limit_id must be a
  // limit of plan_id or scheduled_plan_id; user_id only on user scope).
  std::vector<LimitOverride> overrides;
};

// A change to an account's prepaid wallet (micro-units).
struct WalletUpdate {
  std::string account_id;
  int64_t credit_micros = 0;  // added to the balance (may be negative)
  // With wallets shared through Redis (SyncOptions::share_wallets): the
  // credit's id, required; a credit counts once per id however often it
  // is sent, from whichever instance or tool. Ignored in local mode.
  std::string credit_id;
};

// One limit's standing for an account.
struct LimitUsage {
  std::string limit_id;
  Scope scope = Scope::kAccount;
  std::string meter;
  WindowUnit window = WindowUnit::kBillingPeriod;
  uint32_t window_count = 1;  // see Limit::window_count
  bool unlimited = false;
  int64_t limit = 0;
  int64_t hard_limit = 0;
  int64_t used = 0;
  int64_t window_start_ms = 0;
  int64_t window_end_ms = 0;
  // "ok", "soft_nudge" (at or past the nudge fraction), "grace" (past the
  // limit), "exhausted" (at the hard limit: the next request is denied) or
  // "unlimited".
  std::string state;
};

// How many of a gauge (projects, API keys...) the account has now; the host
// counts them.
struct GaugeCount {
  std::string_view gauge;
  int64_t current = 0;
};

// One resource cap of the plan in force, and the account's standing on it
// when the host reported its count.
struct GaugeUsage {
  std::string name;
  bool unlimited = false;
  int64_t cap = 0;
  int64_t current = -1;  // -1: not reported
  // Over the cap (after a downgrade): how many are read-only (current -
  // cap; the host picks which), and the cheapest plan that holds them all
  // (empty when none does).
  int64_t read_only = 0;
  std::string lifted_by;
};

// One meter's count.
struct MeterCount {
  std::string meter;
  int64_t used = 0;
};

// What one model used in the current billing period (a plan with
// "usage_by_model"): every meter the plan counts by model, "requests"
// first.
struct ModelUsage {
  // Empty: the "other" bucket (requests naming no model, models past the
  // account's "usage_by_model" count, or no room in the counter table).
  std::string model;
  std::vector<MeterCount> meters;
};

struct AccountUsage {
  std::string account_id;
  std::string plan_id;
  SubscriptionState state = SubscriptionState::kActive;
  int64_t period_start_ms = 0;
  int64_t period_end_ms = 0;
  int64_t wallet_micros = 0;
  std::string scheduled_plan_id;
  std::vector<LimitUsage> limits;  // account-scope limits of the plan
  std::vector<GaugeUsage> gauges;  // the plan's resource caps
  // Per model, for a plan with "usage_by_model" (else empty): the models
  // with usage this billing period, by name, then the "other" bucket if it
  // has any. Counted by this Enforcer only (not synced through Redis).
  bool models_counted = false;  // the plan has "usage_by_model"
  std::vector<ModelUsage> models;
};

// The usage report as JSON, shaped like a billing API's usage reply:
// {"account", "plan", "status", "period_start", "period_end" (RFC 3339
// UTC), "scheduled_plan", "wallet_micros", "usage": {limit id: {"used",
// "limit", "hard_limit", "state", "meter", "window", "resets_at"}},
// "resource_counts": {gauge: {"limit", and when the host reported a count:
// "current", "over_limit", "read_only", "lifted_by"}}}. Unlimited limits and
// gauges have "limit": null. A plan with "usage_by_model" adds "models":
// {model: {meter: used}} and "other_models": {meter: used} (null when
// nothing went there).
std::string UsageReportJson(const AccountUsage& usage);

// Counters a host can read to watch the Enforcer.
struct EnforcerStats {
  size_t subjects = 0;  // live subject records
  size_t subject_capacity = 0;
  size_t reservations_pending = 0;
  uint64_t reservations_expired = 0;  // refunded by Maintain
  uint64_t subjects_reclaimed = 0;
  uint64_t capacity_denials = 0;  // checks denied because a table was full
  // Checks denied because their account had max_subjects resident.
  uint64_t subject_denials = 0;
  // Admitted while the reservation table was full: counted as final, so a
  // later failure could not be refunded.
  uint64_t unreserved_admits = 0;
  uint64_t events_delivered = 0;
  uint64_t events_dropped = 0;  // the event queue was full
  // Per-model usage ("usage_by_model"): checks counted in the account's
  // "other" bucket for want of room (its model count, or the table), and
  // checks not counted by model at all (no room even for the bucket).
  uint64_t model_usage_other = 0;
  uint64_t model_usage_skipped = 0;
};

class Enforcer {
 public:
  // Validates options and allocates the tables. InvalidArgument for
  // nonsensical options.
  static absl::StatusOr<std::unique_ptr<Enforcer>> Create(
      std::shared_ptr<const Catalog> catalog, EnforcerOptions options = {});

  ~Enforcer();
  Enforcer(const Enforcer&) = delete;
  Enforcer& operator=(const Enforcer&) = delete;

  // Decides `request`. When admitted, counts its amounts against every
  // applicable limit and returns the reservation to commit. Never blocks;
  // denial is a normal Decision.
  Decision Check(const CheckRequest& request);

  // A hint a host may give as soon as it knows the account (when the
  // request's headers arrive, before it parses the body): the CPU starts
  // bringing the account's record into its caches, so that the Check that
  // follows does not wait on memory. No effect on any decision or count;
  // no lock, no allocation, no system call. Useful when the accounts do
  // not all fit in the CPU's caches.
  void Prefetch(std::string_view account_id) const;

  // What Check would decide now, without counting anything.
  Decision Peek(const CheckRequest& request) const;

  // Charges `request.amounts` more against the limits the reservation
  // counts in, as Check would (caps with grace, leases, all or nothing):
  // admitted, the reservation now holds them too (Commit settles the sum
  // with the actual amounts; a failure refunds it), and its expiry restarts;
  // denied (the limit's own status and reason), nothing more is charged and
  // the reservation keeps what it had, so the host ends the stream with the
  // reason and commits. Counts go to each limit's current window; if that is
  // no longer the window the reservation began in, the extension is final
  // there (a later refund or settle cannot take it back). 400
  // invalid_request for a reservation that is not pending. Extend and Commit
  // of one reservation must not run at the same time (one stream, one
  // thread); different reservations may.
  Decision Extend(const ExtendRequest& request);
  // Settles a reservation. Idempotent: committing the same reservation
  // again returns kDuplicate and changes nothing.
  CommitResult Commit(const CommitRequest& commit);

  // Registers an account or changes its plan, anchor or state. Usage in the
  // current windows is kept across plan changes. InvalidArgument when the
  // plan is not in the catalog; ResourceExhausted when the table is full.
  // With a RedisSync attached that shares account state (the default), the
  // state is also stored in Redis, and every instance applies it within
  // about SyncOptions::account_poll_interval plus a round trip; the last
  // one stored wins.
  absl::Status UpsertAccount(const AccountUpdate& update);
  // Like UpsertAccount, but with shared account state only stores `update`
  // if Redis has no state for the account; if it has, the stored state
  // replaces `update` here as soon as its reply arrives (one round trip).
  // For hosts that register accounts from a file at start: a restarted
  // instance serves with the shared state, not with its file's. Without a
  // sharing RedisSync it is UpsertAccount.
  absl::Status SeedAccount(const AccountUpdate& update);

  // Applies a wallet credit (or correction). NotFound for an unknown
  // account; FailedPrecondition if it would take the balance below zero.
  // Returns the new balance. With wallets shared through Redis the credit
  // is queued for the sync, which applies it once per credit_id within a
  // round (InvalidArgument without a credit_id); the return value is then
  // the balance last heard from Redis plus this credit, an estimate, and a
  // correction that would leave less than is spent or leased is refused
  // by Redis (the sync's LastError and account_errors say so).
  absl::StatusOr<int64_t> UpdateWallet(const WalletUpdate& update);

  // Whether the account may create one more of `gauge` (projects, API
  // keys...) when it has `current` now: admitted, or 402
  // resource_limit_reached naming the cap, with the cheapest plan that
  // allows one more as upgrade_plan. Over the cap (after a downgrade) the
  // message says how many are read-only.
  Decision CheckCreate(std::string_view account_id, std::string_view gauge,
                       int64_t current) const;

  // Replaces the catalog. On error the running catalog stays in force.
  // Counters of (scope, meter, window, mode) present in both keep their
  // counts. FailedPrecondition when a registered account's plan is missing.
  absl::Status ReloadCatalog(std::shared_ptr<const Catalog> catalog);

  // The account's plan and its account-scope limits' usage at now_ms (0:
  // the clock), and its gauges, with the standing of those `gauge_counts`
  // reports (over the cap after a downgrade: read-only, and the plan that
  // lifts them). NotFound for an unknown account.
  absl::StatusOr<AccountUsage> Usage(
      std::string_view account_id, int64_t now_ms = 0,
      std::span<const GaugeCount> gauge_counts = {}) const;

  // Housekeeping, off the hot path: refunds expired reservations and
  // reclaims idle subjects. Call it every second or so (any thread).
  void Maintain(int64_t now_ms = 0);

  // Hands buffered threshold events to the sink, once per (subject, limit,
  // window). Maintain calls it; returns the number delivered.
  size_t DeliverEvents(int64_t now_ms = 0);

  // The index of a meter name, or -1.
  int MeterId(std::string_view meter) const;

  std::shared_ptr<const Catalog> catalog() const;
  EnforcerStats Stats() const;

 private:
  friend class internal::SyncAccess;
  friend class internal::CheckPathAccess;
  struct Impl;
  explicit Enforcer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace plangate

#endif  // PLANGATE_ENFORCER_H_
