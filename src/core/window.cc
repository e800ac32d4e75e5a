// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "core/window.h"

#include "internal/period.h"

namespace plangate::internal {

Window PeriodWindowSlow(SubjectRecord& account, int slot, int64_t now_ms) {
  // Rollover or first use. The anchor is re-read after the cache store; if
  // UpsertAccount moved it meanwhile, the entry we wrote may describe the
  // old anchor, so drop it. (seq_cst: UpsertAccount stores the anchor, then
  // clears the cache; one of the two sides sees the other.)
  const int64_t anchor = account.anchor_ms.load(std::memory_order_seq_cst);
  const WindowInstance w = PeriodContaining(anchor, slot == 0 ? 1 : 12, now_ms);
  if (w.start_ms >= 0 && w.start_ms <= kMaxCachedStartMs) {
    const uint64_t packed =
        (static_cast<uint64_t>(w.start_ms) << kPeriodLenBits) |
        static_cast<uint64_t>((w.end_ms - w.start_ms) / kDayMs);
    account.PeriodCache(slot).store(packed, std::memory_order_seq_cst);
    if (account.anchor_ms.load(std::memory_order_seq_cst) != anchor) {
      uint64_t expected = packed;
      account.PeriodCache(slot).compare_exchange_strong(
          expected, 0, std::memory_order_seq_cst);
    }
  }
  return {w.start_ms, w.end_ms, TagOf(FloorDiv(w.start_ms, kDayMs))};
}

int64_t RetryAt(WindowMode mode, int64_t hard, const CellView& v,
                const Window& w, int64_t amount) {
  if (amount > hard) return 0;  // never fits
  if (mode != WindowMode::kSliding) return w.end_ms;
  const int64_t len = w.end_ms - w.start_ms;
  const int64_t room = hard - v.current - amount;
  if (room >= 0 && v.previous > 0) {
    // Need previous * (end - t) / len <= room.
    const int64_t t =
        w.end_ms -
        static_cast<int64_t>((static_cast<Int128>(room) * len) / v.previous);
    return std::max(t, w.start_ms);
  }
  // Next window: its previous is our current.
  if (v.current == 0) return w.end_ms;
  const int64_t room_next = hard - amount;
  return w.end_ms + len -
         static_cast<int64_t>((static_cast<Int128>(room_next) * len) /
                              v.current);
}

const char* LimitStateName(bool unlimited, int64_t used, int64_t limit,
                           int64_t hard, int64_t nudge_at) {
  return unlimited          ? "unlimited"
         : used >= hard     ? "exhausted"
         : used > limit     ? "grace"
         : used >= nudge_at ? "soft_nudge"
                            : "ok";
}

}  // namespace plangate::internal
