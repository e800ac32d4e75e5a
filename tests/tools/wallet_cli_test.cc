// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// `quotactl wallet credit` and `quotactl wallet show` against a real
// redis-server: the binary (PLANGATE_QUOTACTL) is run as a user would and
// its stdout, stderr and exit status checked exactly. A credit id counts
// once (exit 0 on a retry, 1 when the retry names another amount); a
// correction past what is unspent is refused (exit 1, Redis's figures);
// bad flags exit 2; an unreachable Redis exits 1 within --timeout. With a
// gateway instance on the same Redis, the id it applied is not counted
// again by quotactl, and a new id credited by quotactl is what the
// instance spends next, exactly.

#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "nlohmann/json.hpp"
#include "plangate/enforcer.h"
#include "plangate/sync.h"
#include "redis/cluster_slot.h"
#include "support/redis_cluster.h"
#include "support/redis_server.h"
#include "sync/sync_test_util.h"
#include "tools/quotactl_run.h"

namespace plangate::testing {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;

constexpr char kPrepaid[] = R"({"version": 1, "plans": [
  {"id": "prepaid", "wallet": {"required": true, "min_balance_micros": 0},
   "limits": [{"id": "monthly", "meter": "requests",
               "window": "billing_period", "limit": 100000000}]}]})";

std::string Url(const RedisServer& server) {
  return "redis://127.0.0.1:" + std::to_string(server.port());
}

// The JSON line of a wallet with no epoch, as quotactl prints it.
std::string Line(const std::string& head, int64_t balance, int64_t credits,
                 int64_t spent = 0) {
  return "{\"account\": \"acme\", " + head +
         "\"exists\": true, \"balance_micros\": " + std::to_string(balance) +
         ", \"credits_micros\": " + std::to_string(credits) +
         ", \"spent_micros\": " + std::to_string(spent) +
         ", \"leased_micros\": 0, \"available_micros\": " +
         std::to_string(balance) +
         ", \"instances\": 0, \"epoch\": null, \"recovering_until_ms\": 0}\n";
}

TEST_CASE("quotactl wallet credit and show", "[quotactl][redis][wallet]") {
  auto started = RedisServer::Start();
  REQUIRE(started.ok());
  RedisServer& server = **started;
  TempDir dir;
  const std::string url = Url(server);
  auto credit = [&](const std::string& id, const std::string& micros) {
    return RunQuotactl(dir, {"wallet", "credit", "--redis", url, "--account",
                             "acme", "--credit-id", id, "--micros", micros});
  };

  RunResult r = credit("topup-1", "1000");
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  CHECK(r.out == Line("\"credit_id\": \"topup-1\", \"applied\": true, "
                      "\"credit_micros\": 1000, ",
                      1000, 1000));
  // A retry: counted once, exit 0.
  r = credit("topup-1", "1000");
  CHECK(r.exit_code == 0);
  CHECK(r.out == Line("\"credit_id\": \"topup-1\", \"applied\": false, "
                      "\"credit_micros\": 1000, ",
                      1000, 1000));
  // The same id with another amount: nothing changes, and it says so.
  r = credit("topup-1", "900");
  CHECK(r.exit_code == 1);
  CHECK(r.out == Line("\"credit_id\": \"topup-1\", \"applied\": false, "
                      "\"credit_micros\": 1000, ",
                      1000, 1000));
  CHECK(r.err ==
        "quotactl wallet credit: credit \"topup-1\" was applied before with "
        "1000 micros, not 900: nothing changed\n");
  // --key-prefix is --prefix; another prefix is another wallet.
  r = RunQuotactl(
      dir, {"wallet", "credit", "--redis", url, "--account", "acme",
            "--credit-id", "o1", "--micros", "7", "--key-prefix", "other"});
  CHECK(r.exit_code == 0);
  auto other = server.Command({"HGET", "other:{acme}:wallet", "k"});
  REQUIRE(other.ok());
  CHECK(other->str == "7");

  // Corrections: one past the balance is refused, one within it applies.
  r = credit("fix-1", "-1001");
  CHECK(r.exit_code == 1);
  CHECK(r.out.empty());
  CHECK(r.err ==
        "quotactl wallet credit: account \"acme\": credit \"fix-1\": refused "
        "by redis at 127.0.0.1:" +
            std::to_string(server.port()) +
            ": a correction of -1001 would leave less than is spent or "
            "leased (0 of 1000)\n");
  r = credit("fix-1", "-400");
  CHECK(r.exit_code == 0);
  CHECK(r.out == Line("\"credit_id\": \"fix-1\", \"applied\": true, "
                      "\"credit_micros\": -400, ",
                      600, 600));

  r = RunQuotactl(dir, {"wallet", "show", "--redis", url, "--account", "acme"});
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  CHECK(r.out == Line("", 600, 600));
  r = RunQuotactl(dir, {"wallet", "show", "--redis", url, "--account", "acme",
                        "--credit-id", "fix-1"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == Line("\"credit_id\": \"fix-1\", \"credit_applied\": true, "
                      "\"credit_micros\": -400, ",
                      600, 600));
  r = RunQuotactl(dir, {"wallet", "show", "--redis", url, "--account", "acme",
                        "--credit-id", "nope"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == Line("\"credit_id\": \"nope\", \"credit_applied\": false, "
                      "\"credit_micros\": null, ",
                      600, 600));
  r = RunQuotactl(dir,
                  {"wallet", "show", "--redis", url, "--account", "nobody"});
  CHECK(r.exit_code == 0);
  CHECK(r.out ==
        "{\"account\": \"nobody\", \"exists\": false, \"balance_micros\": 0, "
        "\"credits_micros\": 0, \"spent_micros\": 0, \"leased_micros\": 0, "
        "\"available_micros\": 0, \"instances\": 0, \"epoch\": null, "
        "\"recovering_until_ms\": 0}\n");
}

TEST_CASE("quotactl wallet: bad flags and an unreachable redis",
          "[quotactl][redis][wallet]") {
  TempDir dir;
  struct Bad {
    std::vector<std::string> args;
    std::string first_line;
  };
  const std::vector<Bad> bad = {
      {{"wallet"}, "quotactl: wallet: expected 'credit' or 'show'"},
      {{"wallet", "debit"}, "quotactl: wallet: expected 'credit' or 'show'"},
      {{"wallet", "credit", "--account", "a", "--credit-id", "c", "--micros",
        "1"},
       "quotactl: wallet credit: missing --redis"},
      {{"wallet", "credit", "--redis", "redis://h", "--credit-id", "c",
        "--micros", "1"},
       "quotactl: wallet credit: missing --account"},
      {{"wallet", "credit", "--redis", "redis://h", "--account", "a",
        "--micros", "1"},
       "quotactl: wallet credit: missing --credit-id"},
      {{"wallet", "credit", "--redis", "redis://h", "--account", "a",
        "--credit-id", ""},
       "quotactl: wallet credit: --credit-id needs a value"},
      {{"wallet", "credit", "--redis", "redis://h", "--account", "a",
        "--credit-id", "c"},
       "quotactl: wallet credit: missing --micros"},
      {{"wallet", "credit", "--redis", "redis://h", "--account", "a",
        "--credit-id", "c", "--micros", "0"},
       "quotactl: wallet credit: --micros: '0' is not a non-zero whole "
       "number of micro-units"},
      {{"wallet", "credit", "--redis", "redis://h", "--account", "a",
        "--credit-id", "c", "--micros", "1.5"},
       "quotactl: wallet credit: --micros: '1.5' is not a non-zero whole "
       "number of micro-units"},
      {{"wallet", "show", "--redis", "redis://h", "--account", "a", "--micros",
        "1"},
       "quotactl: wallet show: unknown argument '--micros'"},
      {{"wallet", "show", "--redis", "redis://h", "--account", "a", "--timeout",
        "0"},
       "quotactl: wallet show: --timeout: '0' is not a number of ms from 1 "
       "to 600000"},
  };
  for (const Bad& b : bad) {
    INFO(b.first_line);
    const RunResult r = RunQuotactl(dir, b.args);
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(r.err.substr(0, r.err.find('\n')) == b.first_line);
  }
  // TLS flags need a rediss:// URL: exit 1, the reason.
  RunResult r =
      RunQuotactl(dir, {"wallet", "show", "--redis", "redis://127.0.0.1:1",
                        "--account", "a", "--redis-tls-ca", "/nonexistent"});
  CHECK(r.exit_code == 1);
  CHECK(r.err ==
        "quotactl wallet show: --redis-tls-*: the --redis URL must be "
        "rediss:// or rediss-sentinel:// (TLS)\n");

  // Nobody listens on the port of a server that was stopped.
  auto started = RedisServer::Start();
  REQUIRE(started.ok());
  const int port = (*started)->port();
  REQUIRE((*started)->Stop().ok());
  for (const std::string sub : {"credit", "show"}) {
    INFO(sub);
    std::vector<std::string> args = {
        "wallet",    sub,
        "--redis",   "redis://127.0.0.1:" + std::to_string(port),
        "--account", "acme",
        "--timeout", "300"};
    if (sub == "credit") {
      for (const char* a : {"--credit-id", "c1", "--micros", "5"}) {
        args.emplace_back(a);
      }
    }
    const auto t0 = std::chrono::steady_clock::now();
    r = RunQuotactl(dir, args);
    const auto took = std::chrono::steady_clock::now() - t0;
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());
    CHECK(took < milliseconds(1500));
    CHECK(r.err.starts_with("quotactl wallet " + sub +
                            ": redis at 127.0.0.1:" + std::to_string(port) +
                            ": no answer within 300 ms: "));
    CHECK(r.err.find("Connection refused") != std::string::npos);
  }
}

TEST_CASE("quotactl wallet on a Redis Cluster (?cluster=1)",
          "[quotactl][redis][wallet][cluster]") {
  RedisCluster::Options co;
  co.replicas = 0;
  auto cluster = RedisCluster::Start(co);
  REQUIRE(cluster.ok());
  TempDir dir;
  // The epoch key on its own slot's primary; wallets on other primaries.
  auto ep =
      (*cluster)->PrimaryOfSlot(internal::redis::KeyHashSlot("pg:epoch"), 0);
  REQUIRE(ep.ok());
  REQUIRE((*cluster)->node(*ep).Command({"SET", "pg:epoch", "5-6"}).ok());
  std::vector<std::string> accounts;
  std::vector<int> primaries;
  for (int i = 0; primaries.size() < 2 || primaries[0] == primaries[1] ||
                  accounts.size() < 4;
       ++i) {
    const std::string a = "acct" + std::to_string(i);
    auto p = (*cluster)->PrimaryOfSlot(internal::redis::KeyHashSlot(a), 0);
    REQUIRE(p.ok());
    if (primaries.size() < 2 && !primaries.empty() && primaries[0] == *p) {
      continue;
    }
    accounts.push_back(a);
    primaries.push_back(*p);
  }
  const std::string url =
      "redis://127.0.0.1:" + std::to_string((*cluster)->node(0).port()) +
      "?cluster=1";
  for (size_t i = 0; i < accounts.size(); ++i) {
    INFO(accounts[i]);
    const std::string micros = std::to_string(100 * (i + 1));
    RunResult r = RunQuotactl(
        dir, {"wallet", "credit", "--redis", url, "--account", accounts[i],
              "--credit-id", "c1", "--micros", micros});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    Json c = Json::parse(r.out);
    CHECK(c["applied"] == true);
    CHECK(c["credits_micros"] == 100 * (i + 1));
    CHECK(c["epoch"] == "5-6");
    r = RunQuotactl(
        dir, {"wallet", "credit", "--redis", url, "--account", accounts[i],
              "--credit-id", "c1", "--micros", micros});
    REQUIRE(r.exit_code == 0);
    CHECK(Json::parse(r.out)["applied"] == false);
    r = RunQuotactl(
        dir, {"wallet", "show", "--redis", url, "--account", accounts[i]});
    REQUIRE(r.exit_code == 0);
    CHECK(Json::parse(r.out)["credits_micros"] == 100 * (i + 1));
    // On the primary that owns it.
    auto k = (*cluster)
                 ->node(primaries[i])
                 .Command({"HGET", "pg:{" + accounts[i] + "}:wallet", "k"});
    REQUIRE(k.ok());
    CHECK(k->str == micros);
  }
}

// quotactl account set goes through the same one-shot client: an account
// whose slot is on a primary other than the seed node is stored there (it
// once failed with "node ... not connected" while that node connected).
TEST_CASE("quotactl account set on a Redis Cluster (?cluster=1)",
          "[quotactl][redis][accounts][cluster]") {
  RedisCluster::Options co;
  co.replicas = 0;
  auto cluster = RedisCluster::Start(co);
  REQUIRE(cluster.ok());
  TempDir dir;
  const std::string url =
      "redis://127.0.0.1:" + std::to_string((*cluster)->node(0).port()) +
      "?cluster=1";
  // One account on each primary, the seed's (node 0) among them.
  std::map<int, std::string> by_primary;
  for (int i = 0; by_primary.size() < 3 && i < 1000; ++i) {
    const std::string a = "acct" + std::to_string(i);
    auto p = (*cluster)->PrimaryOfSlot(internal::redis::KeyHashSlot(a), 0);
    REQUIRE(p.ok());
    by_primary.emplace(*p, a);
  }
  REQUIRE(by_primary.size() == 3);
  for (const auto& [primary, account] : by_primary) {
    INFO(account << " on primary " << primary);
    RunResult r = RunQuotactl(dir, {"account", "set", "--redis", url,
                                    "--account", account, "--plan", "pro"});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    auto v = (*cluster)->node(primary).Command(
        {"HGET", "pg:{" + account + "}:account", "v"});
    REQUIRE(v.ok());
    CHECK(v->str == "1");
    // Set again: the version moves on, on the same primary.
    r = RunQuotactl(dir, {"account", "set", "--redis", url, "--account",
                          account, "--plan", "pro"});
    REQUIRE(r.exit_code == 0);
    v = (*cluster)->node(primary).Command(
        {"HGET", "pg:{" + account + "}:account", "v"});
    REQUIRE(v.ok());
    CHECK(v->str == "2");
  }
}

// One request priced at 100 on `e`: its status.
int Spend(Enforcer& e) {
  CheckRequest req;
  req.account_id = "acme";
  req.wallet_micros = 100;
  const Decision d = e.Check(req);
  if (d.admitted()) e.Commit({.reservation = d.reservation});
  return d.status;
}

// Spends until none was admitted for a second; returns the admitted.
int SpendAll(Enforcer& e) {
  int admitted = 0;
  auto last = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - last < milliseconds(1000)) {
    if (Spend(e) == 200) {
      ++admitted;
      last = std::chrono::steady_clock::now();
    }
    std::this_thread::sleep_for(milliseconds(1));
  }
  return admitted;
}

TEST_CASE("a gateway instance spends what quotactl credits, once per id",
          "[quotactl][redis][wallet]") {
  auto started = RedisServer::Start();
  REQUIRE(started.ok());
  RedisServer& server = **started;
  TempDir dir;
  const std::string url = Url(server);
  SyncOptions o = TestSyncOptions(server.port());
  o.share_wallets = true;
  o.lease_ttl = milliseconds(2000);
  Instance gw;
  REQUIRE_NOTHROW(gw = MakeInstance(kPrepaid, "acme", "prepaid", o));
  REQUIRE(
      gw.enforcer
          ->UpdateWallet(
              {.account_id = "acme", .credit_micros = 1000, .credit_id = "X"})
          .ok());
  REQUIRE(gw.sync->Flush(milliseconds(5000)).ok());
  auto credit = [&](const std::string& id, const std::string& micros) {
    RunResult r =
        RunQuotactl(dir, {"wallet", "credit", "--redis", url, "--account",
                          "acme", "--credit-id", id, "--micros", micros});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    return Json::parse(r.out);
  };
  Json x = credit("X", "1000");
  CHECK(x["applied"] == false);
  CHECK(x["credits_micros"] == 1000);
  CHECK(x["instances"] == 1);
  auto epoch = server.Command({"GET", "pg:epoch"});
  REQUIRE(epoch.ok());
  CHECK(x["epoch"] == epoch->str);

  CHECK(SpendAll(*gw.enforcer) == 10);
  REQUIRE(gw.sync->Flush(milliseconds(5000)).ok());
  Json y = credit("Y", "300");
  CHECK(y["applied"] == true);
  CHECK(y["credits_micros"] == 1300);
  CHECK(y["spent_micros"] == 1000);
  CHECK(y["balance_micros"] == 300);
  const int after = SpendAll(*gw.enforcer);
  INFO(gw.sync->LastError());
  CHECK(after == 3);
  REQUIRE(gw.sync->Flush(milliseconds(5000)).ok());
  const RunResult show =
      RunQuotactl(dir, {"wallet", "show", "--redis", url, "--account", "acme"});
  REQUIRE(show.exit_code == 0);
  const Json s = Json::parse(show.out);
  CHECK(s["credits_micros"] == 1300);
  CHECK(s["spent_micros"] == 1300);
  CHECK(s["balance_micros"] == 0);
  CHECK(gw.sync->Stats().wallet_errors == 0);
}

}  // namespace
}  // namespace plangate::testing
