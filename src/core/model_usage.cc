// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// Per-model usage ("usage_by_model"): an admitted check of a plan that
// opts in also counts, for the account's billing period, each meter the
// plan counts (compiled_catalog.cc picks them) in a record of its own per
// (account, model). Those records are subject-like records of the internal
// kModelScope in the counter table:
//
//   (kModelScope, account, "")     the account's "other" bucket; owned by
//                                  no one, so it takes nothing from the
//                                  account's subject budget (max_subjects)
//   (kModelScope, account, model)  one model; owned by the "other" bucket,
//                                  whose budget is the plan's
//                                  "usage_by_model" count, at most the
//                                  account's subject budget
//
// The counts go into the reservation as ordinary ops (never synced: the
// settle path tells them by their record's scope), so Commit settles them with
// the actual amounts and a refund or an expiry gives them back, exactly like
// the limits' counts. Nothing here ever denies, nor takes room a project,
// key or user could need: without room for a model's record the check counts
// in the "other" bucket, and without room for that (a full table) it is not
// counted by model (both counted in EnforcerStats).
//
// A check that races its model's first sighting (the record is being
// inserted) may be counted in the "other" bucket: the totals stay exact.
//
// Thread safety: as Enforcer::Check. A model already seen costs one
// lock-free lookup and one CAS per meter; its first sighting takes the
// table's insert path (a mutex) and records the name for Usage under
// models_mu.

#include <algorithm>

#include "core/cell_ops.h"
#include "core/enforcer_impl.h"
#include "core/window.h"

namespace plangate {

using internal::Cell;
using internal::CompiledPlan;
using internal::kModelScope;
using internal::ReservedOp;
using internal::SubjectRef;

SubjectRef Enforcer::Impl::ModelRecord(const CompiledPlan& plan,
                                       std::string_view account_id,
                                       std::string_view model, int64_t now) {
  const internal::KeyProbe key(kModelScope, account_id, model);
  const uint64_t hash = table.Hash(key);
  if (const SubjectRef ref = table.Find(key, hash)) return ref;
  // Not counted apart (yet): the "other" bucket, lock-free when it is
  // there and its model budget is spent.
  const internal::KeyProbe other_key(kModelScope, account_id, {});
  const uint64_t other_hash = table.Hash(other_key);
  SubjectRef other = table.Find(other_key, other_hash);
  if (!other) {
    auto inserted =
        table.FindOrInsert(kModelScope, account_id, {}, other_hash, now);
    if (!inserted.ok()) return {};  // the table is full
    other = *inserted;
  }
  if (model.empty()) return other;
  const internal::SubjectOwner by_model{
      other.index, std::min(plan.models_per_account, SubjectBudget(plan))};
  // Relaxed: a figure; FindOrInsert re-checks it under its mutex.
  if (table.owned(by_model.index) >= by_model.budget) {
    model_usage_other.fetch_add(1, std::memory_order_relaxed);
    return other;
  }
  auto inserted =
      table.FindOrInsert(kModelScope, account_id, model, hash, now, &by_model);
  if (!inserted.ok()) {
    model_usage_other.fetch_add(1, std::memory_order_relaxed);
    return other;
  }
  {
    // First sighting (or a lost race for it): remember the name for Usage.
    std::lock_guard<std::mutex> lock(models_mu);
    std::vector<std::string>& names = model_names[std::string(account_id)];
    if (std::find(names.begin(), names.end(), model) == names.end()) {
      names.emplace_back(model);
    }
  }
  return *inserted;
}

int Enforcer::Impl::CountByModel(const CompiledPlan& plan,
                                 const SubjectRef& account,
                                 const CheckRequest& req,
                                 std::string_view model, int64_t now,
                                 internal::SyncLink* link, ReservedOp* ops) {
  const SubjectRef rec = ModelRecord(plan, req.account_id, model, now);
  if (!rec) {
    model_usage_skipped.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }
  const internal::Window w = internal::PeriodWindow(*account.rec, 0, now);
  int n = 0;
  for (int k = 0; k < plan.num_model_meters; ++k) {
    const uint16_t meter = plan.model_meter[k];
    int64_t amount = meter == 0 ? 1 : 0;  // meter 0 is "requests"
    for (const MeterAmount& m : req.amounts) {
      if (m.meter == meter) amount = m.amount;
    }
    const uint8_t cell = plan.model_cell[k];
    // Relaxed: as every evaluation load (cell_ops.h); the CAS re-reads.
    const uint64_t word = rec.rec->cells[cell].load(std::memory_order_relaxed);
    if (Cell::Gen(word) != rec.gen) break;  // reclaimed under us
    internal::CellView seen = internal::ViewOf(word, 0, w.tag, false);
    const internal::CellTarget target{rec.rec, rec.index, rec.gen,
                                      cell,    false,     false};
    // Never enforced; synced (shared totals) when a sync is attached.
    if (internal::ChargeCell(target, kMaxCount, w, now, amount,
                             /*enforce=*/false, word, &seen,
                             link) != internal::Charge::kOk) {
      break;
    }
    ReservedOp& op = ops[n++];
    op.record = rec.index;
    op.tag = static_cast<uint16_t>(w.tag);
    op.cell = cell;
    op.gen = rec.gen;
    op.meter = meter;
    op.sliding = false;
    op.release = false;
    op.amount = amount;
  }
  if (n < plan.num_model_meters) {
    model_usage_skipped.fetch_add(1, std::memory_order_relaxed);
  }
  if (n > 0 && link != nullptr) MarkDirty(link, rec.index, rec.gen);
  const auto now_s = static_cast<uint32_t>(now / 1000);
  if (rec.rec->last_used_s.load(std::memory_order_relaxed) != now_s) {
    rec.rec->last_used_s.store(now_s, std::memory_order_relaxed);
  }
  return n;
}

void Enforcer::Impl::ReadModelUsage(const CompiledPlan& plan,
                                    SubjectRecord& account,
                                    std::string_view account_id, int64_t now,
                                    AccountUsage* usage) const {
  usage->models_counted = plan.num_model_meters > 0;
  if (!usage->models_counted) return;
  const CompiledCatalog& cc = *compiled.load(std::memory_order_acquire);
  const internal::Window w = internal::PeriodWindow(account, 0, now);
  internal::SyncLink* const link = sync.load(std::memory_order_acquire);
  // One model's counts this period (the cluster's, with a sync); false
  // when it has none.
  const auto read = [&](std::string_view model, ModelUsage* out) {
    const SubjectRef ref =
        table.Find(kModelScope, account_id, model,
                   table.Hash(kModelScope, account_id, model));
    if (!ref) return false;
    bool any = false;
    out->model = std::string(model);
    for (int k = 0; k < plan.num_model_meters; ++k) {
      const uint64_t word =
          ref.rec->cells[plan.model_cell[k]].load(std::memory_order_relaxed);
      int64_t used = Cell::Gen(word) == ref.gen && Cell::Tag(word) == w.tag
                         ? Cell::Count(word)
                         : 0;
      if (link != nullptr) {
        used = std::min(kMaxCount,
                        used + link->RemoteIn(ref.index, plan.model_cell[k],
                                              ref.gen, w.tag));
      }
      any = any || used > 0;
      out->meters.push_back({cc.meter_names[plan.model_meter[k]], used});
    }
    return any;
  };
  std::vector<std::string> names;
  {
    std::lock_guard<std::mutex> lock(models_mu);
    if (auto it = model_names.find(std::string(account_id));
        it != model_names.end()) {
      names = it->second;
    }
  }
  std::sort(names.begin(), names.end());
  std::vector<std::string> gone;
  for (const std::string& name : names) {
    ModelUsage m;
    if (read(name, &m)) {
      usage->models.push_back(std::move(m));
    } else if (m.model.empty()) {
      gone.push_back(name);  // its record was reclaimed
    }
  }
  if (ModelUsage other; read({}, &other)) usage->models.push_back(other);
  if (!gone.empty()) {
    std::lock_guard<std::mutex> lock(models_mu);
    if (auto it = model_names.find(std::string(account_id));
        it != model_names.end()) {
      std::erase_if(it->second, [&](const std::string& name) {
        return std::find(gone.begin(), gone.end(), name) != gone.end() &&
               !table.Find(kModelScope, account_id, name,
                           table.Hash(kModelScope, account_id, name));
      });
      if (it->second.empty()) model_names.erase(it);
    }
  }
}

}  // namespace plangate
