// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// c.cc: the C API of include/plangate/c.h over the C++ Enforcer, Catalog,
// HttpRendering and RedisSync. Each handle is a small struct owning the C++
// object; requests and decisions are converted field by field on the stack,
// so the check path adds no allocation to the C++ one. No exception crosses
// the C boundary: every call that can throw catches and reports.

// The library is compiled with -fvisibility=hidden; the C API's
// declarations, and so their definitions, are the only default-visibility
// symbols (the version script src/c/plangate_c.map then exports pg_*).
#pragma GCC visibility push(default)
#include "plangate/c.h"
#pragma GCC visibility pop

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "c/c_sync_options.h"
#include "plangate/catalog.h"
#include "plangate/clock.h"
#include "plangate/decision.h"
#include "plangate/enforcer.h"
#include "plangate/events.h"
#include "plangate/http.h"
#include "plangate/sync.h"

#ifndef PLANGATE_VERSION_STRING
#error "PLANGATE_VERSION_STRING must be defined by the build"
#endif
static_assert(PG_VERSION_MAJOR == PLANGATE_VERSION_MAJOR &&
                  PG_VERSION_MINOR == PLANGATE_VERSION_MINOR &&
                  PG_VERSION_PATCH == PLANGATE_VERSION_PATCH,
              "PG_VERSION_* in c.h must match project(plangate VERSION)");

namespace {

using plangate::Decision;

// The C enumerations mirror the C++ ones value for value.
#define PG_SAME(c_value, cc_value) \
  static_assert(static_cast<int>(c_value) == static_cast<int>(cc_value))
PG_SAME(pg_scope_account, plangate::Scope::kAccount);
PG_SAME(pg_scope_project, plangate::Scope::kProject);
PG_SAME(pg_scope_key, plangate::Scope::kKey);
PG_SAME(pg_scope_user, plangate::Scope::kUser);
PG_SAME(pg_window_billing_period, plangate::WindowUnit::kBillingPeriod);
PG_SAME(pg_window_annual, plangate::WindowUnit::kAnnual);
PG_SAME(pg_window_day, plangate::WindowUnit::kDay);
PG_SAME(pg_window_hour, plangate::WindowUnit::kHour);
PG_SAME(pg_window_minute, plangate::WindowUnit::kMinute);
PG_SAME(pg_window_second, plangate::WindowUnit::kSecond);
PG_SAME(pg_window_concurrent, plangate::WindowUnit::kConcurrent);
PG_SAME(pg_mode_fixed, plangate::WindowMode::kFixed);
PG_SAME(pg_mode_sliding, plangate::WindowMode::kSliding);
PG_SAME(pg_key_live, plangate::KeyKind::kLive);
PG_SAME(pg_key_test, plangate::KeyKind::kTest);
PG_SAME(pg_key_internal, plangate::KeyKind::kInternal);
PG_SAME(pg_deny_none, plangate::DenyKind::kNone);
PG_SAME(pg_deny_limit, plangate::DenyKind::kLimit);
PG_SAME(pg_deny_unknown_account, plangate::DenyKind::kUnknownAccount);
PG_SAME(pg_deny_unknown_plan, plangate::DenyKind::kUnknownPlan);
PG_SAME(pg_deny_invalid_request, plangate::DenyKind::kInvalidRequest);
PG_SAME(pg_deny_capacity, plangate::DenyKind::kCapacity);
PG_SAME(pg_deny_payment_required, plangate::DenyKind::kPaymentRequired);
PG_SAME(pg_deny_feature_not_in_plan, plangate::DenyKind::kFeatureNotInPlan);
PG_SAME(pg_deny_model_not_allowed, plangate::DenyKind::kModelNotAllowed);
PG_SAME(pg_deny_key_kind_not_allowed, plangate::DenyKind::kKeyKindNotAllowed);
PG_SAME(pg_deny_insufficient_credit, plangate::DenyKind::kInsufficientCredit);
PG_SAME(pg_deny_resource_limit, plangate::DenyKind::kResourceLimit);
PG_SAME(pg_deny_syncing, plangate::DenyKind::kSyncing);
PG_SAME(pg_deny_subject_limit, plangate::DenyKind::kSubjectLimit);
PG_SAME(pg_warn_soft_nudge, plangate::kWarnSoftNudge);
PG_SAME(pg_warn_grace, plangate::kWarnGrace);
PG_SAME(pg_warn_shadow_denied, plangate::kWarnShadowDenied);
PG_SAME(pg_warn_past_due, plangate::kWarnPastDue);
PG_SAME(pg_commit_applied, plangate::CommitResult::kApplied);
PG_SAME(pg_commit_refunded, plangate::CommitResult::kRefunded);
PG_SAME(pg_commit_duplicate, plangate::CommitResult::kDuplicate);
PG_SAME(pg_commit_expired, plangate::CommitResult::kExpired);
PG_SAME(pg_commit_invalid, plangate::CommitResult::kInvalid);
PG_SAME(pg_commit_empty, plangate::CommitResult::kEmpty);
PG_SAME(pg_subscription_active, plangate::SubscriptionState::kActive);
PG_SAME(pg_subscription_past_due, plangate::SubscriptionState::kPastDue);
PG_SAME(pg_subscription_blocked, plangate::SubscriptionState::kBlocked);
PG_SAME(pg_threshold_soft_nudge, plangate::ThresholdKind::kSoftNudge);
PG_SAME(pg_threshold_hard_cap, plangate::ThresholdKind::kHardCap);
#undef PG_SAME

// A buffer of each size always suffices (c.h promises it): every header
// name is at most 21 bytes, plus ": " and "\r\n", and all values share one
// HttpRendering::kHeaderBufferSize buffer.
static_assert(PG_HTTP_HEADERS_SIZE >=
              plangate::HttpRendering::kMaxHeaders * (21 + 4) +
                  plangate::HttpRendering::kHeaderBufferSize + 1);
static_assert(PG_HTTP_BODY_SIZE >=
              plangate::HttpRendering::kBodyBufferSize + 1);

constexpr int kNumDenyKinds = pg_deny_syncing + 1;

std::string_view View(const char* data, size_t len) {
  return data == nullptr ? std::string_view() : std::string_view(data, len);
}

// A static literal's view as a C string ("" for an empty view, whose data()
// may be null).
const char* StaticCString(std::string_view literal) {
  return literal.empty() ? "" : literal.data();
}

std::string Copy(const char* data, size_t len) {
  return std::string(View(data, len));
}

char* MallocCopy(std::string_view s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out == nullptr) return nullptr;
  if (!s.empty()) std::memcpy(out, s.data(), s.size());
  out[s.size()] = '\0';
  return out;
}

// Stored when even the error message cannot be allocated; pg_free knows
// not to free it.
char kOutOfMemory[] = "out of memory";

// leveldb's convention: free the old message, store a malloc()ed new one.
void SetError(char** errptr, std::string_view message) {
  if (*errptr != kOutOfMemory) std::free(*errptr);
  char* copy =
      MallocCopy(message.empty() ? std::string_view("unknown error") : message);
  *errptr = copy != nullptr ? copy : kOutOfMemory;
}

void SetError(char** errptr, const absl::Status& status) {
  const absl::string_view m = status.message();
  SetError(errptr, std::string_view(m.data(), m.size()));
}

// In a catch block: stores the exception in flight as the error. No
// exception crosses the C boundary.
void SetCurrentError(char** errptr) {
  try {
    throw;
  } catch (const std::bad_alloc&) {
    SetError(errptr, "out of memory");
  } catch (const std::exception& e) {
    SetError(errptr, std::string("internal error: ") + e.what());
  } catch (...) {
    SetError(errptr, "internal error");
  }
}

// Fixed-capacity scratch arrays on the stack for the spans a request
// carries, with a heap fallback for the unusual request that lists more.
// The inline storage is left uninitialized (the caller writes every element
// it uses), so an empty array costs nothing on the check path.
template <typename T, size_t N>
class SmallArray {
  static_assert(std::is_trivially_destructible_v<T>);

 public:
  explicit SmallArray(size_t n) : size_(n) {
    if (n > N) heap_.resize(n);
  }
  T* data() { return size_ > N ? heap_.data() : inline_; }
  std::span<const T> span() const {
    return {size_ > N ? heap_.data() : inline_, size_};
  }

 private:
  size_t size_;
  union {
    T inline_[N];
  };
  std::vector<T> heap_;
};

std::string_view DecisionString(const char* data, size_t len) {
  return View(data, len);
}

void FillDecision(const Decision& d, pg_decision_t* out) {
  out->status = d.status;
  out->deny = static_cast<int>(d.deny);
  out->reason = d.reason.data();
  out->reason_len = d.reason.size();
  out->message = d.message.data();
  out->message_len = d.message.size();
  out->warnings = d.warnings;
  out->shadow = d.shadow ? 1 : 0;
  out->has_limit = d.has_limit ? 1 : 0;
  out->limit_id = d.limit.limit_id.data();
  out->limit_id_len = d.limit.limit_id.size();
  out->limit_scope = static_cast<int>(d.limit.scope);
  out->limit_meter = d.limit.meter.data();
  out->limit_meter_len = d.limit.meter.size();
  out->limit_window = static_cast<int>(d.limit.window);
  out->limit_mode = static_cast<int>(d.limit.mode);
  out->limit_window_count = static_cast<int>(d.limit.window_count);
  out->limit_value = d.limit_value;
  out->hard_limit = d.hard_limit;
  out->used = d.used;
  out->remaining = d.remaining;
  out->window_start_ms = d.window_start_ms;
  out->reset_ms = d.reset_ms;
  out->retry_after_ms = d.retry_after_ms;
  out->upgrade_plan = d.upgrade_plan.data();
  out->upgrade_plan_len = d.upgrade_plan.size();
  out->reservation.slot = d.reservation.slot;
  out->reservation.generation = d.reservation.generation;
}

Decision InvalidRequest(std::string_view message) {
  Decision d;
  d.status = 400;
  d.deny = plangate::DenyKind::kInvalidRequest;
  d.reason = plangate::DenyKindReason(plangate::DenyKind::kInvalidRequest);
  d.message = message;  // static storage
  return d;
}

Decision Unavailable() {
  Decision d;
  d.status = 503;
  d.deny = plangate::DenyKind::kCapacity;
  d.reason = plangate::DenyKindReason(plangate::DenyKind::kCapacity);
  return d;
}

constexpr size_t kInlineFeatures = 16;
constexpr size_t kInlineAmounts = 16;

// Runs `decide` on the C++ form of `r`. The string and amount arrays live
// on this frame for the call.
template <typename Decide>
Decision WithCheckRequest(const pg_check_request_t& r, Decide&& decide) {
  if (r.key_kind < pg_key_live || r.key_kind > pg_key_internal) {
    return InvalidRequest(
        "key_kind must be 0 (live), 1 (test) or 2 (internal)");
  }
  if (r.num_features > 0 && r.features == nullptr) {
    return InvalidRequest("features is NULL but num_features is not 0");
  }
  if (r.num_amounts > 0 && r.amounts == nullptr) {
    return InvalidRequest("amounts is NULL but num_amounts is not 0");
  }
  SmallArray<std::string_view, kInlineFeatures> features(r.num_features);
  for (size_t i = 0; i < r.num_features; ++i) {
    const size_t len = r.features_lens != nullptr
                           ? r.features_lens[i]
                           : (r.features[i] ? std::strlen(r.features[i]) : 0);
    features.data()[i] = View(r.features[i], len);
  }
  SmallArray<plangate::MeterAmount, kInlineAmounts> amounts(r.num_amounts);
  for (size_t i = 0; i < r.num_amounts; ++i) {
    amounts.data()[i] = {r.amounts[i].meter, r.amounts[i].amount};
  }
  plangate::CheckRequest req;
  req.account_id = View(r.account_id, r.account_id_len);
  req.project_id = View(r.project_id, r.project_id_len);
  req.key_id = View(r.key_id, r.key_id_len);
  req.user_id = View(r.user_id, r.user_id_len);
  req.key_kind = static_cast<plangate::KeyKind>(r.key_kind);
  req.byok = r.byok != 0;
  req.model = View(r.model, r.model_len);
  req.features = features.span();
  req.wallet_micros = r.wallet_micros;
  req.amounts = amounts.span();
  req.now_ms = r.now_ms;
  req.request_id = r.request_id;
  return decide(req);
}

// Enforcer options' clock and event sink: C callbacks behind the C++
// interfaces.
class CallbackClock final : public plangate::Clock {
 public:
  CallbackClock(int64_t (*now_ms)(void*), void* state)
      : now_ms_(now_ms), state_(state) {}
  int64_t NowMs() const override { return now_ms_(state_); }

 private:
  int64_t (*now_ms_)(void*);
  void* state_;
};

class CallbackSink final : public plangate::EventSink {
 public:
  CallbackSink(void (*fn)(void*, const pg_threshold_event_t*), void* state)
      : fn_(fn), state_(state) {}
  void OnThreshold(const plangate::ThresholdEvent& e) override {
    pg_threshold_event_t out{};
    out.kind = static_cast<int>(e.kind);
    out.account_id = e.account_id.data();
    out.account_id_len = e.account_id.size();
    out.scope = static_cast<int>(e.scope);
    out.subject_id = e.subject_id.data();
    out.subject_id_len = e.subject_id.size();
    out.limit_id = e.limit_id.data();
    out.limit_id_len = e.limit_id.size();
    out.window_start_ms = e.window_start_ms;
    out.window_end_ms = e.window_end_ms;
    out.used = e.used;
    out.limit = e.limit;
    fn_(state_, &out);
  }

 private:
  void (*fn_)(void*, const pg_threshold_event_t*);
  void* state_;
};

void AppendMetric(std::string& out, std::string_view name,
                  std::string_view type, std::string_view help,
                  uint64_t value) {
  out.append("# HELP plangate_").append(name).append(" ").append(help);
  out.append("\n# TYPE plangate_").append(name).append(" ").append(type);
  out.append("\nplangate_").append(name).append(" ");
  out.append(std::to_string(value)).append("\n");
}

char* ReturnText(std::string_view text, size_t* len) {
  char* out = MallocCopy(text);
  if (len != nullptr) *len = out == nullptr ? 0 : text.size();
  return out;
}

}  // namespace

struct pg_catalog_t {
  std::shared_ptr<const plangate::Catalog> catalog;
};

struct pg_enforcer_options_t {
  plangate::EnforcerOptions options;
  int64_t (*now_ms)(void*) = nullptr;
  void* clock_state = nullptr;
  void (*on_threshold)(void*, const pg_threshold_event_t*) = nullptr;
  void* sink_state = nullptr;
};

struct pg_enforcer_t {
  // Declared before `enforcer`, so destroyed after it.
  std::unique_ptr<CallbackClock> clock;
  std::unique_ptr<CallbackSink> sink;
  std::unique_ptr<plangate::Enforcer> enforcer;
  // The attached sync, stopped on destroy. pg_sync_start may race with
  // itself (and pg_sync_destroy of another sync) on one enforcer.
  std::mutex sync_mu;
  pg_sync_t* sync = nullptr;  // under sync_mu
};

struct pg_sync_t {
  std::unique_ptr<plangate::RedisSync> sync;  // null once detached
  pg_enforcer_t* owner = nullptr;
};

namespace {
constexpr std::string_view kDetached =
    "sync stopped: its enforcer was destroyed";

void FlushOrDrain(pg_sync_t* sync, int64_t timeout_ms, bool drain,
                  char** errptr) {
  if (!sync->sync) {
    SetError(errptr, kDetached);
    return;
  }
  try {
    const auto timeout =
        std::chrono::milliseconds(std::max<int64_t>(0, timeout_ms));
    absl::Status s =
        drain ? sync->sync->Drain(timeout) : sync->sync->Flush(timeout);
    if (!s.ok()) SetError(errptr, s);
  } catch (...) {
    SetCurrentError(errptr);
  }
}
}  // namespace

extern "C" {

// Library

const char* pg_version(void) { return PLANGATE_VERSION_STRING; }

int pg_version_number(void) {
  return PLANGATE_VERSION_MAJOR * 10000 + PLANGATE_VERSION_MINOR * 100 +
         PLANGATE_VERSION_PATCH;
}

void pg_free(void* ptr) {
  if (ptr != kOutOfMemory) std::free(ptr);
}

const char* pg_commit_result_name(int result) {
  if (result < pg_commit_applied || result > pg_commit_empty) return "unknown";
  // Names are static literals, NUL-terminated.
  return StaticCString(
      plangate::CommitResultName(static_cast<plangate::CommitResult>(result)));
}

const char* pg_deny_reason(int deny) {
  if (deny < 0 || deny >= kNumDenyKinds) return "";
  return StaticCString(
      plangate::DenyKindReason(static_cast<plangate::DenyKind>(deny)));
}

int pg_decision_admitted(const pg_decision_t* decision) {
  return decision->status < 300 ? 1 : 0;
}

// Catalog

pg_catalog_t* pg_catalog_parse(const char* json, size_t json_len,
                               char** errptr) {
  try {
    auto catalog = plangate::Catalog::Parse(View(json, json_len));
    if (!catalog.ok()) {
      SetError(errptr, catalog.status());
      return nullptr;
    }
    return new pg_catalog_t{*std::move(catalog)};
  } catch (...) {
    SetCurrentError(errptr);
    return nullptr;
  }
}

pg_catalog_t* pg_catalog_load_file(const char* path, char** errptr) {
  try {
    auto catalog = plangate::Catalog::LoadFile(path);
    if (!catalog.ok()) {
      SetError(errptr, catalog.status());
      return nullptr;
    }
    return new pg_catalog_t{*std::move(catalog)};
  } catch (...) {
    SetCurrentError(errptr);
    return nullptr;
  }
}

void pg_catalog_destroy(pg_catalog_t* catalog) { delete catalog; }

size_t pg_catalog_num_plans(const pg_catalog_t* catalog) {
  return catalog->catalog->plans().size();
}

const char* pg_catalog_plan_id(const pg_catalog_t* catalog, size_t i) {
  const auto& plans = catalog->catalog->plans();
  return i < plans.size() ? plans[i].id.c_str() : nullptr;
}

size_t pg_catalog_num_meters(const pg_catalog_t* catalog) {
  return catalog->catalog->meters().size();
}

const char* pg_catalog_meter(const pg_catalog_t* catalog, size_t i) {
  const auto& meters = catalog->catalog->meters();
  return i < meters.size() ? meters[i].c_str() : nullptr;
}

const char* pg_catalog_default_plan(const pg_catalog_t* catalog) {
  return catalog->catalog->default_plan().c_str();
}

int pg_catalog_cost_micros(const pg_catalog_t* catalog, const char* model,
                           size_t model_len, int64_t input_tokens,
                           int64_t cached_input_tokens, int64_t output_tokens,
                           int64_t reasoning_tokens, int64_t* cost_micros) {
  *cost_micros = 0;
  const plangate::Price* price =
      catalog->catalog->PriceFor(View(model, model_len));
  if (price == nullptr) return 0;
  *cost_micros =
      plangate::CostMicros(*price, {.input = input_tokens,
                                    .cached_input = cached_input_tokens,
                                    .output = output_tokens,
                                    .reasoning = reasoning_tokens});
  return 1;
}

// Enforcer options

pg_enforcer_options_t* pg_enforcer_options_create(void) {
  return new (std::nothrow) pg_enforcer_options_t;
}

void pg_enforcer_options_destroy(pg_enforcer_options_t* options) {
  delete options;
}

void pg_enforcer_options_set_reservation_ttl_ms(pg_enforcer_options_t* o,
                                                int64_t ms) {
  o->options.reservation_ttl_ms = ms;
}

void pg_enforcer_options_set_idle_subject_ttl_ms(pg_enforcer_options_t* o,
                                                 int64_t ms) {
  o->options.idle_subject_ttl_ms = ms;
}

void pg_enforcer_options_set_max_subjects(pg_enforcer_options_t* o, size_t n) {
  o->options.max_subjects = n;
}

void pg_enforcer_options_set_max_reservations(pg_enforcer_options_t* o,
                                              size_t n) {
  o->options.max_reservations = n;
}

void pg_enforcer_options_set_event_queue_capacity(pg_enforcer_options_t* o,
                                                  size_t n) {
  o->options.event_queue_capacity = n;
}

void pg_enforcer_options_set_clock(pg_enforcer_options_t* o,
                                   int64_t (*now_ms)(void* state),
                                   void* state) {
  o->now_ms = now_ms;
  o->clock_state = state;
}

void pg_enforcer_options_set_event_sink(
    pg_enforcer_options_t* o,
    void (*on_threshold)(void* state, const pg_threshold_event_t* event),
    void* state) {
  o->on_threshold = on_threshold;
  o->sink_state = state;
}

// Enforcer

pg_enforcer_t* pg_enforcer_create(const pg_catalog_t* catalog,
                                  const pg_enforcer_options_t* options,
                                  char** errptr) {
  try {
    auto handle = std::make_unique<pg_enforcer_t>();
    plangate::EnforcerOptions opts;
    if (options != nullptr) {
      opts = options->options;
      if (options->now_ms != nullptr) {
        handle->clock = std::make_unique<CallbackClock>(options->now_ms,
                                                        options->clock_state);
        opts.clock = handle->clock.get();
      }
      if (options->on_threshold != nullptr) {
        handle->sink = std::make_unique<CallbackSink>(options->on_threshold,
                                                      options->sink_state);
        opts.event_sink = handle->sink.get();
      }
    }
    auto enforcer = plangate::Enforcer::Create(catalog->catalog, opts);
    if (!enforcer.ok()) {
      SetError(errptr, enforcer.status());
      return nullptr;
    }
    handle->enforcer = *std::move(enforcer);
    return handle.release();
  } catch (...) {
    SetCurrentError(errptr);
    return nullptr;
  }
}

void pg_enforcer_destroy(pg_enforcer_t* enforcer) {
  if (enforcer == nullptr) return;
  // The last call on the enforcer (c.h): no other thread holds sync_mu.
  if (enforcer->sync != nullptr) {
    // The sync must stop before its enforcer; its handle stays valid (and
    // reports that it is detached) until pg_sync_destroy.
    enforcer->sync->sync.reset();
    enforcer->sync->owner = nullptr;
  }
  delete enforcer;
}

void pg_enforcer_reload_catalog(pg_enforcer_t* enforcer,
                                const pg_catalog_t* catalog, char** errptr) {
  try {
    absl::Status s = enforcer->enforcer->ReloadCatalog(catalog->catalog);
    if (!s.ok()) SetError(errptr, s);
  } catch (...) {
    SetCurrentError(errptr);
  }
}

void pg_enforcer_upsert_account(pg_enforcer_t* enforcer,
                                const pg_account_t* account, char** errptr) {
  if (account->state < pg_subscription_active ||
      account->state > pg_subscription_blocked) {
    SetError(errptr, "state: must be 0 (active), 1 (past_due) or 2 (blocked)");
    return;
  }
  if (account->num_overrides > 0 && account->overrides == nullptr) {
    SetError(errptr, "overrides is NULL but num_overrides is not 0");
    return;
  }
  try {
    plangate::AccountUpdate update;
    update.account_id = Copy(account->account_id, account->account_id_len);
    update.plan_id = Copy(account->plan_id, account->plan_id_len);
    update.anchor_ms = account->anchor_ms;
    update.state = static_cast<plangate::SubscriptionState>(account->state);
    update.past_due_deadline_ms = account->past_due_deadline_ms;
    update.scheduled_plan_id =
        Copy(account->scheduled_plan_id, account->scheduled_plan_id_len);
    update.default_model =
        Copy(account->default_model, account->default_model_len);
    update.overrides.reserve(account->num_overrides);
    for (size_t i = 0; i < account->num_overrides; ++i) {
      const pg_limit_override_t& o = account->overrides[i];
      plangate::LimitOverride lo;
      lo.limit_id = Copy(o.limit_id, o.limit_id_len);
      lo.user_id = Copy(o.user_id, o.user_id_len);
      lo.unlimited = o.unlimited != 0;
      lo.limit = o.limit;
      lo.grace = o.set_grace != 0 ? o.grace : -1;
      update.overrides.push_back(std::move(lo));
    }
    absl::Status s = enforcer->enforcer->UpsertAccount(update);
    if (!s.ok()) SetError(errptr, s);
  } catch (...) {
    SetCurrentError(errptr);
  }
}

int64_t pg_enforcer_update_wallet(pg_enforcer_t* enforcer,
                                  const char* account_id, size_t account_id_len,
                                  int64_t credit_micros, char** errptr) {
  try {
    auto balance = enforcer->enforcer->UpdateWallet(
        {.account_id = Copy(account_id, account_id_len),
         .credit_micros = credit_micros});
    if (!balance.ok()) {
      SetError(errptr, balance.status());
      return 0;
    }
    return *balance;
  } catch (...) {
    SetCurrentError(errptr);
    return 0;
  }
}

int64_t pg_enforcer_credit_wallet(pg_enforcer_t* enforcer,
                                  const char* account_id, size_t account_id_len,
                                  int64_t credit_micros, const char* credit_id,
                                  size_t credit_id_len, char** errptr) {
  try {
    auto balance = enforcer->enforcer->UpdateWallet(
        {.account_id = Copy(account_id, account_id_len),
         .credit_micros = credit_micros,
         .credit_id = Copy(credit_id, credit_id_len)});
    if (!balance.ok()) {
      SetError(errptr, balance.status());
      return 0;
    }
    return *balance;
  } catch (...) {
    SetCurrentError(errptr);
    return 0;
  }
}

void pg_enforcer_check(pg_enforcer_t* enforcer,
                       const pg_check_request_t* request,
                       pg_decision_t* decision) {
  Decision d;
  try {
    d = WithCheckRequest(*request, [&](const plangate::CheckRequest& req) {
      return enforcer->enforcer->Check(req);
    });
  } catch (...) {
    d = Unavailable();  // only a first sighting allocates
  }
  FillDecision(d, decision);
}

void pg_enforcer_prefetch(const pg_enforcer_t* enforcer, const char* account_id,
                          size_t account_id_len) {
  if (account_id == nullptr && account_id_len != 0) return;
  enforcer->enforcer->Prefetch(
      account_id_len == 0 ? std::string_view()
                          : std::string_view(account_id, account_id_len));
}

void pg_enforcer_peek(const pg_enforcer_t* enforcer,
                      const pg_check_request_t* request,
                      pg_decision_t* decision) {
  Decision d;
  try {
    d = WithCheckRequest(*request, [&](const plangate::CheckRequest& req) {
      return enforcer->enforcer->Peek(req);
    });
  } catch (...) {
    d = Unavailable();
  }
  FillDecision(d, decision);
}

void pg_enforcer_extend(pg_enforcer_t* enforcer,
                        const pg_extend_request_t* request,
                        pg_decision_t* decision) {
  Decision d;
  if (request->num_amounts > 0 && request->amounts == nullptr) {
    d.status = 400;
    d.deny = plangate::DenyKind::kInvalidRequest;
    d.reason = plangate::DenyKindReason(d.deny);
    d.message = "amounts is NULL";
    FillDecision(d, decision);
    return;
  }
  try {
    SmallArray<plangate::MeterAmount, kInlineAmounts> amounts(
        request->num_amounts);
    for (size_t i = 0; i < request->num_amounts; ++i) {
      amounts.data()[i] = {request->amounts[i].meter,
                           request->amounts[i].amount};
    }
    plangate::ExtendRequest x;
    x.reservation = {request->reservation.slot,
                     request->reservation.generation};
    x.amounts = amounts.span();
    x.now_ms = request->now_ms;
    d = enforcer->enforcer->Extend(x);
  } catch (...) {
    d = Unavailable();
  }
  FillDecision(d, decision);
}

int pg_enforcer_commit(pg_enforcer_t* enforcer,
                       const pg_commit_request_t* commit) {
  if (commit->num_actual > 0 && commit->actual == nullptr) {
    return pg_commit_invalid;
  }
  try {
    SmallArray<plangate::MeterAmount, kInlineAmounts> actual(
        commit->num_actual);
    for (size_t i = 0; i < commit->num_actual; ++i) {
      actual.data()[i] = {commit->actual[i].meter, commit->actual[i].amount};
    }
    plangate::CommitRequest c;
    c.reservation = {commit->reservation.slot, commit->reservation.generation};
    c.success = commit->failed == 0;
    c.actual = actual.span();
    c.wallet_micros = commit->set_wallet != 0 ? commit->wallet_micros : -1;
    c.request_id = commit->request_id;
    return static_cast<int>(enforcer->enforcer->Commit(c));
  } catch (...) {
    return pg_commit_invalid;
  }
}

void pg_enforcer_check_create(const pg_enforcer_t* enforcer,
                              const char* account_id, size_t account_id_len,
                              const char* gauge, size_t gauge_len,
                              int64_t current, pg_decision_t* decision) {
  Decision d;
  try {
    d = enforcer->enforcer->CheckCreate(View(account_id, account_id_len),
                                        View(gauge, gauge_len), current);
  } catch (...) {
    d = Unavailable();
  }
  FillDecision(d, decision);
}

int pg_enforcer_meter_id(const pg_enforcer_t* enforcer, const char* meter,
                         size_t meter_len) {
  return enforcer->enforcer->MeterId(View(meter, meter_len));
}

char* pg_enforcer_usage_json(const pg_enforcer_t* enforcer,
                             const char* account_id, size_t account_id_len,
                             int64_t now_ms, size_t* json_len, char** errptr) {
  try {
    auto usage =
        enforcer->enforcer->Usage(View(account_id, account_id_len), now_ms);
    if (!usage.ok()) {
      SetError(errptr, usage.status());
      if (json_len != nullptr) *json_len = 0;
      return nullptr;
    }
    char* out = ReturnText(plangate::UsageReportJson(*usage), json_len);
    if (out == nullptr) SetError(errptr, "out of memory");
    return out;
  } catch (...) {
    SetCurrentError(errptr);
    if (json_len != nullptr) *json_len = 0;
    return nullptr;
  }
}

void pg_enforcer_maintain(pg_enforcer_t* enforcer, int64_t now_ms) {
  try {
    enforcer->enforcer->Maintain(now_ms);
  } catch (...) {
    // Housekeeping is retried on the next call.
  }
}

size_t pg_enforcer_deliver_events(pg_enforcer_t* enforcer, int64_t now_ms) {
  try {
    return enforcer->enforcer->DeliverEvents(now_ms);
  } catch (...) {
    return 0;
  }
}

void pg_enforcer_stats(const pg_enforcer_t* enforcer,
                       pg_enforcer_stats_t* stats) {
  const plangate::EnforcerStats s = enforcer->enforcer->Stats();
  stats->subjects = s.subjects;
  stats->subject_capacity = s.subject_capacity;
  stats->reservations_pending = s.reservations_pending;
  stats->reservations_expired = s.reservations_expired;
  stats->subjects_reclaimed = s.subjects_reclaimed;
  stats->capacity_denials = s.capacity_denials;
  stats->unreserved_admits = s.unreserved_admits;
  stats->events_delivered = s.events_delivered;
  stats->events_dropped = s.events_dropped;
}

char* pg_enforcer_prometheus_text(const pg_enforcer_t* enforcer,
                                  size_t* text_len) {
  try {
    const plangate::EnforcerStats e = enforcer->enforcer->Stats();
    std::string out;
    // Names and help as RedisSync::PrometheusText has them, plus the two
    // it leaves out.
    AppendMetric(out, "subjects", "gauge", "Subjects in the counter cache.",
                 e.subjects);
    AppendMetric(out, "subject_capacity", "gauge",
                 "Subjects the counter cache holds at most.",
                 e.subject_capacity);
    AppendMetric(out, "reservations_pending", "gauge",
                 "Reservations not yet settled.", e.reservations_pending);
    AppendMetric(out, "reservations_expired_total", "counter",
                 "Reservations refunded by expiry.", e.reservations_expired);
    AppendMetric(out, "subjects_reclaimed_total", "counter",
                 "Idle subjects reclaimed.", e.subjects_reclaimed);
    AppendMetric(out, "capacity_denials_total", "counter",
                 "Checks denied because the counter cache was full.",
                 e.capacity_denials);
    AppendMetric(out, "unreserved_admits_total", "counter",
                 "Admitted while the reservation table was full.",
                 e.unreserved_admits);
    AppendMetric(out, "events_delivered_total", "counter",
                 "Threshold events delivered.", e.events_delivered);
    AppendMetric(out, "events_dropped_total", "counter",
                 "Threshold events dropped (queue full).", e.events_dropped);
    return ReturnText(out, text_len);
  } catch (...) {
    if (text_len != nullptr) *text_len = 0;
    return nullptr;
  }
}

// HTTP rendering

int pg_http_render(const pg_decision_t* decision, int64_t now_ms, uint32_t omit,
                   char* headers, size_t headers_size, size_t* headers_len,
                   char* body, size_t body_size, size_t* body_len,
                   char** errptr) {
  *headers_len = 0;
  *body_len = 0;
  if (headers_size > 0) headers[0] = '\0';
  if (body_size > 0) body[0] = '\0';
  const pg_decision_t& in = *decision;
  if (in.deny < 0 || in.deny >= kNumDenyKinds) {
    SetError(errptr, "decision.deny: out of range");
    return 0;
  }
  if (in.limit_scope < pg_scope_account || in.limit_scope > pg_scope_user) {
    SetError(errptr, "decision.limit_scope: out of range");
    return 0;
  }
  if (in.limit_window < pg_window_billing_period ||
      in.limit_window > pg_window_second) {
    SetError(errptr, "decision.limit_window: out of range");
    return 0;
  }
  if (in.limit_mode < pg_mode_fixed || in.limit_mode > pg_mode_sliding) {
    SetError(errptr, "decision.limit_mode: out of range");
    return 0;
  }
  if (in.limit_window_count < 0) {
    SetError(errptr, "decision.limit_window_count: must not be negative");
    return 0;
  }
  Decision d;
  d.status = in.status;
  d.deny = static_cast<plangate::DenyKind>(in.deny);
  d.reason = DecisionString(in.reason, in.reason_len);
  d.message = DecisionString(in.message, in.message_len);
  d.warnings = in.warnings;
  d.shadow = in.shadow != 0;
  d.has_limit = in.has_limit != 0;
  d.limit.limit_id = DecisionString(in.limit_id, in.limit_id_len);
  d.limit.scope = static_cast<plangate::Scope>(in.limit_scope);
  d.limit.meter = DecisionString(in.limit_meter, in.limit_meter_len);
  d.limit.window = static_cast<plangate::WindowUnit>(in.limit_window);
  d.limit.mode = static_cast<plangate::WindowMode>(in.limit_mode);
  d.limit.window_count = in.limit_window_count == 0
                             ? 1u
                             : static_cast<uint32_t>(in.limit_window_count);
  d.limit_value = in.limit_value;
  d.hard_limit = in.hard_limit;
  d.used = in.used;
  d.remaining = in.remaining;
  d.window_start_ms = in.window_start_ms;
  d.reset_ms = in.reset_ms;
  d.retry_after_ms = in.retry_after_ms;
  d.upgrade_plan = DecisionString(in.upgrade_plan, in.upgrade_plan_len);
  d.reservation = {in.reservation.slot, in.reservation.generation};

  plangate::HttpOptions options;
  options.ietf_headers = (omit & pg_http_omit_ietf) == 0;
  options.x_ratelimit_headers = (omit & pg_http_omit_x_ratelimit) == 0;
  options.warning_headers = (omit & pg_http_omit_warning) == 0;
  options.content_type_header = (omit & pg_http_omit_content_type) == 0;
  if (now_ms == 0) now_ms = plangate::SystemClock::Default()->NowMs();
  const plangate::HttpRendering http(d, now_ms, options);

  size_t need = 0;
  for (const plangate::HttpHeader& h : http.headers()) {
    need += h.name.size() + 2 + h.value.size() + 2;
  }
  const std::string_view b = http.body();
  if (need + 1 > headers_size || b.size() + 1 > body_size) {
    *headers_len = need;
    *body_len = b.size();
    SetError(errptr, need + 1 > headers_size
                         ? "headers buffer too small (PG_HTTP_HEADERS_SIZE "
                           "bytes always suffice)"
                         : "body buffer too small (PG_HTTP_BODY_SIZE bytes "
                           "always suffice)");
    return 0;
  }
  char* p = headers;
  for (const plangate::HttpHeader& h : http.headers()) {
    std::memcpy(p, h.name.data(), h.name.size());
    p += h.name.size();
    *p++ = ':';
    *p++ = ' ';
    std::memcpy(p, h.value.data(), h.value.size());
    p += h.value.size();
    *p++ = '\r';
    *p++ = '\n';
  }
  *p = '\0';
  *headers_len = need;
  if (!b.empty()) std::memcpy(body, b.data(), b.size());
  body[b.size()] = '\0';
  *body_len = b.size();
  return http.status();
}

const char* pg_http_error_type(int status) {
  return StaticCString(plangate::HttpErrorType(status));
}

// Sync options

pg_sync_options_t* pg_sync_options_create(void) {
  return new (std::nothrow) pg_sync_options_t;
}

void pg_sync_options_destroy(pg_sync_options_t* options) { delete options; }

void pg_sync_options_set_key_prefix(pg_sync_options_t* o, const char* prefix,
                                    size_t prefix_len) {
  o->options.key_prefix = Copy(prefix, prefix_len);
}

void pg_sync_options_set_instance_id(pg_sync_options_t* o, const char* id,
                                     size_t id_len) {
  o->options.instance_id = Copy(id, id_len);
}

void pg_sync_options_set_flush_interval_ms(pg_sync_options_t* o, int64_t ms) {
  o->options.flush_interval = std::chrono::milliseconds(ms);
}

void pg_sync_options_set_refresh_interval_ms(pg_sync_options_t* o, int64_t ms) {
  o->options.refresh_interval = std::chrono::milliseconds(ms);
}

void pg_sync_options_set_max_batch(pg_sync_options_t* o, size_t n) {
  o->options.max_batch = n;
}

void pg_sync_options_set_leases(pg_sync_options_t* o, unsigned char on) {
  o->options.leases = on != 0;
}

void pg_sync_options_set_expected_instances(pg_sync_options_t* o, int n) {
  o->options.expected_instances = n;
}

void pg_sync_options_set_min_round_units(pg_sync_options_t* o, int64_t n) {
  o->options.min_round_units = n;
}

void pg_sync_options_set_cold_start_share(pg_sync_options_t* o, double share) {
  o->options.cold_start_share = share;
}

void pg_sync_options_set_lease_ttl_ms(pg_sync_options_t* o, int64_t ms) {
  o->options.lease_ttl = std::chrono::milliseconds(ms);
}

void pg_sync_options_set_unavailable_after_ms(pg_sync_options_t* o,
                                              int64_t ms) {
  o->options.unavailable_after = std::chrono::milliseconds(ms);
}

void pg_sync_options_set_connect_timeout_ms(pg_sync_options_t* o, int64_t ms) {
  o->connect_timeout = std::chrono::milliseconds(ms);
}

void pg_sync_options_set_command_timeout_ms(pg_sync_options_t* o, int64_t ms) {
  o->command_timeout = std::chrono::milliseconds(ms);
}

// Sync

pg_sync_t* pg_sync_start(pg_enforcer_t* enforcer, const char* redis_url,
                         const pg_sync_options_t* options, char** errptr) {
  try {
    std::lock_guard<std::mutex> lock(enforcer->sync_mu);
    if (enforcer->sync != nullptr) {
      SetError(errptr, "a sync is already attached to this enforcer");
      return nullptr;
    }
    const pg_sync_options_t defaults;
    const pg_sync_options_t& o = options != nullptr ? *options : defaults;
    auto redis = plangate::ParseRedisUrl(redis_url);
    if (!redis.ok()) {
      SetError(errptr, redis.status());
      return nullptr;
    }
    plangate::SyncOptions sync_options = o.options;
    sync_options.redis = *std::move(redis);
    sync_options.redis.connect_timeout = o.connect_timeout;
    sync_options.redis.command_timeout = o.command_timeout;
    if (absl::Status s =
            plangate::c_api::ApplyRedisOptions(o, &sync_options.redis);
        !s.ok()) {
      SetError(errptr, s);
      return nullptr;
    }
    auto sync = plangate::RedisSync::Start(*enforcer->enforcer,
                                           std::move(sync_options));
    if (!sync.ok()) {
      SetError(errptr, sync.status());
      return nullptr;
    }
    auto* handle = new pg_sync_t{*std::move(sync), enforcer};
    enforcer->sync = handle;
    return handle;
  } catch (...) {
    SetCurrentError(errptr);
    return nullptr;
  }
}

void pg_sync_destroy(pg_sync_t* sync) {
  if (sync == nullptr) return;
  if (sync->owner != nullptr) {
    std::lock_guard<std::mutex> lock(sync->owner->sync_mu);
    sync->owner->sync = nullptr;
  }
  delete sync;
}

void pg_sync_flush(pg_sync_t* sync, int64_t timeout_ms, char** errptr) {
  FlushOrDrain(sync, timeout_ms, /*drain=*/false, errptr);
}

void pg_sync_drain(pg_sync_t* sync, int64_t timeout_ms, char** errptr) {
  FlushOrDrain(sync, timeout_ms, /*drain=*/true, errptr);
}

void pg_sync_stats(const pg_sync_t* sync, pg_sync_stats_t* stats) {
  *stats = pg_sync_stats_t{};
  stats->last_sync_age_ms = -1;
  if (!sync->sync) return;
  const plangate::SyncStats s = sync->sync->Stats();
  stats->connected = s.connected ? 1 : 0;
  stats->redis_up = s.redis_up ? 1 : 0;
  stats->counters = s.counters;
  stats->leased_counters = s.leased_counters;
  stats->rounds = s.rounds;
  stats->round_trips = s.round_trips;
  stats->commands = s.commands;
  stats->retries = s.retries;
  stats->errors = s.errors;
  stats->timeouts = s.timeouts;
  stats->reconnects = s.reconnects;
  stats->lease_grants = s.lease_grants;
  stats->lease_units = s.lease_units;
  stats->lease_returns = s.lease_returns;
  stats->units_flushed = s.units_flushed;
  stats->events_won = s.events_won;
  stats->pending = s.pending;
  stats->pending_dropped = s.pending_dropped;
  stats->dirty_overflow = s.dirty_overflow;
  stats->last_sync_age_ms = s.last_sync_age_ms;
}

char* pg_sync_prometheus_text(const pg_sync_t* sync, size_t* text_len) {
  if (!sync->sync) return ReturnText("", text_len);
  try {
    return ReturnText(sync->sync->PrometheusText(), text_len);
  } catch (...) {
    if (text_len != nullptr) *text_len = 0;
    return nullptr;
  }
}

const char* pg_sync_instance_id(const pg_sync_t* sync) {
  if (!sync->sync) return "";
  return sync->sync->instance_id().c_str();
}

char* pg_sync_last_error(const pg_sync_t* sync) {
  if (!sync->sync) return MallocCopy(kDetached);
  try {
    return MallocCopy(sync->sync->LastError());
  } catch (...) {
    return nullptr;
  }
}

}  // extern "C"
