// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "core/compiled_catalog.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "core/reservation_table.h"
#include "fmt/format.h"

namespace plangate::internal {

int CellLayout::Assign(Scope s, uint16_t meter, WindowUnit window,
                       uint32_t count, WindowMode mode) {
  ScopeCells& cells = cells_[static_cast<int>(s)];
  for (int i = 0; i < kCellsPerSubject; ++i) {
    const CellUse& c = cells[i];
    if (c.used && !c.second_half && c.meter == meter && c.window == window &&
        c.window_count == count && c.mode == mode) {
      return i;
    }
  }
  const int width = mode == WindowMode::kSliding ? 2 : 1;
  for (int i = 0; i + width <= kCellsPerSubject; ++i) {
    bool free = true;
    for (int k = 0; k < width; ++k) free = free && !cells[i + k].used;
    if (!free) continue;
    for (int k = 0; k < width; ++k) {
      cells[i + k] = CellUse{true, meter, window, count, mode, k == 1};
    }
    return i;
  }
  return -1;
}

void CellLayout::Retain(const CellMask& keep) {
  for (int s = 0; s < kNumRecordScopes; ++s) {
    for (int i = 0; i < kCellsPerSubject; ++i) {
      if (!keep[s][i]) cells_[s][i] = CellUse{};
    }
  }
}

int Registry::Find(std::string_view name) const {
  for (size_t i = 0; i < names_.size(); ++i) {
    if (names_[i] == name) return static_cast<int>(i);
  }
  return -1;
}

int Registry::FindOrAdd(std::string_view name) {
  const int found = Find(name);
  if (found >= 0) return found;
  names_.emplace_back(name);
  return static_cast<int>(names_.size() - 1);
}

bool ModelMatches(std::string_view pattern, std::string_view model) {
  // Greedy glob with one backtrack point (the last '*'): linear for the
  // patterns an allowlist holds.
  size_t p = 0, m = 0;
  size_t star = std::string_view::npos, star_m = 0;
  while (m < model.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_m = m;
    } else if (p < pattern.size() && pattern[p] == model[m]) {
      ++p;
      ++m;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      m = ++star_m;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

namespace {

// The meters a plan counts per model: requests, then each meter its limits
// count (not in-flight ones), once, by stable id; names not yet registered
// are skipped (for the keep pass, before registration).
std::vector<uint16_t> ModelMeters(const Plan& plan, const Registry& meters) {
  std::vector<uint16_t> out = {0};  // "requests"
  for (const Limit& limit : plan.limits) {
    if (limit.window == WindowUnit::kConcurrent) continue;
    const int m = meters.Find(limit.meter);
    if (m <= 0 || m > 0xffff) continue;
    if (std::find(out.begin(), out.end(), m) == out.end()) {
      out.push_back(static_cast<uint16_t>(m));
    }
  }
  return out;
}

// Assigns the cells of a plan's per-model meters.
absl::Status CompileModelUsage(const Plan& plan, size_t p, Registry* meters,
                               CellLayout* layout, CompiledPlan* out) {
  for (const Limit& limit : plan.limits) meters->FindOrAdd(limit.meter);
  const std::vector<uint16_t> wanted = ModelMeters(plan, *meters);
  if (plan.limits.size() + wanted.size() >
      static_cast<size_t>(kMaxReservedOps)) {
    return absl::InvalidArgumentError(fmt::format(
        "plans[{}].usage_by_model: the plan's {} limits and {} meters counted "
        "per model exceed {} counters per request",
        p, plan.limits.size(), wanted.size(), kMaxReservedOps));
  }
  for (const uint16_t meter : wanted) {
    const int cell = layout->Assign(
        kModelScope, meter, WindowUnit::kBillingPeriod, 1, WindowMode::kFixed);
    if (cell < 0) {
      return absl::FailedPreconditionError(fmt::format(
          "plans[{}].usage_by_model: more than {} meters counted per model "
          "across the catalogs loaded since start",
          p, kCellsPerSubject));
    }
    out->model_meter[out->num_model_meters] = meter;
    out->model_cell[out->num_model_meters] = static_cast<uint8_t>(cell);
    ++out->num_model_meters;
  }
  out->models_per_account = static_cast<uint32_t>(plan.usage_by_model);
  return absl::OkStatus();
}

}  // namespace

int64_t NudgeThreshold(double fraction, int64_t limit) {
  const long double product =
      static_cast<long double>(fraction) * static_cast<long double>(limit);
  return static_cast<int64_t>(std::ceil(product - 1e-6L));
}

absl::StatusOr<std::unique_ptr<CompiledCatalog>> Compile(
    std::shared_ptr<const Catalog> catalog, const CellLayout& previous_layout,
    Registry* meters, Registry* plans, CellMask* reassigned) {
  auto out = std::make_unique<CompiledCatalog>();
  out->catalog = catalog;

  // Cells of counters that survive keep their place; the rest are freed
  // first so that new counters can take them.
  CellMask keep{};
  CellLayout layout = previous_layout;
  meters->FindOrAdd("requests");
  for (const Plan& plan : catalog->plans()) {
    for (const Limit& limit : plan.limits) {
      const int meter = meters->Find(CounterMeterName(limit));
      if (meter < 0) continue;
      const auto& cells = layout.scope(limit.scope);
      for (int i = 0; i < kCellsPerSubject; ++i) {
        const CellUse& c = cells[i];
        if (c.used && !c.second_half && c.meter == meter &&
            c.window == limit.window && c.window_count == limit.window_count &&
            c.mode == limit.mode) {
          keep[static_cast<int>(limit.scope)][i] = true;
          if (c.mode == WindowMode::kSliding && i + 1 < kCellsPerSubject) {
            keep[static_cast<int>(limit.scope)][i + 1] = true;
          }
        }
      }
    }
    if (plan.usage_by_model > 0) {
      for (const uint16_t meter : ModelMeters(plan, *meters)) {
        const auto& cells = layout.scope(kModelScope);
        for (int i = 0; i < kCellsPerSubject; ++i) {
          if (cells[i].used && cells[i].meter == meter) {
            keep[static_cast<int>(kModelScope)][i] = true;
          }
        }
      }
    }
  }
  layout.Retain(keep);

  for (size_t p = 0; p < catalog->plans().size(); ++p) {
    const Plan& plan = catalog->plans()[p];
    if (plan.limits.size() > static_cast<size_t>(kMaxReservedOps)) {
      return absl::InvalidArgumentError(fmt::format(
          "plans[{}].limits: at most {} limits per plan", p, kMaxReservedOps));
    }
    auto compiled = std::make_unique<CompiledPlan>();
    compiled->source = &plan;
    for (const KeyKind kind : plan.key_kinds) {
      compiled->key_kinds |= static_cast<uint8_t>(1u << static_cast<int>(kind));
    }
    for (const KeyKind kind : plan.past_due_blocks) {
      compiled->past_due_blocks |=
          static_cast<uint8_t>(1u << static_cast<int>(kind));
    }
    const auto& order = catalog->upgrade_order();
    for (size_t i = 0; i + 1 < order.size(); ++i) {
      if (order[i] == plan.id) {
        const Plan* next = catalog->FindPlan(order[i + 1]);
        if (next != nullptr) compiled->next_plan = next->id;
      }
    }
    for (size_t l = 0; l < plan.limits.size(); ++l) {
      const Limit& limit = plan.limits[l];
      // A per-tool limit keeps its own counter, and is fed by its tools'
      // meters.
      const int meter = meters->FindOrAdd(CounterMeterName(limit));
      std::vector<uint16_t> tool_meters;
      for (const std::string& tool : limit.tools) {
        const int m = meters->FindOrAdd(limit.meter + "." + tool);
        if (m > 0xffff) break;
        tool_meters.push_back(static_cast<uint16_t>(m));
      }
      const int amount_meter = meters->FindOrAdd(limit.meter);
      if (meter > 0xffff || amount_meter > 0xffff ||
          tool_meters.size() != limit.tools.size()) {
        return absl::InvalidArgumentError("catalog: too many meters");
      }
      const int cell =
          layout.Assign(limit.scope, static_cast<uint16_t>(meter), limit.window,
                        limit.window_count, limit.mode);
      if (cell < 0) {
        return absl::FailedPreconditionError(fmt::format(
            "plans[{}].limits[{}]: no counter cell left for scope {} (at most "
            "{} per subject across the catalogs loaded since start)",
            p, l, ScopeName(limit.scope), kCellsPerSubject));
      }
      CompiledLimit c;
      c.source = &limit;
      c.scope = limit.scope;
      c.window = limit.window;
      c.window_count = limit.window_count;
      c.window_ms = WindowLengthMs(limit.window, limit.window_count);
      c.mode = limit.mode;
      c.applies_to = limit.applies_to;
      c.cell = static_cast<uint8_t>(cell);
      c.meter = static_cast<uint16_t>(meter);
      c.amount_meter = static_cast<uint16_t>(amount_meter);
      c.tool_meters = std::move(tool_meters);
      if (!limit.models.empty()) c.models = &limit.models;
      c.filtered = c.applies_to != Traffic::kAll || c.models != nullptr ||
                   !c.tool_meters.empty();
      c.unlimited = limit.unlimited;
      c.shadow = limit.shadow || plan.shadow;
      c.limit = limit.unlimited ? kMaxCount : limit.limit;
      c.hard = limit.unlimited ? kMaxCount : limit.hard();
      c.nudge_at = limit.unlimited
                       ? kMaxCount
                       : NudgeThreshold(limit.soft_nudge, limit.limit);
      c.status = limit.status;
      c.reason = limit.reason;
      c.message = limit.message;
      c.down_policy =
          limit.redis_down.value_or(DefaultRedisDownPolicy(limit.window));
      c.concurrent = limit.window == WindowUnit::kConcurrent;
      // In-flight counts are this instance's own: never synced.
      c.synced = !c.concurrent;
      c.leasable = c.synced && !c.unlimited && !c.shadow;
      c.op.cell = c.cell;
      c.op.meter = c.amount_meter;  // what Commit's actual amounts name
      c.op.sliding = c.mode == WindowMode::kSliding;
      c.op.release = c.concurrent;
      compiled->uses_scope[static_cast<int>(limit.scope)] = true;
      if (limit.scope != Scope::kAccount) compiled->uses_narrow_scope = true;
      compiled->limits.push_back(c);
    }
    if (plan.usage_by_model > 0) {
      if (absl::Status s =
              CompileModelUsage(plan, p, meters, &layout, compiled.get());
          !s.ok()) {
        return s;
      }
    }
    compiled->fast = CompileFastPlan(*compiled);
    const int id = plans->FindOrAdd(plan.id);
    if (out->plans.size() <= static_cast<size_t>(id)) out->plans.resize(id + 1);
    out->plans[id] = std::move(compiled);
  }
  if (out->plans.size() < plans->names().size()) {
    out->plans.resize(plans->names().size());
  }
  if (!catalog->default_plan().empty()) {
    out->default_plan = plans->Find(catalog->default_plan());
  }

  if (reassigned != nullptr) {
    for (int s = 0; s < kNumRecordScopes; ++s) {
      for (int i = 0; i < kCellsPerSubject; ++i) {
        const CellUse& before = previous_layout.scope(static_cast<Scope>(s))[i];
        const CellUse& after = layout.scope(static_cast<Scope>(s))[i];
        (*reassigned)[s][i] =
            before.used && (!after.used || before.meter != after.meter ||
                            before.window != after.window ||
                            before.window_count != after.window_count ||
                            before.mode != after.mode ||
                            before.second_half != after.second_half);
      }
    }
  }
  out->meter_names = meters->names();
  out->layout = layout;
  return out;
}

}  // namespace plangate::internal
