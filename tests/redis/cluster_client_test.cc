// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// ClusterClient against a real Redis Cluster (tests/support/redis_cluster.h:
// three primaries on loopback) and against scripted nodes
// (tests/redis/fake_node.h) that answer with bad input: replies come back
// in the caller's order across nodes, INFO is combined, init commands run
// on every primary, ASK during a slot migration and MOVED after it are
// followed, and a redirection loop, a MOVED to a node that cannot be
// reached, a malformed redirection, a node lost mid-batch and a CLUSTER
// SLOTS reply of the wrong shape are errors naming the node and command.

#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "redis/cluster_harness.h"
#include "redis/cluster_slot.h"
#include "redis/fake_node.h"
#include "support/redis_cluster.h"

namespace plangate::internal::redis {
namespace {

using namespace std::chrono_literals;
using plangate::testing::RedisCluster;
using test::ClusterHarness;
using test::FakeNode;

std::unique_ptr<RedisCluster> StartCluster() {
  RedisCluster::Options o;
  o.replicas = 0;
  auto c = RedisCluster::Start(o);
  if (!c.ok()) FAIL("cannot start a cluster: " << c.status().ToString());
  return *std::move(c);
}

RedisOptions Generous(RedisOptions o) {
  o.connect_timeout = 10s;
  o.command_timeout = 10s;
  o.reconnect_initial = 10ms;
  o.reconnect_max = 200ms;
  return o;
}

constexpr char kLib[] =
    "#!lua name=cltest\n"
    "redis.register_function('cl_incr', function(keys, args) "
    "return redis.call('INCRBY', keys[1], args[1]) end)";

TEST_CASE("a batch over every primary comes back in the caller's order",
          "[cluster][redis]") {
  auto cluster = StartCluster();
  ClusterHarness h(Generous(cluster->ClientOptions()),
                   {Command{"FUNCTION", "LOAD", "REPLACE", kLib}});
  REQUIRE(h.WaitReady());
  REQUIRE(h.WaitAllPrimaries(3));
  std::vector<Command> batch;
  for (int i = 0; i < 300; ++i) {
    const std::string key = "k{" + std::to_string(i) + "}";
    batch.push_back({"SET", key, "v" + std::to_string(i)});
    batch.push_back({"GET", key});
    batch.push_back({"FCALL", "cl_incr", "1", "n{" + std::to_string(i) + "}",
                     std::to_string(i)});
  }
  batch.push_back({"INCR", "k{0}"});  // an error reply stays a reply
  batch.push_back({"INFO", "replication"});
  batch.push_back({"PING"});
  auto r = h.Exec(batch);
  REQUIRE(r.ok());
  REQUIRE(r->size() == batch.size());
  for (int i = 0; i < 300; ++i) {
    INFO("command " << i);
    CHECK((*r)[3 * i].str == "OK");
    CHECK((*r)[3 * i + 1].str == "v" + std::to_string(i));
    CHECK((*r)[3 * i + 2].integer == i);  // the Function is on every primary
  }
  CHECK((*r)[900].is_error());
  const std::string info = (*r)[901].str;
  const size_t at = info.find("master_replid:");
  REQUIRE(at != std::string::npos);
  const std::string ids =
      info.substr(at + 14, info.find_first_of("\r\n", at) - at - 14);
  CHECK(std::vector<std::string>(absl::StrSplit(ids, ',')).size() == 3);
  CHECK((*r)[902].str == "PONG");
  const ClusterStats s = h.Stats();
  CHECK(s.refreshes >= 1);
  int primaries = 0;
  for (const ClusterNodeStats& n : s.nodes) {
    if (!n.primary) continue;
    ++primaries;
    CHECK(n.round_trips >= 1);
  }
  CHECK(primaries == 3);
  CHECK(s.moved == 0);
}

TEST_CASE("ASK while a slot migrates, MOVED after it moved",
          "[cluster][redis]") {
  auto cluster = StartCluster();
  ClusterHarness h(Generous(cluster->ClientOptions()));
  REQUIRE(h.WaitReady());
  // The ASK below goes to another primary: all of them must be connected.
  REQUIRE(h.WaitAllPrimaries(3));
  const std::string key = "{moving}:a";
  const int slot = KeyHashSlot(key);
  REQUIRE(cluster->PrimaryOfSlot(slot, 0).ok());
  auto set = h.Exec({{"SET", key, "1"}});
  REQUIRE(set.ok());
  INFO("SET answered " << (*set)[0].str);
  REQUIRE((*set)[0].str == "OK");
  // The primary that holds the key now (a slot map read before the cluster
  // settled can name another).
  std::optional<int> from;
  // Polled: under a sanitizer the cluster may still be settling its slot
  // map when the SET lands (a node's EXISTS answers MOVED until then).
  for (int round = 0; round < 100 && !from.has_value(); ++round) {
    for (int i = 0; i < 3; ++i) {
      auto exists = cluster->node(i).Command({"EXISTS", key});
      if (exists.ok() && exists->type == Reply::Type::kInteger &&
          exists->integer == 1) {
        from = i;
      }
    }
    if (!from.has_value()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  REQUIRE(from.has_value());
  const int to = (*from + 1) % 3;
  // Half way: the key is on `to`, the slot still `from`'s.
  const std::string s = std::to_string(slot);
  REQUIRE(cluster->node(to)
              .Command({"CLUSTER", "SETSLOT", s, "IMPORTING",
                        cluster->node_id(*from)})
              ->str == "OK");
  REQUIRE(
      cluster->node(*from)
          .Command({"CLUSTER", "SETSLOT", s, "MIGRATING", cluster->node_id(to)})
          ->str == "OK");
  REQUIRE(
      cluster->node(*from)
          .Command({"MIGRATE", "127.0.0.1",
                    std::to_string(cluster->node(to).port()), key, "0", "5000"})
          ->str == "OK");
  auto r = h.Exec({{"GET", key}, {"SET", "{moving}:b", "2"}, {"GET", "x"}});
  REQUIRE(r.ok());
  CHECK((*r)[0].str == "1");
  CHECK((*r)[1].str == "OK");
  CHECK((*r)[2].type == Reply::Type::kNil);
  CHECK(h.Stats().ask >= 2);
  // Done: every node names the new owner; the client still has the old.
  for (int i = 0; i < 3; ++i) {
    REQUIRE(
        cluster->node(i)
            .Command({"CLUSTER", "SETSLOT", s, "NODE", cluster->node_id(to)})
            ->str == "OK");
  }
  CHECK(cluster->node(to).Command({"GET", "{moving}:b"})->str == "2");
  r = h.Exec({{"INCR", key}});
  REQUIRE(r.ok());
  CHECK((*r)[0].integer == 2);
  CHECK(h.Stats().moved >= 1);
  // The map was refreshed: no more redirections.
  const uint64_t moved = h.Stats().moved;
  std::this_thread::sleep_for(200ms);
  r = h.Exec({{"INCR", key}});
  REQUIRE(r.ok());
  CHECK((*r)[0].integer == 3);
  CHECK(h.Stats().moved == moved);
}

// Every command but PING and CLUSTER SLOTS gets `reply`.
std::unique_ptr<FakeNode> Fake(std::function<std::string(const Command&)> f) {
  return std::make_unique<FakeNode>(std::move(f));
}

RedisOptions FakeOptions(const FakeNode& node) {
  RedisOptions o;
  o.host = "127.0.0.1";
  o.port = node.port();
  o.cluster = true;
  o.connect_timeout = 2s;
  o.command_timeout = 2s;
  o.reconnect_initial = 10ms;
  o.reconnect_max = 100ms;
  return Generous(o);
}

TEST_CASE("a redirection loop is an error naming the node and command",
          "[cluster][redis]") {
  std::atomic<int> port{0};
  auto node = Fake([&](const Command& c) -> std::string {
    if (c[0] == "PING") return "+PONG\r\n";
    if (c[0] == "CLUSTER") return test::OneRangeSlots(port);
    return "-MOVED 42 127.0.0.1:" + std::to_string(port.load()) + "\r\n";
  });
  port = node->port();
  ClusterHarness h(FakeOptions(*node));
  REQUIRE(h.WaitReady());
  auto r = h.Exec({{"GET", "k"}});
  REQUIRE(r.ok());
  REQUIRE((*r)[0].is_error());
  INFO((*r)[0].str);
  CHECK(absl::StrContains((*r)[0].str, "redirection loop"));
  CHECK(absl::StrContains((*r)[0].str, "GET k"));
  CHECK(absl::StrContains((*r)[0].str, node->address()));
  CHECK(h.Stats().redirect_loops == 1);
}

TEST_CASE("bad redirections and a node lost mid-batch are error replies",
          "[cluster][redis]") {
  std::atomic<int> port{0};
  auto node = Fake([&](const Command& c) -> std::string {
    if (c[0] == "PING") return "+PONG\r\n";
    if (c[0] == "CLUSTER") return test::OneRangeSlots(port);
    if (c.size() > 1 && c[1] == "unknown") return "-MOVED 7 127.0.0.1:1\r\n";
    if (c.size() > 1 && c[1] == "garbled") return "-MOVED seven\r\n";
    if (c.size() > 1 && c[1] == "boom") return "";  // vanishes
    return "$2\r\nok\r\n";
  });
  port = node->port();
  ClusterHarness h(FakeOptions(*node));
  REQUIRE(h.WaitReady());
  auto r = h.Exec({{"GET", "unknown"}, {"GET", "garbled"}, {"GET", "fine"}});
  REQUIRE(r.ok());
  INFO((*r)[0].str << " | " << (*r)[1].str);
  CHECK((*r)[0].is_error());
  CHECK(absl::StrContains((*r)[0].str, "127.0.0.1:1"));
  CHECK(absl::StrContains((*r)[0].str, "GET unknown"));
  CHECK((*r)[1].is_error());
  CHECK(absl::StrContains((*r)[1].str, "malformed redirection"));
  CHECK(absl::StrContains((*r)[1].str, node->address()));
  CHECK((*r)[2].str == "ok");
  r = h.Exec({{"GET", "a"}, {"GET", "boom"}, {"GET", "c"}});
  REQUIRE(r.ok());
  for (const Reply& e : *r) {
    INFO(e.str);
    CHECK(e.is_error());
    CHECK(absl::StrContains(e.str, node->address()));
  }
  CHECK(absl::StrContains((*r)[1].str, "GET boom"));
  // It comes back: the next batch is answered.
  REQUIRE(h.WaitReady());
  const auto end = std::chrono::steady_clock::now() + 20s;
  for (;;) {
    r = h.Exec({{"GET", "fine"}});
    REQUIRE(r.ok());
    if ((*r)[0].str == "ok" || std::chrono::steady_clock::now() > end) break;
    std::this_thread::sleep_for(20ms);
  }
  CHECK((*r)[0].str == "ok");
}

TEST_CASE("a CLUSTER SLOTS reply of the wrong shape is an error, not a map",
          "[cluster][redis]") {
  auto node = Fake([&](const Command& c) -> std::string {
    if (c[0] == "PING") return "+PONG\r\n";
    if (c[0] == "CLUSTER") return "*1\r\n*2\r\n:0\r\n$3\r\nabc\r\n";
    return "$2\r\nok\r\n";
  });
  ClusterHarness h(FakeOptions(*node));
  const auto end = std::chrono::steady_clock::now() + 20s;
  while (h.Stats().refresh_failures == 0 &&
         std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(10ms);
  }
  const ClusterStats s = h.Stats();
  CHECK(s.refresh_failures >= 1);
  INFO(s.last_error);
  CHECK(absl::StrContains(s.last_error, "CLUSTER SLOTS"));
  CHECK(absl::StrContains(s.last_error, node->address()));
  CHECK_FALSE(h.OnStrand<bool>([](ClusterClient& c) { return c.ready(); }));
  auto r = h.Exec({{"GET", "x"}});
  CHECK(absl::IsUnavailable(r.status()));
}

}  // namespace
}  // namespace plangate::internal::redis
