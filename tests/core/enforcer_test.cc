// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "plangate/enforcer.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "core/enforcer_test_util.h"

namespace plangate::testing {
namespace {

constexpr char kTenRequests[] = R"({
  "version": 1,
  "plans": [
    {"id": "free", "limits": [
      {"id": "monthly", "meter": "requests", "window": "billing_period",
       "limit": 10, "grace": 0.2, "soft_nudge": 0.8}]},
    {"id": "pro", "limits": [
      {"id": "monthly", "meter": "requests", "window": "billing_period",
       "limit": 100}]}
  ]
})";

TEST_CASE_METHOD(EnforcerFixture, "decision table: every row of DESIGN §2",
                 "[decision]") {
  // limit 10, grace 0.2 -> hard 12, soft nudge at 8.
  Start(kTenRequests, "free");
  struct Row {
    int64_t used_after;
    int status;
    uint32_t warnings;
  };
  const std::vector<Row> rows = {
      {1, 200, kWarnNone},      {2, 200, kWarnNone},
      {3, 200, kWarnNone},      {4, 200, kWarnNone},
      {5, 200, kWarnNone},      {6, 200, kWarnNone},
      {7, 200, kWarnNone},      {8, 200, kWarnSoftNudge},
      {9, 200, kWarnSoftNudge}, {10, 200, kWarnSoftNudge},
      {11, 200, kWarnGrace},    {12, 200, kWarnGrace},
  };
  for (const Row& row : rows) {
    INFO("request " << row.used_after);
    const Decision d = Check();
    CHECK(d.status == row.status);
    CHECK(d.warnings == row.warnings);
    CHECK(d.used == row.used_after - 1);
    CHECK(d.remaining == 12 - row.used_after);
    CHECK(d.limit_value == 10);
    CHECK(d.hard_limit == 12);
  }
  const Decision denied = Check();
  CHECK(denied.status == 402);
  CHECK(denied.reason == "billing_limit_reached");
  CHECK(denied.deny == DenyKind::kLimit);
  CHECK(denied.limit.limit_id == "monthly");
  CHECK(denied.used == 12);
  CHECK(denied.remaining == 0);
  CHECK(denied.reservation.empty());
  // The period of anchor Jan 31 ends on Feb 29 2024 (leap year).
  CHECK(denied.reset_ms == 1709164800000);
  CHECK(denied.retry_after_ms == 1709164800000 - kJan31_2024);
  CHECK(Used("monthly") == 12);
}

TEST_CASE_METHOD(EnforcerFixture,
                 "Aerostack Free: 50,001-55,000 warn, 55,001 gets 403",
                 "[decision][grace]") {
  Start(R"({"version": 1, "plans": [{"id": "free", "limits": [
      {"id": "api_requests", "meter": "requests", "limit": 50000,
       "grace": 0.1, "status": 403, "reason": "plan_limit_exceeded"}]}]})",
        "free");
  int plain = 0, nudged = 0, grace = 0;
  for (int i = 1; i <= 55000; ++i) {
    const Decision d = Check();
    REQUIRE(d.admitted());
    if (d.warnings == kWarnNone) {
      ++plain;
      REQUIRE(i < 40000);
    } else if (d.warnings == kWarnSoftNudge) {
      ++nudged;
      REQUIRE(i >= 40000);
      REQUIRE(i <= 50000);
    } else {
      REQUIRE(d.warnings == kWarnGrace);
      REQUIRE(i > 50000);
      ++grace;
    }
    enforcer_->Commit({.reservation = d.reservation});
  }
  CHECK(plain == 39999);
  CHECK(nudged == 10001);
  CHECK(grace == 5000);
  const Decision d = Check();
  CHECK(d.status == 403);
  CHECK(d.reason == "plan_limit_exceeded");
  CHECK(Used("api_requests") == 55000);
}

TEST_CASE_METHOD(EnforcerFixture,
                 "anchor 31: periods across a year roll over on clamped days",
                 "[period]") {
  Start(R"({"version": 1, "plans": [{"id": "one", "limits": [
      {"id": "monthly", "limit": 1}]}]})",
        "one");
  // Period starts for an anchor of 2024-01-31T00:00Z (computed by hand).
  const std::vector<int64_t> starts = {
      1709164800000,  // 2024-02-29 (leap)
      1711843200000,  // 2024-03-31
      1714435200000,  // 2024-04-30
      1717113600000,  // 2024-05-31
      1719705600000,  // 2024-06-30
      1722384000000,  // 2024-07-31
      1725062400000,  // 2024-08-31
      1727654400000,  // 2024-09-30
      1730332800000,  // 2024-10-31
      1732924800000,  // 2024-11-30
      1735603200000,  // 2024-12-31
      1738281600000,  // 2025-01-31
      1740700800000,  // 2025-02-28
  };
  REQUIRE(Check().admitted());
  for (const int64_t start : starts) {
    INFO("period starting " << start);
    clock_.SetMs(start - 1);
    const Decision last_ms = Check();
    CHECK(last_ms.status == 402);
    CHECK(last_ms.reset_ms == start);
    CHECK(last_ms.retry_after_ms == 1);
    clock_.SetMs(start);
    const Decision first_ms = Check();
    CHECK(first_ms.admitted());
  }
}

TEST_CASE_METHOD(EnforcerFixture, "minute window rolls over at the exact ms",
                 "[window]") {
  Start(R"({"version": 1, "plans": [{"id": "burst", "limits": [
      {"id": "rpm", "window": "minute", "limit": 2}]}]})",
        "burst");
  // kJan31_2024 is a whole minute.
  clock_.SetMs(kJan31_2024 + 59'000);
  REQUIRE(Check().admitted());
  REQUIRE(Check().admitted());
  clock_.SetMs(kJan31_2024 + 59'999);
  const Decision denied = Check();
  CHECK(denied.status == 429);
  CHECK(denied.reason == "rate_limited");
  CHECK(denied.retry_after_ms == 1);
  CHECK(denied.reset_ms == kJan31_2024 + 60'000);
  clock_.SetMs(kJan31_2024 + 60'000);
  CHECK(Check().admitted());
  CHECK(Check().admitted());
  CHECK(Check().status == 429);
}

TEST_CASE_METHOD(EnforcerFixture, "sliding minute weighs the previous minute",
                 "[window][sliding]") {
  Start(R"({"version": 1, "plans": [{"id": "burst", "limits": [
      {"id": "rpm", "window": "minute", "mode": "sliding", "limit": 10}]}]})",
        "burst");
  // Ten requests in the last second of minute 0.
  clock_.SetMs(kJan31_2024 + 59'000);
  for (int i = 0; i < 10; ++i) REQUIRE(Check().admitted());
  REQUIRE(Check().status == 429);
  // A quarter into minute 1, the estimate is 10 * 0.75 = 7.5 -> 7: three fit.
  clock_.SetMs(kJan31_2024 + 60'000 + 15'000);
  CHECK(Used("rpm") == 7);
  CHECK(Check().admitted());
  CHECK(Check().admitted());
  CHECK(Check().admitted());
  const Decision denied = Check();
  CHECK(denied.status == 429);
  CHECK(denied.retry_after_ms > 0);
  CHECK(denied.retry_after_ms <= 45'000);
  // Retry at the advertised instant: it fits.
  clock_.Advance(denied.retry_after_ms);
  CHECK(Check().admitted());
  // A fixed window would have reset; sliding still counts minute 1 fully
  // in minute 2's first instant.
  clock_.SetMs(kJan31_2024 + 120'000);
  CHECK(Used("rpm") == 4);
}

TEST_CASE_METHOD(EnforcerFixture,
                 "all-or-nothing: a denial by one limit counts against none",
                 "[atomicity]") {
  Start(R"({"version": 1, "plans": [{"id": "p", "limits": [
      {"id": "monthly", "limit": 100},
      {"id": "daily", "window": "day", "limit": 50},
      {"id": "rpm", "window": "minute", "limit": 3}]}]})",
        "p");
  for (int i = 0; i < 3; ++i) REQUIRE(Check().admitted());
  for (int i = 0; i < 5; ++i) {
    const Decision d = Check();
    REQUIRE(d.status == 429);
    REQUIRE(d.limit.limit_id == "rpm");
  }
  CHECK(Used("monthly") == 3);
  CHECK(Used("daily") == 3);
  CHECK(Used("rpm") == 3);
}

TEST_CASE_METHOD(EnforcerFixture,
                 "a denial carries no warnings of the limits that admitted",
                 "[decision]") {
  Start(R"({"version": 1, "plans": [{"id": "p", "limits": [
      {"id": "monthly", "limit": 10},
      {"id": "rpm", "window": "minute", "limit": 9}]}]})",
        "p");
  for (int i = 0; i < 9; ++i) REQUIRE(Check().admitted());
  const Decision d = Check();  // monthly would nudge (10 of 10); rpm denies
  CHECK(d.status == 429);
  CHECK(d.limit.limit_id == "rpm");
  CHECK(d.warnings == kWarnNone);
}

TEST_CASE_METHOD(EnforcerFixture,
                 "a request larger than what remains is denied up front",
                 "[atomicity]") {
  Start(R"({"version": 1, "plans": [{"id": "p", "limits": [
      {"id": "tokens", "meter": "tokens", "limit": 1000},
      {"id": "monthly", "limit": 100}]}]})",
        "p");
  const int tokens = enforcer_->MeterId("tokens");
  REQUIRE(tokens > 0);
  MeterAmount big{tokens, 1001};
  const Decision d =
      enforcer_->Check({.account_id = "acme", .amounts = {&big, 1}});
  CHECK(d.status == 402);
  CHECK(d.limit.limit_id == "tokens");
  CHECK(d.retry_after_ms == 0);  // it can never fit
  CHECK(Used("tokens") == 0);
  CHECK(Used("monthly") == 0);
  MeterAmount fits{tokens, 1000};
  CHECK(enforcer_->Check({.account_id = "acme", .amounts = {&fits, 1}})
            .admitted());
  CHECK(Used("tokens") == 1000);
}

TEST_CASE_METHOD(EnforcerFixture,
                 "commit settles estimates, refunds failures, counts once",
                 "[reservation]") {
  Start(R"({"version": 1, "plans": [{"id": "p", "limits": [
      {"id": "tokens", "meter": "tokens", "limit": 1000},
      {"id": "monthly", "limit": 100}]}]})",
        "p");
  const int tokens = enforcer_->MeterId("tokens");
  MeterAmount estimate{tokens, 500};
  const Decision d = enforcer_->Check(
      {.account_id = "acme", .amounts = {&estimate, 1}, .request_id = 42});
  REQUIRE(d.admitted());
  REQUIRE(!d.reservation.empty());
  CHECK(Used("tokens") == 500);

  MeterAmount actual{tokens, 200};
  CHECK(enforcer_->Commit({.reservation = d.reservation,
                           .actual = {&actual, 1},
                           .request_id = 42}) == CommitResult::kApplied);
  CHECK(Used("tokens") == 200);
  CHECK(Used("monthly") == 1);
  // A retried commit of the same request changes nothing.
  CHECK(enforcer_->Commit({.reservation = d.reservation,
                           .actual = {&actual, 1},
                           .request_id = 42}) == CommitResult::kDuplicate);
  CHECK(Used("tokens") == 200);

  SECTION("a retried commit after its slot was reused is a duplicate") {
    const Decision next =
        enforcer_->Check({.account_id = "acme", .amounts = {&estimate, 1}});
    REQUIRE(next.admitted());
    // A committed slot is free again: this thread's next check takes it (its
    // cache lines are still hot), under a newer generation.
    CHECK(next.reservation.slot == d.reservation.slot);
    CHECK(next.reservation.generation != d.reservation.generation);
    CHECK(enforcer_->Commit({.reservation = d.reservation,
                             .actual = {&actual, 1},
                             .request_id = 42}) == CommitResult::kDuplicate);
    CHECK(Used("tokens") == 700);  // next's estimate, untouched
    CHECK(enforcer_->Commit(
              {.reservation = next.reservation, .actual = {&actual, 1}}) ==
          CommitResult::kApplied);
    CHECK(Used("tokens") == 400);
  }
  SECTION("a failed upstream call refunds everything") {
    const Decision f =
        enforcer_->Check({.account_id = "acme", .amounts = {&estimate, 1}});
    REQUIRE(Used("tokens") == 700);
    CHECK(enforcer_->Commit({.reservation = f.reservation, .success = false}) ==
          CommitResult::kRefunded);
    CHECK(Used("tokens") == 200);
    CHECK(Used("monthly") == 1);
    CHECK(enforcer_->Commit({.reservation = f.reservation, .success = false}) ==
          CommitResult::kDuplicate);
    CHECK(Used("monthly") == 1);
  }
  SECTION("a commit naming another request id is refused") {
    const Decision f = enforcer_->Check(
        {.account_id = "acme", .amounts = {&estimate, 1}, .request_id = 7});
    CHECK(enforcer_->Commit({.reservation = f.reservation, .request_id = 8}) ==
          CommitResult::kInvalid);
    CHECK(enforcer_->Commit({.reservation = f.reservation, .request_id = 7}) ==
          CommitResult::kApplied);
  }
  SECTION("actual usage above the estimate is counted in full") {
    const Decision f =
        enforcer_->Check({.account_id = "acme", .amounts = {&estimate, 1}});
    MeterAmount more{tokens, 750};
    CHECK(enforcer_->Commit({.reservation = f.reservation,
                             .actual = {&more, 1}}) == CommitResult::kApplied);
    CHECK(Used("tokens") == 950);
  }
  SECTION("an empty or forged reservation is harmless") {
    CHECK(enforcer_->Commit({}) == CommitResult::kEmpty);
    CHECK(enforcer_->Commit({.reservation = {123456789, 5}}) ==
          CommitResult::kInvalid);
    CHECK(Used("tokens") == 200);
  }
}

TEST_CASE_METHOD(EnforcerFixture, "an abandoned reservation expires",
                 "[reservation]") {
  EnforcerOptions options;
  options.reservation_ttl_ms = 30'000;
  Start(R"({"version": 1, "plans": [{"id": "p", "limits": [
      {"id": "monthly", "limit": 2}]}]})",
        "p", options);
  const Decision a = Check();
  const Decision b = Check();
  REQUIRE(a.admitted());
  REQUIRE(b.admitted());
  REQUIRE(Check().status == 402);
  REQUIRE(enforcer_->Commit({.reservation = b.reservation}) ==
          CommitResult::kApplied);

  clock_.Advance(29'999);
  enforcer_->Maintain();
  CHECK(Used("monthly") == 2);
  clock_.Advance(1);
  enforcer_->Maintain();
  CHECK(Used("monthly") == 1);  // a's hold is gone, b's commit stays
  CHECK(enforcer_->Stats().reservations_expired == 1);
  CHECK(enforcer_->Commit({.reservation = a.reservation}) ==
        CommitResult::kExpired);
  CHECK(Used("monthly") == 1);
  CHECK(Check().admitted());
}

TEST_CASE_METHOD(EnforcerFixture,
                 "a full reservation table admits, counts as final, says so",
                 "[reservation]") {
  EnforcerOptions options;
  options.max_reservations = 1;
  Start(kTenRequests, "free", options);
  const Decision first = Check();
  REQUIRE(!first.reservation.empty());
  const Decision second = Check();  // the only slot is still pending
  CHECK(second.admitted());
  CHECK(second.reservation.empty());
  CHECK(enforcer_->Stats().unreserved_admits == 1);
  CHECK(Used("monthly") == 2);
}

TEST_CASE_METHOD(EnforcerFixture, "upgrade lifts the quota at once, usage kept",
                 "[account]") {
  Start(kTenRequests, "free");
  for (int i = 0; i < 12; ++i) REQUIRE(Check().admitted());
  REQUIRE(Check().status == 402);
  REQUIRE_OK(enforcer_->UpsertAccount(
      {.account_id = "acme", .plan_id = "pro", .anchor_ms = kJan31_2024}));
  const Decision d = Check();
  CHECK(d.admitted());
  CHECK(d.used == 12);
  CHECK(d.limit_value == 100);
  CHECK(Used("monthly") == 13);
}

TEST_CASE_METHOD(EnforcerFixture, "past due: warn until the deadline, then 402",
                 "[account]") {
  Start(kTenRequests, "pro");
  REQUIRE_OK(
      enforcer_->UpsertAccount({.account_id = "acme",
                                .plan_id = "pro",
                                .anchor_ms = kJan31_2024,
                                .state = SubscriptionState::kPastDue,
                                .past_due_deadline_ms = kJan31_2024 + 1000}));
  const Decision warned = Check();
  CHECK(warned.admitted());
  CHECK((warned.warnings & kWarnPastDue) != 0);
  clock_.Advance(1000);
  const Decision blocked = Check();
  CHECK(blocked.status == 402);
  CHECK(blocked.reason == "payment_required");
  CHECK(Used("monthly") == 1);
  // Sandbox traffic stays admitted (warned) and free past the deadline,
  // and when the subscription is blocked; internal keys are never limited.
  const Decision sandbox =
      enforcer_->Check({.account_id = "acme", .key_kind = KeyKind::kTest});
  CHECK(sandbox.admitted());
  CHECK((sandbox.warnings & kWarnPastDue) != 0);
  REQUIRE_OK(enforcer_->UpsertAccount({.account_id = "acme",
                                       .plan_id = "pro",
                                       .anchor_ms = kJan31_2024,
                                       .state = SubscriptionState::kBlocked}));
  CHECK(Check().status == 402);
  CHECK(enforcer_->Check({.account_id = "acme", .key_kind = KeyKind::kTest})
            .admitted());
  CHECK(enforcer_->Check({.account_id = "acme", .key_kind = KeyKind::kInternal})
            .admitted());
  CHECK(Used("monthly") == 1);
}

TEST_CASE_METHOD(EnforcerFixture, "past_due_blocks: the plan says which keys",
                 "[account]") {
  Start(R"({"version": 1, "plans": [
      {"id": "strict", "past_due_blocks": ["live", "sandbox"],
       "limits": [{"id": "monthly", "limit": 10}]},
      {"id": "lenient", "past_due_blocks": [],
       "limits": [{"id": "monthly", "limit": 10}]}]})",
        "strict");
  REQUIRE_OK(enforcer_->UpsertAccount({.account_id = "acme",
                                       .plan_id = "strict",
                                       .anchor_ms = kJan31_2024,
                                       .state = SubscriptionState::kBlocked}));
  CHECK(Check().status == 402);
  CHECK(enforcer_->Check({.account_id = "acme", .key_kind = KeyKind::kTest})
            .status == 402);
  REQUIRE_OK(enforcer_->UpsertAccount({.account_id = "acme",
                                       .plan_id = "lenient",
                                       .anchor_ms = kJan31_2024,
                                       .state = SubscriptionState::kBlocked}));
  const Decision live = Check();
  CHECK(live.admitted());
  CHECK((live.warnings & kWarnPastDue) != 0);
  CHECK(Used("monthly") == 1);  // live traffic still counts
}

TEST_CASE_METHOD(EnforcerFixture, "unknown accounts, default plans, bad input",
                 "[account]") {
  Start(kTenRequests, "free");
  const Decision unknown = enforcer_->Check({.account_id = "nobody"});
  CHECK(unknown.status == 403);
  CHECK(unknown.reason == "unknown_account");
  CHECK(enforcer_->UpsertAccount({.account_id = "x", .plan_id = "gold"})
            .message() == "account \"x\": unknown plan \"gold\"");

  MeterAmount negative{0, -1};
  const Decision bad =
      enforcer_->Check({.account_id = "acme", .amounts = {&negative, 1}});
  CHECK(bad.status == 400);
  CHECK(bad.reason == "invalid_request");
  CHECK(Used("monthly") == 0);

  // Internal traffic is never counted or limited.
  for (int i = 0; i < 20; ++i) {
    CHECK(
        enforcer_->Check({.account_id = "acme", .key_kind = KeyKind::kInternal})
            .admitted());
  }
  CHECK(Used("monthly") == 0);
}

TEST_CASE_METHOD(EnforcerFixture, "a default plan admits unregistered accounts",
                 "[account]") {
  Start(R"({"version": 1, "default_plan": "free", "plans": [
      {"id": "free", "limits": [{"id": "monthly", "limit": 2}]}]})",
        "free");
  CHECK(enforcer_->Check({.account_id = "walk-in"}).admitted());
  CHECK(enforcer_->Check({.account_id = "walk-in"}).admitted());
  CHECK(enforcer_->Check({.account_id = "walk-in"}).status == 402);
  auto usage = enforcer_->Usage("walk-in");
  REQUIRE_OK(usage.status());
  CHECK(usage->plan_id == "free");
  CHECK(usage->limits.at(0).used == 2);
}

TEST_CASE_METHOD(EnforcerFixture,
                 "narrow scopes count per key, and keys never share a slot",
                 "[scope]") {
  Start(R"({"version": 1, "plans": [{"id": "p", "limits": [
      {"id": "per_key", "scope": "key", "window": "minute", "limit": 2},
      {"id": "monthly", "limit": 1000}]}]})",
        "p");
  // Account "acme" with key "bc" and the (unregistered) pair "acmeb" / "c"
  // share the concatenation "acmebc"; they must not share counters.
  CHECK(enforcer_->Check({.account_id = "acme", .key_id = "bc"}).admitted());
  CHECK(enforcer_->Check({.account_id = "acme", .key_id = "bc"}).admitted());
  CHECK(enforcer_->Check({.account_id = "acme", .key_id = "bc"}).status == 429);
  CHECK(enforcer_->Check({.account_id = "acme", .key_id = "b"}).admitted());
  // No key id: the key-scope limit does not apply.
  CHECK(enforcer_->Check({.account_id = "acme"}).admitted());
  const std::string long_key(300, 'k');
  CHECK(
      enforcer_->Check({.account_id = "acme", .key_id = long_key}).admitted());
  CHECK(
      enforcer_->Check({.account_id = "acme", .key_id = long_key}).admitted());
  CHECK(enforcer_->Check({.account_id = "acme", .key_id = long_key}).status ==
        429);
  const std::string other_long = long_key.substr(0, 299) + "j";
  CHECK(enforcer_->Check({.account_id = "acme", .key_id = other_long})
            .admitted());
  // Admitted: bc x2, b, no key, long x2, other_long; the denials count none.
  CHECK(Used("monthly") == 7);
}

TEST_CASE_METHOD(EnforcerFixture, "traffic classes: managed, byok, all",
                 "[scope]") {
  Start(R"({"version": 1, "plans": [{"id": "p", "limits": [
      {"id": "managed_cost", "meter": "cost_micros", "limit": 100,
       "applies_to": "managed", "status": 429},
      {"id": "monthly", "limit": 1000}]}]})",
        "p");
  const int cost = enforcer_->MeterId("cost_micros");
  MeterAmount amount{cost, 80};
  CHECK(enforcer_->Check({.account_id = "acme", .amounts = {&amount, 1}})
            .admitted());
  CHECK(enforcer_->Check({.account_id = "acme", .amounts = {&amount, 1}})
            .status == 429);
  CHECK(
      enforcer_
          ->Check({.account_id = "acme", .byok = true, .amounts = {&amount, 1}})
          .admitted());
  CHECK(Used("managed_cost") == 80);
  CHECK(Used("monthly") == 2);
}

TEST_CASE_METHOD(EnforcerFixture, "shadow limits decide, count and admit",
                 "[shadow]") {
  Start(R"({"version": 1, "plans": [{"id": "p", "limits": [
      {"id": "monthly", "limit": 2, "shadow": true}]}]})",
        "p");
  CHECK(Check().warnings == kWarnNone);
  CHECK(Check().admitted());
  const Decision d = Check();
  CHECK(d.admitted());
  CHECK(d.shadow);
  CHECK((d.warnings & kWarnShadowDenied) != 0);
  CHECK(Used("monthly") == 3);
}

TEST_CASE_METHOD(EnforcerFixture, "unlimited limits count and never deny",
                 "[decision]") {
  Start(R"({"version": 1, "plans": [{"id": "ent", "limits": [
      {"id": "monthly", "limit": "unlimited"}]}]})",
        "ent");
  for (int i = 0; i < 1000; ++i) REQUIRE(Check().warnings == kWarnNone);
  CHECK(Used("monthly") == 1000);
}

TEST_CASE_METHOD(EnforcerFixture, "peek decides without counting", "[peek]") {
  Start(kTenRequests, "free");
  for (int i = 0; i < 12; ++i) {
    const Decision peek = enforcer_->Peek({.account_id = "acme"});
    REQUIRE(peek.admitted());
    REQUIRE(peek.reservation.empty());
    REQUIRE(Check().admitted());
  }
  CHECK(enforcer_->Peek({.account_id = "acme"}).status == 402);
  CHECK(Used("monthly") == 12);
}

TEST_CASE_METHOD(EnforcerFixture,
                 "reload keeps counts; a failed one changes nothing",
                 "[reload]") {
  Start(kTenRequests, "free");
  for (int i = 0; i < 5; ++i) REQUIRE(Check().admitted());
  const auto bigger = ParseOrDie(R"({"version": 1, "plans": [
      {"id": "free", "limits": [{"id": "monthly", "limit": 6},
                                {"id": "rpm", "window": "minute", "limit": 100}]},
      {"id": "pro", "limits": [{"id": "monthly", "limit": 100}]}]})");
  REQUIRE_OK(enforcer_->ReloadCatalog(bigger));
  CHECK(Check().admitted());
  CHECK(Check().status == 402);  // 6 used of the new limit 6, no grace
  CHECK(Used("rpm") == 1);

  const auto without_free = ParseOrDie(R"({"version": 1, "plans": [
      {"id": "pro", "limits": [{"id": "monthly", "limit": 100}]}]})");
  const absl::Status s = enforcer_->ReloadCatalog(without_free);
  CHECK(absl::IsFailedPrecondition(s));
  CHECK(std::string(s.message()).find("\"free\"") != std::string::npos);
  CHECK(Check().status == 402);
  CHECK(Used("monthly") == 6);
}

TEST_CASE_METHOD(EnforcerFixture, "idle subjects are reclaimed, accounts kept",
                 "[reclaim]") {
  EnforcerOptions options;
  options.max_subjects = 64;
  options.subjects_per_account = 64;  // one account fills the table
  options.idle_subject_ttl_ms = 60'000;
  Start(R"({"version": 1, "plans": [{"id": "p", "limits": [
      {"id": "per_user", "scope": "user", "window": "minute", "limit": 1},
      {"id": "monthly", "limit": 100000}]}]})",
        "p", options);
  // Fill the table with users; the next one does not fit.
  int admitted = 0;
  for (int i = 0; i < 100; ++i) {
    const std::string user = "user-" + std::to_string(i);
    const Decision d =
        enforcer_->Check({.account_id = "acme", .user_id = user});
    if (d.admitted()) {
      ++admitted;
    } else {
      CHECK(d.status == 503);
      CHECK(d.reason == "capacity_exhausted");
    }
  }
  CHECK(admitted == 63);  // 64 subjects: the account and 63 users
  CHECK(enforcer_->Stats().capacity_denials == 37);

  clock_.Advance(59'000);
  enforcer_->Maintain();
  CHECK(enforcer_->Stats().subjects_reclaimed == 0);  // not idle long enough
  clock_.Advance(2'000);
  enforcer_->Maintain();
  CHECK(enforcer_->Stats().subjects_reclaimed == 63);
  CHECK(enforcer_->Stats().subjects == 1);
  // New users take the freed slots; the account's usage survived.
  for (int i = 100; i < 150; ++i) {
    const std::string user = "user-" + std::to_string(i);
    CHECK(enforcer_->Check({.account_id = "acme", .user_id = user}).admitted());
  }
  CHECK(Used("monthly") == 113);
}

TEST_CASE_METHOD(EnforcerFixture,
                 "a subject with usage in its current window is not reclaimed",
                 "[reclaim]") {
  EnforcerOptions options;
  options.idle_subject_ttl_ms = 1'000;
  Start(R"({"version": 1, "plans": [{"id": "p", "limits": [
      {"id": "per_key_daily", "scope": "key", "window": "day", "limit": 2}]}]})",
        "p", options);
  REQUIRE(enforcer_->Check({.account_id = "acme", .key_id = "k1"}).admitted());
  REQUIRE(enforcer_->Check({.account_id = "acme", .key_id = "k1"}).admitted());
  clock_.Advance(60'000);
  enforcer_->Maintain();
  CHECK(enforcer_->Stats().subjects_reclaimed == 0);
  CHECK(enforcer_->Check({.account_id = "acme", .key_id = "k1"}).status == 429);
  clock_.Advance(86'400'000);
  enforcer_->Maintain();
  CHECK(enforcer_->Stats().subjects_reclaimed == 1);
  CHECK(enforcer_->Check({.account_id = "acme", .key_id = "k1"}).admitted());
}

TEST_CASE_METHOD(EnforcerFixture,
                 "a whole-length window is aligned on the epoch", "[window]") {
  Start(R"({"version": 1, "plans": [{"id": "burst", "limits": [
      {"id": "r15m", "window": "15m", "limit": 2}]}]})",
        "burst");
  // kJan31_2024 is a whole 15 minutes: the window is [T, T + 15 min).
  clock_.SetMs(kJan31_2024 + 14 * 60'000);
  REQUIRE(Check().admitted());
  REQUIRE(Check().admitted());
  const Decision denied = Check();
  CHECK(denied.status == 429);
  CHECK(denied.reset_ms == kJan31_2024 + 15 * 60'000);
  CHECK(denied.retry_after_ms == 60'000);
  CHECK(denied.limit.window == WindowUnit::kMinute);
  CHECK(denied.limit.window_count == 15);
  clock_.SetMs(kJan31_2024 + 15 * 60'000);
  CHECK(Check().admitted());
  auto usage = enforcer_->Usage("acme");
  REQUIRE(usage.ok());
  REQUIRE(usage->limits.size() == 1);
  CHECK(usage->limits[0].window_count == 15);
  CHECK(usage->limits[0].window_start_ms == kJan31_2024 + 15 * 60'000);
  CHECK(usage->limits[0].window_end_ms == kJan31_2024 + 30 * 60'000);
}

}  // namespace
}  // namespace plangate::testing
