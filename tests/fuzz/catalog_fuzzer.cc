// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// catalog_fuzzer: Catalog::Parse on arbitrary bytes. It must never crash,
// and must either accept the document (then an Enforcer built from it
// decides a request on every plan) or reject it with one "path: reason"
// line per problem.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "plangate/catalog.h"
#include "plangate/enforcer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto catalog = plangate::Catalog::Parse(text);
  if (!catalog.ok()) {
    const std::string message(catalog.status().message());
    if (message.empty()) std::abort();
    size_t start = 0;
    while (start <= message.size()) {
      size_t end = message.find('\n', start);
      if (end == std::string::npos) end = message.size();
      if (message.substr(start, end - start).find(": ") == std::string::npos) {
        std::abort();  // every line is "<path>: <reason>"
      }
      start = end + 1;
    }
    return 0;
  }
  plangate::SimulatedClock clock(1'767'225'600'000);
  auto enforcer = plangate::Enforcer::Create(
      *catalog, {.clock = &clock, .max_subjects = 64, .max_reservations = 16});
  if (!enforcer.ok()) return 0;
  for (const plangate::Plan& plan : (*catalog)->plans()) {
    const absl::Status s =
        (*enforcer)->UpsertAccount({.account_id = plan.id,
                                    .plan_id = plan.id,
                                    .anchor_ms = clock.NowMs()});
    if (absl::IsResourceExhausted(s)) break;  // more plans than subjects
    if (!s.ok()) std::abort();  // every plan of a valid catalog can be given
    const plangate::Decision d = (*enforcer)->Check({.account_id = plan.id,
                                                     .project_id = "p",
                                                     .key_id = "k",
                                                     .user_id = "u"});
    (*enforcer)->Commit({.reservation = d.reservation});
    for (const plangate::Gauge& g : plan.gauges) {
      (*enforcer)->CheckCreate(plan.id, g.name, 0);
    }
  }
  return 0;
}
