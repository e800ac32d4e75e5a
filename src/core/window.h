// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// window.h: window arithmetic, in one place. Which window instance a limit
// counts in at an instant, how a cell word reads in it, the sliding
// estimate and when a denied request could fit.
//
// Windows of a fixed length (seconds to 3650 days, "15m", "day") are
// aligned on the Unix epoch; billing periods (monthly, annual) start on the
// account's anchor and are cached in its record. A window instance is
// named in cells by its tag: its index (days since the epoch for periods)
// modulo 2^14.
//
// Thread safety: pure functions, except PeriodWindow, which reads and may
// refresh the account record's period cache (atomics; see window.cc).

#ifndef PLANGATE_CORE_WINDOW_H_
#define PLANGATE_CORE_WINDOW_H_

#include <algorithm>
#include <cstdint>

#include "core/compiled_catalog.h"
#include "core/counter_table.h"

namespace plangate::internal {

__extension__ typedef __int128 Int128;  // products of counts and ms

inline constexpr int64_t kDayMs = 86'400'000;

// A window instance as the hot path needs it. Trivially constructible: built
// whole, and kept in uninitialized arrays.
struct Window {
  int64_t start_ms;
  int64_t end_ms;
  uint32_t tag;
};

inline uint32_t TagOf(int64_t index) {
  return static_cast<uint32_t>(static_cast<uint64_t>(index) & Cell::kTagMask);
}

inline int64_t FloorDiv(int64_t a, int64_t b) {
  // Instants after the epoch and positive lengths (every hot-path call):
  // plain division.
  if (ABSL_PREDICT_TRUE(a >= 0 && b > 0)) return a / b;
  const int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// Packed period cache entry: start_ms << 9 | length_days; 0 when empty.
inline constexpr int kPeriodLenBits = 9;
inline constexpr int64_t kMaxCachedStartMs = (int64_t{1} << 44) - 1;

// The period of cache slot `slot` (0 monthly, 1 annual) containing now_ms,
// computed from the account's anchor, and cached. The slow half of
// PeriodWindow.
Window PeriodWindowSlow(SubjectRecord& account, int slot, int64_t now_ms);

// The current billing (slot 0) or annual (slot 1) period of an account
// record: a load and two compares except at rollover.
inline Window PeriodWindow(SubjectRecord& account, int slot, int64_t now_ms) {
  // Relaxed: the entry is a self-contained value; a stale one fails the
  // range test below or describes a period that did contain now.
  const uint64_t cached =
      account.PeriodCache(slot).load(std::memory_order_relaxed);
  const auto start = static_cast<int64_t>(cached >> kPeriodLenBits);
  const int64_t end =
      start +
      static_cast<int64_t>(cached & ((1u << kPeriodLenBits) - 1)) * kDayMs;
  if (ABSL_PREDICT_TRUE(start <= now_ms && now_ms < end)) {
    return {start, end, TagOf(start / kDayMs)};  // start >= 0: plain division
  }
  return PeriodWindowSlow(account, slot, now_ms);
}

// The window of length `len` ms containing now_ms, aligned on the epoch.
inline Window FixedWindowOf(int64_t len, int64_t now_ms) {
  const int64_t index = FloorDiv(now_ms, len);
  return {index * len, index * len + len, TagOf(index)};
}

// FixedWindowOf for now_ms >= 0 (the fast check's, which sends earlier
// instants to the general path): a plain division floors, without
// FloorDiv's sign tests.
inline Window FixedWindowAfterEpoch(int64_t len, int64_t now_ms) {
  const int64_t index = now_ms / len;
  return {index * len, index * len + len, TagOf(index)};
}

// The window `limit` counts in at now_ms; `account` is the subject's
// account record (its anchor defines billing periods).
inline Window CurrentWindow(const CompiledLimit& limit, SubjectRecord& account,
                            int64_t now_ms) {
  if (limit.window_ms != 0) return FixedWindowOf(limit.window_ms, now_ms);
  if (ABSL_PREDICT_FALSE(limit.concurrent)) return Window{0, 0, 0};
  return PeriodWindow(account, limit.window == WindowUnit::kAnnual ? 1 : 0,
                      now_ms);
}

// The current window of a cell used as (window, count): for callers that
// have a CellUse rather than a limit.
inline Window CurrentWindowOf(WindowUnit window, uint32_t count,
                              SubjectRecord& account, int64_t now_ms) {
  const int64_t len = WindowLengthMs(window, count);
  if (len != 0) return FixedWindowOf(len, now_ms);
  if (window == WindowUnit::kConcurrent) return Window{0, 0, 0};
  return PeriodWindow(account, window == WindowUnit::kAnnual ? 1 : 0, now_ms);
}

// Usage of one limit's counter as seen in its cell word(s). Trivially
// constructible, like Window.
struct CellView {
  int64_t current;   // count in the current window
  int64_t previous;  // count in the previous window (sliding only)
};

// This instance's view plus the other instances' (the sync's remote
// usage). Each part is below 2^42, so the sums fit and compare as they are.
inline CellView Plus(const CellView& own, const CellView& remote) {
  return {own.current + remote.current, own.previous + remote.previous};
}

inline CellView ViewOf(uint64_t cur_word, uint64_t prev_word, uint32_t tag,
                       bool sliding) {
  CellView v{0, 0};
  const uint32_t prev_tag = (tag - 1) & Cell::kTagMask;
  if (ABSL_PREDICT_TRUE(Cell::Tag(cur_word) == tag)) {
    v.current = Cell::Count(cur_word);
    if (sliding && Cell::Tag(prev_word) == prev_tag) {
      v.previous = Cell::Count(prev_word);
    }
  } else if (sliding && Cell::Tag(cur_word) == prev_tag) {
    v.previous = Cell::Count(cur_word);
  }
  return v;
}

// The sliding estimate: the current count plus the share of the previous
// window's count that still overlaps the trailing window.
inline int64_t Estimate(const CellView& v, const Window& w, int64_t now_ms) {
  if (v.previous == 0) return v.current;
  const int64_t len = w.end_ms - w.start_ms;
  const int64_t left = w.end_ms - now_ms;
  // 64-bit arithmetic whenever the product fits, 128-bit (a library call)
  // only for counts of 2^36 and more.
  const int64_t weighted =
      v.previous < (int64_t{1} << 36)
          ? v.previous * left / len
          : static_cast<int64_t>((static_cast<Int128>(v.previous) * left) /
                                 len);
  return v.current + weighted;
}

// The sliding estimate from plain numbers (reports, quotactl).
inline int64_t SlidingEstimate(int64_t current, int64_t previous,
                               int64_t start_ms, int64_t end_ms,
                               int64_t now_ms) {
  return Estimate(CellView{current, previous}, Window{start_ms, end_ms, 0},
                  now_ms);
}

// When a denied request of `amount` could fit under `hard`; 0 if never.
int64_t RetryAt(WindowMode mode, int64_t hard, const CellView& v,
                const Window& w, int64_t amount);

// A limit's standing at `used`: "ok", "soft_nudge", "grace", "exhausted"
// (the next request is denied) or "unlimited".
const char* LimitStateName(bool unlimited, int64_t used, int64_t limit,
                           int64_t hard, int64_t nudge_at);

}  // namespace plangate::internal

#endif  // PLANGATE_CORE_WINDOW_H_
