// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// The catalog's price table: per-model rates per 1M tokens of each kind,
// looked up by pattern in document order, and what a call costs.

#include <catch2/catch.hpp>
#include <string>

#include "plangate/catalog.h"

namespace plangate {
namespace {

constexpr char kCatalog[] = R"({"version": 1,
  "prices": [
    {"models": ["gpt-4o-mini"], "input": 150000, "output": 600000},
    {"models": ["gpt-4o", "gpt-4o-2024-*"], "input": 2500000,
     "cached_input": 1250000, "output": 10000000},
    {"models": ["o3*"], "input": 2000000, "output": 8000000,
     "reasoning": 8000000},
    {"models": ["*"], "input": 1000000, "output": 1000000}],
  "plans": [{"id": "pro", "models": ["gpt-4o*", "o3-mini"], "limits": []}]})";

TEST_CASE("prices are found by pattern, first match wins", "[prices]") {
  auto c = Catalog::Parse(kCatalog);
  INFO(c.status().ToString());
  REQUIRE(c.ok());
  const Catalog& cat = **c;
  REQUIRE(cat.prices().size() == 4);
  CHECK(cat.PriceFor("gpt-4o-mini")->input == 150000);
  CHECK(cat.PriceFor("gpt-4o")->input == 2500000);
  CHECK(cat.PriceFor("gpt-4o-2024-08-06")->output == 10000000);
  CHECK(cat.PriceFor("o3-mini")->reasoning == 8000000);
  CHECK(cat.PriceFor("anything-else")->input == 1000000);  // the default
  // Defaults of the optional rates: cached = input, reasoning = output.
  CHECK(cat.PriceFor("gpt-4o-mini")->cached_input == 150000);
  CHECK(cat.PriceFor("gpt-4o-mini")->reasoning == 600000);
}

TEST_CASE("a call's cost: each kind of token at its rate, rounded up",
          "[prices]") {
  auto c = Catalog::Parse(kCatalog);
  REQUIRE(c.ok());
  const Price& gpt4o = *(*c)->PriceFor("gpt-4o");
  // 1,000 prompt tokens of which 200 cached, 500 completion tokens:
  // 800 * 2.5 + 200 * 1.25 + 500 * 10 micro-units.
  CHECK(
      CostMicros(gpt4o, {.input = 1000, .cached_input = 200, .output = 500}) ==
      2000 + 250 + 5000);
  // One token of gpt-4o-mini input costs 0.15 micro-units: charged 1.
  const Price& mini = *(*c)->PriceFor("gpt-4o-mini");
  CHECK(CostMicros(mini, {.input = 1}) == 1);
  CHECK(CostMicros(mini, {}) == 0);
  // Bad counts are bounded: negatives are 0, cached and reasoning capped.
  CHECK(CostMicros(mini, {.input = -5, .output = -1}) == 0);
  CHECK(CostMicros(gpt4o, {.input = 10, .cached_input = 50}) ==
        CostMicros(gpt4o, {.input = 10, .cached_input = 10}));
  // Reasoning tokens at their own rate.
  Price p;
  p.input = 0;
  p.output = 1'000'000;
  p.reasoning = 3'000'000;
  CHECK(CostMicros(p, {.output = 10, .reasoning = 4}) == 6 + 12);
  // Saturates instead of overflowing.
  p.output = int64_t{1} << 40;
  CHECK(CostMicros(p, {.output = int64_t{1} << 41}) == kMaxCount);
}

TEST_CASE("every model a plan allows is priced; errors name the place",
          "[prices]") {
  auto unpriced = Catalog::Parse(R"({"version": 1,
    "prices": [{"models": ["gpt-4o"], "input": 1, "output": 1}],
    "plans": [{"id": "pro", "models": ["gpt-4o", "claude-*"], "limits": []}]})");
  REQUIRE_FALSE(unpriced.ok());
  CHECK(std::string(unpriced.status().message())
            .find("plans[0].models[1]: no price for model \"claude-*\"") !=
        std::string::npos);
  auto missing = Catalog::Parse(R"({"version": 1,
    "prices": [{"models": ["m"], "output": 1}, {"input": 1, "output": 1},
               {"models": ["x"], "input": -1, "output": 1}],
    "plans": [{"id": "p", "limits": []}]})");
  REQUIRE_FALSE(missing.ok());
  const std::string msg(missing.status().message());
  INFO(msg);
  CHECK(msg.find("prices[0].input: missing required field") !=
        std::string::npos);
  CHECK(msg.find("prices[1].models: missing required field") !=
        std::string::npos);
  CHECK(msg.find("prices[2].input") != std::string::npos);
  // Without a price table nothing is required.
  REQUIRE(Catalog::Parse(R"({"version": 1, "plans": [{"id": "p",
      "models": ["anything"], "limits": []}]})")
              .ok());
}

}  // namespace
}  // namespace plangate
