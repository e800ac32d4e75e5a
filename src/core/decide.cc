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

#include <algorithm>

#include "absl/base/optimization.h"
#include "core/cell_ops.h"
#include "core/enforcer_impl.h"
#include "core/window.h"
#include "plangate/enforcer.h"

namespace plangate {
namespace {

using internal::AccountProfile;
using internal::Caps;
using internal::Cell;
using internal::CellView;
using internal::Charge;
using internal::CompiledCatalog;
using internal::CompiledLimit;
using internal::CompiledPlan;
using internal::CounterTable;
using internal::DenyWith;
using internal::PackMeta;
using internal::PendingCharge;
using internal::ReservationSlot;
using internal::ReservationTable;
using internal::ReservedOp;
using internal::SubjectRecord;
using internal::SubjectRef;
using internal::Window;

bool TrafficMatches(Traffic t, bool byok) {
  return t == Traffic::kAll || (t == Traffic::kByok) == byok;
}

int64_t AmountFor(const CheckRequest& req, uint16_t meter) {
  for (const MeterAmount& m : req.amounts) {
    if (m.meter == meter) return m.amount;
  }
  return meter == 0 ? 1 : 0;  // meter 0 is "requests"
}

bool SameView(const CellView& a, const CellView& b) {
  return a.current == b.current && a.previous == b.previous;
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

// Fills the deciding-limit fields of *d. `caps` are the caps the limit was
// decided with (hard: the bound the check enforced, a lease ceiling too).
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
  if (limit.concurrent) {
    // Room comes back when a request in flight commits: no window says
    // when. A second is what clients of such limits expect.
    d->retry_after_ms = 1000;
    return;
  }
  const int64_t at = internal::RetryAt(limit.mode, caps.hard, v, w, amount);
  d->retry_after_ms = at > now_ms ? at - now_ms : 0;
}

}  // namespace

namespace internal {

// One applicable limit, between evaluation and charging. Trivially
// constructible: an array of them costs nothing until filled, and each is
// filled field by field.
struct PendingCharge {
  const CompiledLimit* limit;
  internal::CellTarget target;
  Window window;
  CellView view;  // what the evaluation decided on
  uint64_t word;  // the cell word it read (the charge's CAS expects it)
  int64_t amount;
  int64_t used;  // the estimate before this request
  int64_t hard;  // the bound enforced: the cap with grace, or a ceiling
  bool enforce;  // a cap that denies (not unlimited, not shadow)
  bool leased;   // bounded by the sync's ceiling: re-checked after the charge
};

}  // namespace internal

SubjectRef Enforcer::Impl::LookupAccount(std::string_view id, int64_t now_ms,
                                         const CompiledCatalog& cc,
                                         bool may_insert, Decision* denial) {
  const internal::KeyProbe key(Scope::kAccount, id, {});
  const uint64_t hash = table.Hash(key);
  SubjectRef ref = table.Find(key, hash);
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

template <typename AmountOf>
Enforcer::Impl::ChargeOutcome Enforcer::Impl::EvaluateAndCharge(
    const CompiledPlan& plan, int plan_id, SubjectRecord& account,
    const AccountProfile* profile, std::string_view user_id,
    const SubjectRef* subjects, int64_t now, internal::SyncLink* link,
    bool charge, int64_t debit, AmountOf amount_of,
    internal::PendingCharge* pending, int* num_charged, Decision* out) {
  Decision& decision = *out;
  // Phase 1: evaluate every applicable limit; stop at the first denial.
  const bool overrides = profile != nullptr && !profile->overrides.empty();
  int num_pending = 0;
  int tightest = -1;  // the admitted limit with least room left decides
  double tightest_room = 2.0;
  bool stale = false;
  for (const CompiledLimit& limit : plan.limits) {
    const SubjectRef& subject = subjects[static_cast<int>(limit.scope)];
    if (!subject) continue;
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
    const int64_t used = internal::Estimate(view, w, now);
    const int64_t after = used + amount;
    Caps caps = ABSL_PREDICT_FALSE(overrides)
                    ? internal::OverrideCaps(limit, *profile, user_id)
                    : internal::PlanCaps(limit);
    bool cold = false;  // a denial here is transient: 429 quota_syncing
    bool leased = false;
    if (ABSL_PREDICT_FALSE(link != nullptr) && limit.leasable && link->leases &&
        !caps.unlimited) {
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
      if (ABSL_PREDICT_FALSE(after > caps.hard)) {
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
      if (ABSL_PREDICT_TRUE(!limit.concurrent)) {
        const double room =
            static_cast<double>(caps.hard - after) /
            static_cast<double>(std::max<int64_t>(caps.hard, 1));
        if (room < tightest_room) {
          tightest_room = room;
          tightest = num_pending;
        }
      }
    }
    PendingCharge& p = pending[num_pending++];
    p.limit = &limit;
    p.target = {subject.rec, subject.index, subject.gen,
                limit.cell,  sliding,       limit.synced};
    p.window = w;
    p.view = view;
    p.word = word;
    p.amount = amount;
    p.used = used;
    p.hard = caps.hard;
    p.enforce = !caps.unlimited && !limit.shadow;
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
    decision = DenyWith(DenyKind::kInsufficientCredit, 402);
    decision.used = account.wallet_micros.load(std::memory_order_relaxed);
    return ChargeOutcome::kDecided;
  }
  int charged = 0;
  Charge failure = Charge::kOk;
  for (; charged < num_pending; ++charged) {
    PendingCharge& p = pending[charged];
    CellView seen = p.view;
    failure = internal::ChargeCell(p.target, p.hard, p.window, now, p.amount,
                                   p.enforce, p.word, &seen, link);
    if (ABSL_PREDICT_FALSE(failure != Charge::kOk)) {
      p.view = seen;
      break;
    }
    if (ABSL_PREDICT_FALSE(!SameView(seen, p.view))) {
      // A racing charge came first: this one counts on top of it.
      p.view = seen;
      p.used = internal::Estimate(seen, p.window, now);
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
      const int64_t ceiling =
          link->CeilingSeqCst(p.target.index, p.limit->cell);
      if (ABSL_PREDICT_FALSE(ceiling >= 0 && p.used + p.amount > ceiling)) {
        failure = Charge::kLeaseShrank;
        break;
      }
    }
  }
  if (ABSL_PREDICT_FALSE(failure != Charge::kOk)) {
    for (int k = 0; k < charged; ++k) {
      const PendingCharge& p = pending[k];
      internal::AdjustCell(*p.target.rec, p.target.gen, p.target.cell,
                           p.target.sliding, p.window.tag, -p.amount);
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
    DescribeDenial(*p.limit, caps, p.window, p.view,
                   internal::Estimate(p.view, p.window, now), p.amount, now,
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
        NoteCrossings(plan, plan_id, *p.limit, caps, p.target.index,
                      p.target.gen, p.window, p.used, after);
      }
    }
  }

  if (link != nullptr) {
    for (int k = 0; k < num_pending; ++k) {
      if (pending[k].limit->synced) {
        MarkDirty(link, *pending[k].target.rec, pending[k].target.index,
                  pending[k].target.gen);
      }
    }
  }

  // Touch each subject at most once a second, for idle reclamation.
  const auto now_s = static_cast<uint32_t>(now / 1000);
  for (int i = 0; i < kNumScopes; ++i) {
    const SubjectRef& s = subjects[i];
    if (s && s.rec->last_used_s.load(std::memory_order_relaxed) != now_s) {
      s.rec->last_used_s.store(now_s, std::memory_order_relaxed);
    }
  }

  return ChargeOutcome::kCharged;
}

Decision Enforcer::Impl::Decide(const CheckRequest& req, bool charge) {
  Decision d;  // the one returned object (no copies on the admit path)
  DecideInto(req, charge, &d);
  return d;
}

void Enforcer::Impl::DecideInto(const CheckRequest& req, bool charge,
                                Decision* out) {
  Decision& decision = *out;
  if (req.key_kind == KeyKind::kInternal) return;
  const int64_t now = Now(req.now_ms);
  for (const MeterAmount& m : req.amounts) {
    if (ABSL_PREDICT_FALSE(m.amount < 0 || m.amount > kMaxCount)) {
      decision = DenyWith(DenyKind::kInvalidRequest, 400);
      decision.message = "amounts must be in [0, 2^42)";
      return;
    }
  }
  // Acquire pairs with the release in InstallCatalog.
  const CompiledCatalog& cc = *compiled.load(std::memory_order_acquire);
  internal::SyncLink* const link = sync.load(std::memory_order_acquire);

  for (bool first = true;; first = false) {
    // Repeats only when a record was reclaimed under us.
    if (!first) decision = Decision{};
    SubjectRef subjects[kNumScopes];
    subjects[0] = LookupAccount(req.account_id, now, cc, charge, &decision);
    if (!subjects[0]) return;
    SubjectRecord& account = *subjects[0].rec;

    // Acquire pairs with UpsertAccount's release of meta and profile: what
    // was stored before them is visible.
    const uint64_t meta = account.meta.load(std::memory_order_acquire);
    const AccountProfile* profile =
        account.profile.load(std::memory_order_acquire);
    const int plan_id = internal::EffectivePlan(meta, profile, now);
    if (ABSL_PREDICT_FALSE(plan_id < 0 ||
                           static_cast<size_t>(plan_id) >= cc.plans.size() ||
                           cc.plans[plan_id] == nullptr)) {
      decision = DenyWith(
          plan_id < 0 ? DenyKind::kUnknownAccount : DenyKind::kUnknownPlan,
          403);
      return;
    }
    const CompiledPlan& plan = *cc.plans[plan_id];
    const uint32_t kind_bit = 1u << static_cast<int>(req.key_kind);
    switch (internal::MetaState(meta)) {
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
        if (plan.past_due_blocks & kind_bit) {
          decision = DenyWith(DenyKind::kPaymentRequired, 402);
          return;
        }
        decision.warnings |= kWarnPastDue;
        break;
    }

    // Gates: key kind, features, managed models, wallet minimum.
    if ((plan.key_kinds & kind_bit) == 0) {
      decision = DenyWith(DenyKind::kKeyKindNotAllowed, 403);
      return;
    }
    for (const std::string_view feature : req.features) {
      if (!HasFeature(*plan.source, feature)) {
        decision = DenyWith(DenyKind::kFeatureNotInPlan, 402);
        if (const Plan* up =
                cc.catalog->CheapestPlanWithFeature(feature, plan.source->id)) {
          decision.upgrade_plan = up->id;
        }
        return;
      }
    }
    if (plan.source->models_restricted && !req.byok) {
      const std::string_view model =
          !req.model.empty() || profile == nullptr
              ? req.model
              : std::string_view(profile->default_model);
      if (!ModelAllowed(*plan.source, model)) {
        decision = DenyWith(DenyKind::kModelNotAllowed, 403);
        decision.message =
            req.model.empty()
                ? "the workspace default model is not in the plan's "
                  "managed allowlist; change it in the dashboard"
                : "model not in the plan's managed allowlist";
        return;
      }
    }
    // Test (sandbox) traffic passes the gates above and is never counted.
    if (req.key_kind == KeyKind::kTest) return;
    const bool managed_live = !req.byok;
    const int64_t debit = managed_live ? req.wallet_micros : 0;
    if (managed_live && (plan.source->wallet.required || debit > 0)) {
      const int64_t balance =
          account.wallet_micros.load(std::memory_order_relaxed);
      if (balance < debit ||
          (plan.source->wallet.required &&
           balance < plan.source->wallet.min_balance_micros)) {
        decision = DenyWith(DenyKind::kInsufficientCredit, 402);
        decision.used = balance;
        return;
      }
    }

    // Narrower subjects, only for scopes the plan limits.
    if (ABSL_PREDICT_FALSE(plan.uses_narrow_scope)) {
      for (int s = 1; s < kNumScopes; ++s) {
        const auto scope = static_cast<Scope>(s);
        const std::string_view id = IdFor(req, scope);
        if (!plan.uses_scope[s] || id.empty()) continue;
        const uint64_t hash = table.Hash(scope, req.account_id, id);
        subjects[s] = table.Find(scope, req.account_id, id, hash);
        if (ABSL_PREDICT_FALSE(!subjects[s])) {
          if (!charge) continue;  // Peek: a subject never seen used nothing
          const internal::SubjectOwner owner{subjects[0].index,
                                             SubjectBudget(plan)};
          auto inserted =
              table.FindOrInsert(scope, req.account_id, id, hash, now, &owner);
          if (!inserted.ok()) {
            if (absl::IsFailedPrecondition(inserted.status())) {
              // This account's own budget, never another account's.
              subject_denials.fetch_add(1, std::memory_order_relaxed);
              decision = DenyWith(DenyKind::kSubjectLimit, 429);
              decision.limit_value = owner.budget;
              decision.hard_limit = owner.budget;
              decision.used = table.owned(owner.index);
              decision.retry_after_ms = options.idle_subject_ttl_ms;
              return;
            }
            capacity_denials.fetch_add(1, std::memory_order_relaxed);
            const bool bad = absl::IsInvalidArgument(inserted.status());
            decision =
                DenyWith(bad ? DenyKind::kInvalidRequest : DenyKind::kCapacity,
                         bad ? 400 : 503);
            return;
          }
          subjects[s] = *inserted;
        }
      }
    }

    PendingCharge pending[internal::kMaxReservedOps];
    int num_pending = 0;
    const ChargeOutcome outcome = EvaluateAndCharge(
        plan, plan_id, account, profile, req.user_id, subjects, now, link,
        charge, debit,
        [&req](const CompiledLimit& limit) -> int64_t {
          return TrafficMatches(limit.applies_to, req.byok)
                     ? AmountFor(req, limit.meter)
                     : -1;
        },
        pending, &num_pending, &decision);
    if (ABSL_PREDICT_FALSE(outcome == ChargeOutcome::kStale)) continue;
    if (outcome == ChargeOutcome::kDecided) return;

    uint32_t index = 0;
    uint32_t generation = 0;
    ReservationSlot* slot = reservations.Acquire(&index, &generation);
    bool must_settle = false;
    for (int k = 0; k < num_pending; ++k) {
      must_settle |= pending[k].limit->concurrent;
    }
    if (ABSL_PREDICT_FALSE(slot == nullptr)) {
      if (must_settle) {
        // A request in flight that nothing would give back leaks its
        // slot of the concurrency limit: undo, and deny.
        for (int k = 0; k < num_pending; ++k) {
          const PendingCharge& p = pending[k];
          internal::AdjustCell(*p.target.rec, p.target.gen, p.target.cell,
                               p.target.sliding, p.window.tag, -p.amount);
        }
        if (debit > 0) internal::MoveWallet(account.wallet_micros, debit);
        capacity_denials.fetch_add(1, std::memory_order_relaxed);
        decision = DenyWith(DenyKind::kCapacity, 503);
        decision.message = "no reservation slot free (max_reservations)";
        return;
      }
      // No room to remember the reservation: the charge stands as final.
      unreserved_admits.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    slot->request_id = req.request_id;
    slot->must_settle = must_settle;
    slot->num_ops = num_pending;
    slot->wallet_record = subjects[0].index;
    slot->wallet_gen = subjects[0].gen;
    slot->wallet_micros = debit;
    for (int k = 0; k < num_pending; ++k) {
      const PendingCharge& p = pending[k];
      ReservedOp& op = slot->ops[k];
      op.record = p.target.index;
      op.tag = static_cast<uint16_t>(p.window.tag);
      op.cell = p.target.cell;
      op.gen = p.target.gen;
      op.meter = p.limit->meter;
      op.sliding = p.target.sliding;
      op.release = p.limit->concurrent;
      op.amount = p.amount;
    }
    reservations.Publish(slot, generation, now + options.reservation_ttl_ms);
    decision.reservation = Reservation{index, generation};
    return;
  }
}

namespace {

// The live record `index` if it still has generation `gen`.
SubjectRecord* LiveRecord(CounterTable& table, uint32_t index, uint8_t gen) {
  SubjectRecord& rec = table.at(index);
  const uint32_t ctrl = rec.ctrl.load(std::memory_order_acquire);
  if (SubjectRecord::State(ctrl) != internal::RecordState::kLive ||
      static_cast<uint8_t>(SubjectRecord::Generation(ctrl)) != gen) {
    return nullptr;
  }
  return &rec;
}

Decision InvalidExtend(std::string_view why) {
  Decision d = DenyWith(DenyKind::kInvalidRequest, 400);
  d.message = why;
  return d;
}

}  // namespace

void Enforcer::Impl::ExtendInto(const ExtendRequest& req, Decision* out) {
  Decision& decision = *out;
  for (const MeterAmount& m : req.amounts) {
    if (m.amount < 0 || m.amount > kMaxCount) {
      decision = InvalidExtend("amounts must be in [0, 2^42)");
      return;
    }
  }
  if (req.reservation.empty()) {
    decision = InvalidExtend("extend: an empty reservation");
    return;
  }
  const int64_t now = Now(req.now_ms);
  ReservationSlot* slot = nullptr;
  // Claimed as if settling: the expiry sweep and a Commit keep off it
  // until it is published again below.
  if (reservations.BeginSettle(req.reservation.slot, req.reservation.generation,
                               &slot) != internal::SettleClaim::kOk) {
    decision = InvalidExtend("extend: the reservation is not pending");
    return;
  }
  const auto republish = [&] {
    reservations.Publish(slot, req.reservation.generation,
                         now + options.reservation_ttl_ms);
  };
  SubjectRecord* account =
      LiveRecord(table, slot->wallet_record, slot->wallet_gen);
  if (account == nullptr) {
    republish();
    decision = InvalidExtend("extend: the account's record was reclaimed");
    return;
  }
  // The subjects the reservation counts in, from its ops.
  SubjectRef subjects[kNumScopes];
  subjects[0] = {account, slot->wallet_record, slot->wallet_gen};
  Scope op_scope[internal::kMaxReservedOps];
  for (int k = 0; k < slot->num_ops; ++k) {
    const ReservedOp& op = slot->ops[k];
    SubjectRecord* rec = LiveRecord(table, op.record, op.gen);
    op_scope[k] = Scope::kAccount;
    if (rec == nullptr) continue;  // reclaimed: its limits add nothing
    op_scope[k] =
        static_cast<Scope>(rec->shape.load(std::memory_order_relaxed) & 0xff);
    subjects[static_cast<int>(op_scope[k])] = {rec, op.record, op.gen};
  }
  const CompiledCatalog& cc = *compiled.load(std::memory_order_acquire);
  internal::SyncLink* const link = sync.load(std::memory_order_acquire);
  const uint64_t meta = account->meta.load(std::memory_order_acquire);
  const AccountProfile* profile =
      account->profile.load(std::memory_order_acquire);
  const int plan_id = internal::EffectivePlan(meta, profile, now);
  if (plan_id < 0 || static_cast<size_t>(plan_id) >= cc.plans.size() ||
      cc.plans[plan_id] == nullptr) {
    republish();
    decision = DenyWith(DenyKind::kUnknownPlan, 403);
    return;
  }
  const CompiledPlan& plan = *cc.plans[plan_id];
  // A user override needs the user's id (slow: only then).
  std::string user_id;
  if (profile != nullptr && !profile->overrides.empty() &&
      subjects[static_cast<int>(Scope::kUser)]) {
    Scope scope;
    std::string account_id;
    CounterTable::ReadKey(*subjects[static_cast<int>(Scope::kUser)].rec, &scope,
                          &account_id, &user_id);
  }
  // Only the limits the reservation counts in apply, by (scope, cell).
  const auto amount_of = [&](const CompiledLimit& limit) -> int64_t {
    for (int k = 0; k < slot->num_ops; ++k) {
      if (op_scope[k] != limit.scope || slot->ops[k].cell != limit.cell) {
        continue;
      }
      for (const MeterAmount& m : req.amounts) {
        if (m.meter == limit.meter) return m.amount;
      }
      return 0;
    }
    return -1;
  };
  PendingCharge pending[internal::kMaxReservedOps];
  int num_pending = 0;
  ChargeOutcome outcome = ChargeOutcome::kStale;
  for (int attempt = 0; attempt < 4 && outcome == ChargeOutcome::kStale;
       ++attempt) {
    decision = Decision{};
    outcome = EvaluateAndCharge(plan, plan_id, *account, profile, user_id,
                                subjects, now, link, /*charge=*/true,
                                /*debit=*/0, amount_of, pending, &num_pending,
                                &decision);
  }
  if (outcome == ChargeOutcome::kStale) {
    decision = InvalidExtend("extend: the reservation's records were reused");
  }
  if (outcome == ChargeOutcome::kCharged) {
    // The reservation holds what went to the windows it began in.
    for (int i = 0; i < num_pending; ++i) {
      const PendingCharge& p = pending[i];
      for (int k = 0; k < slot->num_ops; ++k) {
        ReservedOp& op = slot->ops[k];
        if (op.record == p.target.index && op.cell == p.target.cell &&
            op.tag == static_cast<uint16_t>(p.window.tag)) {
          op.amount = std::min(op.amount + p.amount, kMaxCount);
          break;
        }
      }
    }
  }
  republish();
  // Still the host's to commit, admitted or not.
  decision.reservation = req.reservation;
}

}  // namespace plangate
