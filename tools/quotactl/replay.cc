// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "replay.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "fmt/format.h"
#include "internal/period.h"
#include "nlohmann/json.hpp"
#include "plangate/clock.h"
#include "plangate/decision.h"
#include "plangate/enforcer.h"

namespace plangate::replay {
namespace {

using OrderedJson = nlohmann::ordered_json;

std::string Quote(std::string_view s) {
  return nlohmann::json(std::string(s))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string WarningList(uint32_t warnings) {
  std::string out = "[";
  for (std::string_view name : WarningNames(warnings)) {
    if (out.size() > 1) out += ", ";
    out += name;
  }
  return out + "]";
}

// What the decision was, for a mismatch message: "200 (admitted, warnings
// [grace])" or "402 (reason billing_limit_reached)".
std::string Outcome(const Decision& d) {
  if (d.admitted()) {
    return fmt::format("{} (admitted, warnings {})", d.status,
                       WarningList(d.warnings));
  }
  return fmt::format("{} (reason {})", d.status,
                     d.reason.empty() ? "none" : std::string(d.reason));
}

// An account as the replay last registered it, so that an event changing
// one thing keeps the others.
struct AccountState {
  AccountUpdate update;
  int64_t scheduled_at_ms = 0;  // when update.scheduled_plan_id takes over
};

class Replayer {
 public:
  Replayer(std::shared_ptr<const Catalog> catalog, const ReplayOptions& options)
      : catalog_(std::move(catalog)), options_(options) {}

  absl::StatusOr<ReplaySummary> Run(const std::vector<AccountSpec>& accounts,
                                    const std::vector<Event>& events);

 private:
  absl::Status Register(const std::vector<AccountSpec>& accounts,
                        int64_t now_ms);
  absl::Status Upsert(AccountState& state, int64_t now_ms);
  absl::Status ApplyAccountEvent(const Event& ev);
  void Request(const Event& ev);
  void Create(const Event& ev);
  void Record(const Event& ev, const Decision& d, bool create);
  void Check(const Event& ev, const Decision& d);
  absl::Status Fail(const Event& ev, std::string_view field,
                    std::string_view reason) const {
    return absl::InvalidArgumentError(fmt::format(
        "{}:{}: {}: {}", options_.trace_name, ev.line, field, reason));
  }

  std::shared_ptr<const Catalog> catalog_;
  const ReplayOptions& options_;
  SimulatedClock clock_;
  std::unique_ptr<Enforcer> enforcer_;
  std::vector<int> meter_ids_;  // catalog meter index -> Enforcer::MeterId
  std::map<std::string, AccountState> accounts_;
  ReplaySummary summary_;
};

absl::Status Replayer::Upsert(AccountState& state, int64_t now_ms) {
  const AccountUpdate& u = state.update;
  if (!u.scheduled_plan_id.empty()) {
    // It takes effect at the end of the current billing period.
    state.scheduled_at_ms =
        internal::PeriodContaining(u.anchor_ms, 1, now_ms).end_ms;
  }
  return enforcer_->UpsertAccount(u);
}

absl::Status Replayer::Register(const std::vector<AccountSpec>& accounts,
                                int64_t now_ms) {
  for (size_t i = 0; i < accounts.size(); ++i) {
    const AccountSpec& spec = accounts[i];
    AccountState& state = accounts_[spec.id];
    state.update.account_id = spec.id;
    state.update.plan_id = spec.plan;
    state.update.anchor_ms = spec.anchor_ms;
    state.update.state = spec.state;
    state.update.past_due_deadline_ms = spec.past_due_until_ms;
    state.update.scheduled_plan_id = spec.scheduled_plan;
    state.update.default_model = spec.default_model;
    state.update.overrides = spec.overrides;
    auto fail = [&](const absl::Status& s) {
      return absl::InvalidArgumentError(
          fmt::format("{}:{}: accounts[{}]: {}", options_.accounts_name,
                      spec.line, i, std::string(s.message())));
    };
    if (absl::Status s = Upsert(state, now_ms); !s.ok()) return fail(s);
    if (spec.wallet_micros > 0) {
      auto balance = enforcer_->UpdateWallet(
          {.account_id = spec.id, .credit_micros = spec.wallet_micros});
      if (!balance.ok()) return fail(balance.status());
    }
  }
  return absl::OkStatus();
}

absl::Status Replayer::ApplyAccountEvent(const Event& ev) {
  auto it = accounts_.find(ev.account);
  if (it == accounts_.end()) {  // the parser checked; defensive
    return Fail(ev, "account",
                fmt::format("unknown account {}", Quote(ev.account)));
  }
  AccountState& state = it->second;
  AccountUpdate& u = state.update;
  // A scheduled change that has taken effect is the plan now; the update
  // below must not schedule it again from the current period.
  if (ev.type != EventType::kWalletCredit && !u.scheduled_plan_id.empty() &&
      ev.t_ms >= state.scheduled_at_ms) {
    u.plan_id = std::exchange(u.scheduled_plan_id, std::string());
  }
  switch (ev.type) {
    case EventType::kPlanChange:
      if (ev.plan) u.plan_id = *ev.plan;
      if (ev.scheduled_plan) u.scheduled_plan_id = *ev.scheduled_plan;
      if (ev.overrides) u.overrides = *ev.overrides;
      break;
    case EventType::kPaymentFailed:
      u.state = SubscriptionState::kPastDue;
      u.past_due_deadline_ms = ev.grace_until_ms;
      break;
    case EventType::kPaymentSucceeded:
      u.state = SubscriptionState::kActive;
      u.past_due_deadline_ms = 0;
      break;
    case EventType::kBlock:
      u.state = SubscriptionState::kBlocked;
      break;
    case EventType::kWalletCredit: {
      auto balance = enforcer_->UpdateWallet(
          {.account_id = ev.account, .credit_micros = ev.micros});
      if (!balance.ok()) {
        return Fail(ev, "micros", std::string(balance.status().message()));
      }
      return absl::OkStatus();
    }
    default:
      return absl::OkStatus();
  }
  if (absl::Status s = Upsert(state, ev.t_ms); !s.ok()) {
    return Fail(ev, ev.type == EventType::kPlanChange ? "plan" : "type",
                std::string(s.message()));
  }
  return absl::OkStatus();
}

void Replayer::Request(const Event& ev) {
  std::vector<std::string_view> features(ev.features.begin(),
                                         ev.features.end());
  std::vector<MeterAmount> amounts;
  amounts.reserve(ev.amounts.size());
  for (const TraceAmount& a : ev.amounts) {
    amounts.push_back({meter_ids_[a.meter], a.amount});
  }
  CheckRequest req;
  req.account_id = ev.account;
  req.project_id = ev.project;
  req.key_id = ev.key;
  req.user_id = ev.user;
  req.key_kind = ev.kind;
  req.byok = ev.byok;
  req.model = ev.model;
  req.features = features;
  req.wallet_micros = ev.wallet_micros;
  req.amounts = amounts;
  req.now_ms = ev.t_ms;
  req.request_id = static_cast<uint64_t>(ev.line);
  const Decision d = enforcer_->Check(req);
  if (d.admitted() && !d.reservation.empty()) {
    std::vector<MeterAmount> actual;
    actual.reserve(ev.actual.size());
    for (const TraceAmount& a : ev.actual) {
      actual.push_back({meter_ids_[a.meter], a.amount});
    }
    const CommitResult result =
        enforcer_->Commit({.reservation = d.reservation,
                           .success = ev.success,
                           .actual = actual,
                           .request_id = static_cast<uint64_t>(ev.line)});
    if (result == CommitResult::kRefunded) ++summary_.refunded;
  }
  ++summary_.requests;
  Record(ev, d, /*create=*/false);
}

void Replayer::Create(const Event& ev) {
  const Decision d = enforcer_->CheckCreate(ev.account, ev.gauge, ev.current);
  ++summary_.creates;
  Record(ev, d, /*create=*/true);
}

void Replayer::Record(const Event& ev, const Decision& d, bool create) {
  Tally& tally = summary_.accounts[ev.account];
  ++tally.decisions;
  if (d.admitted()) {
    ++tally.admitted;
    if (d.warnings != kWarnNone) ++tally.warned;
    if (d.warnings & kWarnSoftNudge) ++tally.soft_nudge;
    if (d.warnings & kWarnGrace) ++tally.grace;
    if (d.warnings & kWarnPastDue) ++tally.past_due;
    if (d.warnings & kWarnShadowDenied) ++tally.shadow_denied;
  } else {
    ++tally.denied;
    ++tally.denials[{d.status, std::string(d.reason)}];
  }

  if (options_.on_decision) {
    OrderedJson line;
    line["line"] = ev.line;
    line["t"] = ev.t_ms;
    if (create) line["type"] = "create";
    if (!ev.id.empty()) line["id"] = ev.id;
    line["account"] = ev.account;
    if (create) line["gauge"] = ev.gauge;
    line["status"] = d.status;
    line["reason"] = std::string(d.reason);
    OrderedJson warnings = OrderedJson::array();
    for (std::string_view w : WarningNames(d.warnings)) {
      warnings.push_back(std::string(w));
    }
    line["warnings"] = std::move(warnings);
    line["limit"] = d.has_limit ? std::string(d.limit.limit_id) : "";
    line["used"] = d.used;
    line["remaining"] = d.remaining;
    line["retry_after_ms"] = d.retry_after_ms;
    line["upgrade_plan"] = std::string(d.upgrade_plan);
    options_.on_decision(
        line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  if (options_.check) Check(ev, d);
}

void Replayer::Check(const Event& ev, const Decision& d) {
  const Expectation& e = ev.expect;
  summary_.expectations += e.count();
  auto mismatch = [&](std::string text) {
    summary_.mismatches.push_back(
        fmt::format("{}:{}: {}", options_.trace_name, ev.line, text));
  };
  if (e.status && *e.status != d.status) {
    mismatch(fmt::format("expected status {}, got {}", *e.status, Outcome(d)));
  }
  if (e.reason && *e.reason != d.reason) {
    mismatch(fmt::format("expected reason {}, got {} (status {})",
                         Quote(*e.reason), Quote(d.reason), d.status));
  }
  if (e.warnings && *e.warnings != d.warnings) {
    mismatch(fmt::format("expected warnings {}, got {} (status {})",
                         WarningList(*e.warnings), WarningList(d.warnings),
                         d.status));
  }
  if (e.upgrade_plan && *e.upgrade_plan != d.upgrade_plan) {
    mismatch(fmt::format("expected upgrade_plan {}, got {} ({})",
                         Quote(*e.upgrade_plan), Quote(d.upgrade_plan),
                         Outcome(d)));
  }
  const std::string_view limit =
      d.has_limit ? d.limit.limit_id : std::string_view();
  if (e.limit && *e.limit != limit) {
    mismatch(fmt::format("expected limit {}, got {} ({})", Quote(*e.limit),
                         Quote(limit), Outcome(d)));
  }
  auto number = [&](const std::optional<int64_t>& want, int64_t got,
                    std::string_view name) {
    if (want && *want != got) {
      mismatch(fmt::format("expected {} {}, got {} ({})", name, *want, got,
                           Outcome(d)));
    }
  };
  number(e.used, d.used, "used");
  number(e.remaining, d.remaining, "remaining");
  number(e.retry_after_ms, d.retry_after_ms, "retry_after_ms");
  if (e.wallet_balance) {
    auto usage = enforcer_->Usage(ev.account, ev.t_ms);
    if (!usage.ok()) {
      mismatch(fmt::format("expected wallet_balance {}, got none ({})",
                           *e.wallet_balance,
                           std::string(usage.status().message())));
    } else if (usage->wallet_micros != *e.wallet_balance) {
      mismatch(fmt::format("expected wallet_balance {}, got {}",
                           *e.wallet_balance, usage->wallet_micros));
    }
  }
}

absl::StatusOr<ReplaySummary> Replayer::Run(
    const std::vector<AccountSpec>& accounts,
    const std::vector<Event>& events) {
  const int64_t start_ms = events.empty() ? 0 : events.front().t_ms;
  clock_.SetMs(start_ms);
  EnforcerOptions enforcer_options = options_.enforcer;
  enforcer_options.clock = &clock_;
  auto enforcer = Enforcer::Create(catalog_, enforcer_options);
  if (!enforcer.ok()) return enforcer.status();
  enforcer_ = std::move(*enforcer);
  for (const std::string& meter : catalog_->meters()) {
    meter_ids_.push_back(enforcer_->MeterId(meter));
  }
  if (absl::Status s = Register(accounts, start_ms); !s.ok()) return s;

  const size_t total = events.size();
  const size_t step = std::max<size_t>(1, total / 100);
  for (size_t i = 0; i < total; ++i) {
    const Event& ev = events[i];
    clock_.SetMs(ev.t_ms);
    ++summary_.events;
    switch (ev.type) {
      case EventType::kRequest:
        Request(ev);
        break;
      case EventType::kCreate:
        Create(ev);
        break;
      case EventType::kMaintain:
        enforcer_->Maintain(ev.t_ms);
        break;
      default:
        if (absl::Status s = ApplyAccountEvent(ev); !s.ok()) return s;
        break;
    }
    if (options_.on_progress && (i + 1) % step == 0) {
      options_.on_progress(i + 1, total);
    }
  }
  return std::move(summary_);
}

// Renders rows as columns; align[c] is 'l' or 'r' for column c.
std::string Table(const std::vector<std::vector<std::string>>& rows,
                  std::string_view align) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t c = 0; c < row.size(); ++c) {
      widths[c] = std::max(widths[c], row[c].size());
    }
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      if (c > 0) line += "  ";
      const bool left = c < align.size() && align[c] == 'l';
      line += left ? fmt::format("{:<{}}", row[c], widths[c])
                   : fmt::format("{:>{}}", row[c], widths[c]);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line;
    out += '\n';
  }
  return out;
}

}  // namespace

absl::StatusOr<ReplaySummary> Replay(std::shared_ptr<const Catalog> catalog,
                                     const std::vector<AccountSpec>& accounts,
                                     const std::vector<Event>& events,
                                     const ReplayOptions& options) {
  if (catalog == nullptr) {
    return absl::InvalidArgumentError("replay: catalog is null");
  }
  Replayer replayer(std::move(catalog), options);
  return replayer.Run(accounts, events);
}

std::string FormatSummary(const ReplaySummary& summary, bool check) {
  auto n = [](int64_t v) { return fmt::format("{}", v); };
  std::string out = fmt::format(
      "replayed {} events: requests {}, creates {}, refunded {}\n",
      summary.events, summary.requests, summary.creates, summary.refunded);
  if (!summary.accounts.empty()) {
    std::vector<std::vector<std::string>> rows = {
        {"account", "decisions", "admitted", "warned", "soft_nudge", "grace",
         "past_due", "shadow", "denied"}};
    Tally total;
    for (const auto& [account, t] : summary.accounts) {
      rows.push_back({account.empty() ? "(none)" : account, n(t.decisions),
                      n(t.admitted), n(t.warned), n(t.soft_nudge), n(t.grace),
                      n(t.past_due), n(t.shadow_denied), n(t.denied)});
      total.decisions += t.decisions;
      total.admitted += t.admitted;
      total.warned += t.warned;
      total.soft_nudge += t.soft_nudge;
      total.grace += t.grace;
      total.past_due += t.past_due;
      total.shadow_denied += t.shadow_denied;
      total.denied += t.denied;
      for (const auto& [key, count] : t.denials) total.denials[key] += count;
    }
    rows.push_back({"total", n(total.decisions), n(total.admitted),
                    n(total.warned), n(total.soft_nudge), n(total.grace),
                    n(total.past_due), n(total.shadow_denied),
                    n(total.denied)});
    out += '\n';
    out += Table(rows, "lrrrrrrrr");
    if (!total.denials.empty()) {
      std::vector<std::vector<std::string>> denied = {
          {"denied", "status", "reason", "count"}};
      for (const auto& [account, t] : summary.accounts) {
        for (const auto& [key, count] : t.denials) {
          denied.push_back({account.empty() ? "(none)" : account, n(key.first),
                            key.second.empty() ? "-" : key.second, n(count)});
        }
      }
      for (const auto& [key, count] : total.denials) {
        denied.push_back({"total", n(key.first),
                          key.second.empty() ? "-" : key.second, n(count)});
      }
      out += '\n';
      out += Table(denied, "lrlr");
    }
  }
  if (check) {
    out += fmt::format("\ncheck: {} expectations, {} mismatches\n",
                       summary.expectations, summary.mismatches.size());
  }
  return out;
}

}  // namespace plangate::replay
