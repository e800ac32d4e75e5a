// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// The check path's parts on their own: window arithmetic (core/window.h),
// cell writes (core/cell_ops.h) and account-key probes (counter_table).

#include "core/window.h"

#include <catch2/catch.hpp>
#include <string>

#include "core/cell_ops.h"
#include "core/counter_table.h"
#include "internal/period.h"

namespace plangate::internal {
namespace {

constexpr int64_t kMinute = 60'000;

TEST_CASE("fixed windows are epoch-aligned, also before the epoch",
          "[window]") {
  const Window w = FixedWindowOf(kMinute, 5 * kMinute + 1);
  CHECK(w.start_ms == 5 * kMinute);
  CHECK(w.end_ms == 6 * kMinute);
  CHECK(w.tag == 5);
  const Window neg = FixedWindowOf(kMinute, -1);
  CHECK(neg.start_ms == -kMinute);
  CHECK(neg.end_ms == 0);
  CHECK(neg.tag == TagOf(-1));
  CHECK(FixedWindowOf(kMinute, 0).start_ms == 0);
}

TEST_CASE("billing periods come from the anchor and are cached", "[window]") {
  CounterTable table(4);
  auto ref = table.FindOrInsert(Scope::kAccount, "acme", {},
                                table.Hash(Scope::kAccount, "acme", {}), 0);
  REQUIRE(ref.ok());
  SubjectRecord& rec = *ref->rec;
  const int64_t anchor = FromCivil(2024, 1, 15, 0);
  rec.anchor_ms.store(anchor);
  const int64_t now = FromCivil(2024, 3, 20, 0);
  const Window w = PeriodWindow(rec, 0, now);
  CHECK(w.start_ms == FromCivil(2024, 3, 15, 0));
  CHECK(w.end_ms == FromCivil(2024, 4, 15, 0));
  CHECK(w.tag == TagOf(w.start_ms / kDayMs));
  REQUIRE(rec.period_month.load() != 0);
  // The cached entry answers the same, and a later instant rolls over.
  const Window again = PeriodWindow(rec, 0, now + 1000);
  CHECK(again.start_ms == w.start_ms);
  CHECK(again.end_ms == w.end_ms);
  const Window next = PeriodWindow(rec, 0, w.end_ms);
  CHECK(next.start_ms == w.end_ms);
  CHECK(next.end_ms == FromCivil(2024, 5, 15, 0));
  // Annual periods use the other cache slot.
  const Window year = PeriodWindow(rec, 1, now);
  CHECK(year.start_ms == FromCivil(2024, 1, 15, 0));
  CHECK(year.end_ms == FromCivil(2025, 1, 15, 0));
}

TEST_CASE("a cell reads zero outside its window, sliding reads the previous",
          "[window]") {
  const uint32_t tag = 100;
  const uint64_t cur = Cell::Pack(1, tag, 7);
  const uint64_t prev = Cell::Pack(1, tag - 1, 50);
  CellView v = ViewOf(cur, prev, tag, /*sliding=*/true);
  CHECK(v.current == 7);
  CHECK(v.previous == 50);
  v = ViewOf(cur, prev, tag, /*sliding=*/false);
  CHECK(v.current == 7);
  CHECK(v.previous == 0);
  // The pair not rolled over yet: the current cell holds the previous window.
  v = ViewOf(Cell::Pack(1, tag - 1, 9), 0, tag, /*sliding=*/true);
  CHECK(v.current == 0);
  CHECK(v.previous == 9);
  // Older than the previous window: nothing.
  v = ViewOf(Cell::Pack(1, tag - 2, 9), 0, tag, /*sliding=*/true);
  CHECK(v.current == 0);
  CHECK(v.previous == 0);
}

TEST_CASE("the sliding estimate weighs the previous window by its overlap",
          "[window]") {
  const Window w{0, kMinute, 0};
  CHECK(Estimate({10, 60}, w, 0) == 70);            // all of it overlaps
  CHECK(Estimate({10, 60}, w, kMinute / 2) == 40);  // half
  CHECK(Estimate({10, 60}, w, kMinute - 1) == 10);  // almost none
  CHECK(SlidingEstimate(10, 60, 0, kMinute, kMinute / 4) == 55);
  // Counts past 2^36 take the 128-bit path and stay exact.
  const int64_t big = int64_t{1} << 40;
  CHECK(Estimate({0, big}, w, kMinute / 2) == big / 2);
}

TEST_CASE(
    "retry times: end of a fixed window, the fitting instant of a "
    "sliding one",
    "[window]") {
  const Window w{0, kMinute, 0};
  CHECK(RetryAt(WindowMode::kFixed, 10, {10, 0}, w, 1) == kMinute);
  CHECK(RetryAt(WindowMode::kFixed, 10, {0, 0}, w, 11) == 0);  // never fits
  // hard 10, current 2, previous 16: fits once 16 * left / 60000 <= 7.
  const int64_t t = RetryAt(WindowMode::kSliding, 10, {2, 16}, w, 1);
  CHECK(Estimate({2, 16}, w, t) + 1 <= 10);
  CHECK(t > 0);
  CHECK(t < kMinute);
  CHECK(Estimate({2, 16}, w, t - 5000) + 1 > 10);
}

TEST_CASE("limit states", "[window]") {
  CHECK(std::string(LimitStateName(true, 5, 1, 1, 1)) == "unlimited");
  CHECK(std::string(LimitStateName(false, 110, 100, 110, 80)) == "exhausted");
  CHECK(std::string(LimitStateName(false, 101, 100, 110, 80)) == "grace");
  CHECK(std::string(LimitStateName(false, 80, 100, 110, 80)) == "soft_nudge");
  CHECK(std::string(LimitStateName(false, 79, 100, 110, 80)) == "ok");
}

struct OneRecord {
  CounterTable table{4};
  SubjectRef ref;
  OneRecord() {
    auto r = table.FindOrInsert(Scope::kAccount, "acme", {},
                                table.Hash(Scope::kAccount, "acme", {}), 0);
    REQUIRE(r.ok());
    ref = *r;
  }
  CellTarget Target(uint8_t cell, bool sliding) {
    return {ref.rec, ref.index, ref.gen, cell, sliding, false};
  }
};

TEST_CASE("a charge adds, refuses past the bound, and rolls sliding pairs",
          "[cell]") {
  OneRecord r;
  const Window w{kMinute, 2 * kMinute, 1};
  std::atomic<uint64_t>& cell = r.ref.rec->cells[0];
  cell.store(Cell::Pack(r.ref.gen, 0, 30));  // the previous window's 30

  // The first charge in window 1 rolls the pair: 30 moves to cell 1.
  uint64_t word = cell.load();
  CellView seen = ViewOf(word, r.ref.rec->cells[1].load(), w.tag, true);
  CHECK(seen.previous == 30);
  REQUIRE(ChargeCell(r.Target(0, true), 100, w, kMinute, 5, true, word, &seen,
                     nullptr) == Charge::kOk);
  CHECK(Cell::Count(cell.load()) == 5);
  CHECK(Cell::Tag(cell.load()) == 1);
  CHECK(Cell::Count(r.ref.rec->cells[1].load()) == 30);
  CHECK(Cell::Tag(r.ref.rec->cells[1].load()) == 0);

  // A charge decided on a stale word re-reads it and re-checks the bound:
  // 5 + 30 (all of the previous overlaps at the window's start) + 70 > 100.
  CellView old_view{0, 30};
  CHECK(ChargeCell(r.Target(0, true), 100, w, kMinute, 70, true,
                   Cell::Pack(r.ref.gen, 0, 30), &old_view,
                   nullptr) == Charge::kOver);
  CHECK(Cell::Count(cell.load()) == 5);
  // Without enforcement (unlimited or shadow) it goes through.
  CellView view2{0, 30};
  CHECK(ChargeCell(r.Target(0, true), 100, w, kMinute, 70, false,
                   Cell::Pack(r.ref.gen, 0, 30), &view2,
                   nullptr) == Charge::kOk);
  CHECK(Cell::Count(cell.load()) == 75);
  CHECK(view2.current == 5);  // what it was decided on in the end

  // A record reused under the charge: stale.
  cell.store(Cell::Pack(r.ref.gen + 1, 1, 0));
  CellView view3{75, 30};
  CHECK(ChargeCell(r.Target(0, true), 100, w, kMinute, 1, true,
                   Cell::Pack(r.ref.gen, 1, 75), &view3,
                   nullptr) == Charge::kStale);
}

TEST_CASE("adjustments stay in their window and never go below zero",
          "[cell]") {
  OneRecord r;
  std::atomic<uint64_t>& cell = r.ref.rec->cells[2];
  cell.store(Cell::Pack(r.ref.gen, 7, 10));
  AdjustCell(*r.ref.rec, r.ref.gen, 2, false, 7, -4);
  CHECK(Cell::Count(cell.load()) == 6);
  AdjustCell(*r.ref.rec, r.ref.gen, 2, false, 7, -100);
  CHECK(Cell::Count(cell.load()) == 0);
  AdjustCell(*r.ref.rec, r.ref.gen, 2, false, 8, 5);  // another window
  CHECK(Cell::Count(cell.load()) == 0);
  std::atomic<int64_t> wallet{100};
  CHECK(MoveWallet(wallet, -60));
  CHECK_FALSE(MoveWallet(wallet, -60));
  CHECK(wallet.load() == 40);
  DrainWallet(wallet, 60);
  CHECK(wallet.load() == 0);
}

TEST_CASE(
    "account ids of every inline length round-trip and compare "
    "exactly",
    "[table]") {
  CounterTable table(256);
  for (size_t len = 1; len <= 56; ++len) {
    std::string id(len, 'a');
    for (size_t i = 0; i < len; ++i) id[i] = static_cast<char>('a' + i % 26);
    auto ins = table.FindOrInsert(Scope::kAccount, id, {},
                                  table.Hash(Scope::kAccount, id, {}), 0);
    REQUIRE(ins.ok());
    Scope scope;
    std::string account, sub;
    CounterTable::ReadKey(*ins->rec, &scope, &account, &sub);
    CHECK(account == id);
    CHECK(sub.empty());
    const KeyProbe probe(Scope::kAccount, id, {});
    CHECK(table.Find(probe, table.Hash(probe)).rec == ins->rec);
    // One byte different, at every position: another record (absent).
    for (size_t i = 0; i < len; ++i) {
      std::string other = id;
      other[i] = '#';
      CHECK_FALSE(table.Find(Scope::kAccount, other, {},
                             table.Hash(Scope::kAccount, other, {})));
    }
  }
}

}  // namespace
}  // namespace plangate::internal
