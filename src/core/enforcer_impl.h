// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// enforcer_impl.h: the state behind an Enforcer, shared by the files that
// implement it: decide.cc (Check, Peek), settle.cc (Commit, refunds),
// enforcer.cc (accounts, catalogs, reports, housekeeping) and
// sync_access.cc (the cluster sync component's access).
//
// Thread safety: as Enforcer (enforcer.h). The hot-path members (table,
// reservations, compiled, sync, events, the counters) are lock-free; the
// slow-path members are under admin_mu or events_mu, as marked.

#ifndef PLANGATE_CORE_ENFORCER_IMPL_H_
#define PLANGATE_CORE_ENFORCER_IMPL_H_

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/optimization.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "core/account_profile.h"
#include "core/compiled_catalog.h"
#include "core/counter_table.h"
#include "core/event_queue.h"
#include "core/reservation_table.h"
#include "core/sync_link.h"
#include "core/window.h"
#include "plangate/enforcer.h"

namespace plangate {
namespace internal {

struct PendingCharge;  // decide.cc

// A denial of `kind` with `status`, and its static reason.
inline Decision DenyWith(DenyKind kind, int status) {
  Decision d;
  d.status = status;
  d.deny = kind;
  d.reason = DenyKindReason(kind);
  return d;
}

}  // namespace internal

struct Enforcer::Impl {
  using AccountProfile = internal::AccountProfile;
  using Caps = internal::Caps;
  using CompiledCatalog = internal::CompiledCatalog;
  using CompiledLimit = internal::CompiledLimit;
  using CompiledPlan = internal::CompiledPlan;
  using CounterTable = internal::CounterTable;
  using ReservationSlot = internal::ReservationSlot;
  using ReservationTable = internal::ReservationTable;
  using SubjectRecord = internal::SubjectRecord;
  using SubjectRef = internal::SubjectRef;
  using Window = internal::Window;

  Impl(EnforcerOptions opts)
      : options(opts),
        clock(opts.clock != nullptr ? opts.clock : SystemClock::Default()),
        table(opts.max_subjects),
        reservations(opts.max_reservations),
        events(opts.event_sink != nullptr ? opts.event_queue_capacity : 2) {}

  int64_t Now(int64_t now_ms) const {
    return now_ms != 0 ? now_ms : clock->NowMs();
  }

  void DecideInto(const CheckRequest& req, bool charge, Decision* out);
  void ExtendInto(const ExtendRequest& req, Decision* out);

  // The evaluate-then-charge core shared by Check and Extend (decide.cc):
  // every limit of `plan` with a subject and an amount (amount_of returns
  // -1 for a limit that does not apply) is evaluated; a denial, a Peek
  // (charge false) or nothing to charge ends in kDecided with *out filled;
  // else every cell is charged (all or none) and *num_charged pending
  // charges describe them. kStale: a record was reclaimed under us; retry.
  enum class ChargeOutcome { kCharged, kDecided, kStale };
  template <typename AmountOf>
  ChargeOutcome EvaluateAndCharge(
      const CompiledPlan& plan, int plan_id, SubjectRecord& account,
      const AccountProfile* profile, std::string_view user_id,
      const SubjectRef* subjects, int64_t now, internal::SyncLink* link,
      bool charge, int64_t debit, AmountOf amount_of,
      internal::PendingCharge* pending, int* num_charged, Decision* out);
  // Check (fast_check.cc): the common check decided in place, or what it
  // does not decide itself handed, with nothing written, to the general
  // path (GeneralCheck: DecideInto). The Decision is returned as a prvalue
  // so that an admit writes each of its fields once.
  Decision FastCheck(const CheckRequest& req);
  Decision GeneralCheck(const CheckRequest& req);
  // FastCheck's charge of a plan of N limits (0: any number), with a sync
  // attached (kLinked: link is not null) or not.
  template <int N, bool kLinked>
  ABSL_ATTRIBUTE_ALWAYS_INLINE Decision
  FastCharge(const CheckRequest& req, const CompiledPlan& plan, int plan_id,
             const SubjectRef& account, int64_t now, internal::SyncLink* link);
  // Whether Check tries FastCheck (tests turn it off to compare the two
  // paths: check_path_access.h).
  bool fast_checks = true;
  CommitResult Settle(const CommitRequest& commit);
  // The account record of `id`; on a miss (LookupAccountMiss, out of line)
  // a first sighting's record, or an empty ref with *denial filled.
  SubjectRef LookupAccount(std::string_view id, int64_t now_ms,
                           const CompiledCatalog& cc, bool may_insert,
                           internal::SyncLink* link, Decision* denial) {
    uint64_t hash = 0;
    const SubjectRef ref = table.FindAccount(id, &hash);
    if (ABSL_PREDICT_TRUE(ref)) return ref;
    return LookupAccountMiss(id, hash, now_ms, cc, may_insert, link, denial);
  }
  SubjectRef LookupAccountMiss(std::string_view id, uint64_t hash,
                               int64_t now_ms, const CompiledCatalog& cc,
                               bool may_insert, internal::SyncLink* link,
                               Decision* denial);
  // UpsertAccount's work, here only (nothing is published to a sync).
  absl::Status ApplyAccount(const AccountUpdate& update);
  absl::Status InstallCatalog(std::shared_ptr<const Catalog> catalog);
  void Refund(ReservationSlot& slot);
  bool Reclaimable(SubjectRecord& rec, const CompiledCatalog& cc,
                   int64_t now_ms);

  // Per-model usage (model_usage.cc), for a plan with num_model_meters:
  // counts an admitted check of `model` in its kModelScope record and
  // writes the ops to reserve (at most num_model_meters) to `ops`; returns
  // how many. Never denies.
  int CountByModel(const CompiledPlan& plan, const SubjectRef& account,
                   const CheckRequest& req, std::string_view model, int64_t now,
                   internal::SyncLink* link, internal::ReservedOp* ops);
  // The record to count `model` in: its own, else the "other" bucket, else
  // none (no room).
  SubjectRef ModelRecord(const CompiledPlan& plan, std::string_view account_id,
                         std::string_view model, int64_t now);
  // Fills usage->models (slow path).
  void ReadModelUsage(const CompiledPlan& plan, SubjectRecord& account,
                      std::string_view account_id, int64_t now,
                      AccountUsage* usage) const;
  std::atomic<uint64_t> model_usage_other{0};
  std::atomic<uint64_t> model_usage_skipped{0};
  // The models each account counts apart, for Usage; a name may outlive
  // its record (Usage prunes it).
  mutable std::mutex models_mu;
  mutable absl::flat_hash_map<std::string, std::vector<std::string>>
      model_names;  // under models_mu

  const EnforcerOptions options;
  Clock* const clock;
  CounterTable table;
  ReservationTable reservations;
  std::atomic<const CompiledCatalog*> compiled{nullptr};

  std::atomic<uint64_t> reservations_expired{0};
  std::atomic<uint64_t> subjects_reclaimed{0};
  std::atomic<uint64_t> capacity_denials{0};
  std::atomic<uint64_t> subject_denials{0};

  // The most projects, keys and users one account of `plan` may have
  // resident (Plan::max_subjects, else EnforcerOptions).
  uint32_t SubjectBudget(const CompiledPlan& plan) const {
    const auto own = static_cast<uint64_t>(plan.source->max_subjects);
    return own > 0 ? static_cast<uint32_t>(own) : default_subject_budget;
  }
  const uint32_t default_subject_budget =
      static_cast<uint32_t>(std::min<size_t>(
          0xffffffff, options.subjects_per_account != 0
                          ? options.subjects_per_account
                          : std::max<size_t>(1, options.max_subjects / 4)));
  std::atomic<uint64_t> unreserved_admits{0};
  std::atomic<uint64_t> events_delivered{0};
  std::atomic<uint64_t> events_dropped{0};

  internal::EventQueue events;
  std::mutex events_mu;  // one drainer at a time

  // The cluster sync component, when one is attached (sync.h). Links stay
  // alive as long as the Enforcer: a check may still hold one.
  std::atomic<internal::SyncLink*> sync{nullptr};
  std::vector<std::unique_ptr<internal::SyncLink>> links;  // under admin_mu

  // Tells the sync component that record `index` changed: the change log
  // (sync_link.h). seq_cst, all of it: the loads pair with the cell CAS
  // before them and with the sync strand's store of `consumed` before its
  // cell reads (a Dekker pair); `logged` is written by this path only.
  static void MarkDirty(internal::SyncLink* link, uint32_t index, uint8_t gen) {
    std::atomic<uint32_t>& logged = link->logged(index);
    uint32_t seq = logged.load(std::memory_order_seq_cst);
    for (;;) {
      if (seq != link->consumed(index).load(std::memory_order_seq_cst)) {
        return;  // queued, not consumed yet: the sync will read our change
      }
      const uint32_t next = (seq + 1) & internal::kChangeSeqMask;
      if (!logged.compare_exchange_weak(seq, next, std::memory_order_seq_cst,
                                        std::memory_order_seq_cst)) {
        continue;  // another change logged first: look again
      }
      if (!link->dirty.Push(internal::PackChange(index, gen, next))) {
        // No room: take the sequence back, so that the next change queues
        // the record again (what changed meanwhile is read with it).
        uint32_t expected = next;
        logged.compare_exchange_strong(expected, seq, std::memory_order_seq_cst,
                                       std::memory_order_relaxed);
        link->dirty_overflow.fetch_add(1, std::memory_order_relaxed);
      }
      return;
    }
  }
  // Crossings already delivered: key -> end of their window (for pruning).
  absl::flat_hash_map<std::string, int64_t> fired;  // under events_mu

  // Queues the threshold crossings of one charged limit (rare: only when
  // a request takes usage across a threshold).
  void NoteCrossings(const CompiledPlan& plan, int plan_id,
                     const CompiledLimit& limit, const Caps& caps,
                     uint32_t record, uint8_t gen, const Window& w,
                     int64_t before, int64_t after) {
    if (caps.unlimited) return;
    const auto note = [&](ThresholdKind kind) {
      internal::RawEvent e;
      e.record = record;
      e.gen = gen;
      e.kind = static_cast<uint8_t>(kind);
      e.limit_index = static_cast<uint16_t>(&limit - plan.limits.data());
      e.plan = plan_id;
      e.window_start_ms = w.start_ms;
      e.window_end_ms = w.end_ms;
      e.used = after;
      e.limit = caps.limit;
      if (!events.Push(e)) {
        events_dropped.fetch_add(1, std::memory_order_relaxed);
      }
    };
    if (before < caps.nudge_at && after >= caps.nudge_at) {
      note(ThresholdKind::kSoftNudge);
    }
    if (before < caps.limit && after >= caps.limit) {
      note(ThresholdKind::kHardCap);
    }
  }

  // Slow-path state, under admin_mu.
  mutable std::mutex admin_mu;
  internal::Registry meters;
  internal::Registry plans;
  // Every compilation stays alive as long as the Enforcer, so that a
  // racing check and every Decision's string_views stay valid.
  std::vector<std::unique_ptr<CompiledCatalog>> compilations;
  // Profiles replaced by UpsertAccount; freed by Maintain once no check
  // can still be reading them (kRetireAfter of real time later).
  struct RetiredProfile {
    const AccountProfile* profile;
    std::chrono::steady_clock::time_point at;
  };
  std::vector<RetiredProfile> retired_profiles;
  static constexpr std::chrono::seconds kRetireAfter{2};

  ~Impl() {
    table.ForEachLive([](SubjectRecord& rec) {
      delete rec.profile.load(std::memory_order_relaxed);
    });
    for (const RetiredProfile& r : retired_profiles) delete r.profile;
  }
};

}  // namespace plangate

#endif  // PLANGATE_CORE_ENFORCER_IMPL_H_
