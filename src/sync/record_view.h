// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// record_view.h: what a record's cells mean, as the sync strand reads it
// from the facts the enforcer publishes. The sync calls no enforcer code to
// understand its own records: it reads the words below, each with one
// writer on the enforcer's side (docs/architecture.md, "The enforcer and
// the sync"), and applies the catalog's rules (caps, effective plan,
// window arithmetic: pure functions of those words) itself.
//
//   fact                          writer                 how it is read
//   record ctrl (state, gen)      the hot path (insert,  acquire, before and
//                                 reclaim)               after the key
//   record key (scope, account,   the hot path (insert)  behind ctrl: stable
//   sub)                                                 while the gen lives
//   account meta (plan, state),   the admin path         acquire
//   profile (overrides)           (UpsertAccount)
//   account anchor_ms             the admin path         seq_cst
//   the compiled catalog          the admin path         acquire; every
//                                 (Reload)               compilation lives
//                                                        as long as the
//                                                        enforcer
//
// A description is a snapshot. It names what its caps were read from
// (CapsSource): when that changes, the sync strand describes the record
// again and its counters take the new caps (an upgrade mid-window raises
// the leases at once).
//
// Thread safety: the functions read only atomics and immutable data; the
// sync strand calls them, one description per SyncRecordInfo.

#ifndef PLANGATE_SYNC_RECORD_VIEW_H_
#define PLANGATE_SYNC_RECORD_VIEW_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "core/sync_link.h"
#include "core/window.h"
#include "plangate/catalog.h"

namespace plangate::internal {

// One synced counter cell of a record, as the sync component needs it.
struct SyncCellInfo {
  uint8_t cell = 0;
  uint16_t meter = 0;
  std::string meter_name;
  WindowUnit window = WindowUnit::kBillingPeriod;
  uint32_t window_count = 1;
  WindowMode mode = WindowMode::kFixed;
  // The window current at `now`.
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  uint32_t tag = 0;
  // Caps of the limit that owns the cell in the subject's plan; when no
  // limit of the plan uses the cell, limit_index < 0 and the caps are
  // unlimited (the counter is still shared).
  int plan = -1;
  int limit_index = -1;
  bool unlimited = true;
  int64_t limit = 0;
  int64_t hard = 0;
  int64_t nudge_at = 0;
  bool leasable = false;
  RedisDownPolicy down_policy = RedisDownPolicy::kFailOpen;
};

// Whether two descriptions of a cell are of one counter (meter and window).
inline bool SameCounter(const SyncCellInfo& a, const SyncCellInfo& b) {
  return a.meter == b.meter && a.window == b.window &&
         a.window_count == b.window_count && a.mode == b.mode;
}

// What a description's caps were read from. When any of it changes (an
// upgrade or downgrade, a scheduled change coming due, new overrides, a
// Reload) the caps are described again (CapsSourceChanged).
struct CapsSource {
  bool has_account = false;  // false: no account record, no caps
  uint32_t account_index = 0;
  uint32_t account_ctrl = 0;  // the account record's ctrl when described
  const CompiledCatalog* catalog = nullptr;
  const AccountProfile* profile = nullptr;
  int plan = -1;  // the effective plan
  bool operator==(const CapsSource&) const = default;
};

struct SyncRecordInfo {
  Scope scope = Scope::kAccount;
  std::string account;
  std::string sub;
  std::vector<SyncCellInfo> cells;  // synced cells only
  CapsSource source;
};

// Describes the Live record `index` of generation `gen` at `now_ms`: its
// key and, per synced cell, the counter, its current window and the caps
// of the limit that owns it in the subject's effective plan. False when
// the record is gone or was reused while it was read.
bool DescribeRecord(const PublishedFacts& facts, uint32_t index, uint8_t gen,
                    int64_t now_ms, SyncRecordInfo* out);

// Whether the caps `source` was read from have changed by `now_ms`: a few
// atomic loads, no lookup, so the sync strand can ask on every change.
bool CapsSourceChanged(const PublishedFacts& facts, const CapsSource& source,
                       int64_t now_ms);

// The minimum balance the account record `index` (generation `gen`)'s
// effective plan requires of its wallet at `now_ms` (Plan::wallet
// min_balance_micros when the wallet is required, else 0); 0 when the
// record is gone.
int64_t WalletFloor(const PublishedFacts& facts, uint32_t index, uint8_t gen,
                    int64_t now_ms);

// The start and end of the window of `info`'s kind whose tag is `tag`,
// searching back from `info`'s current window (at most `max_back`
// windows); billing periods step back on the account's anchor.
bool WindowOfTag(const PublishedFacts& facts, uint32_t index,
                 const SyncCellInfo& info, uint32_t tag, int max_back,
                 int64_t* start_ms, int64_t* end_ms);

}  // namespace plangate::internal

#endif  // PLANGATE_SYNC_RECORD_VIEW_H_
