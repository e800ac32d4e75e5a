// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// Check and Commit on warm subjects allocate nothing: this binary replaces
// the global operator new and counts calls while a flag is up.

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <new>
#include <string>

#include "core/check_path_access.h"
#include "core/enforcer_test_util.h"
#include "support/counting_new.h"

namespace plangate::testing {
namespace {

TEST_CASE_METHOD(EnforcerFixture, "check and commit allocate nothing",
                 "[allocation]") {
  Start(R"({"version": 1, "plans": [{"id": "p", "limits": [
      {"id": "monthly", "limit": 100000000, "grace": 0.1},
      {"id": "daily", "window": "day", "limit": 100000000},
      {"id": "rpm", "window": "minute", "mode": "sliding", "limit": 100000000},
      {"id": "per_key", "scope": "key", "window": "minute", "limit": 100000000},
      {"id": "tokens", "meter": "tokens", "limit": 100000000}]}]})",
        "p");
  const int tokens = enforcer_->MeterId("tokens");
  const std::string key =
      "key-with-a-name-long-enough-to-live-out-of-line-"
      "in-the-record-because-it-is-long";
  MeterAmount estimate{tokens, 300};
  MeterAmount actual{tokens, 120};
  CheckRequest request{
      .account_id = "acme", .key_id = key, .amounts = {&estimate, 1}};
  // Warm: first sightings may allocate (long keys, period caches).
  REQUIRE(enforcer_->Check(request).admitted());

  g_allocations.store(0);
  g_counting.store(true);
  int admitted = 0;
  for (int i = 0; i < 10000; ++i) {
    clock_.Advance(7);  // crosses minute windows along the way
    enforcer_->Prefetch(request.account_id);
    const Decision d = enforcer_->Check(request);
    admitted += d.admitted() ? 1 : 0;
    enforcer_->Commit({.reservation = d.reservation, .actual = {&actual, 1}});
    (void)enforcer_->Peek(request);
  }
  g_counting.store(false);
  CHECK(admitted == 10000);
  CHECK(g_allocations.load() == 0);
  // The counter works: an allocation in the counted region is seen.
  g_counting.store(true);
  auto* probe = new int(7);
  g_counting.store(false);
  delete probe;
  CHECK(g_allocations.load() == 1);
}

TEST_CASE_METHOD(EnforcerFixture, "the fast check allocates nothing",
                 "[allocation]") {
  Start(R"({"version": 1, "plans": [{"id": "p", "limits": [
      {"id": "monthly", "limit": 100000000, "grace": 0.1},
      {"id": "daily", "window": "day", "limit": 100000000},
      {"id": "rpm", "window": "minute", "mode": "sliding", "limit": 100000000},
      {"id": "tokens", "meter": "tokens", "limit": 100000000}]}]})",
        "p");
  REQUIRE(internal::CheckPathAccess::HasFastPlan(*enforcer_, "p"));
  const int tokens = enforcer_->MeterId("tokens");
  MeterAmount estimate{tokens, 300};
  MeterAmount actual{tokens, 120};
  const CheckRequest request{.account_id = "acme", .amounts = {&estimate, 1}};
  REQUIRE(enforcer_->Check(request).admitted());

  g_allocations.store(0);
  g_counting.store(true);
  int admitted = 0;
  for (int i = 0; i < 10000; ++i) {
    clock_.Advance(7);  // crosses minute windows along the way
    const Decision d = enforcer_->Check(request);
    admitted += d.admitted() ? 1 : 0;
    enforcer_->Commit({.reservation = d.reservation, .actual = {&actual, 1}});
  }
  g_counting.store(false);
  CHECK(admitted == 10000);
  CHECK(g_allocations.load() == 0);
}

TEST_CASE_METHOD(EnforcerFixture,
                 "counting by model allocates nothing once a model is seen",
                 "[allocation]") {
  Start(R"({"version": 1, "usage_by_model": 2, "plans": [{"id": "p",
      "limits": [{"id": "monthly", "limit": 100000000},
                 {"id": "tokens", "meter": "tokens", "limit": 100000000}]}]})",
        "p");
  const int tokens = enforcer_->MeterId("tokens");
  MeterAmount estimate{tokens, 300};
  MeterAmount actual{tokens, 120};
  // Two models counted apart, a third past the count (the other bucket).
  const char* models[] = {"gpt-4o", "gpt-4o-mini", "o3"};
  for (const char* model : models) {
    REQUIRE(enforcer_
                ->Check({.account_id = "acme",
                         .model = model,
                         .amounts = {&estimate, 1}})
                .admitted());
  }
  g_allocations.store(0);
  g_counting.store(true);
  int admitted = 0;
  for (int i = 0; i < 3000; ++i) {
    const Decision d = enforcer_->Check({.account_id = "acme",
                                         .model = models[i % 3],
                                         .amounts = {&estimate, 1}});
    admitted += d.admitted() ? 1 : 0;
    enforcer_->Commit({.reservation = d.reservation, .actual = {&actual, 1}});
  }
  g_counting.store(false);
  CHECK(admitted == 3000);
  CHECK(g_allocations.load() == 0);
  // It did count: 1000 of each model's requests, plus the warm-up one.
  auto usage = enforcer_->Usage("acme");
  REQUIRE_OK(usage.status());
  REQUIRE(usage->models.size() == 3);
  CHECK(usage->models[0].model == "gpt-4o");
  CHECK(usage->models[0].meters[0].used == 1001);
  CHECK(usage->models[2].model.empty());  // o3, in the other bucket
  CHECK(usage->models[2].meters[1].used == 1000 * 120 + 300);
}

}  // namespace
}  // namespace plangate::testing
