// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// redis_client.cc: Client on Boost.Asio sockets it owns (TCP, TLS, unix)
// and our RESP2 parser (resp_parser.h).
//
// Design.
//
//  - One Conn per connection attempt: its Transport (redis_transport.h), the
//    resolver, the parser, the read buffer and the write queue. Every
//    completion handler holds the Client and the Conn; a handler whose Conn
//    is no longer the current one (conn_) does nothing. Giving up on a
//    connection closes its socket, which aborts its pending operations.
//  - Connecting: resolve (async; every resolved address is tried in turn by
//    asio::async_connect), connect, TLS handshake (tls_context.h), then the
//    Redis handshake (AUTH, SELECT, init commands, or a PING when there is
//    none) is written and its replies checked, in order. One steady_timer
//    guards the whole attempt (connect_timeout).
//  - Writes: commands are encoded into `out`; one async_write at a time
//    sends all that is queued (a pipeline), the next starts when it is done.
//  - Reads: one async_read_some at a time feeds the parser; every complete
//    reply goes to the handshake, then to the oldest in-flight batch (FIFO).
//    One timer guards the oldest in-flight batch (all batches have the same
//    timeout, so it expires first); when it fires early it is re-armed for
//    the new front.
//  - User callbacks (done, on_ready, on_down) are always posted, never run
//    inside the call that caused them.

#include "redis/redis_client.h"

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "redis/redis_transport.h"
#include "redis/resp_parser.h"
#include "redis/tls_context.h"

namespace plangate::internal::redis {
namespace {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

// Commands that turn the connection into a push channel break the
// one-reply-per-command order.
absl::Status CheckCommand(const Command& command) {
  if (command.empty()) return absl::InvalidArgumentError("has no arguments");
  for (const char* name :
       {"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "MONITOR"}) {
    if (absl::EqualsIgnoreCase(command[0], name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("(", command[0],
                       ") is not supported: it makes the connection a push "
                       "channel"));
    }
  }
  return absl::OkStatus();
}

std::chrono::milliseconds AtLeast1ms(std::chrono::milliseconds d) {
  return std::max(d, std::chrono::milliseconds(1));
}

std::string Ms(std::chrono::milliseconds d) {
  return absl::StrCat(d.count(), "ms");
}

}  // namespace

std::chrono::milliseconds ReconnectBackoffCap(const RedisOptions& options,
                                              int failures) {
  const int64_t initial = AtLeast1ms(options.reconnect_initial).count();
  const int64_t max = std::max(initial, options.reconnect_max.count());
  int64_t cap = initial;
  for (int i = 0; i < failures && cap < max; ++i) {
    cap = cap > max / 2 ? max : cap * 2;
  }
  return std::chrono::milliseconds(std::min(cap, max));
}

class Client::Impl {
 public:
  enum class State { kIdle, kConnecting, kReady, kBackoff, kStopped };

  // How far a connection attempt got, for messages.
  enum class Phase { kResolve, kConnect, kTls, kHandshake };

  // One connection (attempt).
  struct Conn {
    Conn(Transport::Kind kind, const Strand& strand, asio::ssl::context* tls)
        : transport(kind, strand, tls), resolver(strand) {}
    Transport transport;
    asio::ip::tcp::resolver resolver;
    Phase phase = Phase::kResolve;
    RespParser parser;
    std::vector<char> read_buf = std::vector<char>(16384);
    std::string out;      // encoded commands not written yet
    std::string writing;  // the buffer of the async_write in flight
    bool write_active = false;
  };

  struct Batch {
    size_t expected = 0;
    std::vector<Reply> replies;
    BatchCallback done;
    SteadyClock::time_point deadline;
  };

  // One command of the connection handshake, for error messages.
  struct Step {
    std::string label;  // "AUTH", "SELECT 3", "init command #2 (SET)"
    absl::StatusCode code;
  };

  Impl(Client& client, Strand strand, RedisOptions options)
      : client_(client),
        strand_(std::move(strand)),
        options_(std::move(options)),
        connect_timer_(strand_),
        batch_timer_(strand_),
        reconnect_timer_(strand_) {
    options_.connect_timeout = AtLeast1ms(options_.connect_timeout);
    options_.command_timeout = AtLeast1ms(options_.command_timeout);
    endpoint_ = !options_.unix_socket.empty()
                    ? absl::StrCat("unix:", options_.unix_socket)
                : options_.host.find(':') != std::string::npos
                    ? absl::StrCat("[", options_.host, "]:", options_.port)
                    : absl::StrCat(options_.host, ":", options_.port);
    uint64_t seed =
        static_cast<uint64_t>(SteadyClock::now().time_since_epoch().count());
    try {
      std::random_device rd;
      seed ^= (uint64_t{rd()} << 32) | rd();
    } catch (...) {  // no entropy source: the clock seed will do for jitter
    }
    rng_.seed(seed);
  }

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // --- The public API (on the strand). ---

  void Start() {
    if (state_ != State::kIdle) return;
    Connect();
  }

  void Stop() {
    if (state_ == State::kStopped) return;
    state_ = State::kStopped;
    CancelReconnectTimer();
    TearDownConn();
    FailInflight(absl::CancelledError("redis client stopped"));
  }

  // From ~Client: like Stop, but calls `done` directly (nothing can be
  // posted on behalf of an object being destroyed).
  void Shutdown() {
    destroying_ = true;
    Stop();
  }

  void Execute(std::vector<Command> commands, BatchCallback done) {
    if (state_ == State::kStopped) {
      ++stats_.failed_batches;
      Deliver(std::move(done), absl::CancelledError("redis client stopped"));
      return;
    }
    for (size_t i = 0; i < commands.size(); ++i) {
      absl::Status s = CheckCommand(commands[i]);
      if (!s.ok()) {
        ++stats_.failed_batches;
        Deliver(std::move(done),
                absl::InvalidArgumentError(absl::StrCat(
                    "redis batch: command #", i + 1, " ", s.message())));
        return;
      }
    }
    if (state_ != State::kReady) {
      ++stats_.failed_batches;
      Deliver(std::move(done), absl::UnavailableError(NotReadyMessage()));
      return;
    }
    if (commands.empty()) {
      ++stats_.batches;
      Deliver(std::move(done), std::vector<Reply>{});
      return;
    }
    Batch batch;
    batch.expected = commands.size();
    batch.replies.reserve(commands.size());
    batch.done = std::move(done);
    batch.deadline = SteadyClock::now() + options_.command_timeout;
    inflight_.push_back(std::move(batch));
    for (const Command& command : commands) Encode(command, &conn_->out);
    Flush(conn_);
    if (!batch_armed_) ArmBatchTimer(inflight_.front().deadline);
  }

  void DropConnection() {
    const absl::Status why = absl::UnavailableError(
        absl::StrCat("redis connection dropped on request", At()));
    if (state_ == State::kReady) {
      ConnectionLost(why, why);
    } else if (state_ == State::kConnecting) {
      AttemptFailed(why);
    }
  }

  bool ready() const { return state_ == State::kReady; }

  // --- Members the public setters reach. ---

  Client& client_;
  Strand strand_;
  RedisOptions options_;
  std::vector<Command> init_commands_;
  std::function<void()> on_ready_;
  std::function<void(const absl::Status&)> on_down_;
  ClientStats stats_;

 private:
  std::shared_ptr<Client> Self() { return client_.weak_from_this().lock(); }

  std::string At() const { return absl::StrCat(" (at ", endpoint_, ")"); }

  std::string NotReadyMessage() const {
    std::string msg = absl::StrCat("redis not connected", At());
    if (!last_error_.ok()) {
      absl::StrAppend(&msg, "; last error: ", last_error_.message());
    }
    return msg;
  }

  // RESP2: *<argc>\r\n then $<len>\r\n<arg>\r\n per argument.
  static void Encode(const Command& command, std::string* out) {
    absl::StrAppend(out, "*", command.size(), "\r\n");
    for (const std::string& arg : command) {
      absl::StrAppend(out, "$", arg.size(), "\r\n");
      out->append(arg);
      out->append("\r\n");
    }
  }

  // --- Connection life cycle. ---

  void Connect() {
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
    for (size_t i = 0; i < init_commands_.size(); ++i) {
      if (init_commands_[i].empty()) continue;
      absl::Status s = CheckCommand(init_commands_[i]);
      if (!s.ok()) {
        AttemptFailed(absl::InvalidArgumentError(
            absl::StrCat("redis init command #", i + 1, " ", s.message())));
        return;
      }
      commands.push_back(init_commands_[i]);
      handshake_.push_back({absl::StrCat("init command #", i + 1, " (",
                                         init_commands_[i][0], ")"),
                            absl::StatusCode::kFailedPrecondition});
    }
    if (commands.empty()) {  // still make sure the server answers
      commands.push_back({"PING"});
      handshake_.push_back({"PING", absl::StatusCode::kUnavailable});
    }

    Transport::Kind kind = Transport::Kind::kTcp;
    if (!options_.unix_socket.empty()) {
      if (options_.tls) {
        AttemptFailed(absl::InvalidArgumentError(absl::StrCat(
            "redis TLS over a unix socket is not supported", At())));
        return;
      }
      kind = Transport::Kind::kUnix;
    } else if (options_.tls) {
      kind = Transport::Kind::kTls;
      if (!tls_context_) {
        absl::StatusOr<std::shared_ptr<asio::ssl::context>> ctx =
            MakeTlsContext(options_);
        if (!ctx.ok()) {
          AttemptFailed(absl::Status(
              ctx.status().code(), absl::StrCat(ctx.status().message(), At())));
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

  void StartTls(const std::shared_ptr<Conn>& conn) {
    conn->phase = Phase::kTls;
    absl::Status s = PrepareTlsStream(options_, conn->transport.tls());
    if (!s.ok()) {
      AttemptFailed(absl::Status(s.code(), absl::StrCat(s.message(), At())));
      return;
    }
    conn->transport.tls().async_handshake(
        asio::ssl::stream_base::client,
        [this, self = Self(), conn](const boost::system::error_code& ec) {
          if (conn != conn_) return;
          if (ec) {
            AttemptFailed(TlsHandshakeError(conn->transport.tls(), ec, At()));
            return;
          }
          TransportUp(conn);
        });
  }

  // Connected (and TLS established): send the handshake, start reading.
  void TransportUp(const std::shared_ptr<Conn>& conn) {
    conn->phase = Phase::kHandshake;
    Read(conn);
    Flush(conn);
  }

  void Flush(const std::shared_ptr<Conn>& conn) {
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

  void Read(const std::shared_ptr<Conn>& conn) {
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

  static std::string IoErrorText(const boost::system::error_code& ec) {
    if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
      return "Server closed the connection";
    }
    return ec.message();
  }

  // One complete reply on the current connection.
  void OnReply(Reply reply) {
    if (state_ == State::kConnecting) {
      if (handshake_next_ >= handshake_.size()) {
        ConnFailed(absl::InternalError(absl::StrCat(
            "redis sent a reply nobody asked for during the handshake", At())));
        return;
      }
      const Step& step = handshake_[handshake_next_++];
      if (reply.is_error()) {
        AttemptFailed(absl::Status(
            step.code,
            absl::StrCat("redis ", step.label, " failed: ", reply.str, At())));
        return;
      }
      if (handshake_next_ == handshake_.size()) BecomeReady();
      return;
    }
    if (state_ != State::kReady || inflight_.empty()) {
      ConnFailed(absl::InternalError(
          absl::StrCat("redis sent a reply nobody asked for", At())));
      return;
    }
    Batch& batch = inflight_.front();
    batch.replies.push_back(std::move(reply));
    if (batch.replies.size() < batch.expected) return;
    ++stats_.batches;
    stats_.commands += batch.expected;
    Batch done = std::move(batch);
    inflight_.pop_front();
    if (inflight_.empty()) {
      CancelBatchTimer();
    }
    Deliver(std::move(done.done), std::move(done.replies));
  }

  // The current connection failed with an I/O error or EOF (`why`).
  void ConnGone(const std::string& why) {
    if (state_ == State::kConnecting) {
      ConnFailed(absl::UnavailableError(absl::StrCat(
          "redis connection closed during the handshake: ", why, At())));
    } else {
      ConnFailed(absl::UnavailableError(
          absl::StrCat("redis connection lost: ", why, At())));
    }
  }

  void ConnFailed(const absl::Status& why) {
    if (state_ == State::kConnecting) {
      AttemptFailed(why);
    } else if (state_ == State::kReady) {
      ConnectionLost(why, why);
    } else {
      TearDownConn();
    }
  }

  void BecomeReady() {
    CancelConnectTimer();
    state_ = State::kReady;
    ++stats_.connects;
    failures_ = 0;
    last_error_ = absl::OkStatus();
    if (!on_ready_) return;
    asio::post(strand_, [this, self = Self()] {
      if (state_ != State::kStopped && on_ready_) on_ready_();
    });
  }

  void AttemptFailed(const absl::Status& why) {
    ++stats_.connect_failures;
    last_error_ = why;
    TearDownConn();
    NotifyDown(why);
    ScheduleReconnect();
  }

  // A ready connection is gone: in-flight batches fail with `batches_why`,
  // on_down gets `why`.
  void ConnectionLost(const absl::Status& why,
                      const absl::Status& batches_why) {
    ++stats_.disconnects;
    last_error_ = why;
    TearDownConn();
    FailInflight(batches_why);
    NotifyDown(why);
    ScheduleReconnect();
  }

  void NotifyDown(const absl::Status& why) {
    if (!on_down_ || destroying_) return;
    asio::post(strand_, [this, self = Self(), why] {
      if (state_ != State::kStopped && on_down_) on_down_(why);
    });
  }

  // Forgets the current connection and closes its socket (its pending
  // operations complete with operation_aborted and do nothing).
  void TearDownConn() {
    CancelConnectTimer();
    CancelBatchTimer();
    handshake_.clear();
    handshake_next_ = 0;
    std::shared_ptr<Conn> conn = std::move(conn_);
    conn_.reset();
    if (!conn) return;
    conn->resolver.cancel();
    conn->transport.Close();
  }

  void ScheduleReconnect() {
    if (state_ == State::kStopped || destroying_) return;
    state_ = State::kBackoff;
    const int64_t cap = ReconnectBackoffCap(options_, failures_).count();
    if (failures_ < 62) ++failures_;
    const auto delay = std::chrono::milliseconds(
        std::uniform_int_distribution<int64_t>(0, cap)(rng_));
    reconnect_timer_.expires_after(delay);
    const uint64_t gen = ++reconnect_gen_;
    reconnect_timer_.async_wait(
        [this, self = Self(), gen](const boost::system::error_code& ec) {
          if (ec || gen != reconnect_gen_ || state_ != State::kBackoff) return;
          Connect();
        });
  }

  void FailInflight(const absl::Status& why) {
    std::deque<Batch> batches = std::move(inflight_);
    inflight_.clear();
    for (Batch& batch : batches) {
      ++stats_.failed_batches;
      Deliver(std::move(batch.done), why);
    }
  }

  void Deliver(BatchCallback done, absl::StatusOr<std::vector<Reply>> result) {
    if (!done) return;
    if (destroying_) {
      done(std::move(result));
      return;
    }
    asio::post(strand_, [self = Self(), done = std::move(done),
                         result = std::move(result)]() mutable {
      done(std::move(result));
    });
  }

  // --- Timers. A generation number tells a current expiry from a stale
  // one (a cancelled wait may still complete without an error). ---

  void ArmConnectTimer() {
    connect_timer_.expires_after(options_.connect_timeout);
    const uint64_t gen = ++connect_gen_;
    connect_timer_.async_wait(
        [this, self = Self(), gen](const boost::system::error_code& ec) {
          if (ec || gen != connect_gen_ || state_ != State::kConnecting) {
            return;
          }
          const Phase phase = conn_ ? conn_->phase : Phase::kConnect;
          AttemptFailed(absl::DeadlineExceededError(absl::StrCat(
              "redis connect timed out after ", Ms(options_.connect_timeout),
              phase == Phase::kResolve   ? " (name resolution not completed)"
              : phase == Phase::kConnect ? " (TCP connect not completed)"
              : phase == Phase::kTls     ? " (connected, but the TLS "
                                           "handshake was not completed)"
                                         : " (connected, but the handshake "
                                           "got no reply)",
              At())));
        });
  }

  void CancelConnectTimer() {
    ++connect_gen_;
    connect_timer_.cancel();
  }

  void ArmBatchTimer(SteadyClock::time_point deadline) {
    batch_timer_.expires_at(deadline);
    const uint64_t gen = ++batch_gen_;
    batch_armed_ = true;
    batch_timer_.async_wait(
        [this, self = Self(), gen](const boost::system::error_code& ec) {
          if (ec || gen != batch_gen_) return;
          batch_armed_ = false;
          OnBatchTimer();
        });
  }

  void CancelBatchTimer() {
    ++batch_gen_;
    batch_armed_ = false;
    batch_timer_.cancel();
  }

  void OnBatchTimer() {
    if (state_ != State::kReady || inflight_.empty()) return;
    if (inflight_.front().deadline > SteadyClock::now()) {
      ArmBatchTimer(inflight_.front().deadline);
      return;
    }
    Batch batch = std::move(inflight_.front());
    inflight_.pop_front();
    ++stats_.timeouts;
    const absl::Status why = absl::DeadlineExceededError(absl::StrCat(
        "redis batch of ", batch.expected, " command",
        batch.expected == 1 ? "" : "s", " got no reply within ",
        Ms(options_.command_timeout), "; connection dropped", At()));
    Deliver(std::move(batch.done), why);
    ConnectionLost(
        why,
        absl::UnavailableError(absl::StrCat(
            "redis connection dropped: an earlier batch timed out", At())));
  }

  void CancelReconnectTimer() {
    ++reconnect_gen_;
    reconnect_timer_.cancel();
  }

  std::string endpoint_;  // "host:port" or "unix:/path", for messages
  State state_ = State::kIdle;
  bool destroying_ = false;
  std::shared_ptr<asio::ssl::context> tls_context_;  // made on first use
  std::shared_ptr<Conn> conn_;
  std::vector<Step> handshake_;
  size_t handshake_next_ = 0;
  std::deque<Batch> inflight_;
  absl::Status last_error_;
  int failures_ = 0;  // consecutive failed attempts (backoff exponent)
  std::mt19937_64 rng_;
  asio::steady_timer connect_timer_;
  asio::steady_timer batch_timer_;
  asio::steady_timer reconnect_timer_;
  uint64_t connect_gen_ = 0;
  uint64_t batch_gen_ = 0;
  uint64_t reconnect_gen_ = 0;
  bool batch_armed_ = false;
};

std::shared_ptr<Client> Client::Create(Strand strand, RedisOptions options) {
  return std::shared_ptr<Client>(
      new Client(std::move(strand), std::move(options)));
}

Client::Client(Strand strand, RedisOptions options)
    : impl_(std::make_unique<Impl>(*this, std::move(strand),
                                   std::move(options))) {}

Client::~Client() { impl_->Shutdown(); }

void Client::SetInitCommands(std::vector<Command> commands) {
  impl_->init_commands_ = std::move(commands);
}

void Client::SetOnReady(std::function<void()> on_ready) {
  impl_->on_ready_ = std::move(on_ready);
}

void Client::SetOnDown(std::function<void(const absl::Status& why)> on_down) {
  impl_->on_down_ = std::move(on_down);
}

void Client::Start() { impl_->Start(); }

void Client::Stop() { impl_->Stop(); }

bool Client::ready() const { return impl_->ready(); }

void Client::Execute(std::vector<Command> commands, BatchCallback done) {
  impl_->Execute(std::move(commands), std::move(done));
}

void Client::DropConnection() { impl_->DropConnection(); }

const ClientStats& Client::stats() const { return impl_->stats_; }

Client::Strand Client::strand() const { return impl_->strand_; }

}  // namespace plangate::internal::redis
