// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// The check path, in two phases:
//   1. Evaluate: read every applicable limit's cell (relaxed loads) and
//      apply the decision rule. A denial stops here having written nothing.
//   2. Apply: charge each cell with a CAS that re-checks the limit against
//      the value it replaces. If a concurrent check used up the room in
//      between, the cells already charged are given back and the request is
//      denied, so no limit is ever passed and a denied request counts
//      against none (all-or-nothing). The transient over-count seen by a
//      racing check can only make it deny, never admit.
// Relaxed ordering suffices for the cells: each is a self-contained value
// updated by RMW, and no other memory is published through it.

#include "plangate/enforcer.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <mutex>

#include "absl/base/optimization.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "core/compiled_catalog.h"
#include "core/counter_table.h"
#include "core/event_queue.h"
#include "core/reservation_table.h"
#include "core/sync_link.h"
#include "fmt/format.h"
#include "internal/period.h"

namespace plangate {
namespace internal {

// What UpsertAccount said beyond plan and state. Immutable once published
// in a record; a new upsert publishes a new one and retires the old.
// A limit's numbers for one account (or one user of it), replacing the
// plan's.
struct Caps {
  bool unlimited = false;
  int64_t limit = 0;
  int64_t hard = 0;
  int64_t nudge_at = 0;
};

struct ResolvedOverride {
  std::string limit_id;
  std::string user_id;  // empty: the account's own limit
  Caps caps;
};

struct AccountProfile {
  std::vector<ResolvedOverride> overrides;
  std::string default_model;
  int64_t past_due_deadline_ms = 0;
  int scheduled_plan = -1;      // stable plan id, or -1
  int64_t scheduled_at_ms = 0;  // when scheduled_plan takes over
};

}  // namespace internal

namespace {

using internal::AccountProfile;
using internal::Caps;
using internal::Cell;
using internal::CompiledCatalog;
using internal::CompiledLimit;
using internal::CompiledPlan;
using internal::CounterTable;
using internal::ReservationSlot;
using internal::ReservationTable;
using internal::ReservedOp;
using internal::SubjectRecord;
using internal::SubjectRef;

__extension__ typedef __int128 Int128;  // products of counts and ms

constexpr int64_t kDayMs = 86'400'000;
// Packed period cache: start_ms << 9 | length_days.
constexpr int kPeriodLenBits = 9;
constexpr int64_t kMaxCachedStartMs = (int64_t{1} << 44) - 1;

// meta: [plan id + 1:16][state:8][registered:1].
constexpr uint64_t PackMeta(int plan, SubscriptionState state,
                            bool registered) {
  return static_cast<uint64_t>(plan + 1) |
         (uint64_t{static_cast<uint8_t>(state)} << 16) |
         (uint64_t{registered} << 24);
}
int MetaPlan(uint64_t meta) { return static_cast<int>(meta & 0xffff) - 1; }
SubscriptionState MetaState(uint64_t meta) {
  return static_cast<SubscriptionState>((meta >> 16) & 0xff);
}
bool MetaRegistered(uint64_t meta) { return (meta >> 24) & 1; }

// A window instance as the hot path needs it.
// Trivially constructible: built whole, and kept in uninitialized arrays.
struct Window {
  int64_t start_ms;
  int64_t end_ms;
  uint32_t tag;
};

uint32_t TagOf(int64_t index) {
  return static_cast<uint32_t>(static_cast<uint64_t>(index) & Cell::kTagMask);
}

int64_t FloorDiv(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// The current billing (cache slot 0) or annual (slot 1) period of an
// account record; the cache makes this a load and two compares except at
// rollover.
Window PeriodWindow(SubjectRecord& account, int slot, int64_t now_ms) {
  const uint64_t cached =
      account.period_cache[slot].load(std::memory_order_relaxed);
  if (cached != 0) {
    const auto start = static_cast<int64_t>(cached >> kPeriodLenBits);
    const auto days =
        static_cast<int64_t>(cached & ((1u << kPeriodLenBits) - 1));
    if (start <= now_ms && now_ms < start + days * kDayMs) {
      return {start, start + days * kDayMs, TagOf(start / kDayMs)};
    }
  }
  // Slow path: rollover or first use. The anchor is re-read after the
  // cache store; if UpsertAccount moved it meanwhile, the entry we wrote
  // may describe the old anchor, so drop it.
  const int64_t anchor = account.anchor_ms.load(std::memory_order_seq_cst);
  const internal::WindowInstance w =
      internal::PeriodContaining(anchor, slot == 0 ? 1 : 12, now_ms);
  if (w.start_ms >= 0 && w.start_ms <= kMaxCachedStartMs) {
    const uint64_t packed =
        (static_cast<uint64_t>(w.start_ms) << kPeriodLenBits) |
        static_cast<uint64_t>((w.end_ms - w.start_ms) / kDayMs);
    account.period_cache[slot].store(packed, std::memory_order_seq_cst);
    if (account.anchor_ms.load(std::memory_order_seq_cst) != anchor) {
      uint64_t expected = packed;
      account.period_cache[slot].compare_exchange_strong(
          expected, 0, std::memory_order_seq_cst);
    }
  }
  return {w.start_ms, w.end_ms, TagOf(FloorDiv(w.start_ms, kDayMs))};
}

// A constant divisor per unit lets the compiler replace the division by a
// multiplication.
template <int64_t kLen>
Window FixedWindow(int64_t now_ms) {
  const int64_t index = FloorDiv(now_ms, kLen);
  return {index * kLen, index * kLen + kLen, TagOf(index)};
}

// A whole-length window ("15m"): aligned on the Unix epoch.
Window FixedWindowOf(int64_t len, int64_t now_ms) {
  const int64_t index = FloorDiv(now_ms, len);
  return {index * len, index * len + len, TagOf(index)};
}

Window CurrentWindow(const CompiledLimit& limit, SubjectRecord& account,
                     int64_t now_ms) {
  if (ABSL_PREDICT_FALSE(limit.window_count != 1)) {
    return FixedWindowOf(limit.window_ms, now_ms);
  }
  switch (limit.window) {
    case WindowUnit::kBillingPeriod:
      return PeriodWindow(account, 0, now_ms);
    case WindowUnit::kAnnual:
      return PeriodWindow(account, 1, now_ms);
    case WindowUnit::kDay:
      return FixedWindow<internal::FixedWindowMs(WindowUnit::kDay)>(now_ms);
    case WindowUnit::kHour:
      return FixedWindow<internal::FixedWindowMs(WindowUnit::kHour)>(now_ms);
    case WindowUnit::kMinute:
      return FixedWindow<internal::FixedWindowMs(WindowUnit::kMinute)>(now_ms);
    case WindowUnit::kSecond:
      return FixedWindow<internal::FixedWindowMs(WindowUnit::kSecond)>(now_ms);
  }
  return FixedWindow<1000>(now_ms);
}

// Usage of one limit's counter as seen in cell word(s).
struct CellView {
  int64_t current = 0;   // count in the current window
  int64_t previous = 0;  // count in the previous window (sliding only)
};

CellView ViewOf(uint64_t cur_word, uint64_t prev_word, uint32_t tag,
                bool sliding) {
  CellView v;
  const uint32_t prev_tag = (tag - 1) & Cell::kTagMask;
  if (Cell::Tag(cur_word) == tag) {
    v.current = Cell::Count(cur_word);
    if (sliding && Cell::Tag(prev_word) == prev_tag) {
      v.previous = Cell::Count(prev_word);
    }
  } else if (sliding && Cell::Tag(cur_word) == prev_tag) {
    v.previous = Cell::Count(cur_word);
  }
  return v;
}

// The sliding estimate: the current count plus the share of the previous
// window's count that still overlaps the trailing window.
int64_t Estimate(const CellView& v, const Window& w, int64_t now_ms) {
  if (v.previous == 0) return v.current;
  const int64_t len = w.end_ms - w.start_ms;  // < 2^27 (a day in ms)
  const int64_t left = w.end_ms - now_ms;
  // 64-bit arithmetic whenever the product fits, 128-bit (a library call)
  // only for counts of 2^36 and more.
  const int64_t weighted =
      v.previous < (int64_t{1} << 36)
          ? v.previous * left / len
          : static_cast<int64_t>((static_cast<Int128>(v.previous) * left) /
                                 len);
  return v.current + weighted;
}

// When a denied request of `amount` could fit.
int64_t RetryAt(const CompiledLimit& limit, const Caps& caps, const CellView& v,
                const Window& w, int64_t amount) {
  if (amount > caps.hard) return 0;  // never fits
  if (limit.mode != WindowMode::kSliding) return w.end_ms;
  const int64_t len = w.end_ms - w.start_ms;
  const int64_t room = caps.hard - v.current - amount;
  if (room >= 0 && v.previous > 0) {
    // Need previous * (end - t) / len <= room.
    const int64_t t =
        w.end_ms -
        static_cast<int64_t>((static_cast<Int128>(room) * len) / v.previous);
    return std::max(t, w.start_ms);
  }
  // Next window: its previous is our current.
  if (v.current == 0) return w.end_ms;
  const int64_t room_next = caps.hard - amount;
  return w.end_ms + len -
         static_cast<int64_t>((static_cast<Int128>(room_next) * len) /
                              v.current);
}

bool TrafficMatches(Traffic t, bool byok) {
  return t == Traffic::kAll || (t == Traffic::kByok) == byok;
}

int64_t AmountFor(const CheckRequest& req, uint16_t meter) {
  for (const MeterAmount& m : req.amounts) {
    if (m.meter == meter) return m.amount;
  }
  return meter == 0 ? 1 : 0;  // meter 0 is "requests"
}

std::string_view IdFor(const CheckRequest& req, Scope scope) {
  switch (scope) {
    case Scope::kAccount:
      return req.account_id;
    case Scope::kProject:
      return req.project_id;
    case Scope::kKey:
      return req.key_id;
    case Scope::kUser:
      return req.user_id;
  }
  return {};
}

// Outcome of charging one cell.
// kLeaseShrank: the sync lowered this instance's ceiling under the charge.
enum class Charge { kOk, kOver, kStale, kLeaseShrank };

// Adds `amount` to the counter of window `tag`, refusing when `enforce`
// and the result would pass `hard`. *seen receives the view it decided on.
// `word` and `prev_word` are the values the evaluation decided on; the CAS
// expects them, so the common uncontended case re-reads nothing.
Charge ChargeCell(SubjectRecord& rec, uint8_t gen, const CompiledLimit& limit,
                  int64_t hard, const Window& w, int64_t now_ms, int64_t amount,
                  bool enforce, uint64_t word, uint64_t prev_word,
                  CellView* seen, internal::SyncLink* sync, uint32_t index) {
  const bool sliding = limit.mode == WindowMode::kSliding;
  std::atomic<uint64_t>& cur = rec.cells[limit.cell];
  *seen = ViewOf(word, prev_word, w.tag, sliding);
  for (bool first = true;; first = false) {
    if (!first) {
      if (Cell::Gen(word) != gen) return Charge::kStale;
      prev_word =
          sliding ? rec.cells[limit.cell + 1].load(std::memory_order_relaxed)
                  : 0;
      *seen = ViewOf(word, prev_word, w.tag, sliding);
      if (enforce && Estimate(*seen, w, now_ms) + amount > hard) {
        return Charge::kOver;
      }
    }
    const int64_t next = std::min(seen->current + amount, kMaxCount);
    // seq_cst on success: one half of the dirty-mark Dekker pair
    // (sync_link.h); on x86 the same lock cmpxchg as relaxed.
    if (cur.compare_exchange_weak(word, Cell::Pack(gen, w.tag, next),
                                  std::memory_order_seq_cst,
                                  std::memory_order_relaxed)) {
      if (sync != nullptr && limit.synced && Cell::Tag(word) != w.tag) {
        // The old window's final count (zero too: it closes the sync's
        // state of that window): only the sync component needs it.
        if (!sync->closed.Push(
                internal::ClosedWindow{index, limit.cell, word})) {
          sync->closed_overflow.fetch_add(1, std::memory_order_relaxed);
        }
      }
      if (sliding && Cell::Tag(word) != w.tag) {
        // We rolled the pair over: what was current is now previous.
        const uint32_t prev_tag = (w.tag - 1) & Cell::kTagMask;
        const int64_t carried =
            Cell::Tag(word) == prev_tag ? Cell::Count(word) : 0;
        rec.cells[limit.cell + 1].store(Cell::Pack(gen, prev_tag, carried),
                                        std::memory_order_relaxed);
      }
      return Charge::kOk;
    }
  }
}

// Adds delta (possibly negative) to the count of window `tag`, if that
// window is still the current or (sliding) the previous one. Counts never
// go below zero.
void AdjustCell(SubjectRecord& rec, uint8_t gen, uint8_t cell, bool sliding,
                uint32_t tag, int64_t delta) {
  for (int c = 0; c < (sliding ? 2 : 1); ++c) {
    std::atomic<uint64_t>& a = rec.cells[cell + c];
    uint64_t word = a.load(std::memory_order_relaxed);
    for (;;) {
      if (Cell::Gen(word) != gen || Cell::Tag(word) != tag) break;
      const int64_t next =
          std::clamp(Cell::Count(word) + delta, int64_t{0}, kMaxCount);
      if (a.compare_exchange_weak(word, Cell::Pack(gen, tag, next),
                                  std::memory_order_seq_cst,
                                  std::memory_order_relaxed)) {
        return;
      }
    }
  }
}

Decision DenyWith(DenyKind kind, int status) {
  Decision d;
  d.status = status;
  d.deny = kind;
  d.reason = DenyKindReason(kind);
  return d;
}

bool HasFeature(const Plan& plan, std::string_view feature) {
  for (const std::string& f : plan.features) {
    if (f == feature) return true;
  }
  return false;
}

bool ModelAllowed(const Plan& plan, std::string_view model) {
  for (const std::string& pattern : plan.models) {
    if (internal::ModelMatches(pattern, model)) return true;
  }
  return false;
}

// Moves `delta` micro-units into the wallet (negative: out of it), never
// below zero. Returns false, changing nothing, when the balance is short.
bool MoveWallet(std::atomic<int64_t>& wallet, int64_t delta) {
  int64_t balance = wallet.load(std::memory_order_relaxed);
  for (;;) {
    if (balance + delta < 0) return false;
    // Relaxed: the balance is a self-contained value, like a cell.
    if (wallet.compare_exchange_weak(balance, balance + delta,
                                     std::memory_order_relaxed,
                                     std::memory_order_relaxed)) {
      return true;
    }
  }
}

// The plan in force at now_ms: a scheduled change takes over at its time.
int EffectivePlan(uint64_t meta, const AccountProfile* profile,
                  int64_t now_ms) {
  if (profile != nullptr && profile->scheduled_plan >= 0 &&
      now_ms >= profile->scheduled_at_ms) {
    return profile->scheduled_plan;
  }
  return MetaPlan(meta);
}

// Like MoveWallet, but takes what is there when the balance is short.
void DrainWallet(std::atomic<int64_t>& wallet, int64_t amount) {
  int64_t balance = wallet.load(std::memory_order_relaxed);
  while (!wallet.compare_exchange_weak(
      balance, std::max<int64_t>(0, balance - amount),
      std::memory_order_relaxed, std::memory_order_relaxed)) {
  }
}

void Describe(const CompiledLimit& limit, const Caps& caps, const Window& w,
              int64_t used, int64_t amount, Decision* d) {
  d->has_limit = true;
  d->limit = LimitRef{limit.source->id, limit.scope,        limit.source->meter,
                      limit.window,     limit.window_count, limit.mode};
  d->limit_value = caps.unlimited ? 0 : caps.limit;
  d->hard_limit = caps.unlimited ? 0 : caps.hard;
  d->used = used;
  d->remaining = caps.unlimited
                     ? kMaxCount
                     : std::max<int64_t>(0, caps.hard - used - amount);
  d->window_start_ms = w.start_ms;
  d->reset_ms = w.end_ms;
}

void DescribeDenial(const CompiledLimit& limit, const Caps& caps,
                    const Window& w, const CellView& v, int64_t used,
                    int64_t amount, int64_t now_ms, Decision* d) {
  Describe(limit, caps, w, used, amount, d);
  d->warnings = kWarnNone;  // warnings belong to admitted decisions
  d->shadow = false;
  d->status = limit.status;
  d->deny = DenyKind::kLimit;
  d->reason = limit.reason;
  d->message = limit.message;
  d->remaining = std::max<int64_t>(0, caps.hard - used);
  const int64_t at = RetryAt(limit, caps, v, w, amount);
  d->retry_after_ms = at > now_ms ? at - now_ms : 0;
}

Caps PlanCaps(const CompiledLimit& limit) {
  return {limit.unlimited, limit.limit, limit.hard, limit.nudge_at};
}

// The caps of `limit` for this account and user: an override if the
// account has one, else the plan's.
Caps CapsFor(const CompiledLimit& limit, const AccountProfile* profile,
             std::string_view user_id) {
  if (profile != nullptr && !profile->overrides.empty()) {
    const internal::ResolvedOverride* found = nullptr;
    for (const internal::ResolvedOverride& o : profile->overrides) {
      if (o.limit_id != limit.source->id) continue;
      if (o.user_id.empty()) {
        if (found == nullptr) found = &o;
      } else if (o.user_id == user_id) {
        found = &o;  // a user's own limit beats the account's
        break;
      }
    }
    if (found != nullptr) return found->caps;
  }
  return PlanCaps(limit);
}

// One applicable limit, between evaluation and charging. Trivially
// constructible: an array of them costs nothing until filled.
struct PendingCharge {
  const CompiledLimit* limit;
  Caps caps;
  SubjectRecord* rec;
  uint32_t index;
  uint8_t gen;
  Window window;
  int64_t amount;
  int64_t used;
  uint64_t word;
  uint64_t prev_word;
  bool leased;  // bounded by the sync's ceiling: re-checked after the charge
};

}  // namespace

std::string_view CommitResultName(CommitResult result) {
  switch (result) {
    case CommitResult::kApplied:
      return "applied";
    case CommitResult::kRefunded:
      return "refunded";
    case CommitResult::kDuplicate:
      return "duplicate";
    case CommitResult::kExpired:
      return "expired";
    case CommitResult::kInvalid:
      return "invalid";
    case CommitResult::kEmpty:
      return "empty";
  }
  return "unknown";
}

struct Enforcer::Impl {
  Impl(EnforcerOptions opts)
      : options(opts),
        clock(opts.clock != nullptr ? opts.clock : SystemClock::Default()),
        table(opts.max_subjects),
        reservations(opts.max_reservations),
        events(opts.event_sink != nullptr ? opts.event_queue_capacity : 2) {}

  int64_t Now(int64_t now_ms) const {
    return now_ms != 0 ? now_ms : clock->NowMs();
  }

  Decision Decide(const CheckRequest& req, bool charge);
  CommitResult Settle(const CommitRequest& commit);
  SubjectRef LookupAccount(std::string_view id, int64_t now_ms,
                           const CompiledCatalog& cc, bool may_insert,
                           Decision* denial);
  absl::Status InstallCatalog(std::shared_ptr<const Catalog> catalog);
  void Refund(ReservationSlot& slot);
  bool Reclaimable(SubjectRecord& rec, const CompiledCatalog& cc,
                   int64_t now_ms);

  const EnforcerOptions options;
  Clock* const clock;
  CounterTable table;
  ReservationTable reservations;
  std::atomic<const CompiledCatalog*> compiled{nullptr};

  std::atomic<uint64_t> reservations_expired{0};
  std::atomic<uint64_t> subjects_reclaimed{0};
  std::atomic<uint64_t> capacity_denials{0};
  std::atomic<uint64_t> unreserved_admits{0};
  std::atomic<uint64_t> events_delivered{0};
  std::atomic<uint64_t> events_dropped{0};

  internal::EventQueue events;
  std::mutex events_mu;  // one drainer at a time

  // The cluster sync component, when one is attached (sync.h). Links stay
  // alive as long as the Enforcer: a check may still hold one.
  std::atomic<internal::SyncLink*> sync{nullptr};
  std::vector<std::unique_ptr<internal::SyncLink>> links;  // under admin_mu

  // Tells the sync component that `rec` changed (see sync_link.h).
  static void MarkDirty(internal::SyncLink* link, SubjectRecord& rec,
                        uint32_t index, uint8_t gen) {
    if (rec.ctrl.load(std::memory_order_seq_cst) & internal::kCtrlSyncDirty) {
      return;  // queued already; the sync thread will read our change
    }
    if (rec.ctrl.fetch_or(internal::kCtrlSyncDirty, std::memory_order_seq_cst) &
        internal::kCtrlSyncDirty) {
      return;
    }
    if (!link->dirty.Push(internal::PackDirty(index, gen))) {
      rec.ctrl.fetch_and(~internal::kCtrlSyncDirty, std::memory_order_seq_cst);
      link->dirty_overflow.fetch_add(1, std::memory_order_relaxed);
    }
  }
  // Crossings already delivered: key -> end of their window (for pruning).
  absl::flat_hash_map<std::string, int64_t> fired;  // under events_mu

  // Queues the threshold crossings of one charged limit (rare: only when
  // a request takes usage across a threshold).
  void NoteCrossings(const CompiledPlan& plan, int plan_id,
                     const CompiledLimit& limit, const Caps& caps,
                     uint32_t record, uint8_t gen, const Window& w,
                     int64_t before, int64_t after) {
    if (caps.unlimited) return;
    const auto note = [&](ThresholdKind kind) {
      internal::RawEvent e;
      e.record = record;
      e.gen = gen;
      e.kind = static_cast<uint8_t>(kind);
      e.limit_index = static_cast<uint16_t>(&limit - plan.limits.data());
      e.plan = plan_id;
      e.window_start_ms = w.start_ms;
      e.window_end_ms = w.end_ms;
      e.used = after;
      e.limit = caps.limit;
      if (!events.Push(e)) {
        events_dropped.fetch_add(1, std::memory_order_relaxed);
      }
    };
    if (before < caps.nudge_at && after >= caps.nudge_at) {
      note(ThresholdKind::kSoftNudge);
    }
    if (before < caps.limit && after >= caps.limit) {
      note(ThresholdKind::kHardCap);
    }
  }

  // Slow-path state, under admin_mu.
  mutable std::mutex admin_mu;
  internal::Registry meters;
  internal::Registry plans;
  // Every compilation stays alive as long as the Enforcer, so that a
  // racing check and every Decision's string_views stay valid.
  std::vector<std::unique_ptr<CompiledCatalog>> compilations;
  // Profiles replaced by UpsertAccount; freed by Maintain once no check
  // can still be reading them (kRetireAfter of real time later).
  struct RetiredProfile {
    const AccountProfile* profile;
    std::chrono::steady_clock::time_point at;
  };
  std::vector<RetiredProfile> retired_profiles;
  static constexpr std::chrono::seconds kRetireAfter{2};

  ~Impl() {
    table.ForEachLive([](SubjectRecord& rec) {
      delete rec.profile.load(std::memory_order_relaxed);
    });
    for (const RetiredProfile& r : retired_profiles) delete r.profile;
  }
};

SubjectRef Enforcer::Impl::LookupAccount(std::string_view id, int64_t now_ms,
                                         const CompiledCatalog& cc,
                                         bool may_insert, Decision* denial) {
  const uint64_t hash = table.Hash(Scope::kAccount, id, {});
  SubjectRef ref = table.Find(Scope::kAccount, id, {}, hash);
  if (ABSL_PREDICT_TRUE(ref)) return ref;
  if (cc.default_plan < 0 || !may_insert) {
    *denial = DenyWith(DenyKind::kUnknownAccount, 403);
    return {};
  }
  // First sighting of an account the host never registered: it gets the
  // catalog's default plan, anchored on the calendar month.
  auto inserted = table.FindOrInsert(Scope::kAccount, id, {}, hash, now_ms);
  if (!inserted.ok()) {
    capacity_denials.fetch_add(1, std::memory_order_relaxed);
    *denial = DenyWith(DenyKind::kCapacity, 503);
    return {};
  }
  // Only a record no one registered yet (low half zero) gets the default.
  uint64_t expected = inserted->rec->meta.load(std::memory_order_relaxed);
  while ((expected & 0xffffffff) == 0 &&
         !inserted->rec->meta.compare_exchange_weak(
             expected,
             expected |
                 PackMeta(cc.default_plan, SubscriptionState::kActive, false),
             std::memory_order_acq_rel)) {
  }
  return *inserted;
}

Decision Enforcer::Impl::Decide(const CheckRequest& req, bool charge) {
  if (req.key_kind == KeyKind::kInternal) return Decision{};
  const int64_t now = Now(req.now_ms);
  for (const MeterAmount& m : req.amounts) {
    if (m.amount < 0 || m.amount > kMaxCount) {
      Decision d = DenyWith(DenyKind::kInvalidRequest, 400);
      d.message = "amounts must be in [0, 2^42)";
      return d;
    }
  }
  // Acquire pairs with the release in InstallCatalog.
  const CompiledCatalog& cc = *compiled.load(std::memory_order_acquire);
  internal::SyncLink* const link = sync.load(std::memory_order_acquire);

  for (;;) {  // repeats only when a record was reclaimed under us
    Decision decision;
    SubjectRef subjects[kNumScopes];
    subjects[0] = LookupAccount(req.account_id, now, cc, charge, &decision);
    if (!subjects[0]) return decision;
    SubjectRecord& account = *subjects[0].rec;

    // Acquire pairs with UpsertAccount's release of meta and profile: what
    // was stored before them is visible.
    const uint64_t meta = account.meta.load(std::memory_order_acquire);
    const AccountProfile* profile =
        account.profile.load(std::memory_order_acquire);
    const int plan_id = EffectivePlan(meta, profile, now);
    if (plan_id < 0 || static_cast<size_t>(plan_id) >= cc.plans.size() ||
        cc.plans[plan_id] == nullptr) {
      return DenyWith(
          plan_id < 0 ? DenyKind::kUnknownAccount : DenyKind::kUnknownPlan,
          403);
    }
    const CompiledPlan& plan = *cc.plans[plan_id];
    switch (MetaState(meta)) {
      case SubscriptionState::kActive:
        break;
      case SubscriptionState::kPastDue:
        if (profile != nullptr && now < profile->past_due_deadline_ms) {
          decision.warnings |= kWarnPastDue;
          break;
        }
        [[fallthrough]];
      case SubscriptionState::kBlocked:
        // Payment required: the key kinds the plan blocks are denied; the
        // others (by default sandbox and test) go on, warned.
        if (plan.past_due_blocks & (1u << static_cast<int>(req.key_kind))) {
          return DenyWith(DenyKind::kPaymentRequired, 402);
        }
        decision.warnings |= kWarnPastDue;
        break;
    }

    // Gates: key kind, features, managed models, wallet minimum.
    if ((plan.key_kinds & (1u << static_cast<int>(req.key_kind))) == 0) {
      return DenyWith(DenyKind::kKeyKindNotAllowed, 403);
    }
    for (const std::string_view feature : req.features) {
      if (!HasFeature(*plan.source, feature)) {
        Decision d = DenyWith(DenyKind::kFeatureNotInPlan, 402);
        if (const Plan* up =
                cc.catalog->CheapestPlanWithFeature(feature, plan.source->id)) {
          d.upgrade_plan = up->id;
        }
        return d;
      }
    }
    if (plan.source->models_restricted && !req.byok) {
      const std::string_view model =
          !req.model.empty() || profile == nullptr
              ? req.model
              : std::string_view(profile->default_model);
      if (!ModelAllowed(*plan.source, model)) {
        Decision d = DenyWith(DenyKind::kModelNotAllowed, 403);
        d.message = req.model.empty()
                        ? "the workspace default model is not in the plan's "
                          "managed allowlist; change it in the dashboard"
                        : "model not in the plan's managed allowlist";
        return d;
      }
    }
    // Test (sandbox) traffic passes the gates above and is never counted.
    if (req.key_kind == KeyKind::kTest) return decision;
    const bool managed_live = !req.byok;
    const int64_t debit = managed_live ? req.wallet_micros : 0;
    if (managed_live && (plan.source->wallet.required || debit > 0)) {
      const int64_t balance =
          account.wallet_micros.load(std::memory_order_relaxed);
      if (balance < debit ||
          (plan.source->wallet.required &&
           balance < plan.source->wallet.min_balance_micros)) {
        Decision d = DenyWith(DenyKind::kInsufficientCredit, 402);
        d.used = balance;
        return d;
      }
    }

    for (int s = 1; s < kNumScopes; ++s) {
      const auto scope = static_cast<Scope>(s);
      const std::string_view id = IdFor(req, scope);
      if (!plan.uses_scope[s] || id.empty()) continue;
      const uint64_t hash = table.Hash(scope, req.account_id, id);
      subjects[s] = table.Find(scope, req.account_id, id, hash);
      if (ABSL_PREDICT_FALSE(!subjects[s])) {
        if (!charge) continue;  // Peek: a subject never seen has used nothing
        auto inserted =
            table.FindOrInsert(scope, req.account_id, id, hash, now);
        if (!inserted.ok()) {
          capacity_denials.fetch_add(1, std::memory_order_relaxed);
          Decision d =
              DenyWith(absl::IsInvalidArgument(inserted.status())
                           ? DenyKind::kInvalidRequest
                           : DenyKind::kCapacity,
                       absl::IsInvalidArgument(inserted.status()) ? 400 : 503);
          return d;
        }
        subjects[s] = *inserted;
      }
    }

    // Phase 1: evaluate every applicable limit; stop at the first denial.
    PendingCharge pending[internal::kMaxReservedOps];
    int num_pending = 0;
    int tightest = -1;  // the admitted limit with least room left decides
    double tightest_room = 2.0;
    bool stale = false;
    for (const CompiledLimit& limit : plan.limits) {
      const SubjectRef& subject = subjects[static_cast<int>(limit.scope)];
      if (!subject || !TrafficMatches(limit.applies_to, req.byok)) continue;
      const int64_t amount = AmountFor(req, limit.meter);
      const Window w = CurrentWindow(limit, account, now);
      const bool sliding = limit.mode == WindowMode::kSliding;
      const uint64_t word =
          subject.rec->cells[limit.cell].load(std::memory_order_relaxed);
      if (ABSL_PREDICT_FALSE(Cell::Gen(word) != subject.gen)) {
        stale = true;
        break;
      }
      const uint64_t prev_word = sliding
                                     ? subject.rec->cells[limit.cell + 1].load(
                                           std::memory_order_relaxed)
                                     : 0;
      const CellView view = ViewOf(word, prev_word, w.tag, sliding);
      const int64_t used = Estimate(view, w, now);
      const int64_t after = used + amount;
      Caps caps = CapsFor(limit, profile, req.user_id);
      bool cold = false;  // a denial here is transient: 429 quota_syncing
      bool leased = false;
      if (ABSL_PREDICT_FALSE(link != nullptr) && limit.leasable &&
          link->leases && !caps.unlimited) {
        const uint64_t nibble = internal::CellNibble(
            subject.rec->meta.load(std::memory_order_acquire), limit.cell);
        if (internal::NibbleReady(nibble, w.tag)) {
          // This instance may take the count up to its ceiling (lease).
          leased = true;
          const int64_t ceiling = link->Ceiling(subject.index, limit.cell);
          if (ceiling >= 0 && ceiling < caps.hard && after <= caps.hard) {
            caps.hard = ceiling;
            cold = true;
          }
        } else if (limit.down_policy != RedisDownPolicy::kFailOpen ||
                   link->up.load(std::memory_order_relaxed)) {
          // This instance has not synced the counter's window yet: it may
          // admit only its cold-start share until it has.
          const int64_t budget = link->ColdBudget(caps.hard);
          if (budget < caps.hard && after <= caps.hard) {
            caps.hard = budget;
            cold = true;
          }
        }
      }
      if (!caps.unlimited) {
        if (after > caps.hard) {
          if (!limit.shadow) {
            DescribeDenial(limit, caps, w, view, used, amount, now, &decision);
            decision.upgrade_plan = plan.next_plan;
            if (cold) {
              // Tell the sync component this counter wants (more) lease.
              MarkDirty(link, *subject.rec, subject.index, subject.gen);
              decision.status = 429;
              decision.deny = DenyKind::kSyncing;
              decision.reason = DenyKindReason(DenyKind::kSyncing);
              decision.message = {};
              decision.retry_after_ms = 1000;
              decision.upgrade_plan = {};
            }
            return decision;
          }
          decision.warnings |= kWarnShadowDenied;
          decision.shadow = true;
        } else if (after > caps.limit) {
          decision.warnings |= kWarnGrace;
        } else if (after >= caps.nudge_at) {
          decision.warnings |= kWarnSoftNudge;
        }
        const double room =
            static_cast<double>(caps.hard - after) /
            static_cast<double>(std::max<int64_t>(caps.hard, 1));
        if (room < tightest_room) {
          tightest_room = room;
          tightest = num_pending;
        }
      }
      pending[num_pending++] = {
          &limit, caps, subject.rec, subject.index, subject.gen, w,
          amount, used, word,        prev_word,     leased};
    }
    if (ABSL_PREDICT_FALSE(stale)) continue;
    if (tightest >= 0) {
      const PendingCharge& p = pending[tightest];
      Describe(*p.limit, p.caps, p.window, p.used, p.amount, &decision);
    }
    if (!charge || (num_pending == 0 && debit == 0)) return decision;

    // Phase 2: debit the wallet, then charge every cell, re-checking each
    // against what it holds.
    if (debit > 0 && !MoveWallet(account.wallet_micros, -debit)) {
      Decision d = DenyWith(DenyKind::kInsufficientCredit, 402);
      d.used = account.wallet_micros.load(std::memory_order_relaxed);
      return d;
    }
    int charged = 0;
    Charge failure = Charge::kOk;
    CellView seen;
    int64_t before[internal::kMaxReservedOps];
    for (; charged < num_pending; ++charged) {
      const PendingCharge& p = pending[charged];
      const bool enforce = !p.caps.unlimited && !p.limit->shadow;
      failure = ChargeCell(*p.rec, p.gen, *p.limit, p.caps.hard, p.window, now,
                           p.amount, enforce, p.word, p.prev_word, &seen, link,
                           p.index);
      if (ABSL_PREDICT_FALSE(failure != Charge::kOk)) break;
      before[charged] = Estimate(seen, p.window, now);
    }
    // A ceiling the sync lowered (a lease returned, a reserve given back)
    // after phase 1 read it: the sync stores the new ceiling and only then
    // reads the cell for the usage it reports, both seq_cst, and the charge
    // above is a seq_cst CAS followed by this seq_cst load, so either the
    // sync's read saw this charge (and reports it inside the old lease) or
    // this load sees the new ceiling and the charge is undone.
    if (ABSL_PREDICT_FALSE(link != nullptr) && failure == Charge::kOk) {
      for (int k = 0; k < num_pending; ++k) {
        const PendingCharge& p = pending[k];
        if (!p.leased || p.amount <= 0) continue;
        const int64_t ceiling = link->CeilingSeqCst(p.index, p.limit->cell);
        if (ABSL_PREDICT_FALSE(ceiling >= 0 &&
                               before[k] + p.amount > ceiling)) {
          failure = Charge::kLeaseShrank;
          break;
        }
      }
    }
    if (ABSL_PREDICT_FALSE(failure != Charge::kOk)) {
      for (int k = 0; k < charged; ++k) {
        const PendingCharge& p = pending[k];
        AdjustCell(*p.rec, p.gen, p.limit->cell,
                   p.limit->mode == WindowMode::kSliding, p.window.tag,
                   -p.amount);
      }
      if (debit > 0) MoveWallet(account.wallet_micros, debit);
      if (failure == Charge::kStale) continue;
      if (failure == Charge::kLeaseShrank) {
        Decision syncing = DenyWith(DenyKind::kSyncing, 429);
        syncing.retry_after_ms = 1000;
        return syncing;
      }
      const PendingCharge& p = pending[charged];
      Decision denied;
      DescribeDenial(*p.limit, p.caps, p.window, seen,
                     Estimate(seen, p.window, now), p.amount, now, &denied);
      denied.upgrade_plan = plan.next_plan;
      return denied;
    }

    if (options.event_sink != nullptr) {
      for (int k = 0; k < num_pending; ++k) {
        const PendingCharge& p = pending[k];
        // Synced counters cross thresholds cluster-wide: the sync
        // component reports those, once per cluster.
        if (link != nullptr && p.limit->synced) continue;
        const int64_t after = before[k] + p.amount;
        if (ABSL_PREDICT_FALSE(after >= p.caps.nudge_at &&
                               before[k] < p.caps.limit)) {
          NoteCrossings(plan, plan_id, *p.limit, p.caps, p.index, p.gen,
                        p.window, before[k], after);
        }
      }
    }

    if (link != nullptr) {
      for (int k = 0; k < num_pending; ++k) {
        if (pending[k].limit->synced) {
          MarkDirty(link, *pending[k].rec, pending[k].index, pending[k].gen);
        }
      }
    }

    // Touch each subject at most once a second, for idle reclamation.
    const auto now_s = static_cast<uint32_t>(now / 1000);
    for (const SubjectRef& s : subjects) {
      if (s && s.rec->last_used_s.load(std::memory_order_relaxed) != now_s) {
        s.rec->last_used_s.store(now_s, std::memory_order_relaxed);
      }
    }

    uint32_t index = 0;
    uint32_t generation = 0;
    ReservationSlot* slot = reservations.Acquire(&index, &generation);
    if (ABSL_PREDICT_FALSE(slot == nullptr)) {
      // No room to remember the reservation: the charge stands as final.
      unreserved_admits.fetch_add(1, std::memory_order_relaxed);
      return decision;
    }
    slot->request_id = req.request_id;
    slot->num_ops = num_pending;
    slot->wallet_record = subjects[0].index;
    slot->wallet_gen = subjects[0].gen;
    slot->wallet_micros = debit;
    for (int k = 0; k < num_pending; ++k) {
      const PendingCharge& p = pending[k];
      slot->ops[k] =
          ReservedOp{p.index,        static_cast<uint16_t>(p.window.tag),
                     p.limit->cell,  p.gen,
                     p.limit->meter, p.limit->mode == WindowMode::kSliding,
                     p.amount};
    }
    reservations.Publish(slot, generation, now + options.reservation_ttl_ms);
    decision.reservation = Reservation{index, generation};
    return decision;
  }
}

namespace {
// The account record of a reservation, if it is still that record.
SubjectRecord* WalletOf(CounterTable& table, const ReservationSlot& slot) {
  SubjectRecord& rec = table.at(slot.wallet_record);
  const uint32_t ctrl = rec.ctrl.load(std::memory_order_acquire);
  if (SubjectRecord::State(ctrl) != internal::RecordState::kLive ||
      static_cast<uint8_t>(SubjectRecord::Generation(ctrl)) !=
          slot.wallet_gen) {
    return nullptr;
  }
  return &rec;
}
}  // namespace

void Enforcer::Impl::Refund(ReservationSlot& slot) {
  internal::SyncLink* const link = sync.load(std::memory_order_acquire);
  for (int k = 0; k < slot.num_ops; ++k) {
    const ReservedOp& op = slot.ops[k];
    AdjustCell(table.at(op.record), op.gen, op.cell, op.sliding, op.tag,
               -op.amount);
    if (link != nullptr)
      MarkDirty(link, table.at(op.record), op.record, op.gen);
  }
  if (slot.wallet_micros > 0) {
    if (SubjectRecord* rec = WalletOf(table, slot)) {
      MoveWallet(rec->wallet_micros, slot.wallet_micros);
    }
  }
}

CommitResult Enforcer::Impl::Settle(const CommitRequest& commit) {
  if (commit.reservation.empty()) return CommitResult::kEmpty;
  ReservationSlot* slot = nullptr;
  switch (reservations.BeginSettle(commit.reservation.slot,
                                   commit.reservation.generation, &slot)) {
    case internal::SettleClaim::kOk:
      break;
    case internal::SettleClaim::kAlreadySettled:
      return CommitResult::kDuplicate;
    case internal::SettleClaim::kExpired:
      return CommitResult::kExpired;
    case internal::SettleClaim::kUnknown:
      return CommitResult::kInvalid;
  }
  if (commit.request_id != 0 && slot->request_id != 0 &&
      commit.request_id != slot->request_id) {
    // Not ours: put it back untouched.
    reservations.Publish(slot, commit.reservation.generation,
                         slot->expires_ms.load(std::memory_order_relaxed));
    return CommitResult::kInvalid;
  }
  if (!commit.success) {
    Refund(*slot);
    reservations.EndSettle(slot, commit.reservation.generation,
                           internal::SlotOutcome::kRefunded);
    return CommitResult::kRefunded;
  }
  for (int k = 0; k < slot->num_ops; ++k) {
    const ReservedOp& op = slot->ops[k];
    for (const MeterAmount& m : commit.actual) {
      if (m.meter != op.meter) continue;
      const int64_t actual = std::clamp(m.amount, int64_t{0}, kMaxCount);
      if (actual != op.amount) {
        AdjustCell(table.at(op.record), op.gen, op.cell, op.sliding, op.tag,
                   actual - op.amount);
        if (internal::SyncLink* link = sync.load(std::memory_order_acquire)) {
          MarkDirty(link, table.at(op.record), op.record, op.gen);
        }
      }
      break;
    }
  }
  if (commit.wallet_micros >= 0 &&
      commit.wallet_micros != slot->wallet_micros) {
    if (SubjectRecord* rec = WalletOf(table, *slot)) {
      const int64_t extra = commit.wallet_micros - slot->wallet_micros;
      if (extra < 0) {
        MoveWallet(rec->wallet_micros, -extra);
      } else {
        DrainWallet(rec->wallet_micros, extra);  // never below zero
      }
    }
  }
  reservations.EndSettle(slot, commit.reservation.generation,
                         internal::SlotOutcome::kApplied);
  return CommitResult::kApplied;
}

absl::Status Enforcer::Impl::InstallCatalog(
    std::shared_ptr<const Catalog> catalog) {
  // Under admin_mu.
  const CompiledCatalog* current = compiled.load(std::memory_order_relaxed);
  std::array<std::array<bool, kCellsPerSubject>, kNumScopes> reassigned{};
  auto next = internal::Compile(
      std::move(catalog),
      current != nullptr ? current->layout : internal::CellLayout{}, &meters,
      &plans, &reassigned);
  if (!next.ok()) return next.status();
  if (current != nullptr) {
    // Every registered account's plan must still exist.
    absl::Status missing;
    table.ForEachLive([&](SubjectRecord& rec) {
      const uint64_t shape = rec.shape.load(std::memory_order_relaxed);
      if (static_cast<Scope>(shape & 0xff) != Scope::kAccount) return;
      const int plan = MetaPlan(rec.meta.load(std::memory_order_relaxed));
      if (plan < 0 || !MetaRegistered(rec.meta.load(std::memory_order_relaxed)))
        return;
      if (static_cast<size_t>(plan) >= (*next)->plans.size() ||
          (*next)->plans[plan] == nullptr) {
        if (missing.ok()) {
          missing = absl::FailedPreconditionError(fmt::format(
              "catalog: plan \"{}\" is in use by registered accounts but "
              "missing from the new catalog",
              plans.names()[plan]));
        }
      }
    });
    if (!missing.ok()) return missing;
    // Cells that now mean another counter start from zero.
    table.ForEachLive([&](SubjectRecord& rec) {
      const auto scope =
          static_cast<int>(rec.shape.load(std::memory_order_relaxed) & 0xff);
      const uint32_t gen =
          SubjectRecord::Generation(rec.ctrl.load(std::memory_order_relaxed));
      for (int i = 0; i < kCellsPerSubject; ++i) {
        if (reassigned[scope][i]) {
          rec.cells[i].store(Cell::Pack(gen, 0, 0), std::memory_order_relaxed);
        }
      }
    });
  }
  // Release: a check that loads the new pointer sees it fully built.
  compiled.store(next->get(), std::memory_order_release);
  compilations.push_back(std::move(*next));
  return absl::OkStatus();
}

bool Enforcer::Impl::Reclaimable(SubjectRecord& rec, const CompiledCatalog& cc,
                                 int64_t now_ms) {
  // A record the sync component has not read since it changed stays.
  if (rec.ctrl.load(std::memory_order_seq_cst) & internal::kCtrlSyncDirty) {
    return false;
  }
  const uint64_t meta = rec.meta.load(std::memory_order_relaxed);
  if (MetaRegistered(meta) ||
      rec.wallet_micros.load(std::memory_order_relaxed) != 0) {
    return false;
  }
  const int64_t idle_ms =
      now_ms - int64_t{rec.last_used_s.load(std::memory_order_relaxed)} * 1000;
  if (idle_ms < options.idle_subject_ttl_ms) return false;
  const uint64_t shape = rec.shape.load(std::memory_order_relaxed);
  const auto scope = static_cast<Scope>(shape & 0xff);
  const auto& cells = cc.layout.scope(scope);
  // The account whose anchor defines billing windows for this subject.
  SubjectRecord* account = nullptr;
  if (scope == Scope::kAccount) {
    account = &rec;
  } else {
    Scope s;
    std::string account_id, sub;
    CounterTable::ReadKey(rec, &s, &account_id, &sub);
    const SubjectRef ref =
        table.Find(Scope::kAccount, account_id, {},
                   table.Hash(Scope::kAccount, account_id, {}));
    account = ref.rec;
  }
  for (int i = 0; i < kCellsPerSubject; ++i) {
    const uint64_t word = rec.cells[i].load(std::memory_order_relaxed);
    if (Cell::Count(word) == 0) continue;
    if (!cells[i].used) continue;  // a counter no plan has any more
    const bool billing = cells[i].window == WindowUnit::kBillingPeriod ||
                         cells[i].window == WindowUnit::kAnnual;
    if (billing && account == nullptr) return false;  // cannot tell: keep
    CompiledLimit probe;
    probe.window = cells[i].window;
    probe.window_count = cells[i].window_count;
    probe.window_ms = WindowLengthMs(cells[i].window, cells[i].window_count);
    // Fixed windows ignore the record; billing ones read the account's.
    const Window w = CurrentWindow(probe, billing ? *account : rec, now_ms);
    const uint32_t prev_tag = (w.tag - 1) & Cell::kTagMask;
    if (Cell::Tag(word) == w.tag) return false;
    if (cells[i].mode == WindowMode::kSliding && Cell::Tag(word) == prev_tag) {
      return false;
    }
  }
  return true;
}

Enforcer::Enforcer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Enforcer::~Enforcer() = default;

absl::StatusOr<std::unique_ptr<Enforcer>> Enforcer::Create(
    std::shared_ptr<const Catalog> catalog, EnforcerOptions options) {
  if (catalog == nullptr) {
    return absl::InvalidArgumentError("Enforcer::Create: catalog is null");
  }
  if (options.max_subjects == 0 || options.max_subjects > (size_t{1} << 30)) {
    return absl::InvalidArgumentError(
        "EnforcerOptions.max_subjects: must be in [1, 2^30]");
  }
  if (options.max_reservations == 0 ||
      options.max_reservations > (size_t{1} << 28)) {
    return absl::InvalidArgumentError(
        "EnforcerOptions.max_reservations: must be in [1, 2^28]");
  }
  if (options.reservation_ttl_ms <= 0 || options.idle_subject_ttl_ms <= 0) {
    return absl::InvalidArgumentError(
        "EnforcerOptions: reservation_ttl_ms and idle_subject_ttl_ms must be "
        "positive");
  }
  auto impl = std::make_unique<Impl>(options);
  {
    std::lock_guard<std::mutex> lock(impl->admin_mu);
    if (absl::Status s = impl->InstallCatalog(std::move(catalog)); !s.ok()) {
      return s;
    }
  }
  return std::unique_ptr<Enforcer>(new Enforcer(std::move(impl)));
}

Decision Enforcer::Check(const CheckRequest& request) {
  return impl_->Decide(request, /*charge=*/true);
}

Decision Enforcer::Peek(const CheckRequest& request) const {
  return impl_->Decide(request, /*charge=*/false);
}

CommitResult Enforcer::Commit(const CommitRequest& commit) {
  return impl_->Settle(commit);
}

absl::Status Enforcer::UpsertAccount(const AccountUpdate& update) {
  std::lock_guard<std::mutex> lock(impl_->admin_mu);
  const CompiledCatalog& cc = *impl_->compiled.load(std::memory_order_relaxed);
  auto find_plan = [&](const std::string& id) {
    const int plan = impl_->plans.Find(id);
    return plan >= 0 && static_cast<size_t>(plan) < cc.plans.size() &&
                   cc.plans[plan] != nullptr
               ? plan
               : -1;
  };
  const int plan = find_plan(update.plan_id);
  if (plan < 0) {
    return absl::InvalidArgumentError(
        fmt::format("account \"{}\": unknown plan \"{}\"", update.account_id,
                    update.plan_id));
  }
  const int scheduled = update.scheduled_plan_id.empty()
                            ? -1
                            : find_plan(update.scheduled_plan_id);
  if (!update.scheduled_plan_id.empty() && scheduled < 0) {
    return absl::InvalidArgumentError(
        fmt::format("account \"{}\": unknown scheduled plan \"{}\"",
                    update.account_id, update.scheduled_plan_id));
  }
  if (update.account_id.empty()) {
    return absl::InvalidArgumentError("account_id: must not be empty");
  }
  auto profile = std::make_unique<AccountProfile>();
  for (size_t i = 0; i < update.overrides.size(); ++i) {
    const LimitOverride& o = update.overrides[i];
    auto where = [&](std::string_view field) {
      return fmt::format("account \"{}\": overrides[{}].{}", update.account_id,
                         i, field);
    };
    const CompiledLimit* target = nullptr;
    for (const int p : {plan, scheduled}) {
      if (p < 0 || target != nullptr) continue;
      for (const CompiledLimit& l : cc.plans[p]->limits) {
        if (l.source->id == o.limit_id) target = &l;
      }
    }
    if (target == nullptr) {
      return absl::InvalidArgumentError(
          fmt::format("{}: no limit \"{}\" in plan \"{}\"", where("limit_id"),
                      o.limit_id, update.plan_id));
    }
    if (!o.user_id.empty() && target->scope != Scope::kUser) {
      return absl::InvalidArgumentError(
          fmt::format("{}: limit \"{}\" is not a user-scope limit",
                      where("user_id"), o.limit_id));
    }
    if (!o.unlimited && (o.limit < 0 || o.limit > kMaxCount)) {
      return absl::InvalidArgumentError(
          fmt::format("{}: must be in [0, {}]", where("limit"), kMaxCount));
    }
    if (o.grace > 1) {
      return absl::InvalidArgumentError(
          fmt::format("{}: must be in [0, 1]", where("grace")));
    }
    Limit numbers = *target->source;
    numbers.unlimited = false;  // a number replaces a plan's "unlimited"
    numbers.limit = o.limit;
    if (o.grace >= 0) numbers.grace = o.grace;
    internal::ResolvedOverride resolved{o.limit_id, o.user_id, {}};
    resolved.caps =
        o.unlimited
            ? Caps{true, kMaxCount, kMaxCount, kMaxCount}
            : Caps{false, o.limit, numbers.hard(),
                   internal::NudgeThreshold(numbers.soft_nudge, o.limit)};
    profile->overrides.push_back(std::move(resolved));
  }
  const int64_t now = impl_->Now(0);
  auto ref = impl_->table.FindOrInsert(
      Scope::kAccount, update.account_id, {},
      impl_->table.Hash(Scope::kAccount, update.account_id, {}), now);
  if (!ref.ok()) {
    return absl::Status(ref.status().code(),
                        fmt::format("account \"{}\": {}", update.account_id,
                                    std::string(ref.status().message())));
  }
  SubjectRecord& rec = *ref->rec;
  if (rec.anchor_ms.load(std::memory_order_relaxed) != update.anchor_ms) {
    rec.anchor_ms.store(update.anchor_ms, std::memory_order_seq_cst);
    rec.period_cache[0].store(0, std::memory_order_seq_cst);
    rec.period_cache[1].store(0, std::memory_order_seq_cst);
  }
  profile->default_model = update.default_model;
  profile->past_due_deadline_ms = update.past_due_deadline_ms;
  if (!update.scheduled_plan_id.empty()) {
    profile->scheduled_plan = scheduled;
    profile->scheduled_at_ms =
        internal::PeriodContaining(update.anchor_ms, 1, now).end_ms;
  }
  const AccountProfile* old =
      rec.profile.exchange(profile.release(), std::memory_order_acq_rel);
  if (old != nullptr) {
    impl_->retired_profiles.push_back({old, std::chrono::steady_clock::now()});
  }
  // Release: checks that acquire meta see the anchor and profile above.
  // The high half (sync readiness) is the sync component's: keep it.
  uint64_t meta = rec.meta.load(std::memory_order_relaxed);
  while (!rec.meta.compare_exchange_weak(
      meta, (meta & ~uint64_t{0xffffffff}) | PackMeta(plan, update.state, true),
      std::memory_order_release, std::memory_order_relaxed)) {
  }
  if (internal::SyncLink* link = impl_->sync.load(std::memory_order_acquire)) {
    // Prime: the sync component fetches the account's cluster usage now,
    // before its first check.
    Impl::MarkDirty(link, rec, ref->index, ref->gen);
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Enforcer::UpdateWallet(const WalletUpdate& update) {
  const SubjectRef ref = impl_->table.Find(
      Scope::kAccount, update.account_id, {},
      impl_->table.Hash(Scope::kAccount, update.account_id, {}));
  if (!ref) {
    return absl::NotFoundError(
        fmt::format("account \"{}\": not found", update.account_id));
  }
  if (!MoveWallet(ref.rec->wallet_micros, update.credit_micros)) {
    return absl::FailedPreconditionError(fmt::format(
        "account \"{}\": a credit of {} would take the wallet below zero",
        update.account_id, update.credit_micros));
  }
  return ref.rec->wallet_micros.load(std::memory_order_relaxed);
}

Decision Enforcer::CheckCreate(std::string_view account_id,
                               std::string_view gauge, int64_t current) const {
  const int64_t now = impl_->Now(0);
  const CompiledCatalog& cc = *impl_->compiled.load(std::memory_order_acquire);
  const SubjectRef ref =
      impl_->table.Find(Scope::kAccount, account_id, {},
                        impl_->table.Hash(Scope::kAccount, account_id, {}));
  if (!ref) return DenyWith(DenyKind::kUnknownAccount, 403);
  const int plan_id =
      EffectivePlan(ref.rec->meta.load(std::memory_order_acquire),
                    ref.rec->profile.load(std::memory_order_acquire), now);
  if (plan_id < 0 || static_cast<size_t>(plan_id) >= cc.plans.size() ||
      cc.plans[plan_id] == nullptr) {
    return DenyWith(DenyKind::kUnknownPlan, 403);
  }
  const CompiledPlan& plan = *cc.plans[plan_id];
  for (const Gauge& g : plan.source->gauges) {
    if (g.name != gauge) continue;
    Decision d;
    d.used = current;
    d.limit_value = g.unlimited ? 0 : g.cap;
    d.hard_limit = d.limit_value;
    if (!g.unlimited && current + 1 > g.cap) {
      d.status = 402;
      d.deny = DenyKind::kResourceLimit;
      d.reason = DenyKindReason(DenyKind::kResourceLimit);
      d.upgrade_plan = plan.next_plan;
      d.remaining = 0;
    } else {
      d.remaining = g.unlimited ? kMaxCount : g.cap - current - 1;
    }
    return d;
  }
  return Decision{};  // a gauge the plan does not cap
}

absl::Status Enforcer::ReloadCatalog(std::shared_ptr<const Catalog> catalog) {
  if (catalog == nullptr) {
    return absl::InvalidArgumentError("ReloadCatalog: catalog is null");
  }
  std::lock_guard<std::mutex> lock(impl_->admin_mu);
  return impl_->InstallCatalog(std::move(catalog));
}

absl::StatusOr<AccountUsage> Enforcer::Usage(std::string_view account_id,
                                             int64_t now_ms) const {
  const int64_t now = impl_->Now(now_ms);
  const CompiledCatalog& cc = *impl_->compiled.load(std::memory_order_acquire);
  const SubjectRef ref =
      impl_->table.Find(Scope::kAccount, account_id, {},
                        impl_->table.Hash(Scope::kAccount, account_id, {}));
  if (!ref) {
    return absl::NotFoundError(
        fmt::format("account \"{}\": not found", account_id));
  }
  const uint64_t meta = ref.rec->meta.load(std::memory_order_acquire);
  const AccountProfile* profile =
      ref.rec->profile.load(std::memory_order_acquire);
  const int plan_id = EffectivePlan(meta, profile, now);
  if (plan_id < 0 || static_cast<size_t>(plan_id) >= cc.plans.size() ||
      cc.plans[plan_id] == nullptr) {
    return absl::FailedPreconditionError(fmt::format(
        "account \"{}\": its plan is not in the catalog", account_id));
  }
  const CompiledPlan& plan = *cc.plans[plan_id];
  AccountUsage usage;
  usage.account_id = std::string(account_id);
  usage.plan_id = plan.source->id;
  usage.state = MetaState(meta);
  const Window period = PeriodWindow(*ref.rec, 0, now);
  usage.period_start_ms = period.start_ms;
  usage.period_end_ms = period.end_ms;
  usage.wallet_micros = ref.rec->wallet_micros.load(std::memory_order_relaxed);
  if (profile != nullptr && profile->scheduled_plan >= 0 &&
      profile->scheduled_plan != plan_id &&
      static_cast<size_t>(profile->scheduled_plan) < cc.plans.size() &&
      cc.plans[profile->scheduled_plan] != nullptr) {
    usage.scheduled_plan_id = cc.plans[profile->scheduled_plan]->source->id;
  }
  for (const CompiledLimit& limit : plan.limits) {
    if (limit.scope != Scope::kAccount) continue;
    const Window w = CurrentWindow(limit, *ref.rec, now);
    const bool sliding = limit.mode == WindowMode::kSliding;
    const CellView view = ViewOf(
        ref.rec->cells[limit.cell].load(std::memory_order_relaxed),
        sliding ? ref.rec->cells[limit.cell + 1].load(std::memory_order_relaxed)
                : 0,
        w.tag, sliding);
    LimitUsage lu;
    lu.limit_id = limit.source->id;
    lu.scope = limit.scope;
    lu.meter = limit.source->meter;
    lu.window = limit.window;
    lu.window_count = limit.window_count;
    const Caps caps = CapsFor(limit, profile, {});
    lu.unlimited = caps.unlimited;
    lu.limit = caps.unlimited ? 0 : caps.limit;
    lu.hard_limit = caps.unlimited ? 0 : caps.hard;
    lu.used = Estimate(view, w, now);
    lu.window_start_ms = w.start_ms;
    lu.window_end_ms = w.end_ms;
    lu.state = caps.unlimited             ? "unlimited"
               : lu.used >= caps.hard     ? "exhausted"
               : lu.used > caps.limit     ? "grace"
               : lu.used >= caps.nudge_at ? "soft_nudge"
                                          : "ok";
    usage.limits.push_back(std::move(lu));
  }
  usage.gauges = plan.source->gauges;
  return usage;
}

void Enforcer::Maintain(int64_t now_ms) {
  const int64_t now = impl_->Now(now_ms);
  DeliverEvents(now);
  ReservationTable& res = impl_->reservations;
  for (uint32_t i = 0; i < res.capacity(); ++i) {
    uint32_t gen = 0;
    if (!res.BeginExpire(i, now, &gen)) continue;
    impl_->Refund(res.at(i));
    res.EndSettle(&res.at(i), gen, internal::SlotOutcome::kExpired);
    impl_->reservations_expired.fetch_add(1, std::memory_order_relaxed);
  }
  std::lock_guard<std::mutex> lock(impl_->admin_mu);
  const auto real_now = std::chrono::steady_clock::now();
  std::erase_if(impl_->retired_profiles, [&](const Impl::RetiredProfile& r) {
    if (real_now - r.at < Impl::kRetireAfter) return false;
    delete r.profile;
    return true;
  });
  const CompiledCatalog& cc = *impl_->compiled.load(std::memory_order_relaxed);
  const size_t reclaimed = impl_->table.Reclaim(
      [&](SubjectRecord& rec) { return impl_->Reclaimable(rec, cc, now); }, now,
      impl_->options.idle_subject_ttl_ms);
  impl_->subjects_reclaimed.fetch_add(reclaimed, std::memory_order_relaxed);
}

size_t Enforcer::DeliverEvents(int64_t now_ms) {
  EventSink* sink = impl_->options.event_sink;
  if (sink == nullptr) return 0;
  const int64_t now = impl_->Now(now_ms);
  std::lock_guard<std::mutex> lock(impl_->events_mu);
  const CompiledCatalog& cc = *impl_->compiled.load(std::memory_order_acquire);
  size_t delivered = 0;
  internal::RawEvent e;
  while (impl_->events.Pop(&e)) {
    if (e.plan < 0 || static_cast<size_t>(e.plan) >= cc.plans.size() ||
        cc.plans[e.plan] == nullptr ||
        e.limit_index >= cc.plans[e.plan]->limits.size()) {
      continue;  // the plan changed since
    }
    const CompiledLimit& limit = cc.plans[e.plan]->limits[e.limit_index];
    const SubjectRecord& rec = impl_->table.at(e.record);
    const uint32_t ctrl = rec.ctrl.load(std::memory_order_acquire);
    ThresholdEvent event;
    std::string sub;
    CounterTable::ReadKey(rec, &event.scope, &event.account_id, &sub);
    if (rec.ctrl.load(std::memory_order_acquire) != ctrl ||
        static_cast<uint8_t>(SubjectRecord::Generation(ctrl)) != e.gen) {
      continue;  // the subject was reclaimed since
    }
    event.kind = static_cast<ThresholdKind>(e.kind);
    event.subject_id = std::move(sub);
    event.limit_id = limit.source->id;
    event.window_start_ms = e.window_start_ms;
    event.window_end_ms = e.window_end_ms;
    event.used = e.used;
    event.limit = e.limit;
    std::string key =
        fmt::format("{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}", e.kind,
                    static_cast<int>(event.scope), event.account_id,
                    event.subject_id, event.limit_id, event.window_start_ms);
    if (!impl_->fired.emplace(std::move(key), e.window_end_ms).second) {
      continue;  // already told
    }
    sink->OnThreshold(event);
    ++delivered;
  }
  absl::erase_if(impl_->fired,
                 [&](const auto& entry) { return entry.second < now; });
  impl_->events_delivered.fetch_add(delivered, std::memory_order_relaxed);
  return delivered;
}

int Enforcer::MeterId(std::string_view meter) const {
  std::lock_guard<std::mutex> lock(impl_->admin_mu);
  return impl_->meters.Find(meter);
}

std::shared_ptr<const Catalog> Enforcer::catalog() const {
  return impl_->compiled.load(std::memory_order_acquire)->catalog;
}

EnforcerStats Enforcer::Stats() const {
  EnforcerStats s;
  s.subjects = impl_->table.size();
  s.subject_capacity = impl_->table.max_subjects();
  s.reservations_pending = impl_->reservations.CountPending();
  s.reservations_expired =
      impl_->reservations_expired.load(std::memory_order_relaxed);
  s.subjects_reclaimed =
      impl_->subjects_reclaimed.load(std::memory_order_relaxed);
  s.capacity_denials = impl_->capacity_denials.load(std::memory_order_relaxed);
  s.unreserved_admits =
      impl_->unreserved_admits.load(std::memory_order_relaxed);
  s.events_delivered = impl_->events_delivered.load(std::memory_order_relaxed);
  s.events_dropped = impl_->events_dropped.load(std::memory_order_relaxed);
  return s;
}

// ---------------------------------------------------------------------------
// The sync component's access (sync_link.h).

namespace internal {

absl::StatusOr<SyncLink*> SyncAccess::Attach(Enforcer& e,
                                             std::unique_ptr<SyncLink> link) {
  std::lock_guard<std::mutex> lock(e.impl_->admin_mu);
  if (e.impl_->sync.load(std::memory_order_relaxed) != nullptr) {
    return absl::FailedPreconditionError(
        "RedisSync: the enforcer already has a sync component attached");
  }
  SyncLink* raw = link.get();
  e.impl_->links.push_back(std::move(link));
  // Release: checks that acquire the pointer see the link's settings.
  e.impl_->sync.store(raw, std::memory_order_release);
  return raw;
}

void SyncAccess::Detach(Enforcer& e) {
  std::lock_guard<std::mutex> lock(e.impl_->admin_mu);
  e.impl_->sync.store(nullptr, std::memory_order_release);
}

CounterTable& SyncAccess::Table(Enforcer& e) { return e.impl_->table; }

Clock& SyncAccess::ClockOf(Enforcer& e) { return *e.impl_->clock; }

bool SyncAccess::Describe(Enforcer& e, uint32_t index, uint8_t gen,
                          int64_t now_ms, SyncRecordInfo* out) {
  Enforcer::Impl& impl = *e.impl_;
  SubjectRecord& rec = impl.table.at(index);
  const uint32_t ctrl = rec.ctrl.load(std::memory_order_acquire);
  if (SubjectRecord::State(ctrl) != RecordState::kLive ||
      static_cast<uint8_t>(SubjectRecord::Generation(ctrl)) != gen) {
    return false;
  }
  CounterTable::ReadKey(rec, &out->scope, &out->account, &out->sub);
  if (((rec.ctrl.load(std::memory_order_acquire) ^ ctrl) & ~kCtrlSyncDirty) !=
      0) {
    return false;  // reused while we read the key
  }
  const CompiledCatalog& cc = *impl.compiled.load(std::memory_order_acquire);
  SubjectRecord* account = &rec;
  if (out->scope != Scope::kAccount) {
    account = impl.table
                  .Find(Scope::kAccount, out->account, {},
                        impl.table.Hash(Scope::kAccount, out->account, {}))
                  .rec;
  }
  const CompiledPlan* plan = nullptr;
  int plan_id = -1;
  const AccountProfile* profile = nullptr;
  if (account != nullptr) {
    profile = account->profile.load(std::memory_order_acquire);
    plan_id = EffectivePlan(account->meta.load(std::memory_order_acquire),
                            profile, now_ms);
    if (plan_id >= 0 && static_cast<size_t>(plan_id) < cc.plans.size()) {
      plan = cc.plans[plan_id].get();
    }
  }
  out->cells.clear();
  const auto& uses = cc.layout.scope(out->scope);
  for (int i = 0; i < kCellsPerSubject; ++i) {
    const CellUse& use = uses[i];
    if (!use.used || use.second_half) {
      continue;
    }
    const bool billing = use.window == WindowUnit::kBillingPeriod ||
                         use.window == WindowUnit::kAnnual;
    if (billing && account == nullptr) continue;  // no anchor to go by
    SyncCellInfo info;
    info.cell = static_cast<uint8_t>(i);
    info.meter = use.meter;
    info.meter_name = use.meter < cc.meter_names.size()
                          ? cc.meter_names[use.meter]
                          : fmt::format("meter{}", use.meter);
    info.window = use.window;
    info.window_count = use.window_count;
    info.mode = use.mode;
    CompiledLimit probe;
    probe.window = use.window;
    probe.window_count = use.window_count;
    probe.window_ms = WindowLengthMs(use.window, use.window_count);
    const Window w = CurrentWindow(probe, billing ? *account : rec, now_ms);
    info.start_ms = w.start_ms;
    info.end_ms = w.end_ms;
    info.tag = w.tag;
    info.plan = plan_id;
    if (plan != nullptr) {
      for (size_t l = 0; l < plan->limits.size(); ++l) {
        const CompiledLimit& limit = plan->limits[l];
        if (limit.scope != out->scope || limit.cell != i) continue;
        const Caps caps = CapsFor(
            limit, profile,
            out->scope == Scope::kUser ? std::string_view(out->sub) : "");
        info.limit_index = static_cast<int>(l);
        info.unlimited = caps.unlimited || limit.shadow;
        info.limit = caps.limit;
        info.hard = caps.hard;
        info.nudge_at = caps.nudge_at;
        info.leasable = limit.leasable && !caps.unlimited;
        info.down_policy = limit.down_policy;
        break;
      }
    }
    out->cells.push_back(std::move(info));
  }
  return true;
}

bool SyncAccess::WindowOfTag(Enforcer& e, uint32_t index,
                             const SyncCellInfo& info, uint32_t tag,
                             int64_t now_ms, int max_back, int64_t* start_ms,
                             int64_t* end_ms) {
  if (info.tag == tag) {
    *start_ms = info.start_ms;
    *end_ms = info.end_ms;
    return true;
  }
  if (info.window == WindowUnit::kBillingPeriod ||
      info.window == WindowUnit::kAnnual) {
    // Billing periods: step back period by period on the account's anchor.
    Enforcer::Impl& impl = *e.impl_;
    SubjectRecord& rec = impl.table.at(index);
    Scope scope;
    std::string account, sub;
    CounterTable::ReadKey(rec, &scope, &account, &sub);
    const SubjectRef ref =
        impl.table.Find(Scope::kAccount, account, {},
                        impl.table.Hash(Scope::kAccount, account, {}));
    if (!ref) return false;
    const int64_t anchor = ref.rec->anchor_ms.load(std::memory_order_seq_cst);
    const int months = info.window == WindowUnit::kBillingPeriod ? 1 : 12;
    int64_t start = info.start_ms;
    for (int back = 0; back < max_back; ++back) {
      const WindowInstance w = PeriodContaining(anchor, months, start - 1);
      if (TagOf(FloorDiv(w.start_ms, kDayMs)) == tag) {
        *start_ms = w.start_ms;
        *end_ms = w.end_ms;
        return true;
      }
      start = w.start_ms;
    }
    return false;
  }
  (void)now_ms;
  const int64_t len = info.end_ms - info.start_ms;
  const int64_t cur = FloorDiv(info.start_ms, len);
  const int64_t back = (info.tag - tag) & Cell::kTagMask;
  if (back == 0 || back > max_back) return false;
  *start_ms = (cur - back) * len;
  *end_ms = *start_ms + len;
  return true;
}

void SyncAccess::SetReady(Enforcer& e, uint32_t index, uint8_t gen,
                          uint8_t cell, uint32_t tag, bool ready) {
  SubjectRecord& rec = e.impl_->table.at(index);
  const uint32_t ctrl = rec.ctrl.load(std::memory_order_acquire);
  if (SubjectRecord::State(ctrl) != RecordState::kLive ||
      static_cast<uint8_t>(SubjectRecord::Generation(ctrl)) != gen) {
    return;
  }
  const int shift = kReadyShift + 4 * cell;
  const uint64_t nibble = ready ? ReadyNibble(tag) : 0;
  uint64_t meta = rec.meta.load(std::memory_order_relaxed);
  // Unchanged: no write, so the line the check reads stays in its cache.
  if (((meta >> shift) & 15) == nibble) return;
  // Release: a check that sees the nibble sees the cell bake before it.
  while (!rec.meta.compare_exchange_weak(
      meta, (meta & ~(uint64_t{15} << shift)) | (nibble << shift),
      std::memory_order_release, std::memory_order_relaxed)) {
  }
}

void SyncAccess::PushEvent(Enforcer& e, const RawEvent& event) {
  if (e.impl_->options.event_sink == nullptr) return;
  if (!e.impl_->events.Push(event)) {
    e.impl_->events_dropped.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace internal
}  // namespace plangate
