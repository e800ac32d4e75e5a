// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// Commit: settling a reservation with the actual amounts, or refunding it.

#include <algorithm>

#include "core/cell_ops.h"
#include "core/enforcer_impl.h"
#include "plangate/enforcer.h"

namespace plangate {
namespace {

using internal::AdjustCell;
using internal::CounterTable;
using internal::DrainWallet;
using internal::MoveWallet;
using internal::ReservationSlot;
using internal::ReservedOp;
using internal::SubjectRecord;

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
    if (link != nullptr) {
      MarkDirty(link, op.record, op.gen);
    }
  }
  if (slot.wallet_micros > 0) {
    if (SubjectRecord* rec = WalletOf(table, slot)) {
      MoveWallet(rec->wallet_micros, slot.wallet_micros);
    }
  }
}

CommitResult Enforcer::Impl::Settle(const CommitRequest& commit) {
  if (commit.reservation.empty()) return CommitResult::kEmpty;
  // (Enforcer::Commit frees a slot that nothing changes in one CAS first.)
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
    if (op.release) {
      // A request in flight no more: its concurrency slot comes back.
      AdjustCell(table.at(op.record), op.gen, op.cell, op.sliding, op.tag,
                 -op.amount);
      continue;
    }
    for (const MeterAmount& m : commit.actual) {
      if (m.meter != op.meter) continue;
      const int64_t actual = std::clamp(m.amount, int64_t{0}, kMaxCount);
      if (actual != op.amount) {
        AdjustCell(table.at(op.record), op.gen, op.cell, op.sliding, op.tag,
                   actual - op.amount);
        internal::SyncLink* link = sync.load(std::memory_order_acquire);
        if (link != nullptr) {
          MarkDirty(link, op.record, op.gen);
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

}  // namespace plangate
