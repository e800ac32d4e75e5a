// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// redis_client.cc: Client (redis_client.h) and the parts of Client::Impl
// that do not touch sockets: batches, the connection's life cycle
// (ready, lost, backoff), timers. The design is in redis_client_impl.h;
// connecting, reading and writing are in redis_connect.cc.

#include "redis/redis_client.h"

#include <boost/asio/post.hpp>

#include "redis/redis_client_impl.h"

namespace plangate::internal::redis {
namespace {

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

void Client::Impl::Start() {
  if (state_ != State::kIdle) return;
  Connect();
}

void Client::Impl::Stop() {
  if (state_ == State::kStopped) return;
  state_ = State::kStopped;
  StopWatch();
  CancelReconnectTimer();
  TearDownConn();
  FailInflight(absl::CancelledError("redis client stopped"));
}

// From ~Client: like Stop, but calls `done` directly (nothing can be
// posted on behalf of an object being destroyed).
void Client::Impl::Shutdown() {
  destroying_ = true;
  Stop();
}

void Client::Impl::Execute(std::vector<Command> commands, BatchCallback done) {
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

void Client::Impl::DropConnection() {
  const absl::Status why = absl::UnavailableError(
      absl::StrCat("redis connection dropped on request", At()));
  if (state_ == State::kReady) {
    ConnectionLost(why, why);
  } else if (state_ == State::kConnecting) {
    AttemptFailed(why);
  }
}

std::string Client::Impl::NotReadyMessage() const {
  std::string msg = absl::StrCat("redis not connected", At());
  if (!last_error_.ok()) {
    absl::StrAppend(&msg, "; last error: ", last_error_.message());
  }
  return msg;
}

// One complete reply on the current connection.
void Client::Impl::OnReply(Reply reply) {
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
    if (step.expect_master) {
      if (absl::Status s = CheckRole(reply); !s.ok()) {
        AttemptFailed(s);
        return;
      }
    }
    if (handshake_next_ == handshake_.size()) BecomeReady();
    return;
  }
  if (state_ == State::kReady && inflight_.empty() && on_push_) {
    asio::post(strand_, [this, self = Self(), push = std::move(reply)] {
      if (state_ != State::kStopped && on_push_) on_push_(push);
    });
    return;
  }
  if (state_ != State::kReady || inflight_.empty()) {
    ConnFailed(absl::InternalError(
        absl::StrCat("redis sent a reply nobody asked for", At())));
    return;
  }
  Batch& batch = inflight_.front();
  if (reply.is_error() && !options_.sentinels.empty() &&
      absl::StartsWith(reply.str, "READONLY")) {
    demoted_ = true;  // dropped once the batch is delivered
  }
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
  if (demoted_) {
    demoted_ = false;
    const absl::Status why = absl::UnavailableError(absl::StrCat(
        "redis answered READONLY: the node is no longer the master; "
        "connection dropped, the sentinels will be asked again",
        At()));
    ConnectionLost(why, why);
  }
}

void Client::Impl::ConnFailed(const absl::Status& why) {
  if (state_ == State::kConnecting) {
    AttemptFailed(why);
  } else if (state_ == State::kReady) {
    ConnectionLost(why, why);
  } else {
    TearDownConn();
  }
}

void Client::Impl::BecomeReady() {
  CancelConnectTimer();
  state_ = State::kReady;
  ++stats_.connects;
  failures_ = 0;
  last_error_ = absl::OkStatus();
  if (!options_.sentinels.empty()) WatchSentinel();
  if (!on_ready_) return;
  asio::post(strand_, [this, self = Self()] {
    if (state_ != State::kStopped && on_ready_) on_ready_();
  });
}

void Client::Impl::AttemptFailed(const absl::Status& why) {
  ++stats_.connect_failures;
  last_error_ = why;
  stats_.last_error = std::string(why.message());
  TearDownConn();
  NotifyDown(why);
  ScheduleReconnect();
}

// A ready connection is gone: in-flight batches fail with `batches_why`,
// on_down gets `why`.
void Client::Impl::ConnectionLost(const absl::Status& why,
                                  const absl::Status& batches_why) {
  ++stats_.disconnects;
  last_error_ = why;
  stats_.last_error = std::string(why.message());
  TearDownConn();
  FailInflight(batches_why);
  NotifyDown(why);
  ScheduleReconnect();
}

void Client::Impl::NotifyDown(const absl::Status& why) {
  if (!on_down_ || destroying_) return;
  asio::post(strand_, [this, self = Self(), why] {
    if (state_ != State::kStopped && on_down_) on_down_(why);
  });
}

// Forgets the current connection and closes its socket (its pending
// operations complete with operation_aborted and do nothing).
void Client::Impl::TearDownConn() {
  ++resolve_gen_;
  demoted_ = false;
  if (sentinel_) sentinel_->Cancel();
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

void Client::Impl::ScheduleReconnect() {
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

void Client::Impl::FailInflight(const absl::Status& why) {
  std::deque<Batch> batches = std::move(inflight_);
  inflight_.clear();
  for (Batch& batch : batches) {
    ++stats_.failed_batches;
    Deliver(std::move(batch.done), why);
  }
}

void Client::Impl::Deliver(BatchCallback done,
                           absl::StatusOr<std::vector<Reply>> result) {
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

void Client::Impl::ArmConnectTimer() {
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

void Client::Impl::CancelConnectTimer() {
  ++connect_gen_;
  connect_timer_.cancel();
}

void Client::Impl::ArmBatchTimer(SteadyClock::time_point deadline) {
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

void Client::Impl::CancelBatchTimer() {
  ++batch_gen_;
  batch_armed_ = false;
  batch_timer_.cancel();
}

void Client::Impl::OnBatchTimer() {
  if (state_ != State::kReady || inflight_.empty()) return;
  if (inflight_.front().deadline > SteadyClock::now()) {
    ArmBatchTimer(inflight_.front().deadline);
    return;
  }
  Batch batch = std::move(inflight_.front());
  inflight_.pop_front();
  ++stats_.timeouts;
  const absl::Status why = absl::DeadlineExceededError(
      absl::StrCat("redis batch of ", batch.expected, " command",
                   batch.expected == 1 ? "" : "s", " got no reply within ",
                   Ms(options_.command_timeout), "; connection dropped", At()));
  Deliver(std::move(batch.done), why);
  ConnectionLost(
      why, absl::UnavailableError(absl::StrCat(
               "redis connection dropped: an earlier batch timed out", At())));
}

void Client::Impl::CancelReconnectTimer() {
  ++reconnect_gen_;
  reconnect_timer_.cancel();
}

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

void Client::SetOnPush(std::function<void(Reply push)> on_push) {
  impl_->on_push_ = std::move(on_push);
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
