// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// The C API's cost over the C++ call: one check + commit per iteration on
// the same catalog and accounts, through plangate::Enforcer directly and
// through include/plangate/c.h (libplangate_c.so, its own copy of the core).
// bench/python_check_bench.py measures the same loop from Python.
//
//   BM_CheckCommitCpp   Enforcer::Check + Commit
//   BM_CheckCommitC     pg_enforcer_check + pg_enforcer_commit

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "plangate/c.h"
#include "plangate/catalog.h"
#include "plangate/enforcer.h"

namespace {

constexpr int64_t kAnchor = 1767225600000;  // 2026-01-01T00:00:00Z
constexpr int64_t kNow = kAnchor + 3'600'000;
constexpr size_t kAccounts = 1000;

// Three limits that apply to every check, none of them reached.
constexpr char kCatalog[] = R"({"version": 1, "plans": [{"id": "p", "limits": [
  {"id": "monthly", "limit": 1000000000000, "grace": 0.1},
  {"id": "daily", "window": "day", "limit": 1000000000000},
  {"id": "rpm", "window": "minute", "mode": "sliding", "limit": 1000000000000}
]}]})";

std::vector<std::string> AccountIds() {
  std::vector<std::string> ids;
  for (size_t i = 0; i < kAccounts; ++i)
    ids.push_back("acct-" + std::to_string(i));
  return ids;
}

void Fail(const char* what, const char* detail) {
  std::fprintf(stderr, "c_api_benchmark: %s: %s\n", what, detail);
  std::exit(1);
}

void BM_CheckCommitCpp(benchmark::State& state) {
  auto catalog = plangate::Catalog::Parse(kCatalog);
  if (!catalog.ok())
    Fail("catalog", std::string(catalog.status().message()).c_str());
  auto enforcer = plangate::Enforcer::Create(*catalog);
  if (!enforcer.ok())
    Fail("enforcer", std::string(enforcer.status().message()).c_str());
  const std::vector<std::string> ids = AccountIds();
  for (const std::string& id : ids) {
    if (!(*enforcer)
             ->UpsertAccount(
                 {.account_id = id, .plan_id = "p", .anchor_ms = kAnchor})
             .ok()) {
      Fail("upsert", id.c_str());
    }
  }
  size_t i = 0;
  for (auto _ : state) {
    const plangate::Decision d = (*enforcer)->Check(
        {.account_id = ids[i++ % kAccounts], .now_ms = kNow});
    benchmark::DoNotOptimize(
        (*enforcer)->Commit({.reservation = d.reservation}));
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_CheckCommitC(benchmark::State& state) {
  char* err = nullptr;
  pg_catalog_t* catalog =
      pg_catalog_parse(kCatalog, sizeof(kCatalog) - 1, &err);
  if (err != nullptr) Fail("catalog", err);
  pg_enforcer_t* enforcer = pg_enforcer_create(catalog, nullptr, &err);
  if (err != nullptr) Fail("enforcer", err);
  pg_catalog_destroy(catalog);
  const std::vector<std::string> ids = AccountIds();
  for (const std::string& id : ids) {
    pg_account_t a{};
    a.account_id = id.data();
    a.account_id_len = id.size();
    a.plan_id = "p";
    a.plan_id_len = 1;
    a.anchor_ms = kAnchor;
    pg_enforcer_upsert_account(enforcer, &a, &err);
    if (err != nullptr) Fail("upsert", err);
  }
  size_t i = 0;
  for (auto _ : state) {
    const std::string& id = ids[i++ % kAccounts];
    pg_check_request_t r{};
    r.account_id = id.data();
    r.account_id_len = id.size();
    r.now_ms = kNow;
    pg_decision_t d;
    pg_enforcer_check(enforcer, &r, &d);
    pg_commit_request_t c{};
    c.reservation = d.reservation;
    benchmark::DoNotOptimize(pg_enforcer_commit(enforcer, &c));
  }
  state.SetItemsProcessed(state.iterations());
  pg_enforcer_destroy(enforcer);
}

BENCHMARK(BM_CheckCommitCpp);
BENCHMARK(BM_CheckCommitC);

}  // namespace

BENCHMARK_MAIN();
