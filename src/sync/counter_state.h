// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// counter_state.h: what the sync strand knows of one counter (subject,
// limit, window) on this instance: its own usage, what Redis last said, the
// rights (lease, down reserve) it holds, and its state while Redis is down.
//
// Rights only shrink at the instance's request, and count as gone from the
// moment the request is sent (redis_sync.cc, MakeCommand), so LeaseLeft and
// ReserveLeft never exceed what Redis set aside for the instance.
//
// Thread safety: owned by the sync strand; no synchronization.

#ifndef PLANGATE_SYNC_COUNTER_STATE_H_
#define PLANGATE_SYNC_COUNTER_STATE_H_

#include <algorithm>
#include <cstdint>
#include <string>

#include "core/sync_link.h"
#include "sync/record_view.h"

namespace plangate::internal {

// The state of one counter (subject, limit, window) on this instance.
struct CounterState {
  uint32_t index = 0;
  uint8_t gen = 0;
  uint8_t cell = 0;
  uint32_t tag = 0;
  std::string key;
  // A sliding window's: the previous window's key (empty otherwise).
  std::string prev_key;
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  SyncCellInfo info;
  CapsSource source;  // what info's caps were read from

  // Local accounting.
  int64_t own = 0;      // this instance's usage in the window: the cell's
  bool closed = false;  // the window's final count is folded in
  bool gone = false;    // the record was reclaimed: `own` is final
  int await_rounds = 0;

  // Redis.
  bool synced = false;      // a reply was applied
  bool in_flight = false;   // part of the batch on the wire
  int64_t sent = 0;         // cumulative in the batch on the wire
  int64_t acked = 0;        // cumulative Redis acknowledged last
  int64_t total = 0;        // cluster total at the last reply
  int64_t lease = 0;        // our outstanding lease at the last reply
  int64_t reserve = 0;      // our down reserve at the last reply
  int64_t alloc = 0;        // t + L + D + P at the last reply
  int64_t reply_cum = 0;    // the cumulative that reply answered
  int64_t instances = 1;    // instances active on the counter
  uint64_t sent_seq = 0;    // sequence number of the call on the wire
  uint64_t acked_seq = 0;   // the last one Redis applied (0: none)
  bool recovering = false;  // the last reply said: nothing granted yet
  bool lease_mode = false;
  bool release_lease = false;
  int64_t lease_valid_until = 0;  // steady ms: refresh before this
  int64_t last_sent_own = 0;
  int64_t round_units = 0;  // decaying max of own usage per round
  int64_t want = 0;         // lease wanted in the batch on the wire
  int64_t last_reply = 0;   // steady ms
  int64_t last_change = 0;  // steady ms of the last change of `own`

  // Redis down.
  bool down_baked = false;
  int64_t down_allowance = 0;
  int64_t down_own = 0;

  // Sent again after every reconnect: if Redis restarted without its data
  // or failed over, the cumulative values restore what it lost.
  bool reassert = false;

  bool Pending() const { return own != acked || !synced || reassert; }
  bool HoldsRights() const { return lease > 0 || reserve > 0; }
  // What this instance may still admit on its lease and its reserve
  // (usage comes out of the lease first, as in the Function).
  // A refund below the reply's cumulative gives units back to the cluster
  // (t falls, the lease does not grow), so usage counts from zero up.
  int64_t LeaseLeft() const {
    return std::max<int64_t>(0, lease - std::max<int64_t>(0, own - reply_cum));
  }
  int64_t ReserveLeft() const {
    const int64_t past_lease = std::max<int64_t>(0, (own - reply_cum) - lease);
    return std::max<int64_t>(0, reserve - past_lease);
  }
};

}  // namespace plangate::internal

#endif  // PLANGATE_SYNC_COUNTER_STATE_H_
