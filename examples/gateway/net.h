// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// net.h: the Boost.Asio and Boost.Beast names the gateway uses.
//
// Every file of the gateway that does I/O includes this header instead of
// Boost's directly. All I/O is written as C++20 coroutines
// (asio::awaitable); errors come back through asio::redirect_error, never as
// exceptions, on the request path. The build defines
// BOOST_BEAST_USE_STD_STRING_VIEW, so Beast speaks std::string_view.

#ifndef PLANGATE_EXAMPLES_GATEWAY_NET_H_
#define PLANGATE_EXAMPLES_GATEWAY_NET_H_

// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>,
// so <utility> goes first.
// clang-format off
#include <utility>
// clang-format on

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
template <typename T>
using awaitable = asio::awaitable<T>;

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// The completion token of every awaited operation: errors land in `ec`.
inline auto Await(beast::error_code& ec) {
  return asio::redirect_error(asio::use_awaitable, ec);
}

}  // namespace gateway

#endif  // PLANGATE_EXAMPLES_GATEWAY_NET_H_
