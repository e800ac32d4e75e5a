// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "core/account_profile.h"

namespace plangate::internal {

Caps OverrideCaps(const CompiledLimit& limit, const AccountProfile& profile,
                  std::string_view user_id) {
  const ResolvedOverride* found = nullptr;
  for (const ResolvedOverride& o : profile.overrides) {
    if (o.limit_id != limit.source->id) continue;
    if (o.user_id.empty()) {
      if (found == nullptr) found = &o;
    } else if (o.user_id == user_id) {
      found = &o;  // a user's own limit beats the account's
      break;
    }
  }
  return found != nullptr ? found->caps : PlanCaps(limit);
}

}  // namespace plangate::internal
