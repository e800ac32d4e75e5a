// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// redis_connect.cc: the socket side of Client::Impl (redis_client_impl.h):
// resolve, connect (every resolved address in turn), the TLS handshake
// (tls_context.h), the Redis handshake (AUTH, SELECT, init commands), the
// write queue and the read loop feeding the RESP parser.

#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/error.hpp>

#include "redis/redis_client_impl.h"
#include "redis/tls_context.h"

namespace plangate::internal::redis {

// RESP2: *<argc>\r\n then $<len>\r\n<arg>\r\n per argument.
void Client::Impl::Encode(const Command& command, std::string* out) {
  absl::StrAppend(out, "*", command.size(), "\r\n");
  for (const std::string& arg : command) {
    absl::StrAppend(out, "$", arg.size(), "\r\n");
    out->append(arg);
    out->append("\r\n");
  }
}

void Client::Impl::ResolvePrimary() {
  state_ = State::kConnecting;
  if (!sentinel_) sentinel_ = SentinelResolver::Create(strand_, options_);
  const uint64_t gen = ++resolve_gen_;
  sentinel_->Resolve([this, self = Self(),
                      gen](absl::StatusOr<SentinelResolver::Primary> primary) {
    if (gen != resolve_gen_ || state_ != State::kConnecting) return;
    if (!primary.ok()) {
      AttemptFailed(primary.status());
      return;
    }
    options_.host = primary->host;
    options_.port = primary->port;
    endpoint_ =
        absl::StrCat(primary->host.find(':') != std::string::npos
                         ? absl::StrCat("[", primary->host, "]:", primary->port)
                         : absl::StrCat(primary->host, ":", primary->port),
                     ", master ", options_.sentinel_master, " per sentinel ",
                     primary->sentinel);
    stats_.node = endpoint_;
    resolved_ = true;
    answered_ = primary->index;
    Connect();
  });
}

absl::Status Client::Impl::CheckRole(const Reply& reply) const {
  if (reply.type == Reply::Type::kArray && !reply.elements.empty() &&
      reply.elements[0].str == "master") {
    return absl::OkStatus();
  }
  const std::string role =
      reply.type == Reply::Type::kArray && !reply.elements.empty()
          ? reply.elements[0].str
          : "a malformed ROLE reply";
  return absl::FailedPreconditionError(absl::StrCat(
      "redis ROLE: the node the sentinels named is ", role.substr(0, 32),
      ", not a master (a failover in progress?); the sentinels will be "
      "asked again",
      At()));
}

void Client::Impl::Connect() {
  const bool sentinel = !options_.sentinels.empty();
  if (sentinel && options_.cluster) {
    state_ = State::kConnecting;
    AttemptFailed(absl::InvalidArgumentError(
        "redis options: Sentinel and Cluster cannot be combined"));
    return;
  }
  if (sentinel && !resolved_) {
    ResolvePrimary();
    return;
  }
  resolved_ = false;  // the next attempt asks the sentinels again
  state_ = State::kConnecting;
  handshake_.clear();
  handshake_next_ = 0;
  std::vector<Command> commands;
  if (!options_.password.empty()) {
    if (options_.user.empty()) {
      commands.push_back({"AUTH", options_.password});
    } else {
      commands.push_back({"AUTH", options_.user, options_.password});
    }
    handshake_.push_back({"AUTH", absl::StatusCode::kUnauthenticated});
  }
  if (options_.db != 0) {
    commands.push_back({"SELECT", std::to_string(options_.db)});
    handshake_.push_back({absl::StrCat("SELECT ", options_.db),
                          absl::StatusCode::kFailedPrecondition});
  }
  if (sentinel) {
    commands.push_back({"ROLE"});
    handshake_.push_back({"ROLE", absl::StatusCode::kFailedPrecondition,
                          /*expect_master=*/true});
  }
  for (size_t i = 0; i < init_commands_.size(); ++i) {
    if (init_commands_[i].empty()) continue;
    const bool subscribe =
        on_push_ && absl::EqualsIgnoreCase(init_commands_[i][0], "SUBSCRIBE");
    absl::Status s =
        subscribe ? absl::OkStatus() : CheckCommand(init_commands_[i]);
    if (!s.ok()) {
      AttemptFailed(absl::InvalidArgumentError(
          absl::StrCat("redis init command #", i + 1, " ", s.message())));
      return;
    }
    commands.push_back(init_commands_[i]);
    handshake_.push_back(
        {absl::StrCat("init command #", i + 1, " (", init_commands_[i][0], ")"),
         absl::StatusCode::kFailedPrecondition});
  }
  if (commands.empty()) {  // still make sure the server answers
    commands.push_back({"PING"});
    handshake_.push_back({"PING", absl::StatusCode::kUnavailable});
  }

  Transport::Kind kind = Transport::Kind::kTcp;
  if (!options_.unix_socket.empty() && !sentinel) {
    if (options_.tls) {
      AttemptFailed(absl::InvalidArgumentError(
          absl::StrCat("redis TLS over a unix socket is not supported", At())));
      return;
    }
    kind = Transport::Kind::kUnix;
  } else if (options_.tls) {
    kind = Transport::Kind::kTls;
    if (!tls_context_) {
      absl::StatusOr<std::shared_ptr<asio::ssl::context>> ctx =
          MakeTlsContext(options_);
      if (!ctx.ok()) {
        AttemptFailed(absl::Status(ctx.status().code(),
                                   absl::StrCat(ctx.status().message(), At())));
        return;
      }
      tls_context_ = *std::move(ctx);
    }
  }
  auto conn = std::make_shared<Conn>(kind, strand_, tls_context_.get());
  for (const Command& command : commands) Encode(command, &conn->out);
  conn_ = conn;
  ArmConnectTimer();

  if (kind == Transport::Kind::kUnix) {
    conn->phase = Phase::kConnect;
    conn->transport.unix_socket().async_connect(
        asio::local::stream_protocol::endpoint(options_.unix_socket),
        [this, self = Self(), conn](const boost::system::error_code& ec) {
          if (conn != conn_) return;
          if (ec) {
            AttemptFailed(absl::UnavailableError(
                absl::StrCat("redis connect failed: ", ec.message(), At())));
            return;
          }
          TransportUp(conn);
        });
    return;
  }
  conn->resolver.async_resolve(
      options_.host, std::to_string(options_.port),
      [this, self = Self(), conn](
          const boost::system::error_code& ec,
          const asio::ip::tcp::resolver::results_type& results) {
        if (conn != conn_) return;
        if (ec) {
          AttemptFailed(absl::UnavailableError(
              absl::StrCat("redis connect failed: cannot resolve \"",
                           options_.host, "\": ", ec.message(), At())));
          return;
        }
        conn->phase = Phase::kConnect;
        asio::async_connect(
            conn->transport.tcp(), results,
            [this, self, conn](const boost::system::error_code& error,
                               const asio::ip::tcp::endpoint&) {
              if (conn != conn_) return;
              if (error) {
                AttemptFailed(absl::UnavailableError(absl::StrCat(
                    "redis connect failed: ", error.message(), At())));
                return;
              }
              boost::system::error_code ignored;
              conn->transport.tcp().set_option(asio::ip::tcp::no_delay(true),
                                               ignored);
              if (conn->transport.kind() == Transport::Kind::kTls) {
                StartTls(conn);
              } else {
                TransportUp(conn);
              }
            });
      });
}

void Client::Impl::StartTls(const std::shared_ptr<Conn>& conn) {
  conn->phase = Phase::kTls;
  absl::Status s = PrepareTlsStream(options_, conn->transport.tls());
  if (!s.ok()) {
    ++stats_.tls_failures;
    AttemptFailed(absl::Status(s.code(), absl::StrCat(s.message(), At())));
    return;
  }
  conn->transport.tls().async_handshake(
      asio::ssl::stream_base::client,
      [this, self = Self(), conn](const boost::system::error_code& ec) {
        if (conn != conn_) return;
        if (ec) {
          ++stats_.tls_failures;
          AttemptFailed(TlsHandshakeError(conn->transport.tls(), ec, At()));
          return;
        }
        TransportUp(conn);
      });
}

// Connected (and TLS established): send the handshake, start reading.
void Client::Impl::TransportUp(const std::shared_ptr<Conn>& conn) {
  conn->phase = Phase::kHandshake;
  Read(conn);
  Flush(conn);
}

void Client::Impl::Flush(const std::shared_ptr<Conn>& conn) {
  if (conn->write_active || conn->out.empty() ||
      conn->phase != Phase::kHandshake) {
    return;
  }
  conn->writing.clear();
  conn->writing.swap(conn->out);
  conn->write_active = true;
  conn->transport.AsyncWrite(
      asio::buffer(conn->writing),
      [this, self = Self(), conn](const boost::system::error_code& ec,
                                  size_t /*bytes*/) {
        conn->write_active = false;
        if (conn != conn_) return;
        if (ec) {
          ConnGone(IoErrorText(ec));
          return;
        }
        Flush(conn);
      });
}

void Client::Impl::Read(const std::shared_ptr<Conn>& conn) {
  conn->transport.AsyncReadSome(
      asio::buffer(conn->read_buf),
      [this, self = Self(), conn](const boost::system::error_code& ec,
                                  size_t bytes) {
        if (conn != conn_) return;
        if (ec) {
          ConnGone(IoErrorText(ec));
          return;
        }
        conn->parser.Feed(std::string_view(conn->read_buf.data(), bytes));
        for (;;) {
          Reply reply;
          absl::StatusOr<bool> got = conn->parser.Next(&reply);
          if (!got.ok()) {
            ++stats_.protocol_errors;
            ConnFailed(absl::UnavailableError(absl::StrCat(
                "redis sent a malformed reply: ", got.status().message(),
                "; connection dropped", At())));
            return;
          }
          if (!*got) break;
          OnReply(std::move(reply));
          if (conn != conn_) return;  // the reply ended the connection
        }
        Read(conn);
      });
}

std::string Client::Impl::IoErrorText(const boost::system::error_code& ec) {
  if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
    return "Server closed the connection";
  }
  return ec.message();
}

// The current connection failed with an I/O error or EOF (`why`).
void Client::Impl::ConnGone(const std::string& why) {
  ++stats_.io_errors;
  if (state_ == State::kConnecting) {
    ConnFailed(absl::UnavailableError(absl::StrCat(
        "redis connection closed during the handshake: ", why, At())));
  } else {
    ConnFailed(absl::UnavailableError(
        absl::StrCat("redis connection lost: ", why, At())));
  }
}

}  // namespace plangate::internal::redis
