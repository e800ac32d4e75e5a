// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "core/reservation_table.h"

#include <algorithm>
#include <functional>

#include "absl/base/optimization.h"

namespace plangate::internal {
namespace {

// A check gives up looking for a free slot after this many probes.
constexpr size_t kMaxScan = 64;

}  // namespace

ReservationTable::ReservationTable(size_t capacity)
    : slots_(std::make_unique<HugeArray<ReservationSlot>>(
          std::max<size_t>(capacity, 1))),
      capacity_(std::max<size_t>(capacity, 1)) {}

ReservationSlot* ReservationTable::AcquireScan(uint32_t* index,
                                               uint32_t* generation) {
  uint32_t i = tls_cursor_plus_1 - 1;
  if (tls_cursor_plus_1 == 0) {
    // Seeded from the address of the variable itself, so threads start
    // apart without a syscall.
    i = static_cast<uint32_t>(std::hash<const void*>{}(&tls_cursor_plus_1) >>
                              6);
  }
  if (ABSL_PREDICT_FALSE(i >= capacity_)) {
    i = static_cast<uint32_t>(i % capacity_);
  }
  const size_t scan = std::min(kMaxScan, capacity_);
  for (size_t n = 0; n < scan; ++n) {
    ReservationSlot& slot = (*slots_)[i];
    uint64_t c = slot.ctrl.load(std::memory_order_relaxed);
    if (ReservationSlot::State(c) == SlotState::kFree) {
      uint32_t gen = ReservationSlot::Generation(c) + 1;
      if (gen == 0) gen = 1;  // 0 marks an empty Reservation handle
      // Acquire: the previous owner's writes to the slot happen before ours.
      if (slot.ctrl.compare_exchange_strong(
              c,
              ReservationSlot::Make(gen, SlotState::kFilling,
                                    SlotOutcome::kNone),
              std::memory_order_acquire, std::memory_order_relaxed)) {
        tls_cursor_plus_1 = i + 2;
        *index = i;
        *generation = gen;
        return &slot;
      }
    }
    if (++i == capacity_) i = 0;
  }
  tls_cursor_plus_1 = i + 1;
  return nullptr;
}

void ReservationTable::Abandon(ReservationSlot* slot, uint32_t generation) {
  slot->ctrl.store(
      ReservationSlot::Make(generation, SlotState::kFree, SlotOutcome::kNone),
      std::memory_order_release);
}

SettleClaim ReservationTable::BeginSettle(uint32_t index, uint32_t generation,
                                          ReservationSlot** slot) {
  if (index >= capacity_) return SettleClaim::kUnknown;
  ReservationSlot& s = (*slots_)[index];
  uint64_t c = s.ctrl.load(std::memory_order_acquire);
  for (;;) {
    const uint32_t current = ReservationSlot::Generation(c);
    if (current != generation) {
      // Generations only grow, and only once the previous reservation in
      // the slot was settled: a newer one means ours was settled before.
      return current > generation ? SettleClaim::kAlreadySettled
                                  : SettleClaim::kUnknown;
    }
    switch (ReservationSlot::State(c)) {
      case SlotState::kPending:
        break;
      case SlotState::kFree:
        return ReservationSlot::Outcome(c) == SlotOutcome::kExpired
                   ? SettleClaim::kExpired
                   : SettleClaim::kAlreadySettled;
      case SlotState::kSettling:
        return SettleClaim::kAlreadySettled;
      case SlotState::kFilling:
        return SettleClaim::kUnknown;
    }
    if (s.ctrl.compare_exchange_weak(
            c,
            ReservationSlot::Make(generation, SlotState::kSettling,
                                  SlotOutcome::kNone),
            std::memory_order_acquire, std::memory_order_acquire)) {
      *slot = &s;
      return SettleClaim::kOk;
    }
  }
}

bool ReservationTable::BeginExpire(uint32_t index, int64_t now_ms,
                                   uint32_t* generation) {
  ReservationSlot& s = (*slots_)[index];
  uint64_t c = s.ctrl.load(std::memory_order_acquire);
  if (ReservationSlot::State(c) != SlotState::kPending ||
      s.expires_ms.load(std::memory_order_relaxed) > now_ms) {
    return false;
  }
  const uint32_t gen = ReservationSlot::Generation(c);
  if (!s.ctrl.compare_exchange_strong(
          c,
          ReservationSlot::Make(gen, SlotState::kSettling, SlotOutcome::kNone),
          std::memory_order_acquire, std::memory_order_relaxed)) {
    return false;
  }
  // The expiry might have been re-armed by a newer owner between the load
  // and the CAS only if the generation changed, which the CAS rules out.
  *generation = gen;
  return true;
}

void ReservationTable::EndSettle(ReservationSlot* slot, uint32_t generation,
                                 SlotOutcome outcome) {
  slot->ctrl.store(ReservationSlot::Make(generation, SlotState::kFree, outcome),
                   std::memory_order_release);
}

size_t ReservationTable::CountPending() const {
  size_t n = 0;
  for (size_t i = 0; i < capacity_; ++i) {
    if (ReservationSlot::State((*slots_)[i].ctrl.load(
            std::memory_order_relaxed)) == SlotState::kPending) {
      ++n;
    }
  }
  return n;
}

}  // namespace plangate::internal
