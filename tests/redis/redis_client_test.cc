// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// The Redis client against real redis-servers (one per test, started by
// tests/support/redis_server.h): replies, AUTH/SELECT/init handshake,
// unix sockets, timeouts, lost and paused servers, reconnects, Stop and
// destruction; and ParseRedisUrl.
//
// The harness (tests/redis/client_harness.h) runs the io_context on a
// thread of its own; assertions run on the test thread only.

#include "redis/redis_client.h"

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "plangate/sync.h"
#include "redis/client_harness.h"
#include "support/redis_server.h"

namespace plangate::internal::redis {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace plangate::internal::redis::test;  // NOLINT(build/namespaces)
using plangate::testing::RedisServer;

TEST_CASE("a pipelined batch returns mixed replies in order", "[redis]") {
  auto server = StartServer();
  Harness h(TestOptions(*server));
  h.Start();
  RequireReady(h);
  CHECK(h.IsReady());

  Result r = h.Exec({{"SET", "k", "v"},
                     {"GET", "k"},
                     {"GET", "missing"},
                     {"INCR", "n"},
                     {"RPUSH", "l", "a", "b"},
                     {"LRANGE", "l", "0", "-1"},
                     {"INCR", "k"},
                     {"NOSUCHCOMMAND", "x"},
                     {"HSET", "h", "f", "1"},
                     {"HGETALL", "h"},
                     {"LRANGE", "nolist", "0", "-1"}});
  REQUIRE_OK(r);
  REQUIRE(r->size() == 11);
  const std::vector<Reply>& v = *r;
  CHECK(v[0].type == Reply::Type::kStatus);
  CHECK(v[0].str == "OK");
  CHECK(v[1].type == Reply::Type::kString);
  CHECK(v[1].str == "v");
  CHECK(v[2].type == Reply::Type::kNil);
  CHECK(v[3].type == Reply::Type::kInteger);
  CHECK(v[3].integer == 1);
  CHECK(v[4].integer == 2);
  REQUIRE(v[5].type == Reply::Type::kArray);
  REQUIRE(v[5].elements.size() == 2);
  CHECK(v[5].elements[0].type == Reply::Type::kString);
  CHECK(v[5].elements[0].str == "a");
  CHECK(v[5].elements[1].str == "b");
  CHECK(v[6].is_error());
  CHECK(absl::StartsWith(v[6].str, "ERR value is not an integer"));
  CHECK(v[7].is_error());
  CHECK(absl::StrContains(v[7].str, "unknown command"));
  CHECK(v[8].integer == 1);
  REQUIRE(v[9].type == Reply::Type::kArray);
  REQUIRE(v[9].elements.size() == 2);
  CHECK(v[9].elements[0].str == "f");
  CHECK(v[9].elements[1].str == "1");
  CHECK(v[10].type == Reply::Type::kArray);
  CHECK(v[10].elements.empty());

  // Many batches in flight at once come back in order, each whole.
  std::vector<std::future<Result>> futures;
  for (int i = 0; i < 50; ++i) {
    futures.push_back(h.ExecAsync({{"INCR", "c"}, {"GET", "c"}}));
  }
  for (int i = 0; i < 50; ++i) {
    Result b = Harness::Get(futures[i]);
    REQUIRE_OK(b);
    REQUIRE(b->size() == 2);
    CHECK((*b)[0].integer == i + 1);
    CHECK((*b)[1].str == std::to_string(i + 1));
  }

  // An empty batch is answered at once; a command without arguments is
  // refused before anything is sent.
  Result empty = h.Exec({});
  REQUIRE_OK(empty);
  CHECK(empty->empty());
  Result bad = h.Exec({{"PING"}, {}});
  CHECK(bad.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Contains(bad.status(), "command #2 has no arguments"));
  Result sub = h.Exec({{"subscribe", "ch"}});
  CHECK(sub.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(sub.status().message() ==
        "redis batch: command #1 (subscribe) is not supported: it makes the "
        "connection a push channel");

  const ClientStats stats = h.Stats();
  CHECK(stats.connects == 1);
  CHECK(stats.batches == 52);
  CHECK(stats.commands == 11 + 100);
  CHECK(stats.failed_batches == 2);
  CHECK(stats.timeouts == 0);
  CHECK(stats.disconnects == 0);
  h.Finish();
}

TEST_CASE("arguments and replies are binary safe, large ones too", "[redis]") {
  auto server = StartServer();
  RedisOptions options = TestOptions(*server);
  options.command_timeout = 30s;  // 8 MB each way, maybe under a sanitizer
  Harness h(options);
  h.Start();
  RequireReady(h);

  std::string key("k\0\r\n*1\r\n", 9);
  std::string value;
  for (int i = 0; i < 256; ++i) value.push_back(static_cast<char>(i));
  // Larger than socket buffers: partial writes and many reads.
  std::string big(4 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) {
    big[i] = static_cast<char>((i * 131) ^ (i >> 9));
  }
  Result r = h.Exec({{"SET", key, value},
                     {"GET", key},
                     {"SET", "big", big},
                     {"GET", "big"},
                     {"STRLEN", "big"}});
  REQUIRE_OK(r);
  REQUIRE(r->size() == 5);
  CHECK((*r)[1].str == value);
  CHECK((*r)[3].str.size() == big.size());
  CHECK((*r)[3].str == big);
  CHECK((*r)[4].integer == static_cast<int64_t>(big.size()));

  // The server saw the exact bytes.
  absl::StatusOr<Reply> len = server->Command({"STRLEN", key});
  REQUIRE_OK(len);
  CHECK(len->integer == 256);
  h.Finish();
}

TEST_CASE("AUTH with a password, an ACL user, and wrong credentials",
          "[redis]") {
  auto server = StartServer({.password = "s3cret"});

  SECTION("default user") {
    Harness h(TestOptions(*server));
    h.Start();
    RequireReady(h);
    Result r = h.Exec({{"ACL", "WHOAMI"}});
    REQUIRE_OK(r);
    CHECK((*r)[0].str == "default");
    h.Finish();
  }

  SECTION("ACL user") {
    absl::StatusOr<Reply> setuser = server->Command(
        {"ACL", "SETUSER", "alice", "on", ">alice-pw", "~*", "&*", "+@all"});
    REQUIRE_OK(setuser);
    REQUIRE(setuser->str == "OK");
    RedisOptions options = TestOptions(*server);
    options.user = "alice";
    options.password = "alice-pw";
    Harness h(options);
    h.Start();
    RequireReady(h);
    Result r = h.Exec({{"ACL", "WHOAMI"}});
    REQUIRE_OK(r);
    CHECK((*r)[0].str == "alice");
    h.Finish();
  }

  SECTION("wrong password: a clear reason, never ready") {
    RedisOptions options = TestOptions(*server);
    options.password = "wrong";
    options.reconnect_initial = 5ms;
    options.reconnect_max = 20ms;
    Harness h(options);
    h.Start();
    REQUIRE(h.events.WaitDowns(3));  // and it keeps trying
    const absl::Status why = h.events.Downs()[0];
    CHECK(why.code() == absl::StatusCode::kUnauthenticated);
    CHECK(absl::StartsWith(why.message(), "redis AUTH failed: WRONGPASS"));
    CHECK(Contains(why, server->host() + ":" + std::to_string(server->port())));
    CHECK(h.events.Ready() == 0);
    CHECK_FALSE(h.IsReady());
    // A batch meanwhile names the last error.
    Result r = h.Exec({{"PING"}});
    CHECK(r.status().code() == absl::StatusCode::kUnavailable);
    CHECK(Contains(r.status(), "redis not connected"));
    CHECK(Contains(r.status(), "AUTH failed"));
    const ClientStats stats = h.Stats();
    CHECK(stats.connects == 0);
    CHECK(stats.connect_failures >= 3);
    h.Finish();
  }

  SECTION("no password for a server that wants one") {
    RedisOptions options = TestOptions(*server);
    options.password.clear();
    Harness h(options);
    h.Start();
    REQUIRE(h.events.WaitDowns(1));
    const absl::Status why = h.events.Downs()[0];
    CHECK(absl::StartsWith(why.message(), "redis PING failed: NOAUTH"));
    CHECK(h.events.Ready() == 0);
    h.Finish();
  }
}

TEST_CASE("SELECT picks the db; a db out of range fails the connection",
          "[redis]") {
  auto server = StartServer({.args = {"--databases", "8"}});
  {
    RedisOptions options = TestOptions(*server);
    options.db = 5;
    Harness h(options);
    h.Start();
    RequireReady(h);
    REQUIRE_OK(h.Exec({{"SET", "dbkey", "five"}}));
    h.Finish();
  }
  absl::StatusOr<Reply> in5 = server->Command({"GET", "dbkey"}, 5);
  REQUIRE_OK(in5);
  CHECK(in5->str == "five");
  absl::StatusOr<Reply> in0 = server->Command({"GET", "dbkey"});
  REQUIRE_OK(in0);
  CHECK(in0->type == Reply::Type::kNil);

  RedisOptions options = TestOptions(*server);
  options.db = 8;
  Harness h(options);
  h.Start();
  REQUIRE(h.events.WaitDowns(1));
  const absl::Status why = h.events.Downs()[0];
  CHECK(why.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(absl::StartsWith(
      why.message(), "redis SELECT 8 failed: ERR DB index is out of range"));
  CHECK(h.events.Ready() == 0);
  h.Finish();
}

TEST_CASE("a unix socket, from a unix:// URL", "[redis]") {
  auto server = StartServer({.unix_socket = true});
  REQUIRE_FALSE(server->unix_socket().empty());
  absl::StatusOr<RedisOptions> options =
      ParseRedisUrl("unix://" + server->unix_socket() + "?db=2");
  REQUIRE_OK(options);
  CHECK(options->unix_socket == server->unix_socket());
  CHECK(options->db == 2);
  Harness h(*options);
  h.Start();
  RequireReady(h);
  Result r = h.Exec({{"SET", "via", "unix"}, {"CLIENT", "INFO"}});
  REQUIRE_OK(r);
  CHECK((*r)[0].str == "OK");
  CHECK(absl::StrContains((*r)[1].str, "db=2"));
  CHECK(absl::StrContains((*r)[1].str, "laddr=" + server->unix_socket()));
  h.Finish();
  absl::StatusOr<Reply> got = server->Command({"GET", "via"}, 2);
  REQUIRE_OK(got);
  CHECK(got->str == "unix");
}

TEST_CASE("init commands run before ready, on every connection", "[redis]") {
  auto server = StartServer();
  // on_ready runs on the io thread: look at the server from there, at that
  // very moment, and report back to the test thread.
  std::mutex mu;
  std::vector<std::string> seen_at_ready;
  RedisServer* s = server.get();
  Harness h(TestOptions(*server),
            {{"SET", "init:flag", "set"}, {"INCR", "init:count"}}, [&] {
              absl::StatusOr<Reply> count = s->Command({"GET", "init:count"});
              std::lock_guard<std::mutex> lock(mu);
              seen_at_ready.push_back(count.ok() ? count->str
                                                 : count.status().ToString());
            });
  h.Start();
  RequireReady(h);
  Result r = h.Exec({{"GET", "init:flag"}});
  REQUIRE_OK(r);
  CHECK((*r)[0].str == "set");

  // A new connection runs them again.
  h.Drop();
  RequireReady(h, 2);
  absl::StatusOr<Reply> count = server->Command({"GET", "init:count"});
  REQUIRE_OK(count);
  CHECK(count->str == "2");
  h.Finish();
  {
    std::lock_guard<std::mutex> lock(mu);
    REQUIRE(seen_at_ready.size() == 2);
    CHECK(seen_at_ready[0] == "1");
    CHECK(seen_at_ready[1] == "2");
  }
}

TEST_CASE("a failing init command fails the connection", "[redis]") {
  auto server = StartServer();
  Harness h(TestOptions(*server),
            {{"SET", "a", "1"}, {"NOSUCHCOMMAND", "x"}, {"SET", "b", "1"}});
  h.Start();
  REQUIRE(h.events.WaitDowns(1));
  const absl::Status why = h.events.Downs()[0];
  CHECK(why.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(absl::StartsWith(why.message(),
                         "redis init command #2 (NOSUCHCOMMAND) failed: ERR "
                         "unknown command"));
  CHECK(h.events.Ready() == 0);
  h.Finish();
}

TEST_CASE("reconnects after the server is killed and restarted", "[redis]") {
  auto server = StartServer();
  RedisOptions options = TestOptions(*server);
  options.reconnect_initial = 10ms;
  options.reconnect_max = 200ms;
  Harness h(options);
  h.Start();
  RequireReady(h);
  REQUIRE_OK(h.Exec({{"SET", "x", "1"}}));

  REQUIRE_OK(server->Kill());
  REQUIRE(h.events.WaitDowns(1));
  const absl::Status lost = h.events.Downs()[0];
  CHECK(lost.code() == absl::StatusCode::kUnavailable);
  CHECK(absl::StartsWith(lost.message(), "redis connection lost: "));
  // While it is down, batches fail at once.
  Result down = h.Exec({{"PING"}});
  CHECK(down.status().code() == absl::StatusCode::kUnavailable);
  CHECK(Contains(down.status(), "redis not connected"));

  REQUIRE_OK(server->Restart());
  RequireReady(h, 2);
  Result r = h.Exec({{"PING"}, {"GET", "x"}});
  REQUIRE_OK(r);
  CHECK((*r)[0].str == "PONG");
  CHECK((*r)[1].type == Reply::Type::kNil);  // no persistence
  const ClientStats stats = h.Stats();
  CHECK(stats.connects == 2);
  CHECK(stats.disconnects == 1);
  CHECK(stats.connect_failures + 1 == h.events.Downs().size());
  h.Finish();
}

TEST_CASE(
    "a batch past command_timeout fails with DeadlineExceeded and the "
    "client recovers",
    "[redis]") {
  auto server = StartServer();
  RedisOptions options = TestOptions(*server);
  options.command_timeout = 200ms;
  options.connect_timeout = 10s;  // the server is still asleep meanwhile
  options.reconnect_initial = 10ms;
  Harness h(options);
  h.Start();
  RequireReady(h);

  std::vector<std::future<Result>> f =
      h.ExecManyAsync({{{"DEBUG", "SLEEP", "1"}}, {{"PING"}}});
  Result slept = Harness::Get(f[0]);
  CHECK(slept.status().code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(Contains(slept.status(),
                 "redis batch of 1 command got no reply within 200ms"));
  Result other = Harness::Get(f[1]);
  CHECK(other.status().code() == absl::StatusCode::kUnavailable);
  CHECK(Contains(other.status(), "an earlier batch timed out"));

  RequireReady(h, 2);
  Result r = h.ExecEventually({{"PING"}});
  REQUIRE_OK(r);
  CHECK((*r)[0].str == "PONG");
  const ClientStats stats = h.Stats();
  CHECK(stats.timeouts >= 1);  // more only if a PING was slow
  CHECK(stats.disconnects == stats.timeouts);
  CHECK(stats.connects == stats.disconnects + 1);
  CHECK(h.events.Downs()[0].code() == absl::StatusCode::kDeadlineExceeded);
  h.Finish();
}

TEST_CASE("a paused server: batches and connects time out, then recover",
          "[redis]") {
  auto server = StartServer();
  RedisOptions options = TestOptions(*server);
  options.command_timeout = 300ms;
  options.connect_timeout = 300ms;
  options.reconnect_initial = 10ms;
  options.reconnect_max = 100ms;
  Harness h(options);
  h.Start();
  RequireReady(h);

  REQUIRE_OK(server->Pause());
  Result r = h.Exec({{"PING"}});
  CHECK(r.status().code() == absl::StatusCode::kDeadlineExceeded);
  // Reconnects reach the kernel's accept queue, but nothing answers.
  REQUIRE(h.events.WaitUntil([&] {
    for (const absl::Status& s : h.events.downs) {
      if (absl::StrContains(s.message(), "redis connect timed out"))
        return true;
    }
    return false;
  }));
  CHECK(h.events.Ready() == 1);

  REQUIRE_OK(server->Resume());
  RequireReady(h, 2);
  Result after = h.ExecEventually({{"PING"}});
  REQUIRE_OK(after);
  CHECK((*after)[0].str == "PONG");
  const ClientStats stats = h.Stats();
  CHECK(stats.timeouts >= 1);
  CHECK(stats.connect_failures >= 1);
  h.Finish();
}

TEST_CASE("connect timeout: connected, but the handshake is never answered",
          "[redis]") {
  auto server = StartServer();
  REQUIRE_OK(server->Pause());
  RedisOptions options = TestOptions(*server);
  options.connect_timeout = 200ms;
  options.reconnect_initial = 10ms;
  options.reconnect_max = 50ms;
  Harness h(options);
  h.Start();
  REQUIRE(h.events.WaitDowns(2));
  const absl::Status why = h.events.Downs()[0];
  CHECK(why.code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(absl::StartsWith(why.message(),
                         "redis connect timed out after 200ms (connected, but "
                         "the handshake got no reply)"));
  CHECK(h.events.Ready() == 0);
  CHECK(h.Stats().connect_failures >= 2);

  REQUIRE_OK(server->Resume());
  RequireReady(h);
  REQUIRE_OK(h.Exec({{"PING"}}));
  h.Finish();
}

TEST_CASE("nothing listening: connects fail with the reason", "[redis]") {
  auto server = StartServer();
  REQUIRE_OK(server->Kill());  // its port is now closed
  RedisOptions options = TestOptions(*server);
  options.reconnect_initial = 5ms;
  options.reconnect_max = 20ms;
  Harness h(options);
  h.Start();
  REQUIRE(h.events.WaitDowns(2));
  const absl::Status why = h.events.Downs()[0];
  CHECK(why.code() == absl::StatusCode::kUnavailable);
  CHECK(absl::StartsWith(
      why.message(),
      "redis connect failed: Connection refused (at 127.0.0.1:"));
  h.Finish();
}

TEST_CASE(
    "CLIENT KILL fails the batch in flight with Unavailable, then the "
    "client reconnects",
    "[redis]") {
  auto server = StartServer();
  RedisOptions options = TestOptions(*server);
  options.command_timeout = 30s;
  options.reconnect_initial = 10ms;
  Harness h(options);
  h.Start();
  RequireReady(h);

  std::future<Result> blocked = h.ExecAsync({{"BLPOP", "nolist", "30"}});
  // Wait until the server has it (the client is blocked in BLPOP).
  bool seen = false;
  for (int i = 0; i < 6000 && !seen; ++i) {
    absl::StatusOr<Reply> list = server->Command({"CLIENT", "LIST"});
    REQUIRE_OK(list);
    seen = absl::StrContains(list->str, "cmd=blpop");
    if (!seen) std::this_thread::sleep_for(10ms);
  }
  REQUIRE(seen);
  absl::StatusOr<Reply> killed =
      server->Command({"CLIENT", "KILL", "TYPE", "normal"});
  REQUIRE_OK(killed);
  CHECK(killed->integer >= 1);

  Result r = Harness::Get(blocked);
  CHECK(r.status().code() == absl::StatusCode::kUnavailable);
  CHECK(Contains(r.status(), "redis connection lost"));
  RequireReady(h, 2);
  REQUIRE_OK(h.Exec({{"PING"}}));
  const ClientStats stats = h.Stats();
  CHECK(stats.disconnects == 1);
  CHECK(stats.failed_batches == 1);
  h.Finish();
}

TEST_CASE("Stop fails every pending batch with Cancelled, exactly once",
          "[redis]") {
  auto server = StartServer();
  RedisOptions options = TestOptions(*server);
  options.command_timeout = 30s;
  Harness h(options);
  h.Start();
  RequireReady(h);

  // The BLPOP blocks the connection; the others queue behind it.
  std::vector<std::future<Result>> pending;
  pending.push_back(h.ExecAsync({{"BLPOP", "nolist", "30"}}));
  pending.push_back(h.ExecAsync({{"PING"}}));
  pending.push_back(h.ExecAsync({{"SET", "a", "1"}, {"GET", "a"}}));
  h.Stop();
  for (auto& f : pending) {
    Result r = Harness::Get(f);
    CHECK(r.status().code() == absl::StatusCode::kCancelled);
    CHECK(r.status().message() == "redis client stopped");
  }
  Result after = h.Exec({{"PING"}});
  CHECK(after.status().code() == absl::StatusCode::kCancelled);
  CHECK_FALSE(h.IsReady());
  h.Stop();  // idempotent
  const ClientStats stats = h.Stats();
  CHECK(stats.failed_batches == 4);
  CHECK(stats.batches == 0);
  CHECK(h.events.Downs().empty());  // Stop is not a failure
  h.Finish();
}

TEST_CASE("destroying a client calls pending done with Cancelled", "[redis]") {
  auto server = StartServer();
  RedisOptions options = TestOptions(*server);
  options.command_timeout = 30s;
  int calls = 0;
  absl::Status status;
  {
    auto io = std::make_unique<asio::io_context>();
    // Like every Asio object, a strand must not outlive its io_context.
    std::optional<Client::Strand> strand(asio::make_strand(*io));
    std::shared_ptr<Client> client = Client::Create(*strand, options);
    std::promise<void> ready;
    client->SetOnReady([&ready] { ready.set_value(); });
    asio::post(*strand, [client] { client->Start(); });
    std::thread thread([&io] { io->run_for(kWait); });
    const bool was_ready =
        ready.get_future().wait_for(kWait) == std::future_status::ready;
    std::promise<void> sent;
    asio::post(*strand, [&] {
      client->Execute({{"BLPOP", "nolist", "30"}}, [&](Result r) {
        ++calls;
        status = r.status();
      });
      sent.set_value();
    });
    sent.get_future().wait();
    io->stop();  // abandon everything, as a host exiting would
    thread.join();
    REQUIRE(was_ready);
    client.reset();  // its pending handlers still hold it...
    strand.reset();
    CHECK(calls == 0);
    io.reset();  // ...until the io_context destroys them
  }
  CHECK(calls == 1);
  CHECK(status.code() == absl::StatusCode::kCancelled);
}

TEST_CASE("reconnect backoff doubles up to its cap", "[redis]") {
  RedisOptions o;
  o.reconnect_initial = 50ms;
  o.reconnect_max = 5000ms;
  CHECK(ReconnectBackoffCap(o, 0) == 50ms);
  CHECK(ReconnectBackoffCap(o, 1) == 100ms);
  CHECK(ReconnectBackoffCap(o, 2) == 200ms);
  CHECK(ReconnectBackoffCap(o, 6) == 3200ms);
  CHECK(ReconnectBackoffCap(o, 7) == 5000ms);
  CHECK(ReconnectBackoffCap(o, 1000) == 5000ms);
  o.reconnect_initial = 0ms;  // never a busy loop
  CHECK(ReconnectBackoffCap(o, 0) == 1ms);
  o.reconnect_initial = 300ms;
  o.reconnect_max = 100ms;  // max below initial: initial wins
  CHECK(ReconnectBackoffCap(o, 5) == 300ms);

  // Live: with nothing listening and a 1ms start, the delays grow fast. A
  // client that did not back off would fail thousands of times in the
  // second we watch; one that does fails about a dozen times (the caps of
  // the first 12 attempts add up to 4 s). Load only makes it fewer.
  auto server = StartServer();
  REQUIRE_OK(server->Kill());
  RedisOptions options = TestOptions(*server);
  options.reconnect_initial = 1ms;
  options.reconnect_max = 60s;
  Harness h(options);
  h.Start();
  REQUIRE(h.events.WaitDowns(3));
  std::this_thread::sleep_for(1s);
  CHECK(h.Stats().connect_failures < 30);
  h.Finish();
}

TEST_CASE("ParseRedisUrl accepts the documented forms", "[redis][url]") {
  absl::StatusOr<RedisOptions> o = ParseRedisUrl("redis://localhost");
  REQUIRE_OK(o);
  CHECK(o->host == "localhost");
  CHECK(o->port == 6379);
  CHECK(o->db == 0);
  CHECK(o->user.empty());
  CHECK(o->password.empty());
  CHECK(o->unix_socket.empty());

  o = ParseRedisUrl("redis://10.0.0.7:6380/2");
  REQUIRE_OK(o);
  CHECK(o->host == "10.0.0.7");
  CHECK(o->port == 6380);
  CHECK(o->db == 2);

  o = ParseRedisUrl("redis://:s3cret@cache:1/15");
  REQUIRE_OK(o);
  CHECK(o->user.empty());
  CHECK(o->password == "s3cret");
  CHECK(o->host == "cache");
  CHECK(o->port == 1);
  CHECK(o->db == 15);

  o = ParseRedisUrl("redis://alice:p%40ss%3Aw%2Fd@cache:65535/");
  REQUIRE_OK(o);
  CHECK(o->user == "alice");
  CHECK(o->password == "p@ss:w/d");
  CHECK(o->port == 65535);
  CHECK(o->db == 0);

  o = ParseRedisUrl("REDIS://[::1]:7000/1");
  REQUIRE_OK(o);
  CHECK(o->host == "::1");
  CHECK(o->port == 7000);
  CHECK(o->db == 1);

  o = ParseRedisUrl("unix:///run/redis/redis.sock");
  REQUIRE_OK(o);
  CHECK(o->unix_socket == "/run/redis/redis.sock");
  CHECK(o->db == 0);

  o = ParseRedisUrl("unix:///tmp/r.sock?db=3");
  REQUIRE_OK(o);
  CHECK(o->unix_socket == "/tmp/r.sock");
  CHECK(o->db == 3);
  CHECK_FALSE(o->tls);

  o = ParseRedisUrl("redis://cache:6380");
  REQUIRE_OK(o);
  CHECK_FALSE(o->tls);

  o = ParseRedisUrl("RedisS://u:pw@cache.example:6380/4");
  REQUIRE_OK(o);
  CHECK(o->tls);
  CHECK(o->tls_verify);
  CHECK(o->host == "cache.example");
  CHECK(o->port == 6380);
  CHECK(o->user == "u");
  CHECK(o->password == "pw");
  CHECK(o->db == 4);
  CHECK(o->tls_server_name.empty());  // the client verifies `host`
}

TEST_CASE("ParseRedisUrl names what is wrong, never the password",
          "[redis][url]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"redis://h:99999",
       R"(redis URL "redis://h:99999": port must be in [1, 65535])"},
      {"redis://h:0", R"(redis URL "redis://h:0": port must be in [1, 65535])"},
      {"redis://h:12345678901",
       R"(redis URL "redis://h:12345678901": port must be in [1, 65535])"},
      {"redis://h:6a",
       R"(redis URL "redis://h:6a": port must be a number, got "6a")"},
      {"redis://h:", R"(redis URL "redis://h:": port is empty)"},
      {"redis://", R"(redis URL "redis://": host is empty)"},
      {"redis://:6379", R"(redis URL "redis://:6379": host is empty)"},
      {"redis://user:hunter2@h:70000",
       R"(redis URL "redis://user:***@h:70000": port must be in [1, 65535])"},
      {"redis://:hunter2@/1", R"(redis URL "redis://:***@/1": host is empty)"},
      {"redis://hunter2@h",
       R"(redis URL "redis://***@h": credentials must be [user]:password@ (a password alone is written :password@))"},
      {"redis://u:@h",
       R"(redis URL "redis://u:***@h": the password after ':' is empty)"},
      {"redis://u:p%4@h",
       R"(redis URL "redis://u:***@h": bad percent-encoding in the password)"},
      {"redis://u%zz:p@h",
       R"(redis URL "redis://u%zz:***@h": bad percent-encoding in the user)"},
      {"redis://h/x",
       R"(redis URL "redis://h/x": db must be a non-negative integer, got "x")"},
      {"redis://h/-1",
       R"(redis URL "redis://h/-1": db must be a non-negative integer, got "-1")"},
      {"redis://h/99999999999",
       R"(redis URL "redis://h/99999999999": db must be a non-negative integer, got "99999999999")"},
      {"redis://h?db=1",
       R"(redis URL "redis://h?db=1": query and fragment are not supported in redis:// URLs (the db goes in the path: redis://host:port/db))"},
      {"redis://::1:6379",
       R"(redis URL "redis://::1:6379": an IPv6 host must be written in brackets ([::1]:6379))"},
      {"redis://[::1:6379",
       R"(redis URL "redis://[::1:6379": IPv6 host is missing its closing ']')"},
      {"redis://[::1]x",
       R"(redis URL "redis://[::1]x": unexpected "x" after the IPv6 host)"},
      {"http://h",
       R"(redis URL "http://h": scheme must be redis://, rediss://, unix://, redis-sentinel:// or rediss-sentinel://)"},
      {"localhost:6379",
       R"(redis URL "localhost:6379": scheme must be redis://, rediss://, unix://, redis-sentinel:// or rediss-sentinel://)"},
      {"rediss://:hunter2@h:0",
       R"(redis URL "rediss://:***@h:0": port must be in [1, 65535])"},
      {"unix://", R"(redis URL "unix://": socket path is empty)"},
      {"unix://r.sock",
       R"(redis URL "unix://r.sock": socket path must be absolute (unix:///path/to.sock))"},
      {"unix:///s?db=x",
       R"(redis URL "unix:///s?db=x": db must be a non-negative integer, got "x")"},
      {"unix:///s?db",
       R"(redis URL "unix:///s?db": db must be a non-negative integer, got "")"},
      {"unix:///s?foo=1",
       R"(redis URL "unix:///s?foo=1": unknown parameter "foo" (only db is supported))"},
      {"unix:///s#x", R"(redis URL "unix:///s#x": fragment is not supported)"},
  };
  for (const auto& [url, message] : cases) {
    INFO("url: " << url);
    absl::StatusOr<RedisOptions> o = ParseRedisUrl(url);
    REQUIRE_FALSE(o.ok());
    CHECK(o.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(o.status().message()) == message);
  }
  const std::string long_path = "unix:///" + std::string(120, 'a');
  absl::StatusOr<RedisOptions> o = ParseRedisUrl(long_path);
  REQUIRE_FALSE(o.ok());
  CHECK(Contains(o.status(), "socket path is longer than 107 bytes"));
}

}  // namespace
}  // namespace plangate::internal::redis
