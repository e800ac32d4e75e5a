// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// quickstart: one account on the "free" plan of plans.json (20 requests a
// month with 10% grace, at most 5 a minute) on a simulated clock, one request
// a second. Prints one line per decision: admits, soft nudges, 429 burst
// denials with their retry-after, a failed upstream call refunded, the grace
// zone and the 402 at the hard cap (22). Exits 1 if an outcome is missing.
//
//   quickstart [plans.json]

#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "plangate/catalog.h"
#include "plangate/clock.h"
#include "plangate/decision.h"
#include "plangate/enforcer.h"

namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "quickstart: %s\n", status.ToString().c_str());
  return 1;
}

std::string WarningNames(uint32_t w) {
  std::string s;
  if (w & plangate::kWarnSoftNudge) s += ",soft_nudge";
  if (w & plangate::kWarnGrace) s += ",grace";
  if (w & plangate::kWarnShadowDenied) s += ",shadow_denied";
  if (w & plangate::kWarnPastDue) s += ",past_due";
  return s.empty() ? "-" : s.substr(1);
}

long long PeriodUsed(const plangate::Enforcer& enforcer) {
  auto usage = enforcer.Usage("acme");
  if (!usage.ok()) return -1;
  for (const plangate::LimitUsage& l : usage->limits) {
    if (l.window == plangate::WindowUnit::kBillingPeriod) return l.used;
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  auto catalog = plangate::Catalog::LoadFile(
      argc > 1 ? argv[1] : PLANGATE_QUICKSTART_PLANS);
  if (!catalog.ok()) return Fail(catalog.status());
  constexpr int64_t kStart = 1'767'225'600'000;  // 2026-01-01T00:00:00Z
  plangate::SimulatedClock clock(kStart);
  auto enforcer = plangate::Enforcer::Create(*catalog, {.clock = &clock});
  if (!enforcer.ok()) return Fail(enforcer.status());
  plangate::Enforcer& e = **enforcer;
  absl::Status s = e.UpsertAccount(
      {.account_id = "acme", .plan_id = "free", .anchor_ms = kStart});
  if (!s.ok()) return Fail(s);

  uint32_t warnings = 0;
  bool burst_denied = false, refunded = false, capped = false;
  for (int n = 1; n <= 60 && !capped; ++n, clock.Advance(1'000)) {
    const plangate::Decision d = e.Check({.account_id = "acme"});
    std::printf("#%02d t=%3llds %d %-21s", n,
                static_cast<long long>((clock.NowMs() - kStart) / 1000),
                d.status,
                d.admitted() ? "admitted" : std::string(d.reason).c_str());
    std::printf(" %-31s used=%-2lld remaining=%-2lld ",
                std::string(d.limit.limit_id).c_str(),
                static_cast<long long>(d.used),
                static_cast<long long>(d.remaining));
    if (d.admitted()) {
      std::printf("warnings=%s\n", WarningNames(d.warnings).c_str());
      warnings |= d.warnings;
    } else {
      std::printf("retry_after=%llds\n",
                  static_cast<long long>(d.retry_after_ms / 1000));
    }
    burst_denied |= d.status == 429;
    capped = d.status == 402;
    if (d.status == 429) clock.Advance(d.retry_after_ms);  // next minute
    if (!d.admitted()) continue;

    // Request 7's upstream call fails: refunded, it counts against nothing.
    if (n != 7) {
      e.Commit({.reservation = d.reservation, .success = true});
      continue;
    }
    const long long before = PeriodUsed(e);
    const plangate::CommitResult r =
        e.Commit({.reservation = d.reservation, .success = false});
    refunded = r == plangate::CommitResult::kRefunded;
    std::printf(
        "    upstream failed: commit(success=false) %s, "
        "period usage %lld -> %lld\n",
        std::string(plangate::CommitResultName(r)).c_str(), before,
        PeriodUsed(e));
  }
  const bool all = burst_denied && refunded && capped &&
                   (warnings & plangate::kWarnSoftNudge) &&
                   (warnings & plangate::kWarnGrace);
  std::printf("quickstart: %s\n", all ? "OK" : "an outcome is missing");
  return all ? 0 : 1;
}
