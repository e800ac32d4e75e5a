// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// The fast check: the common Check of an account whose plan compiled to a
// FastPlan (fast_plan.h), in two short loops over its limits.
//   1. Evaluate: per limit, its window, its cell word (relaxed load) and,
//      with a sync attached, the other instances' usage and this
//      instance's lease ceiling; the word the charge will write. A denial
//      is described here, having written nothing; anything else the loop
//      does not decide itself (a lease not ready, a record reclaimed)
//      returns to the general path, having written nothing.
//   2. Charge: one CAS per cell, expecting the word phase 1 read. A CAS
//      that fails (a racing check) gives back the cells already charged
//      and starts again; after a few tries the general path decides.
// Then, as the general path: the lease re-check (sync_link.h), threshold
// events, the sync's change log, the idle clock, the deciding limit and
// the reservation. The memory orders of the cell writes are cell_ops.h's.
// The Decision is returned by value, built in the caller's object: an
// admit writes each field once (no default fill to overwrite), and what
// goes to the general path gets its Decision from GeneralCheck.
//
// Thread safety: as Enforcer::Check.

#include <algorithm>
#include <mutex>
#include <string_view>

#include "absl/base/optimization.h"
#include "core/cell_ops.h"
#include "core/charge_step.h"
#include "core/check_path_access.h"
#include "core/enforcer_impl.h"
#include "core/fast_plan.h"
#include "core/window.h"

namespace plangate {
namespace {

using internal::Cell;
using internal::CellView;
using internal::FastLimit;
using internal::FastPlan;
using internal::SubjectRecord;
using internal::SubjectRef;
using internal::Window;

// One limit between the two loops. Trivially constructible: an array of
// them costs nothing until filled.
struct FastStep {
  uint64_t expect;   // the cell word phase 1 read
  uint64_t desired;  // and the one the charge writes
  int64_t amount;
  int64_t used;  // the estimate before this request (cluster-wide)
  uint32_t tag;  // the window's
};

// The deciding (tightest admitted) limit, kept while phase 1 runs.
struct Tightest {
  int index;
  int64_t left;  // hard - used - amount
  int64_t hard;
};

int64_t AmountOf(std::span<const MeterAmount> amounts, const FastLimit& f) {
  for (const MeterAmount& m : amounts) {
    if (m.meter == f.amount_meter) return m.amount;
  }
  return f.default_amount;
}

// The window `f` counts in at `now`.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline Window WindowAt(SubjectRecord& account,
                                                    const FastLimit& f,
                                                    int64_t now) {
  // (FastCheck sends instants before the epoch to the general path.)
  return f.window_ms != 0 ? internal::FixedWindowAfterEpoch(f.window_ms, now)
                          : internal::PeriodWindow(account, f.period_slot, now);
}

// A denial by limit `f` at bound `hard` (its cap with grace, or a lease:
// then `lease_short`, the transient 429).
ABSL_ATTRIBUTE_NOINLINE Decision Deny(const internal::CompiledPlan& plan,
                                      const FastLimit& f, int64_t hard,
                                      const Window& w, const CellView& total,
                                      int64_t used, int64_t amount, int64_t now,
                                      bool lease_short) {
  Decision d;
  const internal::Caps caps{false, f.limit, hard, f.nudge_at};
  internal::DescribeDenial(*f.source, caps, w, total, used, amount, now, &d);
  d.upgrade_plan = plan.next_plan;
  if (lease_short) internal::AsLeaseShort(&d);
  return d;
}

// `r`, member by member: GCC copies the 56-byte struct whole with a `rep
// movs`, whose start-up costs more than the copy.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline LimitRef CopyOf(const LimitRef& r) {
  return LimitRef{r.limit_id, r.scope,        r.meter,
                  r.window,   r.window_count, r.mode};
}

constexpr int kFastTries = 4;

}  // namespace

Decision Enforcer::Impl::GeneralCheck(const CheckRequest& req) {
  Decision d;
  DecideInto(req, /*charge=*/true, &d);
  return d;
}

Decision Enforcer::Impl::FastCheck(const CheckRequest& req) {
  // What the fast check leaves to the general path, first what the request
  // alone says: another key kind, features (each a gate), amounts out of
  // range (a 400), instants before the epoch.
  if (ABSL_PREDICT_FALSE((req.key_kind != KeyKind::kLive) |
                         !req.features.empty() | !fast_checks)) {
    return GeneralCheck(req);
  }
  for (const MeterAmount& m : req.amounts) {
    if (ABSL_PREDICT_FALSE(m.amount < 0 || m.amount > kMaxCount)) {
      return GeneralCheck(req);
    }
  }
  const int64_t now = Now(req.now_ms);
  if (ABSL_PREDICT_FALSE(now < 0)) return GeneralCheck(req);
  // Acquire: as in DecideInto (the catalog's and the link's publication).
  const CompiledCatalog& cc = *compiled.load(std::memory_order_acquire);
  internal::SyncLink* const link = sync.load(std::memory_order_acquire);
  uint64_t hash;
  const SubjectRef account = table.FindAccount(req.account_id, &hash);
  if (ABSL_PREDICT_FALSE(!account)) return GeneralCheck(req);  // first seen
  // Acquire: as in DecideInto (UpsertAccount's release of meta, profile).
  const uint64_t meta = account.rec->meta.load(std::memory_order_acquire);
  const AccountProfile* profile =
      account.rec->profile.load(std::memory_order_acquire);
  const int plan_id = internal::EffectivePlan(meta, profile, now);
  if (ABSL_PREDICT_FALSE(plan_id < 0 ||
                         static_cast<size_t>(plan_id) >= cc.plans.size() ||
                         cc.plans[plan_id] == nullptr)) {
    return GeneralCheck(req);
  }
  const CompiledPlan& plan = *cc.plans[plan_id];
  const FastPlan& fp = plan.fast;
  // Then what the account and its plan say (FastPlan::enabled includes
  // that the plan admits live keys).
  const bool overrides = profile != nullptr && !profile->overrides.empty();
  if (ABSL_PREDICT_FALSE(
          !fp.enabled | overrides |
          (internal::MetaState(meta) != SubscriptionState::kActive) |
          (!req.byok && (fp.gated || req.wallet_micros > 0)))) {
    return GeneralCheck(req);
  }
  switch (fp.num_limits) {
    case 0:
      return Decision{};  // nothing counts: admitted as it is
    case 1:
      return link == nullptr
                 ? FastCharge<1, false>(req, plan, plan_id, account, now, link)
                 : FastCharge<1, true>(req, plan, plan_id, account, now, link);
    case 2:
      return link == nullptr
                 ? FastCharge<2, false>(req, plan, plan_id, account, now, link)
                 : FastCharge<2, true>(req, plan, plan_id, account, now, link);
    case 3:
      return link == nullptr
                 ? FastCharge<3, false>(req, plan, plan_id, account, now, link)
                 : FastCharge<3, true>(req, plan, plan_id, account, now, link);
    default:
      return link == nullptr
                 ? FastCharge<0, false>(req, plan, plan_id, account, now, link)
                 : FastCharge<0, true>(req, plan, plan_id, account, now, link);
  }
}

template <int N, bool kLinked>
inline Decision Enforcer::Impl::FastCharge(
    const CheckRequest& req, const CompiledPlan& plan, int plan_id,
    const SubjectRef& account, int64_t now, internal::SyncLink* link) {
  const FastPlan& fp = plan.fast;
  // N limits, or (N == 0) as many as the plan has.
  const int n = N != 0 ? N : fp.num_limits;
  SubjectRecord& rec = *account.rec;
  const uint8_t gen = account.gen;
  FastStep steps[N != 0 ? N : kCellsPerSubject];
  const bool listed = !req.amounts.empty();
  // The record's sync words, found once (sync_link.h, RecordWords).
  const internal::SyncLink::RecordWords* words =
      kLinked ? &link->Words(account.index) : nullptr;
  const uint32_t ready_gen = internal::ReadyWord(gen, 0);

  for (int attempt = 0; attempt < kFastTries; ++attempt) {
    // Phase 1: evaluate.
    uint32_t warnings = kWarnNone;
    Tightest t;
    bool leased = false;
#pragma GCC unroll 8
    for (int i = 0; i < n; ++i) {
      const FastLimit& f = fp.limits[i];
      FastStep& s = steps[i];
      const int64_t amount = ABSL_PREDICT_FALSE(listed)
                                 ? AmountOf(req.amounts, f)
                                 : f.default_amount;
      const Window w = WindowAt(rec, f, now);
      // Relaxed: the CAS below expects this word, and a stale read only
      // fails it.
      const uint64_t word = rec.cells[f.cell].load(std::memory_order_relaxed);
      if (ABSL_PREDICT_FALSE(Cell::Gen(word) != gen)) return GeneralCheck(req);
      const uint64_t prev_word =
          f.sliding ? rec.cells[f.cell + 1].load(std::memory_order_relaxed) : 0;
      const CellView view = internal::ViewOf(word, prev_word, w.tag, f.sliding);
      int64_t used;
      int64_t hard = f.hard;
      CellView total = view;     // with the other instances' usage
      bool lease_bound = false;  // hard is this instance's lease
      if constexpr (kLinked) {
        // Every fast limit is synced (none counts requests in flight).
        total = internal::Plus(
            view, words->RemoteView(f.cell, gen, w.tag, f.sliding));
        used = internal::Estimate(total, w, now);
        if (link->leases) {
          // As in EvaluateAndCharge: a ready counter's ceiling bounds this
          // instance; one not ready is the general path's (cold start).
          // (ReadyWord(gen, tag) is ReadyWord(gen, 0) | tag: w.tag is a
          // window tag, already within its 14 bits.)
          if (!words->Ready(f.cell, ready_gen | w.tag)) {
            return GeneralCheck(req);
          }
          const int64_t ceiling = words->Ceiling(f.cell);
          const int64_t bound = ceiling + (used - view.current);
          if (ceiling >= 0 && bound < hard && used + amount <= hard) {
            hard = bound;
            lease_bound = true;
          }
          leased = true;
        }
      } else {
        used = internal::Estimate(view, w, now);
      }
      const int64_t after = used + amount;
      if (ABSL_PREDICT_FALSE(after > hard)) {
        // A denial, nothing written: described as EvaluateAndCharge does.
        // Within the cap, past this instance's lease: the sync asks for
        // more (a transient 429).
        if (kLinked && lease_bound) MarkDirty(link, account.index, gen);
        return Deny(plan, f, hard, w, total, used, amount, now,
                    kLinked && lease_bound);
      }
      if (after > f.limit) {
        warnings |= kWarnGrace;
      } else if (after >= f.nudge_at) {
        warnings |= kWarnSoftNudge;
      }
      s.expect = word;
      // current + amount <= after <= hard <= kMaxCount: the count field
      // takes the sum without a carry.
      s.desired = ABSL_PREDICT_TRUE(Cell::Tag(word) == w.tag)
                      ? word + static_cast<uint64_t>(amount)
                      : Cell::Pack(gen, w.tag, amount);
      s.amount = amount;
      s.used = used;
      s.tag = w.tag;
      // The admitted limit with least room left describes the decision
      // (the first of equals, as EvaluateAndCharge).
      if (i == 0 || internal::TighterThan(hard - after, hard, t.left, t.hard)) {
        t = Tightest{i, hard - after, hard};
      }
    }

    // Phase 2: charge every cell, or none.
    int charged = 0;
#pragma GCC unroll 8
    for (; charged < n; ++charged) {
      const FastLimit& f = fp.limits[charged];
      const FastStep& s = steps[charged];
      uint64_t expect = s.expect;
      // seq_cst, as ChargeCell's (cell_ops.h): with a sync, the charge and
      // the ceiling re-read below pair with the sync's store of a lowered
      // ceiling and its read of the cell. Relaxed on failure: we start
      // again from fresh loads.
      if (ABSL_PREDICT_FALSE(!rec.cells[f.cell].compare_exchange_strong(
              expect, s.desired, std::memory_order_seq_cst,
              std::memory_order_relaxed))) {
        break;
      }
      if (ABSL_PREDICT_FALSE(Cell::Tag(s.expect) != s.tag)) {
        const Window w = WindowAt(rec, f, now);
        internal::NoteRollover(
            {&rec, account.index, gen, f.cell, f.sliding, /*synced=*/true}, w,
            s.expect, link);
      }
    }
    if (ABSL_PREDICT_FALSE(charged != n) || (kLinked && leased)) {
      // A lowered ceiling: the re-check EvaluateAndCharge explains.
      bool shrank = false;
      for (int i = 0; leased && charged == n && i < n; ++i) {
        const FastStep& s = steps[i];
        if (s.amount <= 0) continue;
        const int64_t ceiling = words->CeilingSeqCst(fp.limits[i].cell);
        shrank |= ceiling >= 0 && Cell::Count(s.desired) > ceiling;
      }
      if (charged != n || shrank) {
        for (int i = 0; i < charged; ++i) {
          const FastLimit& f = fp.limits[i];
          internal::AdjustCell(rec, gen, f.cell, f.sliding, steps[i].tag,
                               -steps[i].amount);
        }
        if (shrank) return GeneralCheck(req);  // it decides (a 429)
        continue;  // a racing charge: evaluate again
      }
    }

    // Charged. What follows a charge, as in EvaluateAndCharge.
    if (ABSL_PREDICT_FALSE(options.event_sink != nullptr) && !kLinked) {
      // (Synced counters cross thresholds cluster-wide: the sync reports
      // those.)
      for (int i = 0; i < n; ++i) {
        const FastLimit& f = fp.limits[i];
        const FastStep& s = steps[i];
        const int64_t after = s.used + s.amount;
        if (ABSL_PREDICT_FALSE(after >= f.nudge_at && s.used < f.limit)) {
          const Window w = WindowAt(rec, f, now);
          NoteCrossings(plan, plan_id, *f.source, internal::PlanCaps(*f.source),
                        account.index, gen, w, s.used, after);
        }
      }
    }
    // All count in the account's record: one entry in the change log.
    if (kLinked) MarkDirty(link, account.index, gen);
    const auto now_s = static_cast<uint32_t>(now / 1000);
    if (rec.last_used_s.load(std::memory_order_relaxed) != now_s) {
      rec.last_used_s.store(now_s, std::memory_order_relaxed);
    }

    // The deciding limit's window, and the reservation, before the
    // Decision is written (once, in the returned object).
    const FastLimit& decider = fp.limits[t.index];
    const Window w = WindowAt(rec, decider, now);
    uint32_t index = 0;
    uint32_t generation = 0;
    internal::ReservationSlot* slot = reservations.Acquire(&index, &generation);
    if (ABSL_PREDICT_TRUE(slot != nullptr)) {
      slot->request_id = req.request_id;
      slot->wallet_record = account.index;
      slot->wallet_gen = gen;
      slot->wallet_micros = 0;
#pragma GCC unroll 8
      for (int i = 0; i < n; ++i) {
        internal::ReservedOp& op = slot->ops[i];
        op = fp.limits[i].op;
        op.record = account.index;
        op.tag = static_cast<uint16_t>(steps[i].tag);
        op.gen = gen;
        op.amount = steps[i].amount;
      }
      slot->must_settle = false;
      slot->num_ops = n;
      reservations.Publish(slot, generation, now + options.reservation_ttl_ms);
    } else {
      // No room to remember it: the charge stands as final.
      unreserved_admits.fetch_add(1, std::memory_order_relaxed);
    }
    return Decision{
        .warnings = warnings,
        .has_limit = true,
        .limit = CopyOf(decider.ref),
        .limit_value = decider.limit,
        .hard_limit = t.hard,
        .used = steps[t.index].used,
        .remaining = std::max<int64_t>(0, t.left),
        .window_start_ms = w.start_ms,
        .reset_ms = w.end_ms,
        .reservation =
            slot != nullptr ? Reservation{index, generation} : Reservation{},
    };
  }
  // Contended: the general path charges with its re-checks.
  return GeneralCheck(req);
}

namespace internal {

void CheckPathAccess::SetFastChecks(Enforcer& e, bool on) {
  e.impl_->fast_checks = on;
}

bool CheckPathAccess::HasFastPlan(Enforcer& e, std::string_view plan_id) {
  std::lock_guard<std::mutex> lock(e.impl_->admin_mu);
  const int id = e.impl_->plans.Find(plan_id);
  const CompiledCatalog& cc =
      *e.impl_->compiled.load(std::memory_order_acquire);
  return id >= 0 && static_cast<size_t>(id) < cc.plans.size() &&
         cc.plans[id] != nullptr && cc.plans[id]->fast.enabled;
}

}  // namespace internal
}  // namespace plangate
