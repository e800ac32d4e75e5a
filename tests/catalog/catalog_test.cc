// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "plangate/catalog.h"

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_split.h"

namespace plangate {
namespace {

// Every field of the format, most of them away from their defaults.
constexpr char kFullCatalog[] = R"json({
  "version": 1,
  "meters": ["requests", "tokens", "cost_micros", "tool_calls"],
  "features": ["sso", "audit_log", "advanced_analytics", "custom_routing"],
  "upgrade_order": ["free", "pro", "team", "enterprise"],
  "default_plan": "free",
  "defaults": {"soft_nudge": 0.75, "grace": 0.05},
  "plans": [
    {
      "id": "free",
      "name": "Free",
      "limits": [
        {"id": "monthly_requests", "limit": 50000, "grace": 0.1,
         "status": 403, "reason": "plan_limit_error",
         "message": "Upgrade to Pro for more requests."},
        {"window": "minute", "mode": "sliding", "limit": 10},
        {"scope": "key", "meter": "tokens", "window": "day",
         "limit": 100000, "soft_nudge": 0.9, "applies_to": "managed"},
        {"scope": "user", "meter": "tool_calls", "window": "hour",
         "limit": "unlimited", "shadow": true}
      ],
      "models": ["gpt-4o-mini", "claude-3-*"],
      "key_kinds": ["live", "sandbox"],
      "gauges": {"projects": 1, "api_keys": 2}
    },
    {
      "id": "pro",
      "name": "Pro",
      "defaults": {"status": 429, "reason": "quota_exceeded", "grace": 0.15},
      "limits": [
        {"limit": 500000},
        {"meter": "cost_micros", "window": "month", "limit": 20000000,
         "applies_to": "byok", "grace": 0}
      ],
      "features": ["advanced_analytics"],
      "wallet": {"required": true, "min_balance_micros": 5000000},
      "gauges": {"projects": 10, "api_keys": "unlimited"}
    },
    {
      "id": "team",
      "shadow": true,
      "limits": [
        {"limit": 2000000, "grace": 0.2},
        {"scope": "project", "window": "annual", "limit": 1e7}
      ],
      "features": ["advanced_analytics", "sso"],
      "models": []
    },
    {
      "id": "enterprise",
      "features": ["advanced_analytics", "sso", "audit_log",
                   "custom_routing"],
      "key_kinds": ["live", "test", "internal"]
    }
  ]
})json";

std::shared_ptr<const Catalog> MustParse(const std::string& json) {
  auto catalog = Catalog::Parse(json);
  INFO(catalog.status().ToString());
  REQUIRE(catalog.ok());
  return *catalog;
}

std::vector<std::string> ErrorLines(const std::string& json) {
  auto catalog = Catalog::Parse(json);
  if (catalog.ok()) return {};
  CHECK(catalog.status().code() == absl::StatusCode::kInvalidArgument);
  return absl::StrSplit(catalog.status().message(), '\n');
}

// A catalog of the given plans (the inside of the "plans" array).
std::string WithPlans(const std::string& plans) {
  return R"({"version": 1, "plans": [)" + plans + "]}";
}

std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("plangate_catalog_test_" + name))
      .string();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  REQUIRE(out.good());
}

TEST_CASE("a full catalog keeps every field", "[parse]") {
  auto catalog = MustParse(kFullCatalog);

  CHECK(catalog->meters() == std::vector<std::string>{"requests", "tokens",
                                                      "cost_micros",
                                                      "tool_calls"});
  CHECK(catalog->upgrade_order() ==
        std::vector<std::string>{"free", "pro", "team", "enterprise"});
  CHECK(catalog->default_plan() == "free");
  REQUIRE(catalog->plans().size() == 4);

  const Plan& free = catalog->plans()[0];
  CHECK(free.id == "free");
  CHECK(free.name == "Free");
  CHECK_FALSE(free.shadow);
  REQUIRE(free.limits.size() == 4);

  const Limit& monthly = free.limits[0];
  CHECK(monthly.id == "monthly_requests");
  CHECK(monthly.scope == Scope::kAccount);
  CHECK(monthly.meter == "requests");
  CHECK(monthly.window == WindowUnit::kBillingPeriod);
  CHECK(monthly.mode == WindowMode::kFixed);
  CHECK_FALSE(monthly.unlimited);
  CHECK(monthly.limit == 50000);
  CHECK(monthly.soft_nudge == 0.75);
  CHECK(monthly.grace == 0.1);
  CHECK(monthly.hard() == 55000);
  CHECK(monthly.status == 403);
  CHECK(monthly.reason == "plan_limit_error");
  CHECK(monthly.message == "Upgrade to Pro for more requests.");
  CHECK(monthly.applies_to == Traffic::kAll);
  CHECK_FALSE(monthly.shadow);

  const Limit& burst = free.limits[1];
  CHECK(burst.id == "account.requests.minute");
  CHECK(burst.window == WindowUnit::kMinute);
  CHECK(burst.mode == WindowMode::kSliding);
  CHECK(burst.limit == 10);
  CHECK(burst.grace == 0.05);
  CHECK(burst.status == 429);
  CHECK(burst.reason == "rate_limited");

  const Limit& tokens = free.limits[2];
  CHECK(tokens.id == "key.tokens.day");
  CHECK(tokens.scope == Scope::kKey);
  CHECK(tokens.meter == "tokens");
  CHECK(tokens.window == WindowUnit::kDay);
  CHECK(tokens.limit == 100000);
  CHECK(tokens.soft_nudge == 0.9);
  CHECK(tokens.applies_to == Traffic::kManaged);

  const Limit& tools = free.limits[3];
  CHECK(tools.id == "user.tool_calls.hour");
  CHECK(tools.scope == Scope::kUser);
  CHECK(tools.window == WindowUnit::kHour);
  CHECK(tools.unlimited);
  CHECK(tools.limit == 0);
  CHECK(tools.hard() == kMaxCount);
  CHECK(tools.shadow);

  CHECK(free.features.empty());
  CHECK(free.models_restricted);
  CHECK(free.models == std::vector<std::string>{"gpt-4o-mini", "claude-3-*"});
  CHECK(free.key_kinds == std::vector<KeyKind>{KeyKind::kLive, KeyKind::kTest});
  CHECK_FALSE(free.wallet.required);
  CHECK(free.wallet.min_balance_micros == 0);
  REQUIRE(free.gauges.size() == 2);
  CHECK(free.gauges[0].name == "projects");
  CHECK(free.gauges[0].cap == 1);
  CHECK_FALSE(free.gauges[0].unlimited);
  CHECK(free.gauges[1].name == "api_keys");
  CHECK(free.gauges[1].cap == 2);

  const Plan& pro = catalog->plans()[1];
  CHECK(pro.name == "Pro");
  REQUIRE(pro.limits.size() == 2);
  CHECK(pro.limits[0].id == "account.requests.billing_period");
  CHECK(pro.limits[0].grace == 0.15);
  CHECK(pro.limits[0].hard() == 575000);
  CHECK(pro.limits[0].status == 429);
  CHECK(pro.limits[0].reason == "quota_exceeded");
  CHECK(pro.limits[0].soft_nudge == 0.75);
  CHECK(pro.limits[1].id == "account.cost_micros.billing_period");
  CHECK(pro.limits[1].window == WindowUnit::kBillingPeriod);
  CHECK(pro.limits[1].applies_to == Traffic::kByok);
  CHECK(pro.limits[1].grace == 0.0);
  CHECK(pro.limits[1].hard() == 20000000);
  CHECK(pro.features == std::vector<std::string>{"advanced_analytics"});
  CHECK_FALSE(pro.models_restricted);
  CHECK(pro.key_kinds.size() == 3);
  CHECK(pro.wallet.required);
  CHECK(pro.wallet.min_balance_micros == 5000000);
  REQUIRE(pro.gauges.size() == 2);
  CHECK(pro.gauges[0].name == "projects");
  CHECK(pro.gauges[0].cap == 10);
  CHECK(pro.gauges[1].name == "api_keys");
  CHECK(pro.gauges[1].unlimited);

  const Plan& team = catalog->plans()[2];
  CHECK(team.name == "team");
  CHECK(team.shadow);
  REQUIRE(team.limits.size() == 2);
  CHECK(team.limits[0].hard() == 2400000);
  CHECK(team.limits[1].id == "project.requests.annual");
  CHECK(team.limits[1].scope == Scope::kProject);
  CHECK(team.limits[1].window == WindowUnit::kAnnual);
  CHECK(team.limits[1].limit == 10000000);
  CHECK(team.limits[1].status == 402);
  CHECK(team.limits[1].reason == "billing_limit_reached");
  CHECK(team.models_restricted);
  CHECK(team.models.empty());

  const Plan& enterprise = catalog->plans()[3];
  CHECK(enterprise.limits.empty());
  CHECK(enterprise.features.size() == 4);
  CHECK(enterprise.key_kinds == std::vector<KeyKind>{KeyKind::kLive,
                                                     KeyKind::kTest,
                                                     KeyKind::kInternal});
}

TEST_CASE("omitted fields take their defaults", "[parse]") {
  auto catalog = MustParse(WithPlans(R"({"id": "free", "limits": [
      {"limit": 100},
      {"window": "minute", "limit": 10},
      {"window": "annual", "limit": 1000},
      {"window": "second", "mode": "sliding", "limit": 2}]})"));

  CHECK(catalog->meters() == std::vector<std::string>{"requests"});
  CHECK(catalog->upgrade_order() == std::vector<std::string>{"free"});
  CHECK(catalog->default_plan().empty());
  const Plan& plan = catalog->plans()[0];
  CHECK(plan.name == "free");
  CHECK_FALSE(plan.shadow);
  CHECK(plan.features.empty());
  CHECK_FALSE(plan.models_restricted);
  CHECK(plan.key_kinds == std::vector<KeyKind>{KeyKind::kLive, KeyKind::kTest,
                                               KeyKind::kInternal});
  CHECK_FALSE(plan.wallet.required);
  CHECK(plan.wallet.min_balance_micros == 0);
  CHECK(plan.gauges.empty());

  REQUIRE(plan.limits.size() == 4);
  for (const Limit& limit : plan.limits) {
    CHECK(limit.scope == Scope::kAccount);
    CHECK(limit.meter == "requests");
    CHECK(limit.soft_nudge == 0.8);
    CHECK(limit.grace == 0.0);
    CHECK(limit.hard() == limit.limit);
    CHECK(limit.message.empty());
    CHECK(limit.applies_to == Traffic::kAll);
    CHECK_FALSE(limit.shadow);
    CHECK_FALSE(limit.unlimited);
  }
  CHECK(plan.limits[0].id == "account.requests.billing_period");
  CHECK(plan.limits[0].window == WindowUnit::kBillingPeriod);
  CHECK(plan.limits[0].mode == WindowMode::kFixed);
  CHECK(plan.limits[0].status == 402);
  CHECK(plan.limits[0].reason == "billing_limit_reached");
  CHECK(plan.limits[1].id == "account.requests.minute");
  CHECK(plan.limits[1].status == 429);
  CHECK(plan.limits[1].reason == "rate_limited");
  CHECK(plan.limits[2].status == 402);
  CHECK(plan.limits[2].reason == "billing_limit_reached");
  CHECK(plan.limits[3].mode == WindowMode::kSliding);
  CHECK(plan.limits[3].status == 429);
  CHECK(plan.limits[3].reason == "rate_limited");
}

TEST_CASE(
    "limit settings override plan defaults, which override the "
    "catalog's",
    "[parse]") {
  auto catalog = MustParse(R"({
    "version": 1,
    "defaults": {"soft_nudge": 0.5, "grace": 0.25},
    "plans": [
      {"id": "a", "limits": [{"limit": 100}]},
      {"id": "b", "defaults": {"grace": 0.5, "status": 403,
                               "reason": "over_quota"},
       "limits": [{"limit": 100}, {"window": "minute", "limit": 100},
                  {"limit": 100, "window": "day", "grace": 0,
                   "soft_nudge": 1, "status": 451, "reason": "nope"}]}
    ]})");
  const Limit& a = catalog->plans()[0].limits[0];
  CHECK(a.soft_nudge == 0.5);
  CHECK(a.grace == 0.25);
  CHECK(a.hard() == 125);
  CHECK(a.status == 402);

  const auto& b = catalog->plans()[1].limits;
  CHECK(b[0].soft_nudge == 0.5);
  CHECK(b[0].grace == 0.5);
  CHECK(b[0].hard() == 150);
  CHECK(b[0].status == 403);
  CHECK(b[0].reason == "over_quota");
  CHECK(b[1].status == 403);
  CHECK(b[1].reason == "over_quota");
  CHECK(b[2].soft_nudge == 1.0);
  CHECK(b[2].grace == 0.0);
  CHECK(b[2].hard() == 100);
  CHECK(b[2].status == 451);
  CHECK(b[2].reason == "nope");
}

TEST_CASE("meters are requests first, then declared or first-used order",
          "[parse][meters]") {
  SECTION("declared") {
    auto catalog = MustParse(R"({"version": 1,
        "meters": ["tokens", "requests", "cost_micros"],
        "plans": [{"id": "a", "limits": [
            {"meter": "cost_micros", "limit": 1}]}]})");
    CHECK(catalog->meters() ==
          std::vector<std::string>{"requests", "tokens", "cost_micros"});
    CHECK(catalog->MeterIndex("requests") == 0);
    CHECK(catalog->MeterIndex("tokens") == 1);
    CHECK(catalog->MeterIndex("cost_micros") == 2);
    CHECK(catalog->MeterIndex("tool_calls") == -1);
  }
  SECTION("implied by the limits") {
    auto catalog = MustParse(WithPlans(R"(
        {"id": "a", "limits": [{"meter": "tokens", "limit": 1},
                               {"meter": "tokens", "window": "day",
                                "limit": 1}]},
        {"id": "b", "limits": [{"meter": "cost_micros", "limit": 1},
                               {"limit": 1},
                               {"meter": "tokens", "limit": 1}]})"));
    CHECK(catalog->meters() ==
          std::vector<std::string>{"requests", "tokens", "cost_micros"});
  }
}

TEST_CASE("hard limit is floor(limit * (1 + grace)) without float error",
          "[hard]") {
  struct Case {
    int64_t limit;
    double grace;
    int64_t hard;
  };
  const Case cases[] = {
      {50000, 0.1, 55000},
      {500000, 0.15, 575000},
      {2000000, 0.2, 2400000},
      {100, 0.29, 129},
      {1000, 0.57, 1570},
      {100, 0.07, 107},
      {3, 0.5, 4},
      {1, 0.999, 1},
      {10, 0.0, 10},
      {0, 0.5, 0},
      {1000, 1.0, 2000},
      {kMaxCount, 0.0, kMaxCount},
      {kMaxCount, 1.0, kMaxCount},
      {-5, 0.1, 0},
  };
  for (const Case& c : cases) {
    Limit limit;
    limit.limit = c.limit;
    limit.grace = c.grace;
    INFO("limit " << c.limit << " grace " << c.grace);
    CHECK(limit.hard() == c.hard);
  }

  Limit unlimited;
  unlimited.unlimited = true;
  CHECK(unlimited.hard() == kMaxCount);
}

TEST_CASE("hard limits of parsed catalogs", "[hard]") {
  auto catalog = MustParse(WithPlans(R"(
      {"id": "free", "limits": [{"limit": 50000, "grace": 0.1}]},
      {"id": "starter", "limits": [{"limit": 500000, "grace": 0.15}]},
      {"id": "pro", "limits": [{"limit": 2000000, "grace": 0.2}]})"));
  CHECK(catalog->FindPlan("free")->limits[0].hard() == 55000);
  CHECK(catalog->FindPlan("starter")->limits[0].hard() == 575000);
  CHECK(catalog->FindPlan("pro")->limits[0].hard() == 2400000);
}

// Each broken catalog must produce exactly one error, this one.
TEST_CASE("broken catalogs name the field and the reason", "[errors]") {
  struct Case {
    const char* name;
    std::string json;
    std::string error;
  };
  const std::string kPlan = R"({"id": "free", "limits": [{"limit": 10}]})";
  const Case cases[] = {
      {"malformed JSON", R"({"version": 1, "plans": [})",
       "catalog: invalid JSON at byte 26: line 1, column 26: syntax error "
       "while parsing value - unexpected '}'; expected '[', '{', or a "
       "literal"},
      {"top level not an object", R"([{"version": 1}])",
       "catalog: must be a JSON object"},
      {"missing version", R"({"plans": [)" + kPlan + "]}",
       "version: missing required field"},
      {"wrong version", R"({"version": 2, "plans": [)" + kPlan + "]}",
       "version: must be 1"},
      {"missing plans", R"({"version": 1})", "plans: missing required field"},
      {"empty plans", R"({"version": 1, "plans": []})",
       "plans: must be a non-empty array"},
      {"unknown top-level field",
       R"({"version": 1, "plan": {}, "plans": [)" + kPlan + "]}",
       "plan: unknown field"},
      {"unknown field with an odd name",
       R"({"version": 1, "plans": [)" + kPlan + R"(], "my field": 1})",
       R"(["my field"]: unknown field)"},
      {"unknown limit field", WithPlans(R"({"id": "free", "limits": [
           {"limit": 10}, {"limit": 10, "windw": "day"}]})"),
       "plans[0].limits[1].windw: unknown field"},
      {"plan is not an object", WithPlans(kPlan + R"(, "pro")"),
       "plans[1]: must be an object"},
      {"missing plan id", WithPlans(R"({"name": "Free"})"),
       "plans[0].id: missing required field"},
      {"bad plan id", WithPlans(R"({"id": "free plan"})"),
       "plans[0].id: must match [A-Za-z0-9_.-]+"},
      {"duplicate plan id", WithPlans(R"({"id": "free"}, {"id": "free"})"),
       R"(plans[1].id: duplicate plan id "free" (also plans[0]))"},
      {"plan shadow not a boolean",
       WithPlans(R"({"id": "free", "shadow": "yes"})"),
       "plans[0].shadow: must be true or false"},
      {"limits not an array", WithPlans(R"({"id": "free", "limits": {}})"),
       "plans[0].limits: must be an array"},
      {"missing limit", WithPlans(R"({"id": "free", "limits": [{}]})"),
       "plans[0].limits[0].limit: missing required field"},
      {"limit is a string",
       WithPlans(R"({"id": "free", "limits": [{"limit": "50000"}]})"),
       "plans[0].limits[0].limit: "
       R"(must be a non-negative integer or "unlimited")"},
      {"limit is not an integer",
       WithPlans(R"({"id": "free", "limits": [{"limit": 1.5}]})"),
       "plans[0].limits[0].limit: "
       R"(must be a non-negative integer or "unlimited")"},
      {"limit is negative",
       WithPlans(R"({"id": "free", "limits": [{"limit": -1}]})"),
       "plans[0].limits[0].limit: "
       R"(must be a non-negative integer or "unlimited")"},
      {"limit beyond kMaxCount",
       WithPlans(R"({"id": "free", "limits": [{"limit": 4398046511104}]})"),
       "plans[0].limits[0].limit: must be <= 4398046511103"},
      {"limit far beyond int64",
       WithPlans(
           R"({"id": "free", "limits": [{"limit": 18446744073709551615}]})"),
       "plans[0].limits[0].limit: must be <= 4398046511103"},
      {"hard limit beyond kMaxCount", WithPlans(R"({"id": "free", "limits": [
           {"limit": 4000000000000, "grace": 0.5}]})"),
       "plans[0].limits[0]: hard limit floor(limit * (1 + grace)) = "
       "6000000000000 must be <= 4398046511103"},
      {"grace above 1",
       WithPlans(kPlan + ", " + R"({"id": "pro"}, )" +
                 R"({"id": "team", "limits": [
                                      {"limit": 10, "grace": 1.5}]})"),
       "plans[2].limits[0].grace: must be in [0, 1]"},
      {"negative grace",
       WithPlans(R"({"id": "free", "limits": [{"limit": 1, "grace": -0.1}]})"),
       "plans[0].limits[0].grace: must be in [0, 1]"},
      {"grace is a string",
       WithPlans(R"({"id": "free", "limits": [{"limit": 1, "grace": "10%"}]})"),
       "plans[0].limits[0].grace: must be a number in [0, 1]"},
      {"soft_nudge of zero", WithPlans(R"({"id": "free", "limits": [
           {"limit": 1, "soft_nudge": 0}]})"),
       "plans[0].limits[0].soft_nudge: must be in (0, 1]"},
      {"soft_nudge above 1", WithPlans(R"({"id": "free", "limits": [
           {"limit": 1, "soft_nudge": 1.01}]})"),
       "plans[0].limits[0].soft_nudge: must be in (0, 1]"},
      {"status outside 4xx",
       WithPlans(R"({"id": "free", "limits": [{"limit": 1, "status": 500}]})"),
       "plans[0].limits[0].status: must be an integer in [400, 499]"},
      {"bad reason", WithPlans(R"({"id": "free", "limits": [
           {"limit": 1, "reason": "Rate Limited"}]})"),
       "plans[0].limits[0].reason: must match [a-z0-9_]+"},
      {"bad scope",
       WithPlans(R"({"id": "free", "limits": [{"limit": 1, "scope": "org"}]})"),
       "plans[0].limits[0].scope: must be one of account, project, key, "
       R"(user (got "org"))"},
      {"bad window", WithPlans(R"({"id": "free", "limits": [
           {"limit": 1, "window": "week"}]})"),
       "plans[0].limits[0].window: must be one of billing_period, month, "
       "annual, day, hour, minute, second, concurrent, or a whole length: "
       "digits then s, "
       R"(m, h or d ("5s", "15m", "6h", "7d"); got "week")"},
      {"window of zero length", WithPlans(R"({"id": "free", "limits": [
           {"limit": 1, "window": "0s"}]})"),
       "plans[0].limits[0].window: must be one of billing_period, month, "
       "annual, day, hour, minute, second, concurrent, or a whole length: "
       "digits then s, "
       R"(m, h or d ("5s", "15m", "6h", "7d"); got "0s")"},
      {"window of a fraction", WithPlans(R"({"id": "free", "limits": [
           {"limit": 1, "window": "1.5h"}]})"),
       "plans[0].limits[0].window: must be one of billing_period, month, "
       "annual, day, hour, minute, second, concurrent, or a whole length: "
       "digits then s, "
       R"(m, h or d ("5s", "15m", "6h", "7d"); got "1.5h")"},
      {"window too long", WithPlans(R"({"id": "free", "limits": [
           {"limit": 1, "window": "3651d"}]})"),
       R"(plans[0].limits[0].window: a window of "3651d" is longer than )"
       "3650 days"},
      {"two limits on one whole-length counter",
       WithPlans(R"({"id": "free", "limits": [
           {"limit": 1, "window": "15m"}, {"limit": 2, "window": "15m"}]})"),
       "plans[0].limits[1]: same scope, meter, window and mode as limits[0]"},
      {"window is a number", WithPlans(R"({"id": "free", "limits": [
           {"limit": 1, "window": 60}]})"),
       "plans[0].limits[0].window: must be one of billing_period, month, "
       "annual, day, hour, minute, second, concurrent"},
      {"bad applies_to", WithPlans(R"({"id": "free", "limits": [
           {"limit": 1, "applies_to": "own_key"}]})"),
       "plans[0].limits[0].applies_to: must be one of all, managed, byok "
       R"((got "own_key"))"},
      {"bad redis_down", WithPlans(R"({"id": "free", "limits": [
           {"limit": 1, "redis_down": "fail_soft"}]})"),
       "plans[0].limits[0].redis_down: must be one of fail_open, "
       R"(fail_closed, local_share (got "fail_soft"))"},
      {"sliding billing period", WithPlans(R"({"id": "free", "limits": [
           {"limit": 1, "mode": "sliding"}]})"),
       "plans[0].limits[0].mode: sliding is not allowed with window "
       "billing_period"},
      {"sliding annual window", WithPlans(R"({"id": "free", "limits": [
           {"limit": 1, "window": "annual", "mode": "sliding"}]})"),
       "plans[0].limits[0].mode: sliding is not allowed with window annual"},
      {"duplicate limit id", WithPlans(R"({"id": "free", "limits": [
           {"id": "rpm", "window": "minute", "limit": 1},
           {"id": "rpm", "window": "day", "limit": 1}]})"),
       R"(plans[0].limits[1].id: duplicate limit id "rpm" (also limits[0]))"},
      {"colliding default ids", WithPlans(R"({"id": "free", "limits": [
           {"window": "minute", "limit": 1},
           {"window": "minute", "mode": "sliding", "limit": 1}]})"),
       R"(plans[0].limits[1].id: default id "account.requests.minute" is )"
       R"(taken by limits[0]; give this limit an "id")"},
      {"duplicate counter", WithPlans(R"({"id": "free", "limits": [
           {"window": "day", "limit": 1},
           {"id": "other", "window": "day", "limit": 2}]})"),
       "plans[0].limits[1]: same scope, meter, window and mode as limits[0]"},
      {"duplicate JSON key", WithPlans(R"({"id": "free", "limits": [
           {"limit": 1, "limit": 2}]})"),
       "plans[0].limits[0].limit: duplicate key"},
      {"undeclared meter", R"({"version": 1, "meters": ["tokens"],
           "plans": [{"id": "free", "limits": [
               {"limit": 1}, {"meter": "tokns", "limit": 1}]}]})",
       R"(plans[0].limits[1].meter: unknown meter "tokns" (not in meters))"},
      {"duplicate meter",
       R"({"version": 1,
           "meters": ["tokens", "cost_micros", "tokens"],
           "plans": [)" +
           kPlan + "]}",
       R"(meters[2]: duplicate meter "tokens")"},
      {"undeclared feature", R"({"version": 1, "features": ["sso"],
           "plans": [{"id": "free", "features": ["sso", "ssoo"]}]})",
       R"(plans[0].features[1]: unknown feature "ssoo" (not in features))"},
      {"upgrade_order names an unknown plan", R"({"version": 1,
           "upgrade_order": ["free", "pro", "team"],
           "plans": [{"id": "free"}, {"id": "pro"}]})",
       R"(upgrade_order[2]: unknown plan "team")"},
      {"upgrade_order repeats a plan", R"({"version": 1,
           "upgrade_order": ["free", "pro", "free"],
           "plans": [{"id": "free"}, {"id": "pro"}]})",
       R"(upgrade_order[2]: duplicate plan "free")"},
      {"upgrade_order misses a plan", R"({"version": 1,
           "upgrade_order": ["free"],
           "plans": [{"id": "free"}, {"id": "pro"}]})",
       R"(upgrade_order: missing plan "pro")"},
      {"unknown default plan", R"({"version": 1, "default_plan": "basic",
           "plans": [{"id": "free"}]})",
       R"(default_plan: unknown plan "basic")"},
      {"status in catalog defaults",
       R"({"version": 1,
           "defaults": {"status": 429}, "plans": [)" +
           kPlan + "]}",
       "defaults.status: unknown field"},
      {"plan defaults grace", WithPlans(R"({"id": "free",
           "defaults": {"grace": 2}})"),
       "plans[0].defaults.grace: must be in [0, 1]"},
      {"empty model name",
       WithPlans(R"({"id": "free", "models": ["gpt-4o", ""]})"),
       "plans[0].models[1]: must be a non-empty string"},
      {"bad key kind", WithPlans(R"({"id": "free", "key_kinds": ["prod"]})"),
       "plans[0].key_kinds[0]: must be one of live, test, sandbox, "
       R"(internal (got "prod"))"},
      {"key kind alias repeated",
       WithPlans(R"({"id": "free", "key_kinds": ["test", "sandbox"]})"),
       R"(plans[0].key_kinds[1]: duplicate key kind "sandbox")"},
      {"no key kinds", WithPlans(R"({"id": "free", "key_kinds": []})"),
       "plans[0].key_kinds: must name at least one key kind"},
      {"internal keys in past_due_blocks",
       WithPlans(R"({"id": "free", "past_due_blocks": ["live", "internal"]})"),
       "plans[0].past_due_blocks[1]: internal keys are never limited, so "
       "never blocked"},
      {"repeated past_due_blocks",
       WithPlans(R"({"id": "free", "past_due_blocks": ["test", "sandbox"]})"),
       R"(plans[0].past_due_blocks[1]: duplicate key kind "sandbox")"},
      {"negative gauge",
       WithPlans(R"({"id": "free", "gauges": {"projects": -1}})"),
       "plans[0].gauges.projects: "
       R"(must be a non-negative integer or "unlimited")"},
      {"wallet balance is a string", WithPlans(R"({"id": "free",
           "wallet": {"required": true, "min_balance_micros": "5"}})"),
       "plans[0].wallet.min_balance_micros: must be a non-negative integer"},
      {"counter budget of a scope", WithPlans(R"(
           {"id": "a", "limits": [
               {"window": "minute", "mode": "sliding", "limit": 1},
               {"window": "hour", "mode": "sliding", "limit": 1},
               {"window": "day", "mode": "sliding", "limit": 1},
               {"scope": "project", "meter": "tokens", "limit": 1}]},
           {"id": "b", "limits": [
               {"window": "minute", "mode": "sliding", "limit": 2},
               {"meter": "tokens", "limit": 1},
               {"meter": "cost_micros", "limit": 1},
               {"meter": "tool_calls", "window": "day", "limit": 1}]})"),
       "plans[1].limits[3]: scope account needs 9 counter cells across the "
       "catalog; at most 8"},
  };
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.name) {
      CHECK(ErrorLines(c.json) == std::vector<std::string>{c.error});
    }
  }
}

TEST_CASE("every error is reported at once, in document order", "[errors]") {
  // upgrade_order and meters are checked after the plans, yet their errors
  // come first, as in the document.
  const std::string json = R"({
    "version": 2,
    "upgrade_order": ["free", "gold"],
    "meters": ["tokens"],
    "plans": [
      {"id": "free", "limits": [{"meter": "tokns", "limit": 10,
                                 "windw": "day"}]},
      {"id": "pro", "limits": [{"limit": 1.5},
                               {"window": "day", "limit": 10, "grace": 2}],
       "wallet": {"required": "yes"}}
    ],
    "extra": true
  })";
  CHECK(ErrorLines(json) ==
        std::vector<std::string>{
            "version: must be 1",
            R"(upgrade_order: missing plan "pro")",
            R"(upgrade_order[1]: unknown plan "gold")",
            "plans[0].limits[0].meter: "
            R"(unknown meter "tokns" (not in meters))",
            "plans[0].limits[0].windw: unknown field",
            "plans[1].limits[0].limit: "
            R"(must be a non-negative integer or "unlimited")",
            "plans[1].limits[1].grace: must be in [0, 1]",
            "plans[1].wallet.required: must be true or false",
            "extra: unknown field",
        });
}

TEST_CASE("errors quote at most about 80 bytes of the input", "[errors]") {
  const std::string huge(10 << 20, 'a');  // 10 MiB
  // A syntax error inside a 10 MB string: the parser's "last read" is cut.
  const std::vector<std::string> syntax =
      ErrorLines(R"({"version": 1, "plans": [{"id": ")" + huge + "\x01\"}]}");
  REQUIRE(syntax.size() == 1);
  CHECK(syntax[0].size() < 400);
  CHECK(syntax[0] ==
        "catalog: invalid JSON at byte 10485794: line 1, column 10485794: "
        "syntax error while parsing value - invalid string: control "
        "character U+0001 (SOH) must be escaped to \\u0001; last read: '\"" +
            std::string(79, 'a') + "...' (10485769 bytes)");
  // A 10 MB name in a value and in a key.
  CHECK(ErrorLines(R"({"version": 1, "upgrade_order": [")" + huge +
                   R"("], "plans": [{"id": "free"}]})") ==
        std::vector<std::string>{R"(upgrade_order: missing plan "free")",
                                 R"(upgrade_order[0]: unknown plan ")" +
                                     std::string(80, 'a') +
                                     R"(..." (10485760 bytes))"});
  CHECK(ErrorLines(WithPlans(R"({"id": "free", ")" + huge + R"(": 1})")) ==
        std::vector<std::string>{R"(plans[0][")" + std::string(80, 'a') +
                                 R"(..." (10485760 bytes)]: unknown field)"});
  // A cut never splits a UTF-8 character: "é" is 2 bytes, 79 + 2 > 80.
  const std::string accents = std::string(79, 'x') + "\xc3\xa9" + "yyyy";
  CHECK(ErrorLines(R"({"version": 1, "upgrade_order": [")" + accents +
                   R"("], "plans": [{"id": "free"}]})")[1] ==
        R"(upgrade_order[0]: unknown plan ")" + std::string(79, 'x') +
            R"(..." (85 bytes))");
}

TEST_CASE("counters are shared across plans and budgeted per scope",
          "[errors]") {
  // Eight account cells in all: the same counter in two plans is one.
  auto catalog = MustParse(WithPlans(R"(
      {"id": "a", "limits": [
          {"window": "minute", "mode": "sliding", "limit": 1},
          {"window": "hour", "mode": "sliding", "limit": 1},
          {"window": "day", "mode": "sliding", "limit": 1},
          {"scope": "key", "window": "minute", "mode": "sliding",
           "limit": 1}]},
      {"id": "b", "limits": [
          {"window": "minute", "mode": "sliding", "limit": 2},
          {"window": "day", "mode": "sliding", "limit": 5},
          {"meter": "tokens", "limit": 1},
          {"meter": "cost_micros", "limit": 1}]})"));
  CHECK(catalog->plans().size() == 2);
}

TEST_CASE("any input is rejected or accepted without a crash", "[robust]") {
  const std::string full = kFullCatalog;
  for (size_t n = 0; n < full.size(); ++n) {
    auto catalog = Catalog::Parse(full.substr(0, n));
    REQUIRE_FALSE(catalog.ok());
    REQUIRE_FALSE(catalog.status().message().empty());
  }
  for (size_t i = 0; i < full.size(); i += 3) {
    for (char c : std::string("\"}]-0.x")) {
      std::string mutated = full;
      mutated[i] = c;
      auto catalog = Catalog::Parse(mutated);
      if (catalog.ok()) continue;
      for (const auto& line :
           absl::StrSplit(catalog.status().message(), '\n')) {
        REQUIRE(absl::string_view(line).find(": ") != absl::string_view::npos);
      }
    }
  }
  CHECK_FALSE(
      Catalog::Parse(std::string(100000, '[') + std::string(100000, ']')).ok());
  CHECK_FALSE(Catalog::Parse("").ok());
  CHECK_FALSE(Catalog::Parse("null").ok());
  CHECK_FALSE(Catalog::Parse(R"({"version": 1e999})").ok());
  CHECK_FALSE(Catalog::Parse("{\"version\": \"\xff\"}").ok());
}

TEST_CASE("LoadFile reads a catalog file", "[file]") {
  SECTION("missing file") {
    const std::string path = TempPath("missing.json");
    std::remove(path.c_str());
    auto catalog = Catalog::LoadFile(path);
    REQUIRE(absl::IsNotFound(catalog.status()));
    CHECK(catalog.status().message() ==
          path + ": cannot open: No such file or directory");
  }
  SECTION("a directory") {
    auto catalog =
        Catalog::LoadFile(std::filesystem::temp_directory_path().string());
    CHECK(absl::IsUnavailable(catalog.status()));
  }
  SECTION("valid file") {
    const std::string path = TempPath("full.json");
    WriteFile(path, kFullCatalog);
    auto catalog = Catalog::LoadFile(path);
    std::remove(path.c_str());
    REQUIRE(catalog.ok());
    CHECK((*catalog)->plans().size() == 4);
  }
  SECTION("every parse error is prefixed with the path") {
    const std::string path = TempPath("broken.json");
    WriteFile(path, R"({"version": 2, "plans": [{"id": "a b"}]})");
    auto catalog = Catalog::LoadFile(path);
    std::remove(path.c_str());
    REQUIRE(absl::IsInvalidArgument(catalog.status()));
    CHECK(catalog.status().message() ==
          path + ": version: must be 1\n" + path +
              ": plans[0].id: must match [A-Za-z0-9_.-]+");
  }
}

TEST_CASE("plans are found by id", "[lookup]") {
  auto catalog = MustParse(kFullCatalog);
  CHECK(catalog->PlanIndex("free") == 0);
  CHECK(catalog->PlanIndex("enterprise") == 3);
  CHECK(catalog->PlanIndex("gold") == -1);
  CHECK(catalog->FindPlan("team") == &catalog->plans()[2]);
  CHECK(catalog->FindPlan("") == nullptr);
}

TEST_CASE("CheapestPlanWithFeature walks the upgrade order", "[lookup]") {
  // Document order differs from the upgrade order on purpose.
  auto catalog = MustParse(R"({
    "version": 1,
    "upgrade_order": ["free", "pro", "team", "enterprise"],
    "plans": [
      {"id": "enterprise", "features": ["sso", "audit_log", "analytics"]},
      {"id": "team", "features": ["sso", "analytics"]},
      {"id": "free"},
      {"id": "pro", "features": ["analytics"]}
    ]})");
  auto id = [](const Plan* plan) {
    return plan == nullptr ? std::string("(none)") : plan->id;
  };
  CHECK(id(catalog->CheapestPlanWithFeature("sso")) == "team");
  CHECK(id(catalog->CheapestPlanWithFeature("analytics")) == "pro");
  CHECK(id(catalog->CheapestPlanWithFeature("audit_log")) == "enterprise");
  CHECK(id(catalog->CheapestPlanWithFeature("sso", "free")) == "team");
  CHECK(id(catalog->CheapestPlanWithFeature("analytics", "pro")) == "team");
  CHECK(id(catalog->CheapestPlanWithFeature("sso", "team")) == "enterprise");
  CHECK(id(catalog->CheapestPlanWithFeature("sso", "enterprise")) == "(none)");
  CHECK(id(catalog->CheapestPlanWithFeature("teleport")) == "(none)");
}

TEST_CASE("names match the JSON spelling", "[names]") {
  CHECK(ScopeName(Scope::kAccount) == "account");
  CHECK(ScopeName(Scope::kProject) == "project");
  CHECK(ScopeName(Scope::kKey) == "key");
  CHECK(ScopeName(Scope::kUser) == "user");
  CHECK(WindowUnitName(WindowUnit::kBillingPeriod) == "billing_period");
  CHECK(WindowUnitName(WindowUnit::kAnnual) == "annual");
  CHECK(WindowUnitName(WindowUnit::kDay) == "day");
  CHECK(WindowUnitName(WindowUnit::kHour) == "hour");
  CHECK(WindowUnitName(WindowUnit::kMinute) == "minute");
  CHECK(WindowUnitName(WindowUnit::kSecond) == "second");
  CHECK(WindowModeName(WindowMode::kFixed) == "fixed");
  CHECK(WindowModeName(WindowMode::kSliding) == "sliding");
  CHECK(TrafficName(Traffic::kAll) == "all");
  CHECK(TrafficName(Traffic::kManaged) == "managed");
  CHECK(TrafficName(Traffic::kByok) == "byok");
  CHECK(KeyKindName(KeyKind::kLive) == "live");
  CHECK(KeyKindName(KeyKind::kTest) == "test");
  CHECK(KeyKindName(KeyKind::kInternal) == "internal");
}

TEST_CASE("windows of any whole length", "[windows]") {
  auto catalog = Catalog::Parse(R"({"version": 1, "plans": [{"id": "p",
      "limits": [
        {"window": "5s", "limit": 1},
        {"window": "second", "limit": 2},
        {"window": "15m", "limit": 3, "mode": "sliding"},
        {"window": "6h", "limit": 4},
        {"window": "7d", "limit": 5},
        {"window": "1m", "limit": 6}]}]})");
  REQUIRE(catalog.ok());
  const std::vector<Limit>& limits = (*catalog)->plans()[0].limits;
  REQUIRE(limits.size() == 6);
  struct Want {
    WindowUnit unit;
    uint32_t count;
    const char* id;
    int64_t ms;
  };
  const Want want[] = {
      {WindowUnit::kSecond, 5, "account.requests.5s", 5'000},
      {WindowUnit::kSecond, 1, "account.requests.second", 1'000},
      {WindowUnit::kMinute, 15, "account.requests.15m", 900'000},
      {WindowUnit::kHour, 6, "account.requests.6h", 21'600'000},
      {WindowUnit::kDay, 7, "account.requests.7d", 604'800'000},
      // "1m" is the minute window itself.
      {WindowUnit::kMinute, 1, "account.requests.minute", 60'000},
  };
  for (size_t i = 0; i < limits.size(); ++i) {
    INFO("limits[" << i << "]");
    CHECK(limits[i].window == want[i].unit);
    CHECK(limits[i].window_count == want[i].count);
    CHECK(limits[i].id == want[i].id);
    CHECK(WindowLengthMs(limits[i].window, limits[i].window_count) ==
          want[i].ms);
    CHECK(WindowName(limits[i].window, limits[i].window_count) ==
          std::string(want[i].id)
              .substr(std::string("account.requests.").size()));
  }
  CHECK(WindowLengthMs(WindowUnit::kBillingPeriod, 1) == 0);
}

}  // namespace
}  // namespace plangate
