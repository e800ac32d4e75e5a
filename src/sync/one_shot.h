// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// one_shot.h: one short exchange with Redis from a connection of its own,
// for the admin calls that run outside a RedisSync (StoreAccountState,
// CreditStoredWallet, ReadStoredWallet): connect, send batches, give up
// at a deadline with the last connection or reply error.
//
// Thread safety: RunOnce runs its own io_context on the calling thread and
// returns when done; nothing is shared.

#ifndef PLANGATE_SYNC_ONE_SHOT_H_
#define PLANGATE_SYNC_ONE_SHOT_H_

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "fmt/format.h"
#include "internal/json_path.h"
#include "plangate/sync.h"
#include "redis/cluster_client.h"
#include "sync/redis_functions.h"

namespace plangate::internal::sync_once {

using redis::ClusterClient;
using redis::Command;
using redis::Reply;

// The server, for messages (no credentials).
inline std::string Where(const RedisOptions& redis) {
  if (!redis.sentinels.empty()) {
    std::string hosts;
    for (const RedisOptions::Address& a : redis.sentinels) {
      if (!hosts.empty()) hosts += ',';
      hosts += fmt::format("{}:{}", a.host, a.port);
    }
    return fmt::format("master {} of sentinels {}",
                       internal::JsonQuote(redis.sentinel_master), hosts);
  }
  if (!redis.unix_socket.empty()) return redis.unix_socket;
  return fmt::format("{}:{}{}", redis.host, redis.port,
                     redis.cluster ? " (cluster)" : "");
}

// A reply the cluster client made for a command it did not send (its
// node not connected yet: ready() means some node is), so sending it again
// cannot apply anything twice.
inline bool Unsent(const Reply& r) {
  constexpr std::string_view kCluster = "ERR plangate cluster: ";
  if (!r.is_error() || r.str.compare(0, kCluster.size(), kCluster) != 0) {
    return false;
  }
  return r.str.find(" not connected (") != std::string::npos ||
         r.str.find("no node connected (") != std::string::npos;
}

template <typename T>
using Finish = std::function<void(absl::StatusOr<T>)>;
using Replies = std::function<void(absl::StatusOr<std::vector<Reply>>)>;
// Sends a batch; one with a reply for a command not sent (Unsent) is sent
// again, whole, 20 ms later (within the deadline). A batch must be safe to
// send again when any of its commands was not sent: reads, or one write
// alone.
using Exec = std::function<void(std::vector<Command>, Replies)>;

// Runs `start` once the client is first ready and returns what it hands
// `finish`, or DeadlineExceeded (with the last connection or reply error)
// when nothing was finished within `timeout`.
template <typename T>
absl::StatusOr<T> RunOnce(
    const RedisOptions& redis, bool load_library,
    std::chrono::milliseconds timeout,
    const std::function<void(const Exec&, const Finish<T>&)>& start) {
  boost::asio::io_context io;
  auto strand = boost::asio::make_strand(io);
  std::shared_ptr<ClusterClient> client = ClusterClient::Create(strand, redis);
  if (load_library) {
    client->SetInitCommands({Command{"FUNCTION", "LOAD", "REPLACE",
                                     internal::kRedisFunctionLibrary}});
  }
  std::optional<absl::StatusOr<T>> result;
  std::string last_down;
  boost::asio::steady_timer deadline(strand, timeout);
  boost::asio::steady_timer again(strand);
  const Finish<T> finish = [&](absl::StatusOr<T> r) {
    if (result.has_value()) return;
    result = std::move(r);
    deadline.cancel();
    again.cancel();
    client->Stop();
  };
  Exec exec;
  exec = [&](std::vector<Command> batch, Replies done) {
    client->Execute(
        batch, [&, batch, done](absl::StatusOr<std::vector<Reply>> replies) {
          if (result.has_value()) return;
          if (replies.ok()) {
            for (const Reply& r : *replies) {
              if (!Unsent(r)) continue;
              last_down = r.str.substr(4);  // without "ERR "
              again.expires_after(std::chrono::milliseconds(20));
              again.async_wait(
                  [&, batch, done](const boost::system::error_code& ec) {
                    if (!ec && !result.has_value()) exec(batch, done);
                  });
              return;
            }
          }
          done(std::move(replies));
        });
  };
  bool started = false;
  client->SetOnDown(
      [&](const absl::Status& why) { last_down = std::string(why.message()); });
  client->SetOnReady([&] {
    if (started) return;
    started = true;
    start(exec, finish);
  });
  deadline.async_wait([&](const boost::system::error_code& ec) {
    if (ec) return;
    finish(absl::DeadlineExceededError(fmt::format(
        "redis at {}: no answer within {} ms{}{}", Where(redis),
        timeout.count(), last_down.empty() ? "" : ": ", last_down)));
  });
  boost::asio::post(strand, [&] { client->Start(); });
  io.run();
  return *result;
}

}  // namespace plangate::internal::sync_once

#endif  // PLANGATE_SYNC_ONE_SHOT_H_
