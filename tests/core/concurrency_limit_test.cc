// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// Concurrency limits (window "concurrent"): requests in flight per scope,
// taken at check, given back at commit, refund or expiry; no slot leaks.

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/enforcer_test_util.h"
#include "plangate/http.h"

namespace plangate::testing {
namespace {

constexpr char kCatalog[] = R"({"version": 1, "meters": ["tokens"],
  "plans": [{"id": "p", "limits": [
    {"id": "in_flight", "window": "concurrent", "limit": 2},
    {"id": "per_key_in_flight", "scope": "key", "window": "concurrent",
     "limit": 1, "message": "one request at a time per key"},
    {"id": "monthly", "limit": 1000000}]}]})";

Decision CheckKey(Enforcer& e, std::string_view key) {
  return e.Check({.account_id = "acme", .key_id = key});
}

TEST_CASE_METHOD(EnforcerFixture,
                 "requests in flight are taken at check and given back at "
                 "commit",
                 "[concurrency_limit]") {
  Start(kCatalog, "p");
  const Decision a = CheckKey(*enforcer_, "k1");
  REQUIRE(a.admitted());
  // The key's one slot is taken: the next on k1 waits.
  const Decision busy = CheckKey(*enforcer_, "k1");
  CHECK(busy.status == 429);
  CHECK(busy.reason == "too_many_concurrent_requests");
  CHECK(busy.limit.limit_id == "per_key_in_flight");
  CHECK(busy.limit.window == WindowUnit::kConcurrent);
  CHECK(busy.message == "one request at a time per key");
  CHECK(busy.retry_after_ms == 1000);
  CHECK(busy.reset_ms == 0);
  const Decision b = CheckKey(*enforcer_, "k2");
  REQUIRE(b.admitted());
  // The account's two are taken.
  const Decision full = CheckKey(*enforcer_, "k3");
  CHECK(full.status == 429);
  CHECK(full.limit.limit_id == "in_flight");
  CHECK(Used("in_flight") == 2);
  CHECK(Used("monthly") == 2);  // denials count nothing

  // Headers: Retry-After, no window, no reset.
  const HttpRendering http(full, clock_.NowMs());
  CHECK(http.header("Retry-After") == "1");
  CHECK(http.header("RateLimit-Policy") == "\"in_flight\";q=2");

  // A success gives the slot back and keeps the month's count.
  CHECK(enforcer_->Commit({.reservation = a.reservation}) ==
        CommitResult::kApplied);
  CHECK(Used("in_flight") == 1);
  CHECK(Used("monthly") == 2);
  // So does a failure (which refunds the month too).
  CHECK(enforcer_->Commit({.reservation = b.reservation, .success = false}) ==
        CommitResult::kRefunded);
  CHECK(Used("in_flight") == 0);
  CHECK(Used("monthly") == 1);
  CHECK(CheckKey(*enforcer_, "k1").admitted());
  // An admitted decision is described by a quota, never by in-flight.
  CHECK(CheckKey(*enforcer_, "k2").limit.limit_id == "monthly");

  // The usage report has no reset for it.
  const std::string json = UsageReportJson(*enforcer_->Usage("acme"));
  INFO(json);
  CHECK(json.find(R"("window":"concurrent","resets_at":null)") !=
        std::string::npos);
}

TEST_CASE_METHOD(EnforcerFixture,
                 "a reservation never committed gives its slot back when it "
                 "expires; a commit with actual amounts too",
                 "[concurrency_limit]") {
  EnforcerOptions options;
  options.reservation_ttl_ms = 1000;
  Start(kCatalog, "p", options);
  REQUIRE(CheckKey(*enforcer_, "k1").admitted());
  CHECK_FALSE(CheckKey(*enforcer_, "k1").admitted());
  clock_.Advance(1001);
  enforcer_->Maintain();
  CHECK(Used("in_flight") == 0);
  const Decision d = CheckKey(*enforcer_, "k1");
  REQUIRE(d.admitted());
  const MeterAmount actual{0, 1};  // requests, as reserved
  CHECK(enforcer_->Commit({.reservation = d.reservation,
                           .actual = {&actual, 1}}) == CommitResult::kApplied);
  CHECK(Used("in_flight") == 0);
  // Extending a stream does not take another slot.
  const Decision s = CheckKey(*enforcer_, "k1");
  REQUIRE(s.admitted());
  const MeterAmount tokens{enforcer_->MeterId("tokens"), 50};
  CHECK(
      enforcer_->Extend({.reservation = s.reservation, .amounts = {&tokens, 1}})
          .admitted());
  CHECK(Used("in_flight") == 1);
  CHECK(enforcer_->Commit({.reservation = s.reservation}) ==
        CommitResult::kApplied);
  CHECK(Used("in_flight") == 0);
}

TEST_CASE("a concurrent limit counts requests, in fixed mode",
          "[concurrency_limit]") {
  auto tokens = Catalog::Parse(R"({"version": 1, "plans": [{"id": "p",
      "limits": [{"id": "c", "meter": "tokens", "window": "concurrent",
                  "limit": 2}]}]})");
  REQUIRE_FALSE(tokens.ok());
  CHECK(
      std::string(tokens.status().message()).find("plans[0].limits[0].meter") !=
      std::string::npos);
  auto sliding = Catalog::Parse(R"({"version": 1, "plans": [{"id": "p",
      "limits": [{"id": "c", "window": "concurrent", "mode": "sliding",
                  "limit": 2}]}]})");
  REQUIRE_FALSE(sliding.ok());
  CHECK(
      std::string(sliding.status().message()).find("plans[0].limits[0].mode") !=
      std::string::npos);
}

TEST_CASE(
    "under contention no more requests are ever in flight than the "
    "limit allows",
    "[concurrency_limit][concurrency]") {
  SimulatedClock clock(kJan31_2024);
  auto e = Enforcer::Create(ParseOrDie(R"({"version": 1, "plans": [{"id": "p",
      "limits": [{"id": "in_flight", "window": "concurrent", "limit": 3}]}]})"),
                            {.clock = &clock});
  REQUIRE_OK(e.status());
  Enforcer& enforcer = **e;
  REQUIRE_OK(enforcer.UpsertAccount(
      {.account_id = "acme", .plan_id = "p", .anchor_ms = kJan31_2024}));
  std::atomic<int> in_flight{0}, most{0}, admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        const Decision d = enforcer.Check({.account_id = "acme"});
        if (!d.admitted()) continue;
        admitted.fetch_add(1, std::memory_order_relaxed);
        const int now = in_flight.fetch_add(1) + 1;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        in_flight.fetch_sub(1);
        enforcer.Commit(
            {.reservation = d.reservation, .success = (i + t) % 3 != 0});
      }
    });
  }
  for (std::thread& th : threads) th.join();
  CHECK(most.load() <= 3);
  CHECK(admitted.load() > 0);
  auto usage = enforcer.Usage("acme");
  REQUIRE_OK(usage.status());
  CHECK(usage->limits[0].used == 0);  // every slot came back
}

}  // namespace
}  // namespace plangate::testing
