// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "redis_batch.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "fmt/format.h"
#include "redis/cluster_client.h"

namespace plangate::quotactl {
namespace {

using internal::redis::ClusterClient;
using internal::redis::Command;
using internal::redis::Reply;
using Result = absl::StatusOr<std::vector<Reply>>;

// A cluster primary whose connection is not ready yet.
bool NotConnectedYet(const std::vector<Reply>& replies) {
  for (const Reply& r : replies) {
    if (r.is_error() &&
        absl::StartsWith(r.str, "ERR plangate cluster: node ") &&
        absl::StrContains(r.str, " not connected (")) {
      return true;
    }
  }
  return false;
}

}  // namespace

Result RunBatch(const RedisOptions& options, std::vector<Command> commands,
                std::chrono::milliseconds timeout) {
  boost::asio::io_context io;
  auto strand = boost::asio::make_strand(io);
  RedisOptions o = options;
  o.connect_timeout = timeout;
  o.command_timeout = timeout;
  o.reconnect_initial = std::chrono::milliseconds(20);
  o.reconnect_max = std::chrono::milliseconds(100);
  std::shared_ptr<ClusterClient> client = ClusterClient::Create(strand, o);
  boost::asio::steady_timer deadline(strand);
  boost::asio::steady_timer retry(strand);
  std::optional<Result> result;
  bool sending = false;

  const auto finish = [&](Result r) {
    if (result) return;
    result = std::move(r);
    deadline.cancel();
    retry.cancel();
    client->Stop();
  };
  std::function<void()> send = [&] {
    if (result || sending || !client->ready()) return;
    sending = true;
    client->Execute(commands, [&](Result r) {
      sending = false;
      if (r.ok() && o.cluster && NotConnectedYet(*r)) {
        retry.expires_after(std::chrono::milliseconds(20));
        retry.async_wait([&](const boost::system::error_code& ec) {
          if (!ec) send();
        });
        return;
      }
      finish(std::move(r));
    });
  };
  client->SetOnReady(send);
  client->SetOnDown([&](const absl::Status& why) {
    if (!sending) finish(why);  // the attempt's own failure, named
  });
  deadline.expires_after(
      2 * timeout);  // a backstop: the client's own timeouts come first
  deadline.async_wait([&](const boost::system::error_code& ec) {
    if (ec) return;
    finish(absl::DeadlineExceededError(fmt::format(
        "no reply within {} s", static_cast<double>(timeout.count()) / 1000)));
  });
  boost::asio::post(strand, [&] { client->Start(); });
  io.run();
  if (!result) return absl::InternalError("redis batch: no result");
  return *std::move(result);
}

}  // namespace plangate::quotactl
