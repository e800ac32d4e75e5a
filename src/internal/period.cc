// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "internal/period.h"

#include <algorithm>
#include <cstdint>

#include "fmt/format.h"

namespace plangate::internal {
namespace {

constexpr int64_t kMsPerDay = 86'400'000;

// Days in a 400-year Gregorian cycle.
constexpr int64_t kDaysPerEra = 146'097;
// Days from 0000-03-01 (the start of era 0) to 1970-01-01.
constexpr int64_t kEpochShiftDays = 719'468;

constexpr int64_t FloorDiv(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

constexpr bool IsLeapYear(int64_t year) {
  return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
}

// Years are counted from March so that the leap day ends the year; months
// are then 0 (March) to 11 (February) and the day of the year follows from
// the month by the 153-days-per-5-months pattern (31 30 31 30 31).
int64_t DaysFromCivil(int64_t year, int month, int day) {
  const int64_t y = month <= 2 ? year - 1 : year;
  const int64_t era = FloorDiv(y, 400);
  const int64_t year_of_era = y - era * 400;                        // [0, 399]
  const int64_t shifted_month = month > 2 ? month - 3 : month + 9;  // [0, 11]
  const int64_t day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
  const int64_t day_of_era =
      year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * kDaysPerEra + day_of_era - kEpochShiftDays;
}

struct CivilDate {
  int64_t year;
  int month;
  int day;
};

CivilDate CivilFromDays(int64_t days) {
  const int64_t shifted = days + kEpochShiftDays;
  const int64_t era = FloorDiv(shifted, kDaysPerEra);
  const int64_t day_of_era = shifted - era * kDaysPerEra;  // [0, 146096]
  // Removes the leap days of the era before day_of_era so that whole years
  // are 365 days long.
  const int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 -
       day_of_era / (kDaysPerEra - 1)) /
      365;  // [0, 399]
  const int64_t day_of_year =
      day_of_era -
      (365 * year_of_era + year_of_era / 4 - year_of_era / 100);  // [0, 365]
  const int64_t shifted_month = (5 * day_of_year + 2) / 153;      // [0, 11]
  const int day =
      static_cast<int>(day_of_year - (153 * shifted_month + 2) / 5 + 1);
  const int month = static_cast<int>(shifted_month < 10 ? shifted_month + 3
                                                        : shifted_month - 9);
  const int64_t year = year_of_era + era * 400 + (month <= 2 ? 1 : 0);
  return {year, month, day};
}

// Months since year 0, January.
int64_t MonthIndex(int64_t year, int month) { return year * 12 + month - 1; }

int64_t PeriodStartFromCivil(const CivilTime& anchor, int months, int64_t n) {
  const int64_t target = MonthIndex(anchor.year, anchor.month) + n * months;
  const int64_t year = FloorDiv(target, 12);
  const int month = static_cast<int>(target - year * 12) + 1;
  const int day = std::min(anchor.day, DaysInMonth(year, month));
  return FromCivil(year, month, day, anchor.ms_of_day);
}

}  // namespace

CivilTime ToCivil(int64_t unix_ms) {
  const int64_t days = FloorDiv(unix_ms, kMsPerDay);
  const CivilDate date = CivilFromDays(days);
  CivilTime civil;
  civil.year = date.year;
  civil.month = date.month;
  civil.day = date.day;
  civil.ms_of_day = unix_ms - days * kMsPerDay;
  return civil;
}

int64_t FromCivil(int64_t year, int month, int day, int64_t ms_of_day) {
  return DaysFromCivil(year, month, day) * kMsPerDay + ms_of_day;
}

int DaysInMonth(int64_t year, int month) {
  switch (month) {
    case 2:
      return IsLeapYear(year) ? 29 : 28;
    case 4:
    case 6:
    case 9:
    case 11:
      return 30;
    default:
      return 31;
  }
}

int64_t PeriodStartMs(int64_t anchor_ms, int months, int64_t n) {
  return PeriodStartFromCivil(ToCivil(anchor_ms), months, n);
}

// Period n starts inside month MonthIndex(anchor) + n * months, so the
// period whose start month is the last one not after now's month starts
// either before now or later in now's own month; in the latter case now
// belongs to the period before it. The next period always starts in a later
// month than now's, so no upward adjustment is needed.
WindowInstance PeriodContaining(int64_t anchor_ms, int months, int64_t now_ms) {
  const CivilTime anchor = ToCivil(anchor_ms);
  const CivilTime now = ToCivil(now_ms);
  const int64_t month_diff =
      MonthIndex(now.year, now.month) - MonthIndex(anchor.year, anchor.month);
  WindowInstance window;
  window.index = FloorDiv(month_diff, months);
  window.start_ms = PeriodStartFromCivil(anchor, months, window.index);
  if (window.start_ms > now_ms) {
    window.end_ms = window.start_ms;
    --window.index;
    window.start_ms = PeriodStartFromCivil(anchor, months, window.index);
  } else {
    window.end_ms = PeriodStartFromCivil(anchor, months, window.index + 1);
  }
  return window;
}

WindowInstance WindowContaining(WindowUnit unit, int64_t anchor_ms,
                                int64_t now_ms) {
  switch (unit) {
    case WindowUnit::kBillingPeriod:
      return PeriodContaining(anchor_ms, 1, now_ms);
    case WindowUnit::kAnnual:
      return PeriodContaining(anchor_ms, 12, now_ms);
    case WindowUnit::kDay:
    case WindowUnit::kHour:
    case WindowUnit::kMinute:
    case WindowUnit::kSecond:
    case WindowUnit::kConcurrent:  // no window of time: length 0 below
      break;
  }
  const int64_t length = FixedWindowMs(unit);
  if (length <= 0) return {0, now_ms, now_ms};
  WindowInstance window;
  window.index = FloorDiv(now_ms, length);
  window.start_ms = window.index * length;
  window.end_ms = window.start_ms + length;
  return window;
}

std::string FormatRfc3339(int64_t unix_ms) {
  const CivilTime c = ToCivil(unix_ms);
  const int64_t s = c.ms_of_day / 1000;
  std::string out = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", c.year,
                                c.month, c.day, s / 3600, s / 60 % 60, s % 60);
  if (c.ms_of_day % 1000 != 0) {
    out += fmt::format(".{:03}", c.ms_of_day % 1000);
  }
  out += 'Z';
  return out;
}

}  // namespace plangate::internal
