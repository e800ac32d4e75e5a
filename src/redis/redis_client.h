// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// redis_client.h: a small asynchronous Redis client on Boost.Asio sockets
// it owns: TCP (every resolved address is tried in turn), TLS over TCP
// (boost::asio::ssl on OpenSSL; RedisOptions::tls, see tls_context.h) and
// unix stream sockets. Replies are read with our own bounded RESP2 parser
// (resp_parser.h).
//
// Every batch and every connect attempt is guarded by an asio::steady_timer;
// when one fires, the connection is dropped (replies are ordered, so a
// single command cannot be abandoned) and the batch fails with
// DeadlineExceeded. The caller decides whether to resend: plangate only
// sends idempotent batches.
//
// Reconnects use capped exponential backoff with full jitter, forever, until
// Stop(). After each connect (and TLS handshake) the client runs AUTH (when
// a password is set), SELECT (when db != 0) and the caller's init commands
// (e.g. FUNCTION LOAD) before it reports ready; a failing init command
// fails the connection.
//
// With RedisOptions::sentinels (Redis Sentinel), every attempt first asks
// the sentinels where the master is (sentinel_resolver.h), and the handshake
// checks with ROLE that the node is a master; either failing is a failed
// attempt (backoff, then the sentinels are asked again). A READONLY reply
// (the master was demoted) drops the connection once its batch is
// delivered, so the next attempt follows the failover. While connected, a
// second connection, to the sentinel that answered, is SUBSCRIBEd to
// +switch-master: when it announces another address for the master, the
// connection is dropped at once and the sentinels are asked again.
//
// Thread safety: a Client is confined to its strand. Every method must be
// called from it (post to strand() first), and every callback runs on it.
// The Client is held by shared_ptr; pending handlers keep it alive. While
// started, its own handlers (socket operations, timers) hold it, so call
// Stop() before dropping the last reference; the destructor then runs once
// they have drained, or when the io_context is destroyed. The destructor
// calls `done` (Cancelled) for batches still pending, directly. Like any
// Asio object, a Client must not outlive its io_context.
//
// Writes go through Asio, which sends with MSG_NOSIGNAL: a dead peer is an
// EPIPE error, never a SIGPIPE, so the host need not ignore SIGPIPE. Host
// names are resolved asynchronously (asio's resolver).

#ifndef PLANGATE_REDIS_REDIS_CLIENT_H_
#define PLANGATE_REDIS_REDIS_CLIENT_H_

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "plangate/sync.h"

namespace plangate::internal::redis {

// One reply.
struct Reply {
  enum class Type : uint8_t {
    kNil,
    kInteger,
    kString,
    kStatus,
    kError,
    kArray
  };
  Type type = Type::kNil;
  int64_t integer = 0;
  std::string str;              // kString, kStatus, kError
  std::vector<Reply> elements;  // kArray

  bool is_error() const { return type == Type::kError; }
};

using Command = std::vector<std::string>;  // argv, binary safe
using BatchCallback =
    std::function<void(absl::StatusOr<std::vector<Reply>> replies)>;

struct ClientStats {
  uint64_t connects = 0;          // successful (ready) connections
  uint64_t connect_failures = 0;  // failed attempts (refused, timeout, init)
  uint64_t disconnects = 0;       // ready connections lost
  uint64_t batches = 0;           // batches answered in full
  uint64_t commands = 0;          // commands answered
  uint64_t timeouts = 0;          // batches failed by their deadline
  uint64_t failed_batches = 0;    // batches failed for any other reason
  // The connection's own faults (each also counts as a connect failure or
  // a disconnect above).
  uint64_t io_errors = 0;        // connections lost to an I/O error or EOF
  uint64_t protocol_errors = 0;  // malformed replies (connection dropped)
  uint64_t tls_failures = 0;     // TLS handshakes failed or refused
  std::string node;              // "host:port" or "unix:/path"
  std::string last_error;  // the last connect failure or loss; with `node`
};

class Client : public std::enable_shared_from_this<Client> {
 public:
  using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;

  static std::shared_ptr<Client> Create(Strand strand, RedisOptions options);
  ~Client();

  // Commands run on every connection before it is ready (after AUTH and
  // SELECT). A reply of type error fails the connection attempt.
  void SetInitCommands(std::vector<Command> commands);
  // Called on the strand each time the connection becomes ready / is lost.
  // on_down also gets every failed connection attempt, with the reason
  // and the node's address (e.g. "redis AUTH failed: WRONGPASS ... (at
  // 10.0.0.7:6379)"): Unavailable (refused, lost, TLS handshake failed,
  // malformed reply), DeadlineExceeded (connect_timeout, batch timeout),
  // Unauthenticated (AUTH), FailedPrecondition (SELECT, init command, the
  // server's certificate refused: "certificate verify failed: certificate
  // has expired", "... hostname mismatch", ...; a CA or client certificate
  // file that cannot be loaded). Neither is called after Stop().
  void SetOnReady(std::function<void()> on_ready);
  void SetOnDown(std::function<void(const absl::Status& why)> on_down);

  // For a subscriber connection (the sentinel watch): with `on_push` set,
  // SUBSCRIBE may be an init command, and a reply that arrives on a ready
  // connection with no batch in flight goes to on_push (posted, on the
  // strand) instead of failing the connection. Execute() still refuses
  // SUBSCRIBE. Set before Start().
  void SetOnPush(std::function<void(Reply push)> on_push);
  // Starts connecting (and reconnecting after every loss) until Stop().
  void Start();
  // Drops the connection, fails queued batches with Cancelled, stops
  // reconnecting. Idempotent.
  void Stop();

  bool ready() const;

  // Sends `commands` pipelined, in order. `done` receives every reply (in
  // order; error replies are replies, not failures) or a failure status:
  // Unavailable when not ready or the connection was lost, DeadlineExceeded
  // when command_timeout passed first (the connection is then dropped and
  // re-established), Cancelled after Stop(), InvalidArgument for a command
  // without arguments or one that makes the connection a push channel
  // (SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE, MONITOR). Exactly one call of
  // `done`, always posted (never from inside Execute).
  void Execute(std::vector<Command> commands, BatchCallback done);

  // Drops the current connection (as if it failed); used by tests.
  void DropConnection();

  const ClientStats& stats() const;
  Strand strand() const;

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

 private:
  class Impl;
  Client(Strand strand, RedisOptions options);

  std::unique_ptr<Impl> impl_;
};

// The cap of the reconnect delay after `failures` consecutive failed
// attempts: min(reconnect_max, reconnect_initial * 2^failures). The delay
// itself is uniform in [0, cap] ("full jitter"). Exposed for tests.
std::chrono::milliseconds ReconnectBackoffCap(const RedisOptions& options,
                                              int failures);

}  // namespace plangate::internal::redis

#endif  // PLANGATE_REDIS_REDIS_CLIENT_H_
