// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// redis_client_impl.h: Client::Impl, private to the client's two files:
// redis_client.cc (the API, batches, the connection's life cycle, timers)
// and redis_connect.cc (resolve, connect, TLS, the handshake, reads and
// writes).
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
//  - Sentinel (RedisOptions::sentinels): each attempt first asks the
//    sentinels for the master (sentinel_resolver.h; a failure there is a
//    failed attempt), connects there, and checks ROLE in the handshake
//    (after AUTH and SELECT, before the init commands). A READONLY reply
//    on a ready connection drops it (after its batch is delivered), and
//    so does +switch-master to another address, heard on a subscriber
//    connection to a sentinel (sentinel_watch.cc).
//
// Thread safety: as Client's: everything on the strand.

#ifndef PLANGATE_REDIS_REDIS_CLIENT_IMPL_H_
#define PLANGATE_REDIS_REDIS_CLIENT_IMPL_H_

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "redis/redis_client.h"
#include "redis/redis_transport.h"
#include "redis/resp_parser.h"
#include "redis/sentinel_resolver.h"

namespace plangate::internal::redis {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

// Commands that turn the connection into a push channel break the
// one-reply-per-command order.
inline absl::Status CheckCommand(const Command& command) {
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

inline std::chrono::milliseconds AtLeast1ms(std::chrono::milliseconds d) {
  return std::max(d, std::chrono::milliseconds(1));
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
    bool expect_master = false;  // ROLE: the reply must say "master"
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
    endpoint_ = !options_.sentinels.empty()
                    ? absl::StrCat("sentinel master ", options_.sentinel_master)
                : !options_.unix_socket.empty()
                    ? absl::StrCat("unix:", options_.unix_socket)
                : options_.host.find(':') != std::string::npos
                    ? absl::StrCat("[", options_.host, "]:", options_.port)
                    : absl::StrCat(options_.host, ":", options_.port);
    stats_.node = endpoint_;
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

  void Start();

  void Stop();

  // From ~Client: like Stop, but calls `done` directly (nothing can be
  // posted on behalf of an object being destroyed).
  void Shutdown();

  void Execute(std::vector<Command> commands, BatchCallback done);

  void DropConnection();

  bool ready() const { return state_ == State::kReady; }

  // --- Members the public setters reach. ---

  Client& client_;
  Strand strand_;
  RedisOptions options_;
  std::vector<Command> init_commands_;
  std::function<void()> on_ready_;
  std::function<void(const absl::Status&)> on_down_;
  std::function<void(Reply)> on_push_;
  ClientStats stats_;

 private:
  std::shared_ptr<Client> Self() { return client_.weak_from_this().lock(); }

  std::string At() const { return absl::StrCat(" (at ", endpoint_, ")"); }

  std::string NotReadyMessage() const;

  // RESP2: *<argc>\r\n then $<len>\r\n<arg>\r\n per argument.
  static void Encode(const Command& command, std::string* out);

  // --- Connection life cycle. ---

  void Connect();

  // Sentinel mode: asks the sentinels for the master, then Connect()s.
  void ResolvePrimary();

  // Sentinel mode, once ready: a subscriber connection to the sentinel
  // that answered (sentinel_watch.cc); +switch-master to another address
  // drops the connection. StopWatch() closes it.
  void WatchSentinel();
  void StopWatch();
  void OnSwitchMaster(const SentinelResolver::Primary& to);

  // A handshake step with expect_master: the ROLE reply says "master".
  absl::Status CheckRole(const Reply& reply) const;

  void StartTls(const std::shared_ptr<Conn>& conn);

  // Connected (and TLS established): send the handshake, start reading.
  void TransportUp(const std::shared_ptr<Conn>& conn);

  void Flush(const std::shared_ptr<Conn>& conn);

  void Read(const std::shared_ptr<Conn>& conn);

  static std::string IoErrorText(const boost::system::error_code& ec);

  // One complete reply on the current connection.
  void OnReply(Reply reply);

  // The current connection failed with an I/O error or EOF (`why`).
  void ConnGone(const std::string& why);

  void ConnFailed(const absl::Status& why);

  void BecomeReady();

  void AttemptFailed(const absl::Status& why);

  // A ready connection is gone: in-flight batches fail with `batches_why`,
  // on_down gets `why`.
  void ConnectionLost(const absl::Status& why, const absl::Status& batches_why);

  void NotifyDown(const absl::Status& why);

  // Forgets the current connection and closes its socket (its pending
  // operations complete with operation_aborted and do nothing).
  void TearDownConn();

  void ScheduleReconnect();

  void FailInflight(const absl::Status& why);

  void Deliver(BatchCallback done, absl::StatusOr<std::vector<Reply>> result);

  // --- Timers. A generation number tells a current expiry from a stale
  // one (a cancelled wait may still complete without an error). ---

  void ArmConnectTimer();

  void CancelConnectTimer();

  void ArmBatchTimer(SteadyClock::time_point deadline);

  void CancelBatchTimer();

  void OnBatchTimer();

  void CancelReconnectTimer();

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
  // Sentinel mode.
  std::shared_ptr<SentinelResolver> sentinel_;
  uint64_t resolve_gen_ = 0;
  bool resolved_ = false;  // options_.host/port is this attempt's master
  bool demoted_ = false;   // a READONLY reply came in the current batch
  size_t answered_ = 0;    // the sentinel that named the current master
  std::shared_ptr<Client> watch_;  // subscribed to +switch-master
  size_t watched_ = 0;             // the sentinel watch_ is connected to
};

}  // namespace plangate::internal::redis

#endif  // PLANGATE_REDIS_REDIS_CLIENT_IMPL_H_
