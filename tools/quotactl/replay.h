// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// replay.h: replays a parsed trace through an Enforcer on a simulated clock.
//
// Replay registers the accounts at the trace's first instant, then applies
// each event at its time: requests are checked and, when admitted, committed
// with their outcome and actual amounts; account events upsert the account;
// create events ask CheckCreate. Every request and create produces one
// decision line of JSON (docs/replay.md), and the run is tallied per account
// for the summary. Given the same inputs the output is byte-identical: only
// the simulated clock is read, and every map is ordered.
//
//   auto summary = plangate::replay::Replay(catalog, accounts, events,
//                                           {.on_decision = Print});
//   std::fputs(plangate::replay::FormatSummary(*summary).c_str(), stderr);
//
// Thread safety: Replay uses only its own Enforcer; concurrent calls are
// independent.

#ifndef PLANGATE_TOOLS_QUOTACTL_REPLAY_H_
#define PLANGATE_TOOLS_QUOTACTL_REPLAY_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "plangate/catalog.h"
#include "plangate/enforcer.h"
#include "trace.h"

namespace plangate::replay {

struct ReplayOptions {
  // Names used in messages ("trace.jsonl:17: ...").
  std::string trace_name = "trace";
  std::string accounts_name = "accounts";
  // Compare each event's "expect" with its decision.
  bool check = false;
  // Capacities and TTLs of the Enforcer; its clock is always the replay's
  // simulated clock.
  EnforcerOptions enforcer;
  // Receives each decision line, without its newline.
  std::function<void(std::string_view)> on_decision;
  // Receives (events done, events in all) about every 1% of the trace.
  std::function<void(size_t, size_t)> on_progress;
};

// Decisions of one account (requests and creates).
struct Tally {
  int64_t decisions = 0;
  int64_t admitted = 0;
  int64_t warned = 0;  // admitted with at least one warning
  int64_t soft_nudge = 0;
  int64_t grace = 0;
  int64_t past_due = 0;
  int64_t shadow_denied = 0;
  int64_t denied = 0;
  // Denials by (status, reason).
  std::map<std::pair<int, std::string>, int64_t> denials;
};

struct ReplaySummary {
  int64_t events = 0;
  int64_t requests = 0;
  int64_t creates = 0;
  int64_t refunded = 0;  // admitted requests whose outcome was a failure
  std::map<std::string, Tally> accounts;  // by account id
  // With check: how many fields were compared, and each mismatch as
  // "TRACE:LINE: expected status 402, got 200 (...)".
  int64_t expectations = 0;
  std::vector<std::string> mismatches;
};

// Replays `events`. A failure to apply an account event (e.g. a wallet
// credit that would take the balance below zero) stops the replay with an
// error "TRACE:LINE: field: reason".
absl::StatusOr<ReplaySummary> Replay(std::shared_ptr<const Catalog> catalog,
                                     const std::vector<AccountSpec>& accounts,
                                     const std::vector<Event>& events,
                                     const ReplayOptions& options);

// The summary as text tables, one line each, sorted by account.
std::string FormatSummary(const ReplaySummary& summary, bool check);

}  // namespace plangate::replay

#endif  // PLANGATE_TOOLS_QUOTACTL_REPLAY_H_
