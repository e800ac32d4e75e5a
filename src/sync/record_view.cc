// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// What a record's cells mean, read from the enforcer's published facts
// (record_view.h).

#include "sync/record_view.h"

#include <string>
#include <string_view>

#include "core/account_profile.h"
#include "core/compiled_catalog.h"
#include "fmt/format.h"
#include "internal/period.h"

namespace plangate::internal {

namespace {

CapsSource SourceOf(const CounterTable& table, const SubjectRecord* account,
                    const CompiledCatalog* catalog, int64_t now_ms) {
  CapsSource s;
  s.catalog = catalog;
  if (account == nullptr) return s;
  s.has_account = true;
  s.account_index = table.IndexOf(*account);
  // Acquire, as the check reads them: the profile UpsertAccount published.
  s.account_ctrl = account->ctrl.load(std::memory_order_acquire);
  const AccountProfile* profile =
      account->profile.load(std::memory_order_acquire);
  s.profile = profile;
  s.plan = EffectivePlan(account->meta.load(std::memory_order_acquire), profile,
                         now_ms);
  return s;
}

// The plan `plan_id` of the compilation; null for none.
const CompiledPlan* PlanAt(const CompiledCatalog& cc, int plan_id) {
  if (plan_id < 0 || static_cast<size_t>(plan_id) >= cc.plans.size()) {
    return nullptr;
  }
  return cc.plans[plan_id].get();
}

}  // namespace

bool CapsSourceChanged(const PublishedFacts& facts, const CapsSource& source,
                       int64_t now_ms) {
  const CompiledCatalog* catalog =
      facts.catalog->load(std::memory_order_acquire);
  if (!source.has_account) return catalog != source.catalog;
  const SubjectRecord& account = facts.table->at(source.account_index);
  return SourceOf(*facts.table, &account, catalog, now_ms) != source;
}

int64_t WalletFloor(const PublishedFacts& facts, uint32_t index, uint8_t gen,
                    int64_t now_ms) {
  const SubjectRecord& rec = facts.table->at(index);
  const uint32_t ctrl = rec.ctrl.load(std::memory_order_acquire);
  if (SubjectRecord::State(ctrl) != RecordState::kLive ||
      static_cast<uint8_t>(SubjectRecord::Generation(ctrl)) != gen) {
    return 0;
  }
  const CompiledCatalog* catalog =
      facts.catalog->load(std::memory_order_acquire);
  const CompiledPlan* plan =
      PlanAt(*catalog, SourceOf(*facts.table, &rec, catalog, now_ms).plan);
  if (plan == nullptr) return 0;
  const Wallet& wallet = plan->source->wallet;
  return wallet.required ? wallet.min_balance_micros : 0;
}

bool DescribeRecord(const PublishedFacts& facts, uint32_t index, uint8_t gen,
                    int64_t now_ms, SyncRecordInfo* out) {
  CounterTable& table = *facts.table;
  SubjectRecord& rec = table.at(index);
  const uint32_t ctrl = rec.ctrl.load(std::memory_order_acquire);
  if (SubjectRecord::State(ctrl) != RecordState::kLive ||
      static_cast<uint8_t>(SubjectRecord::Generation(ctrl)) != gen) {
    return false;
  }
  CounterTable::ReadKey(rec, &out->scope, &out->account, &out->sub);
  if (rec.ctrl.load(std::memory_order_acquire) != ctrl) {
    return false;  // reused while we read the key
  }
  // Acquire: the compilation a Reload published, fully built; it lives as
  // long as the enforcer.
  const CompiledCatalog* catalog =
      facts.catalog->load(std::memory_order_acquire);
  const CompiledCatalog& cc = *catalog;
  if (out->scope == kModelScope) {
    // Per-model usage (usage_by_model): shared totals in the account's
    // billing period, never capped, never leased.
    out->cells.clear();
    const SubjectRef account =
        table.Find(Scope::kAccount, out->account, {},
                   table.Hash(Scope::kAccount, out->account, {}));
    out->source = SourceOf(table, account.rec, catalog, now_ms);
    if (!account) return true;
    const int plan_id = out->source.plan;
    const CompiledPlan* found = PlanAt(cc, plan_id);
    if (found == nullptr) return true;
    const CompiledPlan& plan = *found;
    const Window w =
        CurrentWindowOf(WindowUnit::kBillingPeriod, 1, *account.rec, now_ms);
    for (int k = 0; k < plan.num_model_meters; ++k) {
      SyncCellInfo info;
      info.cell = plan.model_cell[k];
      info.meter = plan.model_meter[k];
      info.meter_name = info.meter < cc.meter_names.size()
                            ? cc.meter_names[info.meter]
                            : fmt::format("meter{}", info.meter);
      info.window = WindowUnit::kBillingPeriod;
      info.start_ms = w.start_ms;
      info.end_ms = w.end_ms;
      info.tag = w.tag;
      info.plan = plan_id;
      out->cells.push_back(std::move(info));
    }
    return true;
  }
  SubjectRecord* account = &rec;
  if (out->scope != Scope::kAccount) {
    account = table
                  .Find(Scope::kAccount, out->account, {},
                        table.Hash(Scope::kAccount, out->account, {}))
                  .rec;
  }
  // The caps' source first, then the caps from it: a change in between is
  // seen by the next CapsSourceChanged.
  out->source = SourceOf(table, account, catalog, now_ms);
  const int plan_id = out->source.plan;
  const AccountProfile* profile = out->source.profile;
  const CompiledPlan* plan = PlanAt(cc, plan_id);
  out->cells.clear();
  const auto& uses = cc.layout.scope(out->scope);
  for (int i = 0; i < kCellsPerSubject; ++i) {
    const CellUse& use = uses[i];
    // In-flight counts (concurrent) are this instance's own.
    if (!use.used || use.second_half || use.window == WindowUnit::kConcurrent) {
      continue;
    }
    const bool billing = use.window == WindowUnit::kBillingPeriod ||
                         use.window == WindowUnit::kAnnual;
    if (billing && account == nullptr) continue;  // no anchor to go by
    SyncCellInfo info;
    info.cell = static_cast<uint8_t>(i);
    info.meter = use.meter;
    info.meter_name = use.meter < cc.meter_names.size()
                          ? cc.meter_names[use.meter]
                          : fmt::format("meter{}", use.meter);
    info.window = use.window;
    info.window_count = use.window_count;
    info.mode = use.mode;
    const Window w = CurrentWindowOf(use.window, use.window_count,
                                     billing ? *account : rec, now_ms);
    info.start_ms = w.start_ms;
    info.end_ms = w.end_ms;
    info.tag = w.tag;
    info.plan = plan_id;
    if (plan != nullptr) {
      for (size_t l = 0; l < plan->limits.size(); ++l) {
        const CompiledLimit& limit = plan->limits[l];
        if (limit.scope != out->scope || limit.cell != i) continue;
        const Caps caps = CapsFor(
            limit, profile,
            out->scope == Scope::kUser ? std::string_view(out->sub) : "");
        info.limit_index = static_cast<int>(l);
        info.unlimited = caps.unlimited || limit.shadow;
        info.limit = caps.limit;
        info.hard = caps.hard;
        info.nudge_at = caps.nudge_at;
        info.leasable = limit.leasable && !caps.unlimited;
        info.down_policy = limit.down_policy;
        break;
      }
    }
    out->cells.push_back(std::move(info));
  }
  return true;
}

bool WindowOfTag(const PublishedFacts& facts, uint32_t index,
                 const SyncCellInfo& info, uint32_t tag, int max_back,
                 int64_t* start_ms, int64_t* end_ms) {
  if (info.tag == tag) {
    *start_ms = info.start_ms;
    *end_ms = info.end_ms;
    return true;
  }
  if (info.window == WindowUnit::kBillingPeriod ||
      info.window == WindowUnit::kAnnual) {
    // Billing periods: step back period by period on the account's anchor.
    CounterTable& table = *facts.table;
    const SubjectRecord& rec = table.at(index);
    Scope scope;
    std::string account, sub;
    CounterTable::ReadKey(rec, &scope, &account, &sub);
    const SubjectRef ref = table.Find(Scope::kAccount, account, {},
                                      table.Hash(Scope::kAccount, account, {}));
    if (!ref) return false;
    const int64_t anchor = ref.rec->anchor_ms.load(std::memory_order_seq_cst);
    const int months = info.window == WindowUnit::kBillingPeriod ? 1 : 12;
    int64_t start = info.start_ms;
    for (int back = 0; back < max_back; ++back) {
      const WindowInstance w = PeriodContaining(anchor, months, start - 1);
      if (TagOf(FloorDiv(w.start_ms, kDayMs)) == tag) {
        *start_ms = w.start_ms;
        *end_ms = w.end_ms;
        return true;
      }
      start = w.start_ms;
    }
    return false;
  }
  const int64_t len = info.end_ms - info.start_ms;
  const int64_t cur = FloorDiv(info.start_ms, len);
  const int64_t back = (info.tag - tag) & Cell::kTagMask;
  if (back == 0 || back > max_back) return false;
  *start_ms = (cur - back) * len;
  *end_ms = *start_ms + len;
  return true;
}

}  // namespace plangate::internal
