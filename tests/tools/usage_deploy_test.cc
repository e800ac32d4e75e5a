// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// `quotactl usage --redis` on every deployment the sync supports, against
// real servers the test starts: TLS (rediss:// with --redis-tls-ca, and a
// CA that does not match), a Redis Cluster (?cluster=1: accounts on
// different primaries), and Sentinel (redis-sentinel://: the master the
// sentinel names; an unknown master name).

#include <algorithm>
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "plangate/catalog.h"
#include "redis/cluster_slot.h"
#include "support/redis_cluster.h"
#include "support/redis_sentinel.h"
#include "support/redis_server.h"
#include "support/test_certs.h"
#include "sync/sync_keys.h"
#include "tools/quotactl_run.h"

namespace plangate::testing {
namespace {

using Json = nlohmann::json;

constexpr char kCatalog[] = R"({"version": 1, "plans": [
  {"id": "pro", "limits": [{"id": "monthly", "limit": 10,
                            "soft_nudge": 0.5}]}]})";
constexpr char kNow[] = "2026-03-15T12:00:30Z";
constexpr int64_t kPeriodStartMs = 1772323200000;  // 2026-03-01T00:00:00Z

std::string MonthlyKey(const std::string& account) {
  return internal::CounterKey("pg", account, Scope::kAccount, "", "requests",
                              WindowName(WindowUnit::kBillingPeriod, 1),
                              WindowMode::kFixed, kPeriodStartMs);
}

void SetTotal(const RedisServer& node, const std::string& account, int t) {
  auto r = node.Command({"HSET", MonthlyKey(account), "t", std::to_string(t),
                         "L", "0", "n", "1"});
  REQUIRE(r.ok());
  REQUIRE_FALSE(r->is_error());
}

struct Usage {
  TempDir dir;
  std::string catalog = dir.Write("catalog.json", kCatalog);

  RunResult Run(const std::string& account, std::vector<std::string> redis) {
    std::vector<std::string> a = {"usage",  "--catalog", catalog,
                                  "--plan", "pro",       "--account",
                                  account,  "--now",     kNow};
    a.insert(a.end(), redis.begin(), redis.end());
    return RunQuotactl(dir, a);
  }
  // The monthly `used` of a successful report.
  int64_t Used(const std::string& account, std::vector<std::string> redis) {
    const RunResult r = Run(account, std::move(redis));
    INFO("stderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    return Json::parse(r.out).at("usage").at("monthly").at("used");
  }
};

TEST_CASE("quotactl usage over TLS (rediss://)", "[redis][quotactl][tls]") {
  auto certs = TestCerts::Make();
  if (!certs.ok()) FAIL("cannot make certificates: " << certs.status());
  RedisServer::Options o;
  o.tls_cert_file = (*certs)->Path("server.crt");
  o.tls_key_file = (*certs)->Path("server.key");
  o.tls_ca_file = (*certs)->Path("ca.crt");
  auto server = RedisServer::Start(o);
  REQUIRE(server.ok());
  SetTotal(**server, "acme", 7);
  const std::string url =
      "rediss://127.0.0.1:" + std::to_string((*server)->tls_port());
  Usage usage;
  CHECK(usage.Used("acme", {"--redis", url, "--redis-tls-ca",
                            (*certs)->Path("ca.crt")}) == 7);
  CHECK(usage.Used("acme", {"--redis", url, "--redis-tls-no-verify"}) == 7);

  const RunResult bad = usage.Run("acme", {"--redis", url, "--redis-tls-ca",
                                           (*certs)->Path("other_ca.crt")});
  CHECK(bad.exit_code == 1);
  CHECK(bad.out.empty());
  INFO(bad.err);
  CHECK(bad.err.rfind("quotactl usage: " + url + ": ", 0) == 0);
  CHECK(bad.err.find("certificate verify failed") != std::string::npos);
}

TEST_CASE("quotactl usage on a Redis Cluster (?cluster=1)",
          "[redis][quotactl][cluster]") {
  RedisCluster::Options co;
  co.replicas = 0;
  auto cluster = RedisCluster::Start(co);
  REQUIRE(cluster.ok());
  // Accounts on at least two primaries.
  std::vector<std::string> accounts;
  std::vector<int> primaries;
  for (int i = 0; accounts.size() < 6; ++i) {
    const std::string a = "acct" + std::to_string(i);
    auto p = (*cluster)->PrimaryOfSlot(internal::redis::KeyHashSlot(a), 0);
    REQUIRE(p.ok());
    accounts.push_back(a);
    primaries.push_back(*p);
  }
  std::sort(primaries.begin(), primaries.end());
  REQUIRE(std::unique(primaries.begin(), primaries.end()) - primaries.begin() >
          1);
  for (size_t i = 0; i < accounts.size(); ++i) {
    auto p =
        (*cluster)->PrimaryOfSlot(internal::redis::KeyHashSlot(accounts[i]), 0);
    SetTotal((*cluster)->node(*p), accounts[i], static_cast<int>(i + 1));
  }
  const std::string url =
      "redis://127.0.0.1:" + std::to_string((*cluster)->node(0).port()) +
      "?cluster=1";
  Usage usage;
  for (size_t i = 0; i < accounts.size(); ++i) {
    INFO(accounts[i]);
    CHECK(usage.Used(accounts[i], {"--redis", url}) ==
          static_cast<int64_t>(i + 1));
  }
}

TEST_CASE("quotactl usage through Sentinel (redis-sentinel://)",
          "[redis][quotactl][sentinel]") {
  RedisSentinels::Options so;
  so.sentinels = 1;
  so.quorum = 1;
  auto group = RedisSentinels::Start(so);
  REQUIRE(group.ok());
  SetTotal((*group)->node(0), "acme", 4);
  Usage usage;
  CHECK(usage.Used("acme", {"--redis", (*group)->Url()}) == 4);

  const std::string sentinel =
      "127.0.0.1:" + std::to_string((*group)->sentinel(0).port());
  const std::string unknown = "redis-sentinel://" + sentinel + "/nosuch";
  const RunResult r = usage.Run("acme", {"--redis", unknown});
  CHECK(r.exit_code == 1);
  CHECK(r.out.empty());
  CHECK(r.err == "quotactl usage: " + unknown +
                     ": redis sentinel: no sentinel gave the address of "
                     "master \"nosuch\": sentinel " +
                     sentinel +
                     ": master \"nosuch\" is unknown to this sentinel "
                     "(SENTINEL get-master-addr-by-name gave nil)\n");
}

}  // namespace
}  // namespace plangate::testing
