// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// Redis Cluster routing without a server: CRC16 and hash slots against the
// specification's vectors and redis-server's CLUSTER KEYSLOT, which
// argument is a command's key, MOVED / ASK parsing, and CLUSTER SLOTS
// replies of every bad shape.

#include "redis/cluster_slot.h"

#include <catch2/catch.hpp>
#include <string>

#include "absl/strings/match.h"
#include "redis/cluster_slots.h"
#include "sync/sync_keys.h"

namespace plangate::internal::redis {
namespace {

TEST_CASE("CRC16/XMODEM matches the cluster specification", "[cluster]") {
  CHECK(Crc16("123456789") == 0x31C3);
  CHECK(Crc16("") == 0);
  CHECK(Crc16("A") == 0x58E5);
}

TEST_CASE("hash slots match redis-server's CLUSTER KEYSLOT", "[cluster]") {
  // Values from redis-server 7.0 (CLUSTER KEYSLOT).
  CHECK(KeyHashSlot("somekey") == 11058);
  CHECK(KeyHashSlot("foo{hash_tag}") == 2515);
  CHECK(KeyHashSlot("foo") == 12182);
  CHECK(KeyHashSlot("bar") == 5061);
  CHECK(KeyHashSlot("foo{}{bar}") == 8363);     // empty tag: whole key
  CHECK(KeyHashSlot("foo{{bar}}zap") == 4015);  // tag "{bar"
  CHECK(KeyHashSlot("foo{bar}{zap}") == 5061);  // first tag only
  CHECK(KeyHashSlot("{user1000}.following") == 3443);
  CHECK(KeyHashSlot("pg:epoch") == 4015);
  CHECK(KeyHashSlot("") == 0);
  CHECK(KeyHashSlot("foo{") == KeyHashSlot("foo{"));
}

TEST_CASE("one account's counter keys share the account's slot", "[cluster]") {
  const int slot = KeyHashSlot("acme");
  for (const char* window : {"day", "15m", "month"}) {
    const std::string key =
        CounterKey("pg", "acme", Scope::kAccount, "", "requests", window,
                   WindowMode::kFixed, 1767225600000);
    CHECK(KeyHashSlot(key) == slot);
  }
  // An account id with braces is escaped, so its tag is still all of it.
  const std::string odd = CounterKey("pg", "a{b}c", Scope::kAccount, "",
                                     "requests", "day", WindowMode::kFixed, 0);
  CHECK(KeyHashSlot(odd) == KeyHashSlot(EscapeKeyPart("a{b}c")));
}

TEST_CASE("commands are routed by their key", "[cluster]") {
  Route r = CommandRoute({"FCALL", "pg2_sync", "1", "pg:{a}:x", "i"});
  CHECK(r.kind == RouteKind::kKey);
  CHECK(r.key_index == 3);
  CHECK(CommandRoute({"FCALL", "f", "0"}).kind == RouteKind::kAnyNode);
  CHECK(CommandRoute({"FCALL", "f", "x", "k"}).kind == RouteKind::kAnyNode);
  CHECK(CommandRoute({"GET", "k"}).kind == RouteKind::kKey);
  CHECK(CommandRoute({"GET", "k"}).key_index == 1);
  CHECK(CommandRoute({"info", "replication"}).kind == RouteKind::kAllPrimaries);
  CHECK(CommandRoute({"FUNCTION", "LOAD", "x"}).kind == RouteKind::kAnyNode);
  CHECK(CommandRoute({"PING"}).kind == RouteKind::kAnyNode);
  CHECK(CommandRoute({}).kind == RouteKind::kAnyNode);
  // XREAD's key follows STREAMS.
  r = CommandRoute({"XREAD", "COUNT", "10", "STREAMS", "pg:accounts", "0-0"});
  CHECK(r.kind == RouteKind::kKey);
  CHECK(r.key_index == 4);
  CHECK(CommandRoute({"XREAD", "COUNT", "10"}).kind == RouteKind::kAnyNode);
  CHECK(CommandRoute({"XREVRANGE", "pg:accounts", "+", "-"}).key_index == 1);
  CHECK(CommandName({"FCALL", "pg2_sync", "1", "pg:{a}:x", "i"}) ==
        "FCALL pg2_sync pg:{a}:x");
}

TEST_CASE("MOVED and ASK parse; malformed ones are flagged", "[cluster]") {
  bool bad = false;
  auto m = ParseRedirect("MOVED 3999 127.0.0.1:6381", &bad);
  REQUIRE(m.has_value());
  CHECK_FALSE(bad);
  CHECK_FALSE(m->ask);
  CHECK(m->slot == 3999);
  CHECK(m->node == "127.0.0.1:6381");
  auto a = ParseRedirect("ASK 1 [::1]:7000", &bad);
  REQUIRE(a.has_value());
  CHECK(a->ask);
  CHECK(a->node == "[::1]:7000");
  CHECK_FALSE(ParseRedirect("ERR something", &bad).has_value());
  CHECK_FALSE(bad);
  for (const char* text :
       {"MOVED", "MOVED 16384 h:1", "MOVED -1 h:1", "MOVED x h:1", "MOVED 1 h",
        "MOVED 1 h:0", "MOVED 1 h:99999", "ASK 1 h:port", "MOVED 1 h:1 extra",
        "MOVED 99999999999999999999 h:1"}) {
    INFO(text);
    CHECK_FALSE(ParseRedirect(text, &bad).has_value());
    CHECK(bad);
  }
}

Reply Int(int64_t v) {
  Reply r;
  r.type = Reply::Type::kInteger;
  r.integer = v;
  return r;
}
Reply Str(std::string s) {
  Reply r;
  r.type = Reply::Type::kString;
  r.str = std::move(s);
  return r;
}
Reply Arr(std::vector<Reply> e) {
  Reply r;
  r.type = Reply::Type::kArray;
  r.elements = std::move(e);
  return r;
}
Reply Range(int64_t first, int64_t last, Reply node) {
  return Arr({Int(first), Int(last), std::move(node)});
}

TEST_CASE("CLUSTER SLOTS replies are checked", "[cluster]") {
  const Reply good =
      Arr({Range(5461, 10922, Arr({Str("10.0.0.2"), Int(7001), Str("id2")})),
           Range(0, 5460, Arr({Str(""), Int(7000), Str("id1")})),
           Range(10923, 16383, Arr({Str("10.0.0.3"), Int(7002), Str("id3")}))});
  auto map = ParseClusterSlots(good, "seed:7000", "seed");
  REQUIRE(map.ok());
  REQUIRE(map->size() == 3);
  CHECK((*map)[0].first == 0);
  CHECK((*map)[0].primary == "seed:7000");  // "" is the node asked
  CHECK((*map)[1].primary == "10.0.0.2:7001");
  CHECK((*map)[2].last == 16383);

  Reply err;
  err.type = Reply::Type::kError;
  err.str = "ERR This instance has cluster support disabled";
  const std::vector<std::pair<const char*, Reply>> bad = {
      {"error", err},
      {"not an array", Str("x")},
      {"empty", Arr({})},
      {"short entry", Arr({Arr({Int(0), Int(1)})})},
      {"string slot", Arr({Arr({Str("0"), Int(1), Arr({Str("h"), Int(1)})})})},
      {"slot out of range", Arr({Range(0, 16384, Arr({Str("h"), Int(1)}))})},
      {"first > last", Arr({Range(9, 3, Arr({Str("h"), Int(1)}))})},
      {"no port", Arr({Range(0, 1, Arr({Str("h")}))})},
      {"port 0", Arr({Range(0, 1, Arr({Str("h"), Int(0)}))})},
      {"unknown address", Arr({Range(0, 1, Arr({Str("?"), Int(7)}))})},
      {"node not an array", Arr({Range(0, 1, Str("h:1"))})},
      {"host with a space", Arr({Range(0, 1, Arr({Str("a b"), Int(7)}))})},
      {"overlap", Arr({Range(0, 10, Arr({Str("h"), Int(1)})),
                       Range(10, 20, Arr({Str("h"), Int(2)}))})},
  };
  for (const auto& [what, reply] : bad) {
    INFO(what);
    auto r = ParseClusterSlots(reply, "n1:7000", "n1");
    REQUIRE_FALSE(r.ok());
    CHECK(absl::StrContains(r.status().message(), "n1:7000"));
  }
}

TEST_CASE("redis://host:port?cluster=1 names a cluster seed", "[cluster]") {
  auto o = ParseRedisUrl("redis://10.0.0.1:7000?cluster=1");
  REQUIRE(o.ok());
  CHECK(o->cluster);
  CHECK(o->host == "10.0.0.1");
  CHECK(o->port == 7000);
  auto tls = ParseRedisUrl("rediss://:pw@h?cluster=true");
  REQUIRE(tls.ok());
  CHECK(tls->cluster);
  CHECK(tls->tls);
  CHECK(tls->password == "pw");
  CHECK_FALSE(ParseRedisUrl("redis://h:7000").value().cluster);
  auto db = ParseRedisUrl("redis://h:7000/2?cluster=1");
  REQUIRE_FALSE(db.ok());
  CHECK(absl::StrContains(db.status().message(), "only db 0"));
  CHECK_FALSE(ParseRedisUrl("redis://h?cluster=2").ok());
}

}  // namespace
}  // namespace plangate::internal::redis
