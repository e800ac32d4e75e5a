// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// The cluster sync component's access to an Enforcer (sync_link.h).

#include <mutex>
#include <string>
#include <string_view>

#include "core/enforcer_impl.h"
#include "core/sync_link.h"

namespace plangate {
namespace internal {

absl::StatusOr<SyncLink*> SyncAccess::Attach(Enforcer& e,
                                             std::unique_ptr<SyncLink> link) {
  std::lock_guard<std::mutex> lock(e.impl_->admin_mu);
  if (e.impl_->sync.load(std::memory_order_relaxed) != nullptr) {
    return absl::FailedPreconditionError(
        "RedisSync: the enforcer already has a sync component attached");
  }
  SyncLink* raw = link.get();
  e.impl_->links.push_back(std::move(link));
  // Release: checks that acquire the pointer see the link's settings.
  e.impl_->sync.store(raw, std::memory_order_release);
  return raw;
}

void SyncAccess::Detach(Enforcer& e) {
  std::lock_guard<std::mutex> lock(e.impl_->admin_mu);
  e.impl_->sync.store(nullptr, std::memory_order_release);
}

CounterTable& SyncAccess::Table(Enforcer& e) { return e.impl_->table; }

Clock& SyncAccess::ClockOf(Enforcer& e) { return *e.impl_->clock; }

PublishedFacts SyncAccess::Facts(Enforcer& e) {
  return PublishedFacts{&e.impl_->table, &e.impl_->compiled};
}

bool SyncAccess::WantsEvents(Enforcer& e) {
  return e.impl_->options.event_sink != nullptr;
}

bool SyncAccess::AccountIdOf(Enforcer& e, uint32_t index, uint8_t gen,
                             std::string* id) {
  SubjectRecord& rec = e.impl_->table.at(index);
  const uint32_t ctrl = rec.ctrl.load(std::memory_order_acquire);
  if (SubjectRecord::State(ctrl) != RecordState::kLive ||
      static_cast<uint8_t>(SubjectRecord::Generation(ctrl)) != gen) {
    return false;
  }
  Scope scope = Scope::kAccount;
  std::string sub;
  CounterTable::ReadKey(rec, &scope, id, &sub);
  // Reused while we read the key: not the record that was pushed.
  if (rec.ctrl.load(std::memory_order_acquire) != ctrl) {
    return false;
  }
  return scope == Scope::kAccount;
}

bool SyncAccess::HasAccount(Enforcer& e, std::string_view id) {
  CounterTable& table = e.impl_->table;
  return static_cast<bool>(
      table.Find(Scope::kAccount, id, {}, table.Hash(Scope::kAccount, id, {})));
}

std::atomic<int64_t>* SyncAccess::WalletOf(Enforcer& e, uint32_t index,
                                           uint8_t gen) {
  SubjectRecord& rec = e.impl_->table.at(index);
  const uint32_t ctrl = rec.ctrl.load(std::memory_order_acquire);
  if (SubjectRecord::State(ctrl) != RecordState::kLive ||
      static_cast<uint8_t>(SubjectRecord::Generation(ctrl)) != gen) {
    return nullptr;
  }
  return &rec.wallet_micros;
}

absl::Status SyncAccess::ApplyAccount(Enforcer& e,
                                      const AccountUpdate& update) {
  return e.impl_->ApplyAccount(update);
}

}  // namespace internal
}  // namespace plangate
