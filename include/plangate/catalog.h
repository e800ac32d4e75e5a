// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// catalog.h: the plan catalog, plangate's configuration.
//
// A Catalog is the validated, immutable form of a JSON document that lists
// plans, their limits, features, managed-model allowlists, allowed key kinds,
// wallet requirements, gauges and the upgrade order. docs/catalog.md
// documents the format. Parsing validates the whole document and rejects it
// as a whole; every error names the field and the reason:
//
//   auto catalog = plangate::Catalog::Parse(json_text);
//   if (!catalog.ok()) {
//     // catalog.status().message() ==
//     //   "plans[2].limits[0].grace: must be in [0, 1]"
//   }
//
// Thread safety: a Catalog is immutable after construction and safe for
// concurrent access from multiple threads without external synchronization.

#ifndef PLANGATE_CATALOG_H_
#define PLANGATE_CATALOG_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace plangate {

// What a counter belongs to.
enum class Scope : uint8_t { kAccount = 0, kProject = 1, kKey = 2, kUser = 3 };
inline constexpr int kNumScopes = 4;

// The unit of a limit's window. kBillingPeriod is monthly on the account's
// renewal anchor; kAnnual is yearly on it. The others are UTC-aligned.
enum class WindowUnit : uint8_t {
  kBillingPeriod = 0,
  kAnnual = 1,
  kDay = 2,
  kHour = 3,
  kMinute = 4,
  kSecond = 5,
  // Requests in flight, not a window of time: taken at check, given back
  // at commit (or when the reservation expires). Counts the requests meter
  // only, per instance (not synced through Redis).
  kConcurrent = 6,
};

// kFixed resets at each window boundary. kSliding estimates the count over
// the trailing window from the current and previous fixed windows (the
// weighted two-bucket estimate). Billing and annual windows are always fixed.
enum class WindowMode : uint8_t { kFixed = 0, kSliding = 1 };

// Which traffic a limit applies to: calls on the platform's provider keys
// (managed), on the customer's own key (BYOK), or both.
enum class Traffic : uint8_t { kAll = 0, kManaged = 1, kByok = 2 };

// What a limit does while Redis (cluster sync, sync.h) is unreachable:
// kFailOpen admits on this instance's view (usage is replayed later);
// kFailClosed admits only within a lease already held, then denies;
// kLocalShare admits this instance's share (1 / instances) of the
// remainder last known. Default: kLocalShare for billing, annual and daily
// windows, kFailOpen for shorter ones.
enum class RedisDownPolicy : uint8_t {
  kFailOpen = 0,
  kFailClosed = 1,
  kLocalShare = 2,
};

// The kind of API key a request carries.
enum class KeyKind : uint8_t { kLive = 0, kTest = 1, kInternal = 2 };

// The largest count or limit a counter holds (2^42 - 1): 4.4 trillion
// tokens, or $4.4M in micro-units, per subject and window.
inline constexpr int64_t kMaxCount = (int64_t{1} << 42) - 1;

// The number of counter cells one subject record holds. A fixed window takes
// one cell and a sliding window two. Across all plans of a catalog, the
// distinct (meter, window, mode) counters of one scope must fit in it.
inline constexpr int kCellsPerSubject = 8;

struct Limit {
  std::string id;  // unique within its plan; default "<scope>.<meter>.<window>"
  Scope scope = Scope::kAccount;
  std::string meter = "requests";
  WindowUnit window = WindowUnit::kBillingPeriod;
  // Whole units per window: "15m" is kMinute x 15, aligned on the Unix
  // epoch like every fixed-length window; 1 for billing_period and annual.
  uint32_t window_count = 1;
  WindowMode mode = WindowMode::kFixed;
  bool unlimited = false;  // counts, never denies
  int64_t limit = 0;       // in units of `meter`; ignored when unlimited
  double soft_nudge =
      0.8;             // in (0, 1]: warn once used + a >= soft_nudge * limit
  double grace = 0.0;  // in [0, 1]: admit up to floor(limit * (1 + grace))
  int status = 0;      // deny status; 402 for billing windows, 429 otherwise
  std::string reason;  // deny reason; "billing_limit_reached" or "rate_limited"
  std::string message;  // human-readable deny message; may be empty
  Traffic applies_to = Traffic::kAll;
  bool shadow = false;  // decide and count, report the would-be denial, admit
  // Unset: DefaultRedisDownPolicy(window).
  std::optional<RedisDownPolicy> redis_down;
  // A per-tool limit ("tools", sorted): it counts the sum of the meters
  // "<meter>.<tool>" of these tools (a host adds 1 to "tool_calls.search"
  // for an MCP call of search, as it adds 1 to "tool_calls"), and does not
  // apply to a request that uses none of them. The meter defaults to
  // "tool_calls" then, and each "<meter>.<tool>" is a meter of the catalog.
  // Empty: the limit counts `meter` itself.
  std::vector<std::string> tools;
  // A per-model limit ("models": exact names or '*' patterns): it counts
  // only requests of a matching model (the request's, else the account's
  // default), with a counter of its own. With "limit": "unlimited" it only
  // reports: per-model usage in the usage report. Empty: every model.
  std::vector<std::string> models;

  // floor(limit * (1 + grace)), saturated at kMaxCount.
  int64_t hard() const;
};

// The name of the counter a limit keeps: its meter, for a per-tool limit
// "<meter>[<tool>,...]", for a per-model one "<meter>{<model>,...}" (its
// own counter, also in Redis keys).
std::string CounterMeterName(const Limit& limit);

// A point-in-time count (projects, API keys, members...) checked on create.
struct Gauge {
  std::string name;
  bool unlimited = false;
  int64_t cap = 0;
};

struct Wallet {
  bool required = false;           // live traffic needs a wallet balance
  int64_t min_balance_micros = 0;  // below this, live traffic gets 402
};

struct Plan {
  std::string id;
  std::string name;     // display name; defaults to id
  bool shadow = false;  // every limit of the plan in shadow mode
  std::vector<Limit> limits;
  std::vector<std::string> features;
  // Managed-model allowlist. Entries are exact names or patterns with '*'
  // (any run of characters). `models_restricted` is false when the plan has
  // no "models" field: every model is allowed.
  bool models_restricted = false;
  std::vector<std::string> models;
  // Key kinds the plan accepts; all three when the field is absent.
  std::vector<KeyKind> key_kinds = {KeyKind::kLive, KeyKind::kTest,
                                    KeyKind::kInternal};
  // Key kinds a subscription that must pay first (past due beyond its
  // deadline, or blocked) is denied 402 payment_required on; the others
  // stay admitted (with the past_due warning), and test traffic stays
  // free. Internal keys are never limited. Default: live only.
  std::vector<KeyKind> past_due_blocks = {KeyKind::kLive};
  Wallet wallet;
  std::vector<Gauge> gauges;
  // The most projects, keys and users one account of the plan may have
  // resident in an Enforcer's counter cache at once ("max_subjects"); a
  // request that needs one more is denied 429 subject_limit until idle ones
  // are reclaimed. 0 (absent): EnforcerOptions::subjects_per_account.
  int64_t max_subjects = 0;
  // Per-model usage in the usage report ("usage_by_model"; the catalog's
  // top-level value is the default): each account's billing-period usage
  // of every meter the plan's limits count (and requests) is also counted
  // per model, for at most this many models per account (and at most its
  // max_subjects); the rest go to one "other" bucket. Never denies, and
  // takes nothing from max_subjects. 0: off.
  int64_t usage_by_model = 0;
};

// "usage_by_model": true counts this many models per account apart.
inline constexpr int64_t kDefaultModelsPerAccount = 32;
// The most "usage_by_model" may say.
inline constexpr int64_t kMaxModelsPerAccount = 1024;

// A model's price in micro-units per 1M tokens of each kind ("prices").
struct Price {
  std::vector<std::string> models;  // exact names or '*' patterns
  int64_t input = 0;                // prompt tokens not read from a cache
  int64_t cached_input = 0;  // prompt tokens read from a cache (default input)
  int64_t output = 0;        // completion tokens that are not reasoning
  int64_t reasoning = 0;     // reasoning tokens (default output)
};

// The tokens of one call as a response reports them (OpenAI's usage:
// prompt_tokens with prompt_tokens_details.cached_tokens inside it,
// completion_tokens with completion_tokens_details.reasoning_tokens).
struct TokenCounts {
  int64_t input = 0;
  int64_t cached_input = 0;  // of input
  int64_t output = 0;
  int64_t reasoning = 0;  // of output
};

// What `tokens` cost at `price`, in micro-units: each kind at its rate,
// rounded up (a fraction of a micro-unit is charged), saturated at
// kMaxCount. Negative counts are 0; cached and reasoning are capped at
// input and output.
int64_t CostMicros(const Price& price, const TokenCounts& tokens);

// The validated catalog. Plans keep their document order.
class Catalog {
 public:
  // Parses and validates a JSON catalog. On error returns InvalidArgument
  // whose message lists every problem found, one per line, each as
  // "<path>: <reason>" (e.g. "plans[2].limits[0].grace: must be in [0, 1]").
  static absl::StatusOr<std::shared_ptr<const Catalog>> Parse(
      std::string_view json);

  // Reads and parses a file. A missing or unreadable file is NotFound or
  // Unavailable naming the path; parse errors are prefixed with the path.
  static absl::StatusOr<std::shared_ptr<const Catalog>> LoadFile(
      const std::string& path);

  const std::vector<Plan>& plans() const { return plans_; }
  // Meter names in declaration order; "requests" is always index 0.
  const std::vector<std::string>& meters() const { return meters_; }
  // Plan ids from cheapest to most capable.
  const std::vector<std::string>& upgrade_order() const {
    return upgrade_order_;
  }
  // Plan given to accounts the host never registered; empty for none.
  const std::string& default_plan() const { return default_plan_; }

  // The plan with this id, or nullptr.
  const Plan* FindPlan(std::string_view id) const;
  // The price table, in document order; empty when the catalog has none.
  const std::vector<Price>& prices() const { return prices_; }
  // The first price whose models match `model` (the table's order is its
  // precedence: put a "*" default last), or nullptr. With a price table,
  // every model a plan's allowlist names is priced (a catalog error
  // otherwise), so nullptr means an unlisted model on a plan that allows
  // any: the host decides (a managed call should not go unpriced).
  const Price* PriceFor(std::string_view model) const;
  // Index into plans(), or -1.
  int PlanIndex(std::string_view id) const;
  // Index into meters(), or -1.
  int MeterIndex(std::string_view name) const;
  // The first plan in upgrade order after `from_plan` that has `feature`
  // (any plan with it when from_plan is empty), or nullptr.
  // The first plan in upgrade order after `from_plan` (any plan when empty)
  // that caps `gauge` at `count` or more, or leaves it uncapped; nullptr
  // when none does.
  const Plan* CheapestPlanWithGauge(std::string_view gauge, int64_t count,
                                    std::string_view from_plan) const;
  const Plan* CheapestPlanWithFeature(std::string_view feature,
                                      std::string_view from_plan = {}) const;

 private:
  friend class CatalogParser;
  // The first plan in upgrade order after `from_plan` (any, when empty)
  // for which `fits` holds.
  const Plan* FirstUpgrade(std::string_view from_plan,
                           const std::function<bool(const Plan&)>& fits) const;
  std::vector<Plan> plans_;
  std::vector<std::string> meters_;
  std::vector<std::string> upgrade_order_;
  std::string default_plan_;
  std::vector<Price> prices_;
};

// Canonical names used in JSON and in messages.
std::string_view ScopeName(Scope scope);
std::string_view WindowUnitName(WindowUnit unit);
// "minute" for (kMinute, 1), "15m" for (kMinute, 15): the catalog's
// spelling, also used in counter keys and reports.
std::string WindowName(WindowUnit unit, uint32_t count);
// The length of a fixed-length window in ms; 0 for billing_period and
// annual.
int64_t WindowLengthMs(WindowUnit unit, uint32_t count);
std::string_view WindowModeName(WindowMode mode);
std::string_view TrafficName(Traffic traffic);
std::string_view RedisDownPolicyName(RedisDownPolicy policy);
RedisDownPolicy DefaultRedisDownPolicy(WindowUnit window);
std::string_view KeyKindName(KeyKind kind);

}  // namespace plangate

#endif  // PLANGATE_CATALOG_H_
