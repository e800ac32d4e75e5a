// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// Per-tool limits ("tools" on a limit): a plan caps an expensive MCP tool,
// or a set of tools, alone; and per-model limits ("models"), which also
// give per-model usage in the usage report.

#include <catch2/catch.hpp>
#include <string>

#include "core/enforcer_test_util.h"

namespace plangate::testing {
namespace {

constexpr char kCatalog[] = R"({"version": 1,
  "meters": ["requests", "tool_calls"],
  "plans": [{"id": "agent", "limits": [
    {"id": "all_tools", "meter": "tool_calls", "limit": 100},
    {"id": "web", "tools": ["search", "browse"], "limit": 2,
     "reason": "web_tools_exhausted"},
    {"id": "browse_per_user", "scope": "user", "tools": ["browse"],
     "window": "day", "limit": 5}]}]})";

class ToolFixture : public EnforcerFixture {
 public:
  Decision Call(std::string_view tool, std::string_view user = {}) {
    const std::string tool_meter = "tool_calls." + std::string(tool);
    const MeterAmount amounts[] = {{enforcer_->MeterId("tool_calls"), 1},
                                   {enforcer_->MeterId(tool_meter), 1}};
    const int n = enforcer_->MeterId(tool_meter) >= 0 ? 2 : 1;
    return enforcer_->Check({.account_id = "acme",
                             .user_id = user,
                             .amounts = {amounts, static_cast<size_t>(n)}});
  }
};

TEST_CASE_METHOD(ToolFixture, "a limit with tools counts those tools only",
                 "[tools]") {
  Start(kCatalog, "agent");
  // The catalog knows each tool's meter, and the limit's own counter.
  const auto& meters = enforcer_->catalog()->meters();
  CHECK(std::find(meters.begin(), meters.end(), "tool_calls.search") !=
        meters.end());
  CHECK(enforcer_->MeterId("tool_calls.browse") >= 0);

  CHECK(Call("search").admitted());
  CHECK(Call("add").admitted());  // not a web tool
  CHECK(Call("browse", "bob").admitted());
  const Decision d = Call("search");
  CHECK(d.status == 402);  // a billing window's default status
  CHECK(d.reason == "web_tools_exhausted");
  CHECK(d.limit.limit_id == "web");
  CHECK(d.limit.meter == "tool_calls");
  // Other tools go on; the denial counted nothing.
  CHECK(Call("add").admitted());
  CHECK(Used("all_tools") == 4);
  CHECK(Used("web") == 2);
  // A request that uses no tool is not described by a tool limit.
  const Decision plain = enforcer_->Check({.account_id = "acme"});
  CHECK(plain.admitted());
  CHECK(plain.limit.limit_id != "web");
}

TEST_CASE("tool limits are validated, and keep their own counters", "[tools]") {
  auto empty = Catalog::Parse(R"({"version": 1, "plans": [{"id": "p",
      "limits": [{"id": "t", "tools": [], "limit": 1}]}]})");
  REQUIRE_FALSE(empty.ok());
  CHECK(std::string(empty.status().message())
            .find("plans[0].limits[0].tools: must name at least one tool") !=
        std::string::npos);
  auto dup = Catalog::Parse(R"({"version": 1, "plans": [{"id": "p",
      "limits": [{"id": "t", "tools": ["a", "a"], "limit": 1}]}]})");
  REQUIRE_FALSE(dup.ok());
  // Same meter and window as a plain tool_calls limit, but another
  // counter: both are allowed, and the default id names the tools.
  auto two = Catalog::Parse(R"({"version": 1, "plans": [{"id": "p",
      "limits": [{"meter": "tool_calls", "limit": 10},
                 {"tools": ["search"], "limit": 1}]}]})");
  REQUIRE(two.ok());
  CHECK((*two)->plans()[0].limits[1].id ==
        "account.tool_calls[search].billing_period");
  CHECK(CounterMeterName((*two)->plans()[0].limits[1]) == "tool_calls[search]");
  auto same = Catalog::Parse(R"({"version": 1, "plans": [{"id": "p",
      "limits": [{"id": "a", "tools": ["x", "y"], "limit": 1},
                 {"id": "b", "tools": ["y", "x"], "limit": 2}]}]})");
  REQUIRE_FALSE(same.ok());  // the same tools, in any order: one counter
}

TEST_CASE_METHOD(EnforcerFixture,
                 "a limit with models counts those models only, and reports "
                 "per-model usage",
                 "[models]") {
  Start(R"({"version": 1, "meters": ["requests", "tokens"],
    "plans": [{"id": "p", "limits": [
      {"id": "tokens", "meter": "tokens", "limit": 1000000},
      {"id": "gpt4_tokens", "meter": "tokens", "models": ["gpt-4*"],
       "limit": 100},
      {"id": "mini_tokens", "meter": "tokens", "models": ["gpt-4o-mini"],
       "limit": "unlimited"}]}]})",
        "p");
  REQUIRE_OK(enforcer_->UpsertAccount({.account_id = "acme",
                                       .plan_id = "p",
                                       .anchor_ms = kJan31_2024,
                                       .default_model = "gpt-4o-mini"}));
  const auto ask = [&](std::string_view model, int64_t tokens) {
    const MeterAmount a{enforcer_->MeterId("tokens"), tokens};
    return enforcer_->Check(
        {.account_id = "acme", .model = model, .amounts = {&a, 1}});
  };
  CHECK(ask("gpt-4o", 60).admitted());
  CHECK(ask("claude-3", 500).admitted());     // neither model limit
  CHECK(ask("", 30).admitted());              // the default: gpt-4o-mini
  const Decision d = ask("gpt-4-turbo", 50);  // 90 + 50 > 100
  CHECK_FALSE(d.admitted());
  CHECK(d.limit.limit_id == "gpt4_tokens");
  CHECK(ask("claude-3", 50).admitted());  // other models go on
  CHECK(Used("tokens") == 640);
  CHECK(Used("gpt4_tokens") == 90);  // gpt-4o and the default gpt-4o-mini
  CHECK(Used("mini_tokens") == 30);
  // The counters are separate: the default ids and counter names say so.
  CHECK(CounterMeterName(enforcer_->catalog()->plans()[0].limits[1]) ==
        "tokens{gpt-4*}");
  auto bad = Catalog::Parse(R"({"version": 1, "plans": [{"id": "p",
      "limits": [{"id": "m", "models": ["a,b"], "limit": 1}]}]})");
  REQUIRE_FALSE(bad.ok());
  CHECK(std::string(bad.status().message())
            .find("plans[0].limits[0].models[0]") != std::string::npos);
}

}  // namespace
}  // namespace plangate::testing
