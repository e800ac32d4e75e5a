// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// Extend: a pending reservation charged more while its request runs (a
// stream's tokens), through the same evaluate-then-charge core as Check
// (charge_step.h), against the limits the reservation counts in.

#include <algorithm>
#include <string>

#include "core/charge_step.h"
#include "core/enforcer_impl.h"
#include "plangate/enforcer.h"

namespace plangate {
namespace {

using internal::AccountProfile;
using internal::CompiledCatalog;
using internal::CompiledLimit;
using internal::CompiledPlan;
using internal::CounterTable;
using internal::DenyWith;
using internal::PendingCharge;
using internal::ReservationSlot;
using internal::ReservedOp;
using internal::SubjectRecord;
using internal::SubjectRef;

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
    // Per-model counts (kModelScope) are no limit's: Commit settles them.
    if (op_scope[k] == internal::kModelScope) continue;
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
      if (!limit.tool_meters.empty()) {
        return std::max<int64_t>(0, internal::ToolAmount(req.amounts, limit));
      }
      for (const MeterAmount& m : req.amounts) {
        if (m.meter == limit.amount_meter) return m.amount;
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
        if (op.record == p.index && op.cell == p.limit->cell &&
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
