// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// Shared account state through a real redis-server: an upgrade, a past-due
// deadline or an override applied on one instance is in force on the
// others; an instance that sees an account first loads it; a restarted
// instance serves with the shared state; SeedAccount stores only what
// Redis lacks; a FLUSHALL and a restart without data are repaired from what
// the instances hold; a broken stored state is an error that names the
// account, never a crash; share_accounts = false keeps each instance's own.

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "plangate/sync.h"
#include "support/redis_server.h"
#include "sync/sync_test_util.h"

namespace plangate::testing {
namespace {

using std::chrono::milliseconds;

// free lacks the "search" feature; pro has it. A feature check is the
// plan as the hot path sees it. Leases are off (MakeNode), so a check
// never waits for a first lease.
constexpr char kPlans[] = R"({"version": 1, "plans": [
  {"id": "free", "features": [], "limits": [
    {"id": "daily", "meter": "requests", "window": "hour", "mode": "sliding",
     "limit": 1000}]},
  {"id": "pro", "features": ["search"], "limits": [
    {"id": "daily", "meter": "requests", "window": "hour", "mode": "sliding",
     "limit": 100000}]}]})";

using Node = Instance;

// The plan the hot path applies to `account` now: "pro" when a "search"
// request is admitted, "free" when it is denied for the feature, the
// denial's reason otherwise.
std::string PlanSeen(Node& n, const std::string& account, int64_t now_ms = 0) {
  CheckRequest req;
  req.account_id = account;
  req.now_ms = now_ms;
  const std::string_view search = "search";
  req.features = std::span<const std::string_view>(&search, 1);
  const Decision d = n.enforcer->Peek(req);
  if (d.admitted()) return "pro";
  if (d.deny == DenyKind::kFeatureNotInPlan) return "free";
  return std::string(d.reason);
}

Node MakeNode(int port, bool share = true) {
  SyncOptions o = TestSyncOptions(port);
  o.share_accounts = share;
  // Checks here are dated up to an hour ahead (past-due deadlines), and
  // the sync brings a leased counter's window in step only once it is the
  // current one: leases off, as this file is about account state.
  o.leases = false;
  return StartInstance(kPlans, std::move(o));
}

AccountUpdate Account(const std::string& id, const std::string& plan) {
  AccountUpdate up;
  up.account_id = id;
  up.plan_id = plan;
  up.anchor_ms = kAnchorMs;
  return up;
}

// A first sighting is denied until the state is loaded: check (which
// inserts the record and queues the load), then wait for the plan.
bool SeesPlan(Node& n, const std::string& account, const std::string& plan) {
  CheckRequest req;
  req.account_id = account;
  req.key_kind = KeyKind::kTest;  // counts nothing
  n.enforcer->Check(req);
  return WaitFor([&] { return PlanSeen(n, account) == plan; },
                 milliseconds(5000));
}

TEST_CASE("an upgrade on one instance is in force on the others",
          "[sync][redis][accounts]") {
  auto started = RedisServer::Start();
  REQUIRE(started.ok());
  RedisServer& server = **started;
  Node a, b;
  REQUIRE_NOTHROW(a = MakeNode(server.port()));
  REQUIRE_NOTHROW(b = MakeNode(server.port()));

  REQUIRE(a.enforcer->UpsertAccount(Account("acme", "free")).ok());
  CHECK(PlanSeen(a, "acme") == "free");
  // b never heard of acme: its first check loads the stored state.
  CHECK(PlanSeen(b, "acme") == "unknown_account");
  REQUIRE(SeesPlan(b, "acme", "free"));

  // The upgrade on a reaches b through the feed.
  REQUIRE(a.enforcer->UpsertAccount(Account("acme", "pro")).ok());
  CHECK(PlanSeen(a, "acme") == "pro");
  INFO("b: " << b.sync->LastError());
  REQUIRE(WaitFor([&] { return PlanSeen(b, "acme") == "pro"; },
                  milliseconds(5000)));
  // And a downgrade made on b reaches a.
  REQUIRE(b.enforcer->UpsertAccount(Account("acme", "free")).ok());
  REQUIRE(WaitFor([&] { return PlanSeen(a, "acme") == "free"; },
                  milliseconds(5000)));

  // Redis holds the state, versioned: three writes.
  auto version = server.Command({"HGET", "pg:{acme}:account", "v"});
  REQUIRE(version.ok());
  CHECK(version->str == "3");
  const SyncStats sb = b.sync->Stats();
  CHECK(sb.accounts_loaded >= 2);
  CHECK(sb.account_errors == 0);
}

TEST_CASE("past due, overrides and the default model are shared",
          "[sync][redis][accounts]") {
  auto started = RedisServer::Start();
  REQUIRE(started.ok());
  RedisServer& server = **started;
  Node a, b;
  REQUIRE_NOTHROW(a = MakeNode(server.port()));
  REQUIRE_NOTHROW(b = MakeNode(server.port()));
  REQUIRE(b.enforcer->UpsertAccount(Account("acme", "pro")).ok());
  REQUIRE(SeesPlan(a, "acme", "pro"));

  // Past due with a deadline: admitted with a warning before it, 402
  // after it, on the instance that did not set it.
  AccountUpdate due = Account("acme", "pro");
  due.state = SubscriptionState::kPastDue;
  const int64_t deadline =
      std::chrono::duration_cast<milliseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count() +
      3600 * 1000;
  due.past_due_deadline_ms = deadline;
  due.default_model = "gpt-4o-mini";
  due.overrides.push_back(
      {.limit_id = "daily", .user_id = "", .unlimited = false, .limit = 7});
  REQUIRE(b.enforcer->UpsertAccount(due).ok());
  CheckRequest req;
  req.account_id = "acme";
  req.now_ms = deadline + 1;
  REQUIRE(WaitFor(
      [&] { return a.enforcer->Peek(req).deny == DenyKind::kPaymentRequired; },
      milliseconds(5000)));
  req.now_ms = deadline - 1;
  const Decision before = a.enforcer->Peek(req);
  CHECK(before.admitted());
  CHECK((before.warnings & kWarnPastDue) != 0);
  // The override: 7 an hour on a as on b.
  for (int i = 0; i < 7; ++i) CHECK(a.enforcer->Check(req).admitted());
  CHECK(a.enforcer->Check(req).status == 429);
  auto usage = a.enforcer->Usage("acme", deadline - 1);
  REQUIRE(usage.ok());
  CHECK(usage->state == SubscriptionState::kPastDue);
}

TEST_CASE(
    "a restarted instance serves with the shared state, and a seed "
    "stores only what Redis lacks",
    "[sync][redis][accounts]") {
  auto started = RedisServer::Start();
  REQUIRE(started.ok());
  RedisServer& server = **started;
  {
    Node a;
    REQUIRE_NOTHROW(a = MakeNode(server.port()));
    // Seeded from a's file: Redis had nothing, so it keeps it.
    REQUIRE(a.enforcer->SeedAccount(Account("acme", "free")).ok());
    REQUIRE(a.enforcer->UpsertAccount(Account("beta", "free")).ok());
    REQUIRE(a.enforcer->UpsertAccount(Account("beta", "pro")).ok());
    REQUIRE(WaitFor([&] { return a.sync->Stats().accounts_stored >= 3; },
                    milliseconds(5000)));
  }
  // A new process: its file still says beta is free. The seed loses to the
  // stored upgrade as soon as Redis answers.
  Node c;
  REQUIRE_NOTHROW(c = MakeNode(server.port()));
  REQUIRE(c.enforcer->SeedAccount(Account("beta", "free")).ok());
  INFO("c: " << c.sync->LastError());
  REQUIRE(WaitFor([&] { return PlanSeen(c, "beta") == "pro"; },
                  milliseconds(5000)));
  // Accounts its file does not name are loaded on first sight.
  REQUIRE(SeesPlan(c, "acme", "free"));
  auto version = server.Command({"HGET", "pg:{beta}:account", "v"});
  REQUIRE(version.ok());
  CHECK(version->str == "2");  // the seed wrote nothing
}

TEST_CASE(
    "after FLUSHALL and a restart without data the instances put "
    "the account states back",
    "[sync][redis][accounts]") {
  auto started = RedisServer::Start();
  REQUIRE(started.ok());
  RedisServer& server = **started;
  Node a;
  REQUIRE_NOTHROW(a = MakeNode(server.port()));
  REQUIRE(a.enforcer->UpsertAccount(Account("acme", "pro")).ok());
  REQUIRE(WaitFor([&] { return a.sync->Stats().accounts_stored >= 1; },
                  milliseconds(5000)));

  for (const bool restart : {false, true}) {
    INFO((restart ? "restart" : "FLUSHALL"));
    if (restart) {
      REQUIRE(server.Restart().ok());
    } else {
      REQUIRE(server.Command({"FLUSHALL"}).ok());
    }
    // a sees the new dataset and writes back what it holds.
    REQUIRE(WaitFor(
        [&] {
          auto doc = server.Command({"HGET", "pg:{acme}:account", "doc"});
          return doc.ok() && doc->str.find("\"pro\"") != std::string::npos;
        },
        milliseconds(10000)));
    // A new instance then loads it.
    Node c;
    REQUIRE_NOTHROW(c = MakeNode(server.port()));
    REQUIRE(SeesPlan(c, "acme", "pro"));
  }
}

TEST_CASE("a broken stored state is an error naming the account",
          "[sync][redis][accounts]") {
  auto started = RedisServer::Start();
  REQUIRE(started.ok());
  RedisServer& server = **started;
  Node a;
  REQUIRE_NOTHROW(a = MakeNode(server.port()));
  REQUIRE(a.enforcer->UpsertAccount(Account("acme", "pro")).ok());
  REQUIRE(WaitFor([&] { return a.sync->Stats().accounts_stored >= 1; },
                  milliseconds(5000)));
  struct Case {
    const char* doc;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"{not json", "JSON"},
      {R"({"plan": "pro", "state": "asleep"})", "state"},
      {R"({"plan": "platinum"})", "platinum"},
      {R"({"plan": 7})", "plan"},
      {R"({"plan": "pro", "extra": 1})", "extra"},
  };
  int version = 10;
  for (const Case& c : cases) {
    INFO(c.doc);
    const uint64_t errors = a.sync->Stats().account_errors;
    REQUIRE(server
                .Command({"HSET", "pg:{acme}:account", "v",
                          std::to_string(++version), "doc", c.doc})
                .ok());
    REQUIRE(server
                .Command({"XADD", "pg:accounts", "*", "a", "acme", "v",
                          std::to_string(version)})
                .ok());
    REQUIRE(WaitFor([&] { return a.sync->Stats().account_errors > errors; },
                    milliseconds(5000)));
    const std::string error = a.sync->LastError();
    INFO(error);
    CHECK(error.find(c.says) != std::string::npos);
    CHECK(error.find("\"acme\"") != std::string::npos);
    CHECK(error.size() < 300);
    // The account keeps the last good state.
    CHECK(PlanSeen(a, "acme") == "pro");
  }
  CHECK(a.sync->Stats().account_errors >= cases.size());
}

TEST_CASE("share_accounts = false keeps each instance's own",
          "[sync][redis][accounts]") {
  auto started = RedisServer::Start();
  REQUIRE(started.ok());
  RedisServer& server = **started;
  Node a, b;
  REQUIRE_NOTHROW(a = MakeNode(server.port(), /*share=*/false));
  REQUIRE_NOTHROW(b = MakeNode(server.port(), /*share=*/false));
  REQUIRE(a.enforcer->UpsertAccount(Account("acme", "pro")).ok());
  REQUIRE(b.enforcer->UpsertAccount(Account("acme", "free")).ok());
  REQUIRE(a.sync->Flush(milliseconds(5000)).ok());
  REQUIRE(b.sync->Flush(milliseconds(5000)).ok());
  std::this_thread::sleep_for(milliseconds(200));
  CHECK(PlanSeen(a, "acme") == "pro");
  CHECK(PlanSeen(b, "acme") == "free");
  CHECK(PlanSeen(b, "other") == "unknown_account");
  auto exists = server.Command({"EXISTS", "pg:{acme}:account"});
  REQUIRE(exists.ok());
  CHECK(exists->integer == 0);
}

}  // namespace
}  // namespace plangate::testing
