// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "sync/account_doc.h"

#include <cstdint>
#include <exception>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>

#include "fmt/format.h"
#include "internal/json_path.h"
#include "nlohmann/json.hpp"

namespace plangate::internal {
namespace {

using Json = nlohmann::json;

absl::Status Bad(std::string_view account_id, std::string_view field,
                 std::string_view why) {
  return absl::InvalidArgumentError(fmt::format(
      "account {}: stored state: {}: {}", JsonQuote(account_id), field, why));
}

// Reads `field` of `object` into `out` when present, of JSON type `T`.
template <typename T>
absl::Status Read(std::string_view account_id, const Json& object,
                  std::string_view where, const char* field, T* out) {
  const auto it = object.find(field);
  if (it == object.end()) return absl::OkStatus();
  if constexpr (std::is_same_v<T, std::string>) {
    if (!it->is_string()) return Bad(account_id, where, "must be a string");
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!it->is_boolean()) return Bad(account_id, where, "must be true/false");
  } else if constexpr (std::is_same_v<T, double>) {
    if (!it->is_number()) return Bad(account_id, where, "must be a number");
  } else {
    if (!it->is_number_integer()) {
      return Bad(account_id, where, "must be an integer");
    }
  }
  *out = it->get<T>();
  return absl::OkStatus();
}

absl::Status OnlyFields(std::string_view account_id, const Json& object,
                        std::string_view where,
                        std::initializer_list<std::string_view> known) {
  for (auto it = object.begin(); it != object.end(); ++it) {
    bool ok = false;
    for (const std::string_view k : known) ok |= it.key() == k;
    if (!ok) {
      return Bad(account_id, where,
                 fmt::format("unknown field {}", JsonQuote(it.key())));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string_view SubscriptionStateName(SubscriptionState state) {
  switch (state) {
    case SubscriptionState::kActive:
      return "active";
    case SubscriptionState::kPastDue:
      return "past_due";
    case SubscriptionState::kBlocked:
      return "blocked";
  }
  return "active";
}

std::string EncodeAccountDoc(const AccountUpdate& update) {
  nlohmann::ordered_json j;
  j["plan"] = update.plan_id;
  if (update.anchor_ms != 0) j["anchor_ms"] = update.anchor_ms;
  if (update.state != SubscriptionState::kActive) {
    j["state"] = SubscriptionStateName(update.state);
  }
  if (update.past_due_deadline_ms != 0) {
    j["past_due_deadline_ms"] = update.past_due_deadline_ms;
  }
  if (!update.scheduled_plan_id.empty()) {
    j["scheduled_plan"] = update.scheduled_plan_id;
  }
  if (!update.default_model.empty()) {
    j["default_model"] = update.default_model;
  }
  if (!update.overrides.empty()) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const LimitOverride& o : update.overrides) {
      nlohmann::ordered_json e;
      e["limit_id"] = o.limit_id;
      if (!o.user_id.empty()) e["user_id"] = o.user_id;
      if (o.unlimited) {
        e["unlimited"] = true;
      } else {
        e["limit"] = o.limit;
      }
      if (o.grace >= 0) e["grace"] = o.grace;
      list.push_back(std::move(e));
    }
    j["overrides"] = std::move(list);
  }
  // Replace, not throw, on invalid UTF-8 in an id: the document must exist.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

absl::StatusOr<AccountUpdate> DecodeAccountDoc(std::string_view account_id,
                                               std::string_view doc) {
  Json j;
  try {
    j = Json::parse(doc);
  } catch (const std::exception& e) {
    return Bad(account_id, "JSON", BoundedJsonErrorText(e.what()));
  }
  if (!j.is_object()) return Bad(account_id, "JSON", "must be an object");
  if (absl::Status s =
          OnlyFields(account_id, j, "top level",
                     {"plan", "anchor_ms", "state", "past_due_deadline_ms",
                      "scheduled_plan", "default_model", "overrides"});
      !s.ok()) {
    return s;
  }
  AccountUpdate u;
  u.account_id = std::string(account_id);
  std::string state = "active";
  absl::Status s = Read(account_id, j, "plan", "plan", &u.plan_id);
  if (s.ok()) s = Read(account_id, j, "anchor_ms", "anchor_ms", &u.anchor_ms);
  if (s.ok()) s = Read(account_id, j, "state", "state", &state);
  if (s.ok()) {
    s = Read(account_id, j, "past_due_deadline_ms", "past_due_deadline_ms",
             &u.past_due_deadline_ms);
  }
  if (s.ok()) {
    s = Read(account_id, j, "scheduled_plan", "scheduled_plan",
             &u.scheduled_plan_id);
  }
  if (s.ok()) {
    s = Read(account_id, j, "default_model", "default_model", &u.default_model);
  }
  if (!s.ok()) return s;
  if (u.plan_id.empty()) return Bad(account_id, "plan", "missing");
  if (state == "active") {
    u.state = SubscriptionState::kActive;
  } else if (state == "past_due") {
    u.state = SubscriptionState::kPastDue;
  } else if (state == "blocked") {
    u.state = SubscriptionState::kBlocked;
  } else {
    return Bad(
        account_id, "state",
        fmt::format("{} is not active, past_due or blocked", JsonQuote(state)));
  }
  const auto list = j.find("overrides");
  if (list != j.end()) {
    if (!list->is_array()) return Bad(account_id, "overrides", "not an array");
    for (size_t i = 0; i < list->size(); ++i) {
      const Json& e = (*list)[i];
      const std::string where = fmt::format("overrides[{}]", i);
      if (!e.is_object()) return Bad(account_id, where, "not an object");
      LimitOverride o;
      s = OnlyFields(account_id, e, where,
                     {"limit_id", "user_id", "unlimited", "limit", "grace"});
      if (s.ok()) s = Read(account_id, e, where, "limit_id", &o.limit_id);
      if (s.ok()) s = Read(account_id, e, where, "user_id", &o.user_id);
      if (s.ok()) s = Read(account_id, e, where, "unlimited", &o.unlimited);
      if (s.ok()) s = Read(account_id, e, where, "limit", &o.limit);
      if (s.ok()) s = Read(account_id, e, where, "grace", &o.grace);
      if (!s.ok()) return s;
      if (o.limit_id.empty()) return Bad(account_id, where, "no limit_id");
      u.overrides.push_back(std::move(o));
    }
  }
  return u;
}

}  // namespace plangate::internal
