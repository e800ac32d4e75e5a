// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// compiled_catalog.h: a Catalog turned into what the hot path reads.
//
// Compile() resolves every limit to integers: its counter cell in the
// subject record, its stable meter id, its hard cap and soft-nudge
// threshold. Cell, meter and plan numbers are stable across reloads for
// whatever the old and new catalogs share (a CellLayout and two registries
// carry them over), so counters keep their counts and records their plan
// through a reload.
//
// Thread safety: a CompiledCatalog is immutable once built. CellLayout and
// Registry are used under the Enforcer's admin mutex only.

#ifndef PLANGATE_CORE_COMPILED_CATALOG_H_
#define PLANGATE_CORE_COMPILED_CATALOG_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/fast_plan.h"
#include "core/reservation_table.h"
#include "plangate/catalog.h"

namespace plangate::internal {

// Per-model usage ("usage_by_model") is counted in records of a fifth,
// internal scope: (kModelScope, account, model), and (kModelScope, account,
// "") for the account's "other" bucket, which owns the model records. Their
// cells count billing-period usage; they never take part in a decision.
inline constexpr Scope kModelScope = static_cast<Scope>(kNumScopes);
// The scopes a record may have: the catalog's and kModelScope.
inline constexpr int kNumRecordScopes = kNumScopes + 1;
using CellMask =
    std::array<std::array<bool, kCellsPerSubject>, kNumRecordScopes>;

struct CompiledLimit {
  const Limit* source = nullptr;  // inside CompiledCatalog::catalog
  Scope scope = Scope::kAccount;
  WindowUnit window = WindowUnit::kBillingPeriod;
  uint32_t window_count = 1;  // Limit::window_count
  int64_t window_ms = 0;      // length of a fixed-length window; 0: period
  WindowMode mode = WindowMode::kFixed;
  Traffic applies_to = Traffic::kAll;
  uint8_t cell = 0;
  uint16_t meter = 0;  // stable meter id (of the counter: see tool_meters)
  // The meter whose amounts the limit counts: `meter`, except for per-tool
  // and per-model limits, whose counters have names of their own.
  uint16_t amount_meter = 0;
  // A per-tool limit (Limit::tools): the stable ids of "<meter>.<tool>",
  // whose amounts it counts; empty otherwise.
  std::vector<uint16_t> tool_meters;
  // A per-model limit (Limit::models, inside `source`); nullptr otherwise.
  const std::vector<std::string>* models = nullptr;
  // Whether the limit applies to some requests only (applies_to, models)
  // or counts tools: what a check must test beyond the amount's meter.
  bool filtered = false;
  // The reservation op of a charge of this limit with what the limit
  // fixes filled in (cell, meter, sliding, release); a check adds the
  // record, generation, window tag and amount.
  ReservedOp op;
  bool unlimited = false;
  bool shadow = false;
  int64_t limit = 0;
  int64_t hard = 0;
  int64_t nudge_at = 0;  // warn soft_nudge once used + a >= nudge_at
  int status = 0;
  std::string_view reason;
  std::string_view message;
  // Cluster sync (sync.h): whether the counter is shared through Redis
  // (every window), whether it takes leases (every window that can deny:
  // billing, annual, every fixed length and sliding windows; not
  // concurrency limits), and what it does while Redis is down.
  bool synced = false;
  bool leasable = false;
  // WindowUnit::kConcurrent: requests in flight, given back at settle.
  bool concurrent = false;
  RedisDownPolicy down_policy = RedisDownPolicy::kFailOpen;
};

struct CompiledPlan {
  const Plan* source = nullptr;
  std::vector<CompiledLimit> limits;
  std::array<bool, kNumScopes> uses_scope{};
  bool uses_narrow_scope = false;  // any of uses_scope[1..]
  uint8_t key_kinds = 0;           // bit (1 << KeyKind) per allowed kind
  uint8_t past_due_blocks = 0;     // bit (1 << KeyKind) per kind payment blocks
  // The plan after this one in upgrade order; empty for the top plan.
  std::string_view next_plan;
  // "usage_by_model": how many of the meters below are counted per model
  // (0: off), each meter's stable id and its cell in a kModelScope record,
  // and how many models an account counts apart.
  uint8_t num_model_meters = 0;
  std::array<uint16_t, kCellsPerSubject> model_meter{};
  std::array<uint8_t, kCellsPerSubject> model_cell{};
  uint32_t models_per_account = 0;
  // The program of the common check (fast_plan.h); built last.
  FastPlan fast;
};

// ceil(fraction * limit), robust to binary fractions (0.8 * 50000 is
// 40000.000000000004 in doubles): the soft-nudge threshold.
int64_t NudgeThreshold(double fraction, int64_t limit);

// Whether `model` matches `pattern`, where '*' matches any run of
// characters (possibly empty). No allocation.
bool ModelMatches(std::string_view pattern, std::string_view model);

// What a cell of a subject record holds.
struct CellUse {
  bool used = false;
  uint16_t meter = 0;
  WindowUnit window = WindowUnit::kBillingPeriod;
  uint32_t window_count = 1;
  WindowMode mode = WindowMode::kFixed;
  bool second_half = false;  // the "previous window" cell of a sliding pair
};

// The counter -> cell assignment per scope.
class CellLayout {
 public:
  using ScopeCells = std::array<CellUse, kCellsPerSubject>;
  const ScopeCells& scope(Scope s) const { return cells_[static_cast<int>(s)]; }
  // Finds the cell of (scope, meter, window, mode) or assigns free ones.
  // -1 when the scope has no room left.
  int Assign(Scope s, uint16_t meter, WindowUnit window, uint32_t count,
             WindowMode mode);
  // Frees every cell not marked in `keep`.
  void Retain(const CellMask& keep);

 private:
  std::array<ScopeCells, kNumRecordScopes> cells_{};
};

// An append-only name -> stable id registry (meters, plans).
class Registry {
 public:
  int Find(std::string_view name) const;
  int FindOrAdd(std::string_view name);
  const std::vector<std::string>& names() const { return names_; }

 private:
  std::vector<std::string> names_;
};

struct CompiledCatalog {
  std::shared_ptr<const Catalog> catalog;
  // By stable plan id; nullptr for plans that left the catalog.
  std::vector<std::unique_ptr<CompiledPlan>> plans;
  std::vector<std::string> meter_names;  // by stable meter id
  CellLayout layout;
  int default_plan = -1;  // stable plan id or -1
};

// Compiles `catalog`, carrying `layout`, `meters` and `plans` over from the
// previous compilation (empty ones the first time). FailedPrecondition when
// the counters no longer fit the subject record. On success also reports
// the cells that changed meaning (to be zeroed in every record).
absl::StatusOr<std::unique_ptr<CompiledCatalog>> Compile(
    std::shared_ptr<const Catalog> catalog, const CellLayout& previous_layout,
    Registry* meters, Registry* plans, CellMask* reassigned);

}  // namespace plangate::internal

#endif  // PLANGATE_CORE_COMPILED_CATALOG_H_
