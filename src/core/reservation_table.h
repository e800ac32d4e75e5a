// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// reservation_table.h: what each admitted check counted, until committed.
//
// A fixed array of slots. A check claims a free slot (lock-free CAS, starting
// at a per-thread cursor), writes the cells it charged and publishes the
// slot as Pending. Commit or the expiry sweep claims a Pending slot by CAS to
// Settling, adjusts the cells and frees it, remembering how it ended so that
// a repeated commit of the same handle is recognised.
//
// Thread safety: all methods are safe to call concurrently. A slot's
// non-atomic fields belong to whoever moved it to Filling or Settling.

#ifndef PLANGATE_CORE_RESERVATION_TABLE_H_
#define PLANGATE_CORE_RESERVATION_TABLE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "internal/huge_array.h"

namespace plangate::internal {

// The most limits one request can be counted against.
inline constexpr int kMaxReservedOps = 16;

// One charged cell: where, under which record generation and window tag,
// how much of which meter.
struct ReservedOp {
  uint32_t record = 0;
  uint16_t tag = 0;
  uint8_t cell = 0;
  uint8_t gen = 0;
  uint16_t meter = 0;
  bool sliding = false;
  bool release = false;  // in flight (concurrent): given back at any settle
  int64_t amount = 0;
};

enum class SlotState : uint8_t { kFree = 0, kFilling, kPending, kSettling };
enum class SlotOutcome : uint8_t {
  kNone = 0,
  kApplied,
  kRefunded,
  kExpired,
  // On a Pending slot: its settle must visit the ops (some are given back
  // at any settle), so Release may not just free it.
  kMustSettle,
};

struct alignas(64) ReservationSlot {
  // ctrl: [generation:32][state:8][outcome:8] (high to low: gen << 16).
  std::atomic<uint64_t> ctrl{0};
  std::atomic<int64_t> expires_ms{0};
  uint64_t request_id = 0;
  int num_ops = 0;
  // The account record (index, generation) and the wallet debit it held.
  uint32_t wallet_record = 0;
  uint8_t wallet_gen = 0;
  bool must_settle = false;  // some op has `release` (see kMustSettle)
  int64_t wallet_micros = 0;
  ReservedOp ops[kMaxReservedOps];

  static uint32_t Generation(uint64_t c) {
    return static_cast<uint32_t>(c >> 16);
  }
  static SlotState State(uint64_t c) {
    return static_cast<SlotState>((c >> 8) & 0xff);
  }
  static SlotOutcome Outcome(uint64_t c) {
    return static_cast<SlotOutcome>(c & 0xff);
  }
  static uint64_t Make(uint32_t gen, SlotState s, SlotOutcome o) {
    return (uint64_t{gen} << 16) | (uint64_t{static_cast<uint8_t>(s)} << 8) |
           static_cast<uint8_t>(o);
  }
};

enum class SettleClaim : uint8_t { kOk, kAlreadySettled, kExpired, kUnknown };

class ReservationTable {
 public:
  explicit ReservationTable(size_t capacity);

  // Claims a free slot for filling; nullptr when none is found within a
  // bounded scan. Sets *index and *generation (never 0). Inline: the slot
  // at this thread's cursor, usually free; AcquireScan otherwise. (Always
  // inlined: GCC kept it out of line in the synced fast check.)
  ABSL_ATTRIBUTE_ALWAYS_INLINE ReservationSlot* Acquire(uint32_t* index,
                                                        uint32_t* generation) {
    // The cursor is kept + 1, so that 0 (every thread's first value, a
    // constant initializer: no TLS init call) sends the first Acquire to
    // AcquireScan, which seeds it.
    const uint32_t i = tls_cursor_plus_1 - 1;
    if (ABSL_PREDICT_TRUE(i < capacity_)) {
      ReservationSlot& slot = (*slots_)[i];
      uint64_t c = slot.ctrl.load(std::memory_order_relaxed);
      if (ABSL_PREDICT_TRUE(ReservationSlot::State(c) == SlotState::kFree)) {
        const uint32_t gen = ReservationSlot::Generation(c) + 1;
        // Acquire: the previous owner's writes to the slot happen before
        // ours. (gen == 0, once in 2^32 reuses, goes to the scan: 0 marks
        // an empty Reservation handle.)
        if (ABSL_PREDICT_TRUE(gen != 0) &&
            slot.ctrl.compare_exchange_strong(
                c,
                ReservationSlot::Make(gen, SlotState::kFilling,
                                      SlotOutcome::kNone),
                std::memory_order_acquire, std::memory_order_relaxed)) {
          // The cursor stays: a check committed before this thread's next
          // one leaves the slot free again, and its cache lines hot (a new
          // slot per check would cost a line from memory each time). A
          // repeated commit of the old handle still meets a newer
          // generation: already settled.
          *index = i;
          *generation = gen;
          return &slot;
        }
      }
    }
    return AcquireScan(index, generation);
  }
  // Makes a filled slot visible to Commit and the expiry sweep.
  void Publish(ReservationSlot* slot, uint32_t generation, int64_t expires_ms) {
    slot->expires_ms.store(expires_ms, std::memory_order_relaxed);
    // Release: the ops written while Filling are visible to whoever claims
    // the slot from Pending with an acquire CAS.
    slot->ctrl.store(
        ReservationSlot::Make(
            generation, SlotState::kPending,
            slot->must_settle ? SlotOutcome::kMustSettle : SlotOutcome::kNone),
        std::memory_order_release);
  }
  // Gives back an acquired slot that ended up unused.
  void Abandon(ReservationSlot* slot, uint32_t generation);

  // Frees slot `index` as applied if it is Pending under `generation`, in
  // one CAS: a settle that changes nothing (success, no actual amounts).
  // false when it is not (then BeginSettle says why).
  bool Release(uint32_t index, uint32_t generation) {
    if (index >= capacity_) return false;
    uint64_t expected = ReservationSlot::Make(generation, SlotState::kPending,
                                              SlotOutcome::kNone);
    // Relaxed: nothing in the slot is read or written by this settle, and
    // the next owner's Acquire reads nothing we wrote.
    return (*slots_)[index].ctrl.compare_exchange_strong(
        expected,
        ReservationSlot::Make(generation, SlotState::kFree,
                              SlotOutcome::kApplied),
        std::memory_order_relaxed, std::memory_order_relaxed);
  }
  // Claims slot `index` for settling if it is Pending under `generation`.
  SettleClaim BeginSettle(uint32_t index, uint32_t generation,
                          ReservationSlot** slot);
  // Tries to claim a Pending slot whose expiry has passed (for the sweep).
  bool BeginExpire(uint32_t index, int64_t now_ms, uint32_t* generation);
  void EndSettle(ReservationSlot* slot, uint32_t generation,
                 SlotOutcome outcome);

  ReservationSlot& at(uint32_t index) { return (*slots_)[index]; }
  size_t capacity() const { return capacity_; }
  // Slots Pending now (a scan; not for the hot path).
  size_t CountPending() const;

 private:
  // Acquire's slow half: a bounded scan from the cursor (seeded here).
  ReservationSlot* AcquireScan(uint32_t* index, uint32_t* generation);

  // Where this thread looks for a free slot next, + 1 (0: not seeded).
  static inline thread_local uint32_t tls_cursor_plus_1 = 0;

  std::unique_ptr<HugeArray<ReservationSlot>> slots_;
  size_t capacity_;
};

}  // namespace plangate::internal

#endif  // PLANGATE_CORE_RESERVATION_TABLE_H_
