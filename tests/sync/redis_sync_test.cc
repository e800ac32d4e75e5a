// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// Cluster sync against a real redis-server that each test starts on a free
// loopback port: shared totals, exactly-once flushes under real faults
// (SIGSTOP, SIGKILL + restart without persistence, CLIENT KILL, DEBUG
// SLEEP past the timeout), leases at the hard cap, the redis_down
// policies, cluster-wide threshold events, and several processes. The cap
// through Redis failures is cap_fault_test.cc.

#include <hiredis/hiredis.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "plangate/events.h"
#include "plangate/sync.h"
#include "support/redis_server.h"
#include "sync/sync_test_util.h"

namespace plangate::testing {
namespace {

using std::chrono::milliseconds;

// A direct hiredis connection for assertions.
class Probe {
 public:
  explicit Probe(int port) {
    ctx_ = redisConnect("127.0.0.1", port);
    REQUIRE(ctx_ != nullptr);
    REQUIRE(ctx_->err == 0);
  }
  ~Probe() { redisFree(ctx_); }

  // Sum of field t over the account's counter keys (one per window).
  int64_t Total(const std::string& account, const std::string& meter) {
    return Field(account, meter, "t");
  }
  // Sum of a hash field over the account's counter keys.
  int64_t Field(const std::string& account, const std::string& meter,
                const std::string& field) {
    const std::string pattern = "pg:{" + account + "}:*:" + meter + ":*";
    auto* keys = static_cast<redisReply*>(
        redisCommand(ctx_, "KEYS %s", pattern.c_str()));
    REQUIRE(keys != nullptr);
    int64_t total = 0;
    for (size_t i = 0; i < keys->elements; ++i) {
      auto* t = static_cast<redisReply*>(redisCommand(
          ctx_, "HGET %s %s", keys->element[i]->str, field.c_str()));
      REQUIRE(t != nullptr);
      if (t->type == REDIS_REPLY_STRING) total += std::stoll(t->str);
      freeReplyObject(t);
    }
    freeReplyObject(keys);
    return total;
  }

 private:
  redisContext* ctx_ = nullptr;
};

constexpr char kBigQuota[] = R"({"version": 1, "plans": [
  {"id": "pro", "limits": [
    {"id": "monthly", "meter": "requests", "window": "billing_period",
     "limit": 100000000}]}]})";

TEST_CASE("two instances share one account's usage through Redis",
          "[sync][redis]") {
  auto started = RedisServer::Start();
  REQUIRE(started.ok());
  RedisServer& server = **started;
  Instance a, b;
  REQUIRE_NOTHROW(a = MakeInstance(kBigQuota, "acme", "pro",
                                   TestSyncOptions(server.port())));
  REQUIRE_NOTHROW(b = MakeInstance(kBigQuota, "acme", "pro",
                                   TestSyncOptions(server.port())));
  for (int i = 0; i < 30; ++i) REQUIRE(a.Check("acme").admitted());
  REQUIRE(a.sync->Flush(milliseconds(5000)).ok());
  Probe probe(server.port());
  CHECK(probe.Total("acme", "requests") == 30);
  // b learns a's usage: its next decision counts from 30.
  b.Check("acme");
  int64_t b_used = 0;
  const bool b_learned = WaitFor(
      [&] {
        b_used = b.Check("acme").used;
        return b_used >= 31;
      },
      milliseconds(5000));
  INFO("b used " << b_used << ", b sync error: " << b.sync->LastError()
                 << ", b commands " << b.sync->Stats().commands);
  REQUIRE(b_learned);
  REQUIRE(b.sync->Flush(milliseconds(5000)).ok());
  REQUIRE(a.sync->Flush(milliseconds(5000)).ok());
  const int64_t total = probe.Total("acme", "requests");
  CHECK(total >= 32);
  // The usage report shows the cluster's usage: the other instance's
  // counters are refreshed even when this one sends nothing new.
  for (int i = 0; i < 5; ++i) REQUIRE(a.Check("acme").admitted());
  REQUIRE(a.sync->Flush(milliseconds(5000)).ok());
  const int64_t now_total = probe.Total("acme", "requests");
  for (Instance* x : {&a, &b}) {
    REQUIRE(WaitFor(
        [&] {
          auto u = x->enforcer->Usage("acme");
          return u.ok() && u->limits[0].used == now_total;
        },
        milliseconds(5000)));
  }
  const SyncStats s = a.sync->Stats();
  CHECK(s.round_trips > 0);
  CHECK(s.commands >= s.round_trips);
  CHECK(s.units_flushed >= 30);
  CHECK(s.pending == 0);
  CHECK(a.sync->PrometheusText().find("plangate_sync_round_trips_total ") !=
        std::string::npos);
}

// Traffic on `instances` × 2 threads while `fault` runs; afterwards the
// Redis total must equal the admitted total exactly.
void ExactUnderFault(const std::string& name,
                     const std::function<void(RedisServer&)>& fault) {
  auto started = RedisServer::Start();
  REQUIRE(started.ok());
  RedisServer& server = **started;
  constexpr int kInstances = 3;
  std::vector<Instance> inst(kInstances);
  for (auto& i : inst) {
    REQUIRE_NOTHROW(i = MakeInstance(kBigQuota, "acme", "pro",
                                     TestSyncOptions(server.port())));
  }
  std::atomic<bool> stop{false};
  std::atomic<int64_t> admitted{0};
  std::atomic<int64_t> denied{0};
  std::atomic<int64_t> waits{0};  // 429 quota_syncing: a lease on its way
  std::mutex first_denial_mu;
  std::string first_denial;
  std::vector<std::thread> threads;
  for (int t = 0; t < kInstances * 2; ++t) {
    threads.emplace_back([&, t] {
      Instance& me = inst[t % kInstances];
      while (!stop.load(std::memory_order_relaxed)) {
        const Decision d = me.Check("acme");
        if (d.admitted()) {
          admitted.fetch_add(1, std::memory_order_relaxed);
        } else if (d.deny == DenyKind::kSyncing) {
          // After Redis lost its data the leases are gone too: checks wait
          // a round for new ones.
          waits.fetch_add(1, std::memory_order_relaxed);
        } else if (denied.fetch_add(1, std::memory_order_relaxed) == 0) {
          std::lock_guard<std::mutex> lock(first_denial_mu);
          first_denial = std::string(d.reason) + " used " +
                         std::to_string(d.used) + " hard " +
                         std::to_string(d.hard_limit);
        }
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
    });
  }
  std::this_thread::sleep_for(milliseconds(200));
  fault(server);
  std::this_thread::sleep_for(milliseconds(300));
  stop = true;
  for (auto& th : threads) th.join();
  for (auto& i : inst) {
    const absl::Status s = i.sync->Drain(milliseconds(15000));
    INFO(name << ": " << s.message() << " last error: " << i.sync->LastError());
    REQUIRE(s.ok());
  }
  Probe probe(server.port());
  INFO(name << " first denial: " << first_denial);
  CHECK(denied.load() == 0);
  CHECK(probe.Total("acme", "requests") == admitted.load());
  CHECK(admitted.load() > 0);
}

TEST_CASE("exactly once: redis-server paused (SIGSTOP) past the timeout",
          "[sync][redis][fault]") {
  ExactUnderFault("pause", [](RedisServer& s) {
    REQUIRE(s.Pause().ok());
    std::this_thread::sleep_for(milliseconds(800));
    REQUIRE(s.Resume().ok());
  });
}

TEST_CASE("exactly once: redis-server killed and restarted without data",
          "[sync][redis][fault]") {
  ExactUnderFault("kill+restart", [](RedisServer& s) {
    REQUIRE(s.Kill().ok());
    std::this_thread::sleep_for(milliseconds(300));
    REQUIRE(s.Restart().ok());
  });
}

TEST_CASE("exactly once: client connections killed", "[sync][redis][fault]") {
  ExactUnderFault("client kill", [](RedisServer& s) {
    for (int i = 0; i < 3; ++i) {
      REQUIRE(s.Command({"CLIENT", "KILL", "TYPE", "normal"}).ok());
      std::this_thread::sleep_for(milliseconds(100));
    }
  });
}

TEST_CASE("exactly once: replies delayed past the timeout (DEBUG SLEEP)",
          "[sync][redis][fault]") {
  ExactUnderFault("debug sleep", [](RedisServer& s) {
    auto slept = s.CommandInBackground({"DEBUG", "SLEEP", "1"});
    std::this_thread::sleep_for(milliseconds(1200));
    REQUIRE(slept.get().ok());
  });
}

// N instances, one unpaced thread each, hammer one account from a
// standing start until well past its hard cap.
int64_t Hammer(int n, bool leases, int64_t hard, int port) {
  const std::string catalog =
      R"({"version": 1, "plans": [{"id": "cap", "limits": [
        {"id": "monthly", "meter": "requests", "window": "billing_period",
         "limit": )" +
      std::to_string(hard) + "}]}]}";
  std::vector<Instance> inst(n);
  for (auto& i : inst) {
    SyncOptions o = TestSyncOptions(port);
    o.leases = leases;
    o.expected_instances = n;
    i = MakeInstance(catalog, "acme", "cap", o);
  }
  std::atomic<int64_t> admitted{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t) {
    threads.emplace_back([&, t] {
      while (!stop.load(std::memory_order_relaxed)) {
        if (inst[t].Check("acme").admitted()) {
          admitted.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  std::this_thread::sleep_for(milliseconds(2500));
  stop = true;
  for (auto& th : threads) th.join();
  for (auto& i : inst) (void)i.sync->Drain(milliseconds(5000));
  return admitted.load();
}

TEST_CASE("leases: N instances never pass the hard cap",
          "[sync][redis][lease]") {
  auto started = RedisServer::Start();
  REQUIRE(started.ok());
  RedisServer& server = **started;
  for (const int n : {2, 4}) {
    INFO("instances " << n);
    const std::string account = "acme";
    Probe probe(server.port());
    REQUIRE(server.Command({"FLUSHALL"}).ok());
    const int64_t admitted = Hammer(n, /*leases=*/true, 2000, server.port());
    CHECK(admitted <= 2000);
    CHECK(admitted >= 1900);  // capacity is not stranded for long
    CHECK(probe.Total(account, "requests") == admitted);
  }
}

TEST_CASE("leases off: the overshoot is what leases prevent",
          "[sync][redis][lease]") {
  auto started = RedisServer::Start();
  REQUIRE(started.ok());
  RedisServer& server = **started;
  Probe probe(server.port());
  const int64_t admitted = Hammer(4, /*leases=*/false, 2000, server.port());
  // Without leases instances admit on stale totals; the totals still add
  // up exactly.
  CHECK(probe.Total("acme", "requests") == admitted);
  CHECK(admitted >= 2000);
}

constexpr char kTwoPlans[] = R"({"version": 1, "plans": [
  {"id": "free", "limits": [
    {"id": "monthly", "meter": "requests", "window": "billing_period",
     "limit": 20}]},
  {"id": "pro", "limits": [
    {"id": "monthly", "meter": "requests", "window": "billing_period",
     "limit": 200}]}]})";

// Checks on a and b in turn until `want` are admitted in all or `deadline`
// passes; 429 quota_syncing (a lease on its way) is retried.
int64_t AdmitUpTo(Instance& a, Instance& b, int64_t want, milliseconds deadline,
                  std::string* last_denial) {
  int64_t admitted = 0;
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (admitted < want && std::chrono::steady_clock::now() < end) {
    for (Instance* x : {&a, &b}) {
      const Decision d = x->Check("acme");
      if (d.admitted()) {
        ++admitted;
      } else {
        *last_denial = std::string(d.reason) + " used " +
                       std::to_string(d.used) + " hard " +
                       std::to_string(d.hard_limit);
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
  }
  return admitted;
}

TEST_CASE("an upgrade mid-window raises the leased cap on every instance",
          "[sync][redis][lease][accounts]") {
  auto started = RedisServer::Start();
  REQUIRE(started.ok());
  RedisServer& server = **started;
  Instance a, b;
  REQUIRE_NOTHROW(a = MakeInstance(kTwoPlans, "acme", "free",
                                   TestSyncOptions(server.port())));
  REQUIRE_NOTHROW(b = MakeInstance(kTwoPlans, "acme", "free",
                                   TestSyncOptions(server.port())));
  std::string denial;
  CHECK(AdmitUpTo(a, b, 30, milliseconds(3000), &denial) == 20);
  INFO("last denial: " << denial);
  // The cap of free is used up: the upgrade to pro (limit 200) on a is in
  // force at once, on both instances, leases included.
  AccountUpdate up;
  up.account_id = "acme";
  up.plan_id = "pro";
  up.anchor_ms = kAnchorMs;
  REQUIRE(a.enforcer->UpsertAccount(up).ok());
  REQUIRE(WaitFor(
      [&] {
        auto u = b.enforcer->Usage("acme");
        return u.ok() && u->plan_id == "pro";
      },
      milliseconds(5000)));
  CHECK(AdmitUpTo(a, b, 200, milliseconds(5000), &denial) == 180);
  // And no further.
  CHECK(AdmitUpTo(a, b, 10, milliseconds(500), &denial) == 0);
  REQUIRE(a.sync->Drain(milliseconds(5000)).ok());
  REQUIRE(b.sync->Drain(milliseconds(5000)).ok());
  Probe probe(server.port());
  CHECK(probe.Total("acme", "requests") == 200);
}

constexpr char kPolicies[] = R"({"version": 1,
  "meters": ["a", "b", "c"],
  "plans": [{"id": "p", "limits": [
    {"id": "open", "meter": "a", "limit": 1000, "redis_down": "fail_open"},
    {"id": "closed", "meter": "b", "limit": 1000, "redis_down": "fail_closed"},
    {"id": "share", "meter": "c", "limit": 1000, "redis_down": "local_share"}
  ]}]})";

TEST_CASE("redis down: fail_open, fail_closed and local_share",
          "[sync][redis][fault]") {
  auto started = RedisServer::Start();
  REQUIRE(started.ok());
  RedisServer& server = **started;
  SyncOptions o = TestSyncOptions(server.port());
  o.expected_instances = 2;
  Instance inst;
  REQUIRE_NOTHROW(inst = MakeInstance(kPolicies, "acme", "p", o));
  const int a = inst.enforcer->MeterId("a");
  const int b = inst.enforcer->MeterId("b");
  const int c = inst.enforcer->MeterId("c");
  REQUIRE(a > 0);
  auto use = [&](int meter, int64_t amount) {
    const MeterAmount m[] = {{meter, amount}};
    return inst.Check("acme", m, 1);
  };
  // 100 of each, synced.
  REQUIRE(
      WaitFor([&] { return inst.sync->Stats().redis_up; }, milliseconds(5000)));
  REQUIRE(use(a, 100).admitted());
  REQUIRE(use(b, 100).admitted());
  REQUIRE(use(c, 100).admitted());
  REQUIRE(inst.sync->Flush(milliseconds(5000)).ok());
  // What Redis set aside for this instance on the local_share counter: its
  // lease and its down reserve.
  const std::string me = inst.sync->instance_id();
  int64_t held;
  {
    Probe probe(server.port());
    held = probe.Field("acme", "c", "r:" + me) +
           probe.Field("acme", "c", "d:" + me);
  }

  REQUIRE(server.Pause().ok());
  REQUIRE(WaitFor([&] { return !inst.sync->Stats().redis_up; },
                  milliseconds(5000)));
  // Give the strand a round to bake the policies in.
  std::this_thread::sleep_for(milliseconds(50));
  CHECK(use(a, 1).admitted());  // fail_open: business as usual
  // fail_closed: only what is left of the lease held, then deny.
  int64_t closed = 0;
  while (use(b, 1).admitted()) ++closed;
  const Decision denied = use(b, 1);
  CHECK(denied.status == 429);
  CHECK(denied.reason == "quota_syncing");
  // local_share: what is left of the lease and the down reserve, then
  // deny: never more than Redis set aside for this instance (its own view
  // may be lower: it gives reserve back before Redis hears of it), and
  // more than the lease alone.
  int64_t shared = 0;
  while (use(c, 10).admitted()) shared += 10;
  INFO("held " << held << " shared " << shared << " closed " << closed);
  CHECK(shared <= held);
  CHECK(shared > closed);
  REQUIRE(server.Resume().ok());
  REQUIRE(WaitFor([&] { return use(b, 1).admitted(); }, milliseconds(5000)));
  REQUIRE(inst.sync->Flush(milliseconds(5000)).ok());
  Probe probe(server.port());
  CHECK(probe.Total("acme", "a") == 101);
  CHECK(probe.Total("acme", "b") == 100 + closed + 1);
  CHECK(probe.Total("acme", "c") == 100 + shared);
}

class CountingSink : public EventSink {
 public:
  void OnThreshold(const ThresholdEvent& e) override {
    (e.kind == ThresholdKind::kSoftNudge ? nudges : caps).fetch_add(1);
  }
  std::atomic<int> nudges{0};
  std::atomic<int> caps{0};
};

TEST_CASE("threshold events fire once per cluster", "[sync][redis][events]") {
  auto started = RedisServer::Start();
  REQUIRE(started.ok());
  RedisServer& server = **started;
  constexpr char kCatalog[] = R"({"version": 1, "plans": [{"id": "p",
    "limits": [{"id": "monthly", "meter": "requests", "limit": 100,
                "grace": 0.5, "soft_nudge": 0.8}]}]})";
  CountingSink sink_a, sink_b;
  std::vector<Instance> inst(2);
  CountingSink* sinks[] = {&sink_a, &sink_b};
  for (int i = 0; i < 2; ++i) {
    auto catalog = Catalog::Parse(kCatalog);
    REQUIRE(catalog.ok());
    EnforcerOptions eo;
    eo.max_subjects = 1024;
    eo.event_sink = sinks[i];
    auto e = Enforcer::Create(*catalog, eo);
    REQUIRE(e.ok());
    inst[i].enforcer = std::move(*e);
    auto s =
        RedisSync::Start(*inst[i].enforcer, TestSyncOptions(server.port()));
    REQUIRE(s.ok());
    inst[i].sync = std::move(*s);
    AccountUpdate up;
    up.account_id = "acme";
    up.plan_id = "p";
    up.anchor_ms = kAnchorMs;
    REQUIRE(inst[i].enforcer->UpsertAccount(up).ok());
    REQUIRE(inst[i].sync->Flush(milliseconds(5000)).ok());
  }
  // 60 each: 120 in all crosses 80 (nudge) and 100 (limit) once.
  for (int k = 0; k < 60; ++k) {
    for (auto& i : inst) {
      i.Check("acme");
      if (k % 10 == 0) (void)i.sync->Flush(milliseconds(2000));
    }
  }
  for (auto& i : inst) REQUIRE(i.sync->Flush(milliseconds(5000)).ok());
  for (auto& i : inst) i.enforcer->DeliverEvents();
  CHECK(sink_a.nudges + sink_b.nudges == 1);
  CHECK(sink_a.caps + sink_b.caps == 1);
}

TEST_CASE("several processes on one account: exact totals, cap held",
          "[sync][redis][process]") {
  auto started = RedisServer::Start();
  REQUIRE(started.ok());
  RedisServer& server = **started;
  const char* worker = PLANGATE_SYNC_WORKER;
  // `during` runs while the workers do (a fault).
  auto run = [&](const std::string& hard, int checks, int procs,
                 int pace_us = 0, const std::function<void()>& during = {}) {
    std::vector<FILE*> pipes;
    for (int p = 0; p < procs; ++p) {
      const std::string cmd =
          std::string(worker) + " " + std::to_string(server.port()) + " " +
          hard + " " + std::to_string(checks) + " " + std::to_string(procs) +
          " " + std::to_string(pace_us);
      FILE* f = popen(cmd.c_str(), "r");
      REQUIRE(f != nullptr);
      pipes.push_back(f);
    }
    if (during) during();
    int64_t admitted = 0;
    for (FILE* f : pipes) {
      long long n = -1;
      const int got = fscanf(f, "admitted %lld", &n);
      const int rc = pclose(f);
      REQUIRE(got == 1);
      REQUIRE(rc == 0);
      admitted += n;
    }
    return admitted;
  };
  Probe probe(server.port());
  SECTION("far from the cap: Redis holds exactly what was admitted") {
    const int64_t admitted = run("100000000", 3000, 3);
    CHECK(admitted == 9000);
    CHECK(probe.Total("acme", "requests") == 9000);
  }
  SECTION("at the cap with leases: never more than the cap") {
    const int64_t admitted = run("1500", 3000, 3);
    CHECK(admitted <= 1500);
    CHECK(admitted >= 1400);
    CHECK(probe.Total("acme", "requests") == admitted);
  }
  SECTION("redis-server killed and restarted without data mid-run") {
    // About 3,000 checks/s across the processes against a cap of 2,400:
    // the restart comes at about a third of it.
    const int64_t admitted = run("2400", 1500, 3, 1000, [&] {
      std::this_thread::sleep_for(milliseconds(300));
      REQUIRE(server.Kill().ok());
      std::this_thread::sleep_for(milliseconds(500));
      REQUIRE(server.Restart().ok());
    });
    Probe after(server.port());
    CHECK(admitted <= 2400);
    CHECK(admitted >= 1200);
    CHECK(after.Total("acme", "requests") == admitted);
  }
}

TEST_CASE("bad options are rejected with the field named", "[sync]") {
  auto catalog = Catalog::Parse(kBigQuota);
  REQUIRE(catalog.ok());
  auto e = Enforcer::Create(*catalog, EnforcerOptions{});
  REQUIRE(e.ok());
  SyncOptions o;
  o.flush_interval = milliseconds(0);
  auto s = RedisSync::Start(**e, o);
  REQUIRE(!s.ok());
  CHECK(std::string(s.status().message()) ==
        "SyncOptions.flush_interval: must be positive");
  o = SyncOptions{};
  o.key_prefix = "a{b";
  s = RedisSync::Start(**e, o);
  REQUIRE(!s.ok());
  CHECK(std::string(s.status().message()).find("key_prefix") !=
        std::string::npos);
  // One sync per enforcer.
  o = SyncOptions{};
  o.redis.port = 1;  // nothing listens: it keeps trying, never blocks
  auto first = RedisSync::Start(**e, o);
  REQUIRE(first.ok());
  auto second = RedisSync::Start(**e, o);
  REQUIRE(!second.ok());
  CHECK(absl::IsFailedPrecondition(second.status()));
  // Checks never wait for Redis: with none reachable, a never-synced
  // leased counter answers 429 quota_syncing (strict cold start) at once.
  AccountUpdate up;
  up.account_id = "x";
  up.plan_id = "pro";
  up.anchor_ms = kAnchorMs;
  REQUIRE((*e)->UpsertAccount(up).ok());
  CheckRequest req;
  req.account_id = "x";
  const Decision d = (*e)->Check(req);
  CHECK(d.status == 429);
  CHECK(d.reason == "quota_syncing");
  CHECK(d.retry_after_ms == 1000);
}

}  // namespace
}  // namespace plangate::testing
