// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// tcp_proxy.h: a loopback TCP forwarder that a test points clients at, to
// cause the network faults a redis-server alone cannot: a failover to
// another server (Retarget: the clients' connections drop and new ones
// reach the new primary, as behind a managed endpoint), and a partition
// (Blackhole: connections stay open and accepted but nothing passes either
// way, so clients see timeouts, not refusals; Heal ends it and drops the
// stalled connections).
//
// One thread polls the listener and every connection pair. Bytes are
// forwarded as they come; in a blackhole nothing is read.
//
// Thread safety: Retarget, Blackhole, Heal and the accessors may be called
// from any thread.

#ifndef PLANGATE_TESTS_SUPPORT_TCP_PROXY_H_
#define PLANGATE_TESTS_SUPPORT_TCP_PROXY_H_

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace plangate::testing {

class TcpProxy {
 public:
  // Listens on a free 127.0.0.1 port and forwards to 127.0.0.1:target.
  static absl::StatusOr<std::unique_ptr<TcpProxy>> Start(int target_port);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const { return port_; }

  // New connections go to `target_port`; current ones are closed.
  void Retarget(int target_port);
  // Nothing passes until Heal(); connections are kept (and accepted).
  void Blackhole();
  // Closes every connection and forwards again.
  void Heal();

 private:
  TcpProxy() = default;
  void Run();
  void CloseAll();

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<int> target_{0};
  std::atomic<bool> blackhole_{false};
  std::atomic<bool> drop_{false};  // close every pair on the next turn
  std::atomic<bool> stop_{false};
  struct Pair {
    int client = -1;
    int server = -1;
  };
  std::vector<Pair> pairs_;  // the proxy thread's
  std::mutex drop_mu_;       // Retarget/Heal wait for the drop
  std::thread thread_;
};

}  // namespace plangate::testing

#endif  // PLANGATE_TESTS_SUPPORT_TCP_PROXY_H_
