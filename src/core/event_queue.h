// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// event_queue.h: a bounded multi-producer queue (threshold crossings, and
// the sync component's dirty records and closed windows).
//
// Checks push; one drainer pops. Slots carry a sequence number
// (the classic bounded-queue design): a producer claims a position with a
// CAS on the tail, writes the slot and publishes it by a release store of
// its sequence; the consumer acquires the sequence before reading. When the
// queue is full the push fails and the caller counts a drop: a check never
// waits.
//
// Thread safety: Push from any number of threads; Pop from one thread at a
// time (callers serialize it).

#ifndef PLANGATE_CORE_EVENT_QUEUE_H_
#define PLANGATE_CORE_EVENT_QUEUE_H_

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace plangate::internal {

struct RawEvent {
  uint32_t record = 0;
  uint8_t gen = 0;
  uint8_t kind = 0;
  uint16_t limit_index = 0;
  int32_t plan = 0;
  int64_t window_start_ms = 0;
  int64_t window_end_ms = 0;
  int64_t used = 0;
  int64_t limit = 0;
};

template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity)
      : mask_(std::bit_ceil(capacity < 2 ? size_t{2} : capacity) - 1),
        slots_(std::make_unique<Slot[]>(mask_ + 1)) {
    for (size_t i = 0; i <= mask_; ++i) {
      slots_[i].seq.store(i, std::memory_order_relaxed);
    }
  }

  bool Push(const T& e) {
    size_t pos = tail_.load(std::memory_order_relaxed);
    for (;;) {
      Slot& slot = slots_[pos & mask_];
      // Acquire: the consumer's release of seq (slot free) happens before
      // our write of the slot.
      const size_t seq = slot.seq.load(std::memory_order_acquire);
      const auto diff =
          static_cast<std::ptrdiff_t>(seq) - static_cast<std::ptrdiff_t>(pos);
      if (diff == 0) {
        if (tail_.compare_exchange_weak(pos, pos + 1,
                                        std::memory_order_relaxed)) {
          slot.event = e;
          slot.seq.store(pos + 1, std::memory_order_release);
          return true;
        }
      } else if (diff < 0) {
        return false;  // full
      } else {
        pos = tail_.load(std::memory_order_relaxed);
      }
    }
  }

  // Consumer only: entries pushed and not popped yet (one a producer is
  // still writing included: Pop may not return it yet).
  size_t Backlog() const {
    return tail_.load(std::memory_order_relaxed) - head_;
  }

  bool Pop(T* out) {
    Slot& slot = slots_[head_ & mask_];
    if (slot.seq.load(std::memory_order_acquire) != head_ + 1) return false;
    *out = slot.event;
    slot.seq.store(head_ + mask_ + 1, std::memory_order_release);
    ++head_;
    return true;
  }

 private:
  struct Slot {
    std::atomic<size_t> seq{0};
    T event;
  };
  const size_t mask_;
  std::unique_ptr<Slot[]> slots_;
  alignas(64) std::atomic<size_t> tail_{0};
  alignas(64) size_t head_ = 0;  // consumer only
};

using EventQueue = BoundedQueue<RawEvent>;

}  // namespace plangate::internal

#endif  // PLANGATE_CORE_EVENT_QUEUE_H_
