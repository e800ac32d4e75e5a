// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// Enforcer::Extend: a reservation charged more while its request runs (a
// stream's tokens), with the hard cap holding for any number of streams.

#include <atomic>
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/enforcer_test_util.h"

namespace plangate::testing {
namespace {

constexpr char kCatalog[] = R"({"version": 1, "meters": ["tokens"],
  "plans": [{"id": "p", "limits": [
    {"id": "requests", "limit": 1000000},
    {"id": "tokens", "meter": "tokens", "limit": 10000, "grace": 0.1,
     "status": 402, "reason": "token_quota_exceeded"},
    {"id": "daily_tokens", "meter": "tokens", "window": "day",
     "limit": 100000}]}]})";

class ExtendFixture : public EnforcerFixture {
 public:
  int tokens() { return enforcer_->MeterId("tokens"); }
  Reservation Begin(int64_t estimate) {
    const MeterAmount a{tokens(), estimate};
    const Decision d =
        enforcer_->Check({.account_id = "acme", .amounts = {&a, 1}});
    REQUIRE(d.admitted());
    REQUIRE_FALSE(d.reservation.empty());
    return d.reservation;
  }
  Decision More(Reservation r, int64_t n) {
    const MeterAmount a{tokens(), n};
    return enforcer_->Extend({.reservation = r, .amounts = {&a, 1}});
  }
};

TEST_CASE_METHOD(ExtendFixture, "a stream's tokens are charged as they flow",
                 "[extend]") {
  Start(kCatalog, "p");
  const Reservation r = Begin(0);
  for (int i = 0; i < 5; ++i) {
    const Decision d = More(r, 100);
    REQUIRE(d.admitted());
    CHECK(d.reservation.slot == r.slot);
  }
  CHECK(Used("tokens") == 500);
  CHECK(Used("daily_tokens") == 500);
  CHECK(Used("requests") == 1);  // an extension is not another request
  // Past the hard cap (10,000 + 10% grace): the limit's own denial, and
  // nothing more charged.
  const Decision denied = More(r, 10'600);
  CHECK(denied.status == 402);
  CHECK(denied.reason == "token_quota_exceeded");
  CHECK(denied.limit.limit_id == "tokens");
  CHECK(denied.hard_limit == 11'000);
  CHECK(Used("tokens") == 500);
  CHECK(Used("daily_tokens") == 500);
  // The reservation is still the host's to commit; the sum stands.
  CHECK(enforcer_->Commit({.reservation = r}) == CommitResult::kApplied);
  CHECK(Used("tokens") == 500);
  CHECK(More(r, 1).deny == DenyKind::kInvalidRequest);  // settled
}

TEST_CASE_METHOD(ExtendFixture,
                 "commit settles and a failure refunds the extended sum",
                 "[extend]") {
  Start(kCatalog, "p");
  const Reservation failed = Begin(10);
  REQUIRE(More(failed, 90).admitted());
  CHECK(Used("tokens") == 100);
  CHECK(enforcer_->Commit({.reservation = failed, .success = false}) ==
        CommitResult::kRefunded);
  CHECK(Used("tokens") == 0);

  const Reservation settled = Begin(10);
  REQUIRE(More(settled, 90).admitted());
  const MeterAmount actual{tokens(), 120};
  CHECK(enforcer_->Commit({.reservation = settled, .actual = {&actual, 1}}) ==
        CommitResult::kApplied);
  CHECK(Used("tokens") == 120);
}

TEST_CASE_METHOD(ExtendFixture,
                 "an extension restarts the reservation's expiry", "[extend]") {
  EnforcerOptions options;
  options.reservation_ttl_ms = 1000;
  Start(kCatalog, "p", options);
  const Reservation r = Begin(10);
  clock_.Advance(800);
  REQUIRE(More(r, 10).admitted());
  clock_.Advance(800);
  enforcer_->Maintain();
  CHECK(enforcer_->Stats().reservations_expired == 0);
  CHECK(Used("tokens") == 20);
  clock_.Advance(300);
  enforcer_->Maintain();
  CHECK(enforcer_->Stats().reservations_expired == 1);
  CHECK(Used("tokens") == 0);  // never committed: all of it refunded
}

TEST_CASE_METHOD(ExtendFixture,
                 "past its window's end an extension counts in the new one, "
                 "finally",
                 "[extend]") {
  Start(kCatalog, "p");
  clock_.SetMs(kJan31_2024 + 86'400'000 - 1000);  // a second before Feb 1
  const Reservation r = Begin(10);
  clock_.Advance(2000);  // Feb 1: a new day, the same billing period
  REQUIRE(More(r, 50).admitted());
  CHECK(Used("daily_tokens") == 50);
  CHECK(Used("tokens") == 60);
  CHECK(enforcer_->Commit({.reservation = r, .success = false}) ==
        CommitResult::kRefunded);
  // The month gives back all 60 (one window); the new day keeps its 50.
  CHECK(Used("tokens") == 0);
  CHECK(Used("daily_tokens") == 50);
}

TEST_CASE_METHOD(ExtendFixture, "extending what is not pending is refused",
                 "[extend]") {
  Start(kCatalog, "p");
  CHECK(More(Reservation{}, 1).status == 400);
  CHECK(More(Reservation{12345, 7}, 1).status == 400);
  const MeterAmount negative{tokens(), -5};
  const Decision d =
      enforcer_->Extend({.reservation = Begin(0), .amounts = {&negative, 1}});
  CHECK(d.status == 400);
  CHECK(Used("tokens") == 0);
}

TEST_CASE_METHOD(ExtendFixture,
                 "N concurrent streams without max_tokens never pass the "
                 "hard cap",
                 "[extend][concurrency]") {
  Start(kCatalog, "p");
  constexpr int kStreams = 8;
  constexpr int64_t kChunk = 7;
  std::atomic<int64_t> streamed{0};
  std::atomic<int> not_begun{0}, not_applied{0};
  const MeterAmount none{tokens(), 0};
  std::vector<std::thread> streams;
  for (int t = 0; t < kStreams; ++t) {
    // No Catch assertions in the threads (they are not thread-safe).
    streams.emplace_back([&] {
      const Decision d =
          enforcer_->Check({.account_id = "acme", .amounts = {&none, 1}});
      if (!d.admitted()) {
        not_begun.fetch_add(1);
        return;
      }
      // Stream until an extension is denied, then end and commit.
      while (More(d.reservation, kChunk).admitted()) {
        streamed.fetch_add(kChunk, std::memory_order_relaxed);
      }
      if (enforcer_->Commit({.reservation = d.reservation}) !=
          CommitResult::kApplied) {
        not_applied.fetch_add(1);
      }
    });
  }
  for (std::thread& t : streams) t.join();
  CHECK(not_begun.load() == 0);
  CHECK(not_applied.load() == 0);
  const int64_t used = Used("tokens");
  CHECK(used == streamed.load());
  CHECK(used <= 11'000);          // 0 past the grace
  CHECK(used > 11'000 - kChunk);  // and every stream went to the end
}

}  // namespace
}  // namespace plangate::testing
