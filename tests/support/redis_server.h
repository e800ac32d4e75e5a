// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// redis_server.h: a private redis-server for a test.
//
// RedisServer::Start() runs its own redis-server (the binary named by
// PLANGATE_TEST_REDIS_SERVER, else `redis-server` on PATH) on a free
// loopback port, in a fresh temp dir, without persistence (--save ""
// --appendonly no) and with DEBUG allowed from local connections, and
// returns once the server answers on its own connection (checked by
// process id, so a stranger on the port is never mistaken for it). The test
// can then stop, kill, pause (SIGSTOP), resume and restart it on the same
// port, and inspect it with Command(). The destructor always kills and reaps
// the child and removes the temp dir; the child also gets SIGKILL when the
// thread that started it dies (PR_SET_PDEATHSIG), so a crashed test leaves
// no server behind. Server output goes to <dir>/redis.log; startup errors
// quote its tail.
//
// Thread safety: none; use a RedisServer from one thread (the test's).
// CommandInBackground() runs on a thread of its own, with copies of what it
// needs.

#ifndef PLANGATE_TESTS_SUPPORT_REDIS_SERVER_H_
#define PLANGATE_TESTS_SUPPORT_REDIS_SERVER_H_

#include <sys/types.h>

#include <future>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "plangate/sync.h"
#include "redis/redis_client.h"

namespace plangate::testing {

class RedisServer {
 public:
  using Reply = internal::redis::Reply;

  struct Options {
    // Appended to redis-server's command line, e.g. {"--databases", "4"}.
    std::vector<std::string> args;
    // --requirepass; Command() and the readiness check authenticate with it.
    std::string password;
    // Also listen on <dir>/redis.sock (see unix_socket()).
    bool unix_socket = false;
    // When tls_cert_file is set, also listen for TLS on tls_port() with
    // these PEM files (--tls-cert-file, --tls-key-file, --tls-ca-cert-file);
    // tls_auth_clients: require a client certificate. The plain port stays
    // open (the readiness check and Command() use it).
    std::string tls_cert_file;
    std::string tls_key_file;
    std::string tls_ca_file;
    bool tls_auth_clients = false;
    // When set: run as a Redis Sentinel (redis-server <dir>/sentinel.conf
    // --sentinel) with this configuration, written once (the sentinel
    // rewrites it; a restart keeps what it learned).
    std::string sentinel_config;
  };

  // FailedPrecondition when no redis-server binary is found; Unavailable or
  // DeadlineExceeded (with the server log's tail) when it does not come up.
  static absl::StatusOr<std::unique_ptr<RedisServer>> Start(Options options);
  // With default Options (GCC cannot take `= {}` for a nested struct with
  // member initializers as a default argument).
  static absl::StatusOr<std::unique_ptr<RedisServer>> Start() {
    return Start(Options());
  }

  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  const std::string& host() const { return host_; }  // "127.0.0.1"
  int port() const { return port_; }
  int tls_port() const { return tls_port_; }  // 0 without TLS
  // The socket path, empty unless Options::unix_socket.
  const std::string& unix_socket() const { return unix_socket_; }
  const std::string& dir() const { return dir_; }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  // host, port and password for a client; the rest default.
  RedisOptions ClientOptions() const;

  // SIGTERM (and SIGCONT, in case it is paused), then wait; SIGKILL if it
  // has not exited after 10 s. OK when it is not running.
  absl::Status Stop();
  // SIGKILL, then wait. OK when it is not running.
  absl::Status Kill();
  // SIGSTOP / SIGCONT: the kernel still accepts connections, nothing is
  // answered until Resume().
  absl::Status Pause();
  absl::Status Resume();
  // Stops the server if it runs, then starts it again on the same port with
  // the same arguments (retrying for a few seconds while the port is busy)
  // and waits until it answers. The data is gone (no persistence).
  absl::Status Restart();

  // Runs one command on a new connection (AUTH with the password, SELECT
  // `db` first when not 0) and returns its reply; error replies are replies.
  // Fails when the server cannot be reached or does not answer in 10 s.
  absl::StatusOr<Reply> Command(const std::vector<std::string>& argv,
                                int db = 0) const;
  // The same, on a thread of its own, for commands that block their
  // connection or the server (DEBUG SLEEP, BLPOP). The destructor kills the
  // server first and then waits for every such command.
  std::shared_future<absl::StatusOr<Reply>> CommandInBackground(
      std::vector<std::string> argv);

  // The last `max_bytes` of <dir>/redis.log.
  std::string LogTail(size_t max_bytes = 2000) const;

 private:
  explicit RedisServer(Options options);

  absl::Status Launch();  // fork+exec on port_, then wait until it answers
  absl::Status WaitUntilUp();
  absl::Status Reap(bool kill_first);

  Options options_;
  std::string binary_;
  std::string host_ = "127.0.0.1";
  int port_ = 0;
  int tls_port_ = 0;
  std::string dir_;
  std::string unix_socket_;
  pid_t pid_ = -1;
  std::vector<std::shared_future<absl::StatusOr<Reply>>> background_;
};

}  // namespace plangate::testing

#endif  // PLANGATE_TESTS_SUPPORT_REDIS_SERVER_H_
