// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// client_harness.h: what the Redis client tests share: a Harness running a
// Client on an io_context thread of its own, the Events it reported
// (on_ready / on_down), and helpers to start servers and check statuses.
//
// The test thread talks to the client through its strand and waits on
// futures with generous limits. Assertions run on the test thread only.
//
// Thread safety: a Harness is used from the test thread; Events is
// internally locked (the client's callbacks fill it on the io thread).

#ifndef PLANGATE_TESTS_REDIS_CLIENT_HARNESS_H_
#define PLANGATE_TESTS_REDIS_CLIENT_HARNESS_H_

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
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "plangate/sync.h"
#include "redis/redis_client.h"
#include "support/redis_server.h"

namespace plangate::internal::redis::test {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using plangate::testing::RedisServer;
using Result = absl::StatusOr<std::vector<Reply>>;

// Generous: the machine may be loaded, and sanitizers slow things down.
constexpr auto kWait = 60s;

inline std::unique_ptr<RedisServer> StartServer(
    RedisServer::Options options = {}) {
  absl::StatusOr<std::unique_ptr<RedisServer>> server =
      RedisServer::Start(std::move(options));
  if (!server.ok()) {
    FAIL("cannot start a redis-server: " << server.status().ToString());
  }
  return *std::move(server);
}

// Shows the status when it is not OK.
#define REQUIRE_OK(expr)                                       \
  do {                                                         \
    const auto& require_ok_value = (expr);                     \
    INFO("status: " << StatusOf(require_ok_value).ToString()); \
    REQUIRE(require_ok_value.ok());                            \
  } while (0)

inline absl::Status StatusOf(const absl::Status& s) { return s; }
template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

// The server's address and password, with timeouts generous enough for a
// loaded machine; tests about timeouts set their own.
inline RedisOptions TestOptions(const RedisServer& server) {
  RedisOptions o = server.ClientOptions();
  o.connect_timeout = 10s;
  o.command_timeout = 10s;
  o.reconnect_initial = 10ms;
  o.reconnect_max = 200ms;
  return o;
}

inline bool Contains(const absl::Status& s, const std::string& part) {
  return absl::StrContains(s.message(), part);
}

// What the client reported through on_ready / on_down.
struct Events {
  std::mutex mu;
  std::condition_variable cv;
  int ready = 0;
  std::vector<absl::Status> downs;

  template <typename Pred>
  bool WaitUntil(Pred pred, std::chrono::seconds limit = kWait) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, limit, [&] { return pred(); });
  }
  bool WaitReady(int n) {
    return WaitUntil([&] { return ready >= n; });
  }
  bool WaitDowns(size_t n) {
    return WaitUntil([&] { return downs.size() >= n; });
  }
  int Ready() {
    std::lock_guard<std::mutex> lock(mu);
    return ready;
  }
  std::vector<absl::Status> Downs() {
    std::lock_guard<std::mutex> lock(mu);
    return downs;
  }
};

// An io_context on its own thread and a Client on a strand of it.
class Harness {
 public:
  explicit Harness(RedisOptions options, std::vector<Command> init = {},
                   std::function<void()> on_ready_hook = {})
      : strand_(asio::make_strand(io_)), work_(asio::make_work_guard(io_)) {
    client_ = Client::Create(strand_, std::move(options));
    client_->SetInitCommands(std::move(init));
    client_->SetOnReady([this, hook = std::move(on_ready_hook)] {
      if (hook) hook();
      std::lock_guard<std::mutex> lock(events.mu);
      ++events.ready;
      events.cv.notify_all();
    });
    client_->SetOnDown([this](const absl::Status& why) {
      std::lock_guard<std::mutex> lock(events.mu);
      events.downs.push_back(why);
      events.cv.notify_all();
    });
    thread_ = std::thread([this] {
      io_.run();
      run_returned_.set_value();
    });
  }

  ~Harness() { Shutdown(); }

  // Runs `f` on the strand and returns its result.
  template <typename F>
  auto Run(F f) -> decltype(f()) {
    using R = decltype(f());
    auto task = std::make_shared<std::packaged_task<R()>>(std::move(f));
    std::future<R> result = task->get_future();
    asio::post(strand_, [task] { (*task)(); });
    if (result.wait_for(kWait) != std::future_status::ready) {
      FAIL("the strand ran no task for " << kWait.count() << " s");
    }
    return result.get();
  }

  void Start() {
    Run([this] { client_->Start(); });
  }
  void Stop() {
    Run([this] { client_->Stop(); });
  }
  void Drop() {
    Run([this] { client_->DropConnection(); });
  }
  ClientStats Stats() {
    return Run([this] { return client_->stats(); });
  }
  bool IsReady() {
    return Run([this] { return client_->ready(); });
  }

  std::future<Result> ExecAsync(std::vector<Command> commands) {
    auto promise = std::make_shared<std::promise<Result>>();
    std::future<Result> future = promise->get_future();
    asio::post(strand_, [this, promise, commands = std::move(commands)] {
      auto calls = std::make_shared<int>(0);
      in_execute_ = true;
      client_->Execute(commands, [this, promise, calls](Result r) {
        if (in_execute_) ++reentrant_calls_;
        if (++*calls > 1) {
          ++extra_calls_;
          return;
        }
        promise->set_value(std::move(r));
      });
      in_execute_ = false;
    });
    return future;
  }

  // Several batches, executed in one turn of the strand (so they are in
  // flight together).
  std::vector<std::future<Result>> ExecManyAsync(
      std::vector<std::vector<Command>> batches) {
    std::vector<std::shared_ptr<std::promise<Result>>> promises;
    std::vector<std::future<Result>> futures;
    for (size_t i = 0; i < batches.size(); ++i) {
      promises.push_back(std::make_shared<std::promise<Result>>());
      futures.push_back(promises.back()->get_future());
    }
    asio::post(strand_, [this, promises, batches = std::move(batches)] {
      for (size_t i = 0; i < batches.size(); ++i) {
        auto calls = std::make_shared<int>(0);
        in_execute_ = true;
        client_->Execute(batches[i], [this, p = promises[i], calls](Result r) {
          if (in_execute_) ++reentrant_calls_;
          if (++*calls > 1) {
            ++extra_calls_;
            return;
          }
          p->set_value(std::move(r));
        });
        in_execute_ = false;
      }
    });
    return futures;
  }

  // Sends `commands` until a batch succeeds (a client with a short
  // command_timeout may see a slow answer time out on a loaded machine).
  Result ExecEventually(const std::vector<Command>& commands) {
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    for (;;) {
      Result r = Exec(commands);
      if (r.ok() || std::chrono::steady_clock::now() > deadline) return r;
      std::this_thread::sleep_for(20ms);
    }
  }

  static Result Get(std::future<Result>& f) {
    if (f.wait_for(kWait) != std::future_status::ready) {
      FAIL("a batch got no answer for " << kWait.count() << " s");
    }
    return f.get();
  }

  Result Exec(std::vector<Command> commands) {
    std::future<Result> f = ExecAsync(std::move(commands));
    return Get(f);
  }

  // Stops the client, lets the io_context run dry and checks that it did
  // (nothing left pending after Stop), and that every `done` ran exactly
  // once and never from inside Execute.
  void Finish() {
    Shutdown();
    CHECK_FALSE(io_stuck_);
    CHECK(extra_calls_ == 0);
    CHECK(reentrant_calls_ == 0);
  }

  Events events;

 private:
  void Shutdown() {
    if (!thread_.joinable()) return;
    asio::post(strand_, [client = std::move(client_)] { client->Stop(); });
    work_.reset();
    if (run_returned_.get_future().wait_for(kWait) !=
        std::future_status::ready) {
      io_stuck_ = true;
      io_.stop();
    }
    thread_.join();
  }

  asio::io_context io_;
  Client::Strand strand_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::shared_ptr<Client> client_;
  std::thread thread_;
  std::promise<void> run_returned_;
  bool io_stuck_ = false;
  // Touched on the strand only, read after the thread joined.
  bool in_execute_ = false;
  int extra_calls_ = 0;
  int reentrant_calls_ = 0;
};

inline void RequireReady(Harness& h, int n = 1) {
  if (!h.events.WaitReady(n)) {
    std::string downs;
    for (const absl::Status& s : h.events.Downs()) {
      downs += "\n  " + s.ToString();
    }
    FAIL("the client was not ready " << n << " time(s) within " << kWait.count()
                                     << " s; on_down got:" << downs);
  }
}

}  // namespace plangate::internal::redis::test

#endif  // PLANGATE_TESTS_REDIS_CLIENT_HARNESS_H_
