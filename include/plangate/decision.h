// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// decision.h: what Enforcer::Check returns.
//
// A Decision is a plain value: being denied is a normal outcome, never an
// error. It says whether to admit, with which warnings, or which status and
// reason to deny with, and which limit decided. An admitted decision carries
// a Reservation to hand back to Enforcer::Commit once the upstream answered.
//
//   plangate::Decision d = enforcer->Check(request);
//   if (!d.admitted()) return Reply(d.status, d.reason);
//   if (d.warnings & plangate::kWarnSoftNudge) AddHeader(...);
//
// Strings in a Decision (reason, message, limit_id, meter) point into
// static storage or into a catalog the Enforcer keeps alive for its whole
// lifetime, so a Decision may be kept as long as its Enforcer lives.
//
// Thread safety: a value type; distinct objects may be used concurrently.

#ifndef PLANGATE_DECISION_H_
#define PLANGATE_DECISION_H_

#include <cstdint>
#include <string_view>

#include "plangate/catalog.h"

namespace plangate {

// Why a request was denied (or would be, in shadow mode). kLimit is a
// catalog limit; its reason string is the limit's own.
enum class DenyKind : uint8_t {
  kNone = 0,
  kLimit,               // a limit's hard cap (status and reason per limit)
  kUnknownAccount,      // 403 unknown_account: not registered, no default plan
  kUnknownPlan,         // 403 unknown_plan: the account's plan left the catalog
  kInvalidRequest,      // 400 invalid_request: e.g. negative amount
  kCapacity,            // 503 capacity_exhausted: the counter cache is full
  kPaymentRequired,     // 402 payment_required: subscription past due
  kFeatureNotInPlan,    // 402 feature_not_in_plan (upgrade_plan names a fix)
  kModelNotAllowed,     // 403 plan_limit_error: not in the managed allowlist
  kKeyKindNotAllowed,   // 403 production_access_disabled
  kInsufficientCredit,  // 402 insufficient_credit: wallet below its minimum
  kResourceLimit,       // 402 resource_limit_reached: a gauge at its cap
  kSyncing,             // 429 quota_syncing: a leased counter this instance
                        // has not synced yet is at its cold-start share
  kSubjectLimit,        // 429 subject_limit: the account has its plan's
                        // most projects, keys and users resident
};

// Warnings on an admitted decision, as bits.
enum Warning : uint32_t {
  kWarnNone = 0,
  kWarnSoftNudge = 1u << 0,     // a limit reached its soft_nudge fraction
  kWarnGrace = 1u << 1,         // a limit is past 100%, within its grace
  kWarnShadowDenied = 1u << 2,  // a shadow limit would have denied
  kWarnPastDue = 1u << 3,       // subscription past due, inside its grace
};

// A handle on what Check reserved. Pass it to Enforcer::Commit once. An
// empty (default) reservation is valid to commit and does nothing.
struct Reservation {
  uint32_t slot = 0;
  uint32_t generation = 0;  // 0: no reservation
  bool empty() const { return generation == 0; }
};

// The limit that decided, or the first one that warned.
struct LimitRef {
  std::string_view limit_id;
  Scope scope = Scope::kAccount;
  std::string_view meter;
  WindowUnit window = WindowUnit::kBillingPeriod;
  uint32_t window_count = 1;  // see Limit::window_count
  WindowMode mode = WindowMode::kFixed;
};

struct Decision {
  int status = 200;  // 200 admitted; else 4xx/5xx
  DenyKind deny = DenyKind::kNone;
  std::string_view reason;   // machine-readable: "billing_limit_reached"...
  std::string_view message;  // human-readable; may be empty
  uint32_t warnings = kWarnNone;
  bool shadow = false;  // admitted only because of shadow mode

  // The deciding limit: the denying one, else the tightest warning one.
  bool has_limit = false;
  LimitRef limit;
  int64_t limit_value = 0;      // the limit's nominal cap
  int64_t hard_limit = 0;       // cap including grace
  int64_t used = 0;             // usage before this request
  int64_t remaining = 0;        // admitted: hard_limit - used - amount;
                                // denied: hard_limit - used; at least 0
  int64_t window_start_ms = 0;  // when the deciding window began (Unix ms)
  int64_t reset_ms = 0;         // when the deciding window ends (Unix ms)
  int64_t retry_after_ms = 0;   // for denials: until the request may fit

  // For denials an upgrade fixes: the cheapest plan (in upgrade order) that
  // has the missing feature, or the next plan up for a limit. May be empty.
  std::string_view upgrade_plan;

  Reservation reservation;  // set when admitted and something was counted

  bool admitted() const { return status < 300; }
};

// Static names of DenyKind reasons ("unknown_account" ...); empty for kLimit
// and kNone.
std::string_view DenyKindReason(DenyKind kind);

}  // namespace plangate

#endif  // PLANGATE_DECISION_H_
