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
#include <span>
#include <string>
#include <vector>

#include "net.h"

namespace gateway {

class UpstreamPool;

// One response being read from the upstream piece by piece (a stream). It
// holds its connection: destroyed after the whole response was read, the
// connection goes back to the pool (if keep-alive allows); destroyed
// before, the connection is closed, which is how a relay gives up on an
// upstream stream whose client went away.
class UpstreamExchange {
 public:
  ~UpstreamExchange();
  UpstreamExchange(const UpstreamExchange&) = delete;
  UpstreamExchange& operator=(const UpstreamExchange&) = delete;

  const http::response_header<>& header() const;
  // The whole body has been read.
  bool done() const;

  // Reads the next bytes of the body that arrive (at most buf.size()), and
  // returns how many. Each call may wait up to the pool's timeout for the
  // upstream: it bounds the silence between pieces, not the whole stream.
  // A closed connection or a torn chunk before the end sets `ec`.
  awaitable<size_t> ReadSome(std::span<char> buf, beast::error_code& ec);

  // Reads the rest of the body (at most `limit` bytes; more sets `ec`).
  awaitable<std::string> ReadAll(size_t limit, beast::error_code& ec);

 private:
  friend class UpstreamPool;
  struct State;
  explicit UpstreamExchange(UpstreamPool& pool);
  UpstreamPool& pool_;
  std::unique_ptr<State> state_;
};

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

  // Sends `request` and reads only the response header; the body is then
  // read through the exchange. nullptr with `ec` set when no response
  // header arrived.
  awaitable<std::unique_ptr<UpstreamExchange>> Open(const Request& request,
                                                    beast::error_code& ec);

  // Connections opened so far (a pool that works opens few). Any thread.
  uint64_t connections_opened() const {
    return opened_.load(std::memory_order_relaxed);
  }

 private:
  struct Connection;
  friend class UpstreamExchange;
  // A connection whose response was read to the end: kept if it may be.
  void Release(std::unique_ptr<Connection> conn, bool keep_alive);

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
