// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "internal/period.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

#include "plangate/catalog.h"

namespace plangate::internal {
namespace {

constexpr int64_t kMsPerDay = 86'400'000;
constexpr int64_t kMsPerHour = 3'600'000;

// Expected instants below were computed independently of the code under test
// (Python's datetime in UTC) and are annotated with their civil form.

// 2024-01-31T10:00:00Z.
constexpr int64_t kJan31Anchor = 1706695200000;

void CheckCivil(int64_t unix_ms, int64_t year, int month, int day,
                int64_t ms_of_day) {
  INFO("unix_ms = " << unix_ms);
  const CivilTime civil = ToCivil(unix_ms);
  CHECK(civil.year == year);
  CHECK(civil.month == month);
  CHECK(civil.day == day);
  CHECK(civil.ms_of_day == ms_of_day);
}

// A deliberately naive reference: walks years and months one at a time.
bool RefIsLeap(int64_t year) {
  if (year % 400 == 0) return true;
  if (year % 100 == 0) return false;
  return year % 4 == 0;
}

int RefMonthLength(int64_t year, int month) {
  static constexpr int kLengths[12] = {31, 28, 31, 30, 31, 30,
                                       31, 31, 30, 31, 30, 31};
  return month == 2 && RefIsLeap(year) ? 29 : kLengths[month - 1];
}

CivilTime RefCivil(int64_t unix_ms) {
  int64_t days = unix_ms / kMsPerDay;
  int64_t ms_of_day = unix_ms % kMsPerDay;
  if (ms_of_day < 0) {
    ms_of_day += kMsPerDay;
    --days;
  }
  int64_t year = 1970;
  while (days < 0) {
    --year;
    days += RefIsLeap(year) ? 366 : 365;
  }
  while (days >= (RefIsLeap(year) ? 366 : 365)) {
    days -= RefIsLeap(year) ? 366 : 365;
    ++year;
  }
  int month = 1;
  while (days >= RefMonthLength(year, month)) {
    days -= RefMonthLength(year, month);
    ++month;
  }
  CivilTime civil;
  civil.year = year;
  civil.month = month;
  civil.day = static_cast<int>(days) + 1;
  civil.ms_of_day = ms_of_day;
  return civil;
}

TEST_CASE("ToCivil and FromCivil agree on fixed points", "[period][civil]") {
  CheckCivil(0, 1970, 1, 1, 0);
  CheckCivil(951782400000, 2000, 2, 29, 0);
  CheckCivil(4107542400000, 2100, 3, 1, 0);
  CheckCivil(-1, 1969, 12, 31, kMsPerDay - 1);
  CheckCivil(-kMsPerDay, 1969, 12, 31, 0);
  CheckCivil(-kMsPerDay - 1, 1969, 12, 30, kMsPerDay - 1);
  CheckCivil(-2208988800000, 1900, 1, 1, 0);
  CheckCivil(-11670912000000, 1600, 3, 1, 0);
  CheckCivil(13574563200000, 2400, 2, 29, 0);
  // 1969-07-20T20:17:40.123Z.
  CheckCivil(-14182939877, 1969, 7, 20,
             ((20 * 60 + 17) * 60 + 40) * 1000 + 123);

  CHECK(FromCivil(1970, 1, 1, 0) == 0);
  CHECK(FromCivil(2000, 2, 29, 0) == 951782400000);
  CHECK(FromCivil(2100, 3, 1, 0) == 4107542400000);
  CHECK(FromCivil(1969, 12, 31, kMsPerDay - 1) == -1);
  CHECK(FromCivil(1900, 1, 1, 0) == -2208988800000);
  CHECK(FromCivil(1600, 3, 1, 0) == -11670912000000);
  CHECK(FromCivil(2400, 2, 29, 0) == 13574563200000);
  CHECK(FromCivil(2024, 1, 31, 10 * kMsPerHour) == kJan31Anchor);
}

TEST_CASE("ToCivil matches a naive calendar and round-trips, 1900-2200",
          "[period][civil]") {
  constexpr int64_t kFrom = -2208988800000;  // 1900-01-01T00:00:00Z
  constexpr int64_t kTo = 7258118400000;     // 2200-01-01T00:00:00Z
  constexpr int64_t kStep = 7919 * 60'000;
  int64_t samples = 0;
  int64_t mismatches = 0;
  int64_t first_mismatch = 0;
  for (int64_t t = kFrom; t <= kTo; t += kStep) {
    ++samples;
    const CivilTime got = ToCivil(t);
    const CivilTime want = RefCivil(t);
    const bool ok = got.year == want.year && got.month == want.month &&
                    got.day == want.day && got.ms_of_day == want.ms_of_day &&
                    FromCivil(got.year, got.month, got.day, got.ms_of_day) == t;
    if (!ok && mismatches++ == 0) first_mismatch = t;
  }
  INFO("first mismatch at unix_ms = " << first_mismatch);
  CHECK(samples > 19'000);
  CHECK(mismatches == 0);
}

TEST_CASE("ToCivil matches a naive calendar for years around zero",
          "[period][civil]") {
  // 0000-03-01T00:00Z and the leap day before it (year 0 is a leap year).
  CheckCivil(-62162035200000, 0, 3, 1, 0);
  CheckCivil(-62162035200000 - 1, 0, 2, 29, kMsPerDay - 1);
  CHECK(FromCivil(0, 3, 1, 0) == -62162035200000);

  constexpr int64_t kFrom = -1'100'000 * kMsPerDay;  // year -1042
  constexpr int64_t kTo = 1'500'000 * kMsPerDay;     // year 6076
  constexpr int64_t kStep = 997 * kMsPerDay + 12'345'678;
  int64_t mismatches = 0;
  int64_t first_mismatch = 0;
  for (int64_t t = kFrom; t <= kTo; t += kStep) {
    const CivilTime got = ToCivil(t);
    const CivilTime want = RefCivil(t);
    const bool ok = got.year == want.year && got.month == want.month &&
                    got.day == want.day && got.ms_of_day == want.ms_of_day &&
                    FromCivil(got.year, got.month, got.day, got.ms_of_day) == t;
    if (!ok && mismatches++ == 0) first_mismatch = t;
  }
  INFO("first mismatch at unix_ms = " << first_mismatch);
  CHECK(mismatches == 0);
}

TEST_CASE("DaysInMonth follows the Gregorian leap rules", "[period][civil]") {
  CHECK(DaysInMonth(2024, 2) == 29);
  CHECK(DaysInMonth(2023, 2) == 28);
  CHECK(DaysInMonth(2100, 2) == 28);
  CHECK(DaysInMonth(2000, 2) == 29);
  CHECK(DaysInMonth(1900, 2) == 28);
  CHECK(DaysInMonth(1600, 2) == 29);
  CHECK(DaysInMonth(-4, 2) == 29);
  CHECK(DaysInMonth(-100, 2) == 28);
  const int kLengths[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  for (int month = 1; month <= 12; ++month) {
    INFO("month " << month);
    CHECK(DaysInMonth(2023, month) == kLengths[month - 1]);
  }
}

TEST_CASE("Monthly periods anchored on Jan 31 clamp without drifting",
          "[period][monthly]") {
  const std::vector<int64_t> starts = {
      1706695200000,  // 2024-01-31T10:00Z  n=0
      1709200800000,  // 2024-02-29T10:00Z  n=1
      1711879200000,  // 2024-03-31T10:00Z  n=2
      1714471200000,  // 2024-04-30T10:00Z  n=3
      1717149600000,  // 2024-05-31T10:00Z  n=4
      1719741600000,  // 2024-06-30T10:00Z  n=5
      1722420000000,  // 2024-07-31T10:00Z  n=6
      1725098400000,  // 2024-08-31T10:00Z  n=7
      1727690400000,  // 2024-09-30T10:00Z  n=8
      1730368800000,  // 2024-10-31T10:00Z  n=9
      1732960800000,  // 2024-11-30T10:00Z  n=10
      1735639200000,  // 2024-12-31T10:00Z  n=11
      1738317600000,  // 2025-01-31T10:00Z  n=12
      1740736800000,  // 2025-02-28T10:00Z  n=13
      1743415200000,  // 2025-03-31T10:00Z  n=14
  };
  for (size_t n = 0; n < starts.size(); ++n) {
    INFO("n = " << n);
    CHECK(PeriodStartMs(kJan31Anchor, 1, static_cast<int64_t>(n)) == starts[n]);
  }
  for (size_t n = 0; n + 1 < starts.size(); ++n) {
    INFO("n = " << n);
    const WindowInstance w = PeriodContaining(kJan31Anchor, 1, starts[n]);
    CHECK(w.index == static_cast<int64_t>(n));
    CHECK(w.start_ms == starts[n]);
    CHECK(w.end_ms == starts[n + 1]);
  }
  CheckCivil(starts[1], 2024, 2, 29, 10 * kMsPerHour);
  CheckCivil(starts[13], 2025, 2, 28, 10 * kMsPerHour);

  // 2024-03-15T00:00Z lies in the period that started on Feb 29.
  const WindowInstance mid = PeriodContaining(kJan31Anchor, 1, 1710460800000);
  CHECK(mid.index == 1);
  CHECK(mid.start_ms == 1709200800000);
  CHECK(mid.end_ms == 1711879200000);
}

TEST_CASE("Monthly periods anchored on the 30th and 29th",
          "[period][monthly]") {
  SECTION("30th, leap February") {
    constexpr int64_t kAnchor = 1706572800000;             // 2024-01-30T00:00Z
    CHECK(PeriodStartMs(kAnchor, 1, 1) == 1709164800000);  // 2024-02-29
    CHECK(PeriodStartMs(kAnchor, 1, 2) == 1711756800000);  // 2024-03-30
  }
  SECTION("30th, common February") {
    constexpr int64_t kAnchor = 1675036800000;             // 2023-01-30T00:00Z
    CHECK(PeriodStartMs(kAnchor, 1, 1) == 1677542400000);  // 2023-02-28
    CHECK(PeriodStartMs(kAnchor, 1, 2) == 1680134400000);  // 2023-03-30
    const WindowInstance w = PeriodContaining(kAnchor, 1, 1677542400000);
    CHECK(w.index == 1);
    CHECK(w.start_ms == 1677542400000);
    CHECK(w.end_ms == 1680134400000);
  }
  SECTION("29th, common February") {
    constexpr int64_t kAnchor = 1674980100000;             // 2023-01-29T08:15Z
    CHECK(PeriodStartMs(kAnchor, 1, 1) == 1677572100000);  // 2023-02-28
    CHECK(PeriodStartMs(kAnchor, 1, 2) == 1680077700000);  // 2023-03-29
    // 2024-02-29T08:15Z: 13 months later the 29th exists again.
    CHECK(PeriodStartMs(kAnchor, 1, 13) == 1709194500000);
  }
  SECTION("29th, leap February") {
    constexpr int64_t kAnchor = 1706516100000;             // 2024-01-29T08:15Z
    CHECK(PeriodStartMs(kAnchor, 1, 1) == 1709194500000);  // 2024-02-29
    CHECK(PeriodStartMs(kAnchor, 1, 2) == 1711700100000);  // 2024-03-29
    const WindowInstance w = PeriodContaining(kAnchor, 1, 1709194500000 - 1);
    CHECK(w.index == 0);
    CHECK(w.start_ms == kAnchor);
    CHECK(w.end_ms == 1709194500000);
  }
}

TEST_CASE("Monthly periods anchored on the 15th", "[period][monthly]") {
  constexpr int64_t kAnchor = 1710547199000;  // 2024-03-15T23:59:59Z
  CHECK(PeriodStartMs(kAnchor, 1, 0) == kAnchor);
  CHECK(PeriodStartMs(kAnchor, 1, 1) == 1713225599000);    // 2024-04-15
  CHECK(PeriodStartMs(kAnchor, 1, -1) == 1708041599000);   // 2024-02-15
  CHECK(PeriodStartMs(kAnchor, 1, -12) == 1678924799000);  // 2023-03-15
  CHECK(PeriodStartMs(kAnchor, 1, 12) == 1742083199000);   // 2025-03-15

  // 2024-04-15T00:00Z is in the anchor's month-long period.
  const WindowInstance w = PeriodContaining(kAnchor, 1, 1713139200000);
  CHECK(w.index == 0);
  CHECK(w.start_ms == kAnchor);
  CHECK(w.end_ms == 1713225599000);
}

TEST_CASE("Period rollover is exact to the millisecond", "[period][monthly]") {
  constexpr int64_t kFeb29 = 1709200800000;  // 2024-02-29T10:00Z, n=1
  constexpr int64_t kMar31 = 1711879200000;  // 2024-03-31T10:00Z, n=2

  const WindowInstance before = PeriodContaining(kJan31Anchor, 1, kFeb29 - 1);
  CHECK(before.index == 0);
  CHECK(before.start_ms == kJan31Anchor);
  CHECK(before.end_ms == kFeb29);

  const WindowInstance at = PeriodContaining(kJan31Anchor, 1, kFeb29);
  CHECK(at.index == 1);
  CHECK(at.start_ms == kFeb29);
  CHECK(at.end_ms == kMar31);
  CHECK(before.end_ms == at.start_ms);

  const WindowInstance last = PeriodContaining(kJan31Anchor, 1, kMar31 - 1);
  CHECK(last.index == 1);
  CHECK(PeriodContaining(kJan31Anchor, 1, kMar31).index == 2);

  const WindowInstance first = PeriodContaining(kJan31Anchor, 1, kJan31Anchor);
  CHECK(first.index == 0);
  CHECK(first.start_ms == kJan31Anchor);
  const WindowInstance prev =
      PeriodContaining(kJan31Anchor, 1, kJan31Anchor - 1);
  CHECK(prev.index == -1);
  CHECK(prev.start_ms == 1704016800000);  // 2023-12-31T10:00Z
  CHECK(prev.end_ms == kJan31Anchor);
}

TEST_CASE("Instants before the anchor have negative indices",
          "[period][monthly]") {
  CHECK(PeriodStartMs(kJan31Anchor, 1, -1) == 1704016800000);   // 2023-12-31
  CHECK(PeriodStartMs(kJan31Anchor, 1, -2) == 1701338400000);   // 2023-11-30
  CHECK(PeriodStartMs(kJan31Anchor, 1, -11) == 1677578400000);  // 2023-02-28
  CHECK(PeriodStartMs(kJan31Anchor, 1, -12) == 1675159200000);  // 2023-01-31
  CHECK(PeriodStartMs(kJan31Anchor, 1, -13) == 1672480800000);  // 2022-12-31

  // 2023-03-01T00:00Z.
  const WindowInstance w = PeriodContaining(kJan31Anchor, 1, 1677628800000);
  CHECK(w.index == -11);
  CHECK(w.start_ms == 1677578400000);
  CHECK(w.end_ms == 1677578400000 + 31 * kMsPerDay);  // 2023-03-31T10:00Z

  SECTION("anchor before the epoch") {
    constexpr int64_t kAnchor = -1;  // 1969-12-31T23:59:59.999Z
    CHECK(PeriodStartMs(kAnchor, 1, 1) == 2678399999);      // 1970-01-31
    CHECK(PeriodStartMs(kAnchor, 1, 2) == 5097599999);      // 1970-02-28
    CHECK(PeriodStartMs(kAnchor, 1, -1) == -2678400001);    // 1969-11-30
    CHECK(PeriodStartMs(kAnchor, 1, -10) == -26438400001);  // 1969-02-28
    CHECK(PeriodStartMs(kAnchor, 1, -12) == -31536000001);  // 1968-12-31

    const WindowInstance at_epoch = PeriodContaining(kAnchor, 1, 0);
    CHECK(at_epoch.index == 0);
    CHECK(at_epoch.start_ms == -1);
    CHECK(at_epoch.end_ms == 2678399999);

    const WindowInstance before = PeriodContaining(kAnchor, 1, -2);
    CHECK(before.index == -1);
    CHECK(before.start_ms == -2678400001);
    CHECK(before.end_ms == -1);
  }
}

TEST_CASE("Annual periods anchored on Feb 29", "[period][annual]") {
  constexpr int64_t kAnchor = 1709208000000;  // 2024-02-29T12:00Z
  const int64_t starts[] = {
      1709208000000,  // 2024-02-29T12:00Z
      1740744000000,  // 2025-02-28T12:00Z
      1772280000000,  // 2026-02-28T12:00Z
      1803816000000,  // 2027-02-28T12:00Z
      1835438400000,  // 2028-02-29T12:00Z
  };
  for (int64_t n = 0; n < 5; ++n) {
    INFO("n = " << n);
    CHECK(PeriodStartMs(kAnchor, 12, n) == starts[n]);
  }
  CHECK(PeriodStartMs(kAnchor, 12, -1) == 1677585600000);  // 2023-02-28
  CHECK(PeriodStartMs(kAnchor, 12, -4) == 1582977600000);  // 2020-02-29
  CHECK(PeriodStartMs(kAnchor, 12, 76) == 4107499200000);  // 2100-02-28

  const WindowInstance w = PeriodContaining(kAnchor, 12, 1772280000000 - 1);
  CHECK(w.index == 1);
  CHECK(w.start_ms == 1740744000000);
  CHECK(w.end_ms == 1772280000000);
  CHECK(PeriodContaining(kAnchor, 12, 1772280000000).index == 2);

  const WindowInstance via_unit =
      WindowContaining(WindowUnit::kAnnual, kAnchor, 1803816000000);
  CHECK(via_unit.index == 3);
  CHECK(via_unit.start_ms == 1803816000000);
  CHECK(via_unit.end_ms == 1835438400000);

  SECTION("across the non-leap century 1900") {
    constexpr int64_t kOld = -2330100000000;               // 1896-02-29T06:00Z
    CHECK(PeriodStartMs(kOld, 12, 1) == -2298564000000);   // 1897-02-28
    CHECK(PeriodStartMs(kOld, 12, 4) == -2203956000000);   // 1900-02-28
    CHECK(PeriodStartMs(kOld, 12, 8) == -2077725600000);   // 1904-02-29
    CHECK(PeriodStartMs(kOld, 12, -1) == -2361722400000);  // 1895-02-28
    const WindowInstance old = PeriodContaining(kOld, 12, -2203956000000);
    CHECK(old.index == 4);
    CHECK(old.start_ms == -2203956000000);
  }
}

TEST_CASE("A distant instant resolves directly", "[period][monthly]") {
  // 2124-03-01T00:00Z; 2124 is a leap year.
  const WindowInstance w = PeriodContaining(kJan31Anchor, 1, 4864924800000);
  CHECK(w.index == 1201);
  CHECK(w.start_ms == 4864874400000);  // 2124-02-29T10:00Z
  CHECK(w.end_ms == 4867552800000);    // 2124-03-31T10:00Z
}

TEST_CASE("PeriodContaining brackets every instant around many anchors",
          "[period][monthly][annual]") {
  const int64_t anchors[] = {
      kJan31Anchor,
      1706572800000,   // 2024-01-30T00:00Z
      1674980100000,   // 2023-01-29T08:15Z
      1710547199000,   // 2024-03-15T23:59:59Z
      1709208000000,   // 2024-02-29T12:00Z
      1704067200000,   // 2024-01-01T00:00Z
      -1,              // 1969-12-31T23:59:59.999Z
      -2330100000000,  // 1896-02-29T06:00Z
      951782400000,    // 2000-02-29T00:00Z
  };
  constexpr int64_t kSpan = 4 * 366 * kMsPerDay;
  constexpr int64_t kStep = 7 * kMsPerHour + 13 * 60'000 + 17;
  for (const int months : {1, 12}) {
    for (const int64_t anchor : anchors) {
      INFO("anchor = " << anchor << ", months = " << months);
      int64_t failures = 0;
      int64_t first_failure = 0;
      for (int64_t now = anchor - kSpan; now <= anchor + kSpan; now += kStep) {
        const WindowInstance w = PeriodContaining(anchor, months, now);
        const bool ok = w.start_ms <= now && now < w.end_ms &&
                        w.start_ms == PeriodStartMs(anchor, months, w.index) &&
                        w.end_ms == PeriodStartMs(anchor, months, w.index + 1);
        if (!ok && failures++ == 0) first_failure = now;
      }
      INFO("first failure at now = " << first_failure);
      CHECK(failures == 0);

      int64_t boundary_failures = 0;
      for (int64_t n = -40; n <= 40; ++n) {
        const int64_t start = PeriodStartMs(anchor, months, n);
        const int64_t next = PeriodStartMs(anchor, months, n + 1);
        const WindowInstance at = PeriodContaining(anchor, months, start);
        const WindowInstance before =
            PeriodContaining(anchor, months, start - 1);
        if (!(start < next && at.index == n && at.start_ms == start &&
              at.end_ms == next && before.index == n - 1 &&
              before.end_ms == start)) {
          ++boundary_failures;
        }
      }
      CHECK(boundary_failures == 0);
    }
  }
}

TEST_CASE("WindowContaining uses the billing period for kBillingPeriod",
          "[period][window]") {
  // 2024-03-15T00:00Z.
  const WindowInstance w =
      WindowContaining(WindowUnit::kBillingPeriod, kJan31Anchor, 1710460800000);
  CHECK(w.index == 1);
  CHECK(w.start_ms == 1709200800000);  // 2024-02-29T10:00Z
  CHECK(w.end_ms == 1711879200000);    // 2024-03-31T10:00Z
}

TEST_CASE("Fixed windows are aligned on the Unix epoch", "[period][window]") {
  constexpr int64_t kNow = 1709208000000;  // 2024-02-29T12:00Z

  SECTION("day") {
    const WindowInstance w = WindowContaining(WindowUnit::kDay, 0, kNow);
    CHECK(w.index == 19782);
    CHECK(w.start_ms == 1709164800000);  // 2024-02-29T00:00Z
    CHECK(w.end_ms == 1709164800000 + kMsPerDay);
    const WindowInstance neg = WindowContaining(WindowUnit::kDay, 0, -1);
    CHECK(neg.index == -1);
    CHECK(neg.start_ms == -kMsPerDay);
    CHECK(neg.end_ms == 0);
    CHECK(WindowContaining(WindowUnit::kDay, 0, -kMsPerDay).index == -1);
    const WindowInstance neg2 =
        WindowContaining(WindowUnit::kDay, 0, -kMsPerDay - 1);
    CHECK(neg2.index == -2);
    CHECK(neg2.start_ms == -2 * kMsPerDay);
    CHECK(neg2.end_ms == -kMsPerDay);
  }
  SECTION("hour") {
    const WindowInstance at = WindowContaining(WindowUnit::kHour, 0, kNow);
    CHECK(at.index == 474780);
    CHECK(at.start_ms == kNow);
    CHECK(at.end_ms == kNow + kMsPerHour);
    const WindowInstance before =
        WindowContaining(WindowUnit::kHour, 0, kNow - 1);
    CHECK(before.index == 474779);
    CHECK(before.start_ms == kNow - kMsPerHour);
    CHECK(before.end_ms == kNow);
    const WindowInstance neg = WindowContaining(WindowUnit::kHour, 0, -1);
    CHECK(neg.index == -1);
    CHECK(neg.start_ms == -kMsPerHour);
    CHECK(neg.end_ms == 0);
  }
  SECTION("minute") {
    const WindowInstance zero = WindowContaining(WindowUnit::kMinute, 0, 0);
    CHECK(zero.index == 0);
    CHECK(zero.start_ms == 0);
    CHECK(zero.end_ms == 60'000);
    const WindowInstance last =
        WindowContaining(WindowUnit::kMinute, 0, 59'999);
    CHECK(last.index == 0);
    CHECK(WindowContaining(WindowUnit::kMinute, 0, 60'000).index == 1);
    const WindowInstance neg =
        WindowContaining(WindowUnit::kMinute, 0, -60'000);
    CHECK(neg.index == -1);
    CHECK(neg.start_ms == -60'000);
    CHECK(neg.end_ms == 0);
    const WindowInstance neg2 =
        WindowContaining(WindowUnit::kMinute, 0, -60'001);
    CHECK(neg2.index == -2);
    CHECK(neg2.start_ms == -120'000);
    CHECK(neg2.end_ms == -60'000);
  }
  SECTION("second") {
    const WindowInstance w = WindowContaining(WindowUnit::kSecond, 0, 1'999);
    CHECK(w.index == 1);
    CHECK(w.start_ms == 1'000);
    CHECK(w.end_ms == 2'000);
    const WindowInstance neg = WindowContaining(WindowUnit::kSecond, 0, -1'001);
    CHECK(neg.index == -2);
    CHECK(neg.start_ms == -2'000);
    CHECK(neg.end_ms == -1'000);
    const WindowInstance edge =
        WindowContaining(WindowUnit::kSecond, 0, -1'000);
    CHECK(edge.index == -1);
    CHECK(edge.start_ms == -1'000);
    CHECK(edge.end_ms == 0);
  }
  SECTION("the anchor does not move fixed windows") {
    const WindowInstance a = WindowContaining(WindowUnit::kDay, 0, kNow);
    const WindowInstance b =
        WindowContaining(WindowUnit::kDay, kJan31Anchor + 12'345, kNow);
    CHECK(a.index == b.index);
    CHECK(a.start_ms == b.start_ms);
    CHECK(a.end_ms == b.end_ms);
  }
}

}  // namespace
}  // namespace plangate::internal
