// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "plangate/clock.h"

#include <time.h>

namespace plangate {

int64_t SystemClock::NowMs() const {
  timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1'000'000;
}

SystemClock* SystemClock::Default() {
  static SystemClock clock;
  return &clock;
}

}  // namespace plangate
