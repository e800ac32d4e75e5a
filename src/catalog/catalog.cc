// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "plangate/catalog.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/compiled_catalog.h"
#include "internal/json_path.h"
#include "internal/period.h"
#include "nlohmann/json.hpp"

namespace plangate {
namespace {

using Json = nlohmann::json;

constexpr absl::string_view kNamePattern = "[A-Za-z0-9_.-]+";
constexpr absl::string_view kReasonPattern = "[a-z0-9_]+";

// Containers deeper than this cannot be part of a valid catalog; the
// positions of their members are not recorded.
constexpr size_t kMaxIndexedDepth = 8;

// Where a value sits in the document: its path as printed in errors; the
// position of each step among its siblings, so that errors sort in document
// order; and an unambiguous encoding of the path. A member that is absent
// has position -1: errors about it come before those inside its parent's
// other members.
struct Loc {
  std::string path;
  std::vector<int> order;
  std::string id;
};

struct Error {
  std::vector<int> order;
  std::string text;
};

// Debian's Abseil has its own string_view; the public API uses std's.
absl::string_view ToAbsl(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

std::string Quote(std::string_view s) { return internal::JsonQuote(s); }

bool IsName(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
  });
}

bool IsReason(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

std::string MemberId(const Loc& parent, std::string_view key) {
  return absl::StrCat(parent.id, "k", key.size(), ":", ToAbsl(key));
}

Loc MemberAt(const Loc& parent, std::string_view key, int position) {
  Loc loc;
  loc.path = internal::JsonMemberPath(parent.path, key);
  loc.order = parent.order;
  loc.order.push_back(position);
  loc.id = MemberId(parent, key);
  return loc;
}

Loc Element(const Loc& parent, size_t index) {
  Loc loc;
  loc.path = absl::StrCat(parent.path, "[", index, "]");
  loc.order = parent.order;
  loc.order.push_back(static_cast<int>(index));
  loc.id = absl::StrCat(parent.id, "i", index, ";");
  return loc;
}

const Json* Find(const Json& object, std::string_view key) {
  auto it = object.find(std::string(key));
  return it == object.end() ? nullptr : &*it;
}

// "[json.exception.parse_error.101] parse error at line 1, column 2: x"
// becomes "line 1, column 2: x", the input it quotes cut to
// internal::kMaxQuotedBytes.
std::string JsonErrorText(absl::string_view what) {
  std::string text = internal::BoundedJsonErrorText(
      std::string_view(what.data(), what.size()));
  absl::string_view rest = text;
  if (!absl::ConsumePrefix(&rest, "parse error at ")) {
    absl::ConsumePrefix(&rest, "parse error: ");
  }
  return std::string(rest);
}

// Grace allowance floor(limit * grace), for limit >= 0. `grace` is the
// nearest double to a decimal such as 0.15, off by up to 2^-53 relative, so
// a product meant to be a whole number can land just below it; such a
// product is rounded up. Capped at kMaxCount.
int64_t GraceAllowance(int64_t limit, double grace) {
  if (limit <= 0 || !(grace > 0)) return 0;
  const long double product = static_cast<long double>(limit) * grace;
  if (product >= static_cast<long double>(kMaxCount)) return kMaxCount;
  long double whole = std::floor(product);
  if (whole + 1 - product <= product * 0x1p-50L) whole += 1;
  return static_cast<int64_t>(whole);
}

// floor(limit * (1 + grace)) for a limit clamped to [0, kMaxCount], not
// saturated; at most 2 * kMaxCount.
int64_t UnsaturatedHard(int64_t limit, double grace) {
  const int64_t base = std::clamp<int64_t>(limit, 0, kMaxCount);
  return base + GraceAllowance(base, grace);
}

bool IsBillingWindow(WindowUnit unit) {
  return unit == WindowUnit::kBillingPeriod || unit == WindowUnit::kAnnual;
}

template <typename E>
struct EnumName {
  absl::string_view name;
  E value;
};

constexpr EnumName<Scope> kScopeNames[] = {
    {"account", Scope::kAccount},
    {"project", Scope::kProject},
    {"key", Scope::kKey},
    {"user", Scope::kUser},
};

constexpr EnumName<WindowUnit> kWindowNames[] = {
    {"billing_period", WindowUnit::kBillingPeriod},
    {"month", WindowUnit::kBillingPeriod},
    {"annual", WindowUnit::kAnnual},
    {"day", WindowUnit::kDay},
    {"hour", WindowUnit::kHour},
    {"minute", WindowUnit::kMinute},
    {"second", WindowUnit::kSecond},
    {"concurrent", WindowUnit::kConcurrent},
};

constexpr EnumName<WindowMode> kModeNames[] = {
    {"fixed", WindowMode::kFixed},
    {"sliding", WindowMode::kSliding},
};

constexpr EnumName<Traffic> kTrafficNames[] = {
    {"all", Traffic::kAll},
    {"managed", Traffic::kManaged},
    {"byok", Traffic::kByok},
};

constexpr EnumName<RedisDownPolicy> kRedisDownNames[] = {
    {"fail_open", RedisDownPolicy::kFailOpen},
    {"fail_closed", RedisDownPolicy::kFailClosed},
    {"local_share", RedisDownPolicy::kLocalShare},
};

constexpr EnumName<KeyKind> kKeyKindNames[] = {
    {"live", KeyKind::kLive},
    {"test", KeyKind::kTest},
    {"sandbox", KeyKind::kTest},
    {"internal", KeyKind::kInternal},
};

// Records, while the text is parsed, where each member of each object sits
// among its siblings, and which members are repeated: the parsed document
// sorts members by name and keeps only the last of a repeated one.
class DocumentIndex {
 public:
  bool OnEvent(Json::parse_event_t event, const Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        Open(event == Json::parse_event_t::array_start);
        break;
      case Json::parse_event_t::key:
        if (!frames_.empty() && parsed.is_string()) {
          OnKey(parsed.get_ref<const std::string&>());
        }
        break;
      case Json::parse_event_t::object_end:
      case Json::parse_event_t::array_end:
        if (!frames_.empty()) frames_.pop_back();
        Advance();
        break;
      case Json::parse_event_t::value:
        Advance();
        break;
    }
    return true;
  }

  // The position of `key` in the object at `parent`, or -1.
  int Position(const Loc& parent, std::string_view key) const {
    auto it = positions_.find(MemberId(parent, key));
    return it == positions_.end() ? -1 : it->second;
  }

  const std::vector<Loc>& duplicates() const { return duplicates_; }

 private:
  struct Frame {
    bool is_array = false;
    bool indexed = false;
    int members = 0;
    size_t next_index = 0;
    std::string key;
    int key_position = -1;
    Loc loc;
  };

  void Open(bool is_array) {
    Frame frame;
    frame.is_array = is_array;
    if (frames_.empty()) {
      frame.indexed = true;
    } else {
      const Frame& parent = frames_.back();
      frame.indexed = parent.indexed && frames_.size() < kMaxIndexedDepth;
      if (frame.indexed) {
        frame.loc = parent.is_array
                        ? Element(parent.loc, parent.next_index)
                        : MemberAt(parent.loc, parent.key, parent.key_position);
      }
    }
    frames_.push_back(std::move(frame));
  }

  void OnKey(const std::string& key) {
    Frame& frame = frames_.back();
    frame.key = key;
    if (!frame.indexed) return;
    auto [it, inserted] =
        positions_.emplace(MemberId(frame.loc, key), frame.members);
    frame.key_position = it->second;
    if (inserted) {
      ++frame.members;
    } else {
      duplicates_.push_back(MemberAt(frame.loc, key, it->second));
    }
  }

  void Advance() {
    if (!frames_.empty() && frames_.back().is_array) {
      ++frames_.back().next_index;
    }
  }

  std::vector<Frame> frames_;
  std::map<std::string, int> positions_;
  std::vector<Loc> duplicates_;
};

struct LimitDefaults {
  double soft_nudge = 0.8;
  double grace = 0.0;
  std::optional<int> status;
  std::optional<std::string> reason;
};

// A (scope, meter, window, mode) counter used by a limit.
struct CounterUse {
  Scope scope;
  std::string meter;
  WindowUnit window;
  uint32_t window_count;
  WindowMode mode;
  Loc loc;
};

// The longest whole-length window: ten years of days.
constexpr int64_t kMaxWindowMs = int64_t{3650} * 86'400'000;

// "15m" -> (kMinute, 15): digits, then s, m, h or d.
std::optional<std::pair<WindowUnit, int64_t>> ParseWindowLength(
    std::string_view s) {
  if (s.size() < 2 || s.size() > 12 || s[0] < '1' || s[0] > '9') {
    return std::nullopt;
  }
  int64_t n = 0;
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    n = n * 10 + (s[i] - '0');
  }
  switch (s.back()) {
    case 's':
      return std::make_pair(WindowUnit::kSecond, n);
    case 'm':
      return std::make_pair(WindowUnit::kMinute, n);
    case 'h':
      return std::make_pair(WindowUnit::kHour, n);
    case 'd':
      return std::make_pair(WindowUnit::kDay, n);
    default:
      return std::nullopt;
  }
}

}  // namespace

// Builds a Catalog from a parsed document, collecting every error.
class CatalogParser {
 public:
  CatalogParser() : catalog_(std::make_shared<Catalog>()) {}

  CatalogParser(const CatalogParser&) = delete;
  CatalogParser& operator=(const CatalogParser&) = delete;

  absl::StatusOr<std::shared_ptr<const Catalog>> Parse(std::string_view text);

 private:
  // Limits of one plan seen so far, by counter and by id.
  struct PlanLimits {
    std::map<std::tuple<Scope, std::string, WindowUnit, uint32_t, WindowMode>,
             size_t>
        counters;
    std::map<std::string, size_t> ids;
  };

  void Fail(const Loc& loc, absl::string_view reason);
  Loc Member(const Loc& parent, std::string_view key) const {
    return MemberAt(parent, key, index_.Position(parent, key));
  }

  void ParseRoot(const Json& root);
  void ParsePlan(const Json& value, const Loc& loc, size_t index);
  void ParseLimit(const Json& value, const Loc& loc,
                  const LimitDefaults& defaults, size_t index, Plan* plan,
                  PlanLimits* seen);
  void ParseDefaults(const Json& value, const Loc& loc, bool per_plan,
                     LimitDefaults* defaults);
  // key_kinds (at least one), or past_due_blocks (blocking: may be empty,
  // internal excluded).
  void ParseKeyKinds(const Json& value, const Loc& loc,
                     std::vector<KeyKind>* kinds, bool blocking);
  void ParseWallet(const Json& value, const Loc& loc, Plan* plan);
  void ParsePrices(const Json& value, const Loc& loc);
  void ParseGauges(const Json& value, const Loc& loc, Plan* plan);
  void ParseUpgradeOrder(const Json* value, const Loc& loc);
  void CheckCounterBudget();

  // False when `object` has members not in `known`.
  bool CheckMembers(const Json& object, const Loc& loc,
                    std::initializer_list<std::string_view> known);
  bool ExpectObject(const Json& value, const Loc& loc);
  bool ExpectArray(const Json& value, const Loc& loc);
  std::optional<std::string> GetString(const Json& value, const Loc& loc);
  std::optional<std::string> GetName(const Json& value, const Loc& loc);
  std::optional<bool> GetBool(const Json& value, const Loc& loc);
  // "usage_by_model": true, false or a number of models.
  std::optional<int64_t> GetModelsPerAccount(const Json& value, const Loc& loc);
  std::optional<int64_t> GetCount(const Json& value, const Loc& loc,
                                  bool allow_unlimited, bool* unlimited);
  std::optional<double> GetFraction(const Json& value, const Loc& loc,
                                    bool zero_allowed);
  std::optional<int> GetStatus(const Json& value, const Loc& loc);
  std::optional<std::string> GetReason(const Json& value, const Loc& loc);
  template <typename E, size_t N>
  std::optional<E> GetEnum(const Json& value, const Loc& loc,
                           const EnumName<E> (&names)[N]);
  // Unique names of a list, with where each one is.
  std::vector<std::pair<std::string, Loc>> GetNameList(const Json& value,
                                                       const Loc& loc,
                                                       absl::string_view what);

  DocumentIndex index_;
  std::shared_ptr<Catalog> catalog_;
  std::vector<Error> errors_;

  bool has_meters_ = false;
  std::set<std::string> declared_meters_;
  bool has_features_ = false;
  std::set<std::string> declared_features_;
  LimitDefaults catalog_defaults_;
  int64_t catalog_usage_by_model_ = 0;  // the top-level "usage_by_model"
  // Valid plan ids, by their first position in "plans".
  std::map<std::string, size_t> plan_ids_;
  std::vector<CounterUse> counter_uses_;
};

void CatalogParser::Fail(const Loc& loc, absl::string_view reason) {
  errors_.push_back(Error{
      loc.order,
      absl::StrCat(loc.path.empty() ? "catalog" : loc.path, ": ", reason)});
}

absl::StatusOr<std::shared_ptr<const Catalog>> CatalogParser::Parse(
    std::string_view text) {
  try {
    Json root;
    try {
      root = Json::parse(
          text.begin(), text.end(),
          [this](int /*depth*/, Json::parse_event_t event, Json& parsed) {
            return index_.OnEvent(event, parsed);
          });
    } catch (const Json::parse_error& e) {
      return absl::InvalidArgumentError(
          absl::StrCat("catalog: invalid JSON at byte ", e.byte, ": ",
                       JsonErrorText(e.what())));
    } catch (const Json::exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat("catalog: invalid JSON: ", JsonErrorText(e.what())));
    }
    for (const Loc& loc : index_.duplicates()) Fail(loc, "duplicate key");
    ParseRoot(root);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("catalog: out of memory");
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("catalog: ", internal::BoundedJsonErrorText(e.what())));
  }
  if (!errors_.empty()) {
    std::stable_sort(
        errors_.begin(), errors_.end(),
        [](const Error& a, const Error& b) { return a.order < b.order; });
    return absl::InvalidArgumentError(absl::StrJoin(
        errors_, "\n",
        [](std::string* out, const Error& e) { out->append(e.text); }));
  }
  return std::shared_ptr<const Catalog>(std::move(catalog_));
}

void CatalogParser::ParseRoot(const Json& root) {
  const Loc loc;
  if (!root.is_object()) {
    Fail(loc, "must be a JSON object");
    return;
  }
  CheckMembers(
      root, loc,
      {"version", "meters", "features", "upgrade_order", "default_plan",
       "defaults", "plans", "prices", "usage_by_model"});

  const Loc version_loc = Member(loc, "version");
  if (const Json* version = Find(root, "version"); version == nullptr) {
    Fail(version_loc, "missing required field");
  } else if (!version->is_number_integer() || version->get<int64_t>() != 1) {
    Fail(version_loc, "must be 1");
  }

  catalog_->meters_.push_back("requests");
  if (const Json* meters = Find(root, "meters")) {
    has_meters_ = true;
    for (auto& [name, name_loc] :
         GetNameList(*meters, Member(loc, "meters"), "meter")) {
      declared_meters_.insert(name);
      if (name != "requests") catalog_->meters_.push_back(name);
    }
  }
  if (const Json* features = Find(root, "features")) {
    has_features_ = true;
    for (auto& [name, name_loc] :
         GetNameList(*features, Member(loc, "features"), "feature")) {
      declared_features_.insert(name);
    }
  }
  if (const Json* defaults = Find(root, "defaults")) {
    ParseDefaults(*defaults, Member(loc, "defaults"), false,
                  &catalog_defaults_);
  }

  if (const Json* by_model = Find(root, "usage_by_model")) {
    catalog_usage_by_model_ =
        GetModelsPerAccount(*by_model, Member(loc, "usage_by_model"))
            .value_or(0);
  }

  const Loc plans_loc = Member(loc, "plans");
  if (const Json* plans = Find(root, "plans"); plans == nullptr) {
    Fail(plans_loc, "missing required field");
  } else if (!plans->is_array() || plans->empty()) {
    Fail(plans_loc, "must be a non-empty array");
  } else {
    for (size_t i = 0; i < plans->size(); ++i) {
      ParsePlan((*plans)[i], Element(plans_loc, i), i);
    }
  }

  ParseUpgradeOrder(Find(root, "upgrade_order"), Member(loc, "upgrade_order"));
  if (const Json* prices = Find(root, "prices")) {
    ParsePrices(*prices, Member(loc, "prices"));
  }

  if (const Json* plan = Find(root, "default_plan")) {
    const Loc plan_loc = Member(loc, "default_plan");
    if (auto id = GetString(*plan, plan_loc)) {
      if (plan_ids_.count(*id) == 0) {
        Fail(plan_loc, absl::StrCat("unknown plan ", Quote(*id)));
      } else {
        catalog_->default_plan_ = *id;
      }
    }
  }

  CheckCounterBudget();
}

void CatalogParser::ParsePlan(const Json& value, const Loc& loc, size_t index) {
  if (!ExpectObject(value, loc)) return;
  CheckMembers(value, loc,
               {"id", "name", "shadow", "defaults", "limits", "features",
                "models", "key_kinds", "past_due_blocks", "wallet", "gauges",
                "max_subjects", "usage_by_model"});
  Plan& plan = catalog_->plans_.emplace_back();
  plan.usage_by_model = catalog_usage_by_model_;
  if (const Json* by_model = Find(value, "usage_by_model")) {
    plan.usage_by_model =
        GetModelsPerAccount(*by_model, Member(loc, "usage_by_model"))
            .value_or(0);
  }

  const Loc id_loc = Member(loc, "id");
  if (const Json* id = Find(value, "id"); id == nullptr) {
    Fail(id_loc, "missing required field");
  } else if (auto name = GetName(*id, id_loc)) {
    plan.id = *name;
    auto [it, inserted] = plan_ids_.emplace(*name, index);
    if (!inserted) {
      Fail(id_loc, absl::StrCat("duplicate plan id ", Quote(*name),
                                " (also plans[", it->second, "])"));
    }
  }
  plan.name = plan.id;
  if (const Json* name = Find(value, "name")) {
    if (auto s = GetString(*name, Member(loc, "name"))) plan.name = *s;
  }
  if (const Json* shadow = Find(value, "shadow")) {
    plan.shadow = GetBool(*shadow, Member(loc, "shadow")).value_or(false);
  }

  LimitDefaults defaults = catalog_defaults_;
  if (const Json* d = Find(value, "defaults")) {
    ParseDefaults(*d, Member(loc, "defaults"), true, &defaults);
  }
  if (const Json* limits = Find(value, "limits")) {
    const Loc limits_loc = Member(loc, "limits");
    if (ExpectArray(*limits, limits_loc)) {
      PlanLimits seen;
      for (size_t j = 0; j < limits->size(); ++j) {
        ParseLimit((*limits)[j], Element(limits_loc, j), defaults, j, &plan,
                   &seen);
      }
    }
  }

  if (const Json* features = Find(value, "features")) {
    for (auto& [name, name_loc] :
         GetNameList(*features, Member(loc, "features"), "feature")) {
      if (has_features_ && declared_features_.count(name) == 0) {
        Fail(name_loc, absl::StrCat("unknown feature ", Quote(name),
                                    " (not in features)"));
      }
      plan.features.push_back(name);
    }
  }

  if (const Json* models = Find(value, "models")) {
    const Loc models_loc = Member(loc, "models");
    plan.models_restricted = true;
    if (ExpectArray(*models, models_loc)) {
      std::set<std::string> seen;
      for (size_t i = 0; i < models->size(); ++i) {
        const Loc model_loc = Element(models_loc, i);
        const Json& model = (*models)[i];
        if (!model.is_string() || model.get_ref<const std::string&>().empty()) {
          Fail(model_loc, "must be a non-empty string");
          continue;
        }
        const std::string& s = model.get_ref<const std::string&>();
        if (!seen.insert(s).second) {
          Fail(model_loc, absl::StrCat("duplicate model ", Quote(s)));
          continue;
        }
        plan.models.push_back(s);
      }
    }
  }

  if (const Json* kinds = Find(value, "key_kinds")) {
    ParseKeyKinds(*kinds, Member(loc, "key_kinds"), &plan.key_kinds, false);
  }
  if (const Json* kinds = Find(value, "past_due_blocks")) {
    ParseKeyKinds(*kinds, Member(loc, "past_due_blocks"), &plan.past_due_blocks,
                  true);
  }
  if (const Json* wallet = Find(value, "wallet")) {
    ParseWallet(*wallet, Member(loc, "wallet"), &plan);
  }
  if (const Json* gauges = Find(value, "gauges")) {
    ParseGauges(*gauges, Member(loc, "gauges"), &plan);
  }
  if (const Json* budget = Find(value, "max_subjects")) {
    const Loc budget_loc = Member(loc, "max_subjects");
    if (auto n = GetCount(*budget, budget_loc, false, nullptr)) {
      if (*n < 1 || *n > 0xffffffff) {
        Fail(budget_loc, "must be in [1, 4294967295]");
      } else {
        plan.max_subjects = *n;
      }
    }
  }
}

void CatalogParser::ParseLimit(const Json& value, const Loc& loc,
                               const LimitDefaults& defaults, size_t index,
                               Plan* plan, PlanLimits* seen) {
  if (!ExpectObject(value, loc)) return;
  const bool fields_known =
      CheckMembers(value, loc,
                   {"id", "scope", "meter", "window", "mode", "limit",
                    "soft_nudge", "grace", "status", "reason", "message",
                    "applies_to", "shadow", "redis_down", "tools", "models"});
  Limit& limit = plan->limits.emplace_back();
  bool counter_ok = true;

  if (const Json* scope = Find(value, "scope")) {
    auto s = GetEnum(*scope, Member(loc, "scope"), kScopeNames);
    counter_ok &= s.has_value();
    limit.scope = s.value_or(Scope::kAccount);
  }
  const Json* tools = Find(value, "tools");
  if (tools != nullptr) {
    const Loc tools_loc = Member(loc, "tools");
    for (auto& [name, name_loc] : GetNameList(*tools, tools_loc, "tool")) {
      limit.tools.push_back(name);
    }
    if (tools->is_array() && tools->empty()) {
      Fail(tools_loc, "must name at least one tool");
    }
    if (limit.tools.empty()) counter_ok = false;
    std::sort(limit.tools.begin(), limit.tools.end());
    limit.meter = "tool_calls";  // unless "meter" says otherwise
  }
  if (const Json* meter = Find(value, "meter")) {
    const Loc meter_loc = Member(loc, "meter");
    if (auto name = GetName(*meter, meter_loc)) {
      limit.meter = *name;
    } else {
      counter_ok = false;
    }
  }
  if (const Json* models = Find(value, "models")) {
    const Loc models_loc = Member(loc, "models");
    if (!models->is_array() || models->empty()) {
      Fail(models_loc, "must be a non-empty array of model names or patterns");
      counter_ok = false;
    } else {
      for (size_t m = 0; m < models->size(); ++m) {
        const Json& model = (*models)[m];
        if (!model.is_string() || model.get_ref<const std::string&>().empty() ||
            model.get_ref<const std::string&>().find_first_of(",{}") !=
                std::string::npos) {
          Fail(Element(models_loc, m),
               "must be a non-empty string without ',', '{' or '}'");
          counter_ok = false;
          continue;
        }
        limit.models.push_back(model.get_ref<const std::string&>());
      }
      std::sort(limit.models.begin(), limit.models.end());
      if (std::adjacent_find(limit.models.begin(), limit.models.end()) !=
          limit.models.end()) {
        Fail(models_loc, "lists a model twice");
        counter_ok = false;
      }
    }
  }

  if (counter_ok && !limit.tools.empty()) {
    // Each tool's meter is implied by the limit.
    for (const std::string& tool : limit.tools) {
      const std::string m = absl::StrCat(limit.meter, ".", tool);
      if (std::find(catalog_->meters_.begin(), catalog_->meters_.end(), m) ==
          catalog_->meters_.end()) {
        catalog_->meters_.push_back(m);
      }
    }
  }
  if (counter_ok) {
    if (has_meters_ && declared_meters_.count(limit.meter) == 0 &&
        limit.meter != "requests") {
      Fail(Member(loc, "meter"),
           absl::StrCat("unknown meter ", Quote(limit.meter),
                        " (not in meters)"));
      counter_ok = false;
    } else if (!has_meters_ &&
               std::find(catalog_->meters_.begin(), catalog_->meters_.end(),
                         limit.meter) == catalog_->meters_.end()) {
      catalog_->meters_.push_back(limit.meter);
    }
  }
  bool window_ok = true;
  if (const Json* window = Find(value, "window")) {
    const Loc window_loc = Member(loc, "window");
    std::optional<std::pair<WindowUnit, int64_t>> length;
    if (window->is_string()) {
      length = ParseWindowLength(window->get_ref<const std::string&>());
    }
    if (length.has_value()) {
      const int64_t ms = WindowLengthMs(length->first, 1) * length->second;
      if (length->second > kMaxWindowMs / 1000 || ms > kMaxWindowMs) {
        Fail(window_loc,
             absl::StrCat("a window of ",
                          Quote(window->get_ref<const std::string&>()),
                          " is longer than 3650 days"));
        window_ok = false;
      } else {
        limit.window = length->first;
        limit.window_count = static_cast<uint32_t>(length->second);
      }
    } else if (window->is_string() &&
               std::none_of(std::begin(kWindowNames), std::end(kWindowNames),
                            [&](const EnumName<WindowUnit>& n) {
                              return n.name ==
                                     window->get_ref<const std::string&>();
                            })) {
      std::string choices;
      for (const auto& n : kWindowNames)
        absl::StrAppend(&choices, n.name, ", ");
      Fail(window_loc,
           absl::StrCat("must be one of ", choices,
                        "or a whole length: digits then s, m, h or d "
                        "(\"5s\", \"15m\", \"6h\", \"7d\"); got ",
                        Quote(window->get_ref<const std::string&>())));
      window_ok = false;
    } else {
      auto w = GetEnum(*window, window_loc, kWindowNames);
      window_ok = w.has_value();
      limit.window = w.value_or(WindowUnit::kBillingPeriod);
    }
  }
  if (window_ok && limit.window == WindowUnit::kConcurrent &&
      limit.meter != "requests") {
    Fail(Member(loc, "meter"),
         absl::StrCat("a concurrent limit counts requests in flight; got "
                      "meter ",
                      Quote(limit.meter)));
    window_ok = false;
  }
  counter_ok &= window_ok;
  if (const Json* mode = Find(value, "mode")) {
    const Loc mode_loc = Member(loc, "mode");
    auto m = GetEnum(*mode, mode_loc, kModeNames);
    limit.mode = m.value_or(WindowMode::kFixed);
    if (!m.has_value()) {
      counter_ok = false;
    } else if (window_ok && limit.mode == WindowMode::kSliding &&
               (IsBillingWindow(limit.window) ||
                limit.window == WindowUnit::kConcurrent)) {
      Fail(mode_loc, absl::StrCat("sliding is not allowed with window ",
                                  ToAbsl(WindowUnitName(limit.window))));
      counter_ok = false;
    }
  }

  bool amount_ok = false;
  const Loc limit_loc = Member(loc, "limit");
  if (const Json* amount = Find(value, "limit"); amount == nullptr) {
    Fail(limit_loc, "missing required field");
  } else if (auto n = GetCount(*amount, limit_loc, true, &limit.unlimited)) {
    limit.limit = *n;
    amount_ok = true;
  }

  limit.soft_nudge = defaults.soft_nudge;
  if (const Json* nudge = Find(value, "soft_nudge")) {
    limit.soft_nudge = GetFraction(*nudge, Member(loc, "soft_nudge"), false)
                           .value_or(defaults.soft_nudge);
  }
  bool grace_ok = true;
  limit.grace = defaults.grace;
  if (const Json* grace = Find(value, "grace")) {
    auto g = GetFraction(*grace, Member(loc, "grace"), true);
    grace_ok = g.has_value();
    limit.grace = g.value_or(defaults.grace);
  }
  if (amount_ok && grace_ok && !limit.unlimited &&
      UnsaturatedHard(limit.limit, limit.grace) > kMaxCount) {
    Fail(loc, absl::StrCat("hard limit floor(limit * (1 + grace)) = ",
                           UnsaturatedHard(limit.limit, limit.grace),
                           " must be <= ", kMaxCount));
  }

  const bool billing = IsBillingWindow(limit.window);
  const bool concurrent = limit.window == WindowUnit::kConcurrent;
  limit.status = defaults.status.value_or(billing ? 402 : 429);
  if (const Json* status = Find(value, "status")) {
    limit.status =
        GetStatus(*status, Member(loc, "status")).value_or(limit.status);
  }
  limit.reason =
      defaults.reason.value_or(billing      ? "billing_limit_reached"
                               : concurrent ? "too_many_concurrent_requests"
                                            : "rate_limited");
  if (const Json* reason = Find(value, "reason")) {
    if (auto r = GetReason(*reason, Member(loc, "reason"))) {
      limit.reason = *r;
    }
  }
  if (const Json* message = Find(value, "message")) {
    limit.message = GetString(*message, Member(loc, "message")).value_or("");
  }
  if (const Json* traffic = Find(value, "applies_to")) {
    limit.applies_to =
        GetEnum(*traffic, Member(loc, "applies_to"), kTrafficNames)
            .value_or(Traffic::kAll);
  }
  if (const Json* shadow = Find(value, "shadow")) {
    limit.shadow = GetBool(*shadow, Member(loc, "shadow")).value_or(false);
  }
  if (const Json* down = Find(value, "redis_down")) {
    limit.redis_down =
        GetEnum(*down, Member(loc, "redis_down"), kRedisDownNames);
  }

  // A misspelt field ("windw") leaves a default in place of what was meant,
  // so such a limit's counter and default id are not compared with others.
  bool duplicate_counter = false;
  if (counter_ok && fields_known) {
    auto [it, inserted] = seen->counters.emplace(
        std::make_tuple(limit.scope, CounterMeterName(limit), limit.window,
                        limit.window_count, limit.mode),
        index);
    if (!inserted) {
      duplicate_counter = true;
      Fail(loc, absl::StrCat("same scope, meter, window and mode as limits[",
                             it->second, "]"));
    }
    counter_uses_.push_back(CounterUse{limit.scope, CounterMeterName(limit),
                                       limit.window, limit.window_count,
                                       limit.mode, loc});
  }

  const Loc id_loc = Member(loc, "id");
  const Json* id = Find(value, "id");
  if (id != nullptr) {
    if (auto name = GetName(*id, id_loc)) limit.id = *name;
  } else if (counter_ok) {
    limit.id = absl::StrCat(ToAbsl(ScopeName(limit.scope)), ".",
                            CounterMeterName(limit), ".",
                            WindowName(limit.window, limit.window_count));
  }
  if (!limit.id.empty() && !duplicate_counter &&
      (id != nullptr || fields_known)) {
    auto [it, inserted] = seen->ids.emplace(limit.id, index);
    if (!inserted) {
      Fail(id_loc, id != nullptr
                       ? absl::StrCat("duplicate limit id ", Quote(limit.id),
                                      " (also limits[", it->second, "])")
                       : absl::StrCat("default id ", Quote(limit.id),
                                      " is taken by limits[", it->second,
                                      "]; give this limit an \"id\""));
    }
  }
}

void CatalogParser::ParseDefaults(const Json& value, const Loc& loc,
                                  bool per_plan, LimitDefaults* defaults) {
  if (!ExpectObject(value, loc)) return;
  if (per_plan) {
    CheckMembers(value, loc, {"soft_nudge", "grace", "status", "reason"});
  } else {
    CheckMembers(value, loc, {"soft_nudge", "grace"});
  }
  if (const Json* nudge = Find(value, "soft_nudge")) {
    if (auto v = GetFraction(*nudge, Member(loc, "soft_nudge"), false)) {
      defaults->soft_nudge = *v;
    }
  }
  if (const Json* grace = Find(value, "grace")) {
    if (auto v = GetFraction(*grace, Member(loc, "grace"), true)) {
      defaults->grace = *v;
    }
  }
  if (!per_plan) return;
  if (const Json* status = Find(value, "status")) {
    if (auto v = GetStatus(*status, Member(loc, "status"))) {
      defaults->status = *v;
    }
  }
  if (const Json* reason = Find(value, "reason")) {
    if (auto v = GetReason(*reason, Member(loc, "reason"))) {
      defaults->reason = *v;
    }
  }
}

void CatalogParser::ParseKeyKinds(const Json& value, const Loc& loc,
                                  std::vector<KeyKind>* kinds, bool blocking) {
  kinds->clear();
  if (!ExpectArray(value, loc)) return;
  if (value.empty() && !blocking) {
    Fail(loc, "must name at least one key kind");
    return;
  }
  for (size_t i = 0; i < value.size(); ++i) {
    const Loc kind_loc = Element(loc, i);
    auto kind = GetEnum(value[i], kind_loc, kKeyKindNames);
    if (!kind.has_value()) continue;
    if (blocking && *kind == KeyKind::kInternal) {
      Fail(kind_loc, "internal keys are never limited, so never blocked");
      continue;
    }
    if (std::find(kinds->begin(), kinds->end(), *kind) != kinds->end()) {
      Fail(kind_loc, absl::StrCat("duplicate key kind ",
                                  Quote(value[i].get<std::string>())));
      continue;
    }
    kinds->push_back(*kind);
  }
}

void CatalogParser::ParsePrices(const Json& value, const Loc& loc) {
  if (!ExpectArray(value, loc)) return;
  for (size_t i = 0; i < value.size(); ++i) {
    const Loc price_loc = Element(loc, i);
    const Json& entry = value[i];
    if (!ExpectObject(entry, price_loc)) continue;
    CheckMembers(entry, price_loc,
                 {"models", "input", "cached_input", "output", "reasoning"});
    Price& price = catalog_->prices_.emplace_back();
    const Loc models_loc = Member(price_loc, "models");
    if (const Json* models = Find(entry, "models"); models == nullptr) {
      Fail(models_loc, "missing required field");
    } else if (!models->is_array() || models->empty()) {
      Fail(models_loc, "must be a non-empty array of model names or patterns");
    } else {
      for (size_t m = 0; m < models->size(); ++m) {
        const Json& model = (*models)[m];
        if (!model.is_string() || model.get_ref<const std::string&>().empty()) {
          Fail(Element(models_loc, m), "must be a non-empty string");
          continue;
        }
        price.models.push_back(model.get_ref<const std::string&>());
      }
    }
    const auto rate = [&](const char* field, bool required,
                          int64_t fallback) -> int64_t {
      const Loc rate_loc = Member(price_loc, field);
      const Json* v = Find(entry, field);
      if (v == nullptr) {
        if (required) Fail(rate_loc, "missing required field");
        return fallback;
      }
      return GetCount(*v, rate_loc, false, nullptr).value_or(fallback);
    };
    price.input = rate("input", true, 0);
    price.output = rate("output", true, 0);
    price.cached_input = rate("cached_input", false, price.input);
    price.reasoning = rate("reasoning", false, price.output);
  }
  // Every model a plan's allowlist names has a price: an unpriced managed
  // model would be billed nothing. A pattern in an allowlist counts as
  // priced when a price pattern matches it read as a name ("gpt-*" prices
  // "gpt-4o-*").
  for (size_t p = 0; p < catalog_->plans_.size(); ++p) {
    const Plan& plan = catalog_->plans_[p];
    for (size_t m = 0; m < plan.models.size(); ++m) {
      if (catalog_->PriceFor(plan.models[m]) == nullptr) {
        Fail(Element(Member(Element(Member(Loc(), "plans"), p), "models"), m),
             absl::StrCat("no price for model ", Quote(plan.models[m]),
                          " (add it to prices, or a \"*\" default)"));
      }
    }
  }
}

void CatalogParser::ParseWallet(const Json& value, const Loc& loc, Plan* plan) {
  if (!ExpectObject(value, loc)) return;
  CheckMembers(value, loc, {"required", "min_balance_micros"});
  if (const Json* required = Find(value, "required")) {
    plan->wallet.required =
        GetBool(*required, Member(loc, "required")).value_or(false);
  }
  if (const Json* balance = Find(value, "min_balance_micros")) {
    plan->wallet.min_balance_micros =
        GetCount(*balance, Member(loc, "min_balance_micros"), false, nullptr)
            .value_or(0);
  }
}

void CatalogParser::ParseGauges(const Json& value, const Loc& loc, Plan* plan) {
  if (!ExpectObject(value, loc)) return;
  std::vector<std::pair<int, Gauge>> gauges;
  for (auto it = value.begin(); it != value.end(); ++it) {
    const Loc gauge_loc = Member(loc, it.key());
    if (!IsName(it.key())) {
      Fail(gauge_loc, absl::StrCat("gauge name must match ", kNamePattern));
      continue;
    }
    Gauge gauge;
    gauge.name = it.key();
    if (auto cap = GetCount(it.value(), gauge_loc, true, &gauge.unlimited)) {
      gauge.cap = *cap;
      gauges.emplace_back(gauge_loc.order.back(), std::move(gauge));
    }
  }
  std::sort(gauges.begin(), gauges.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [position, gauge] : gauges) {
    plan->gauges.push_back(std::move(gauge));
  }
}

void CatalogParser::ParseUpgradeOrder(const Json* value, const Loc& loc) {
  std::vector<std::pair<size_t, std::string>> by_position;
  for (const auto& [id, index] : plan_ids_) by_position.emplace_back(index, id);
  std::sort(by_position.begin(), by_position.end());

  if (value == nullptr) {
    for (auto& [index, id] : by_position) {
      catalog_->upgrade_order_.push_back(id);
    }
    return;
  }
  if (!value->is_array()) {
    Fail(loc, "must be an array of plan ids");
    return;
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < value->size(); ++i) {
    const Loc id_loc = Element(loc, i);
    auto id = GetString((*value)[i], id_loc);
    if (!id.has_value()) continue;
    if (plan_ids_.count(*id) == 0) {
      Fail(id_loc, absl::StrCat("unknown plan ", Quote(*id)));
    } else if (!seen.insert(*id).second) {
      Fail(id_loc, absl::StrCat("duplicate plan ", Quote(*id)));
    } else {
      catalog_->upgrade_order_.push_back(*id);
    }
  }
  for (auto& [index, id] : by_position) {
    if (seen.count(id) == 0) {
      Fail(loc, absl::StrCat("missing plan ", Quote(id)));
    }
  }
}

void CatalogParser::CheckCounterBudget() {
  struct Budget {
    std::set<std::tuple<std::string, WindowUnit, uint32_t, WindowMode>>
        counters;
    int cells = 0;
    const Loc* first_over = nullptr;
  };
  Budget budgets[kNumScopes];
  for (const CounterUse& use : counter_uses_) {
    Budget& budget = budgets[static_cast<int>(use.scope)];
    if (!budget.counters
             .emplace(use.meter, use.window, use.window_count, use.mode)
             .second) {
      continue;
    }
    budget.cells += use.mode == WindowMode::kSliding ? 2 : 1;
    if (budget.cells > kCellsPerSubject && budget.first_over == nullptr) {
      budget.first_over = &use.loc;
    }
  }
  for (int s = 0; s < kNumScopes; ++s) {
    if (budgets[s].first_over == nullptr) continue;
    Fail(*budgets[s].first_over,
         absl::StrCat("scope ", ToAbsl(ScopeName(static_cast<Scope>(s))),
                      " needs ", budgets[s].cells,
                      " counter cells across the catalog; at most ",
                      kCellsPerSubject));
  }
}

bool CatalogParser::CheckMembers(
    const Json& object, const Loc& loc,
    std::initializer_list<std::string_view> known) {
  bool ok = true;
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (std::find(known.begin(), known.end(), it.key()) == known.end()) {
      Fail(Member(loc, it.key()), "unknown field");
      ok = false;
    }
  }
  return ok;
}

bool CatalogParser::ExpectObject(const Json& value, const Loc& loc) {
  if (value.is_object()) return true;
  Fail(loc, "must be an object");
  return false;
}

bool CatalogParser::ExpectArray(const Json& value, const Loc& loc) {
  if (value.is_array()) return true;
  Fail(loc, "must be an array");
  return false;
}

std::optional<std::string> CatalogParser::GetString(const Json& value,
                                                    const Loc& loc) {
  if (value.is_string()) return value.get<std::string>();
  Fail(loc, "must be a string");
  return std::nullopt;
}

std::optional<std::string> CatalogParser::GetName(const Json& value,
                                                  const Loc& loc) {
  auto s = GetString(value, loc);
  if (!s.has_value()) return std::nullopt;
  if (!IsName(*s)) {
    Fail(loc, absl::StrCat("must match ", kNamePattern));
    return std::nullopt;
  }
  return s;
}

std::optional<bool> CatalogParser::GetBool(const Json& value, const Loc& loc) {
  if (value.is_boolean()) return value.get<bool>();
  Fail(loc, "must be true or false");
  return std::nullopt;
}

std::optional<int64_t> CatalogParser::GetModelsPerAccount(const Json& value,
                                                          const Loc& loc) {
  if (value.is_boolean()) {
    return value.get<bool>() ? kDefaultModelsPerAccount : 0;
  }
  if (value.is_number_integer() && value.get<int64_t>() >= 1 &&
      value.get<int64_t>() <= kMaxModelsPerAccount) {
    return value.get<int64_t>();
  }
  Fail(loc, absl::StrCat("must be true, false or a number of models in [1, ",
                         kMaxModelsPerAccount, "]"));
  return std::nullopt;
}

std::optional<int64_t> CatalogParser::GetCount(const Json& value,
                                               const Loc& loc,
                                               bool allow_unlimited,
                                               bool* unlimited) {
  const absl::string_view type_error =
      allow_unlimited ? "must be a non-negative integer or \"unlimited\""
                      : "must be a non-negative integer";
  const std::string too_large = absl::StrCat("must be <= ", kMaxCount);
  if (allow_unlimited && value.is_string() &&
      value.get_ref<const std::string&>() == "unlimited") {
    *unlimited = true;
    return 0;
  }
  if (value.is_number_unsigned()) {
    if (value.get<uint64_t>() > static_cast<uint64_t>(kMaxCount)) {
      Fail(loc, too_large);
      return std::nullopt;
    }
    return static_cast<int64_t>(value.get<uint64_t>());
  }
  if (value.is_number_integer()) {
    const int64_t n = value.get<int64_t>();
    if (n < 0) {
      Fail(loc, type_error);
      return std::nullopt;
    }
    if (n > kMaxCount) {
      Fail(loc, too_large);
      return std::nullopt;
    }
    return n;
  }
  if (value.is_number_float()) {
    const double d = value.get<double>();
    if (!(d >= 0) || d != std::floor(d)) {
      Fail(loc, type_error);
      return std::nullopt;
    }
    if (d > static_cast<double>(kMaxCount)) {
      Fail(loc, too_large);
      return std::nullopt;
    }
    return static_cast<int64_t>(d);
  }
  Fail(loc, type_error);
  return std::nullopt;
}

std::optional<double> CatalogParser::GetFraction(const Json& value,
                                                 const Loc& loc,
                                                 bool zero_allowed) {
  const absl::string_view range = zero_allowed ? "[0, 1]" : "(0, 1]";
  if (!value.is_number()) {
    Fail(loc, absl::StrCat("must be a number in ", range));
    return std::nullopt;
  }
  const double d = value.get<double>();
  if (!(zero_allowed ? d >= 0 : d > 0) || !(d <= 1)) {
    Fail(loc, absl::StrCat("must be in ", range));
    return std::nullopt;
  }
  return d;
}

std::optional<int> CatalogParser::GetStatus(const Json& value, const Loc& loc) {
  if (value.is_number()) {
    const double d = value.get<double>();
    if (d >= 400 && d <= 499 && d == std::floor(d)) {
      return static_cast<int>(d);
    }
  }
  Fail(loc, "must be an integer in [400, 499]");
  return std::nullopt;
}

std::optional<std::string> CatalogParser::GetReason(const Json& value,
                                                    const Loc& loc) {
  auto s = GetString(value, loc);
  if (!s.has_value()) return std::nullopt;
  if (!IsReason(*s)) {
    Fail(loc, absl::StrCat("must match ", kReasonPattern));
    return std::nullopt;
  }
  return s;
}

template <typename E, size_t N>
std::optional<E> CatalogParser::GetEnum(const Json& value, const Loc& loc,
                                        const EnumName<E> (&names)[N]) {
  std::string choices;
  for (size_t i = 0; i < N; ++i) {
    absl::StrAppend(&choices, i == 0 ? "" : ", ", names[i].name);
  }
  if (!value.is_string()) {
    Fail(loc, absl::StrCat("must be one of ", choices));
    return std::nullopt;
  }
  const std::string& s = value.get_ref<const std::string&>();
  for (const EnumName<E>& name : names) {
    if (name.name == s) return name.value;
  }
  Fail(loc, absl::StrCat("must be one of ", choices, " (got ", Quote(s), ")"));
  return std::nullopt;
}

std::vector<std::pair<std::string, Loc>> CatalogParser::GetNameList(
    const Json& value, const Loc& loc, absl::string_view what) {
  std::vector<std::pair<std::string, Loc>> names;
  if (!ExpectArray(value, loc)) return names;
  std::set<std::string> seen;
  for (size_t i = 0; i < value.size(); ++i) {
    Loc name_loc = Element(loc, i);
    auto name = GetName(value[i], name_loc);
    if (!name.has_value()) continue;
    if (!seen.insert(*name).second) {
      Fail(name_loc, absl::StrCat("duplicate ", what, " ", Quote(*name)));
      continue;
    }
    names.emplace_back(std::move(*name), std::move(name_loc));
  }
  return names;
}

int64_t Limit::hard() const {
  if (unlimited) return kMaxCount;
  return std::min(UnsaturatedHard(limit, grace), kMaxCount);
}

absl::StatusOr<std::shared_ptr<const Catalog>> Catalog::Parse(
    std::string_view json) {
  CatalogParser parser;
  return parser.Parse(json);
}

absl::StatusOr<std::shared_ptr<const Catalog>> Catalog::LoadFile(
    const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    const int error = errno;
    const std::string message = absl::StrCat(
        path, ": cannot open: ", std::generic_category().message(error));
    if (error == ENOENT || error == ENOTDIR) {
      return absl::NotFoundError(message);
    }
    return absl::UnavailableError(message);
  }
  std::string text;
  char buffer[1 << 16];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) {
    text.append(buffer, n);
  }
  const int read_error = std::ferror(file) ? errno : 0;
  std::fclose(file);
  if (read_error != 0) {
    return absl::UnavailableError(absl::StrCat(
        path, ": cannot read: ", std::generic_category().message(read_error)));
  }
  auto catalog = Parse(text);
  if (catalog.ok()) return catalog;
  std::string message;
  for (absl::string_view line :
       absl::StrSplit(catalog.status().message(), '\n')) {
    absl::StrAppend(&message, message.empty() ? "" : "\n", path, ": ", line);
  }
  return absl::Status(catalog.status().code(), message);
}

const Price* Catalog::PriceFor(std::string_view model) const {
  for (const Price& price : prices_) {
    for (const std::string& pattern : price.models) {
      if (internal::ModelMatches(pattern, model)) return &price;
    }
  }
  return nullptr;
}

int64_t CostMicros(const Price& price, const TokenCounts& tokens) {
  __extension__ typedef unsigned __int128 U128;
  const auto clamp = [](int64_t v) {
    return static_cast<uint64_t>(std::max<int64_t>(v, 0));
  };
  const uint64_t input = clamp(tokens.input);
  const uint64_t cached = std::min(clamp(tokens.cached_input), input);
  const uint64_t output = clamp(tokens.output);
  const uint64_t reasoning = std::min(clamp(tokens.reasoning), output);
  const U128 total = U128{input - cached} * clamp(price.input) +
                     U128{cached} * clamp(price.cached_input) +
                     U128{output - reasoning} * clamp(price.output) +
                     U128{reasoning} * clamp(price.reasoning);
  const U128 micros = (total + 999'999) / 1'000'000;  // per 1M, rounded up
  return micros > static_cast<U128>(kMaxCount) ? kMaxCount
                                               : static_cast<int64_t>(micros);
}

const Plan* Catalog::FindPlan(std::string_view id) const {
  const int index = PlanIndex(id);
  return index < 0 ? nullptr : &plans_[index];
}

int Catalog::PlanIndex(std::string_view id) const {
  for (size_t i = 0; i < plans_.size(); ++i) {
    if (plans_[i].id == id) return static_cast<int>(i);
  }
  return -1;
}

int Catalog::MeterIndex(std::string_view name) const {
  for (size_t i = 0; i < meters_.size(); ++i) {
    if (meters_[i] == name) return static_cast<int>(i);
  }
  return -1;
}

const Plan* Catalog::FirstUpgrade(
    std::string_view from_plan,
    const std::function<bool(const Plan&)>& fits) const {
  size_t start = 0;
  if (!from_plan.empty()) {
    auto it =
        std::find(upgrade_order_.begin(), upgrade_order_.end(), from_plan);
    if (it != upgrade_order_.end()) start = it - upgrade_order_.begin() + 1;
  }
  for (size_t i = start; i < upgrade_order_.size(); ++i) {
    const Plan* plan = FindPlan(upgrade_order_[i]);
    if (plan != nullptr && fits(*plan)) return plan;
  }
  return nullptr;
}

const Plan* Catalog::CheapestPlanWithFeature(std::string_view feature,
                                             std::string_view from_plan) const {
  return FirstUpgrade(from_plan, [&](const Plan& plan) {
    return std::find(plan.features.begin(), plan.features.end(), feature) !=
           plan.features.end();
  });
}

const Plan* Catalog::CheapestPlanWithGauge(std::string_view gauge,
                                           int64_t count,
                                           std::string_view from_plan) const {
  return FirstUpgrade(from_plan, [&](const Plan& plan) {
    bool fits = true;  // a plan that does not cap the gauge allows any count
    for (const Gauge& g : plan.gauges) {
      if (g.name == gauge) fits = g.unlimited || g.cap >= count;
    }
    return fits;
  });
}

std::string_view ScopeName(Scope scope) {
  switch (scope) {
    case Scope::kAccount:
      return "account";
    case Scope::kProject:
      return "project";
    case Scope::kKey:
      return "key";
    case Scope::kUser:
      return "user";
  }
  return "unknown";
}

std::string CounterMeterName(const Limit& limit) {
  std::string name = limit.meter;
  if (!limit.tools.empty()) {
    absl::StrAppend(&name, "[", absl::StrJoin(limit.tools, ","), "]");
  }
  if (!limit.models.empty()) {
    absl::StrAppend(&name, "{", absl::StrJoin(limit.models, ","), "}");
  }
  return name;
}

std::string_view WindowUnitName(WindowUnit unit) {
  switch (unit) {
    case WindowUnit::kBillingPeriod:
      return "billing_period";
    case WindowUnit::kAnnual:
      return "annual";
    case WindowUnit::kDay:
      return "day";
    case WindowUnit::kHour:
      return "hour";
    case WindowUnit::kMinute:
      return "minute";
    case WindowUnit::kSecond:
      return "second";
    case WindowUnit::kConcurrent:
      return "concurrent";
  }
  return "unknown";
}

std::string WindowName(WindowUnit unit, uint32_t count) {
  if (count == 1) return std::string(WindowUnitName(unit));
  char suffix = 's';
  switch (unit) {
    case WindowUnit::kDay:
      suffix = 'd';
      break;
    case WindowUnit::kHour:
      suffix = 'h';
      break;
    case WindowUnit::kMinute:
      suffix = 'm';
      break;
    default:
      break;
  }
  return absl::StrCat(count, std::string(1, suffix));
}

int64_t WindowLengthMs(WindowUnit unit, uint32_t count) {
  return internal::FixedWindowMs(unit) * int64_t{count};
}

std::string_view WindowModeName(WindowMode mode) {
  switch (mode) {
    case WindowMode::kFixed:
      return "fixed";
    case WindowMode::kSliding:
      return "sliding";
  }
  return "unknown";
}

std::string_view RedisDownPolicyName(RedisDownPolicy policy) {
  for (const auto& [name, value] : kRedisDownNames) {
    if (value == policy) return std::string_view(name.data(), name.size());
  }
  return "fail_open";
}

RedisDownPolicy DefaultRedisDownPolicy(WindowUnit window) {
  switch (window) {
    case WindowUnit::kBillingPeriod:
    case WindowUnit::kAnnual:
    case WindowUnit::kDay:
      return RedisDownPolicy::kLocalShare;
    default:
      return RedisDownPolicy::kFailOpen;
  }
}

std::string_view TrafficName(Traffic traffic) {
  switch (traffic) {
    case Traffic::kAll:
      return "all";
    case Traffic::kManaged:
      return "managed";
    case Traffic::kByok:
      return "byok";
  }
  return "unknown";
}

std::string_view KeyKindName(KeyKind kind) {
  switch (kind) {
    case KeyKind::kLive:
      return "live";
    case KeyKind::kTest:
      return "test";
    case KeyKind::kInternal:
      return "internal";
  }
  return "unknown";
}

}  // namespace plangate
