// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// Many threads on one Enforcer, exact totals checked. Runs under
// ThreadSanitizer in CI.

#include <atomic>
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/enforcer_test_util.h"

namespace plangate::testing {
namespace {

constexpr int kThreads = 4;

template <typename Fn>
void RunThreads(int n, Fn fn) {
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t) threads.emplace_back(fn, t);
  for (auto& th : threads) th.join();
}

TEST_CASE_METHOD(EnforcerFixture,
                 "concurrent checks never admit past a hard limit",
                 "[concurrency]") {
  Start(R"({"version": 1, "plans": [{"id": "p", "limits": [
      {"id": "monthly", "limit": 2000, "grace": 0.1},
      {"id": "daily", "window": "day", "limit": 5000},
      {"id": "hourly", "window": "hour", "mode": "sliding", "limit": 5000}]}]})",
        "p");
  std::atomic<int> admitted{0};
  std::atomic<int> wrong_denials{0};
  RunThreads(kThreads, [&](int) {
    for (int i = 0; i < 1500; ++i) {
      const Decision d = enforcer_->Check({.account_id = "acme"});
      if (d.admitted()) {
        admitted.fetch_add(1, std::memory_order_relaxed);
      } else if (d.limit.limit_id != "monthly") {
        wrong_denials.fetch_add(1, std::memory_order_relaxed);
      }
    }
  });
  CHECK(wrong_denials.load() == 0);
  CHECK(admitted.load() == 2200);
  CHECK(Used("monthly") == 2200);
  CHECK(Used("daily") == 2200);
  CHECK(Used("hourly") == 2200);
}

TEST_CASE_METHOD(EnforcerFixture,
                 "concurrent check, commit and refund keep exact totals",
                 "[concurrency]") {
  Start(R"({"version": 1, "plans": [{"id": "p", "limits": [
      {"id": "tokens", "meter": "tokens", "limit": 100000000},
      {"id": "monthly", "limit": 1000000},
      {"id": "per_key", "scope": "key", "window": "minute", "limit": 1000000}]}]})",
        "p");
  const int tokens = enforcer_->MeterId("tokens");
  std::atomic<int64_t> expected_tokens{0};
  std::atomic<int64_t> expected_requests{0};
  std::atomic<int> unexpected{0};  // Catch2 assertions are not thread-safe
  RunThreads(kThreads, [&](int t) {
    const std::string key = "key-" + std::to_string(t % 2);
    for (int i = 0; i < 2000; ++i) {
      MeterAmount estimate{tokens, 100};
      const Decision d = enforcer_->Check(
          {.account_id = "acme", .key_id = key, .amounts = {&estimate, 1}});
      if (!d.admitted()) unexpected.fetch_add(1);
      const bool success = (i % 3) != 0;
      MeterAmount actual{tokens, 10 + (i % 7)};
      const CommitResult r = enforcer_->Commit({.reservation = d.reservation,
                                                .success = success,
                                                .actual = {&actual, 1}});
      if (r != (success ? CommitResult::kApplied : CommitResult::kRefunded)) {
        unexpected.fetch_add(1);
      }
      if (success) {
        expected_tokens.fetch_add(actual.amount, std::memory_order_relaxed);
        expected_requests.fetch_add(1, std::memory_order_relaxed);
      }
      // A duplicate commit from another thread's point of view: no effect.
      if (enforcer_->Commit({.reservation = d.reservation}) !=
          CommitResult::kDuplicate) {
        unexpected.fetch_add(1);
      }
    }
  });
  CHECK(unexpected.load() == 0);
  CHECK(Used("tokens") == expected_tokens.load());
  CHECK(Used("monthly") == expected_requests.load());
}

TEST_CASE_METHOD(EnforcerFixture,
                 "housekeeping, reloads and inserts race with checks safely",
                 "[concurrency][reclaim]") {
  EnforcerOptions options;
  options.max_subjects = 256;
  options.subjects_per_account = 256;  // one account fills the table
  options.idle_subject_ttl_ms = 1;
  options.reservation_ttl_ms = 1;
  Start(R"({"version": 1, "plans": [{"id": "p", "limits": [
      {"id": "per_user", "scope": "user", "window": "second", "limit": 1000},
      {"id": "monthly", "limit": 100000000}]}]})",
        "p", options);
  std::atomic<bool> done{false};
  std::atomic<int64_t> admitted{0};
  std::atomic<int64_t> applied{0};
  std::atomic<int> unexpected{0};
  std::thread housekeeper([&] {
    const auto catalog = enforcer_->catalog();
    while (!done.load(std::memory_order_relaxed)) {
      clock_.Advance(1'000);
      enforcer_->Maintain();
      if (!enforcer_->ReloadCatalog(catalog).ok()) unexpected.fetch_add(1);
    }
  });
  RunThreads(kThreads - 1, [&](int t) {
    for (int i = 0; i < 3000; ++i) {
      const std::string user = "u" + std::to_string((i * 7 + t) % 400);
      const Decision d =
          enforcer_->Check({.account_id = "acme", .user_id = user});
      if (d.admitted()) {
        admitted.fetch_add(1, std::memory_order_relaxed);
        // Half the reservations are committed, half left to expire.
        if (i % 2 == 0) {
          const CommitResult r =
              enforcer_->Commit({.reservation = d.reservation});
          if (r == CommitResult::kApplied) {
            applied.fetch_add(1);
          } else if (r != CommitResult::kExpired) {
            unexpected.fetch_add(1);
          }
        }
      } else if (d.status != 503) {  // the table may be full for a moment
        unexpected.fetch_add(1);
      }
    }
  });
  done.store(true);
  housekeeper.join();
  clock_.Advance(10'000);
  enforcer_->Maintain();
  // Every admitted check was either committed (and stays counted) or
  // expired (and was refunded): the monthly count is exactly the commits.
  CHECK(unexpected.load() == 0);
  CHECK(admitted.load() > 0);
  CHECK(applied.load() > 0);
  CHECK(Used("monthly") == applied.load());
  CHECK(enforcer_->Stats().reservations_pending == 0);
}

}  // namespace
}  // namespace plangate::testing
