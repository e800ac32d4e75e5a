// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// Per-model usage ("usage_by_model") with cluster sync attached: the
// limits are synced as ever, the per-model counts stay this instance's own
// (no Redis key names a model), and settling and refunding them alongside
// synced counters leaves the sync healthy.

#include <hiredis/hiredis.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>

#include "plangate/sync.h"
#include "support/redis_server.h"
#include "sync/sync_test_util.h"

namespace plangate::testing {
namespace {

using std::chrono::milliseconds;

constexpr char kCatalog[] = R"({"version": 1, "usage_by_model": true,
  "plans": [{"id": "pro", "limits": [
    {"id": "monthly", "limit": 100000000},
    {"id": "tokens", "meter": "tokens", "limit": 100000000}]}]})";

// Every key in Redis.
std::vector<std::string> Keys(int port) {
  redisContext* ctx = redisConnect("127.0.0.1", port);
  REQUIRE(ctx != nullptr);
  REQUIRE(ctx->err == 0);
  auto* reply = static_cast<redisReply*>(redisCommand(ctx, "KEYS *"));
  REQUIRE(reply != nullptr);
  std::vector<std::string> keys;
  for (size_t i = 0; i < reply->elements; ++i) {
    keys.emplace_back(reply->element[i]->str, reply->element[i]->len);
  }
  freeReplyObject(reply);
  redisFree(ctx);
  return keys;
}

TEST_CASE("per-model usage is counted, settled and never synced",
          "[sync][redis][models]") {
  auto started = RedisServer::Start();
  REQUIRE(started.ok());
  RedisServer& server = **started;
  Instance a;
  REQUIRE_NOTHROW(a = MakeInstance(kCatalog, "acme", "pro",
                                   TestSyncOptions(server.port())));
  const int tokens = a.enforcer->MeterId("tokens");
  int applied = 0;
  for (int i = 0; i < 20; ++i) {
    const MeterAmount estimate{tokens, 100};
    const Decision d = a.enforcer->Check({.account_id = "acme",
                                          .model = i % 2 ? "gpt-4o" : "o3",
                                          .amounts = {&estimate, 1}});
    REQUIRE(d.admitted());
    const MeterAmount actual{tokens, 7};
    // Every fifth call fails upstream: refunded, from the model too.
    const CommitResult r = a.enforcer->Commit({.reservation = d.reservation,
                                               .success = i % 5 != 0,
                                               .actual = {&actual, 1}});
    applied += r == CommitResult::kApplied ? 1 : 0;
  }
  CHECK(applied == 16);
  REQUIRE(a.sync->Flush(milliseconds(5000)).ok());
  auto usage = a.enforcer->Usage("acme");
  REQUIRE(usage.ok());
  REQUIRE(usage->models.size() == 2);
  CHECK(usage->models[0].model == "gpt-4o");
  CHECK(usage->models[0].meters[0].used == 8);  // i odd, not i % 5 == 0
  CHECK(usage->models[0].meters[1].used == 8 * 7);
  CHECK(usage->models[1].model == "o3");
  CHECK(usage->models[1].meters[0].used == 8);
  const std::vector<std::string> keys = Keys(server.port());
  CHECK_FALSE(keys.empty());  // the limits are synced
  for (const std::string& key : keys) {
    INFO(key);
    CHECK(key.find("gpt-4o") == std::string::npos);
    CHECK(key.find("o3") == std::string::npos);
    CHECK(key.find("unknown") == std::string::npos);
  }
  CHECK(a.sync->LastError().empty());
}

}  // namespace
}  // namespace plangate::testing
