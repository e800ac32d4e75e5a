// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// UnsyncedMemo (sync/unsynced_memo.h) against a real enforcer's published
// facts: after a description it names the cells that hold no synced
// counter, and nothing once the record's caps source changes (a plan
// change, a reload), once a state was made for a cell, or for another
// generation of the record.

#include "sync/unsynced_memo.h"

#include <bit>
#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "core/sync_link.h"
#include "plangate/catalog.h"
#include "plangate/enforcer.h"
#include "sync/record_view.h"

namespace plangate::internal {
namespace {

// "one" has a monthly limit; "two" adds a concurrency limit (per instance:
// never synced) and a sliding minute (a pair of cells).
constexpr char kCatalog[] = R"({"version": 1, "plans": [
  {"id": "one", "limits": [
    {"id": "monthly", "meter": "requests", "window": "billing_period",
     "limit": 1000}]},
  {"id": "two", "limits": [
    {"id": "monthly", "meter": "requests", "window": "billing_period",
     "limit": 1000},
    {"id": "inflight", "meter": "requests", "window": "concurrent",
     "limit": 4},
    {"id": "minute", "meter": "requests", "window": "minute",
     "mode": "sliding", "limit": 100}]}]})";

constexpr int64_t kNow = 1767225600000 + 3600000;

struct Fixture {
  std::unique_ptr<Enforcer> enforcer;
  PublishedFacts facts;
  SubjectRef ref;

  Fixture() {
    auto catalog = Catalog::Parse(kCatalog);
    REQUIRE(catalog.ok());
    auto e = Enforcer::Create(*catalog, EnforcerOptions{});
    REQUIRE(e.ok());
    enforcer = std::move(*e);
    Upsert("one");
    facts = SyncAccess::Facts(*enforcer);
    ref = Find();
    REQUIRE(ref);
  }
  void Upsert(const std::string& plan) {
    AccountUpdate up;
    up.account_id = "acct";
    up.plan_id = plan;
    up.anchor_ms = kNow - 3600000;
    REQUIRE(enforcer->UpsertAccount(up).ok());
  }
  SubjectRef Find() {
    CounterTable& t = SyncAccess::Table(*enforcer);
    return t.Find(Scope::kAccount, "acct", {},
                  t.Hash(Scope::kAccount, "acct", {}));
  }
  // Describes the record and remembers it; the synced cells' bits.
  uint32_t Describe(UnsyncedMemo& memo) {
    SyncRecordInfo info;
    REQUIRE(DescribeRecord(facts, ref.index, ref.gen, kNow, &info));
    memo.Remember(ref.index, ref.gen, info);
    uint32_t synced = 0;
    for (const SyncCellInfo& c : info.cells) synced |= 1u << c.cell;
    return synced;
  }
};

constexpr uint32_t kAll = (1u << kCellsPerSubject) - 1;

TEST_CASE("unknown records have nothing to skip") {
  Fixture f;
  UnsyncedMemo memo;
  CHECK(memo.Skippable(f.facts, f.ref.index, f.ref.gen, kNow) == 0);
}

TEST_CASE("a description names every cell but the synced ones") {
  Fixture f;
  UnsyncedMemo memo;
  const uint32_t synced = f.Describe(memo);
  // Cells are the catalog's (the monthly limit's, the minute pair's, the
  // concurrency limit's); the concurrency cell and the unused ones are
  // never synced.
  REQUIRE(synced != 0);
  REQUIRE(std::popcount(synced) < 4);
  CHECK(memo.Skippable(f.facts, f.ref.index, f.ref.gen, kNow) ==
        (kAll & ~synced));
  // Another generation of the same slot is another record.
  CHECK(memo.Skippable(f.facts, f.ref.index,
                       static_cast<uint8_t>(f.ref.gen + 1), kNow) == 0);
}

TEST_CASE("a plan change makes the memo stale until described again") {
  Fixture f;
  UnsyncedMemo memo;
  const uint32_t before = f.Describe(memo);
  f.Upsert("two");  // the caps source changes: another plan
  CHECK(memo.Skippable(f.facts, f.ref.index, f.ref.gen, kNow) == 0);
  const uint32_t after = f.Describe(memo);
  CHECK(after != 0);
  CHECK((after & before) != 0);  // the monthly limit is in both plans
  CHECK(memo.Skippable(f.facts, f.ref.index, f.ref.gen, kNow) ==
        (kAll & ~after));
}

TEST_CASE("a reload makes the memo stale") {
  Fixture f;
  UnsyncedMemo memo;
  f.Describe(memo);
  auto catalog = Catalog::Parse(kCatalog);
  REQUIRE(catalog.ok());
  REQUIRE(f.enforcer->ReloadCatalog(*catalog).ok());
  CHECK(memo.Skippable(f.facts, f.ref.index, f.ref.gen, kNow) == 0);
}

TEST_CASE("a cell once given a state is never skipped in its generation") {
  Fixture f;
  UnsyncedMemo memo;
  const uint32_t synced = f.Describe(memo);
  const int cell = std::countr_zero(~synced & kAll);
  memo.NoteState(f.ref.index, f.ref.gen, cell);
  const uint32_t skip = memo.Skippable(f.facts, f.ref.index, f.ref.gen, kNow);
  CHECK(((skip >> cell) & 1) == 0);
  CHECK(skip == (kAll & ~synced & ~(1u << cell)));
  // Described again (say after a reload), the state's mark stays.
  f.Describe(memo);
  CHECK(((memo.Skippable(f.facts, f.ref.index, f.ref.gen, kNow) >> cell) & 1) ==
        0);
}

}  // namespace
}  // namespace plangate::internal
