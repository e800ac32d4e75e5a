// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// period.h: calendar arithmetic for billing periods and fixed windows (UTC).
//
// A monthly period n of an account anchored at instant A starts on A's
// day-of-month and time of day, n months after A's month, with the day
// clamped to that month's last day (anchor on the 31st: Jan 31, Feb 28 or
// 29, Mar 31, Apr 30...). Periods are always derived from the original
// anchor, never from the previous period's end, so they do not drift. An
// annual period is the same with 12 months. n is negative before the anchor.
//
// Thread safety: pure functions.

#ifndef PLANGATE_INTERNAL_PERIOD_H_
#define PLANGATE_INTERNAL_PERIOD_H_

#include <cstdint>
#include <string>

#include "plangate/catalog.h"

namespace plangate::internal {

// A half-open window [start_ms, end_ms) and its index: the number of whole
// windows between the origin (the anchor, or the Unix epoch for UTC-aligned
// windows) and this one.
struct WindowInstance {
  int64_t index = 0;
  int64_t start_ms = 0;
  int64_t end_ms = 0;
};

// Civil date/time (UTC) of an instant.
struct CivilTime {
  int64_t year = 1970;
  int month = 1;  // 1..12
  int day = 1;    // 1..31
  int64_t ms_of_day = 0;
};

CivilTime ToCivil(int64_t unix_ms);
int64_t FromCivil(int64_t year, int month, int day, int64_t ms_of_day);

// "2026-01-31T00:00:00Z", or with ".123" when not a whole second.
std::string FormatRfc3339(int64_t unix_ms);
int DaysInMonth(int64_t year, int month);

// The start of period `n` of a period of `months` months anchored at anchor_ms.
int64_t PeriodStartMs(int64_t anchor_ms, int months, int64_t n);

// The period of `months` months (1 for monthly, 12 for annual) anchored at
// anchor_ms that contains now_ms.
WindowInstance PeriodContaining(int64_t anchor_ms, int months, int64_t now_ms);

// The window of `unit` that contains now_ms, for any unit; billing and
// annual units use anchor_ms, the others are aligned on the Unix epoch.
WindowInstance WindowContaining(WindowUnit unit, int64_t anchor_ms,
                                int64_t now_ms);

// The length of a UTC-aligned window unit in ms (0 for billing/annual).
constexpr int64_t FixedWindowMs(WindowUnit unit) {
  switch (unit) {
    case WindowUnit::kDay:
      return 86'400'000;
    case WindowUnit::kHour:
      return 3'600'000;
    case WindowUnit::kMinute:
      return 60'000;
    case WindowUnit::kSecond:
      return 1'000;
    default:
      return 0;
  }
}

}  // namespace plangate::internal

#endif  // PLANGATE_INTERNAL_PERIOD_H_
