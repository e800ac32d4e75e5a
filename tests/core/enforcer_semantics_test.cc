// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// Plan semantics beyond limits: key kinds, features, managed models, BYOK,
// wallets, gauges and scheduled plan changes.

#include <atomic>
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/compiled_catalog.h"
#include "core/enforcer_test_util.h"
#include "nlohmann/json.hpp"

namespace plangate::testing {
namespace {

constexpr char kCatalog[] = R"({
  "version": 1,
  "upgrade_order": ["sandbox", "free", "pro", "scale"],
  "plans": [
    {"id": "sandbox", "key_kinds": ["test", "internal"],
     "limits": [{"id": "monthly", "limit": 1000}]},
    {"id": "free", "models": ["gpt-4o-mini"],
     "gauges": {"api_keys": 1, "projects": 3},
     "limits": [{"id": "monthly", "limit": 3}]},
    {"id": "pro", "features": ["advanced_analytics"],
     "models": ["gpt-4o-mini", "claude-3-*"],
     "gauges": {"api_keys": 5, "projects": "unlimited"},
     "wallet": {"required": true, "min_balance_micros": 1000},
     "limits": [{"id": "monthly", "limit": 100},
                {"id": "cost", "meter": "cost_micros", "limit": 50000,
                 "applies_to": "managed", "status": 429}]},
    {"id": "scale", "features": ["advanced_analytics", "custom_routing"],
     "limits": [{"id": "monthly", "limit": 1000}]}
  ]
})";

TEST_CASE("model patterns match with '*'", "[models]") {
  using internal::ModelMatches;
  CHECK(ModelMatches("gpt-4o-mini", "gpt-4o-mini"));
  CHECK_FALSE(ModelMatches("gpt-4o-mini", "gpt-4o-mini-2"));
  CHECK(ModelMatches("claude-3-*", "claude-3-haiku"));
  CHECK(ModelMatches("claude-3-*", "claude-3-"));
  CHECK_FALSE(ModelMatches("claude-3-*", "claude-2"));
  CHECK(ModelMatches("*", ""));
  CHECK(ModelMatches("*mini*", "gpt-4o-mini-2024"));
  CHECK(ModelMatches("a*b*c", "aXbYbZc"));
  CHECK_FALSE(ModelMatches("a*b*c", "aXbYbZ"));
  CHECK_FALSE(ModelMatches("", "x"));
}

TEST_CASE_METHOD(EnforcerFixture, "key kinds: sandbox plans refuse live keys",
                 "[key_kinds]") {
  Start(kCatalog, "sandbox");
  const Decision live = enforcer_->Check({.account_id = "acme"});
  CHECK(live.status == 403);
  CHECK(live.reason == "production_access_disabled");
  for (int i = 0; i < 5; ++i) {
    CHECK(enforcer_->Check({.account_id = "acme", .key_kind = KeyKind::kTest})
              .admitted());
  }
  CHECK(Used("monthly") == 0);  // test traffic is free
}

TEST_CASE_METHOD(EnforcerFixture, "features: 402 naming the cheapest plan",
                 "[features]") {
  Start(kCatalog, "free");
  const std::string_view analytics[] = {"advanced_analytics"};
  const Decision d =
      enforcer_->Check({.account_id = "acme", .features = analytics});
  CHECK(d.status == 402);
  CHECK(d.reason == "feature_not_in_plan");
  CHECK(d.upgrade_plan == "pro");
  const std::string_view routing[] = {"custom_routing"};
  CHECK(enforcer_->Check({.account_id = "acme", .features = routing})
            .upgrade_plan == "scale");
  CHECK(Used("monthly") == 0);
  REQUIRE_OK(enforcer_->UpsertAccount(
      {.account_id = "acme", .plan_id = "scale", .anchor_ms = kJan31_2024}));
  CHECK(
      enforcer_->Check({.account_id = "acme", .features = routing}).admitted());
}

TEST_CASE_METHOD(EnforcerFixture,
                 "managed models: allowlist, default model, BYOK bypass",
                 "[models]") {
  Start(kCatalog, "free");
  CHECK(enforcer_->Check({.account_id = "acme", .model = "gpt-4o-mini"})
            .admitted());
  const Decision d =
      enforcer_->Check({.account_id = "acme", .model = "gpt-4o"});
  CHECK(d.status == 403);
  CHECK(d.reason == "plan_limit_error");
  CHECK(
      enforcer_->Check({.account_id = "acme", .byok = true, .model = "gpt-4o"})
          .admitted());
  // No model named: the account default is checked all the same.
  const Decision no_default = enforcer_->Check({.account_id = "acme"});
  CHECK(no_default.status == 403);
  REQUIRE_OK(enforcer_->UpsertAccount({.account_id = "acme",
                                       .plan_id = "free",
                                       .anchor_ms = kJan31_2024,
                                       .default_model = "gpt-4o"}));
  const Decision bad_default = enforcer_->Check({.account_id = "acme"});
  CHECK(bad_default.status == 403);
  CHECK(bad_default.message.find("default model") != std::string_view::npos);
  REQUIRE_OK(enforcer_->UpsertAccount({.account_id = "acme",
                                       .plan_id = "free",
                                       .anchor_ms = kJan31_2024,
                                       .default_model = "gpt-4o-mini"}));
  CHECK(enforcer_->Check({.account_id = "acme"}).admitted());
  CHECK(Used("monthly") == 3);
  // A limit denial names the next plan up.
  const Decision capped = enforcer_->Check({.account_id = "acme"});
  CHECK(capped.status == 402);
  CHECK(capped.upgrade_plan == "pro");
}

TEST_CASE_METHOD(
    EnforcerFixture,
    "wallet: minimum gates live traffic, debits, refunds, BYOK free",
    "[wallet]") {
  Start(kCatalog, "pro");
  const Decision empty =
      enforcer_->Check({.account_id = "acme", .model = "claude-3-haiku"});
  CHECK(empty.status == 402);
  CHECK(empty.reason == "insufficient_credit");
  REQUIRE(*enforcer_->UpdateWallet(
              {.account_id = "acme", .credit_micros = 5000}) == 5000);
  const Decision d = enforcer_->Check(
      {.account_id = "acme", .model = "claude-3-haiku", .wallet_micros = 3000});
  REQUIRE(d.admitted());
  CHECK(enforcer_->Usage("acme")->wallet_micros == 2000);
  // Settle lower than reserved: the difference comes back.
  CHECK(enforcer_->Commit({.reservation = d.reservation,
                           .wallet_micros = 1200}) == CommitResult::kApplied);
  CHECK(enforcer_->Usage("acme")->wallet_micros == 3800);
  // A failure refunds the whole debit.
  const Decision f = enforcer_->Check(
      {.account_id = "acme", .model = "claude-3-haiku", .wallet_micros = 2000});
  REQUIRE(f.admitted());
  CHECK(enforcer_->Usage("acme")->wallet_micros == 1800);
  CHECK(enforcer_->Commit({.reservation = f.reservation, .success = false}) ==
        CommitResult::kRefunded);
  CHECK(enforcer_->Usage("acme")->wallet_micros == 3800);
  // More than the balance: denied, nothing taken.
  const Decision big = enforcer_->Check(
      {.account_id = "acme", .model = "claude-3-haiku", .wallet_micros = 5000});
  CHECK(big.status == 402);
  CHECK(enforcer_->Usage("acme")->wallet_micros == 3800);
  // BYOK costs nothing and skips the managed cost limit and allowlist.
  CHECK(enforcer_
            ->Check({.account_id = "acme",
                     .byok = true,
                     .model = "gpt-5",
                     .wallet_micros = 5000})
            .admitted());
  CHECK(enforcer_->Usage("acme")->wallet_micros == 3800);
  // A wallet never goes below zero through an update either.
  CHECK(absl::IsFailedPrecondition(
      enforcer_->UpdateWallet({.account_id = "acme", .credit_micros = -4000})
          .status()));
}

TEST_CASE_METHOD(EnforcerFixture,
                 "wallet: concurrent debits never take the balance negative",
                 "[wallet][concurrency]") {
  Start(kCatalog, "scale");
  REQUIRE(enforcer_->UpdateWallet({.account_id = "acme", .credit_micros = 1000})
              .ok());
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        const Decision d =
            enforcer_->Check({.account_id = "acme", .wallet_micros = 7});
        if (d.admitted()) admitted.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(admitted.load() == 1000 / 7);
  CHECK(enforcer_->Usage("acme")->wallet_micros == 1000 % 7);
}

TEST_CASE_METHOD(EnforcerFixture, "gauges: created resources against caps",
                 "[gauges]") {
  Start(kCatalog, "free");
  CHECK(enforcer_->CheckCreate("acme", "api_keys", 0).admitted());
  const Decision d = enforcer_->CheckCreate("acme", "api_keys", 1);
  CHECK(d.status == 402);
  CHECK(d.reason == "resource_limit_reached");
  CHECK(d.limit_value == 1);
  CHECK(d.upgrade_plan == "pro");
  CHECK(enforcer_->CheckCreate("acme", "projects", 2).admitted());
  CHECK(enforcer_->CheckCreate("acme", "projects", 3).status == 402);
  CHECK(enforcer_->CheckCreate("acme", "members", 1000).admitted());  // no cap
  CHECK(enforcer_->CheckCreate("nobody", "projects", 0).status == 403);
  REQUIRE_OK(enforcer_->UpsertAccount(
      {.account_id = "acme", .plan_id = "pro", .anchor_ms = kJan31_2024}));
  CHECK(enforcer_->CheckCreate("acme", "projects", 1'000'000).admitted());
}

TEST_CASE_METHOD(EnforcerFixture,
                 "gauges over the cap after a downgrade are read-only, and "
                 "say which plan lifts them",
                 "[gauges]") {
  Start(kCatalog, "pro");
  // On pro: 4 of 5 keys, 40 projects (unlimited).
  CHECK(enforcer_->CheckCreate("acme", "api_keys", 4).admitted());
  REQUIRE_OK(enforcer_->UpsertAccount(
      {.account_id = "acme", .plan_id = "free", .anchor_ms = kJan31_2024}));
  // Moved to free (1 key, 3 projects): nothing more, and the rest is
  // read-only; pro holds the keys again, scale (no gauges) the projects.
  const Decision keys = enforcer_->CheckCreate("acme", "api_keys", 4);
  CHECK(keys.status == 402);
  CHECK(keys.used == 4);
  CHECK(keys.limit_value == 1);
  CHECK(keys.upgrade_plan == "pro");
  CHECK(keys.message.find("read-only") != std::string_view::npos);
  const Decision projects = enforcer_->CheckCreate("acme", "projects", 40);
  CHECK(projects.upgrade_plan == "pro");  // unlimited there
  // At the cap, not over it: denied, but nothing is read-only.
  const Decision at_cap = enforcer_->CheckCreate("acme", "api_keys", 1);
  CHECK(at_cap.status == 402);
  CHECK(at_cap.message.empty());

  const GaugeCount counts[] = {{"api_keys", 4}, {"projects", 2}};
  auto usage = enforcer_->Usage("acme", 0, counts);
  REQUIRE_OK(usage.status());
  REQUIRE(usage->gauges.size() == 2);
  for (const GaugeUsage& g : usage->gauges) {
    if (g.name == "api_keys") {
      CHECK(g.current == 4);
      CHECK(g.cap == 1);
      CHECK(g.read_only == 3);
      CHECK(g.lifted_by == "pro");
    } else {
      CHECK(g.name == "projects");
      CHECK(g.current == 2);
      CHECK(g.read_only == 0);
      CHECK(g.lifted_by.empty());
    }
  }
  const std::string json = UsageReportJson(*usage);
  INFO(json);
  CHECK(json.find(R"("api_keys":{"limit":1,"current":4,"over_limit":true,)"
                  R"("read_only":3,"lifted_by":"pro"})") != std::string::npos);
  CHECK(json.find(R"("projects":{"limit":3,"current":2,"over_limit":false})") !=
        std::string::npos);
  // Without counts the report is as before: caps only.
  const std::string plain = UsageReportJson(*enforcer_->Usage("acme"));
  CHECK(plain.find(R"("api_keys":{"limit":1})") != std::string::npos);
}

TEST_CASE_METHOD(EnforcerFixture,
                 "a downgrade scheduled mid-period takes effect at period end",
                 "[subscription]") {
  Start(kCatalog, "scale");
  clock_.SetMs(kJan31_2024 + 86'400'000);  // Feb 1
  for (int i = 0; i < 10; ++i) REQUIRE(Check().admitted());
  REQUIRE_OK(enforcer_->UpsertAccount({.account_id = "acme",
                                       .plan_id = "scale",
                                       .anchor_ms = kJan31_2024,
                                       .scheduled_plan_id = "free",
                                       .default_model = "gpt-4o-mini"}));
  // Still scale until the period ends on Feb 29 (leap year).
  CHECK(Check().admitted());
  auto usage = enforcer_->Usage("acme");
  CHECK(usage->plan_id == "scale");
  CHECK(usage->scheduled_plan_id == "free");
  CHECK(usage->period_end_ms == 1709164800000);
  clock_.SetMs(1709164800000 - 1);
  CHECK(enforcer_->Usage("acme")->plan_id == "scale");
  clock_.SetMs(1709164800000);
  CHECK(enforcer_->Usage("acme")->plan_id == "free");
  CHECK(Check().admitted());
  CHECK(Check().admitted());
  CHECK(Check().admitted());
  CHECK(Check().status == 402);  // free: 3 a month
  CHECK(absl::IsInvalidArgument(
      enforcer_->UpsertAccount({.account_id = "acme",
                                .plan_id = "scale",
                                .scheduled_plan_id = "gold"})));
}

TEST_CASE_METHOD(EnforcerFixture,
                 "overrides: custom and unlimited quotas, per-user limits",
                 "[overrides]") {
  Start(R"({"version": 1, "plans": [{"id": "business", "limits": [
      {"id": "tool_calls", "meter": "requests", "limit": 5, "grace": 0.2},
      {"id": "per_user", "scope": "user", "window": "day", "limit": 100},
      {"id": "rpm", "window": "minute", "limit": "unlimited"}]}]})",
        "business");
  // An enterprise deal: 10 instead of 5; grace as in the plan (hard 12).
  REQUIRE_OK(enforcer_->UpsertAccount(
      {.account_id = "acme",
       .plan_id = "business",
       .anchor_ms = kJan31_2024,
       .overrides = {
           {.limit_id = "tool_calls", .limit = 10},
           {.limit_id = "per_user", .user_id = "runaway", .limit = 2}}}));
  for (int i = 0; i < 12; ++i) {
    const Decision d =
        enforcer_->Check({.account_id = "acme", .user_id = "ok"});
    REQUIRE(d.admitted());
  }
  const Decision capped = enforcer_->Check({.account_id = "acme"});
  CHECK(capped.status == 402);
  CHECK(capped.limit_value == 10);
  CHECK(capped.hard_limit == 12);
  auto usage = enforcer_->Usage("acme");
  REQUIRE_OK(usage.status());
  CHECK(usage->limits.at(0).limit == 10);

  // True unlimited, and one user's own custom daily cap.
  REQUIRE_OK(enforcer_->UpsertAccount(
      {.account_id = "acme",
       .plan_id = "business",
       .anchor_ms = kJan31_2024,
       .overrides = {
           {.limit_id = "tool_calls", .unlimited = true},
           {.limit_id = "per_user", .user_id = "runaway", .limit = 2}}}));
  CHECK(enforcer_->Check({.account_id = "acme", .user_id = "runaway"})
            .admitted());
  CHECK(enforcer_->Check({.account_id = "acme", .user_id = "runaway"})
            .admitted());
  const Decision user_capped =
      enforcer_->Check({.account_id = "acme", .user_id = "runaway"});
  CHECK(user_capped.status == 429);
  CHECK(user_capped.limit.limit_id == "per_user");
  CHECK(user_capped.limit_value == 2);
  // Other users keep the plan's 100 a day.
  CHECK(enforcer_->Check({.account_id = "acme", .user_id = "calm"}).admitted());
  CHECK(Used("tool_calls") == 15);

  // A contract number on a limit the plan leaves unlimited.
  REQUIRE_OK(enforcer_->UpsertAccount(
      {.account_id = "acme",
       .plan_id = "business",
       .anchor_ms = kJan31_2024,
       .overrides = {{.limit_id = "tool_calls", .unlimited = true},
                     {.limit_id = "rpm", .limit = 0}}}));
  const Decision contract = enforcer_->Check({.account_id = "acme"});
  CHECK(contract.status == 429);
  CHECK(contract.limit.limit_id == "rpm");

  CHECK(enforcer_
            ->UpsertAccount({.account_id = "acme",
                             .plan_id = "business",
                             .overrides = {{.limit_id = "nope", .limit = 1}}})
            .message() ==
        "account \"acme\": overrides[0].limit_id: no limit \"nope\" in plan "
        "\"business\"");
  CHECK(
      enforcer_
          ->UpsertAccount(
              {.account_id = "acme",
               .plan_id = "business",
               .overrides = {{.limit_id = "rpm", .user_id = "u", .limit = 1}}})
          .message() ==
      "account \"acme\": overrides[0].user_id: limit \"rpm\" is not a "
      "user-scope limit");
}

class RecordingSink : public EventSink {
 public:
  void OnThreshold(const ThresholdEvent& e) override { events.push_back(e); }
  std::vector<ThresholdEvent> events;
};

TEST_CASE_METHOD(EnforcerFixture,
                 "threshold events fire once per subject, limit and period",
                 "[events]") {
  RecordingSink sink;
  EnforcerOptions options;
  options.event_sink = &sink;
  Start(R"({"version": 1, "plans": [{"id": "p", "limits": [
      {"id": "monthly", "limit": 10, "grace": 0.5},
      {"id": "per_key", "scope": "key", "window": "day", "limit": 4}]}]})",
        "p", options);
  for (int i = 0; i < 7; ++i) REQUIRE(Check().admitted());
  enforcer_->Maintain();
  CHECK(sink.events.empty());
  const Decision eighth = Check();  // 8 of 10: the soft nudge
  REQUIRE(eighth.admitted());
  enforcer_->Maintain();
  REQUIRE(sink.events.size() == 1);
  CHECK(sink.events[0].kind == ThresholdKind::kSoftNudge);
  CHECK(sink.events[0].account_id == "acme");
  CHECK(sink.events[0].limit_id == "monthly");
  CHECK(sink.events[0].used == 8);
  CHECK(sink.events[0].limit == 10);
  CHECK(sink.events[0].window_start_ms == kJan31_2024);
  CHECK(sink.events[0].window_end_ms == 1709164800000);
  // A refund takes usage back under 80%; crossing again says nothing new.
  REQUIRE(enforcer_->Commit({.reservation = eighth.reservation,
                             .success = false}) == CommitResult::kRefunded);
  REQUIRE(Check().admitted());
  REQUIRE(Check().admitted());
  REQUIRE(Check().admitted());  // 10 of 10: the hard cap
  enforcer_->Maintain();
  REQUIRE(sink.events.size() == 2);
  CHECK(sink.events[1].kind == ThresholdKind::kHardCap);
  CHECK(sink.events[1].used == 10);
  // Key-scope limits report their subject.
  for (int i = 0; i < 4; ++i) {
    REQUIRE(
        enforcer_->Check({.account_id = "acme", .key_id = "k1"}).admitted());
  }
  enforcer_->Maintain();
  REQUIRE(sink.events.size() == 4);  // key: nudge at 4 >= 3.2, cap at 4
  CHECK(sink.events[2].scope == Scope::kKey);
  CHECK(sink.events[2].subject_id == "k1");
  CHECK(enforcer_->Stats().events_delivered == 4);
  // The next billing period fires afresh.
  clock_.SetMs(1709164800000);
  for (int i = 0; i < 8; ++i) REQUIRE(Check().admitted());
  enforcer_->Maintain();
  REQUIRE(sink.events.size() == 5);
  CHECK(sink.events[4].window_start_ms == 1709164800000);
}

TEST_CASE_METHOD(EnforcerFixture, "concurrent crossings deliver one event each",
                 "[events][concurrency]") {
  RecordingSink sink;
  EnforcerOptions options;
  options.event_sink = &sink;
  Start(R"({"version": 1, "plans": [{"id": "p", "limits": [
      {"id": "monthly", "limit": 1000}]}]})",
        "p", options);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 300; ++i) (void)Check();
    });
  }
  std::thread drainer([&] {
    for (int i = 0; i < 50; ++i) enforcer_->DeliverEvents();
  });
  for (auto& th : threads) th.join();
  drainer.join();
  enforcer_->Maintain();
  REQUIRE(sink.events.size() == 2);
  CHECK(sink.events[0].kind == ThresholdKind::kSoftNudge);
  CHECK(sink.events[1].kind == ThresholdKind::kHardCap);
  CHECK(Used("monthly") == 1000);
}

TEST_CASE_METHOD(EnforcerFixture, "usage report, as a struct and as JSON",
                 "[usage]") {
  Start(R"({"version": 1, "plans": [{"id": "starter",
      "gauges": {"projects": 5, "team_members": "unlimited"},
      "limits": [
        {"id": "api_requests", "limit": 10, "grace": 0.2},
        {"id": "ai_tokens", "meter": "tokens", "limit": "unlimited"},
        {"id": "rpm", "window": "minute", "limit": 100}]}]})",
        "starter");
  for (int i = 0; i < 11; ++i) REQUIRE(Check().admitted());
  auto usage = enforcer_->Usage("acme");
  REQUIRE_OK(usage.status());
  CHECK(usage->period_start_ms == kJan31_2024);
  CHECK(usage->period_end_ms == 1709164800000);
  REQUIRE(usage->limits.size() == 3);
  CHECK(usage->limits[0].state == "grace");
  CHECK(usage->limits[1].state == "unlimited");
  CHECK(usage->limits[2].state == "ok");

  const auto j = nlohmann::json::parse(UsageReportJson(*usage));
  CHECK(j["account"] == "acme");
  CHECK(j["plan"] == "starter");
  CHECK(j["status"] == "active");
  CHECK(j["period_start"] == "2024-01-31T00:00:00Z");
  CHECK(j["period_end"] == "2024-02-29T00:00:00Z");
  CHECK(j["scheduled_plan"].is_null());
  CHECK(j["usage"]["api_requests"]["used"] == 11);
  CHECK(j["usage"]["api_requests"]["limit"] == 10);
  CHECK(j["usage"]["api_requests"]["hard_limit"] == 12);
  CHECK(j["usage"]["api_requests"]["state"] == "grace");
  CHECK(j["usage"]["ai_tokens"]["limit"].is_null());
  CHECK(j["usage"]["rpm"]["window"] == "minute");
  CHECK(j["usage"]["rpm"]["resets_at"] == "2024-01-31T00:01:00Z");
  CHECK(j["resource_counts"]["projects"]["limit"] == 5);
  CHECK(j["resource_counts"]["team_members"]["limit"].is_null());
  REQUIRE(Check().admitted());
  CHECK(enforcer_->Usage("acme")->limits[0].state == "exhausted");
}

}  // namespace
}  // namespace plangate::testing
