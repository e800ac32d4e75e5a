// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// The Redis client through network faults a redis-server alone cannot
// cause: a partition (tests/support/tcp_proxy.h Blackhole: batches time
// out, later ones fail fast, the client reconnects once it heals), a
// failover behind one address (Retarget), and a peer that answers with
// bytes that are not RESP (the connection is dropped with a message naming
// the node, never a crash), or that closes while we are still writing
// (EPIPE is an error, never a SIGPIPE).

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "plangate/sync.h"
#include "redis/client_harness.h"
#include "redis/redis_client.h"
#include "support/redis_server.h"
#include "support/tcp_proxy.h"

namespace plangate::internal::redis {
namespace {

using namespace std::chrono_literals;
using namespace plangate::internal::redis::test;  // NOLINT(build/namespaces)
using plangate::testing::RedisServer;
using plangate::testing::TcpProxy;

std::unique_ptr<TcpProxy> StartProxy(int port) {
  absl::StatusOr<std::unique_ptr<TcpProxy>> proxy = TcpProxy::Start(port);
  if (!proxy.ok()) FAIL("cannot start the proxy: " << proxy.status());
  return *std::move(proxy);
}

TEST_CASE("a partition: batches time out, then the client reconnects",
          "[redis][fault]") {
  auto server = StartServer();
  auto proxy = StartProxy(server->port());
  RedisOptions options = TestOptions(*server);
  options.port = proxy->port();
  options.command_timeout = 300ms;
  options.connect_timeout = 300ms;
  Harness h(options);
  h.Start();
  RequireReady(h);
  REQUIRE_OK(h.ExecEventually({{"SET", "k", "1"}}));

  proxy->Blackhole();
  std::vector<std::future<Result>> inflight =
      h.ExecManyAsync({{{"INCR", "k"}}, {{"INCR", "k"}, {"GET", "k"}}});
  Result first = Harness::Get(inflight[0]);
  Result second = Harness::Get(inflight[1]);
  CHECK(first.status().code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(Contains(first.status(), "got no reply within 300ms"));
  CHECK(Contains(first.status(),
                 "(at 127.0.0.1:" + std::to_string(proxy->port()) + ")"));
  CHECK(second.status().code() == absl::StatusCode::kUnavailable);
  CHECK(Contains(second.status(), "an earlier batch timed out"));
  // While partitioned, reconnects are accepted but never answered.
  REQUIRE(h.events.WaitUntil([&] {
    for (const absl::Status& s : h.events.downs) {
      if (absl::StrContains(s.message(), "handshake got no reply")) return true;
    }
    return false;
  }));
  Result down = h.Exec({{"PING"}});
  CHECK(down.status().code() == absl::StatusCode::kUnavailable);

  proxy->Heal();
  RequireReady(h, 2);
  Result after = h.ExecEventually({{"GET", "k"}});
  REQUIRE_OK(after);
  // The INCRs sent into the partition may or may not have reached Redis
  // (the proxy held them); nothing else changed k.
  CHECK(((*after)[0].str == "1" || (*after)[0].str == "2" ||
         (*after)[0].str == "3"));
  const ClientStats stats = h.Stats();
  CHECK(stats.timeouts >= 1);
  CHECK(stats.connects >= 2);
  h.Finish();
}

TEST_CASE("a failover behind one address: the client follows it",
          "[redis][fault]") {
  auto primary = StartServer();
  auto replacement = StartServer();
  auto proxy = StartProxy(primary->port());
  RedisOptions options = TestOptions(*primary);
  options.port = proxy->port();
  options.command_timeout = 30s;
  Harness h(options, {{"SET", "server", "init"}});
  h.Start();
  RequireReady(h);
  std::future<Result> blocked = h.ExecAsync({{"BLPOP", "nolist", "30"}});
  bool seen = false;
  for (int i = 0; i < 6000 && !seen; ++i) {
    absl::StatusOr<Reply> list = primary->Command({"CLIENT", "LIST"});
    REQUIRE_OK(list);
    seen = absl::StrContains(list->str, "cmd=blpop");
    if (!seen) std::this_thread::sleep_for(10ms);
  }
  REQUIRE(seen);
  proxy->Retarget(replacement->port());
  Result r = Harness::Get(blocked);
  CHECK(r.status().code() == absl::StatusCode::kUnavailable);
  CHECK(Contains(r.status(), "redis connection lost"));
  RequireReady(h, 2);
  // The init command ran on the new server too.
  absl::StatusOr<Reply> init = replacement->Command({"GET", "server"});
  REQUIRE_OK(init);
  CHECK(init->str == "init");
  REQUIRE_OK(h.ExecEventually({{"PING"}}));
  h.Finish();
}

// Accepts connections on a loopback port and answers whatever comes with
// `reply`, then keeps the connection open until the test ends.
class FakeServer {
 public:
  explicit FakeServer(std::string reply) : reply_(std::move(reply)) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(listen(fd_, 16) == 0);
    socklen_t len = sizeof(addr);
    REQUIRE(getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~FakeServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
    for (int c : conns_) close(c);
  }
  int port() const { return port_; }

 private:
  void Run() {
    while (!stop_) {
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      conns_.push_back(c);
      char buf[512];
      if (read(c, buf, sizeof(buf)) > 0) {
        (void)!write(c, reply_.data(), reply_.size());
      }
    }
  }

  std::string reply_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::vector<int> conns_;  // the thread's until joined
  std::thread thread_;
};

TEST_CASE("a peer that does not speak RESP is dropped with the reason",
          "[redis][fault]") {
  FakeServer fake("HTTP/1.1 400 Bad Request\r\n\r\n");
  RedisOptions options;
  options.host = "127.0.0.1";
  options.port = fake.port();
  options.connect_timeout = 5s;
  options.reconnect_initial = 10ms;
  options.reconnect_max = 50ms;
  Harness h(options);
  h.Start();
  REQUIRE(h.events.WaitDowns(2));
  const absl::Status why = h.events.Downs()[0];
  CHECK(why.code() == absl::StatusCode::kUnavailable);
  CHECK(Contains(why,
                 "redis sent a malformed reply: RESP protocol error at "
                 "byte 0: unexpected type byte 0x48"));
  CHECK(Contains(why, "(at 127.0.0.1:" + std::to_string(fake.port()) + ")"));
  CHECK(h.events.Ready() == 0);
  const ClientStats stats = h.Stats();
  CHECK(stats.protocol_errors >= 2);
  CHECK(stats.io_errors == 0);
  CHECK(absl::StrContains(stats.last_error, "RESP protocol error"));
  h.Finish();
}

TEST_CASE("a server that closes mid-write: EPIPE, not SIGPIPE",
          "[redis][fault]") {
  // SIGPIPE's default action kills the process: the client must not raise
  // it (Asio sends with MSG_NOSIGNAL).
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  struct sigaction old {};
  REQUIRE(sigaction(SIGPIPE, &dfl, &old) == 0);
  RedisServer::Options server_options;
  // A bulk longer than this is a protocol error: Redis answers and closes
  // the connection at once, with most of our value still to be written.
  server_options.args = {"--proto-max-bulk-len", "1mb"};
  auto server = StartServer(std::move(server_options));
  Harness h(TestOptions(*server));
  h.Start();
  RequireReady(h);
  const std::string huge(64 << 20, 'x');
  Result r = h.Exec({{"SET", "huge", huge}});
  if (r.ok()) {  // the error reply was read before the write failed
    REQUIRE(r->size() == 1);
    CHECK((*r)[0].is_error());
  } else {
    CHECK(r.status().code() == absl::StatusCode::kUnavailable);
    CHECK(Contains(r.status(), "redis connection lost"));
  }
  RequireReady(h, 2);
  REQUIRE_OK(h.ExecEventually({{"PING"}}));
  h.Finish();
  sigaction(SIGPIPE, &old, nullptr);
}

}  // namespace
}  // namespace plangate::internal::redis
