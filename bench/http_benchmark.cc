// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// http_benchmark: what HttpRendering costs a gateway per request, side by
// side with a straightforward rendering of the same headers by snprintf
// into a fixed buffer (the baseline), in one run, so the figure to read is
// the ratio (this machine is noisy).
//
// Rows:
//   Admitted   an admitted check's Decision as the fast check returns it:
//              the deciding limit, no warning (RateLimit-Policy,
//              RateLimit, X-RateLimit-Limit, -Remaining, -Reset);
//   Warned     the same with the soft-nudge warning (X-Plangate-Warning);
//   Denied     a 429 from a sliding per-minute limit with a generated
//              message (Retry-After, the limit headers, Content-Type, the
//              JSON body).
// Each iteration renders one Decision and reads every header value's size
// (what a gateway does before copying them out).
//
//   build/release/bench/http_benchmark --benchmark_min_time=0.5

#include <benchmark/benchmark.h>

#include <cinttypes>
#include <cstdint>
#include <cstdio>

#include "plangate/decision.h"
#include "plangate/http.h"

namespace {

using plangate::Decision;
using plangate::HttpRendering;

constexpr int64_t kNow = 1'706'659'200'000;  // 2024-01-31T00:00:00Z

Decision AdmittedDecision() {
  Decision d;
  d.has_limit = true;
  d.limit.limit_id = "monthly";
  d.limit.meter = "requests";
  d.limit.window = plangate::WindowUnit::kBillingPeriod;
  d.limit_value = 1'000'000'000'000;
  d.hard_limit = 1'100'000'000'000;
  d.used = 123'456;
  d.remaining = d.hard_limit - d.used - 1;
  d.window_start_ms = kNow - 30LL * 86'400'000;
  d.reset_ms = kNow + 86'400'000 + 1234;
  return d;
}

Decision WarnedDecision() {
  Decision d = AdmittedDecision();
  d.warnings = plangate::kWarnSoftNudge;
  return d;
}

Decision DeniedDecision() {
  Decision d;
  d.status = 429;
  d.deny = plangate::DenyKind::kLimit;
  d.reason = "rate_limited";
  d.has_limit = true;
  d.limit.limit_id = "rpm";
  d.limit.meter = "requests";
  d.limit.window = plangate::WindowUnit::kMinute;
  d.limit.mode = plangate::WindowMode::kSliding;
  d.limit_value = 60;
  d.hard_limit = 60;
  d.used = 60;
  d.remaining = 0;
  d.retry_after_ms = 1500;
  d.window_start_ms = kNow - 44'200;
  d.reset_ms = kNow + 15'800;
  return d;
}

size_t SizeOfHeaders(const HttpRendering& r) {
  size_t n = r.body().size();
  for (const plangate::HttpHeader& h : r.headers()) n += h.value.size();
  return n;
}

void Render(benchmark::State& state, const Decision& d) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(&d);
    const HttpRendering r(d, kNow);
    benchmark::DoNotOptimize(SizeOfHeaders(r));
  }
}

// The baseline: the admitted request's five headers, each by snprintf into
// one buffer, as a straightforward gateway writes them (no escaping of the
// limit id, no checks).
struct BaselineHeaders {
  char buf[512];
  int sizes[5];
};

void RenderBaseline(const Decision& d, int64_t now_ms, BaselineHeaders* out) {
  char* p = out->buf;
  const char* const end = out->buf + sizeof(out->buf);
  const int64_t reset_s = (d.reset_ms - now_ms + 999) / 1000;
  const int64_t window_s = (d.reset_ms - d.window_start_ms + 999) / 1000;
  const int id_len = static_cast<int>(d.limit.limit_id.size());
  const char* id = d.limit.limit_id.data();
  int n = std::snprintf(p, end - p, "\"%.*s\";q=%" PRId64 ";w=%" PRId64, id_len,
                        id, d.hard_limit, window_s);
  out->sizes[0] = n;
  p += n;
  n = std::snprintf(p, end - p, "\"%.*s\";r=%" PRId64 ";t=%" PRId64, id_len, id,
                    d.remaining, reset_s);
  out->sizes[1] = n;
  p += n;
  n = std::snprintf(p, end - p, "%" PRId64, d.hard_limit);
  out->sizes[2] = n;
  p += n;
  n = std::snprintf(p, end - p, "%" PRId64, d.remaining);
  out->sizes[3] = n;
  p += n;
  n = std::snprintf(p, end - p, "%" PRId64, reset_s);
  out->sizes[4] = n;
}

void BM_RenderAdmitted(benchmark::State& state) {
  Render(state, AdmittedDecision());
}
void BM_RenderWarned(benchmark::State& state) {
  Render(state, WarnedDecision());
}
void BM_RenderDenied(benchmark::State& state) {
  Render(state, DeniedDecision());
}
void BM_RenderAdmittedBaseline(benchmark::State& state) {
  const Decision d = AdmittedDecision();
  for (auto _ : state) {
    benchmark::DoNotOptimize(&d);
    BaselineHeaders h;
    RenderBaseline(d, kNow, &h);
    benchmark::DoNotOptimize(h.sizes[0] + h.sizes[1] + h.sizes[2] + h.sizes[3] +
                             h.sizes[4]);
  }
}

BENCHMARK(BM_RenderAdmitted);
BENCHMARK(BM_RenderWarned);
BENCHMARK(BM_RenderDenied);
BENCHMARK(BM_RenderAdmittedBaseline);

}  // namespace

BENCHMARK_MAIN();
