// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// trace.h: the accounts file and the request trace quotactl replays.
//
// docs/replay.md documents both formats. The accounts file is a JSON array
// of accounts; the trace is JSONL, one event per line. Both are validated
// as a whole against the catalog before anything is replayed, and every
// problem is reported as "FILE:LINE: field: reason", e.g.
//
//   trace.jsonl:17: t: must be an integer (ms) or an RFC 3339 UTC time
//   accounts.json:4: accounts[1].plan: unknown plan "gold"
//
// Parsing never throws and never crashes on any input.
//
// Thread safety: the parse functions are pure and may run concurrently; the
// parsed values are plain data.

#ifndef PLANGATE_TOOLS_QUOTACTL_TRACE_H_
#define PLANGATE_TOOLS_QUOTACTL_TRACE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "internal/period.h"
#include "plangate/catalog.h"
#include "plangate/enforcer.h"

namespace plangate::replay {

// The latest instant a trace or accounts file may name:
// 9999-12-31T23:59:59.999Z.
inline constexpr int64_t kMaxTimeMs = 253'402'300'799'999;

// Parses "2026-01-31T00:00:00Z" (RFC 3339, UTC: "Z" or "+00:00", optional
// fraction of up to 3 digits, years 1970-9999) into Unix ms.
std::optional<int64_t> ParseRfc3339(std::string_view text);
using internal::FormatRfc3339;  // from internal/period.h

// One account of the accounts file, as registered before the trace starts.
struct AccountSpec {
  int line = 0;  // where its object starts
  std::string id;
  std::string plan;
  int64_t anchor_ms = 0;
  SubscriptionState state = SubscriptionState::kActive;
  int64_t past_due_until_ms = 0;
  std::string default_model;
  int64_t wallet_micros = 0;  // initial wallet credit
  std::string scheduled_plan;
  std::vector<LimitOverride> overrides;  // custom numbers for plan limits
};

enum class EventType : uint8_t {
  kRequest = 0,
  kPlanChange,
  kPaymentFailed,
  kPaymentSucceeded,
  kBlock,
  kWalletCredit,
  kCreate,
  kMaintain,
};
std::string_view EventTypeName(EventType type);

// What a trace line says its decision must be; each field is compared only
// when present.
struct Expectation {
  std::optional<int> status;
  std::optional<std::string> reason;
  std::optional<uint32_t> warnings;  // plangate::Warning bits, exact set
  std::optional<std::string> upgrade_plan;
  std::optional<std::string> limit;  // the deciding limit's id
  std::optional<int64_t> used;
  std::optional<int64_t> remaining;
  std::optional<int64_t> retry_after_ms;
  // The account's wallet balance after the event (micro-units).
  std::optional<int64_t> wallet_balance;

  bool empty() const {
    return !status && !reason && !warnings && !upgrade_plan && !limit &&
           !used && !remaining && !retry_after_ms && !wallet_balance;
  }
  int count() const {
    return !!status + !!reason + !!warnings + !!upgrade_plan + !!limit +
           !!used + !!remaining + !!retry_after_ms + !!wallet_balance;
  }
};

// An amount of a meter, by the meter's index in Catalog::meters().
struct TraceAmount {
  int meter = 0;
  int64_t amount = 0;
};

// One trace line. Fields not used by its type keep their defaults.
struct Event {
  int line = 0;
  int64_t t_ms = 0;
  EventType type = EventType::kRequest;
  std::string account;  // empty only for maintain

  // request
  std::string id;
  std::string key;
  std::string user;
  std::string project;
  std::string model;
  KeyKind kind = KeyKind::kLive;
  bool byok = false;
  std::vector<std::string> features;
  std::vector<TraceAmount> amounts;
  int64_t wallet_micros = 0;
  bool success = true;
  std::vector<TraceAmount> actual;

  // plan_change: each field present changes; an empty scheduled_plan
  // cancels a scheduled change.
  std::optional<std::string> plan;
  std::optional<std::string> scheduled_plan;
  std::optional<std::vector<LimitOverride>> overrides;  // replaces them all
  // payment_failed
  int64_t grace_until_ms = 0;
  // wallet_credit
  int64_t micros = 0;
  // create
  std::string gauge;
  int64_t current = 0;

  Expectation expect;
};

// Parses an accounts file against `catalog` (plans must exist). On error
// returns InvalidArgument listing every problem, one per line, each as
// "<file_name>:LINE: field: reason".
absl::StatusOr<std::vector<AccountSpec>> ParseAccounts(
    std::string_view text, std::string_view file_name, const Catalog& catalog);

// Parses a trace against `catalog` (meters, plans) and `accounts` (events
// that change an account must name one of them). Errors as ParseAccounts.
absl::StatusOr<std::vector<Event>> ParseTrace(
    std::string_view text, std::string_view file_name, const Catalog& catalog,
    const std::vector<AccountSpec>& accounts);

// Names of the warning bits, in bit order ("soft_nudge", "grace",
// "shadow_denied", "past_due").
std::vector<std::string_view> WarningNames(uint32_t warnings);

}  // namespace plangate::replay

#endif  // PLANGATE_TOOLS_QUOTACTL_TRACE_H_
