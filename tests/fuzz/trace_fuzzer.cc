// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// trace_fuzzer: quotactl's accounts and trace parsers on arbitrary bytes,
// and the replay of every trace that parses, against a fixed catalog that
// uses every kind of rule. Nothing may crash; every parse error is
// "FILE:LINE: field: reason"; a replay is deterministic.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "plangate/catalog.h"
#include "replay.h"
#include "trace.h"

namespace {

constexpr char kCatalog[] = R"json({
  "version": 1,
  "meters": ["requests", "tokens", "cost_micros"],
  "upgrade_order": ["free", "pro"],
  "default_plan": "free",
  "plans": [
    {"id": "free",
     "limits": [
       {"id": "monthly", "limit": 20, "grace": 0.1},
       {"id": "rpm", "window": "minute", "mode": "sliding", "limit": 5},
       {"scope": "key", "meter": "tokens", "window": "day", "limit": 1000,
        "applies_to": "managed"},
       {"id": "per_user", "scope": "user", "window": "hour",
        "limit": "unlimited"},
       {"scope": "project", "window": "second", "limit": 3, "shadow": true}],
     "features": ["basic"], "models": ["gpt-4o-mini", "claude-*"],
     "key_kinds": ["live", "test", "internal"],
     "gauges": {"projects": 2}},
    {"id": "pro", "shadow": false,
     "limits": [{"id": "monthly", "limit": 1000},
                {"meter": "cost_micros", "limit": 5000000,
                 "applies_to": "managed", "status": 429}],
     "features": ["basic", "sso"], "key_kinds": ["test", "internal"],
     "wallet": {"required": true, "min_balance_micros": 1000}}
  ]
})json";

constexpr char kAccounts[] = R"json([
  {"id": "a", "plan": "free", "anchor": "2026-01-31T00:00:00Z",
   "default_model": "gpt-4o", "wallet_micros": 5000,
   "overrides": [{"limit_id": "per_user", "user": "u", "limit": 2}]},
  {"id": "b", "plan": "pro", "anchor": 0, "state": "past_due",
   "past_due_until": "2026-02-01T00:00:00Z", "scheduled_plan": "free"},
  {"id": "c", "plan": "free", "anchor": 1769817600000, "state": "blocked"}
])json";

// Aborts unless every line of `message` is "<file>:<digits>: ..." (or the
// final "too many errors" line).
void CheckErrorLines(const std::string& message, std::string_view file) {
  size_t start = 0;
  while (start <= message.size()) {
    size_t end = message.find('\n', start);
    if (end == std::string::npos) end = message.size();
    std::string_view line(message.data() + start, end - start);
    if (line.substr(0, file.size() + 1) != std::string(file) + ":") {
      std::abort();
    }
    line.remove_prefix(file.size() + 1);
    if (line.substr(0, 1) == " ") {
      if (line.find("too many errors") == std::string_view::npos) {
        std::abort();
      }
    } else {
      size_t digits = 0;
      while (digits < line.size() && line[digits] >= '0' &&
             line[digits] <= '9') {
        ++digits;
      }
      if (digits == 0 || line.substr(digits, 2) != ": " ||
          line.find(": ", digits + 2) == std::string_view::npos) {
        std::abort();
      }
    }
    start = end + 1;
  }
}

std::string Run(const std::shared_ptr<const plangate::Catalog>& catalog,
                const std::vector<plangate::replay::AccountSpec>& accounts,
                const std::vector<plangate::replay::Event>& events) {
  std::string out;
  plangate::replay::ReplayOptions options;
  options.trace_name = "t";
  options.check = true;
  options.enforcer.max_subjects = 256;
  options.enforcer.max_reservations = 64;
  options.on_decision = [&out](std::string_view line) {
    out.append(line);
    out += '\n';
  };
  auto summary = plangate::replay::Replay(catalog, accounts, events, options);
  if (summary.ok()) {
    out += plangate::replay::FormatSummary(*summary, true);
    for (const std::string& m : summary->mismatches) out += m + "\n";
  } else {
    out += std::string(summary.status().message());
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::shared_ptr<const plangate::Catalog> catalog = [] {
    auto c = plangate::Catalog::Parse(kCatalog);
    if (!c.ok()) std::abort();
    return *c;
  }();
  static const std::vector<plangate::replay::AccountSpec> accounts = [] {
    auto a = plangate::replay::ParseAccounts(kAccounts, "a", *catalog);
    if (!a.ok()) std::abort();
    return *a;
  }();
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  auto parsed_accounts = plangate::replay::ParseAccounts(text, "a", *catalog);
  if (!parsed_accounts.ok()) {
    CheckErrorLines(std::string(parsed_accounts.status().message()), "a");
  }

  auto events = plangate::replay::ParseTrace(text, "t", *catalog, accounts);
  if (!events.ok()) {
    CheckErrorLines(std::string(events.status().message()), "t");
    return 0;
  }
  if (Run(catalog, accounts, *events) != Run(catalog, accounts, *events)) {
    std::abort();  // the same input must replay byte-identically
  }
  return 0;
}
