// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// cell_ops.h: every write the hot path makes to a counter cell or a wallet.
//
// Memory orders, in one place:
//  - A cell is one self-contained 64-bit word ([generation][tag][count],
//    counter_table.h), changed only by CAS; no other memory is published
//    through it. Loads that evaluate a limit are relaxed: the charge's CAS
//    re-checks against the very word it replaces.
//  - Charges and adjustments succeed with seq_cst. Two reasons, both
//    Dekker pairs with the sync thread (sync_link.h): the check loads the
//    record's change-log sequences after its charge, and the sync thread
//    stores the one it consumed before it loads the cells; and the check
//    re-reads its lease ceiling after its charge, and the sync thread
//    stores a lowered ceiling before it reads the cell. Only the enforcer
//    writes cells: the sync thread reads them. On x86 a seq_cst CAS is the same
//    `lock cmpxchg` as a relaxed one. Failed CASes are relaxed (they only
//    return the current word).
//  - The second cell of a sliding pair (the previous window) is written by
//    the check that rolled the pair over, with a relaxed store right after
//    its CAS; a racing reader may see the old previous count for an
//    instant, which can only make it deny, never admit past a cap.
//  - A wallet balance is a self-contained value, like a cell: relaxed CAS.
//
// Thread safety: every function may run on any number of threads at once.

#ifndef PLANGATE_CORE_CELL_OPS_H_
#define PLANGATE_CORE_CELL_OPS_H_

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "core/counter_table.h"
#include "core/sync_link.h"
#include "core/window.h"

namespace plangate::internal {

// Outcome of charging one cell.
// kLeaseShrank: the sync lowered this instance's ceiling under the charge.
enum class Charge { kOk, kOver, kStale, kLeaseShrank };

// What a charge needs to know of its cell.
struct CellTarget {
  SubjectRecord* rec;
  uint32_t index;  // the record's index in the table (for the sync)
  uint8_t gen;     // the record's generation, as cells embed it
  uint8_t cell;
  bool sliding;
  bool synced;  // the sync component wants closed windows of this cell
};

// After a charge that replaced `word` (of another window than w's) with
// a count in w: the old window's final count goes to the sync for a synced
// cell, and a sliding pair's previous-window cell takes what was current.
// Written by the charging thread only; out of line (once per window).
ABSL_ATTRIBUTE_NOINLINE inline void NoteRollover(const CellTarget& t,
                                                 const Window& w, uint64_t word,
                                                 SyncLink* sync) {
  if (sync != nullptr && t.synced) {
    // The old window's final count (zero too: it closes the sync's state
    // of that window): only the sync component needs it.
    if (!sync->closed.Push(ClosedWindow{t.index, t.cell, word})) {
      sync->closed_overflow.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (t.sliding) {
    // What was current is now previous.
    const uint32_t prev_tag = (w.tag - 1) & Cell::kTagMask;
    const int64_t carried = Cell::Tag(word) == prev_tag ? Cell::Count(word) : 0;
    t.rec->cells[t.cell + 1].store(Cell::Pack(t.gen, prev_tag, carried),
                                   std::memory_order_relaxed);
  }
}

// Adds `amount` to the cell's count in window `w`, refusing when `enforce`
// and the estimate would pass `hard`. `word` and `prev_word` are the words
// the evaluation decided on and `*seen` their view; the CAS expects `word`,
// so the common uncontended case re-reads nothing. On return *seen is the
// view the charge was decided on; *raced (if given) says whether that is
// another than the one passed in (a racing charge came first). `remote`:
// the other instances' usage (sync_link.h), which the limit re-check adds.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline Charge ChargeCell(
    const CellTarget& t, int64_t hard, const Window& w, int64_t now_ms,
    int64_t amount, bool enforce, uint64_t word, CellView* seen, SyncLink* sync,
    bool* raced = nullptr, CellView remote = {0, 0}) {
  std::atomic<uint64_t>& cur = t.rec->cells[t.cell];
  for (;;) {
    const int64_t next = std::min(seen->current + amount, kMaxCount);
    if (ABSL_PREDICT_TRUE(cur.compare_exchange_weak(
            word, Cell::Pack(t.gen, w.tag, next), std::memory_order_seq_cst,
            std::memory_order_relaxed))) {
      break;
    }
    // Lost a race (or a spurious failure): decide again on what is there.
    if (raced != nullptr) *raced = true;
    if (Cell::Gen(word) != t.gen) return Charge::kStale;
    const uint64_t prev_word =
        t.sliding ? t.rec->cells[t.cell + 1].load(std::memory_order_relaxed)
                  : 0;
    *seen = ViewOf(word, prev_word, w.tag, t.sliding);
    if (enforce && Estimate(Plus(*seen, remote), w, now_ms) + amount > hard) {
      return Charge::kOver;
    }
  }
  if (ABSL_PREDICT_FALSE(Cell::Tag(word) != w.tag)) {
    NoteRollover(t, w, word, sync);
  }
  return Charge::kOk;
}

// Adds delta (possibly negative) to the count of window `tag`, if that
// window is still the current or (sliding) the previous one. Counts never
// go below zero.
inline void AdjustCell(SubjectRecord& rec, uint8_t gen, uint8_t cell,
                       bool sliding, uint32_t tag, int64_t delta) {
  for (int c = 0; c < (sliding ? 2 : 1); ++c) {
    std::atomic<uint64_t>& a = rec.cells[cell + c];
    uint64_t word = a.load(std::memory_order_relaxed);
    for (;;) {
      if (Cell::Gen(word) != gen || Cell::Tag(word) != tag) break;
      const int64_t next =
          std::clamp(Cell::Count(word) + delta, int64_t{0}, kMaxCount);
      if (a.compare_exchange_weak(word, Cell::Pack(gen, tag, next),
                                  std::memory_order_seq_cst,
                                  std::memory_order_relaxed)) {
        return;
      }
    }
  }
}

// Moves `delta` micro-units into the wallet (negative: out of it), never
// below zero. Returns false, changing nothing, when the balance is short.
inline bool MoveWallet(std::atomic<int64_t>& wallet, int64_t delta) {
  int64_t balance = wallet.load(std::memory_order_relaxed);
  for (;;) {
    if (balance + delta < 0) return false;
    if (wallet.compare_exchange_weak(balance, balance + delta,
                                     std::memory_order_relaxed,
                                     std::memory_order_relaxed)) {
      return true;
    }
  }
}

// Like MoveWallet out of the wallet, but takes what is there when the
// balance is short.
inline void DrainWallet(std::atomic<int64_t>& wallet, int64_t amount) {
  int64_t balance = wallet.load(std::memory_order_relaxed);
  while (!wallet.compare_exchange_weak(
      balance, std::max<int64_t>(0, balance - amount),
      std::memory_order_relaxed, std::memory_order_relaxed)) {
  }
}

}  // namespace plangate::internal

#endif  // PLANGATE_CORE_CELL_OPS_H_
