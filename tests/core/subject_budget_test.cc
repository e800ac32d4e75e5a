// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// No tenant can starve another: each account may have at most its plan's
// max_subjects projects, keys and users resident, and past it only that
// account's requests are denied (429 subject_limit).

#include <atomic>
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/enforcer_test_util.h"
#include "plangate/http.h"

namespace plangate::testing {
namespace {

constexpr char kCatalog[] = R"({"version": 1, "default_plan": "free",
  "plans": [
    {"id": "small", "max_subjects": 3, "limits": [
      {"id": "per_user", "scope": "user", "window": "minute", "limit": 1000},
      {"id": "monthly", "limit": 1000000}]},
    {"id": "free", "limits": [
      {"id": "per_user", "scope": "user", "window": "minute", "limit": 1000},
      {"id": "per_key", "scope": "key", "window": "minute", "limit": 1000},
      {"id": "monthly", "limit": 100000000}]}]})";

Decision CheckUser(Enforcer& e, std::string_view account, std::string_view user,
                   std::string_view key = {}) {
  return e.Check({.account_id = account, .key_id = key, .user_id = user});
}

TEST_CASE_METHOD(EnforcerFixture,
                 "past its plan's max_subjects only the account itself is "
                 "denied, and idle subjects free its budget",
                 "[budget]") {
  EnforcerOptions options;
  options.idle_subject_ttl_ms = 60'000;
  Start(kCatalog, "small", options);
  REQUIRE_OK(enforcer_->UpsertAccount(
      {.account_id = "other", .plan_id = "small", .anchor_ms = kJan31_2024}));
  for (int i = 0; i < 3; ++i) {
    CHECK(CheckUser(*enforcer_, "acme", "u" + std::to_string(i)).admitted());
  }
  const Decision d = CheckUser(*enforcer_, "acme", "u3");
  CHECK(d.status == 429);
  CHECK(d.deny == DenyKind::kSubjectLimit);
  CHECK(d.reason == "subject_limit");
  CHECK(d.limit_value == 3);
  CHECK(d.used == 3);
  CHECK(d.retry_after_ms == 60'000);
  CHECK(enforcer_->Stats().subject_denials == 1);
  // The denial counted nothing, resident users go on, other accounts too.
  CHECK(Used("monthly") == 3);
  CHECK(CheckUser(*enforcer_, "acme", "u0").admitted());
  for (int i = 0; i < 3; ++i) {
    CHECK(CheckUser(*enforcer_, "other", "u" + std::to_string(i)).admitted());
  }
  // A request without a user needs no new subject.
  CHECK(Check().admitted());

  // The HTTP rendering names the cap.
  const HttpRendering http(d, clock_.NowMs());
  CHECK(http.status() == 429);
  const std::string body(http.body());
  INFO(body);
  CHECK(body.find("subject_limit") != std::string::npos);
  CHECK(body.find("has 3 projects, keys and users") != std::string::npos);
  CHECK(http.header("Retry-After") == "60");

  // Idle long enough: reclaimed, and the budget is free again.
  clock_.Advance(61'000);
  enforcer_->Maintain();
  CHECK(enforcer_->Stats().subjects_reclaimed == 6);
  CHECK(CheckUser(*enforcer_, "acme", "u3").admitted());
  CHECK(CheckUser(*enforcer_, "acme", "u4").admitted());
  CHECK(CheckUser(*enforcer_, "acme", "u5").admitted());
  CHECK(CheckUser(*enforcer_, "acme", "u6").status == 429);
}

TEST_CASE_METHOD(EnforcerFixture,
                 "an unregistered account keeps its record while it owns "
                 "subjects, then both go",
                 "[budget][reclaim]") {
  EnforcerOptions options;
  options.idle_subject_ttl_ms = 1'000;
  options.subjects_per_account = 2;
  // Only user limits: the account record itself counts nothing, so idle
  // reclamation would take it at once were it not for its users.
  Start(R"({"version": 1, "default_plan": "users", "plans": [
      {"id": "users", "limits": [
        {"id": "per_user", "scope": "user", "window": "minute",
         "limit": 1000}]}]})",
        "users", options);
  CHECK(CheckUser(*enforcer_, "walk-in", "a").admitted());
  CHECK(CheckUser(*enforcer_, "walk-in", "b").admitted());
  CHECK(CheckUser(*enforcer_, "walk-in", "c").status == 429);
  // Idle, but the users' minute still counts: they stay, and so does the
  // account that owns them.
  clock_.Advance(2'000);
  enforcer_->Maintain();
  CHECK(enforcer_->Stats().subjects_reclaimed == 0);
  CHECK(CheckUser(*enforcer_, "walk-in", "c").status == 429);
  // Past the minute: the users go, then the account.
  clock_.Advance(60'000);
  enforcer_->Maintain();
  enforcer_->Maintain();
  CHECK(enforcer_->Stats().subjects_reclaimed == 3);
  // It comes back with a fresh budget.
  CHECK(CheckUser(*enforcer_, "walk-in", "c").admitted());
  CHECK(CheckUser(*enforcer_, "walk-in", "d").admitted());
  CHECK(CheckUser(*enforcer_, "walk-in", "e").status == 429);
}

TEST_CASE("max_subjects is validated where it is written", "[budget]") {
  auto bad = Catalog::Parse(R"({"version": 1, "plans": [
      {"id": "p", "max_subjects": 0, "limits": []}]})");
  REQUIRE_FALSE(bad.ok());
  CHECK(std::string(bad.status().message()).find("plans[0].max_subjects") !=
        std::string::npos);
  auto wrong = Catalog::Parse(R"({"version": 1, "plans": [
      {"id": "p", "max_subjects": "many", "limits": []}]})");
  REQUIRE_FALSE(wrong.ok());
  CHECK(std::string(wrong.status().message()).find("plans[0].max_subjects") !=
        std::string::npos);
  auto good = Catalog::Parse(R"({"version": 1, "plans": [
      {"id": "p", "max_subjects": 5000, "limits": []}]})");
  REQUIRE(good.ok());
  CHECK((*good)->plans()[0].max_subjects == 5000);
}

TEST_CASE(
    "one account flooding ten times the table with user ids and keys "
    "never turns another account away",
    "[budget][concurrency]") {
  SimulatedClock clock(kJan31_2024);
  EnforcerOptions options;
  options.clock = &clock;
  options.max_subjects = 1024;  // default budget: a quarter, 256
  auto created = Enforcer::Create(ParseOrDie(kCatalog), options);
  REQUIRE_OK(created.status());
  Enforcer& e = **created;

  std::atomic<bool> done{false};
  std::atomic<int> flood_admitted{0}, flood_budget{0}, flood_other{0};
  std::thread flood([&] {
    for (int i = 0; i < 10 * 1024; ++i) {
      const std::string id = "f" + std::to_string(i);
      const Decision d = CheckUser(e, "flood", id, id);
      if (d.admitted()) {
        flood_admitted.fetch_add(1, std::memory_order_relaxed);
      } else if (d.deny == DenyKind::kSubjectLimit) {
        flood_budget.fetch_add(1, std::memory_order_relaxed);
      } else {
        flood_other.fetch_add(1, std::memory_order_relaxed);
      }
    }
    done.store(true, std::memory_order_release);
  });
  // Once the flood has taken all it may (or, without budgets, the whole
  // table), and while it goes on, 30 well-behaved accounts each bring 5
  // users and 3 keys (the flood's 256 plus their 30 * 9 fit the 1024).
  while (flood_budget.load(std::memory_order_relaxed) == 0 &&
         flood_other.load(std::memory_order_relaxed) == 0 &&
         !done.load(std::memory_order_acquire)) {
    std::this_thread::yield();
  }
  std::atomic<int> good_denied{0}, good_admitted{0};
  std::vector<std::thread> good;
  for (int t = 0; t < 2; ++t) {
    good.emplace_back([&, t] {
      for (int a = t; a < 30; a += 2) {
        const std::string account = "good-" + std::to_string(a);
        for (int u = 0; u < 5; ++u) {
          const Decision d = CheckUser(e, account, "user-" + std::to_string(u),
                                       "key-" + std::to_string(u % 3));
          (d.admitted() ? good_admitted : good_denied)
              .fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  for (std::thread& t : good) t.join();
  flood.join();
  CHECK(done.load());
  CHECK(good_denied.load() == 0);
  CHECK(good_admitted.load() == 150);
  CHECK(flood_other.load() == 0);  // never capacity_exhausted
  // Each admitted flood request brought a user and a key: 128 of each.
  CHECK(flood_admitted.load() == 128);
  CHECK(flood_budget.load() == 10 * 1024 - 128);
  CHECK(e.Stats().capacity_denials == 0);
  // And after the flood, new accounts still get in.
  CHECK(CheckUser(e, "late", "someone", "k").admitted());
}

}  // namespace
}  // namespace plangate::testing
