// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// Enforcer: accounts, catalogs, usage reports and housekeeping. The check
// itself is in decide.cc, Commit in settle.cc.

#include "plangate/enforcer.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <mutex>

#include "absl/status/status.h"
#include "core/cell_ops.h"
#include "core/enforcer_impl.h"
#include "core/window.h"
#include "fmt/format.h"
#include "internal/period.h"

namespace plangate {
namespace {

using internal::AccountProfile;
using internal::Caps;
using internal::CapsFor;
using internal::Cell;
using internal::CellView;
using internal::CompiledCatalog;
using internal::CompiledLimit;
using internal::CompiledPlan;
using internal::CounterTable;
using internal::CurrentWindow;
using internal::DenyWith;
using internal::EffectivePlan;
using internal::Estimate;
using internal::LimitStateName;
using internal::MetaPlan;
using internal::MetaRegistered;
using internal::MetaState;
using internal::MoveWallet;
using internal::PackMeta;
using internal::PeriodWindow;
using internal::ReservationSlot;
using internal::ReservationTable;
using internal::ReservedOp;
using internal::SubjectRecord;
using internal::SubjectRef;
using internal::ViewOf;
using internal::Window;

}  // namespace

std::string_view CommitResultName(CommitResult result) {
  switch (result) {
    case CommitResult::kApplied:
      return "applied";
    case CommitResult::kRefunded:
      return "refunded";
    case CommitResult::kDuplicate:
      return "duplicate";
    case CommitResult::kExpired:
      return "expired";
    case CommitResult::kInvalid:
      return "invalid";
    case CommitResult::kEmpty:
      return "empty";
  }
  return "unknown";
}

absl::Status Enforcer::Impl::InstallCatalog(
    std::shared_ptr<const Catalog> catalog) {
  // Under admin_mu.
  const CompiledCatalog* current = compiled.load(std::memory_order_relaxed);
  internal::CellMask reassigned{};
  auto next = internal::Compile(
      std::move(catalog),
      current != nullptr ? current->layout : internal::CellLayout{}, &meters,
      &plans, &reassigned);
  if (!next.ok()) return next.status();
  if (current != nullptr) {
    // Every registered account's plan must still exist.
    absl::Status missing;
    table.ForEachLive([&](SubjectRecord& rec) {
      const uint64_t shape = rec.shape.load(std::memory_order_relaxed);
      if (static_cast<Scope>(shape & 0xff) != Scope::kAccount) return;
      const int plan = MetaPlan(rec.meta.load(std::memory_order_relaxed));
      if (plan < 0 || !MetaRegistered(rec.meta.load(std::memory_order_relaxed)))
        return;
      if (static_cast<size_t>(plan) >= (*next)->plans.size() ||
          (*next)->plans[plan] == nullptr) {
        if (missing.ok()) {
          missing = absl::FailedPreconditionError(fmt::format(
              "catalog: plan \"{}\" is in use by registered accounts but "
              "missing from the new catalog",
              plans.names()[plan]));
        }
      }
    });
    if (!missing.ok()) return missing;
    // Cells that now mean another counter start from zero.
    table.ForEachLive([&](SubjectRecord& rec) {
      const auto scope =
          static_cast<int>(rec.shape.load(std::memory_order_relaxed) & 0xff);
      const uint32_t gen =
          SubjectRecord::Generation(rec.ctrl.load(std::memory_order_relaxed));
      for (int i = 0; i < kCellsPerSubject; ++i) {
        if (reassigned[scope][i]) {
          rec.cells[i].store(Cell::Pack(gen, 0, 0), std::memory_order_relaxed);
        }
      }
    });
  }
  // Release: a check that loads the new pointer sees it fully built.
  compiled.store(next->get(), std::memory_order_release);
  compilations.push_back(std::move(*next));
  return absl::OkStatus();
}

bool Enforcer::Impl::Reclaimable(SubjectRecord& rec, const CompiledCatalog& cc,
                                 int64_t now_ms) {
  // A record the sync component has not read since it changed stays.
  if (internal::SyncLink* link = sync.load(std::memory_order_acquire);
      link != nullptr && link->Unread(table.IndexOf(rec))) {
    return false;
  }
  const uint64_t meta = rec.meta.load(std::memory_order_relaxed);
  if (MetaRegistered(meta) ||
      rec.wallet_micros.load(std::memory_order_relaxed) != 0) {
    return false;
  }
  const int64_t idle_ms =
      now_ms - int64_t{rec.last_used_s.load(std::memory_order_relaxed)} * 1000;
  if (idle_ms < options.idle_subject_ttl_ms) return false;
  const uint64_t shape = rec.shape.load(std::memory_order_relaxed);
  const auto scope = static_cast<Scope>(shape & 0xff);
  const auto& cells = cc.layout.scope(scope);
  // The account whose anchor defines billing windows for this subject.
  SubjectRecord* account = nullptr;
  if (scope == Scope::kAccount) {
    account = &rec;
  } else {
    Scope s;
    std::string account_id, sub;
    CounterTable::ReadKey(rec, &s, &account_id, &sub);
    const SubjectRef ref =
        table.Find(Scope::kAccount, account_id, {},
                   table.Hash(Scope::kAccount, account_id, {}));
    account = ref.rec;
  }
  for (int i = 0; i < kCellsPerSubject; ++i) {
    const uint64_t word = rec.cells[i].load(std::memory_order_relaxed);
    if (Cell::Count(word) == 0) continue;
    if (!cells[i].used) continue;  // a counter no plan has any more
    const bool billing = cells[i].window == WindowUnit::kBillingPeriod ||
                         cells[i].window == WindowUnit::kAnnual;
    if (billing && account == nullptr) {
      // Cannot tell: keep; but a model's counts (usage_by_model) outlive
      // their account only once its periods are past.
      if (scope == internal::kModelScope) continue;
      return false;
    }
    // Fixed windows ignore the record; billing ones read the account's. An
    // in-flight count (concurrent) is never past its window: it stays.
    const Window w =
        internal::CurrentWindowOf(cells[i].window, cells[i].window_count,
                                  billing ? *account : rec, now_ms);
    const uint32_t prev_tag = (w.tag - 1) & Cell::kTagMask;
    if (Cell::Tag(word) == w.tag) return false;
    if (cells[i].mode == WindowMode::kSliding && Cell::Tag(word) == prev_tag) {
      return false;
    }
  }
  return true;
}

Enforcer::Enforcer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Enforcer::~Enforcer() = default;

absl::StatusOr<std::unique_ptr<Enforcer>> Enforcer::Create(
    std::shared_ptr<const Catalog> catalog, EnforcerOptions options) {
  if (catalog == nullptr) {
    return absl::InvalidArgumentError("Enforcer::Create: catalog is null");
  }
  if (options.max_subjects == 0 || options.max_subjects > (size_t{1} << 30)) {
    return absl::InvalidArgumentError(
        "EnforcerOptions.max_subjects: must be in [1, 2^30]");
  }
  if (options.max_reservations == 0 ||
      options.max_reservations > (size_t{1} << 28)) {
    return absl::InvalidArgumentError(
        "EnforcerOptions.max_reservations: must be in [1, 2^28]");
  }
  if (options.reservation_ttl_ms <= 0 || options.idle_subject_ttl_ms <= 0) {
    return absl::InvalidArgumentError(
        "EnforcerOptions: reservation_ttl_ms and idle_subject_ttl_ms must be "
        "positive");
  }
  auto impl = std::make_unique<Impl>(options);
  {
    std::lock_guard<std::mutex> lock(impl->admin_mu);
    if (absl::Status s = impl->InstallCatalog(std::move(catalog)); !s.ok()) {
      return s;
    }
  }
  return std::unique_ptr<Enforcer>(new Enforcer(std::move(impl)));
}

Decision Enforcer::Check(const CheckRequest& request) {
  // The fast check, or the general path through it (fast_check.cc); the
  // Decision is built in the returned object (no copies).
  return impl_->FastCheck(request);
}

void Enforcer::Prefetch(std::string_view account_id) const {
  impl_->table.PrefetchAccount(account_id);
}

Decision Enforcer::Peek(const CheckRequest& request) const {
  Decision d;
  impl_->DecideInto(request, /*charge=*/false, &d);
  return d;
}

Decision Enforcer::Extend(const ExtendRequest& request) {
  Decision d;
  impl_->ExtendInto(request, &d);
  return d;
}

CommitResult Enforcer::Commit(const CommitRequest& commit) {
  // The common commit: it went well and Check's amounts were final. The
  // counts stand as charged; only the slot is given back, in one CAS.
  if (commit.success && commit.actual.empty() && commit.wallet_micros < 0 &&
      commit.request_id == 0 && !commit.reservation.empty() &&
      impl_->reservations.Release(commit.reservation.slot,
                                  commit.reservation.generation)) {
    return CommitResult::kApplied;
  }
  return impl_->Settle(commit);
}

absl::Status Enforcer::UpsertAccount(const AccountUpdate& update) {
  absl::Status applied = impl_->ApplyAccount(update);
  if (!applied.ok()) return applied;
  // Acquire pairs with Attach's release: the link's settings are visible.
  internal::SyncLink* link = impl_->sync.load(std::memory_order_acquire);
  if (link != nullptr && link->share_accounts) {
    link->PublishAccount(update, /*seed=*/false);
  }
  return absl::OkStatus();
}

absl::Status Enforcer::SeedAccount(const AccountUpdate& update) {
  absl::Status applied = impl_->ApplyAccount(update);
  if (!applied.ok()) return applied;
  // Acquire: as in UpsertAccount.
  internal::SyncLink* link = impl_->sync.load(std::memory_order_acquire);
  if (link != nullptr && link->share_accounts) {
    link->PublishAccount(update, /*seed=*/true);
  }
  return absl::OkStatus();
}

absl::Status Enforcer::Impl::ApplyAccount(const AccountUpdate& update) {
  std::lock_guard<std::mutex> lock(admin_mu);
  const CompiledCatalog& cc = *compiled.load(std::memory_order_relaxed);
  auto find_plan = [&](const std::string& id) {
    const int plan = plans.Find(id);
    return plan >= 0 && static_cast<size_t>(plan) < cc.plans.size() &&
                   cc.plans[plan] != nullptr
               ? plan
               : -1;
  };
  const int plan = find_plan(update.plan_id);
  if (plan < 0) {
    return absl::InvalidArgumentError(
        fmt::format("account \"{}\": unknown plan \"{}\"", update.account_id,
                    update.plan_id));
  }
  const int scheduled = update.scheduled_plan_id.empty()
                            ? -1
                            : find_plan(update.scheduled_plan_id);
  if (!update.scheduled_plan_id.empty() && scheduled < 0) {
    return absl::InvalidArgumentError(
        fmt::format("account \"{}\": unknown scheduled plan \"{}\"",
                    update.account_id, update.scheduled_plan_id));
  }
  if (update.account_id.empty()) {
    return absl::InvalidArgumentError("account_id: must not be empty");
  }
  auto profile = std::make_unique<AccountProfile>();
  for (size_t i = 0; i < update.overrides.size(); ++i) {
    const LimitOverride& o = update.overrides[i];
    auto where = [&](std::string_view field) {
      return fmt::format("account \"{}\": overrides[{}].{}", update.account_id,
                         i, field);
    };
    const CompiledLimit* target = nullptr;
    for (const int p : {plan, scheduled}) {
      if (p < 0 || target != nullptr) continue;
      for (const CompiledLimit& l : cc.plans[p]->limits) {
        if (l.source->id == o.limit_id) target = &l;
      }
    }
    if (target == nullptr) {
      return absl::InvalidArgumentError(
          fmt::format("{}: no limit \"{}\" in plan \"{}\"", where("limit_id"),
                      o.limit_id, update.plan_id));
    }
    if (!o.user_id.empty() && target->scope != Scope::kUser) {
      return absl::InvalidArgumentError(
          fmt::format("{}: limit \"{}\" is not a user-scope limit",
                      where("user_id"), o.limit_id));
    }
    if (!o.unlimited && (o.limit < 0 || o.limit > kMaxCount)) {
      return absl::InvalidArgumentError(
          fmt::format("{}: must be in [0, {}]", where("limit"), kMaxCount));
    }
    if (o.grace > 1) {
      return absl::InvalidArgumentError(
          fmt::format("{}: must be in [0, 1]", where("grace")));
    }
    Limit numbers = *target->source;
    numbers.unlimited = false;  // a number replaces a plan's "unlimited"
    numbers.limit = o.limit;
    if (o.grace >= 0) numbers.grace = o.grace;
    internal::ResolvedOverride resolved{o.limit_id, o.user_id, {}};
    resolved.caps =
        o.unlimited
            ? Caps{true, kMaxCount, kMaxCount, kMaxCount}
            : Caps{false, o.limit, numbers.hard(),
                   internal::NudgeThreshold(numbers.soft_nudge, o.limit)};
    profile->overrides.push_back(std::move(resolved));
  }
  const int64_t now = Now(0);
  auto ref = table.FindOrInsert(
      Scope::kAccount, update.account_id, {},
      table.Hash(Scope::kAccount, update.account_id, {}), now);
  if (!ref.ok()) {
    return absl::Status(ref.status().code(),
                        fmt::format("account \"{}\": {}", update.account_id,
                                    std::string(ref.status().message())));
  }
  SubjectRecord& rec = *ref->rec;
  if (rec.anchor_ms.load(std::memory_order_relaxed) != update.anchor_ms) {
    rec.anchor_ms.store(update.anchor_ms, std::memory_order_seq_cst);
    rec.period_month.store(0, std::memory_order_seq_cst);
    rec.period_year.store(0, std::memory_order_seq_cst);
  }
  profile->default_model = update.default_model;
  profile->past_due_deadline_ms = update.past_due_deadline_ms;
  if (!update.scheduled_plan_id.empty()) {
    profile->scheduled_plan = scheduled;
    profile->scheduled_at_ms =
        internal::PeriodContaining(update.anchor_ms, 1, now).end_ms;
  }
  if (profile->empty()) profile.reset();
  const AccountProfile* old =
      rec.profile.exchange(profile.release(), std::memory_order_acq_rel);
  if (old != nullptr) {
    retired_profiles.push_back({old, std::chrono::steady_clock::now()});
  }
  // Release: checks that acquire meta see the anchor and profile above.
  // A CAS, not a store: a first check's default-plan CAS may race.
  uint64_t meta = rec.meta.load(std::memory_order_relaxed);
  while (!rec.meta.compare_exchange_weak(
      meta, PackMeta(plan, update.state, true), std::memory_order_release,
      std::memory_order_relaxed)) {
  }
  if (internal::SyncLink* link = sync.load(std::memory_order_acquire)) {
    // Prime: the sync component fetches the account's cluster usage now,
    // before its first check.
    Impl::MarkDirty(link, ref->index, ref->gen);
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Enforcer::UpdateWallet(const WalletUpdate& update) {
  const SubjectRef ref = impl_->table.Find(
      Scope::kAccount, update.account_id, {},
      impl_->table.Hash(Scope::kAccount, update.account_id, {}));
  if (!ref) {
    return absl::NotFoundError(
        fmt::format("account \"{}\": not found", update.account_id));
  }
  // Acquire pairs with Attach's release: the link's settings are visible.
  internal::SyncLink* link = impl_->sync.load(std::memory_order_acquire);
  if (link != nullptr && link->share_wallets) {
    if (update.credit_id.empty()) {
      return absl::InvalidArgumentError(fmt::format(
          "account \"{}\": credit_id: required when wallets are shared "
          "through Redis",
          update.account_id));
    }
    link->QueueCredit(
        {update.account_id, update.credit_id, update.credit_micros});
    link->wallets.Push(internal::PackDirty(ref.index, ref.gen));
    const int64_t known = link->WalletBalance(ref.index, ref.gen);
    return std::max<int64_t>(0, known) + update.credit_micros;
  }
  if (!MoveWallet(ref.rec->wallet_micros, update.credit_micros)) {
    return absl::FailedPreconditionError(fmt::format(
        "account \"{}\": a credit of {} would take the wallet below zero",
        update.account_id, update.credit_micros));
  }
  return ref.rec->wallet_micros.load(std::memory_order_relaxed);
}

Decision Enforcer::CheckCreate(std::string_view account_id,
                               std::string_view gauge, int64_t current) const {
  const int64_t now = impl_->Now(0);
  const CompiledCatalog& cc = *impl_->compiled.load(std::memory_order_acquire);
  const SubjectRef ref =
      impl_->table.Find(Scope::kAccount, account_id, {},
                        impl_->table.Hash(Scope::kAccount, account_id, {}));
  if (!ref) return DenyWith(DenyKind::kUnknownAccount, 403);
  const int plan_id =
      EffectivePlan(ref.rec->meta.load(std::memory_order_acquire),
                    ref.rec->profile.load(std::memory_order_acquire), now);
  if (plan_id < 0 || static_cast<size_t>(plan_id) >= cc.plans.size() ||
      cc.plans[plan_id] == nullptr) {
    return DenyWith(DenyKind::kUnknownPlan, 403);
  }
  const CompiledPlan& plan = *cc.plans[plan_id];
  for (const Gauge& g : plan.source->gauges) {
    if (g.name != gauge) continue;
    Decision d;
    d.used = current;
    d.limit_value = g.unlimited ? 0 : g.cap;
    d.hard_limit = d.limit_value;
    if (!g.unlimited && current + 1 > g.cap) {
      d.status = 402;
      d.deny = DenyKind::kResourceLimit;
      d.reason = DenyKindReason(DenyKind::kResourceLimit);
      if (const Plan* up = cc.catalog->CheapestPlanWithGauge(gauge, current + 1,
                                                             plan.source->id)) {
        d.upgrade_plan = up->id;
      }
      if (current > g.cap) {
        // Static text: a Decision's strings outlive the call.
        d.message =
            "over the plan's cap (after a downgrade): the ones past it are "
            "read-only";
      }
      d.remaining = 0;
    } else {
      d.remaining = g.unlimited ? kMaxCount : g.cap - current - 1;
    }
    return d;
  }
  return Decision{};  // a gauge the plan does not cap
}

absl::Status Enforcer::ReloadCatalog(std::shared_ptr<const Catalog> catalog) {
  if (catalog == nullptr) {
    return absl::InvalidArgumentError("ReloadCatalog: catalog is null");
  }
  std::lock_guard<std::mutex> lock(impl_->admin_mu);
  return impl_->InstallCatalog(std::move(catalog));
}

absl::StatusOr<AccountUsage> Enforcer::Usage(
    std::string_view account_id, int64_t now_ms,
    std::span<const GaugeCount> gauge_counts) const {
  const int64_t now = impl_->Now(now_ms);
  const CompiledCatalog& cc = *impl_->compiled.load(std::memory_order_acquire);
  const SubjectRef ref =
      impl_->table.Find(Scope::kAccount, account_id, {},
                        impl_->table.Hash(Scope::kAccount, account_id, {}));
  if (!ref) {
    return absl::NotFoundError(
        fmt::format("account \"{}\": not found", account_id));
  }
  const uint64_t meta = ref.rec->meta.load(std::memory_order_acquire);
  const AccountProfile* profile =
      ref.rec->profile.load(std::memory_order_acquire);
  const int plan_id = EffectivePlan(meta, profile, now);
  if (plan_id < 0 || static_cast<size_t>(plan_id) >= cc.plans.size() ||
      cc.plans[plan_id] == nullptr) {
    return absl::FailedPreconditionError(fmt::format(
        "account \"{}\": its plan is not in the catalog", account_id));
  }
  const CompiledPlan& plan = *cc.plans[plan_id];
  AccountUsage usage;
  usage.account_id = std::string(account_id);
  usage.plan_id = plan.source->id;
  usage.state = MetaState(meta);
  const Window period = PeriodWindow(*ref.rec, 0, now);
  usage.period_start_ms = period.start_ms;
  usage.period_end_ms = period.end_ms;
  usage.wallet_micros = ref.rec->wallet_micros.load(std::memory_order_relaxed);
  if (internal::SyncLink* link = impl_->sync.load(std::memory_order_acquire);
      link != nullptr && link->share_wallets) {
    // The account's balance, not this instance's lease of it (0 until the
    // sync, asked here for a plan that needs a wallet, has heard it).
    const int64_t balance = link->WalletBalance(ref.index, ref.gen);
    if (balance < 0 && plan.source->wallet.required) {
      link->wallets.Push(internal::PackDirty(ref.index, ref.gen));
    }
    usage.wallet_micros = std::max<int64_t>(0, balance);
  }
  if (profile != nullptr && profile->scheduled_plan >= 0 &&
      profile->scheduled_plan != plan_id &&
      static_cast<size_t>(profile->scheduled_plan) < cc.plans.size() &&
      cc.plans[profile->scheduled_plan] != nullptr) {
    usage.scheduled_plan_id = cc.plans[profile->scheduled_plan]->source->id;
  }
  internal::SyncLink* const link = impl_->sync.load(std::memory_order_acquire);
  for (const CompiledLimit& limit : plan.limits) {
    if (limit.scope != Scope::kAccount) continue;
    const Window w = CurrentWindow(limit, *ref.rec, now);
    const bool sliding = limit.mode == WindowMode::kSliding;
    CellView view = ViewOf(
        ref.rec->cells[limit.cell].load(std::memory_order_relaxed),
        sliding ? ref.rec->cells[limit.cell + 1].load(std::memory_order_relaxed)
                : 0,
        w.tag, sliding);
    if (link != nullptr && limit.synced) {
      // The cluster's usage: the other instances' as the sync last heard.
      view = internal::Plus(view, link->RemoteView(ref.index, limit.cell,
                                                   ref.gen, w.tag, sliding));
    }
    LimitUsage lu;
    lu.limit_id = limit.source->id;
    lu.scope = limit.scope;
    lu.meter = limit.source->meter;
    lu.window = limit.window;
    lu.window_count = limit.window_count;
    const Caps caps = CapsFor(limit, profile, {});
    lu.unlimited = caps.unlimited;
    lu.limit = caps.unlimited ? 0 : caps.limit;
    lu.hard_limit = caps.unlimited ? 0 : caps.hard;
    lu.used = Estimate(view, w, now);
    lu.window_start_ms = w.start_ms;
    lu.window_end_ms = w.end_ms;
    lu.state = LimitStateName(caps.unlimited, lu.used, caps.limit, caps.hard,
                              caps.nudge_at);
    usage.limits.push_back(std::move(lu));
  }
  impl_->ReadModelUsage(plan, *ref.rec, account_id, now, &usage);
  for (const Gauge& g : plan.source->gauges) {
    GaugeUsage& gu = usage.gauges.emplace_back();
    gu.name = g.name;
    gu.unlimited = g.unlimited;
    gu.cap = g.cap;
    for (const GaugeCount& c : gauge_counts) {
      if (c.gauge != g.name) continue;
      gu.current = std::max<int64_t>(0, c.current);
      if (!g.unlimited && gu.current > g.cap) {
        gu.read_only = gu.current - g.cap;
        if (const Plan* up = cc.catalog->CheapestPlanWithGauge(
                g.name, gu.current, plan.source->id)) {
          gu.lifted_by = up->id;
        }
      }
    }
  }
  return usage;
}

void Enforcer::Maintain(int64_t now_ms) {
  const int64_t now = impl_->Now(now_ms);
  DeliverEvents(now);
  ReservationTable& res = impl_->reservations;
  for (uint32_t i = 0; i < res.capacity(); ++i) {
    uint32_t gen = 0;
    if (!res.BeginExpire(i, now, &gen)) continue;
    impl_->Refund(res.at(i));
    res.EndSettle(&res.at(i), gen, internal::SlotOutcome::kExpired);
    impl_->reservations_expired.fetch_add(1, std::memory_order_relaxed);
  }
  std::lock_guard<std::mutex> lock(impl_->admin_mu);
  const auto real_now = std::chrono::steady_clock::now();
  std::erase_if(impl_->retired_profiles, [&](const Impl::RetiredProfile& r) {
    if (real_now - r.at < Impl::kRetireAfter) return false;
    delete r.profile;
    return true;
  });
  const CompiledCatalog& cc = *impl_->compiled.load(std::memory_order_relaxed);
  const size_t reclaimed = impl_->table.Reclaim(
      [&](SubjectRecord& rec) { return impl_->Reclaimable(rec, cc, now); }, now,
      impl_->options.idle_subject_ttl_ms);
  impl_->subjects_reclaimed.fetch_add(reclaimed, std::memory_order_relaxed);
}

size_t Enforcer::DeliverEvents(int64_t now_ms) {
  EventSink* sink = impl_->options.event_sink;
  if (sink == nullptr) return 0;
  const int64_t now = impl_->Now(now_ms);
  std::lock_guard<std::mutex> lock(impl_->events_mu);
  const CompiledCatalog& cc = *impl_->compiled.load(std::memory_order_acquire);
  size_t delivered = 0;
  internal::RawEvent e;
  // The Enforcer's own crossings, then the sync component's (cluster-wide
  // crossings of synced counters, from its own queue).
  internal::SyncLink* const link = impl_->sync.load(std::memory_order_acquire);
  const auto pop = [&] {
    return impl_->events.Pop(&e) || (link != nullptr && link->events.Pop(&e));
  };
  while (pop()) {
    if (e.plan < 0 || static_cast<size_t>(e.plan) >= cc.plans.size() ||
        cc.plans[e.plan] == nullptr ||
        e.limit_index >= cc.plans[e.plan]->limits.size()) {
      continue;  // the plan changed since
    }
    const CompiledLimit& limit = cc.plans[e.plan]->limits[e.limit_index];
    const SubjectRecord& rec = impl_->table.at(e.record);
    const uint32_t ctrl = rec.ctrl.load(std::memory_order_acquire);
    ThresholdEvent event;
    std::string sub;
    CounterTable::ReadKey(rec, &event.scope, &event.account_id, &sub);
    if (rec.ctrl.load(std::memory_order_acquire) != ctrl ||
        static_cast<uint8_t>(SubjectRecord::Generation(ctrl)) != e.gen) {
      continue;  // the subject was reclaimed since
    }
    event.kind = static_cast<ThresholdKind>(e.kind);
    event.subject_id = std::move(sub);
    event.limit_id = limit.source->id;
    event.window_start_ms = e.window_start_ms;
    event.window_end_ms = e.window_end_ms;
    event.used = e.used;
    event.limit = e.limit;
    std::string key =
        fmt::format("{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}", e.kind,
                    static_cast<int>(event.scope), event.account_id,
                    event.subject_id, event.limit_id, event.window_start_ms);
    if (!impl_->fired.emplace(std::move(key), e.window_end_ms).second) {
      continue;  // already told
    }
    sink->OnThreshold(event);
    ++delivered;
  }
  absl::erase_if(impl_->fired,
                 [&](const auto& entry) { return entry.second < now; });
  impl_->events_delivered.fetch_add(delivered, std::memory_order_relaxed);
  return delivered;
}

int Enforcer::MeterId(std::string_view meter) const {
  std::lock_guard<std::mutex> lock(impl_->admin_mu);
  return impl_->meters.Find(meter);
}

std::shared_ptr<const Catalog> Enforcer::catalog() const {
  return impl_->compiled.load(std::memory_order_acquire)->catalog;
}

EnforcerStats Enforcer::Stats() const {
  EnforcerStats s;
  s.subjects = impl_->table.size();
  s.subject_capacity = impl_->table.max_subjects();
  s.reservations_pending = impl_->reservations.CountPending();
  s.reservations_expired =
      impl_->reservations_expired.load(std::memory_order_relaxed);
  s.subjects_reclaimed =
      impl_->subjects_reclaimed.load(std::memory_order_relaxed);
  s.capacity_denials = impl_->capacity_denials.load(std::memory_order_relaxed);
  s.subject_denials = impl_->subject_denials.load(std::memory_order_relaxed);
  s.unreserved_admits =
      impl_->unreserved_admits.load(std::memory_order_relaxed);
  s.events_delivered = impl_->events_delivered.load(std::memory_order_relaxed);
  s.events_dropped = impl_->events_dropped.load(std::memory_order_relaxed);
  if (internal::SyncLink* link = impl_->sync.load(std::memory_order_acquire)) {
    s.events_dropped += link->events_dropped.load(std::memory_order_relaxed);
  }
  s.model_usage_other =
      impl_->model_usage_other.load(std::memory_order_relaxed);
  s.model_usage_skipped =
      impl_->model_usage_skipped.load(std::memory_order_relaxed);
  return s;
}

}  // namespace plangate
