// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "plangate/decision.h"

namespace plangate {

std::string_view DenyKindReason(DenyKind kind) {
  switch (kind) {
    case DenyKind::kNone:
    case DenyKind::kLimit:
      return {};
    case DenyKind::kUnknownAccount:
      return "unknown_account";
    case DenyKind::kUnknownPlan:
      return "unknown_plan";
    case DenyKind::kInvalidRequest:
      return "invalid_request";
    case DenyKind::kCapacity:
      return "capacity_exhausted";
    case DenyKind::kPaymentRequired:
      return "payment_required";
    case DenyKind::kFeatureNotInPlan:
      return "feature_not_in_plan";
    case DenyKind::kModelNotAllowed:
      return "plan_limit_error";
    case DenyKind::kKeyKindNotAllowed:
      return "production_access_disabled";
    case DenyKind::kInsufficientCredit:
      return "insufficient_credit";
    case DenyKind::kResourceLimit:
      return "resource_limit_reached";
    case DenyKind::kSyncing:
      return "quota_syncing";
    case DenyKind::kSubjectLimit:
      return "subject_limit";
  }
  return {};
}

}  // namespace plangate
