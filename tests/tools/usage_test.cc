// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// `quotactl usage` against real redis-servers (tests/support): the binary
// (PLANGATE_QUOTACTL) is run as a user would, and its report must be
// byte-identical to the library's usage report of an Enforcer holding the
// same counts: counts flushed by a real RedisSync, and counts written into
// the hashes directly (every state, a sliding window, --prefix, a db).
// Then the errors: unknown plan, unknown flag, Redis unreachable, AUTH,
// a hash field that is not an integer, a key of the wrong type.

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "nlohmann/json.hpp"
#include "plangate/catalog.h"
#include "plangate/clock.h"
#include "plangate/enforcer.h"
#include "plangate/sync.h"
#include "support/redis_server.h"
#include "sync/sync_keys.h"
#include "sync/sync_test_util.h"
#include "tools/quotactl_run.h"

namespace plangate::testing {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;

// "daily" is leasable near its cap; images are unlimited (counted, never
// denied). "burst" has a sliding per-minute window.
constexpr char kCatalog[] = R"({"version": 1,
  "meters": ["requests", "tokens", "images"],
  "plans": [
    {"id": "pro", "limits": [
      {"id": "monthly", "limit": 10, "soft_nudge": 0.5},
      {"id": "daily", "window": "day", "limit": 7},
      {"id": "tokens", "meter": "tokens", "limit": 600, "grace": 0.5},
      {"id": "images", "meter": "images", "limit": "unlimited"}]},
    {"id": "burst", "limits": [
      {"id": "per_minute", "window": "minute", "mode": "sliding",
       "limit": 20}]}]})";

// 2026-03-15T12:00:30Z: half a minute into its minute.
constexpr int64_t kNowMs = 1773576030000;

std::unique_ptr<RedisServer> StartServer(
    RedisServer::Options options = RedisServer::Options()) {
  auto server = RedisServer::Start(std::move(options));
  if (!server.ok()) {
    FAIL("cannot start a redis-server: " << server.status().ToString());
  }
  return *std::move(server);
}

std::string RedisUrl(const RedisServer& server) {
  return "redis://127.0.0.1:" + std::to_string(server.port());
}

// HSET key t <t> (as pg1_sync leaves it, with one instance's fields).
void SetTotal(const RedisServer& server, const std::string& key, int64_t t,
              int db = 0) {
  auto reply = server.Command({"HSET", key, "t", std::to_string(t), "L", "0",
                               "n", "1", "c:x", std::to_string(t)},
                              db);
  REQUIRE(reply.ok());
  REQUIRE_FALSE(reply->is_error());
}

std::string Key(std::string_view account, std::string_view meter,
                WindowUnit window, WindowMode mode, int64_t start_ms,
                std::string_view prefix = "pg") {
  return internal::CounterKey(prefix, account, Scope::kAccount, "", meter,
                              WindowName(window, 1), mode, start_ms);
}

std::shared_ptr<const Catalog> ParseCatalog() {
  auto catalog = Catalog::Parse(kCatalog);
  REQUIRE(catalog.ok());
  return *catalog;
}

// The library's report for `account` after `checks` (each a time and a
// token amount) on a fresh Enforcer.
std::string LibraryReport(
    const std::string& account, const std::string& plan, int64_t anchor_ms,
    const std::vector<std::pair<int64_t, int64_t>>& checks, int64_t now_ms) {
  SimulatedClock clock(now_ms);
  EnforcerOptions options;
  options.clock = &clock;
  options.max_subjects = 64;
  auto enforcer = Enforcer::Create(ParseCatalog(), options);
  REQUIRE(enforcer.ok());
  REQUIRE(
      (*enforcer)
          ->UpsertAccount(
              {.account_id = account, .plan_id = plan, .anchor_ms = anchor_ms})
          .ok());
  const int tokens = (*enforcer)->MeterId("tokens");
  const int images = (*enforcer)->MeterId("images");
  for (const auto& [at_ms, token_amount] : checks) {
    clock.SetMs(at_ms);
    const MeterAmount amounts[] = {{tokens, token_amount}, {images, 1}};
    CheckRequest req;
    req.account_id = account;
    if (plan == "pro") req.amounts = amounts;
    req.now_ms = at_ms;
    const Decision d = (*enforcer)->Check(req);
    REQUIRE(d.admitted());
    REQUIRE((*enforcer)->Commit({.reservation = d.reservation}) ==
            CommitResult::kApplied);
  }
  auto usage = (*enforcer)->Usage(account, now_ms);
  REQUIRE(usage.ok());
  return UsageReportJson(*usage);
}

TEST_CASE("quotactl usage reports what RedisSync flushed", "[redis]") {
  std::unique_ptr<RedisServer> server = StartServer();
  TempDir dir;
  const std::string catalog = dir.Write("catalog.json", kCatalog);

  Instance inst;
  REQUIRE_NOTHROW(inst = MakeInstance(kCatalog, "acme", "pro",
                                      TestSyncOptions(server->port())));
  const int tokens = inst.enforcer->MeterId("tokens");
  const int images = inst.enforcer->MeterId("images");
  const int64_t day_before = SystemClock::Default()->NowMs() / 86'400'000;
  for (int i = 0; i < 7; ++i) {
    const MeterAmount amounts[] = {{tokens, 100}, {images, 1}};
    Decision d;
    // Near the daily cap the instance admits within leases; a check past
    // its lease waits for the next round (429 quota_syncing).
    REQUIRE(WaitFor(
        [&] {
          d = inst.Check("acme", amounts, 2);
          return d.admitted() || d.reason != "quota_syncing";
        },
        milliseconds(10000)));
    INFO("check " << i << ": " << d.status << " " << d.reason);
    REQUIRE(d.admitted());
    REQUIRE(inst.enforcer->Commit({.reservation = d.reservation}) ==
            CommitResult::kApplied);
  }
  REQUIRE(inst.sync->Flush(milliseconds(10000)).ok());
  const int64_t now_ms = SystemClock::Default()->NowMs();
  if (now_ms / 86'400'000 != day_before) {
    WARN("the UTC day changed during the test; skipped");
    return;
  }

  // Its own enforcer holds the cluster total (it is the only instance).
  auto usage = inst.enforcer->Usage("acme", now_ms);
  REQUIRE(usage.ok());
  const std::string expected = UsageReportJson(*usage) + "\n";

  // The default anchor (start of the UTC month) gives MakeInstance's
  // calendar-month periods.
  const RunResult r = RunQuotactl(
      dir, {"usage", "--catalog", catalog, "--plan", "pro", "--account", "acme",
            "--redis", RedisUrl(*server), "--now", std::to_string(now_ms)});
  INFO("stderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.empty());
  CHECK(r.out == expected);

  const Json report = Json::parse(r.out);
  const Json& u = report.at("usage");
  CHECK(u.at("monthly").at("used") == 7);
  CHECK(u.at("monthly").at("state") == "soft_nudge");  // 7 >= 0.5 * 10
  CHECK(u.at("daily").at("used") == 7);
  CHECK(u.at("daily").at("state") == "exhausted");  // 7 >= 7
  CHECK(u.at("tokens").at("used") == 700);
  CHECK(u.at("tokens").at("state") == "grace");  // 600 < 700 < 900
  CHECK(u.at("images").at("used") == 7);
  CHECK(u.at("images").at("state") == "unlimited");

  // Without --redis: the same windows, nothing used.
  const RunResult fresh =
      RunQuotactl(dir, {"usage", "--catalog", catalog, "--plan", "pro",
                        "--account", "acme", "--now", std::to_string(now_ms)});
  REQUIRE(fresh.exit_code == 0);
  const Json zero = Json::parse(fresh.out);
  CHECK(zero.at("period_start") == report.at("period_start"));
  CHECK(zero.at("usage").at("monthly").at("used") == 0);
  CHECK(zero.at("usage").at("monthly").at("state") == "ok");
  CHECK(zero.at("usage").at("daily").at("resets_at") ==
        u.at("daily").at("resets_at"));
}

TEST_CASE("quotactl usage matches the library's report for the same counts",
          "[redis]") {
  std::unique_ptr<RedisServer> server = StartServer();
  TempDir dir;
  const std::string catalog = dir.Write("catalog.json", kCatalog);
  // Periods from the 10th, 08:00.
  const int64_t anchor_ms = 1768032000000;     // 2026-01-10T08:00:00Z
  const int64_t period_start = 1773129600000;  // 2026-03-10T08:00:00Z
  const int64_t day_start = kNowMs - kNowMs % 86'400'000;
  const int64_t minute_start = kNowMs - kNowMs % 60'000;
  std::vector<std::string> common = {"--catalog", catalog,
                                     "--anchor",  "2026-01-10T08:00:00Z",
                                     "--now",     "2026-03-15T12:00:30Z"};
  auto args = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = {"usage"};
    a.insert(a.end(), common.begin(), common.end());
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };

  SECTION("every state") {
    // 7 requests (5 today), 700 tokens and 7 images in the period.
    std::vector<std::pair<int64_t, int64_t>> checks = {
        {period_start + 1000, 100}, {day_start - 1000, 100}, {kNowMs - 5, 100},
        {kNowMs - 4, 100},          {kNowMs - 3, 100},       {kNowMs - 2, 100},
        {kNowMs - 1, 100}};
    const std::string expected =
        LibraryReport("acme", "pro", anchor_ms, checks, kNowMs) + "\n";
    SetTotal(*server,
             Key("acme", "requests", WindowUnit::kBillingPeriod,
                 WindowMode::kFixed, period_start),
             7);
    SetTotal(*server,
             Key("acme", "requests", WindowUnit::kDay, WindowMode::kFixed,
                 day_start),
             5);
    SetTotal(*server,
             Key("acme", "tokens", WindowUnit::kBillingPeriod,
                 WindowMode::kFixed, period_start),
             700);
    SetTotal(*server,
             Key("acme", "images", WindowUnit::kBillingPeriod,
                 WindowMode::kFixed, period_start),
             7);
    // Yesterday's and last period's keys are not this window's.
    SetTotal(*server,
             Key("acme", "requests", WindowUnit::kDay, WindowMode::kFixed,
                 day_start - 86'400'000),
             99);
    const RunResult r =
        RunQuotactl(dir, args({"--plan", "pro", "--account", "acme", "--redis",
                               RedisUrl(*server)}));
    INFO("stderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out == expected);
    const Json u = Json::parse(r.out).at("usage");
    CHECK(u.at("monthly").at("state") == "soft_nudge");
    CHECK(u.at("daily").at("used") == 5);
    CHECK(u.at("daily").at("state") == "ok");
    CHECK(u.at("tokens").at("used") == 700);
    CHECK(u.at("tokens").at("state") == "grace");
    CHECK(u.at("images").at("used") == 7);
    CHECK(u.at("images").at("state") == "unlimited");

    // Two more today: the daily cap is reached.
    SetTotal(*server,
             Key("acme", "requests", WindowUnit::kDay, WindowMode::kFixed,
                 day_start),
             7);
    const RunResult capped =
        RunQuotactl(dir, args({"--plan", "pro", "--account", "acme", "--redis",
                               RedisUrl(*server)}));
    REQUIRE(capped.exit_code == 0);
    CHECK(Json::parse(capped.out).at("usage").at("daily").at("state") ==
          "exhausted");
  }

  SECTION("a sliding window weighs the previous window") {
    // 20 in the previous minute, 7 in this one, half of it gone:
    // 7 + 20 * 30/60 = 17 >= 0.8 * 20.
    std::vector<std::pair<int64_t, int64_t>> checks(
        20, {minute_start - 60'000 + 10, 0});
    for (int i = 0; i < 7; ++i) checks.push_back({kNowMs - 100 + i, 0});
    const std::string expected =
        LibraryReport("zeta", "burst", anchor_ms, checks, kNowMs) + "\n";
    SetTotal(*server,
             Key("zeta", "requests", WindowUnit::kMinute, WindowMode::kSliding,
                 minute_start - 60'000),
             20);
    SetTotal(*server,
             Key("zeta", "requests", WindowUnit::kMinute, WindowMode::kSliding,
                 minute_start),
             7);
    const RunResult r =
        RunQuotactl(dir, args({"--plan", "burst", "--account", "zeta",
                               "--redis", RedisUrl(*server)}));
    INFO("stderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out == expected);
    const Json u = Json::parse(r.out).at("usage");
    CHECK(u.at("per_minute").at("used") == 17);
    CHECK(u.at("per_minute").at("state") == "soft_nudge");
  }

  SECTION("--prefix, a db and escaped account ids") {
    // ':' and '{' in the id are percent-encoded in the key.
    SetTotal(*server,
             Key("a:b{c}", "requests", WindowUnit::kBillingPeriod,
                 WindowMode::kFixed, period_start, "other"),
             3, 2);
    const RunResult r = RunQuotactl(
        dir, args({"--plan", "pro", "--account", "a:b{c}", "--prefix", "other",
                   "--redis", RedisUrl(*server) + "/2"}));
    INFO("stderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    const Json report = Json::parse(r.out);
    CHECK(report.at("account") == "a:b{c}");
    CHECK(report.at("usage").at("monthly").at("used") == 3);
    CHECK(report.at("usage").at("monthly").at("state") == "ok");
    // Same server, default db and prefix: nothing there.
    const RunResult empty =
        RunQuotactl(dir, args({"--plan", "pro", "--account", "a:b{c}",
                               "--redis", RedisUrl(*server)}));
    REQUIRE(empty.exit_code == 0);
    CHECK(Json::parse(empty.out).at("usage").at("monthly").at("used") == 0);
  }

  SECTION("field t that is not an integer") {
    const std::string key = Key("acme", "requests", WindowUnit::kDay,
                                WindowMode::kFixed, day_start);
    REQUIRE(server->Command({"HSET", key, "t", "seven"}).ok());
    const RunResult r =
        RunQuotactl(dir, args({"--plan", "pro", "--account", "acme", "--redis",
                               RedisUrl(*server)}));
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());
    CHECK(r.err == "quotactl usage: " + RedisUrl(*server) + ": key \"" + key +
                       "\": field t is not an integer (got \"seven\")\n");
  }

  SECTION("a key that is not a hash") {
    const std::string key = Key("acme", "tokens", WindowUnit::kBillingPeriod,
                                WindowMode::kFixed, period_start);
    REQUIRE(server->Command({"SET", key, "12"}).ok());
    const RunResult r =
        RunQuotactl(dir, args({"--plan", "pro", "--account", "acme", "--redis",
                               RedisUrl(*server)}));
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());
    CHECK(r.err == "quotactl usage: " + RedisUrl(*server) + ": key \"" + key +
                       "\": WRONGTYPE Operation against a key holding the "
                       "wrong kind of value\n");
  }
}

TEST_CASE("quotactl usage errors", "[redis]") {
  TempDir dir;
  const std::string catalog = dir.Write("catalog.json", kCatalog);
  auto args = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = {"usage", "--catalog", catalog, "--plan",
                                  "pro",   "--account", "acme"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };

  SECTION("unknown plan") {
    const RunResult r = RunQuotactl(
        dir,
        {"usage", "--catalog", catalog, "--plan", "gold", "--account", "acme"});
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());
    CHECK(r.err == "quotactl usage: plan \"gold\" is not in " + catalog + "\n");
  }

  SECTION("unknown flag and missing flags: usage, exit 2") {
    RunResult r = RunQuotactl(dir, args({"--verbose"}));
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(r.err.rfind("quotactl: usage: unknown argument '--verbose'\n"
                      "usage: quotactl validate CATALOG\n",
                      0) == 0);
    CHECK(r.err.find("quotactl usage --catalog FILE --plan PLAN") !=
          std::string::npos);
    r = RunQuotactl(dir, {"usage", "--catalog", catalog, "--account", "acme"});
    CHECK(r.exit_code == 2);
    CHECK(r.err.rfind("quotactl: usage: missing --plan\n", 0) == 0);
    r = RunQuotactl(dir, args({"--redis"}));
    CHECK(r.exit_code == 2);
    CHECK(r.err.rfind("quotactl: usage: --redis needs a value\n", 0) == 0);
  }

  SECTION("bad --anchor and --now") {
    RunResult r = RunQuotactl(dir, args({"--anchor", "last tuesday"}));
    CHECK(r.exit_code == 1);
    CHECK(r.err ==
          "quotactl usage: --anchor: must be Unix ms or an RFC 3339 UTC time "
          "like 2026-01-31T00:00:00Z (got \"last tuesday\")\n");
    r = RunQuotactl(dir, args({"--now", "2026-02-30T00:00:00Z"}));
    CHECK(r.exit_code == 1);
    CHECK(r.err.rfind("quotactl usage: --now: must be Unix ms", 0) == 0);
    r = RunQuotactl(dir, args({"--now", "99999999999999999999"}));
    CHECK(r.exit_code == 1);
    CHECK(r.err ==
          "quotactl usage: --now: 99999999999999999999 ms is out of range "
          "[1, 253402300799999]\n");
  }

  SECTION("bad redis URL") {
    const RunResult r = RunQuotactl(dir, args({"--redis", "http://x:1"}));
    CHECK(r.exit_code == 1);
    CHECK(r.err ==
          "quotactl usage: redis URL \"http://x:1\": scheme must be redis://, "
          "rediss://, unix://, redis-sentinel:// or rediss-sentinel://\n");
  }

  SECTION("TLS flags need rediss://, a certificate needs its key") {
    RunResult r = RunQuotactl(
        dir, args({"--redis", "redis://127.0.0.1:1", "--redis-tls-ca", "x"}));
    CHECK(r.exit_code == 1);
    CHECK(r.err ==
          "quotactl usage: --redis-tls-*: the --redis URL must be rediss:// "
          "or rediss-sentinel:// (TLS)\n");
    r = RunQuotactl(dir, args({"--redis", "rediss://127.0.0.1:1",
                               "--redis-tls-cert", "c.pem"}));
    CHECK(r.exit_code == 1);
    CHECK(r.err ==
          "quotactl usage: --redis-tls-cert and --redis-tls-key go "
          "together\n");
    r = RunQuotactl(dir, args({"--redis", "redis://127.0.0.1:1",
                               "--redis-sentinel-password", "pw"}));
    CHECK(r.exit_code == 1);
    CHECK(r.err ==
          "quotactl usage: --redis-sentinel-password: the --redis URL must "
          "be redis-sentinel://\n");
  }

  SECTION("redis unreachable") {
    // The port of a server that was just stopped: nothing listens there.
    std::unique_ptr<RedisServer> server = StartServer();
    const std::string url = RedisUrl(*server);
    REQUIRE(server->Stop().ok());
    const RunResult r = RunQuotactl(dir, args({"--redis", url}));
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());
    CHECK(r.err == "quotactl usage: " + url +
                       ": redis connect failed: Connection refused (at " +
                       url.substr(8) + ")\n");
  }

  SECTION("redis that does not answer") {
    // SIGSTOP: the kernel accepts the connection, nothing answers.
    std::unique_ptr<RedisServer> server = StartServer();
    REQUIRE(server->Pause().ok());
    const auto start = std::chrono::steady_clock::now();
    const RunResult r = RunQuotactl(dir, args({"--redis", RedisUrl(*server)}));
    const auto took = std::chrono::steady_clock::now() - start;
    REQUIRE(server->Resume().ok());
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());
    CHECK(r.err == "quotactl usage: " + RedisUrl(*server) +
                       ": redis connect timed out after 2000ms (connected, "
                       "but the handshake got no reply) (at " +
                       RedisUrl(*server).substr(8) + ")\n");
    CHECK(took < std::chrono::seconds(10));
  }

  SECTION("a unix socket") {
    RedisServer::Options options;
    options.unix_socket = true;
    std::unique_ptr<RedisServer> server = StartServer(std::move(options));
    const int64_t period_start = 1772323200000;  // 2026-03-01T00:00:00Z
    SetTotal(*server,
             Key("acme", "requests", WindowUnit::kBillingPeriod,
                 WindowMode::kFixed, period_start),
             9);
    const RunResult r =
        RunQuotactl(dir, args({"--now", "2026-03-15T12:00:30Z", "--redis",
                               "unix://" + server->unix_socket()}));
    INFO("stderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    const Json report = Json::parse(r.out);
    CHECK(report.at("period_start") == "2026-03-01T00:00:00Z");
    CHECK(report.at("usage").at("monthly").at("used") == 9);
    CHECK(report.at("usage").at("monthly").at("state") == "soft_nudge");
  }

  SECTION("redis that needs a password") {
    RedisServer::Options options;
    options.password = "s3cret";
    std::unique_ptr<RedisServer> server = StartServer(std::move(options));
    const std::string host_port = "127.0.0.1:" + std::to_string(server->port());

    RunResult r =
        RunQuotactl(dir, args({"--redis", "redis://:wrong@" + host_port}));
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());
    // The password is never printed.
    CHECK(r.err ==
          "quotactl usage: redis://" + host_port +
              ": redis AUTH failed: WRONGPASS invalid username-password "
              "pair or user is disabled. (at " +
              host_port + ")\n");

    r = RunQuotactl(dir, args({"--redis", "redis://" + host_port}));
    CHECK(r.exit_code == 1);
    CHECK(r.err.rfind("quotactl usage: redis://" + host_port +
                          ": redis PING failed: NOAUTH Authentication "
                          "required.",
                      0) == 0);
    CHECK(r.err.find("the URL needs the password") != std::string::npos);

    r = RunQuotactl(dir, args({"--redis", "redis://:s3cret@" + host_port}));
    INFO("stderr: " << r.err);
    CHECK(r.exit_code == 0);
    CHECK(Json::parse(r.out).at("usage").at("monthly").at("used") == 0);

    // An ACL user.
    REQUIRE(
        server
            ->Command({"ACL", "SETUSER", "reader", "on", ">pw", "~*", "+hmget"})
            .ok());
    r = RunQuotactl(dir, args({"--redis", "redis://reader:pw@" + host_port}));
    INFO("stderr: " << r.err);
    CHECK(r.exit_code == 0);
    r = RunQuotactl(dir, args({"--redis", "redis://reader:nope@" + host_port}));
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("AUTH failed: WRONGPASS") != std::string::npos);
  }
}

}  // namespace
}  // namespace plangate::testing
