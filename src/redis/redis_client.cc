// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// redis_client.cc: Client on hiredis 0.14.1's async API and Boost.Asio.
//
// Design.
//
//  - One Conn per connection attempt: the redisAsyncContext plus the
//    asio::posix::stream_descriptor that watches its fd. hiredis' event hooks
//    (addRead/addWrite...) arm one async_wait per direction; the completion
//    calls redisAsyncHandleRead/Write. The descriptor never owns the fd:
//    hiredis' cleanup hook releases it (which also deregisters it from epoll
//    and aborts our waits) just before hiredis closes the fd.
//  - hiredis 0.14.1 frees the context by itself on any I/O or protocol error,
//    from inside redisAsyncHandleRead/Write. Every path that learns about it
//    goes through the cleanup hook, which marks the Conn `closed`; nothing
//    touches the context after that. A Conn the Client gave up on is marked
//    `detached`: its hiredis callbacks are ignored from then on.
//  - We free a context ourselves (redisAsyncFree, never redisAsyncDisconnect,
//    which waits for pending replies) only outside hiredis: when the decision
//    is taken inside a hiredis callback (in_hiredis_ > 0), the free is posted
//    to the strand. Freeing from inside hiredis callbacks is what makes
//    0.14.1 free twice (onConnect, onDisconnect, cleanup are not guarded).
//  - User callbacks (done, on_ready, on_down) are always posted, never run
//    inside hiredis or inside the call that caused them.
//  - Replies arrive in order: the handshake's (AUTH, SELECT, init commands,
//    or a PING when there is none) first, then the batches', FIFO. One timer
//    guards the oldest in-flight batch (all batches have the same timeout, so
//    it expires first); when it fires early it is re-armed for the new front.
//  - hiredis writes with write(2): a peer that went away raises SIGPIPE. The
//    write path blocks SIGPIPE on the calling thread and swallows the one it
//    raised, so the host need not ignore SIGPIPE process-wide.

#include "redis/redis_client.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "redis/hiredis_util.h"

namespace plangate::internal::redis {
namespace {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

// Commands that turn the connection into a push channel break the
// one-reply-per-command order (and trip asserts in hiredis 0.14).
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

  // One hiredis context and the descriptor that watches its fd.
  struct Conn : std::enable_shared_from_this<Conn> {
    Conn(Impl* o, redisAsyncContext* c, const Strand& strand)
        : owner(o), ac(c), sd(strand) {}
    ~Conn() { Free(); }
    Conn(const Conn&) = delete;
    Conn& operator=(const Conn&) = delete;

    // Frees the context unless hiredis already did. Never call it from
    // inside a hiredis callback of this context.
    void Free() {
      detached = true;
      if (ac != nullptr && !closed) redisAsyncFree(ac);
      closed = true;
      ac = nullptr;
    }

    Impl* owner;  // valid while !detached
    redisAsyncContext* ac;
    asio::posix::stream_descriptor sd;
    bool want_read = false;  // hiredis asked for read events
    bool want_write = false;
    bool read_armed = false;  // an async_wait is outstanding
    bool write_armed = false;
    bool tcp_connected = false;  // hiredis reported the connect done
    bool detached = false;       // the Client gave up on this connection
    bool closed = false;         // hiredis freed `ac` (cleanup hook ran)
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
    for (const Command& command : commands) {
      if (!Send(command)) {
        const absl::Status why = absl::UnavailableError(absl::StrCat(
            "redis could not queue a command: ", ErrorText(), At()));
        ConnectionLost(why, why);
        return;
      }
    }
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
  // --- hiredis hooks (called from inside hiredis, on the strand). ---

  static void HookAddRead(void* p) {
    auto* c = static_cast<Conn*>(p);
    c->want_read = true;
    if (!c->detached) c->owner->ArmWait(*c, /*read=*/true);
  }
  static void HookDelRead(void* p) { static_cast<Conn*>(p)->want_read = false; }
  static void HookAddWrite(void* p) {
    auto* c = static_cast<Conn*>(p);
    c->want_write = true;
    if (!c->detached) c->owner->ArmWait(*c, /*read=*/false);
  }
  static void HookDelWrite(void* p) {
    static_cast<Conn*>(p)->want_write = false;
  }
  // hiredis is about to close the fd and free the context.
  static void HookCleanup(void* p) {
    auto* c = static_cast<Conn*>(p);
    c->closed = true;
    c->want_read = c->want_write = false;
    if (c->sd.is_open()) c->sd.release();  // aborts our waits; no close
    if (!c->detached) c->owner->OnConnGone(*c);
  }
  static void OnConnect(const redisAsyncContext* ac, int status) {
    if (status == REDIS_OK) static_cast<Conn*>(ac->data)->tcp_connected = true;
  }
  static void OnReplyCallback(redisAsyncContext* /*ac*/, void* reply,
                              void* privdata) {
    auto* c = static_cast<Conn*>(privdata);
    if (c->detached) return;
    c->owner->OnReply(*c, static_cast<const redisReply*>(reply));
  }

  std::shared_ptr<Client> Self() { return client_.weak_from_this().lock(); }

  std::string At() const { return absl::StrCat(" (at ", endpoint_, ")"); }

  // The error hiredis recorded on the current connection.
  std::string ErrorText() const {
    if (conn_ && conn_->ac != nullptr && !conn_->closed &&
        conn_->ac->c.err != 0) {
      return conn_->ac->c.errstr;
    }
    return "connection closed";
  }

  std::string NotReadyMessage() const {
    std::string msg = absl::StrCat("redis not connected", At());
    if (!last_error_.ok()) {
      absl::StrAppend(&msg, "; last error: ", last_error_.message());
    }
    return msg;
  }

  // --- I/O. ---

  void ArmWait(Conn& c, bool read) {
    bool& armed = read ? c.read_armed : c.write_armed;
    if (armed || c.closed || !c.sd.is_open()) return;
    std::shared_ptr<Client> self = Self();
    if (!self) return;  // being destroyed
    armed = true;
    c.sd.async_wait(read ? asio::posix::stream_descriptor::wait_read
                         : asio::posix::stream_descriptor::wait_write,
                    [this, self = std::move(self), conn = c.shared_from_this(),
                     read](const boost::system::error_code& ec) {
                      (read ? conn->read_armed : conn->write_armed) = false;
                      if (ec || conn->closed || conn->detached) return;
                      if (!(read ? conn->want_read : conn->want_write)) return;
                      ++in_hiredis_;
                      if (read) {
                        redisAsyncHandleRead(conn->ac);
                      } else {
                        ScopedSigpipeGuard guard;
                        redisAsyncHandleWrite(conn->ac);
                      }
                      --in_hiredis_;
                      // conn->ac may be gone now (closed); `conn` itself is
                      // held here.
                    });
  }

  bool Send(const Command& command) {
    std::vector<const char*> argv;
    std::vector<size_t> argvlen;
    argv.reserve(command.size());
    argvlen.reserve(command.size());
    for (const std::string& arg : command) {
      argv.push_back(arg.data());
      argvlen.push_back(arg.size());
    }
    return redisAsyncCommandArgv(conn_->ac, &OnReplyCallback, conn_.get(),
                                 static_cast<int>(argv.size()), argv.data(),
                                 argvlen.data()) == REDIS_OK;
  }

  // --- Connection life cycle. ---

  void Connect() {
    state_ = State::kConnecting;
    redisAsyncContext* ac =
        options_.unix_socket.empty()
            ? redisAsyncConnect(options_.host.c_str(), options_.port)
            : redisAsyncConnectUnix(options_.unix_socket.c_str());
    if (ac == nullptr) {
      AttemptFailed(absl::ResourceExhaustedError(
          absl::StrCat("redis connect failed: out of memory", At())));
      return;
    }
    if (ac->err != 0) {
      const std::string why = ac->c.errstr;
      redisAsyncFree(ac);  // no hooks attached yet
      AttemptFailed(absl::UnavailableError(
          absl::StrCat("redis connect failed: ", why, At())));
      return;
    }
    auto conn = std::make_shared<Conn>(this, ac, strand_);
    ac->data = conn.get();
    ac->ev.data = conn.get();
    ac->ev.addRead = &HookAddRead;
    ac->ev.delRead = &HookDelRead;
    ac->ev.addWrite = &HookAddWrite;
    ac->ev.delWrite = &HookDelWrite;
    ac->ev.cleanup = &HookCleanup;
    boost::system::error_code ec;
    conn->sd.assign(ac->c.fd, ec);
    if (ec) {
      conn->Free();
      AttemptFailed(absl::InternalError(absl::StrCat(
          "redis connect failed: cannot watch the socket: ", ec.message(),
          At())));
      return;
    }
    conn_ = std::move(conn);
    redisAsyncSetConnectCallback(ac, &OnConnect);  // arms the write wait

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
    for (const Command& command : commands) {
      if (!Send(command)) {
        AttemptFailed(absl::UnavailableError(absl::StrCat(
            "redis connect failed: could not queue the handshake: ",
            ErrorText(), At())));
        return;
      }
    }
    ArmConnectTimer();
  }

  // A reply (or, with r == nullptr, the connection failing) on `c`.
  void OnReply(Conn& c, const redisReply* r) {
    if (&c != conn_.get()) return;
    if (r == nullptr) {
      OnConnGone(c);
      return;
    }
    if (state_ == State::kConnecting) {
      if (handshake_next_ >= handshake_.size()) return;  // cannot happen
      const Step& step = handshake_[handshake_next_++];
      if (r->type == REDIS_REPLY_ERROR) {
        AttemptFailed(absl::Status(
            step.code, absl::StrCat("redis ", step.label, " failed: ",
                                    std::string(r->str, r->len), At())));
        return;
      }
      if (handshake_next_ == handshake_.size()) BecomeReady();
      return;
    }
    if (state_ != State::kReady || inflight_.empty()) {
      const absl::Status why = absl::InternalError(
          absl::StrCat("redis sent a reply nobody asked for", At()));
      ConnFailed(why);
      return;
    }
    Batch& batch = inflight_.front();
    batch.replies.push_back(CopyReply(*r));
    if (batch.replies.size() < batch.expected) return;
    ++stats_.batches;
    stats_.commands += batch.expected;
    Batch done = std::move(batch);
    inflight_.pop_front();
    Deliver(std::move(done.done), std::move(done.replies));
  }

  // hiredis is freeing the context of `c` on its own (I/O error, EOF).
  void OnConnGone(Conn& c) {
    if (&c != conn_.get()) return;
    std::string why = c.ac != nullptr && c.ac->c.err != 0
                          ? std::string(c.ac->c.errstr)
                          : std::string("connection closed");
    if (state_ == State::kConnecting) {
      ConnFailed(absl::UnavailableError(absl::StrCat(
          c.tcp_connected ? "redis connection closed during the handshake: "
                          : "redis connect failed: ",
          why, At())));
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

  // Forgets the current connection and frees its context (now, or posted
  // when we are inside one of its hiredis callbacks).
  void TearDownConn() {
    CancelConnectTimer();
    CancelBatchTimer();
    handshake_.clear();
    handshake_next_ = 0;
    std::shared_ptr<Conn> conn = std::move(conn_);
    conn_.reset();
    if (!conn) return;
    conn->detached = true;
    if (conn->closed) return;
    if (in_hiredis_ > 0) {
      asio::post(strand_, [conn] { conn->Free(); });
    } else {
      conn->Free();
    }
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
          const bool tcp = conn_ && conn_->tcp_connected;
          AttemptFailed(absl::DeadlineExceededError(absl::StrCat(
              "redis connect timed out after ", Ms(options_.connect_timeout),
              tcp ? " (connected, but the handshake got no reply)"
                  : " (TCP connect not completed)",
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
  int in_hiredis_ = 0;  // depth of redisAsyncHandleRead/Write on the stack
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
