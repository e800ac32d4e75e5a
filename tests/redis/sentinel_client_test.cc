// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// The client in Sentinel mode (RedisOptions::sentinels) against real
// sentinels (tests/support/redis_sentinel.h): it finds the master, follows
// a failover, and reports every bad case (a master no sentinel knows, no
// sentinel reachable, a malformed reply, a "master" that is a replica,
// sentinel AUTH) as a failed attempt naming the sentinel and the command.
// The redis-sentinel:// URL form is tested here too.

#include <string>

#include "redis/client_harness.h"
#include "redis/fake_node.h"
#include "redis/sentinel_resolver.h"
#include "support/redis_sentinel.h"

namespace plangate::internal::redis::test {
namespace {

using plangate::testing::RedisSentinels;

std::unique_ptr<RedisSentinels> StartSentinels(
    RedisSentinels::Options options) {
  auto s = RedisSentinels::Start(std::move(options));
  if (!s.ok()) FAIL("cannot start sentinels: " << s.status().ToString());
  return *std::move(s);
}

RedisSentinels::Options OneSentinel() {
  RedisSentinels::Options o;
  o.sentinels = 1;
  o.quorum = 1;
  return o;
}

RedisOptions Timeouts(RedisOptions o) {
  o.connect_timeout = 10s;
  o.command_timeout = 10s;
  o.reconnect_initial = 10ms;
  o.reconnect_max = 200ms;
  return o;
}

// Waits for a failed attempt whose message has `part`; all of them shown
// when none does.
void RequireDownWith(Harness& h, const std::string& part) {
  const bool seen = h.events.WaitUntil(
      [&] {
        for (const absl::Status& s : h.events.downs) {
          if (Contains(s, part)) return true;
        }
        return false;
      },
      30s);
  std::string downs;
  for (const absl::Status& s : h.events.Downs()) downs += "\n  " + s.ToString();
  INFO("on_down got:" << downs);
  REQUIRE(seen);
}

absl::Status FirstDownWith(Harness& h, const std::string& part) {
  for (const absl::Status& s : h.events.Downs()) {
    if (Contains(s, part)) return s;
  }
  return absl::OkStatus();
}

TEST_CASE("redis-sentinel:// URLs", "[redis][sentinel]") {
  auto o = ParseRedisUrl("redis-sentinel://:pw@10.0.0.1:26380,s2,[::1]:5/mm/3");
  REQUIRE_OK(o);
  REQUIRE(o->sentinels.size() == 3);
  CHECK(o->sentinels[0].host == "10.0.0.1");
  CHECK(o->sentinels[0].port == 26380);
  CHECK(o->sentinels[1].host == "s2");
  CHECK(o->sentinels[1].port == 26379);
  CHECK(o->sentinels[2].host == "::1");
  CHECK(o->sentinels[2].port == 5);
  CHECK(o->sentinel_master == "mm");
  CHECK(o->password == "pw");
  CHECK(o->sentinel_password.empty());
  CHECK(o->db == 3);
  CHECK_FALSE(o->tls);
  CHECK_FALSE(o->cluster);

  auto t = ParseRedisUrl("rediss-sentinel://h/m%20x");
  REQUIRE_OK(t);
  CHECK(t->tls);
  CHECK(t->sentinel_master == "m x");

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"redis-sentinel://h:1", "the master name is missing"},
      {"redis-sentinel://h:1/", "the master name is empty"},
      {"redis-sentinel:///m", "no sentinel address"},
      {"redis-sentinel://h:1,,h:2/m", "host is empty"},
      {"redis-sentinel://h:x/m", "port must be a number"},
      {"redis-sentinel://h:1/m/x", "db must be a non-negative integer"},
      {"redis-sentinel://h:1/m?cluster=1", "query and fragment"},
      {"redis-sentinel://:secret@h:99999/m", "port must be in [1, 65535]"},
  };
  for (const auto& [url, part] : bad) {
    auto r = ParseRedisUrl(url);
    INFO(url << " -> " << r.status().ToString());
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(Contains(r.status(), part));
    CHECK_FALSE(Contains(r.status(), "secret"));
  }
}

TEST_CASE("SENTINEL get-master-addr-by-name replies", "[redis][sentinel]") {
  auto str = [](std::string s) {
    Reply r;
    r.type = Reply::Type::kString;
    r.str = std::move(s);
    return r;
  };
  Reply good;
  good.type = Reply::Type::kArray;
  good.elements = {str("10.1.2.3"), str("6380")};
  auto p = SentinelResolver::ParseReply(good, "m");
  REQUIRE_OK(p);
  CHECK(p->host == "10.1.2.3");
  CHECK(p->port == 6380);

  Reply nil;
  CHECK(absl::IsNotFound(SentinelResolver::ParseReply(nil, "m").status()));
  Reply err;
  err.type = Reply::Type::kError;
  err.str = "ERR unknown command";
  CHECK(Contains(SentinelResolver::ParseReply(err, "m").status(),
                 "SENTINEL get-master-addr-by-name m failed: ERR unknown"));
  std::vector<Reply> bads(4, good);
  bads[0].elements.pop_back();
  bads[1].elements[1] = str("0");
  bads[2].elements[1] = str("80x");
  bads[3].elements[0] = str("");
  for (const Reply& bad : bads) {
    auto r = SentinelResolver::ParseReply(bad, "m");
    INFO(r.status().ToString());
    CHECK(Contains(r.status(), "malformed reply to SENTINEL"));
  }
}

TEST_CASE("+switch-master messages", "[redis][sentinel]") {
  auto push = [](const std::string& channel, const std::string& text) {
    Reply r;
    r.type = Reply::Type::kArray;
    for (const std::string& part : {std::string("message"), channel, text}) {
      Reply e;
      e.type = Reply::Type::kString;
      e.str = part;
      r.elements.push_back(e);
    }
    return r;
  };
  auto to = SentinelResolver::ParseSwitchMaster(
      push("+switch-master", "mm 10.0.0.1 6379 10.0.0.2 6380"), "mm");
  REQUIRE(to.has_value());
  CHECK(to->host == "10.0.0.2");
  CHECK(to->port == 6380);
  CHECK_FALSE(SentinelResolver::ParseSwitchMaster(
      push("+switch-master", "other 10.0.0.1 6379 10.0.0.2 6380"), "mm"));
  CHECK_FALSE(SentinelResolver::ParseSwitchMaster(
      push("+sdown", "mm 10.0.0.1 6379 10.0.0.2 6380"), "mm"));
  CHECK_FALSE(SentinelResolver::ParseSwitchMaster(
      push("+switch-master", "mm 10.0.0.1 6379 10.0.0.2"), "mm"));
  CHECK_FALSE(SentinelResolver::ParseSwitchMaster(
      push("+switch-master", "mm 10.0.0.1 6379 10.0.0.2 99999"), "mm"));
}

TEST_CASE("finds the master through the sentinels and follows a failover",
          "[redis][sentinel]") {
  auto group = StartSentinels(OneSentinel());
  Harness h(Timeouts(group->ClientOptions()));
  h.Start();
  RequireReady(h);
  auto set = h.ExecEventually({{"SET", "k", "1"}});
  REQUIRE_OK(set);
  CHECK(absl::StrContains(h.Stats().node,
                          ":" + std::to_string(group->node(0).port())));
  CHECK(absl::StrContains(h.Stats().node, "per sentinel"));
  // The client's +switch-master watch is subscribed (the only subscriber
  // of the only sentinel).
  REQUIRE_OK(group->WaitSubscribers(0, 1, 30s));

  auto promoted = group->Failover(60s);
  REQUIRE_OK(promoted);
  REQUIRE(*promoted == 1);
  // The client follows to the new master (its connection to the old one
  // killed by the sentinel, a READONLY reply or +switch-master, then the
  // sentinels asked again). Until the old master is demoted it may still
  // take writes there (Sentinel's known window; the sync's loss detection
  // covers it), so wait for the client to be on the new one.
  const std::string new_port = ":" + std::to_string(group->node(1).port());
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  Result r;
  for (;;) {
    r = h.Exec({{"SET", "after", "yes"}, {"ROLE"}});
    if (r.ok() && !(*r)[0].is_error() &&
        absl::StrContains(h.Stats().node, new_port)) {
      break;
    }
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(20ms);
  }
  CHECK((*r)[1].elements.at(0).str == "master");
  auto on_new = group->node(1).Command({"GET", "after"});
  REQUIRE_OK(on_new);
  CHECK(on_new->str == "yes");
  CHECK(h.Stats().connects >= 2);
  // It was the +switch-master announcement that moved it: the old master
  // is demoted only when a sentinel next polls it (up to 10 s later).
  CHECK(Contains(FirstDownWith(h, "announced +switch-master"),
                 "mymaster is now at 127.0.0.1" + new_port));
  h.Finish();
}

TEST_CASE("a master no sentinel knows: NotFound naming it and the sentinel",
          "[redis][sentinel]") {
  auto group = StartSentinels(OneSentinel());
  RedisOptions o = Timeouts(group->ClientOptions());
  o.sentinel_master = "nosuchmaster";
  Harness h(o);
  h.Start();
  RequireDownWith(h, "nosuchmaster");
  const absl::Status s = FirstDownWith(h, "nosuchmaster");
  INFO(s.ToString());
  CHECK(absl::IsNotFound(s));
  CHECK(Contains(s, "unknown to this sentinel"));
  CHECK(Contains(s, "SENTINEL get-master-addr-by-name"));
  CHECK(Contains(
      s, "sentinel 127.0.0.1:" + std::to_string(group->sentinel(0).port())));
  CHECK(h.events.Ready() == 0);
  h.Finish();
}

TEST_CASE("no sentinel reachable: Unavailable naming each",
          "[redis][sentinel]") {
  RedisOptions o;
  o.sentinels = {{"127.0.0.1", 1}, {"127.0.0.1", 2}};
  o.sentinel_master = "mymaster";
  o = Timeouts(o);
  Harness h(o);
  h.Start();
  RequireDownWith(h, "no sentinel gave");
  const absl::Status s = FirstDownWith(h, "no sentinel gave");
  INFO(s.ToString());
  CHECK(absl::IsUnavailable(s));
  CHECK(Contains(s, "sentinel 127.0.0.1:1: redis connect failed"));
  CHECK(Contains(s, "sentinel 127.0.0.1:2: redis connect failed"));
  h.Finish();
}

TEST_CASE("a malformed sentinel reply, then a good sentinel",
          "[redis][sentinel]") {
  auto group = StartSentinels(OneSentinel());
  FakeNode liar([](const Command& c) -> std::string {
    if (c[0] == "PING") return "+PONG\r\n";
    return "*1\r\n$4\r\nhost\r\n";
  });
  RedisOptions o = Timeouts(group->ClientOptions());
  o.sentinels.insert(o.sentinels.begin(), {"127.0.0.1", liar.port()});
  Harness h(o);
  h.Start();
  RequireReady(h);  // the second sentinel answered
  REQUIRE_OK(h.ExecEventually({{"SET", "k", "v"}}));
  CHECK(absl::StrContains(
      h.Stats().node,
      "per sentinel 127.0.0.1:" + std::to_string(group->sentinel(0).port())));

  // Only the liar: every attempt fails, naming it and the command.
  RedisOptions only = Timeouts(group->ClientOptions());
  only.sentinels = {{"127.0.0.1", liar.port()}};
  Harness bad(only);
  bad.Start();
  RequireDownWith(bad, "malformed reply to SENTINEL get-master-addr-by-name");
  CHECK(Contains(FirstDownWith(bad, "malformed"), liar.address()));
  CHECK(bad.events.Ready() == 0);
  bad.Finish();
  h.Finish();
}

TEST_CASE("a sentinel naming a replica: ROLE refuses it", "[redis][sentinel]") {
  auto group = StartSentinels(OneSentinel());
  const int replica_port = group->node(1).port();
  FakeNode stale([replica_port](const Command& c) -> std::string {
    if (c[0] == "PING") return "+PONG\r\n";
    const std::string port = std::to_string(replica_port);
    return "*2\r\n$9\r\n127.0.0.1\r\n$" + std::to_string(port.size()) + "\r\n" +
           port + "\r\n";
  });
  RedisOptions o = Timeouts(group->ClientOptions());
  o.sentinels = {{"127.0.0.1", stale.port()}};
  Harness h(o);
  h.Start();
  RequireDownWith(h, "not a master");
  const absl::Status s = FirstDownWith(h, "not a master");
  INFO(s.ToString());
  CHECK(Contains(s, "slave"));
  CHECK(Contains(s, "127.0.0.1:" + std::to_string(replica_port)));
  // Asked again after the backoff, refused again; never ready.
  REQUIRE(h.events.WaitDowns(3));
  CHECK(h.events.Ready() == 0);
  h.Finish();
}

TEST_CASE("sentinel AUTH: sentinel_password", "[redis][sentinel]") {
  RedisSentinels::Options go = OneSentinel();
  go.sentinel_password = "s3cret";
  auto group = StartSentinels(go);
  {
    Harness h(Timeouts(group->ClientOptions()));
    h.Start();
    RequireReady(h);
    REQUIRE_OK(h.ExecEventually({{"PING"}}));
    h.Finish();
  }
  RedisOptions o = Timeouts(group->ClientOptions());
  o.sentinel_password = "wrong";
  Harness h(o);
  h.Start();
  RequireDownWith(h, "AUTH");
  const absl::Status s = FirstDownWith(h, "AUTH");
  INFO(s.ToString());
  CHECK(Contains(
      s, "sentinel 127.0.0.1:" + std::to_string(group->sentinel(0).port())));
  CHECK_FALSE(Contains(s, "wrong"));
  CHECK(h.events.Ready() == 0);
  h.Finish();
}

}  // namespace
}  // namespace plangate::internal::redis::test
