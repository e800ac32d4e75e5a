// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// check_path_access.h: what tests may switch on an Enforcer's check path.
// The fast check (fast_check.cc) and the general path must decide alike;
// a test turns the fast one off on one enforcer and replays the same
// traffic through both.
//
// Thread safety: call before the enforcer's first Check.

#ifndef PLANGATE_CORE_CHECK_PATH_ACCESS_H_
#define PLANGATE_CORE_CHECK_PATH_ACCESS_H_

#include <string_view>

#include "plangate/enforcer.h"

namespace plangate::internal {

class CheckPathAccess {
 public:
  // Whether Check tries the fast check first (on by default).
  static void SetFastChecks(Enforcer& e, bool on);
  // Whether plan `plan_id` of the current catalog compiled to a fast
  // program (fast_plan.h).
  static bool HasFastPlan(Enforcer& e, std::string_view plan_id);
};

}  // namespace plangate::internal

#endif  // PLANGATE_CORE_CHECK_PATH_ACCESS_H_
