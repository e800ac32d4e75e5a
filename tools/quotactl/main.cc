// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// quotactl: validates plan catalogs and replays request traces against them
// on a simulated clock. docs/replay.md documents the formats.
//
//   quotactl validate CATALOG
//   quotactl replay --catalog C --accounts A --trace T [--out F] [--check]
//   quotactl usage --catalog C --plan P --account ID [--anchor T] [--now T]
//                  [--redis URL] [--prefix P] [--redis-tls-* ...]
//                  [--redis-sentinel-password PW]
//   quotactl account set --redis URL --account ID --plan P [...]
//   quotactl wallet credit --redis URL --account ID --credit-id ID --micros N
//   quotactl wallet show --redis URL --account ID [--credit-id ID]
//
// Exit status: 0 success, 1 invalid input or failed expectations, 2 usage.

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "fmt/format.h"
#include "internal/json_path.h"
#include "plangate/catalog.h"
#include "plangate/sync.h"
#include "replay.h"
#include "trace.h"
#include "usage.h"

namespace {

constexpr char kUsage[] =
    "usage: quotactl validate CATALOG\n"
    "       quotactl replay --catalog FILE --accounts FILE --trace FILE\n"
    "                       [--out FILE] [--check]\n"
    "       quotactl usage --catalog FILE --plan PLAN --account ID\n"
    "                      [--anchor TIME] [--now TIME] [--redis URL]\n"
    "                      [--prefix PREFIX] [--redis-tls-ca FILE]\n"
    "                      [--redis-tls-ca-dir DIR] [--redis-tls-cert FILE\n"
    "                      --redis-tls-key FILE] [--redis-tls-server-name N]\n"
    "                      [--redis-tls-no-verify]\n"
    "                      [--redis-sentinel-password PASSWORD]\n"
    "       quotactl account set --redis URL --account ID --plan PLAN\n"
    "                      [--prefix PREFIX] [--catalog FILE] [--anchor TIME]\n"
    "                      [--state active|past_due|blocked]\n"
    "                      [--past-due-until TIME] [--scheduled-plan PLAN]\n"
    "                      [--default-model MODEL] [--redis-tls-* as for "
    "usage]\n"
    "       quotactl wallet credit --redis URL --account ID --credit-id ID\n"
    "                      --micros N [--prefix PREFIX] [--timeout MS]\n"
    "                      [--redis-tls-* as for usage]\n"
    "       quotactl wallet show --redis URL --account ID [--credit-id ID]\n"
    "                      [--prefix PREFIX] [--timeout MS]\n"
    "                      [--redis-tls-* as for usage]\n"
    "  wallet credit: N micro-units, once per credit id (negative: a\n"
    "  correction, refused if it would leave less than is spent or leased)\n"
    "  --redis URL: redis://[[user]:pw@]host[:port][/db][?cluster=1],\n"
    "  rediss://... (TLS), unix:///path[?db=N] or\n"
    "  redis-sentinel://[[user]:pw@]host:port[,host:port...]/master[/db]\n";

// Traces longer than this show a progress bar when stderr is a terminal.
constexpr size_t kProgressMinEvents = 10'000;

int Usage(std::string_view problem) {
  if (!problem.empty()) fmt::print(stderr, "quotactl: {}\n", problem);
  std::fputs(kUsage, stderr);
  return 2;
}

void PrintError(const absl::Status& status) {
  fmt::print(stderr, "{}\n", std::string(status.message()));
}

std::optional<std::string> ReadFile(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    fmt::print(stderr, "{}: cannot open: {}\n", path, std::strerror(errno));
    return std::nullopt;
  }
  std::string text;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) {
    fmt::print(stderr, "{}: cannot read\n", path);
    return std::nullopt;
  }
  return text;
}

int Validate(const std::vector<std::string_view>& args) {
  if (args.size() != 1 || args[0].empty() || args[0][0] == '-') {
    return Usage(args.empty() ? "validate: missing CATALOG"
                              : "validate: takes exactly one CATALOG");
  }
  const std::string path(args[0]);
  auto catalog = plangate::Catalog::LoadFile(path);
  if (!catalog.ok()) {
    PrintError(catalog.status());
    return 1;
  }
  fmt::print("{}: ok ({} plan{})\n", path, (*catalog)->plans().size(),
             (*catalog)->plans().size() == 1 ? "" : "s");
  return 0;
}

// Parses "--name value" and "--name=value" into `flags`, and value-less
// `switches`. Returns the usage problem ("replay: --trace needs a value"),
// or "" when every argument was understood.
std::string ParseFlags(
    std::string_view command, const std::vector<std::string_view>& args,
    const std::vector<std::pair<std::string_view, std::string*>>& flags,
    const std::vector<std::pair<std::string_view, bool*>>& switches = {}) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    bool* on = nullptr;
    for (const auto& [name, target] : switches) {
      if (arg == name) on = target;
    }
    if (on != nullptr) {
      *on = true;
      continue;
    }
    std::string_view name = arg;
    std::optional<std::string_view> value;
    if (const size_t eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    std::string* target = nullptr;
    for (const auto& [flag, where] : flags) {
      if (name == flag) target = where;
    }
    if (target == nullptr) {
      return fmt::format("{}: unknown argument '{}'", command, arg);
    }
    if (!value) {
      if (i + 1 >= args.size()) {
        return fmt::format("{}: {} needs a value", command, name);
      }
      value = args[++i];
    }
    if (value->empty()) {
      return fmt::format("{}: {} needs a value", command, name);
    }
    *target = std::string(*value);
  }
  return "";
}

int Replay(const std::vector<std::string_view>& args) {
  std::string catalog_path, accounts_path, trace_path, out_path;
  bool check = false;
  if (const std::string problem = ParseFlags("replay", args,
                                             {{"--catalog", &catalog_path},
                                              {"--accounts", &accounts_path},
                                              {"--trace", &trace_path},
                                              {"--out", &out_path}},
                                             {{"--check", &check}});
      !problem.empty()) {
    return Usage(problem);
  }
  if (catalog_path.empty()) return Usage("replay: missing --catalog");
  if (accounts_path.empty()) return Usage("replay: missing --accounts");
  if (trace_path.empty()) return Usage("replay: missing --trace");

  auto catalog = plangate::Catalog::LoadFile(catalog_path);
  if (!catalog.ok()) {
    PrintError(catalog.status());
    return 1;
  }
  const std::optional<std::string> accounts_text = ReadFile(accounts_path);
  if (!accounts_text) return 1;
  auto accounts =
      plangate::replay::ParseAccounts(*accounts_text, accounts_path, **catalog);
  if (!accounts.ok()) {
    PrintError(accounts.status());
    return 1;
  }
  const std::optional<std::string> trace_text = ReadFile(trace_path);
  if (!trace_text) return 1;
  auto events = plangate::replay::ParseTrace(*trace_text, trace_path, **catalog,
                                             *accounts);
  if (!events.ok()) {
    PrintError(events.status());
    return 1;
  }

  std::FILE* out = stdout;
  if (!out_path.empty()) {
    out = std::fopen(out_path.c_str(), "wb");
    if (out == nullptr) {
      fmt::print(stderr, "{}: cannot open: {}\n", out_path,
                 std::strerror(errno));
      return 1;
    }
  }
  plangate::replay::ReplayOptions options;
  options.trace_name = trace_path;
  options.accounts_name = accounts_path;
  options.check = check;
  options.on_decision = [out](std::string_view line) {
    std::fwrite(line.data(), 1, line.size(), out);
    std::fputc('\n', out);
  };
  const bool progress =
      events->size() > kProgressMinEvents && isatty(STDERR_FILENO) == 1;
  if (progress) {
    options.on_progress = [](size_t done, size_t total) {
      constexpr int kWidth = 40;
      const int filled = static_cast<int>(done * kWidth / total);
      fmt::print(stderr, "\rreplay [{:#<{}}{:<{}}] {:>3}% {}/{}", "", filled,
                 "", kWidth - filled, done * 100 / total, done, total);
      std::fflush(stderr);
    };
  }
  auto summary =
      plangate::replay::Replay(*catalog, *accounts, *events, options);
  if (progress) fmt::print(stderr, "\r\033[K");
  bool write_failed = std::fflush(out) != 0 || std::ferror(out) != 0;
  if (out != stdout) write_failed = std::fclose(out) != 0 || write_failed;
  if (!summary.ok()) {
    PrintError(summary.status());
    return 1;
  }
  for (const std::string& m : summary->mismatches) {
    fmt::print(stderr, "{}\n", m);
  }
  if (!summary->mismatches.empty()) std::fputc('\n', stderr);
  std::fputs(plangate::replay::FormatSummary(*summary, check).c_str(), stderr);
  if (write_failed) {
    fmt::print(stderr, "{}: write failed\n",
               out_path.empty() ? "stdout" : out_path);
    return 1;
  }
  return summary->mismatches.empty() ? 0 : 1;
}

// quotactl usage: the account's usage report, live from Redis with --redis.
int UsageCommand(const std::vector<std::string_view>& args) {
  std::string catalog_path, plan, account, anchor, now, redis_url;
  std::string prefix = "pg";
  plangate::quotactl::UsageQuery query;
  bool no_verify = false;
  if (const std::string problem =
          ParseFlags("usage", args,
                     {{"--catalog", &catalog_path},
                      {"--plan", &plan},
                      {"--account", &account},
                      {"--anchor", &anchor},
                      {"--now", &now},
                      {"--redis", &redis_url},
                      {"--prefix", &prefix},
                      {"--redis-tls-ca", &query.tls.ca_file},
                      {"--redis-tls-ca-dir", &query.tls.ca_dir},
                      {"--redis-tls-cert", &query.tls.cert_file},
                      {"--redis-tls-key", &query.tls.key_file},
                      {"--redis-tls-server-name", &query.tls.server_name},
                      {"--redis-sentinel-password", &query.sentinel_password}},
                     {{"--redis-tls-no-verify", &no_verify}});
      !problem.empty()) {
    return Usage(problem);
  }
  if (catalog_path.empty()) return Usage("usage: missing --catalog");
  if (plan.empty()) return Usage("usage: missing --plan");
  if (account.empty()) return Usage("usage: missing --account");

  // Every line of the message (a catalog may have several problems).
  auto fail = [](const absl::Status& status) {
    // Debian's Abseil has its own string_view.
    const std::string text(status.message());
    std::string_view message = text;
    while (!message.empty()) {
      const size_t nl = message.find('\n');
      fmt::print(stderr, "quotactl usage: {}\n", message.substr(0, nl));
      message = nl == std::string_view::npos ? std::string_view()
                                             : message.substr(nl + 1);
    }
    return 1;
  };
  query.tls.verify = !no_verify;
  query.catalog_path = catalog_path;
  query.plan_id = plan;
  query.account_id = account;
  query.redis_url = redis_url;
  query.key_prefix = prefix;
  if (!anchor.empty()) {
    auto ms = plangate::quotactl::ParseInstant("--anchor", anchor);
    if (!ms.ok()) return fail(ms.status());
    query.anchor_ms = *ms;
  }
  if (!now.empty()) {
    auto ms = plangate::quotactl::ParseInstant("--now", now);
    if (!ms.ok()) return fail(ms.status());
    query.now_ms = *ms;
  }
  absl::StatusOr<std::string> report = plangate::quotactl::UsageReport(query);
  if (!report.ok()) return fail(report.status());
  std::fputs(report->c_str(), stdout);
  std::fputc('\n', stdout);
  if (std::fflush(stdout) != 0 || std::ferror(stdout) != 0) {
    fmt::print(stderr, "quotactl usage: stdout: write failed\n");
    return 1;
  }
  return 0;
}

// quotactl account set: an account's shared state, in force on every
// instance that shares account state through the same Redis and prefix.
int AccountCommand(const std::vector<std::string_view>& all) {
  if (all.empty() || all.front() != "set") {
    return Usage("account: expected 'set'");
  }
  const std::vector<std::string_view> args(all.begin() + 1, all.end());
  std::string redis_url, account, plan, catalog_path, anchor, state,
      past_due_until, scheduled_plan, default_model;
  std::string prefix = "pg";
  plangate::quotactl::UsageQuery::RedisTlsFlags tls;
  std::string sentinel_password;
  bool no_verify = false;
  if (const std::string problem =
          ParseFlags("account set", args,
                     {{"--redis", &redis_url},
                      {"--prefix", &prefix},
                      {"--redis-tls-ca", &tls.ca_file},
                      {"--redis-tls-ca-dir", &tls.ca_dir},
                      {"--redis-tls-cert", &tls.cert_file},
                      {"--redis-tls-key", &tls.key_file},
                      {"--redis-tls-server-name", &tls.server_name},
                      {"--redis-sentinel-password", &sentinel_password},
                      {"--account", &account},
                      {"--plan", &plan},
                      {"--catalog", &catalog_path},
                      {"--anchor", &anchor},
                      {"--state", &state},
                      {"--past-due-until", &past_due_until},
                      {"--scheduled-plan", &scheduled_plan},
                      {"--default-model", &default_model}},
                     {{"--redis-tls-no-verify", &no_verify}});
      !problem.empty()) {
    return Usage(problem);
  }
  if (redis_url.empty()) return Usage("account set: missing --redis");
  if (account.empty()) return Usage("account set: missing --account");
  if (plan.empty()) return Usage("account set: missing --plan");
  auto fail = [](const absl::Status& status) {
    fmt::print(stderr, "quotactl account set: {}\n",
               std::string(status.message()));
    return 1;
  };
  plangate::AccountUpdate update;
  update.account_id = account;
  update.plan_id = plan;
  update.scheduled_plan_id = scheduled_plan;
  update.default_model = default_model;
  if (state.empty() || state == "active") {
    update.state = plangate::SubscriptionState::kActive;
  } else if (state == "past_due") {
    update.state = plangate::SubscriptionState::kPastDue;
  } else if (state == "blocked") {
    update.state = plangate::SubscriptionState::kBlocked;
  } else {
    return Usage(fmt::format(
        "account set: --state: '{}' is not active, past_due or blocked",
        state));
  }
  if (!past_due_until.empty() &&
      update.state != plangate::SubscriptionState::kPastDue) {
    return Usage("account set: --past-due-until needs --state past_due");
  }
  for (const auto& [flag, text, out] :
       {std::tuple{"--anchor", &anchor, &update.anchor_ms},
        std::tuple{"--past-due-until", &past_due_until,
                   &update.past_due_deadline_ms}}) {
    if (text->empty()) continue;
    auto ms = plangate::quotactl::ParseInstant(flag, *text);
    if (!ms.ok()) return fail(ms.status());
    *out = *ms;
  }
  if (!catalog_path.empty()) {
    // The plans must exist where the instances will apply them.
    auto catalog = plangate::Catalog::LoadFile(catalog_path);
    if (!catalog.ok()) return fail(catalog.status());
    for (const std::string& id : {plan, scheduled_plan}) {
      if (!id.empty() && (*catalog)->FindPlan(id) == nullptr) {
        return fail(absl::InvalidArgumentError(
            fmt::format("{}: no plan \"{}\"", catalog_path, id)));
      }
    }
  }
  tls.verify = !no_verify;
  absl::StatusOr<plangate::RedisOptions> redis =
      plangate::quotactl::RedisFromFlags(redis_url, tls, sentinel_password);
  if (!redis.ok()) return fail(redis.status());
  absl::StatusOr<int64_t> version =
      plangate::StoreAccountState(*redis, prefix, update);
  if (!version.ok()) return fail(version.status());
  fmt::print("account {}: stored as version {}\n", account, *version);
  return 0;
}

// The wallet as one JSON object (no newline); `extra` is inserted after
// the account ("\"credit_id\": ..., " and the like).
std::string WalletJson(std::string_view account, const std::string& extra,
                       const plangate::StoredWallet& w) {
  return fmt::format(
      "{{\"account\": {}, {}\"exists\": {}, \"balance_micros\": {}, "
      "\"credits_micros\": {}, \"spent_micros\": {}, "
      "\"leased_micros\": {}, \"available_micros\": {}, "
      "\"instances\": {}, \"epoch\": {}, \"recovering_until_ms\": {}}}",
      plangate::internal::JsonQuote(account), extra,
      w.exists ? "true" : "false", w.balance, w.credits, w.spent, w.leased,
      w.available, w.instances,
      w.epoch.empty() ? std::string("null")
                      : plangate::internal::JsonQuote(w.epoch),
      w.recovering_until_ms);
}

// quotactl wallet credit|show: an account's shared wallet in Redis, as the
// instances that share wallets through the same Redis and prefix spend it.
int WalletCommand(const std::vector<std::string_view>& all) {
  if (all.empty() || (all.front() != "credit" && all.front() != "show")) {
    return Usage("wallet: expected 'credit' or 'show'");
  }
  const std::string sub(all.front());
  const std::string name = "wallet " + sub;
  const std::vector<std::string_view> args(all.begin() + 1, all.end());
  std::string redis_url, account, credit_id, micros_text, timeout_text;
  std::string prefix = "pg";
  plangate::quotactl::UsageQuery::RedisTlsFlags tls;
  std::string sentinel_password;
  bool no_verify = false;
  std::vector<std::pair<std::string_view, std::string*>> flags = {
      {"--redis", &redis_url},
      {"--prefix", &prefix},
      {"--key-prefix", &prefix},
      {"--redis-tls-ca", &tls.ca_file},
      {"--redis-tls-ca-dir", &tls.ca_dir},
      {"--redis-tls-cert", &tls.cert_file},
      {"--redis-tls-key", &tls.key_file},
      {"--redis-tls-server-name", &tls.server_name},
      {"--redis-sentinel-password", &sentinel_password},
      {"--account", &account},
      {"--credit-id", &credit_id},
      {"--timeout", &timeout_text}};
  if (sub == "credit") flags.push_back({"--micros", &micros_text});
  if (const std::string problem = ParseFlags(
          name, args, flags, {{"--redis-tls-no-verify", &no_verify}});
      !problem.empty()) {
    return Usage(problem);
  }
  if (redis_url.empty()) return Usage(name + ": missing --redis");
  if (account.empty()) return Usage(name + ": missing --account");
  int64_t micros = 0;
  if (sub == "credit") {
    if (credit_id.empty()) return Usage(name + ": missing --credit-id");
    if (micros_text.empty()) return Usage(name + ": missing --micros");
    if (!absl::SimpleAtoi(micros_text, &micros) || micros == 0) {
      return Usage(fmt::format(
          "{}: --micros: '{}' is not a non-zero whole number of micro-units",
          name, micros_text));
    }
  }
  int64_t timeout_ms = 5000;
  if (!timeout_text.empty() && (!absl::SimpleAtoi(timeout_text, &timeout_ms) ||
                                timeout_ms <= 0 || timeout_ms > 600'000)) {
    return Usage(fmt::format(
        "{}: --timeout: '{}' is not a number of ms from 1 to 600000", name,
        timeout_text));
  }
  auto fail = [&](const absl::Status& status) {
    fmt::print(stderr, "quotactl {}: {}\n", name,
               std::string(status.message()));
    return 1;
  };
  tls.verify = !no_verify;
  absl::StatusOr<plangate::RedisOptions> redis =
      plangate::quotactl::RedisFromFlags(redis_url, tls, sentinel_password);
  if (!redis.ok()) return fail(redis.status());
  const std::chrono::milliseconds timeout(timeout_ms);
  // Each attempt within the overall timeout.
  redis->connect_timeout = std::min(redis->connect_timeout, timeout);
  redis->command_timeout = std::min(redis->command_timeout, timeout);
  std::string line;
  int code = 0;
  if (sub == "show") {
    absl::StatusOr<plangate::StoredWallet> w =
        plangate::ReadStoredWallet(*redis, prefix, account, credit_id, timeout);
    if (!w.ok()) return fail(w.status());
    std::string extra;
    if (!credit_id.empty()) {
      extra = fmt::format(
          "\"credit_id\": {}, \"credit_applied\": {}, "
          "\"credit_micros\": {}, ",
          plangate::internal::JsonQuote(credit_id),
          w->credit_applied ? "true" : "false",
          w->credit_applied ? std::to_string(w->credit_amount) : "null");
    }
    line = WalletJson(account, extra, *w);
  } else {
    absl::StatusOr<plangate::StoredWalletCredit> c =
        plangate::CreditStoredWallet(*redis, prefix, account, credit_id, micros,
                                     timeout);
    if (!c.ok()) return fail(c.status());
    line = WalletJson(
        account,
        fmt::format("\"credit_id\": {}, \"applied\": {}, "
                    "\"credit_micros\": {}, ",
                    plangate::internal::JsonQuote(credit_id),
                    c->applied ? "true" : "false", c->wallet.credit_amount),
        c->wallet);
    if (!c->applied && c->wallet.credit_amount != micros) {
      // A retry sends the same amount; another one is a mistake.
      fmt::print(stderr,
                 "quotactl {}: credit {} was applied before with {} micros, "
                 "not {}: nothing changed\n",
                 name, plangate::internal::JsonQuote(credit_id),
                 c->wallet.credit_amount, micros);
      code = 1;
    }
  }
  std::fputs(line.c_str(), stdout);
  std::fputc('\n', stdout);
  if (std::fflush(stdout) != 0 || std::ferror(stdout) != 0) {
    fmt::print(stderr, "quotactl {}: stdout: write failed\n", name);
    return 1;
  }
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty()) return Usage("");
  const std::string_view command = args.front();
  args.erase(args.begin());
  if (command == "-h" || command == "--help" || command == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (command == "validate") return Validate(args);
  if (command == "replay") return Replay(args);
  if (command == "usage") return UsageCommand(args);
  if (command == "account") return AccountCommand(args);
  if (command == "wallet") return WalletCommand(args);
  return Usage(fmt::format("unknown command '{}'", command));
}
