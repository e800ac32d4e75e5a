// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// Shared helpers for Enforcer tests: a fixture on simulated time, and
// REQUIRE_OK for statuses.

#ifndef PLANGATE_TESTS_CORE_ENFORCER_TEST_UTIL_H_
#define PLANGATE_TESTS_CORE_ENFORCER_TEST_UTIL_H_

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "plangate/catalog.h"
#include "plangate/clock.h"
#include "plangate/enforcer.h"

#define REQUIRE_OK(expr)                   \
  do {                                     \
    const auto& status_ = (expr);          \
    INFO(std::string(status_.ToString())); \
    REQUIRE(status_.ok());                 \
  } while (0)

namespace plangate::testing {

// 2024-01-31T00:00:00Z: an anchor on the 31st in a leap year.
inline constexpr int64_t kJan31_2024 = 1706659200000;

inline std::shared_ptr<const Catalog> ParseOrDie(std::string_view json) {
  auto catalog = Catalog::Parse(json);
  INFO(std::string(catalog.status().ToString()));
  REQUIRE(catalog.ok());
  return *catalog;
}

class EnforcerFixture {
 public:
  EnforcerFixture() : clock_(kJan31_2024) {}

  // Builds the Enforcer on `json` and registers account "acme" on `plan`.
  void Start(std::string_view json, const std::string& plan,
             EnforcerOptions options = {}) {
    options.clock = &clock_;
    auto enforcer = Enforcer::Create(ParseOrDie(json), options);
    REQUIRE_OK(enforcer.status());
    enforcer_ = std::move(*enforcer);
    REQUIRE_OK(enforcer_->UpsertAccount(
        {.account_id = "acme", .plan_id = plan, .anchor_ms = kJan31_2024}));
  }

  Decision Check(int64_t requests = 1) {
    MeterAmount amount{0, requests};
    return enforcer_->Check({.account_id = "acme", .amounts = {&amount, 1}});
  }

  // Usage of the account-scope limit `id` now.
  int64_t Used(std::string_view id) {
    auto usage = enforcer_->Usage("acme");
    REQUIRE_OK(usage.status());
    for (const LimitUsage& l : usage->limits) {
      if (l.limit_id == id) return l.used;
    }
    FAIL("no limit " << id);
    return -1;
  }

 protected:
  SimulatedClock clock_;
  std::unique_ptr<Enforcer> enforcer_;
};

}  // namespace plangate::testing

#endif  // PLANGATE_TESTS_CORE_ENFORCER_TEST_UTIL_H_
