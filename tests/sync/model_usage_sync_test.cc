// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// Per-model usage ("usage_by_model") with cluster sync attached: the
// per-model counts are shared like any counter (each instance's report
// shows the cluster's totals), settled and refunded alongside the limits.

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

TEST_CASE("per-model usage is counted, settled and shared",
          "[sync][redis][models]") {
  auto started = RedisServer::Start();
  REQUIRE(started.ok());
  RedisServer& server = **started;
  Instance a, b;
  REQUIRE_NOTHROW(a = MakeInstance(kCatalog, "acme", "pro",
                                   TestSyncOptions(server.port())));
  REQUIRE_NOTHROW(b = MakeInstance(kCatalog, "acme", "pro",
                                   TestSyncOptions(server.port())));
  const int tokens = a.enforcer->MeterId("tokens");
  int applied = 0;
  for (int i = 0; i < 40; ++i) {
    // Alternating instances, alternating models.
    Enforcer& e = *(i % 4 < 2 ? a : b).enforcer;
    const MeterAmount estimate{tokens, 100};
    const Decision d = e.Check({.account_id = "acme",
                                .model = i % 2 ? "gpt-4o" : "o3",
                                .amounts = {&estimate, 1}});
    REQUIRE(d.admitted());
    const MeterAmount actual{tokens, 7};
    // Every fifth call fails upstream: refunded, from the model too.
    const CommitResult r = e.Commit({.reservation = d.reservation,
                                     .success = i % 5 != 0,
                                     .actual = {&actual, 1}});
    applied += r == CommitResult::kApplied ? 1 : 0;
  }
  CHECK(applied == 32);
  REQUIRE(a.sync->Flush(milliseconds(5000)).ok());
  REQUIRE(b.sync->Flush(milliseconds(5000)).ok());
  // i odd and not a multiple of 5: 16 on gpt-4o; i even: 16 on o3.
  for (Instance* inst : {&a, &b}) {
    bool shared = WaitFor(
        [&] {
          auto usage = inst->enforcer->Usage("acme");
          return usage.ok() && usage->models.size() == 2 &&
                 usage->models[0].meters[0].used == 16 &&
                 usage->models[1].meters[0].used == 16;
        },
        milliseconds(5000));
    auto usage = inst->enforcer->Usage("acme");
    REQUIRE(usage.ok());
    INFO(UsageReportJson(*usage));
    CHECK(shared);
    REQUIRE(usage->models.size() == 2);
    CHECK(usage->models[0].model == "gpt-4o");
    CHECK(usage->models[0].meters[0].used == 16);
    CHECK(usage->models[0].meters[1].used == 16 * 7);
    CHECK(usage->models[1].model == "o3");
    CHECK(usage->models[1].meters[1].used == 16 * 7);
  }
  // The counters live under scope "model", one key per model and meter.
  int model_keys = 0;
  for (const std::string& key : Keys(server.port())) {
    model_keys += key.find(":model:gpt-4o:") != std::string::npos ||
                  key.find(":model:o3:") != std::string::npos;
  }
  CHECK(model_keys == 4);
  CHECK(a.sync->LastError().empty());
  CHECK(b.sync->LastError().empty());
}

}  // namespace
}  // namespace plangate::testing
