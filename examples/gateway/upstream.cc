// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "upstream.h"

#include <array>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstdint>
#include <limits>
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
    Release(std::move(conn), result.response.keep_alive());
    co_return result;
  }
  co_return result;
}

void UpstreamPool::Release(std::unique_ptr<Connection> conn, bool keep_alive) {
  if (keep_alive && idle_.size() < max_idle_) {
    conn->stream.expires_never();
    idle_.push_back(std::move(conn));
  }
}

struct UpstreamExchange::State {
  std::unique_ptr<UpstreamPool::Connection> conn;
  http::response_parser<http::buffer_body> parser;
};

UpstreamExchange::UpstreamExchange(UpstreamPool& pool)
    : pool_(pool), state_(std::make_unique<State>()) {}

UpstreamExchange::~UpstreamExchange() {
  if (state_->conn == nullptr) return;
  if (state_->parser.is_done()) {
    pool_.Release(std::move(state_->conn), state_->parser.keep_alive());
  } else {
    beast::error_code ec;
    state_->conn->stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    state_->conn->stream.close();
  }
}

const http::response_header<>& UpstreamExchange::header() const {
  return state_->parser.get().base();
}

bool UpstreamExchange::done() const { return state_->parser.is_done(); }

awaitable<size_t> UpstreamExchange::ReadSome(std::span<char> buf,
                                             beast::error_code& ec) {
  ec = {};
  if (state_->parser.is_done() || buf.empty()) co_return 0;
  auto& body = state_->parser.get().body();
  body.data = buf.data();
  body.size = buf.size();
  UpstreamPool::Connection& conn = *state_->conn;
  conn.stream.expires_after(pool_.timeout_);
  co_await http::async_read_some(conn.stream, conn.buffer, state_->parser,
                                 Await(ec));
  // need_buffer: `buf` is full, which is no error here.
  if (ec == http::error::need_buffer) ec = {};
  const size_t n = buf.size() - body.size;
  body.data = nullptr;
  body.size = 0;
  co_return n;
}

awaitable<std::string> UpstreamExchange::ReadAll(size_t limit,
                                                 beast::error_code& ec) {
  std::string out;
  std::array<char, 16 << 10> buf;
  while (!done()) {
    const size_t n = co_await ReadSome(buf, ec);
    if (ec) break;
    if (out.size() + n > limit) {
      ec = http::error::body_limit;
      break;
    }
    out.append(buf.data(), n);
  }
  co_return out;
}

awaitable<std::unique_ptr<UpstreamExchange>> UpstreamPool::Open(
    const Request& request, beast::error_code& ec) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<UpstreamExchange> ex(new UpstreamExchange(*this));
    std::unique_ptr<Connection>& conn = ex->state_->conn;
    const bool reused = !idle_.empty();
    if (reused) {
      conn = std::move(idle_.back());
      idle_.pop_back();
    } else {
      conn = co_await Connect(ec);
      if (ec) co_return nullptr;
    }
    conn->stream.expires_after(timeout_);
    co_await http::async_write(conn->stream, request, Await(ec));
    if (ec) {
      if (reused && ClosedWhileIdle(ec)) continue;
      co_return nullptr;
    }
    // No parser limit: a stream may be long, ReadAll bounds its own. (Not
    // boost::none: Boost 1.74 compares a Content-Length against it as if
    // it were 0.)
    ex->state_->parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    co_await http::async_read_header(conn->stream, conn->buffer,
                                     ex->state_->parser, Await(ec));
    if (ec) {
      if (reused && !ex->state_->parser.got_some() && ClosedWhileIdle(ec)) {
        continue;
      }
      co_return nullptr;
    }
    co_return ex;
  }
  co_return nullptr;
}

}  // namespace gateway
