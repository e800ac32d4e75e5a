// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// upstream.h: HTTP/1.1 round trips to the upstream over kept-alive
// connections.
//
// Each gateway worker thread owns one UpstreamPool: connections are taken
// from and returned to it on that thread only, so it needs no lock. A
// connection goes back to the pool after a complete response that allows
// keep-alive; at most `max_idle` wait there.
//
// A request sent on a reused connection that the upstream had already closed
// (the keep-alive race: the write succeeds, the read sees EOF or a reset
// before any byte of a response) is sent once more on a new connection, as
// browsers and most proxies do. Any other failure is reported, never
// retried, since a chat completion is not idempotent.
//
// Thread safety: confined to the thread running its executor.

#ifndef PLANGATE_EXAMPLES_GATEWAY_UPSTREAM_H_
#define PLANGATE_EXAMPLES_GATEWAY_UPSTREAM_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "net.h"

namespace gateway {

struct UpstreamResult {
  // Connect, I/O or timeout error; `response` is meaningful only without.
  beast::error_code ec;
  Response response;
};

class UpstreamPool {
 public:
  // `endpoints`: the upstream's resolved addresses, tried in order.
  UpstreamPool(asio::any_io_executor executor,
               std::vector<tcp::endpoint> endpoints,
               std::chrono::milliseconds timeout, size_t max_idle = 64);
  ~UpstreamPool();

  // Sends `request` (which must be complete: target, Host, Content-Length)
  // and reads the whole response, within the timeout.
  awaitable<UpstreamResult> RoundTrip(const Request& request);

  // Connections opened so far (a pool that works opens few). Any thread.
  uint64_t connections_opened() const {
    return opened_.load(std::memory_order_relaxed);
  }

 private:
  struct Connection;

  awaitable<std::unique_ptr<Connection>> Connect(beast::error_code& ec);

  asio::any_io_executor executor_;
  std::vector<tcp::endpoint> endpoints_;
  std::chrono::milliseconds timeout_;
  size_t max_idle_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::atomic<uint64_t> opened_{0};  // written on the pool's thread only
};

}  // namespace gateway

#endif  // PLANGATE_EXAMPLES_GATEWAY_UPSTREAM_H_
