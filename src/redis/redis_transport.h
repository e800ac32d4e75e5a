// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// redis_transport.h: the byte stream under one Redis connection: a TCP
// socket, a TLS stream over a TCP socket, or a unix stream socket, all on
// the Client's strand (their completion handlers run on it).
//
// Writes go through Asio, which sends with MSG_NOSIGNAL on Linux (TLS
// records too: ssl::stream writes through its TCP socket), so a peer that
// went away yields EPIPE, never SIGPIPE; the host need not ignore SIGPIPE.
//
// Thread safety: none; a Transport is used on its strand only.

#ifndef PLANGATE_REDIS_REDIS_TRANSPORT_H_
#define PLANGATE_REDIS_REDIS_TRANSPORT_H_

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <optional>
#include <utility>

namespace plangate::internal::redis {

class Transport {
 public:
  using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;
  using Tcp = boost::asio::ip::tcp::socket;
  using Tls = boost::asio::ssl::stream<Tcp>;
  using Unix = boost::asio::local::stream_protocol::socket;
  enum class Kind { kTcp, kTls, kUnix };

  // `tls_context` (kTls only) must outlive the Transport.
  Transport(Kind kind, const Strand& strand,
            boost::asio::ssl::context* tls_context)
      : kind_(kind) {
    switch (kind) {
      case Kind::kTcp:
        tcp_.emplace(strand);
        break;
      case Kind::kTls:
        tls_.emplace(strand, *tls_context);
        break;
      case Kind::kUnix:
        unix_.emplace(strand);
        break;
    }
  }

  Kind kind() const { return kind_; }
  // kTcp: the socket; kTls: the TCP socket under the TLS stream.
  Tcp& tcp() { return kind_ == Kind::kTls ? tls_->next_layer() : *tcp_; }
  Tls& tls() { return *tls_; }            // kTls only
  Unix& unix_socket() { return *unix_; }  // kUnix only

  // asio::async_write of the whole buffer; handler(error_code, size_t).
  template <typename Handler>
  void AsyncWrite(boost::asio::const_buffer buffer, Handler&& handler) {
    switch (kind_) {
      case Kind::kTcp:
        boost::asio::async_write(*tcp_, buffer, std::forward<Handler>(handler));
        break;
      case Kind::kTls:
        boost::asio::async_write(*tls_, buffer, std::forward<Handler>(handler));
        break;
      case Kind::kUnix:
        boost::asio::async_write(*unix_, buffer,
                                 std::forward<Handler>(handler));
        break;
    }
  }

  // async_read_some; handler(error_code, size_t).
  template <typename Handler>
  void AsyncReadSome(boost::asio::mutable_buffer buffer, Handler&& handler) {
    switch (kind_) {
      case Kind::kTcp:
        tcp_->async_read_some(buffer, std::forward<Handler>(handler));
        break;
      case Kind::kTls:
        tls_->async_read_some(buffer, std::forward<Handler>(handler));
        break;
      case Kind::kUnix:
        unix_->async_read_some(buffer, std::forward<Handler>(handler));
        break;
    }
  }

  // Closes the socket (no TLS close_notify: the connection is being given
  // up); pending operations complete with operation_aborted.
  void Close() {
    boost::system::error_code ignored;
    if (kind_ == Kind::kUnix) {
      unix_->close(ignored);
    } else {
      tcp().close(ignored);
    }
  }

 private:
  Kind kind_;
  std::optional<Tcp> tcp_;
  std::optional<Tls> tls_;
  std::optional<Unix> unix_;
};

}  // namespace plangate::internal::redis

#endif  // PLANGATE_REDIS_REDIS_TRANSPORT_H_
