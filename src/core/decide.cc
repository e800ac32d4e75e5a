// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// Check and Peek: the gates (subscription state, key kind, features,
// managed models, wallet minimum), the account's and narrower subjects'
// records, then the evaluate-then-charge core (charge_step.h) and the
// reservation.

#include <algorithm>

#include "absl/base/optimization.h"
#include "core/cell_ops.h"
#include "core/charge_step.h"
#include "core/enforcer_impl.h"
#include "core/window.h"
#include "plangate/enforcer.h"

namespace plangate {
namespace {

using internal::AccountProfile;
using internal::CompiledCatalog;
using internal::CompiledLimit;
using internal::CompiledPlan;
using internal::DenyWith;
using internal::PackMeta;
using internal::PendingCharge;
using internal::ReservationSlot;
using internal::ReservedOp;
using internal::SubjectRecord;
using internal::SubjectRef;

bool TrafficMatches(Traffic t, bool byok) {
  return t == Traffic::kAll || (t == Traffic::kByok) == byok;
}

int64_t AmountFor(const CheckRequest& req, uint16_t meter) {
  for (const MeterAmount& m : req.amounts) {
    if (m.meter == meter) return m.amount;
  }
  return meter == 0 ? 1 : 0;  // meter 0 is "requests"
}

// What a limit counts of a request of `model`: its meter's amount, or for
// a per-tool limit the sum of its tools' meters; -1 when it does not apply.
int64_t LimitAmount(const CheckRequest& req, std::string_view model,
                    const CompiledLimit& limit) {
  if (ABSL_PREDICT_TRUE(!limit.filtered)) {
    return AmountFor(req, limit.amount_meter);
  }
  if (!TrafficMatches(limit.applies_to, req.byok)) return -1;
  if (ABSL_PREDICT_FALSE(limit.models != nullptr)) {
    bool match = false;
    for (const std::string& pattern : *limit.models) {
      match = match || internal::ModelMatches(pattern, model);
    }
    if (!match) return -1;
  }
  if (ABSL_PREDICT_TRUE(limit.tool_meters.empty())) {
    return AmountFor(req, limit.amount_meter);
  }
  return internal::ToolAmount(req.amounts, limit);
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

}  // namespace

ABSL_ATTRIBUTE_NOINLINE SubjectRef Enforcer::Impl::LookupAccountMiss(
    std::string_view id, uint64_t hash, int64_t now_ms,
    const CompiledCatalog& cc, bool may_insert, internal::SyncLink* link,
    Decision* denial) {
  const bool shared = link != nullptr && link->share_accounts;
  if ((cc.default_plan < 0 && !shared) || !may_insert) {
    *denial = DenyWith(DenyKind::kUnknownAccount, 403);
    return {};
  }
  // First sighting of an account the host never registered: it gets the
  // catalog's default plan, anchored on the calendar month (or, without
  // one, stays unknown); with shared account state the sync loads what
  // Redis has for it.
  auto inserted = table.FindOrInsert(Scope::kAccount, id, {}, hash, now_ms);
  if (!inserted.ok()) {
    capacity_denials.fetch_add(1, std::memory_order_relaxed);
    *denial = DenyWith(DenyKind::kCapacity, 503);
    return {};
  }
  if (shared && !link->sightings.Push(
                    internal::PackDirty(inserted->index, inserted->gen))) {
    // Relaxed: a statistic.
    link->sightings_overflow.fetch_add(1, std::memory_order_relaxed);
  }
  if (cc.default_plan < 0) {
    *denial = DenyWith(DenyKind::kUnknownAccount, 403);
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
    subjects[0] =
        LookupAccount(req.account_id, now, cc, charge, link, &decision);
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
    // The model asked for, else the account's default.
    const std::string_view model =
        !req.model.empty() || profile == nullptr
            ? req.model
            : std::string_view(profile->default_model);
    if (plan.source->models_restricted && !req.byok) {
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
      const int64_t lease =
          account.wallet_micros.load(std::memory_order_relaxed);
      int64_t balance = lease;
      if (ABSL_PREDICT_FALSE(link != nullptr && link->share_wallets)) {
        // The balance is the cluster's; this instance spends its lease.
        balance = link->WalletBalance(subjects[0].index, subjects[0].gen);
        if (balance < 0) {
          // Not tracked yet: the sync starts on it.
          if (charge) {
            link->wallets.Push(
                internal::PackDirty(subjects[0].index, subjects[0].gen));
          }
          decision = DenyWith(DenyKind::kSyncing, 429);
          decision.retry_after_ms = 100;
          return;
        }
      }
      if (balance < debit ||
          (plan.source->wallet.required &&
           balance < plan.source->wallet.min_balance_micros)) {
        decision = DenyWith(DenyKind::kInsufficientCredit, 402);
        decision.used = balance;
        return;
      }
      if (ABSL_PREDICT_FALSE(link != nullptr && link->share_wallets) &&
          debit > 0 &&
          (lease < debit || now > link->WalletValidUntil(subjects[0].index))) {
        // The cluster has it, this instance's lease does not (or is
        // stale): the sync asks for more.
        link->NoteWalletShort(subjects[0].index, debit);
        decision = DenyWith(DenyKind::kSyncing, 429);
        decision.retry_after_ms = 100;
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
        [&req, model](const CompiledLimit& limit) -> int64_t {
          return LimitAmount(req, model, limit);
        },
        pending, &num_pending, &decision);
    if (ABSL_PREDICT_FALSE(outcome == ChargeOutcome::kStale)) continue;
    // An admitted check that no limit counted still counts by model (in a
    // reservation of its own, for Commit to settle).
    if (outcome == ChargeOutcome::kDecided &&
        (ABSL_PREDICT_TRUE(plan.num_model_meters == 0) || !charge ||
         num_pending != 0 || !decision.admitted())) {
      return;
    }

    uint32_t index = 0;
    uint32_t generation = 0;
    ReservationSlot* slot = reservations.Acquire(&index, &generation);
    if (ABSL_PREDICT_FALSE(slot == nullptr)) {
      bool must_settle = false;
      for (int k = 0; k < num_pending; ++k) {
        must_settle |= pending[k].limit->concurrent;
      }
      if (must_settle) {
        // A request in flight that nothing would give back leaks its
        // slot of the concurrency limit: undo, and deny.
        for (int k = 0; k < num_pending; ++k) {
          const PendingCharge& p = pending[k];
          internal::AdjustCell(*p.rec, p.gen, p.limit->cell,
                               p.limit->mode == WindowMode::kSliding,
                               p.window.tag, -p.amount);
        }
        if (debit > 0) internal::MoveWallet(account.wallet_micros, debit);
        capacity_denials.fetch_add(1, std::memory_order_relaxed);
        decision = DenyWith(DenyKind::kCapacity, 503);
        decision.message = "no reservation slot free (max_reservations)";
        return;
      }
      // No room to remember the reservation: the charge stands as final.
      unreserved_admits.fetch_add(1, std::memory_order_relaxed);
      if (ABSL_PREDICT_FALSE(plan.num_model_meters != 0)) {
        ReservedOp final_ops[kCellsPerSubject];
        CountByModel(plan, subjects[0], req, model, now, link, final_ops);
      }
      return;
    }
    slot->request_id = req.request_id;
    slot->wallet_record = subjects[0].index;
    slot->wallet_gen = subjects[0].gen;
    slot->wallet_micros = debit;
    bool must_settle = false;
    for (int k = 0; k < num_pending; ++k) {
      const PendingCharge& p = pending[k];
      ReservedOp& op = slot->ops[k];
      op = p.limit->op;
      op.record = p.index;
      op.tag = static_cast<uint16_t>(p.window.tag);
      op.gen = p.gen;
      op.amount = p.amount;
      must_settle |= op.release;
    }
    slot->must_settle = must_settle;
    // compiled_catalog.cc keeps limits + model meters <= kMaxReservedOps.
    slot->num_ops =
        ABSL_PREDICT_TRUE(plan.num_model_meters == 0)
            ? num_pending
            : num_pending + CountByModel(plan, subjects[0], req, model, now,
                                         link, slot->ops + num_pending);
    reservations.Publish(slot, generation, now + options.reservation_ttl_ms);
    decision.reservation = Reservation{index, generation};
    return;
  }
}

}  // namespace plangate
