// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "trace.h"

#include <algorithm>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <new>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "fmt/format.h"
#include "internal/json_path.h"
#include "internal/period.h"
#include "nlohmann/json.hpp"

namespace plangate::replay {
namespace {

using Json = nlohmann::json;

// Wallet amounts (micro-units) a trace may name: up to about 1.15e18.
constexpr int64_t kMaxMicros = int64_t{1} << 60;
// At most this many problems are listed; parsing stops after them.
constexpr size_t kMaxErrors = 100;
// Objects and arrays nested deeper than this are not indexed by path
// (nothing valid nests that deep).
constexpr size_t kMaxIndexedDepth = 8;

using internal::JsonElementPath;
using internal::JsonMemberPath;

std::string Quote(std::string_view s) { return internal::JsonQuote(s); }

// Where each value of a valid JSON text starts (its line), by path, and
// which object keys are repeated (nlohmann::json keeps only the last one).
// Walks the text iteratively, so any nesting depth is safe.
class JsonLocator {
 public:
  struct Duplicate {
    std::string path;
    int line;
  };

  JsonLocator(std::string_view text, std::string root) : s_(text) {
    Run(std::move(root));
  }

  int LineOf(const std::string& path, int fallback) const {
    auto it = lines_.find(path);
    return it == lines_.end() ? fallback : it->second;
  }
  const std::vector<Duplicate>& duplicates() const { return duplicates_; }

 private:
  struct Frame {
    bool is_array = false;
    bool indexed = false;
    std::string path;
    size_t next_index = 0;
    std::set<std::string> keys;
  };

  void SkipSpace() {
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (c == '\n') {
        ++line_;
      } else if (c != ' ' && c != '\t' && c != '\r') {
        break;
      }
      ++pos_;
    }
  }

  // At a '"': moves past the string and returns it, quotes included.
  std::string_view SkipString() {
    const size_t start = pos_++;
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (c == '\\') {
        pos_ += 2;
        continue;
      }
      ++pos_;
      if (c == '"') break;
    }
    pos_ = std::min(pos_, s_.size());
    return s_.substr(start, pos_ - start);
  }

  static std::string DecodeKey(std::string_view raw) {
    if (raw.size() >= 2 && raw.find('\\') == std::string_view::npos) {
      return std::string(raw.substr(1, raw.size() - 2));
    }
    try {
      const Json key = Json::parse(raw);
      if (key.is_string()) return key.get<std::string>();
    } catch (const std::exception&) {
    }
    return std::string(raw);
  }

  void BeginValue(std::string path, bool indexed) {
    SkipSpace();
    if (pos_ >= s_.size()) return;
    if (indexed) lines_.emplace(path, line_);
    const char c = s_[pos_];
    if (c == '{' || c == '[') {
      ++pos_;
      Frame frame;
      frame.is_array = c == '[';
      frame.indexed = indexed && stack_.size() < kMaxIndexedDepth;
      if (frame.indexed) frame.path = std::move(path);
      stack_.push_back(std::move(frame));
    } else if (c == '"') {
      SkipString();
    } else {
      while (pos_ < s_.size()) {
        const char d = s_[pos_];
        if (d == ',' || d == ']' || d == '}' || d == ' ' || d == '\t' ||
            d == '\r' || d == '\n') {
          break;
        }
        ++pos_;
      }
    }
  }

  void Run(std::string root) {
    BeginValue(std::move(root), true);
    while (!stack_.empty()) {
      SkipSpace();
      if (pos_ >= s_.size()) return;
      char c = s_[pos_];
      if (c == ']' || c == '}') {
        ++pos_;
        stack_.pop_back();
        continue;
      }
      if (c == ',') {
        ++pos_;
        SkipSpace();
        if (pos_ >= s_.size()) return;
        c = s_[pos_];
      }
      Frame& frame = stack_.back();
      const bool indexed = frame.indexed;
      if (frame.is_array) {
        std::string path =
            indexed ? JsonElementPath(frame.path, frame.next_index) : "";
        ++frame.next_index;
        BeginValue(std::move(path), indexed);
        continue;
      }
      if (c != '"') return;  // not valid JSON: give up quietly
      const int key_line = line_;
      const std::string_view raw = SkipString();
      SkipSpace();
      if (pos_ < s_.size() && s_[pos_] == ':') ++pos_;
      std::string path;
      if (indexed) {
        std::string key = DecodeKey(raw);
        path = JsonMemberPath(frame.path, key);
        if (!frame.keys.insert(std::move(key)).second) {
          duplicates_.push_back({path, key_line});
        }
      }
      BeginValue(std::move(path), indexed);
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
  int line_ = 1;
  std::vector<Frame> stack_;
  std::map<std::string, int> lines_;
  std::vector<Duplicate> duplicates_;
};

// The problems of one file, each "FILE:LINE: field: reason", in line order.
class Diagnostics {
 public:
  explicit Diagnostics(std::string_view file) : file_(file) {}

  void Add(int line, std::string_view field, std::string_view reason) {
    if (errors_.size() >= kMaxErrors) {
      truncated_ = true;
      return;
    }
    errors_.push_back(
        {line, fmt::format("{}:{}: {}: {}", file_, line, field, reason)});
  }
  bool full() const { return errors_.size() >= kMaxErrors; }
  // Notes that input was left unread because the list is full.
  void Truncate() { truncated_ = true; }
  bool empty() const { return errors_.empty(); }

  absl::Status ToStatus() {
    std::stable_sort(
        errors_.begin(), errors_.end(),
        [](const auto& a, const auto& b) { return a.first < b.first; });
    std::string text;
    for (const auto& [line, error] : errors_) {
      if (!text.empty()) text += '\n';
      text += error;
    }
    if (truncated_) {
      text += fmt::format("\n{}: too many errors; stopped after {}", file_,
                          kMaxErrors);
    }
    return absl::InvalidArgumentError(text);
  }

 private:
  std::string file_;
  std::vector<std::pair<int, std::string>> errors_;
  bool truncated_ = false;
};

// nlohmann's "[json.exception.parse_error.101] parse error at line 2,
// column 5: syntax error ..." as {2, 5, "syntax error ..."}.
struct JsonSyntaxError {
  int line = 1;
  int column = 0;
  std::string text;
};

JsonSyntaxError DescribeParseError(std::string_view raw) {
  JsonSyntaxError e;
  // The input the parser quotes is cut to internal::kMaxQuotedBytes.
  const std::string bounded = internal::BoundedJsonErrorText(raw);
  std::string_view what = bounded;
  auto number_after = [&](std::string_view label, int* out) {
    if (what.substr(0, label.size()) != label) return false;
    what.remove_prefix(label.size());
    int64_t n = 0;
    size_t digits = 0;
    while (digits < what.size() && what[digits] >= '0' && what[digits] <= '9' &&
           n < 1'000'000'000) {
      n = n * 10 + (what[digits] - '0');
      ++digits;
    }
    if (digits == 0) return false;
    what.remove_prefix(digits);
    *out = static_cast<int>(n);
    return true;
  };
  if (number_after("parse error at line ", &e.line)) {
    number_after(", column ", &e.column);
    if (what.substr(0, 2) == ": ") what.remove_prefix(2);
  } else if (what.substr(0, 13) == "parse error: ") {
    what.remove_prefix(13);
  }
  e.text = std::string(what);
  return e;
}

std::string InvalidJson(const JsonSyntaxError& e) {
  return e.column > 0
             ? fmt::format("invalid JSON at column {}: {}", e.column, e.text)
             : fmt::format("invalid JSON: {}", e.text);
}

// Parses `text` (no exceptions escape). On a syntax error fills *error.
std::optional<Json> ParseJson(std::string_view text, JsonSyntaxError* error) {
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::parse_error& e) {
    *error = DescribeParseError(e.what());
  } catch (const std::bad_alloc&) {
    *error = {1, 0, "out of memory"};
  } catch (const std::exception& e) {
    *error = DescribeParseError(e.what());
  }
  return std::nullopt;
}

std::optional<int64_t> AsInt(const Json& v) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return std::nullopt;
    }
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  return std::nullopt;
}

const Json* Member(const Json& object, std::string_view key) {
  auto it = object.find(std::string(key));
  return it == object.end() ? nullptr : &*it;
}

constexpr char kTimeReason[] =
    "must be an integer (ms) or an RFC 3339 UTC time";

// A time: integer ms or RFC 3339 UTC. On error returns nullopt and sets
// *reason.
std::optional<int64_t> TimeOf(const Json& v, std::string* reason) {
  if (v.is_string()) {
    auto ms = ParseRfc3339(v.get_ref<const std::string&>());
    if (!ms) *reason = kTimeReason;
    return ms;
  }
  if (v.is_number_integer()) {
    const std::optional<int64_t> ms = AsInt(v);
    if (!ms || *ms < 0 || *ms > kMaxTimeMs) {
      *reason = fmt::format("must be in [0, {}] (ms)", kMaxTimeMs);
      return std::nullopt;
    }
    return ms;
  }
  *reason = kTimeReason;
  return std::nullopt;
}

// Reads typed values of one object, reporting problems at its line.
class Reader {
 public:
  Reader(Diagnostics* diag, int line) : diag_(diag), line_(line) {}

  void set_line(int line) { line_ = line; }
  void Fail(std::string_view field, std::string_view reason) {
    diag_->Add(line_, field, reason);
  }

  std::optional<std::string> String(const Json& v, std::string_view field,
                                    bool non_empty) {
    if (!v.is_string() ||
        (non_empty && v.get_ref<const std::string&>().empty())) {
      Fail(field,
           non_empty ? "must be a non-empty string" : "must be a string");
      return std::nullopt;
    }
    return v.get<std::string>();
  }

  std::optional<bool> Bool(const Json& v, std::string_view field) {
    if (!v.is_boolean()) {
      Fail(field, "must be true or false");
      return std::nullopt;
    }
    return v.get<bool>();
  }

  std::optional<int64_t> Int(const Json& v, std::string_view field, int64_t lo,
                             int64_t hi) {
    const std::optional<int64_t> n = AsInt(v);
    if (!n) {
      Fail(field,
           lo == 0 ? "must be a non-negative integer" : "must be an integer");
      return std::nullopt;
    }
    if (*n < lo || *n > hi) {
      Fail(field, lo != 0  ? fmt::format("must be in [{}, {}]", lo, hi)
                  : *n < 0 ? std::string("must be a non-negative integer")
                           : fmt::format("must be <= {}", hi));
      return std::nullopt;
    }
    return n;
  }

  std::optional<int64_t> Time(const Json& v, std::string_view field) {
    std::string reason;
    std::optional<int64_t> ms = TimeOf(v, &reason);
    if (!ms) Fail(field, reason);
    return ms;
  }

  template <typename E, size_t N>
  std::optional<E> Enum(const Json& v, std::string_view field,
                        const std::pair<std::string_view, E> (&names)[N]) {
    if (v.is_string()) {
      for (const auto& [name, value] : names) {
        if (v.get_ref<const std::string&>() == name) return value;
      }
    }
    std::string list;
    for (const auto& [name, value] : names) {
      if (!list.empty()) list += ", ";
      list += name;
    }
    Fail(field, v.is_string()
                    ? fmt::format("must be one of {} (got {})", list,
                                  Quote(v.get_ref<const std::string&>()))
                    : fmt::format("must be one of {}", list));
    return std::nullopt;
  }

 private:
  Diagnostics* diag_;
  int line_;
};

std::optional<std::string> PlanRef(Reader& r, const Json& v,
                                   std::string_view field,
                                   const Catalog& catalog, bool allow_empty) {
  std::optional<std::string> plan = r.String(v, field, !allow_empty);
  if (!plan || plan->empty()) return plan;
  if (catalog.FindPlan(*plan) == nullptr) {
    r.Fail(field, fmt::format("unknown plan {}", Quote(*plan)));
    return std::nullopt;
  }
  return plan;
}

// "overrides": [{"limit_id": "...", "user": "...", "limit": N | "unlimited",
// "grace": G}]. `plans` (may be empty) are the plans whose limits the ids
// must name; `line_of` gives the line of a path.
std::optional<std::vector<LimitOverride>> Overrides(
    Reader& r, const Json& v, const std::string& field,
    const std::vector<const Plan*>& plans,
    const std::function<int(const std::string&)>& line_of) {
  if (!v.is_array()) {
    r.Fail(field, "must be an array of overrides");
    return std::nullopt;
  }
  std::vector<LimitOverride> out;
  bool ok = true;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string path = JsonElementPath(field, i);
    r.set_line(line_of(path));
    const Json& o = v[i];
    if (!o.is_object()) {
      r.Fail(path, "must be a JSON object");
      ok = false;
      continue;
    }
    LimitOverride lo;
    bool has_limit = false;
    for (const auto& [name, value] : o.items()) {
      const std::string member = JsonMemberPath(path, name);
      r.set_line(line_of(member));
      if (name == "limit_id") {
        if (auto id = r.String(value, member, true)) {
          lo.limit_id = std::move(*id);
        } else {
          ok = false;
        }
      } else if (name == "user") {
        if (auto user = r.String(value, member, true)) {
          lo.user_id = std::move(*user);
        } else {
          ok = false;
        }
      } else if (name == "limit") {
        has_limit = true;
        if (value.is_string() &&
            value.get_ref<const std::string&>() == "unlimited") {
          lo.unlimited = true;
        } else if (AsInt(value) && *AsInt(value) >= 0 &&
                   *AsInt(value) <= kMaxCount) {
          lo.limit = *AsInt(value);
        } else {
          r.Fail(member, fmt::format("must be an integer in [0, {}] or "
                                     "\"unlimited\"",
                                     kMaxCount));
          ok = false;
        }
      } else if (name == "grace") {
        if (value.is_number() && value.get<double>() >= 0 &&
            value.get<double>() <= 1) {
          lo.grace = value.get<double>();
        } else {
          r.Fail(member, "must be in [0, 1]");
          ok = false;
        }
      } else {
        r.Fail(member, "unknown field");
        ok = false;
      }
    }
    r.set_line(line_of(path));
    if (o.find("limit_id") == o.end()) {
      r.Fail(JsonMemberPath(path, "limit_id"), "missing required field");
      ok = false;
    }
    if (!has_limit) {
      r.Fail(JsonMemberPath(path, "limit"), "missing required field");
      ok = false;
    }
    if (!lo.limit_id.empty() && !plans.empty()) {
      const Limit* target = nullptr;
      for (const Plan* plan : plans) {
        for (const Limit& l : plan->limits) {
          if (target == nullptr && l.id == lo.limit_id) target = &l;
        }
      }
      r.set_line(line_of(JsonMemberPath(path, "limit_id")));
      if (target == nullptr) {
        r.Fail(JsonMemberPath(path, "limit_id"),
               fmt::format("no limit {} in plan {}", Quote(lo.limit_id),
                           Quote(plans.front()->id)));
        ok = false;
      } else if (!lo.user_id.empty() && target->scope != Scope::kUser) {
        r.set_line(line_of(JsonMemberPath(path, "user")));
        r.Fail(JsonMemberPath(path, "user"),
               fmt::format("limit {} is not a user-scope limit",
                           Quote(lo.limit_id)));
        ok = false;
      }
    }
    out.push_back(std::move(lo));
  }
  if (!ok) return std::nullopt;
  return out;
}

constexpr std::pair<std::string_view, SubscriptionState> kStateNames[] = {
    {"active", SubscriptionState::kActive},
    {"past_due", SubscriptionState::kPastDue},
    {"blocked", SubscriptionState::kBlocked},
};

constexpr std::pair<std::string_view, KeyKind> kKindNames[] = {
    {"live", KeyKind::kLive},
    {"test", KeyKind::kTest},
    {"sandbox", KeyKind::kTest},
    {"internal", KeyKind::kInternal},
};

constexpr std::pair<std::string_view, bool> kOutcomeNames[] = {
    {"success", true},
    {"failure", false},
};

constexpr std::pair<std::string_view, EventType> kTypeNames[] = {
    {"request", EventType::kRequest},
    {"plan_change", EventType::kPlanChange},
    {"payment_failed", EventType::kPaymentFailed},
    {"payment_succeeded", EventType::kPaymentSucceeded},
    {"block", EventType::kBlock},
    {"wallet_credit", EventType::kWalletCredit},
    {"create", EventType::kCreate},
    {"maintain", EventType::kMaintain},
};

constexpr std::pair<std::string_view, uint32_t> kWarningNames[] = {
    {"soft_nudge", kWarnSoftNudge},
    {"grace", kWarnGrace},
    {"shadow_denied", kWarnShadowDenied},
    {"past_due", kWarnPastDue},
};

constexpr uint32_t Bit(EventType t) { return 1u << static_cast<int>(t); }
constexpr uint32_t kAllTypes = 0xff;
constexpr uint32_t kAccountTypes = kAllTypes & ~Bit(EventType::kMaintain);
constexpr uint32_t kDecided =
    Bit(EventType::kRequest) | Bit(EventType::kCreate);
constexpr uint32_t kRequestOnly = Bit(EventType::kRequest);

// The fields of a trace line and the event types that have them.
constexpr std::pair<std::string_view, uint32_t> kTraceFields[] = {
    {"t", kAllTypes},
    {"type", kAllTypes},
    {"account", kAccountTypes},
    {"id", kDecided},
    {"expect", kDecided},
    {"key", kRequestOnly},
    {"kind", kRequestOnly},
    {"user", kRequestOnly},
    {"project", kRequestOnly},
    {"model", kRequestOnly},
    {"byok", kRequestOnly},
    {"features", kRequestOnly},
    {"amounts", kRequestOnly},
    {"wallet_micros", kRequestOnly},
    {"outcome", kRequestOnly},
    {"actual", kRequestOnly},
    {"plan", Bit(EventType::kPlanChange)},
    {"scheduled_plan", Bit(EventType::kPlanChange)},
    {"overrides", Bit(EventType::kPlanChange)},
    {"grace_until", Bit(EventType::kPaymentFailed)},
    {"micros", Bit(EventType::kWalletCredit)},
    {"gauge", Bit(EventType::kCreate)},
    {"current", Bit(EventType::kCreate)},
};

// Parses one trace line at a time, keeping what spans lines.
class TraceParser {
 public:
  TraceParser(std::string_view file, const Catalog& catalog,
              const std::vector<AccountSpec>& accounts)
      : diag_(file), catalog_(catalog) {
    for (const AccountSpec& a : accounts) accounts_.insert(a.id);
    for (const std::string& m : catalog.meters()) {
      if (!meter_list_.empty()) meter_list_ += ", ";
      meter_list_ += m;
    }
  }

  void Line(std::string_view text, int line);
  bool full() const { return diag_.full(); }
  void Truncate() { diag_.Truncate(); }

  absl::StatusOr<std::vector<Event>> Finish() {
    if (!diag_.empty()) return diag_.ToStatus();
    return std::move(events_);
  }

 private:
  void Amounts(Reader& r, const Json& v, std::string_view field,
               std::vector<TraceAmount>* out);
  void Expect(Reader& r, const Json& v, Expectation* out);

  Diagnostics diag_;
  const Catalog& catalog_;
  std::set<std::string> accounts_;
  std::string meter_list_;
  int64_t last_t_ = 0;
  int last_t_line_ = 0;
  std::vector<Event> events_;
};

void TraceParser::Amounts(Reader& r, const Json& v, std::string_view field,
                          std::vector<TraceAmount>* out) {
  if (!v.is_object()) {
    r.Fail(field, "must be an object of meter name -> amount");
    return;
  }
  for (const auto& [name, amount] : v.items()) {
    const std::string path = JsonMemberPath(field, name);
    const int meter = catalog_.MeterIndex(name);
    if (meter < 0) {
      r.Fail(path, fmt::format("unknown meter {} (meters: {})", Quote(name),
                               meter_list_));
      continue;
    }
    if (auto n = r.Int(amount, path, 0, kMaxCount)) {
      out->push_back({meter, *n});
    }
  }
}

void TraceParser::Expect(Reader& r, const Json& v, Expectation* out) {
  if (!v.is_object()) {
    r.Fail("expect", "must be a JSON object");
    return;
  }
  for (const auto& [name, value] : v.items()) {
    const std::string path = JsonMemberPath("expect", name);
    if (name == "status") {
      if (auto n = r.Int(value, path, 100, 599)) {
        out->status = static_cast<int>(*n);
      }
    } else if (name == "reason") {
      out->reason = r.String(value, path, false);
    } else if (name == "upgrade_plan") {
      out->upgrade_plan = r.String(value, path, false);
    } else if (name == "limit") {
      out->limit = r.String(value, path, false);
    } else if (name == "used") {
      out->used = r.Int(value, path, 0, kMaxCount);
    } else if (name == "remaining") {
      out->remaining = r.Int(value, path, 0, kMaxCount);
    } else if (name == "retry_after_ms") {
      out->retry_after_ms =
          r.Int(value, path, 0, std::numeric_limits<int64_t>::max());
    } else if (name == "wallet_balance") {
      out->wallet_balance = r.Int(value, path, 0, kMaxMicros);
    } else if (name == "warnings") {
      if (!value.is_array()) {
        r.Fail(path, "must be an array of warning names");
        continue;
      }
      uint32_t bits = 0;
      bool ok = true;
      for (size_t i = 0; i < value.size(); ++i) {
        const std::string item = JsonElementPath(path, i);
        std::optional<uint32_t> bit = r.Enum(value[i], item, kWarningNames);
        if (bit) {
          bits |= *bit;
        } else {
          ok = false;
        }
      }
      if (ok) out->warnings = bits;
    } else {
      r.Fail(path, "unknown field");
    }
  }
}

void TraceParser::Line(std::string_view text, int line) {
  Reader r(&diag_, line);
  JsonSyntaxError syntax;
  const std::optional<Json> parsed = ParseJson(text, &syntax);
  if (!parsed) {
    r.Fail("event", InvalidJson(syntax));
    return;
  }
  const Json& v = *parsed;
  if (!v.is_object()) {
    r.Fail("event", "must be a JSON object");
    return;
  }
  const JsonLocator where(text, "");
  for (const auto& dup : where.duplicates()) {
    r.Fail(dup.path, "duplicate key");
  }

  Event ev;
  ev.line = line;
  bool ok = true;
  if (const Json* t = Member(v, "t")) {
    if (std::optional<int64_t> ms = r.Time(*t, "t")) {
      ev.t_ms = *ms;
      if (last_t_line_ > 0 && *ms < last_t_) {
        r.Fail("t", fmt::format("goes back in time: {} is before {} (line {})",
                                FormatRfc3339(*ms), FormatRfc3339(last_t_),
                                last_t_line_));
        ok = false;
      } else {
        last_t_ = *ms;
        last_t_line_ = line;
      }
    } else {
      ok = false;
    }
  } else {
    r.Fail("t", "missing required field");
    ok = false;
  }
  if (const Json* type = Member(v, "type")) {
    std::optional<EventType> t = r.Enum(*type, "type", kTypeNames);
    if (!t) return;  // the other fields cannot be judged
    ev.type = *t;
  }
  const uint32_t bit = Bit(ev.type);
  const std::string type_name(EventTypeName(ev.type));

  for (const auto& [name, value] : v.items()) {
    const std::string path = JsonMemberPath("", name);
    uint32_t types = 0;
    for (const auto& [field, field_types] : kTraceFields) {
      if (field == name) types = field_types;
    }
    if (types == 0) {
      r.Fail(path, "unknown field");
      ok = false;
      continue;
    }
    if ((types & bit) == 0) {
      r.Fail(path, fmt::format("not a field of type {}", type_name));
      ok = false;
      continue;
    }
    bool field_ok = true;
    auto take = [&](auto opt, auto* out) {
      if (opt) {
        *out = std::move(*opt);
      } else {
        field_ok = false;
      }
    };
    if (name == "t" || name == "type") {
      continue;  // done above
    } else if (name == "account") {
      take(r.String(value, path, true), &ev.account);
    } else if (name == "id") {
      take(r.String(value, path, false), &ev.id);
    } else if (name == "key") {
      take(r.String(value, path, false), &ev.key);
    } else if (name == "user") {
      take(r.String(value, path, false), &ev.user);
    } else if (name == "project") {
      take(r.String(value, path, false), &ev.project);
    } else if (name == "model") {
      take(r.String(value, path, false), &ev.model);
    } else if (name == "kind") {
      take(r.Enum(value, path, kKindNames), &ev.kind);
    } else if (name == "byok") {
      take(r.Bool(value, path), &ev.byok);
    } else if (name == "outcome") {
      take(r.Enum(value, path, kOutcomeNames), &ev.success);
    } else if (name == "wallet_micros") {
      take(r.Int(value, path, 0, kMaxMicros), &ev.wallet_micros);
    } else if (name == "features") {
      if (!value.is_array()) {
        r.Fail(path, "must be an array of feature names");
        field_ok = false;
      } else {
        for (size_t i = 0; i < value.size(); ++i) {
          std::optional<std::string> f =
              r.String(value[i], JsonElementPath(path, i), true);
          if (f) {
            ev.features.push_back(std::move(*f));
          } else {
            field_ok = false;
          }
        }
      }
    } else if (name == "amounts" || name == "actual") {
      std::vector<TraceAmount>* out =
          name == "amounts" ? &ev.amounts : &ev.actual;
      const size_t before = out->size();
      Amounts(r, value, path, out);
      field_ok = value.is_object() && out->size() - before == value.size();
    } else if (name == "plan") {
      std::optional<std::string> plan =
          PlanRef(r, value, path, catalog_, false);
      if (plan) {
        ev.plan = std::move(*plan);
      } else {
        field_ok = false;
      }
    } else if (name == "scheduled_plan") {
      std::optional<std::string> plan = PlanRef(r, value, path, catalog_, true);
      if (plan) {
        ev.scheduled_plan = std::move(*plan);
      } else {
        field_ok = false;
      }
    } else if (name == "overrides") {
      ev.overrides = Overrides(r, value, path, {},
                               [line](const std::string&) { return line; });
      field_ok = ev.overrides.has_value();
      r.set_line(line);
    } else if (name == "grace_until") {
      take(r.Time(value, path), &ev.grace_until_ms);
    } else if (name == "micros") {
      take(r.Int(value, path, -kMaxMicros, kMaxMicros), &ev.micros);
    } else if (name == "gauge") {
      take(r.String(value, path, true), &ev.gauge);
    } else if (name == "current") {
      take(r.Int(value, path, 0, kMaxCount), &ev.current);
    } else if (name == "expect") {
      Expect(r, value, &ev.expect);
      field_ok = value.is_object() &&
                 ev.expect.count() == static_cast<int>(value.size());
    }
    ok = ok && field_ok;
  }

  // Required fields and cross-field rules.
  auto require = [&](std::string_view field) {
    if (Member(v, field) == nullptr) {
      r.Fail(field, "missing required field");
      ok = false;
    }
  };
  if (ev.type != EventType::kMaintain) require("account");
  switch (ev.type) {
    case EventType::kPlanChange:
      if (Member(v, "plan") == nullptr &&
          Member(v, "scheduled_plan") == nullptr &&
          Member(v, "overrides") == nullptr) {
        r.Fail("plan",
               "missing: a plan_change needs plan, scheduled_plan or "
               "overrides");
        ok = false;
      }
      break;
    case EventType::kPaymentFailed:
      require("grace_until");
      break;
    case EventType::kWalletCredit:
      require("micros");
      break;
    case EventType::kCreate:
      require("gauge");
      require("current");
      break;
    default:
      break;
  }
  if (ev.type != EventType::kRequest && ev.type != EventType::kCreate &&
      ev.type != EventType::kMaintain && !ev.account.empty() &&
      accounts_.count(ev.account) == 0) {
    r.Fail("account", fmt::format("unknown account {} (not in the accounts "
                                  "file)",
                                  Quote(ev.account)));
    ok = false;
  }
  if (ok) events_.push_back(std::move(ev));
}

}  // namespace

std::optional<int64_t> ParseRfc3339(std::string_view s) {
  size_t pos = 0;
  auto digits = [&](size_t n) -> std::optional<int> {
    if (pos + n > s.size()) return std::nullopt;
    int value = 0;
    for (size_t i = 0; i < n; ++i) {
      const char c = s[pos + i];
      if (c < '0' || c > '9') return std::nullopt;
      value = value * 10 + (c - '0');
    }
    pos += n;
    return value;
  };
  auto literal = [&](std::string_view options) {
    if (pos < s.size() && options.find(s[pos]) != std::string_view::npos) {
      ++pos;
      return true;
    }
    return false;
  };
  const auto year = digits(4);
  if (!year || !literal("-")) return std::nullopt;
  const auto month = digits(2);
  if (!month || !literal("-")) return std::nullopt;
  const auto day = digits(2);
  if (!day || !literal("Tt")) return std::nullopt;
  const auto hour = digits(2);
  if (!hour || !literal(":")) return std::nullopt;
  const auto minute = digits(2);
  if (!minute || !literal(":")) return std::nullopt;
  const auto second = digits(2);
  if (!second) return std::nullopt;
  int ms = 0;
  if (literal(".")) {
    int n = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9' && n < 4) {
      ms = ms * 10 + (s[pos] - '0');
      ++pos;
      ++n;
    }
    if (n == 0 || n > 3) return std::nullopt;
    for (; n < 3; ++n) ms *= 10;
  }
  const std::string_view zone = s.substr(pos);
  if (zone != "Z" && zone != "z" && zone != "+00:00" && zone != "-00:00") {
    return std::nullopt;
  }
  if (*year < 1970 || *month < 1 || *month > 12 || *day < 1 ||
      *day > internal::DaysInMonth(*year, *month) || *hour > 23 ||
      *minute > 59 || *second > 59) {
    return std::nullopt;
  }
  const int64_t ms_of_day =
      ((int64_t{*hour} * 60 + *minute) * 60 + *second) * 1000 + ms;
  return internal::FromCivil(*year, *month, *day, ms_of_day);
}

std::string_view EventTypeName(EventType type) {
  for (const auto& [name, value] : kTypeNames) {
    if (value == type) return name;
  }
  return "unknown";
}

std::vector<std::string_view> WarningNames(uint32_t warnings) {
  std::vector<std::string_view> names;
  for (const auto& [name, bit] : kWarningNames) {
    if (warnings & bit) names.push_back(name);
  }
  return names;
}

absl::StatusOr<std::vector<AccountSpec>> ParseAccounts(
    std::string_view text, std::string_view file_name, const Catalog& catalog) {
  Diagnostics diag(file_name);
  try {
    JsonSyntaxError syntax;
    const std::optional<Json> parsed = ParseJson(text, &syntax);
    if (!parsed) {
      diag.Add(syntax.line, "accounts", InvalidJson(syntax));
      return diag.ToStatus();
    }
    const Json& root = *parsed;
    const JsonLocator where(text, "accounts");
    for (const auto& dup : where.duplicates()) {
      diag.Add(dup.line, dup.path, "duplicate key");
    }
    if (!root.is_array()) {
      diag.Add(where.LineOf("accounts", 1), "accounts",
               "must be a JSON array of accounts");
      return diag.ToStatus();
    }
    std::vector<AccountSpec> accounts;
    std::map<std::string, size_t> ids;
    for (size_t i = 0; i < root.size(); ++i) {
      if (diag.full()) {
        diag.Truncate();
        break;
      }
      const Json& a = root[i];
      const std::string path = JsonElementPath("accounts", i);
      const int line = where.LineOf(path, 1);
      Reader r(&diag, line);
      if (!a.is_object()) {
        r.Fail(path, "must be a JSON object");
        continue;
      }
      AccountSpec spec;
      spec.line = line;
      bool ok = true;
      bool has_past_due_until = false;
      for (const auto& [name, value] : a.items()) {
        const std::string field = JsonMemberPath(path, name);
        r.set_line(where.LineOf(field, line));
        bool field_ok = true;
        auto take = [&](auto opt, auto* out) {
          if (opt) {
            *out = std::move(*opt);
          } else {
            field_ok = false;
          }
        };
        if (name == "id") {
          take(r.String(value, field, true), &spec.id);
        } else if (name == "plan") {
          take(PlanRef(r, value, field, catalog, false), &spec.plan);
        } else if (name == "anchor") {
          take(r.Time(value, field), &spec.anchor_ms);
        } else if (name == "state") {
          take(r.Enum(value, field, kStateNames), &spec.state);
        } else if (name == "past_due_until") {
          take(r.Time(value, field), &spec.past_due_until_ms);
          has_past_due_until = true;
        } else if (name == "default_model") {
          take(r.String(value, field, false), &spec.default_model);
        } else if (name == "wallet_micros") {
          take(r.Int(value, field, 0, kMaxMicros), &spec.wallet_micros);
        } else if (name == "scheduled_plan") {
          take(PlanRef(r, value, field, catalog, true), &spec.scheduled_plan);
        } else if (name == "overrides") {
          continue;  // below, once the plans are known
        } else {
          r.Fail(field, "unknown field");
          field_ok = false;
        }
        ok = ok && field_ok;
      }
      if (const Json* o = Member(a, "overrides")) {
        std::vector<const Plan*> plans;
        for (const std::string* id : {&spec.plan, &spec.scheduled_plan}) {
          if (const Plan* p = catalog.FindPlan(*id); p != nullptr) {
            plans.push_back(p);
          }
        }
        const std::string field = JsonMemberPath(path, "overrides");
        auto overrides = Overrides(
            r, *o, field, plans,
            [&](const std::string& p) { return where.LineOf(p, line); });
        if (overrides) {
          spec.overrides = std::move(*overrides);
        } else {
          ok = false;
        }
      }
      r.set_line(line);
      for (std::string_view required : {"id", "plan", "anchor"}) {
        if (Member(a, required) == nullptr) {
          r.Fail(JsonMemberPath(path, required), "missing required field");
          ok = false;
        }
      }
      if (spec.state == SubscriptionState::kPastDue && !has_past_due_until &&
          Member(a, "state") != nullptr) {
        r.Fail(JsonMemberPath(path, "past_due_until"),
               "missing: required with state past_due");
        ok = false;
      }
      if (has_past_due_until && spec.state != SubscriptionState::kPastDue) {
        r.set_line(where.LineOf(JsonMemberPath(path, "past_due_until"), line));
        r.Fail(JsonMemberPath(path, "past_due_until"),
               "only allowed with state past_due");
        ok = false;
      }
      if (!spec.id.empty()) {
        auto [it, inserted] = ids.emplace(spec.id, i);
        if (!inserted) {
          r.set_line(where.LineOf(JsonMemberPath(path, "id"), line));
          r.Fail(JsonMemberPath(path, "id"),
                 fmt::format("duplicate account {} (also accounts[{}])",
                             Quote(spec.id), it->second));
          ok = false;
        }
      }
      if (ok) accounts.push_back(std::move(spec));
    }
    if (!diag.empty()) return diag.ToStatus();
    return accounts;
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        fmt::format("{}: out of memory", file_name));
  } catch (const std::exception& e) {
    return absl::InternalError(fmt::format(
        "{}: {}", file_name, internal::BoundedJsonErrorText(e.what())));
  }
}

absl::StatusOr<std::vector<Event>> ParseTrace(
    std::string_view text, std::string_view file_name, const Catalog& catalog,
    const std::vector<AccountSpec>& accounts) {
  try {
    TraceParser parser(file_name, catalog, accounts);
    int line = 0;
    for (size_t pos = 0; pos < text.size();) {
      if (parser.full()) {
        parser.Truncate();
        break;
      }
      size_t end = text.find('\n', pos);
      if (end == std::string_view::npos) end = text.size();
      std::string_view content = text.substr(pos, end - pos);
      pos = end + 1;
      ++line;
      if (!content.empty() && content.back() == '\r') content.remove_suffix(1);
      const size_t first = content.find_first_not_of(" \t");
      if (first == std::string_view::npos || content[first] == '#') continue;
      parser.Line(content, line);
    }
    return parser.Finish();
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        fmt::format("{}: out of memory", file_name));
  } catch (const std::exception& e) {
    return absl::InternalError(fmt::format(
        "{}: {}", file_name, internal::BoundedJsonErrorText(e.what())));
  }
}

}  // namespace plangate::replay
