// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// fast_plan.h: a plan compiled once more, into the short program the
// common check runs (fast_check.cc).
//
// Most checks meet an active account whose plan limits the account only,
// with plain monthly, daily and per-minute caps, and ask for nothing the
// gates refuse. For such a plan, Compile() also builds a FastPlan: per
// limit, only the integers the check loop reads (window length, cell, caps,
// the amount it counts when the request lists none), side by side, so a
// check is one loop over a few cache-resident words instead of a walk over
// CompiledLimit and its options.
//
// The fast check handles only what it can decide without the general
// path's branches (admissions, and denials by a limit); everything else (a
// lease not ready, a profile with overrides, a past-due account, a wallet,
// a feature or model gate, a narrower scope...) falls back to the general
// path before anything is written. tests/core/fast_check_test.cc replays
// random traffic through both and compares every decision.
//
// Thread safety: immutable once built, as CompiledCatalog.

#ifndef PLANGATE_CORE_FAST_PLAN_H_
#define PLANGATE_CORE_FAST_PLAN_H_

#include <array>
#include <cstdint>

#include "core/reservation_table.h"
#include "plangate/catalog.h"
#include "plangate/decision.h"

namespace plangate::internal {

struct CompiledLimit;
struct CompiledPlan;

struct FastLimit {
  int64_t window_ms;  // a fixed-length window's length; 0: a period
  int64_t limit;      // the nominal cap
  int64_t hard;       // the cap with grace
  int64_t nudge_at;   // warn soft_nudge once used + amount >= nudge_at
  // What the limit counts of a request that lists no amounts: 1 for the
  // requests meter, else 0.
  int64_t default_amount;
  const CompiledLimit* source;  // inside the CompiledPlan this belongs to
  ReservedOp op;                // CompiledLimit::op
  LimitRef ref;                 // what a Decision names the limit by
  uint16_t amount_meter;
  uint8_t cell;
  uint8_t period_slot;  // for a period: 0 billing, 1 annual
  bool sliding;
  // (Every fast limit is synced and leasable with a sync attached:
  // CompileFastPlan takes no other.)
};

struct FastPlan {
  bool enabled = false;  // the plan has the shape the fast check handles
  uint8_t num_limits = 0;
  // Gates the fast check leaves to the general path when they apply.
  // (a managed-model allowlist or a required wallet: for managed traffic)
  bool gated = false;
  std::array<FastLimit, kCellsPerSubject> limits{};
};

// The fast program of `plan`, whose limits must no longer move (it points
// into them). Disabled when the plan has anything but account limits of
// fixed or sliding windows with caps: a narrower scope, a filter (traffic,
// models, tools), a concurrency, shadow or unlimited limit, per-model
// usage, or no live keys.
FastPlan CompileFastPlan(const CompiledPlan& plan);

}  // namespace plangate::internal

#endif  // PLANGATE_CORE_FAST_PLAN_H_
