// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// clock.h: the time source plangate reads, injected everywhere.
//
// All instants are milliseconds since the Unix epoch, UTC. A host on a hot
// path may pass its own `now` in each CheckRequest and skip the clock
// entirely; otherwise the Enforcer asks its Clock.
//
//   plangate::SimulatedClock clock(/*start_ms=*/1'700'000'000'000);
//   options.clock = &clock;
//   clock.Advance(60'000);  // one minute later
//
// Thread safety: both implementations are safe for concurrent access from
// multiple threads without external synchronization.

#ifndef PLANGATE_CLOCK_H_
#define PLANGATE_CLOCK_H_

#include <atomic>
#include <cstdint>

namespace plangate {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch, UTC.
  virtual int64_t NowMs() const = 0;
};

// Wall-clock time from CLOCK_REALTIME_COARSE (a vDSO read, about 5 ns, with
// the kernel tick's resolution of 1-4 ms). Hosts that need exact
// millisecond rollover pass `now_ms` per request.
class SystemClock final : public Clock {
 public:
  int64_t NowMs() const override;
  // A process-wide instance.
  static SystemClock* Default();
};

// A clock that moves only when told to. For tests and trace replay.
class SimulatedClock final : public Clock {
 public:
  explicit SimulatedClock(int64_t start_ms = 0) : now_ms_(start_ms) {}
  int64_t NowMs() const override {
    return now_ms_.load(std::memory_order_relaxed);  // a lone value
  }
  void SetMs(int64_t now_ms) {
    now_ms_.store(now_ms, std::memory_order_relaxed);
  }
  void Advance(int64_t delta_ms) {
    now_ms_.fetch_add(delta_ms, std::memory_order_relaxed);
  }

 private:
  std::atomic<int64_t> now_ms_;
};

}  // namespace plangate

#endif  // PLANGATE_CLOCK_H_
