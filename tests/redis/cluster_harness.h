// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// cluster_harness.h: a ClusterClient on an io_context thread of its own,
// for the cluster client tests. The test thread talks to it through its
// strand and waits on futures.
//
// Thread safety: a ClusterHarness is used from the test thread.

#ifndef PLANGATE_TESTS_REDIS_CLUSTER_HARNESS_H_
#define PLANGATE_TESTS_REDIS_CLUSTER_HARNESS_H_

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "redis/cluster_client.h"

namespace plangate::internal::redis::test {

class ClusterHarness {
 public:
  using Result = absl::StatusOr<std::vector<Reply>>;

  explicit ClusterHarness(RedisOptions options, std::vector<Command> init = {})
      : strand_(boost::asio::make_strand(io_)),
        work_(boost::asio::make_work_guard(io_)) {
    client_ = ClusterClient::Create(strand_, std::move(options));
    client_->SetInitCommands(std::move(init));
    client_->SetOnReady([this] { readies_.fetch_add(1); });
    thread_ = std::thread([this] { io_.run(); });
    boost::asio::post(strand_, [c = client_] { c->Start(); });
  }

  ~ClusterHarness() {
    std::promise<void> stopped;
    boost::asio::post(strand_, [&] {
      client_->Stop();
      stopped.set_value();
    });
    stopped.get_future().wait();
    client_.reset();
    work_.reset();
    thread_.join();
  }

  Result Exec(std::vector<Command> commands) {
    auto p = std::make_shared<std::promise<Result>>();
    auto f = p->get_future();
    boost::asio::post(strand_, [this, p, c = std::move(commands)]() mutable {
      client_->Execute(std::move(c), [p](Result r) { p->set_value(r); });
    });
    return f.get();
  }

  template <typename T, typename F>
  T OnStrand(F f) {
    std::promise<T> p;
    boost::asio::post(strand_, [&] { p.set_value(f(*client_)); });
    return p.get_future().get();
  }

  bool WaitReady(std::chrono::seconds limit = std::chrono::seconds(30)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!OnStrand<bool>([](ClusterClient& c) { return c.ready(); })) {
      if (std::chrono::steady_clock::now() > end) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }

  // Every primary of the slot map is connected, `primaries` of them: ready()
  // needs only one, and a command routed to a primary still connecting is
  // answered "node ... not connected" (under a sanitizer that can last a
  // while after the first node is up).
  bool WaitAllPrimaries(int primaries,
                        std::chrono::seconds limit = std::chrono::seconds(30)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    for (;;) {
      const ClusterStats s = Stats();
      int up = 0;
      bool all = true;
      for (const ClusterNodeStats& n : s.nodes) {
        if (!n.primary) continue;
        if (n.connected) {
          ++up;
        } else {
          all = false;
        }
      }
      if (all && up >= primaries) return true;
      if (std::chrono::steady_clock::now() > end) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  ClusterStats Stats() {
    return OnStrand<ClusterStats>(
        [](ClusterClient& c) { return c.cluster_stats(); });
  }
  int readies() const { return readies_.load(); }

 private:
  boost::asio::io_context io_;
  ClusterClient::Strand strand_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type>
      work_;
  std::shared_ptr<ClusterClient> client_;
  std::atomic<int> readies_{0};
  std::thread thread_;
};

}  // namespace plangate::internal::redis::test

#endif  // PLANGATE_TESTS_REDIS_CLUSTER_HARNESS_H_
