// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// account_profile.h: an account's state as the hot path reads it.
//
// An account record's `meta` word holds its plan and subscription state;
// everything else UpsertAccount said (overrides, default model, past-due
// deadline, a scheduled plan change) is an AccountProfile, immutable once
// published in the record and replaced whole.
//
// Thread safety: an AccountProfile is immutable once published (release
// store of the record's `profile`, acquire load by readers); the enforcer
// retires a replaced one and frees it only once no check can still read
// it. The functions are pure.

#ifndef PLANGATE_CORE_ACCOUNT_PROFILE_H_
#define PLANGATE_CORE_ACCOUNT_PROFILE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/optimization.h"
#include "core/compiled_catalog.h"
#include "plangate/enforcer.h"

namespace plangate::internal {

// A limit's numbers for one account (or one user of it).
struct Caps {
  bool unlimited = false;
  int64_t limit = 0;
  int64_t hard = 0;
  int64_t nudge_at = 0;
};

// One LimitOverride, resolved to caps.
struct ResolvedOverride {
  std::string limit_id;
  std::string user_id;  // empty: the account's own limit
  Caps caps;
};

struct AccountProfile {
  std::vector<ResolvedOverride> overrides;
  std::string default_model;
  int64_t past_due_deadline_ms = 0;
  int scheduled_plan = -1;      // stable plan id, or -1
  int64_t scheduled_at_ms = 0;  // when scheduled_plan takes over

  // Nothing beyond the defaults: the record then holds no profile (null),
  // and a check reads no cache line of one.
  bool empty() const {
    return overrides.empty() && default_model.empty() &&
           past_due_deadline_ms == 0 && scheduled_plan < 0;
  }
};

// meta, bits 0..24: [plan id + 1:16][state:8][registered:1] (low to high).
constexpr uint64_t PackMeta(int plan, SubscriptionState state,
                            bool registered) {
  return static_cast<uint64_t>(plan + 1) |
         (uint64_t{static_cast<uint8_t>(state)} << 16) |
         (uint64_t{registered} << 24);
}
inline int MetaPlan(uint64_t meta) {
  return static_cast<int>(meta & 0xffff) - 1;
}
inline SubscriptionState MetaState(uint64_t meta) {
  return static_cast<SubscriptionState>((meta >> 16) & 0xff);
}
inline bool MetaRegistered(uint64_t meta) { return (meta >> 24) & 1; }

// The plan in force at now_ms: a scheduled change takes over at its time.
inline int EffectivePlan(uint64_t meta, const AccountProfile* profile,
                         int64_t now_ms) {
  if (profile != nullptr && profile->scheduled_plan >= 0 &&
      now_ms >= profile->scheduled_at_ms) {
    return profile->scheduled_plan;
  }
  return MetaPlan(meta);
}

inline Caps PlanCaps(const CompiledLimit& limit) {
  return {limit.unlimited, limit.limit, limit.hard, limit.nudge_at};
}

// The override of `limit` for this account and user (a user's own beats
// the account's), or the plan's caps when there is none.
Caps OverrideCaps(const CompiledLimit& limit, const AccountProfile& profile,
                  std::string_view user_id);

// The caps of `limit` for this account and user.
inline Caps CapsFor(const CompiledLimit& limit, const AccountProfile* profile,
                    std::string_view user_id) {
  if (ABSL_PREDICT_TRUE(profile == nullptr || profile->overrides.empty())) {
    return PlanCaps(limit);
  }
  return OverrideCaps(limit, *profile, user_id);
}

}  // namespace plangate::internal

#endif  // PLANGATE_CORE_ACCOUNT_PROFILE_H_
