// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// pg_enforcer_check, pg_enforcer_peek and pg_enforcer_commit on warm
// subjects allocate nothing through the C API either: this binary replaces
// the global operator new (which libplangate_c.so's copy of the core binds
// to at load time) and counts calls while a flag is up.

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "plangate/c.h"
#include "support/counting_new.h"

namespace {

using plangate::testing::g_allocations;
using plangate::testing::g_counting;

constexpr int64_t kAnchor = 1767225600000;  // 2026-01-01T00:00:00Z

TEST_CASE("the C API's check, peek and commit allocate nothing",
          "[capi][allocation]") {
  constexpr char kCatalog[] = R"({"version": 1, "plans": [{"id": "p",
    "features": ["tools"], "limits": [
      {"id": "monthly", "limit": 100000000, "grace": 0.1},
      {"id": "rpm", "window": "minute", "mode": "sliding", "limit": 100000000},
      {"id": "per_key", "scope": "key", "window": "minute", "limit": 100000000},
      {"id": "tokens", "meter": "tokens", "limit": 100000000}]}]})";
  char* err = nullptr;
  pg_catalog_t* catalog =
      pg_catalog_parse(kCatalog, sizeof(kCatalog) - 1, &err);
  REQUIRE(err == nullptr);
  pg_enforcer_t* e = pg_enforcer_create(catalog, nullptr, &err);
  REQUIRE(err == nullptr);
  pg_catalog_destroy(catalog);
  pg_account_t a{};
  a.account_id = "acme";
  a.account_id_len = 4;
  a.plan_id = "p";
  a.plan_id_len = 1;
  a.anchor_ms = kAnchor;
  pg_enforcer_upsert_account(e, &a, &err);
  REQUIRE(err == nullptr);

  const int tokens = pg_enforcer_meter_id(e, "tokens", 6);
  REQUIRE(tokens > 0);
  const std::string key =
      "key-with-a-name-long-enough-to-live-out-of-line-in-the-record";
  const char* features[] = {"tools"};
  const size_t features_lens[] = {5};
  pg_meter_amount_t estimate{tokens, 300};
  pg_meter_amount_t actual{tokens, 120};
  pg_check_request_t r{};
  r.account_id = "acme";
  r.account_id_len = 4;
  r.key_id = key.data();
  r.key_id_len = key.size();
  r.features = features;
  r.features_lens = features_lens;
  r.num_features = 1;
  r.amounts = &estimate;
  r.num_amounts = 1;
  r.now_ms = kAnchor + 1000;
  pg_decision_t d;
  pg_enforcer_check(e, &r, &d);  // warm: first sightings may allocate
  REQUIRE(d.status == 200);

  g_allocations.store(0);
  g_counting.store(true);
  int admitted = 0, applied = 0;
  for (int i = 0; i < 10000; ++i) {
    r.now_ms += 7;  // crosses minute windows along the way
    pg_enforcer_prefetch(e, r.account_id, r.account_id_len);
    pg_enforcer_check(e, &r, &d);
    admitted += d.status == 200 ? 1 : 0;
    pg_commit_request_t c{};
    c.reservation = d.reservation;
    c.actual = &actual;
    c.num_actual = 1;
    applied += pg_enforcer_commit(e, &c) == pg_commit_applied ? 1 : 0;
    pg_enforcer_peek(e, &r, &d);
  }
  g_counting.store(false);
  CHECK(admitted == 10000);
  CHECK(applied == 10000);
  CHECK(g_allocations.load() == 0);

  // The counter works: an allocation made through the library counts.
  g_counting.store(true);
  char* json = pg_enforcer_usage_json(e, "acme", 4, 0, nullptr, &err);
  g_counting.store(false);
  REQUIRE(json != nullptr);
  CHECK(g_allocations.load() > 0);
  pg_free(json);
  pg_enforcer_destroy(e);
}

}  // namespace
