// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// The fast check (src/core/fast_check.cc) against the general path: two
// enforcers on the same random catalog, one with the fast check off,
// replay the same random traffic (amounts, time steps across windows,
// commits, refunds, expiries, plan and state changes) and must return the
// same decisions and commit results and end with the same usage. Plus the
// hard cap under threads on one hot account (run under TSan in CI).

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/check_path_access.h"
#include "enforcer_test_util.h"
#include "plangate/enforcer.h"

namespace plangate {
namespace {

using internal::CheckPathAccess;
using testing::kJan31_2024;
using testing::ParseOrDie;

// A catalog of plans of 1-5 account limits on random counters, caps,
// graces and nudges; some plans also carry what the fast check leaves to
// the general path (a key limit, a shadow or unlimited limit, a managed
// allowlist), so the two meet in one run. The counters come from a pool
// that fits the record's 8 cells.
std::string RandomCatalog(std::mt19937_64& rng, int plans) {
  const char* pool[] = {
      R"("window": "billing_period")",
      R"("window": "day")",
      R"("window": "minute", "mode": "sliding")",
      R"("window": "hour", "meter": "tokens")",
      R"("window": "annual", "meter": "tokens")",
      R"("window": "5s")",
      R"("window": "7d")",
  };
  std::string json = R"({"version": 1, "meters": ["tokens"], "plans": [)";
  for (int p = 0; p < plans; ++p) {
    if (p > 0) json += ",";
    json += "{\"id\": \"p" + std::to_string(p) + "\"";
    if (rng() % 10 == 0) json += R"(, "models": ["gpt-4o*"])";
    json += ", \"limits\": [";
    std::vector<int> order(std::size(pool));
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
    std::shuffle(order.begin(), order.end(), rng);
    const int n = 1 + static_cast<int>(rng() % 5);
    for (int l = 0; l < n; ++l) {
      if (l > 0) json += ",";
      json += "{\"id\": \"l" + std::to_string(l) + "\", ";
      json += pool[order[l]];
      switch (rng() % 30) {
        case 0:
          json += R"(, "limit": "unlimited"})";
          continue;
        case 1:
          json += R"(, "shadow": true)";
          break;
        case 2:
          json += R"(, "scope": "key")";
          break;
        default:
          break;
      }
      json += ", \"limit\": " + std::to_string(3 + rng() % 40);
      if (rng() % 2 == 0) json += ", \"grace\": 0." + std::to_string(rng() % 5);
      if (rng() % 2 == 0) {
        json += ", \"soft_nudge\": 0." + std::to_string(5 + rng() % 5);
      }
      json += "}";
    }
    json += "]}";
  }
  json += "]}";
  return json;
}

void ExpectSame(const Decision& a, const Decision& b) {
  CHECK(a.status == b.status);
  CHECK(a.deny == b.deny);
  CHECK(a.reason == b.reason);
  CHECK(a.message == b.message);
  CHECK(a.warnings == b.warnings);
  CHECK(a.shadow == b.shadow);
  CHECK(a.has_limit == b.has_limit);
  CHECK(a.limit.limit_id == b.limit.limit_id);
  CHECK(a.limit.window == b.limit.window);
  CHECK(a.limit.mode == b.limit.mode);
  CHECK(a.limit_value == b.limit_value);
  CHECK(a.hard_limit == b.hard_limit);
  CHECK(a.used == b.used);
  CHECK(a.remaining == b.remaining);
  CHECK(a.window_start_ms == b.window_start_ms);
  CHECK(a.reset_ms == b.reset_ms);
  CHECK(a.retry_after_ms == b.retry_after_ms);
  CHECK(a.upgrade_plan == b.upgrade_plan);
  CHECK(a.reservation.empty() == b.reservation.empty());
}

// Every threshold event delivered, as one line each.
class Recorder : public EventSink {
 public:
  void OnThreshold(const ThresholdEvent& e) override {
    lines.push_back(std::to_string(static_cast<int>(e.kind)) + " " +
                    e.account_id + " " + e.limit_id + " " +
                    std::to_string(e.window_start_ms) + " " +
                    std::to_string(e.used) + "/" + std::to_string(e.limit));
  }
  std::vector<std::string> lines;
};

struct Pair {
  std::unique_ptr<Enforcer> fast;
  std::unique_ptr<Enforcer> general;
};

Pair MakePair(const std::string& json, EnforcerOptions options,
              Recorder* fast_events, Recorder* general_events) {
  auto catalog = ParseOrDie(json);
  options.event_sink = fast_events;
  auto fast = Enforcer::Create(catalog, options);
  options.event_sink = general_events;
  auto general = Enforcer::Create(catalog, options);
  REQUIRE_OK(fast.status());
  REQUIRE_OK(general.status());
  CheckPathAccess::SetFastChecks(**general, false);
  return {std::move(*fast), std::move(*general)};
}

TEST_CASE("the fast check decides as the general path on random traffic") {
  const uint64_t seed = GENERATE(1, 2, 3, 4, 5, 6, 7, 8);
  std::mt19937_64 rng(seed);
  const int num_plans = 6;
  const std::string json = RandomCatalog(rng, num_plans);
  INFO("seed " << seed << " catalog " << json);
  EnforcerOptions options;
  options.reservation_ttl_ms = 30'000;
  Recorder fast_events, general_events;
  Pair pair = MakePair(json, options, &fast_events, &general_events);
  Enforcer* both[] = {pair.fast.get(), pair.general.get()};
  int fast_plans = 0;
  for (int p = 0; p < num_plans; ++p) {
    fast_plans +=
        CheckPathAccess::HasFastPlan(*pair.fast, "p" + std::to_string(p));
  }
  CHECK(fast_plans >= 2);  // the comparison covers the fast check

  const int num_accounts = 5;
  auto account = [](int a) { return "acct-" + std::to_string(a); };
  const auto upsert = [&](int a, int plan, SubscriptionState state,
                          bool override_limit, int64_t now) {
    AccountUpdate u{.account_id = account(a),
                    .plan_id = "p" + std::to_string(plan),
                    .anchor_ms = kJan31_2024,
                    .state = state};
    if (state == SubscriptionState::kPastDue && a % 2 == 0) {
      u.past_due_deadline_ms = now + 86'400'000;  // inside its grace a day
    }
    if (a == 4) u.default_model = "claude-3";
    if (override_limit) u.overrides.push_back({.limit_id = "l0", .limit = 7});
    for (Enforcer* e : both) REQUIRE_OK(e->UpsertAccount(u));
  };
  for (int a = 0; a < num_accounts; ++a) {
    upsert(a, a % num_plans, SubscriptionState::kActive, false, kJan31_2024);
  }

  struct Pending {
    Reservation fast, general;
  };
  std::vector<Pending> pending;
  int64_t now = kJan31_2024 + 1;
  int fast_admits = 0;
  for (int step = 0; step < 3000; ++step) {
    INFO("step " << step);
    // Time moves by ms to hours, now and then by days (windows roll).
    switch (rng() % 10) {
      case 0:
        now += static_cast<int64_t>(rng() % 3'600'000);
        break;
      case 1:
        now += static_cast<int64_t>(rng() % (3 * 86'400'000));
        break;
      default:
        now += static_cast<int64_t>(rng() % 3'000);
        break;
    }
    const int a = static_cast<int>(rng() % num_accounts);
    const uint64_t op = rng() % 100;
    if (op < 3) {
      // A plan change, a past-due state or an override.
      const auto state = rng() % 3 == 0 ? SubscriptionState::kPastDue
                                        : SubscriptionState::kActive;
      upsert(a, static_cast<int>(rng() % num_plans), state, rng() % 4 == 0,
             now);
      continue;
    }
    if (op < 30 && !pending.empty()) {
      // Settle one in flight: success, success with actual amounts, or a
      // failed upstream.
      const size_t k = rng() % pending.size();
      const Pending p = pending[k];
      pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(k));
      const uint64_t how = rng() % 4;
      MeterAmount actual[] = {{1, static_cast<int64_t>(rng() % 20)}};
      CommitRequest c{.success = how != 0};
      if (how == 3) c.actual = actual;
      c.reservation = p.fast;
      const CommitResult fast_result = pair.fast->Commit(c);
      c.reservation = p.general;
      const CommitResult general_result = pair.general->Commit(c);
      // An expired reservation answers kExpired until its slot is reused,
      // then kDuplicate; slot reuse follows a per-thread cursor both
      // enforcers share, so only "no change" is compared there (the usage
      // compared at the end is what counts).
      const auto no_change = [](CommitResult r) {
        return r == CommitResult::kExpired || r == CommitResult::kDuplicate;
      };
      if (no_change(fast_result) || no_change(general_result)) {
        CHECK(no_change(fast_result) == no_change(general_result));
      } else {
        CHECK(fast_result == general_result);
      }
      continue;
    }
    // A check: requests only, or tokens listed, or a BYOK request, or a
    // model, or a key id (key limits), or a feature.
    MeterAmount amounts[] = {{1, static_cast<int64_t>(rng() % 12)}};
    const std::string id = account(a);
    CheckRequest req{.account_id = id, .now_ms = now};
    const uint64_t kind = rng() % 10;
    if (kind < 3) req.amounts = amounts;
    if (kind == 3) req.byok = true;
    if (kind == 4) req.model = "gpt-4o-mini";
    if (kind == 5) req.key_id = "key-1";
    if (kind == 6) req.key_kind = KeyKind::kTest;
    const std::string_view feature = "vision";
    if (kind == 7) req.features = {&feature, 1};
    const Decision f = pair.fast->Check(req);
    const Decision g = pair.general->Check(req);
    ExpectSame(f, g);
    fast_admits += f.admitted();
    if (!f.reservation.empty())
      pending.push_back({f.reservation, g.reservation});
    if (rng() % 50 == 0) {
      // Housekeeping expires reservations past their ttl on both.
      for (Enforcer* e : both) e->Maintain(now);
      for (Enforcer* e : both) e->DeliverEvents(now);
    }
  }
  CHECK(fast_admits > 100);  // the traffic was not all denials
  // The same soft-nudge and cap crossings, once each.
  for (Enforcer* e : both) e->DeliverEvents(now);
  CHECK(fast_events.lines.size() >= 3);
  CHECK(fast_events.lines == general_events.lines);
  for (int a = 0; a < num_accounts; ++a) {
    auto f = pair.fast->Usage(account(a), now);
    auto g = pair.general->Usage(account(a), now);
    REQUIRE(f.ok() == g.ok());
    if (!f.ok()) continue;
    REQUIRE(f->limits.size() == g->limits.size());
    for (size_t l = 0; l < f->limits.size(); ++l) {
      INFO("account " << a << " limit " << f->limits[l].limit_id);
      CHECK(f->limits[l].used == g->limits[l].used);
    }
  }
}

TEST_CASE("the plans a check meets most compile to a fast program") {
  const auto json = R"({"version": 1, "plans": [
    {"id": "fast", "limits": [
      {"id": "monthly", "limit": 1000, "grace": 0.1},
      {"id": "daily", "window": "day", "limit": 100},
      {"id": "rpm", "window": "minute", "mode": "sliding", "limit": 10}]},
    {"id": "keyed", "limits": [
      {"id": "monthly", "limit": 1000},
      {"scope": "key", "window": "day", "limit": 10}]}]})";
  auto e = Enforcer::Create(ParseOrDie(json), {});
  REQUIRE_OK(e.status());
  CHECK(CheckPathAccess::HasFastPlan(**e, "fast"));
  CHECK_FALSE(CheckPathAccess::HasFastPlan(**e, "keyed"));
  CHECK_FALSE(CheckPathAccess::HasFastPlan(**e, "missing"));
}

TEST_CASE("the fast check holds a hard cap on one hot account across threads") {
  const auto json = R"({"version": 1, "plans": [{"id": "p", "limits": [
    {"id": "monthly", "limit": 3000, "grace": 0.1},
    {"id": "daily", "window": "day", "limit": 2500},
    {"id": "rpm", "window": "minute", "mode": "sliding", "limit": 2000}]}]})";
  auto created = Enforcer::Create(ParseOrDie(json), {});
  REQUIRE_OK(created.status());
  Enforcer& e = **created;
  REQUIRE(CheckPathAccess::HasFastPlan(e, "p"));
  REQUIRE_OK(e.UpsertAccount(
      {.account_id = "hot", .plan_id = "p", .anchor_ms = kJan31_2024}));
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&e, &admitted] {
      for (int i = 0; i < 1000; ++i) {
        const Decision d =
            e.Check({.account_id = "hot", .now_ms = kJan31_2024 + 1'000});
        if (!d.admitted()) continue;
        admitted.fetch_add(1, std::memory_order_relaxed);
        e.Commit({.reservation = d.reservation});
      }
    });
  }
  for (std::thread& t : threads) t.join();
  // The minute is the tightest cap: exactly it was admitted, and counted
  // once in each limit.
  CHECK(admitted.load() == 2000);
  auto usage = e.Usage("hot", kJan31_2024 + 1'000);
  REQUIRE_OK(usage.status());
  for (const LimitUsage& l : usage->limits) {
    INFO(l.limit_id);
    CHECK(l.used == 2000);
  }
  CHECK_FALSE(
      e.Check({.account_id = "hot", .now_ms = kJan31_2024 + 1'000}).admitted());
}

}  // namespace
}  // namespace plangate
