// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include <string>

#include "internal/period.h"
#include "nlohmann/json.hpp"
#include "plangate/enforcer.h"

namespace plangate {
namespace {

std::string_view StateName(SubscriptionState state) {
  switch (state) {
    case SubscriptionState::kActive:
      return "active";
    case SubscriptionState::kPastDue:
      return "past_due";
    case SubscriptionState::kBlocked:
      return "blocked";
  }
  return "unknown";
}

}  // namespace

std::string UsageReportJson(const AccountUsage& usage) {
  nlohmann::ordered_json j;
  j["account"] = usage.account_id;
  j["plan"] = usage.plan_id;
  j["status"] = StateName(usage.state);
  j["period_start"] = internal::FormatRfc3339(usage.period_start_ms);
  j["period_end"] = internal::FormatRfc3339(usage.period_end_ms);
  j["scheduled_plan"] = usage.scheduled_plan_id.empty()
                            ? nlohmann::ordered_json(nullptr)
                            : nlohmann::ordered_json(usage.scheduled_plan_id);
  j["wallet_micros"] = usage.wallet_micros;
  nlohmann::ordered_json limits = nlohmann::ordered_json::object();
  for (const LimitUsage& l : usage.limits) {
    nlohmann::ordered_json e;
    e["used"] = l.used;
    e["limit"] = l.unlimited ? nlohmann::ordered_json(nullptr)
                             : nlohmann::ordered_json(l.limit);
    e["hard_limit"] = l.unlimited ? nlohmann::ordered_json(nullptr)
                                  : nlohmann::ordered_json(l.hard_limit);
    e["state"] = l.state;
    e["meter"] = l.meter;
    e["window"] = WindowName(l.window, l.window_count);
    // In-flight limits (concurrent) have no window and never reset.
    e["resets_at"] =
        l.window_end_ms > 0
            ? nlohmann::ordered_json(internal::FormatRfc3339(l.window_end_ms))
            : nlohmann::ordered_json(nullptr);
    limits[l.limit_id] = std::move(e);
  }
  j["usage"] = std::move(limits);
  nlohmann::ordered_json gauges = nlohmann::ordered_json::object();
  for (const GaugeUsage& g : usage.gauges) {
    nlohmann::ordered_json& out = gauges[g.name];
    out["limit"] = g.unlimited ? nlohmann::ordered_json(nullptr)
                               : nlohmann::ordered_json(g.cap);
    if (g.current >= 0) {  // the host reported a count
      out["current"] = g.current;
      out["over_limit"] = g.read_only > 0;
      if (g.read_only > 0) {
        out["read_only"] = g.read_only;
        out["lifted_by"] = g.lifted_by.empty()
                               ? nlohmann::ordered_json(nullptr)
                               : nlohmann::ordered_json(g.lifted_by);
      }
    }
  }
  j["resource_counts"] = std::move(gauges);
  if (usage.models_counted) {
    nlohmann::ordered_json models = nlohmann::ordered_json::object();
    nlohmann::ordered_json other = nullptr;
    for (const ModelUsage& m : usage.models) {
      nlohmann::ordered_json meters = nlohmann::ordered_json::object();
      for (const MeterCount& c : m.meters) meters[c.meter] = c.used;
      (m.model.empty() ? other : models[m.model]) = std::move(meters);
    }
    j["models"] = std::move(models);
    j["other_models"] = std::move(other);
  }
  return j.dump();
}

}  // namespace plangate
