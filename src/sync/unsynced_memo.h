// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// unsynced_memo.h: per record, the cells its last description found to
// hold no synced counter (and the caps source that description was read
// from), and the cells that were ever given a counter state.
//
// Every cell of a new record carries its generation, so the sync strand,
// reading a changed record, meets cells that are in use by nothing (or by
// a local-only limit) and has no counter state for them. Without the memo
// each such read described the record again (its key, its plan, a vector
// of cells: allocations) only to learn that those cells are not synced.
// The memo answers that from what the last description found, while its
// caps source is unchanged (CapsSourceChanged: a reload, a plan change,
// new overrides, a reused record all change it), and lets the read pass
// over such a cell without looking for its state at all unless one was
// ever made for it (a plan change can leave a state on a cell that is no
// longer synced: that one is still folded).
//
// Thread safety: the sync strand's alone (not thread-safe).

#ifndef PLANGATE_SYNC_UNSYNCED_MEMO_H_
#define PLANGATE_SYNC_UNSYNCED_MEMO_H_

#include <cstddef>
#include <cstdint>

#include "absl/container/flat_hash_map.h"
#include "core/sync_link.h"
#include "sync/record_view.h"

namespace plangate::internal {

class UnsyncedMemo {
 public:
  // The most records remembered; past it the memo starts again empty (a
  // record forgotten is only described once more).
  static constexpr size_t kMaxRecords = size_t{1} << 20;

  // The cells (bit c for cell c) of record `index` of generation `gen`
  // that ReadRecord may pass over at `now_ms`: not synced, as the record's
  // last description found them (its caps source unchanged since), and
  // never given a counter state in this generation. 0 when unknown.
  uint32_t Skippable(const PublishedFacts& facts, uint32_t index, uint8_t gen,
                     int64_t now_ms) const {
    const auto it = entries_.find(index);
    if (it == entries_.end() || it->second.gen != gen) return 0;
    const Entry& e = it->second;
    if (e.unsynced == 0 || CapsSourceChanged(facts, e.source, now_ms)) {
      return 0;
    }
    return e.unsynced & ~e.stated;
  }

  // What description `info` of record (index, gen) found.
  void Remember(uint32_t index, uint8_t gen, const SyncRecordInfo& info) {
    uint32_t synced = 0;
    for (const SyncCellInfo& x : info.cells) synced |= 1u << x.cell;
    Entry& e = Slot(index, gen);
    e.unsynced = ~synced & kAllCells;
    e.source = info.source;
  }

  // A counter state was made for cell `cell` of record (index, gen).
  void NoteState(uint32_t index, uint8_t gen, int cell) {
    Slot(index, gen).stated |= 1u << cell;
  }

 private:
  static constexpr uint32_t kAllCells = (1u << kCellsPerSubject) - 1;
  struct Entry {
    uint8_t gen = 0;
    uint32_t unsynced = 0;  // as last described
    uint32_t stated = 0;    // cells given a state in this generation
    CapsSource source;
  };
  // The entry of (index, gen): a new one for a new generation.
  Entry& Slot(uint32_t index, uint8_t gen) {
    if (entries_.size() >= kMaxRecords && !entries_.contains(index)) {
      entries_.clear();
    }
    Entry& e = entries_[index];
    if (e.gen != gen) e = Entry{gen, 0, 0, CapsSource{}};
    return e;
  }
  absl::flat_hash_map<uint32_t, Entry> entries_;
};

}  // namespace plangate::internal

#endif  // PLANGATE_SYNC_UNSYNCED_MEMO_H_
