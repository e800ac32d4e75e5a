// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// charge_step.h: the evaluate-then-charge core that Check (decide.cc) and
// Extend (extend.cc) share, in two phases:
//   1. Evaluate: read every applicable limit's cell (relaxed loads) and
//      apply the decision rule. A denial stops here having written nothing.
//   2. Apply: charge each cell with a CAS that re-checks the limit against
//      the value it replaces. If a concurrent check used up the room in
//      between, the cells already charged are given back and the request is
//      denied, so no limit is ever passed and a denied request counts
//      against none (all-or-nothing). The transient over-count seen by a
//      racing check can only make it deny, never admit.
// The memory orders of every cell write are stated in cell_ops.h.
//
// Included only by the two files that instantiate the template.
//
// Thread safety: as Enforcer::Check.

#ifndef PLANGATE_CORE_CHARGE_STEP_H_
#define PLANGATE_CORE_CHARGE_STEP_H_

#include <algorithm>
#include <span>
#include <string_view>

#include "absl/base/optimization.h"
#include "core/cell_ops.h"
#include "core/enforcer_impl.h"
#include "core/window.h"
#include "plangate/enforcer.h"

namespace plangate {
namespace internal {

// A per-tool limit's amount: the sum of its tools' meters in `amounts`, or
// -1 when none of them is there (the request uses none of its tools).
inline int64_t ToolAmount(std::span<const MeterAmount> amounts,
                          const CompiledLimit& limit) {
  int64_t sum = -1;
  for (const MeterAmount& m : amounts) {
    for (const uint16_t t : limit.tool_meters) {
      if (m.meter == t)
        sum = std::min(kMaxCount, std::max<int64_t>(sum, 0) + m.amount);
    }
  }
  return sum;
}

inline bool SameView(const CellView& a, const CellView& b) {
  return a.current == b.current && a.previous == b.previous;
}

// Fills the deciding-limit fields of *d. `caps` are the caps the limit was
// decided with (hard: the bound the check enforced, a lease ceiling too).
inline void Describe(const CompiledLimit& limit, const Caps& caps,
                     const Window& w, int64_t used, int64_t amount,
                     Decision* d) {
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

inline void DescribeDenial(const CompiledLimit& limit, const Caps& caps,
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
  if (limit.concurrent) {
    // Room comes back when a request in flight commits: no window says
    // when. A second is what clients of such limits expect.
    d->retry_after_ms = 1000;
    return;
  }
  const int64_t at = RetryAt(limit.mode, caps.hard, v, w, amount);
  d->retry_after_ms = at > now_ms ? at - now_ms : 0;
}

// Turns a limit's denial into the transient one of a leased counter: the
// cluster's cap has room, this instance's lease does not (429
// quota_syncing; the caller asks the sync for more).
inline void AsLeaseShort(Decision* d) {
  d->status = 429;
  d->deny = DenyKind::kSyncing;
  d->reason = DenyKindReason(DenyKind::kSyncing);
  d->message = {};
  d->retry_after_ms = 1000;
  d->upgrade_plan = {};
}

// One applicable limit, between evaluation and charging. Trivially
// constructible: an array of them costs nothing until filled, and each is
// filled field by field.
struct PendingCharge {
  const CompiledLimit* limit;
  SubjectRecord* rec;
  uint32_t index;  // the record's (for the sync and the reservation)
  uint8_t gen;
  bool enforce;  // a cap that denies (not unlimited, not shadow)
  bool leased;   // bounded by the sync's ceiling: re-checked after the charge
  Window window;
  CellView view;    // this instance's usage the evaluation decided on
  CellView remote;  // and the other instances' (sync_link.h)
  uint64_t word;    // the cell word it read (the charge's CAS expects it)
  int64_t amount;
  int64_t used;  // the estimate before this request
  int64_t hard;  // the bound enforced: the cap with grace, or a ceiling

  CellTarget Target() const {
    return {rec,
            index,
            gen,
            limit->cell,
            limit->mode == WindowMode::kSliding,
            limit->synced};
  }
};

// Whether room a (what is left of hard_a after the request) is less than
// room b, both as shares of their caps: (ha - aa) / ha < (hb - ab) / hb,
// compared as products (counts < 2^43, so the products fit 128 bits) to
// spare a division per limit.
inline bool TighterThan(int64_t left_a, int64_t hard_a, int64_t left_b,
                        int64_t hard_b) {
  return static_cast<Int128>(left_a) * std::max<int64_t>(hard_b, 1) <
         static_cast<Int128>(left_b) * std::max<int64_t>(hard_a, 1);
}

}  // namespace internal

template <typename AmountOf>
Enforcer::Impl::ChargeOutcome Enforcer::Impl::EvaluateAndCharge(
    const CompiledPlan& plan, int plan_id, SubjectRecord& account,
    const AccountProfile* profile, std::string_view user_id,
    const SubjectRef* subjects, int64_t now, internal::SyncLink* link,
    bool charge, int64_t debit, AmountOf amount_of,
    internal::PendingCharge* pending, int* num_charged, Decision* out) {
  using internal::Cell;
  using internal::CellView;
  using internal::Charge;
  using internal::DenyWith;
  using internal::Describe;
  using internal::DescribeDenial;
  using internal::PendingCharge;
  using internal::SameView;
  Decision& decision = *out;
  // Phase 1: evaluate every applicable limit; stop at the first denial.
  const bool overrides = profile != nullptr && !profile->overrides.empty();
  int num_pending = 0;
  int tightest = -1;  // the admitted limit with least room left decides
  int64_t tightest_left = 0;
  int64_t tightest_hard = 1;
  bool stale = false;
  for (const CompiledLimit& limit : plan.limits) {
    // A plan of account limits only reads the account's record, which the
    // check always has.
    const SubjectRef& subject = ABSL_PREDICT_TRUE(!plan.uses_narrow_scope)
                                    ? subjects[0]
                                    : subjects[static_cast<int>(limit.scope)];
    if (ABSL_PREDICT_FALSE(plan.uses_narrow_scope) && !subject) continue;
    const int64_t amount = amount_of(limit);
    if (amount < 0) continue;  // the limit does not apply
    const Window w = internal::CurrentWindow(limit, account, now);
    const bool sliding = limit.mode == WindowMode::kSliding;
    const uint64_t word =
        subject.rec->cells[limit.cell].load(std::memory_order_relaxed);
    if (ABSL_PREDICT_FALSE(Cell::Gen(word) != subject.gen)) {
      stale = true;
      break;
    }
    const uint64_t prev_word =
        sliding
            ? subject.rec->cells[limit.cell + 1].load(std::memory_order_relaxed)
            : 0;
    const CellView view = internal::ViewOf(word, prev_word, w.tag, sliding);
    // A synced counter's usage elsewhere: the sync's remote words.
    CellView remote{0, 0};
    int64_t used;
    if (ABSL_PREDICT_FALSE(link != nullptr) && limit.synced) {
      remote = link->RemoteView(subject.index, limit.cell, subject.gen, w.tag,
                                sliding);
      used = internal::Estimate(internal::Plus(view, remote), w, now);
    } else {
      used = internal::Estimate(view, w, now);
    }
    const int64_t after = used + amount;
    Caps caps = ABSL_PREDICT_FALSE(overrides)
                    ? internal::OverrideCaps(limit, *profile, user_id)
                    : internal::PlanCaps(limit);
    bool cold = false;  // a denial here is transient: 429 quota_syncing
    bool leased = false;
    if (ABSL_PREDICT_FALSE(link != nullptr) && limit.leasable && link->leases &&
        !caps.unlimited) {
      if (link->Ready(subject.index, limit.cell, subject.gen, w.tag)) {
        // This instance may take the current window's count up to its
        // ceiling (lease). In a sliding window that bounds the estimate at
        // the ceiling plus the previous window's weighted share now.
        leased = true;
        const int64_t ceiling = link->Ceiling(subject.index, limit.cell);
        const int64_t bound = ceiling + (used - view.current);
        if (ceiling >= 0 && bound < caps.hard && after <= caps.hard) {
          caps.hard = bound;
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
      if (ABSL_PREDICT_FALSE(after > caps.hard)) {
        if (!limit.shadow) {
          DescribeDenial(limit, caps, w, internal::Plus(view, remote), used,
                         amount, now, &decision);
          decision.upgrade_plan = plan.next_plan;
          if (cold) {
            // Tell the sync component this counter wants (more) lease.
            MarkDirty(link, subject.index, subject.gen);
            internal::AsLeaseShort(&decision);
          }
          return ChargeOutcome::kDecided;
        }
        decision.warnings |= kWarnShadowDenied;
        decision.shadow = true;
      } else if (ABSL_PREDICT_FALSE(limit.concurrent)) {
        // In flight, not a quota: no warnings, and it never describes an
        // admitted decision (it has no window to report).
      } else if (after > caps.limit) {
        decision.warnings |= kWarnGrace;
      } else if (after >= caps.nudge_at) {
        decision.warnings |= kWarnSoftNudge;
      }
      if (ABSL_PREDICT_TRUE(!limit.concurrent) &&
          (tightest < 0 ||
           internal::TighterThan(caps.hard - after, caps.hard, tightest_left,
                                 tightest_hard))) {
        // A denial above returned; here after <= hard, or a shadow limit
        // past it (no room left: it is the tightest).
        tightest = num_pending;
        tightest_left = caps.hard - after;
        tightest_hard = caps.hard;
      }
    }
    PendingCharge& p = pending[num_pending++];
    p.limit = &limit;
    p.rec = subject.rec;
    p.index = subject.index;
    p.gen = subject.gen;
    p.window = w;
    p.view = view;
    p.remote = remote;
    p.word = word;
    p.amount = amount;
    p.used = used;
    p.hard = caps.hard;
    p.enforce = !(caps.unlimited | limit.shadow);
    p.leased = leased;
  }
  if (ABSL_PREDICT_FALSE(stale)) return ChargeOutcome::kStale;
  if (tightest >= 0) {
    const PendingCharge& p = pending[tightest];
    Caps caps = internal::CapsFor(*p.limit, profile, user_id);
    caps.hard = p.hard;
    Describe(*p.limit, caps, p.window, p.used, p.amount, &decision);
  }
  *num_charged = num_pending;
  if (!charge || (num_pending == 0 && debit == 0)) {
    return ChargeOutcome::kDecided;
  }

  // Phase 2: debit the wallet, then charge every cell, re-checking each
  // against what it holds.
  if (debit > 0 && !internal::MoveWallet(account.wallet_micros, -debit)) {
    if (ABSL_PREDICT_FALSE(link != nullptr && link->share_wallets)) {
      // A racing check took the rest of this instance's lease.
      link->NoteWalletShort(subjects[0].index, debit);
      decision = DenyWith(DenyKind::kSyncing, 429);
      decision.retry_after_ms = 100;
      return ChargeOutcome::kDecided;
    }
    decision = DenyWith(DenyKind::kInsufficientCredit, 402);
    decision.used = account.wallet_micros.load(std::memory_order_relaxed);
    return ChargeOutcome::kDecided;
  }
  int charged = 0;
  Charge failure = Charge::kOk;
  for (; charged < num_pending; ++charged) {
    PendingCharge& p = pending[charged];
    CellView seen = p.view;
    bool raced = false;
    failure =
        internal::ChargeCell(p.Target(), p.hard, p.window, now, p.amount,
                             p.enforce, p.word, &seen, link, &raced, p.remote);
    if (ABSL_PREDICT_FALSE(failure != Charge::kOk)) {
      p.view = seen;
      break;
    }
    if (ABSL_PREDICT_FALSE(raced && !SameView(seen, p.view))) {
      // A racing charge came first: this one counts on top of it.
      p.view = seen;
      p.used =
          internal::Estimate(internal::Plus(seen, p.remote), p.window, now);
    }
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
      // The ceiling bounds the current window's count (what the view's
      // `current` holds; for a fixed window, all of the estimate).
      if (ABSL_PREDICT_FALSE(ceiling >= 0 &&
                             p.view.current + p.amount > ceiling)) {
        failure = Charge::kLeaseShrank;
        break;
      }
    }
  }
  if (ABSL_PREDICT_FALSE(failure != Charge::kOk)) {
    for (int k = 0; k < charged; ++k) {
      const PendingCharge& p = pending[k];
      internal::AdjustCell(*p.rec, p.gen, p.limit->cell,
                           p.limit->mode == WindowMode::kSliding, p.window.tag,
                           -p.amount);
    }
    if (debit > 0) internal::MoveWallet(account.wallet_micros, debit);
    if (failure == Charge::kStale) return ChargeOutcome::kStale;
    if (failure == Charge::kLeaseShrank) {
      decision = DenyWith(DenyKind::kSyncing, 429);
      decision.retry_after_ms = 1000;
      return ChargeOutcome::kDecided;
    }
    const PendingCharge& p = pending[charged];
    Caps caps = internal::CapsFor(*p.limit, profile, user_id);
    caps.hard = p.hard;
    decision = Decision{};
    const CellView total = internal::Plus(p.view, p.remote);
    DescribeDenial(*p.limit, caps, p.window, total,
                   internal::Estimate(total, p.window, now), p.amount, now,
                   &decision);
    decision.upgrade_plan = plan.next_plan;
    return ChargeOutcome::kDecided;
  }

  if (options.event_sink != nullptr) {
    for (int k = 0; k < num_pending; ++k) {
      const PendingCharge& p = pending[k];
      // Synced counters cross thresholds cluster-wide: the sync
      // component reports those, once per cluster.
      if (link != nullptr && p.limit->synced) continue;
      if (p.limit->concurrent) continue;  // in flight: no thresholds
      const Caps caps = internal::CapsFor(*p.limit, profile, user_id);
      const int64_t after = p.used + p.amount;
      if (ABSL_PREDICT_FALSE(after >= caps.nudge_at && p.used < caps.limit)) {
        NoteCrossings(plan, plan_id, *p.limit, caps, p.index, p.gen, p.window,
                      p.used, after);
      }
    }
  }

  if (link != nullptr) {
    for (int k = 0; k < num_pending; ++k) {
      if (pending[k].limit->synced) {
        MarkDirty(link, pending[k].index, pending[k].gen);
      }
    }
  }

  // Touch each subject at most once a second, for idle reclamation.
  const auto now_s = static_cast<uint32_t>(now / 1000);
  for (int i = 0; i < (plan.uses_narrow_scope ? kNumScopes : 1); ++i) {
    const SubjectRef& s = subjects[i];
    if (s && s.rec->last_used_s.load(std::memory_order_relaxed) != now_s) {
      s.rec->last_used_s.store(now_s, std::memory_order_relaxed);
    }
  }

  return ChargeOutcome::kCharged;
}

}  // namespace plangate

#endif  // PLANGATE_CORE_CHARGE_STEP_H_
