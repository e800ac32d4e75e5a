// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "core/fast_plan.h"

#include "core/compiled_catalog.h"

namespace plangate::internal {

FastPlan CompileFastPlan(const CompiledPlan& plan) {
  FastPlan fast;
  if (plan.uses_narrow_scope || plan.num_model_meters != 0 ||
      plan.limits.size() > fast.limits.size()) {
    return fast;
  }
  for (const CompiledLimit& c : plan.limits) {
    if (c.scope != Scope::kAccount || c.filtered || c.concurrent || c.shadow ||
        c.unlimited || !c.synced || !c.leasable) {
      return fast;
    }
    FastLimit& f = fast.limits[fast.num_limits++];
    f.window_ms = c.window_ms;
    f.limit = c.limit;
    f.hard = c.hard;
    f.nudge_at = c.nudge_at;
    f.default_amount = c.amount_meter == 0 ? 1 : 0;  // meter 0 is "requests"
    f.source = &c;
    f.op = c.op;
    f.ref = LimitRef{c.source->id, c.scope,        c.source->meter,
                     c.window,     c.window_count, c.mode};
    f.amount_meter = c.amount_meter;
    f.cell = c.cell;
    f.period_slot = c.window == WindowUnit::kAnnual ? 1 : 0;
    f.sliding = c.mode == WindowMode::kSliding;
  }
  if ((plan.key_kinds & (1u << static_cast<int>(KeyKind::kLive))) == 0) {
    return FastPlan{};
  }
  fast.gated = plan.source->models_restricted || plan.source->wallet.required;
  fast.enabled = true;
  return fast;
}

}  // namespace plangate::internal
