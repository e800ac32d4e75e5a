// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "upstream.h"

#include <boost/beast/core/error.hpp>
#include <utility>

namespace gateway {
namespace {

constexpr size_t kMaxResponseBody = 64 << 20;  // 64 MiB

// The failures that mean "the upstream closed this kept-alive connection
// before reading our request".
bool ClosedWhileIdle(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
}

}  // namespace

struct UpstreamPool::Connection {
  explicit Connection(asio::any_io_executor ex) : stream(std::move(ex)) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;  // bytes read past a response stay here
};

UpstreamPool::UpstreamPool(asio::any_io_executor executor,
                           std::vector<tcp::endpoint> endpoints,
                           std::chrono::milliseconds timeout, size_t max_idle)
    : executor_(std::move(executor)),
      endpoints_(std::move(endpoints)),
      timeout_(timeout),
      max_idle_(max_idle) {}

UpstreamPool::~UpstreamPool() = default;

awaitable<std::unique_ptr<UpstreamPool::Connection>> UpstreamPool::Connect(
    beast::error_code& ec) {
  auto conn = std::make_unique<Connection>(executor_);
  conn->stream.expires_after(timeout_);
  co_await conn->stream.async_connect(endpoints_, Await(ec));
  if (ec) co_return nullptr;
  opened_.store(opened_.load(std::memory_order_relaxed) + 1,
                std::memory_order_relaxed);
  conn->stream.socket().set_option(tcp::no_delay(true), ec);
  ec = {};
  co_return conn;
}

awaitable<UpstreamResult> UpstreamPool::RoundTrip(const Request& request) {
  UpstreamResult result;
  beast::error_code& ec = result.ec;
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<Connection> conn;
    const bool reused = !idle_.empty();
    if (reused) {
      conn = std::move(idle_.back());
      idle_.pop_back();
    } else {
      conn = co_await Connect(ec);
      if (ec) co_return result;
    }
    conn->stream.expires_after(timeout_);
    co_await http::async_write(conn->stream, request, Await(ec));
    if (ec) {
      if (reused && ClosedWhileIdle(ec)) continue;
      co_return result;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxResponseBody);
    co_await http::async_read(conn->stream, conn->buffer, parser, Await(ec));
    if (ec) {
      if (reused && !parser.got_some() && ClosedWhileIdle(ec)) continue;
      co_return result;
    }
    result.response = parser.release();
    if (result.response.keep_alive() && idle_.size() < max_idle_) {
      conn->stream.expires_never();
      idle_.push_back(std::move(conn));
    }
    co_return result;
  }
  co_return result;
}

}  // namespace gateway
