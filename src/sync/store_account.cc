// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// StoreAccountState (sync.h): one account state written and announced
// the way AccountStore does (account_store.h), from a connection of its
// own.

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/numbers.h"
#include "fmt/format.h"
#include "internal/json_path.h"
#include "plangate/enforcer.h"
#include "plangate/sync.h"
#include "redis/cluster_client.h"
#include "sync/account_doc.h"
#include "sync/redis_functions.h"
#include "sync/sync_keys.h"

namespace plangate {

using internal::redis::ClusterClient;
using internal::redis::Command;
using internal::redis::Reply;

absl::StatusOr<int64_t> StoreAccountState(const RedisOptions& redis,
                                          std::string_view key_prefix,
                                          const AccountUpdate& update,
                                          std::chrono::milliseconds timeout) {
  if (update.account_id.empty()) {
    return absl::InvalidArgumentError("account_id: must not be empty");
  }
  if (update.plan_id.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("account {}: plan: must not be empty",
                    internal::JsonQuote(update.account_id)));
  }
  const std::string prefix(key_prefix);
  boost::asio::io_context io;
  auto strand = boost::asio::make_strand(io);
  std::shared_ptr<ClusterClient> client = ClusterClient::Create(strand, redis);
  client->SetInitCommands({Command{"FUNCTION", "LOAD", "REPLACE",
                                   internal::kRedisFunctionLibrary}});
  std::optional<absl::StatusOr<int64_t>> result;
  std::string last_down;
  boost::asio::steady_timer deadline(strand, timeout);
  auto finish = [&](absl::StatusOr<int64_t> r) {
    if (result.has_value()) return;
    result = std::move(r);
    deadline.cancel();
    client->Stop();
  };
  auto where = [&] {
    return redis.unix_socket.empty()
               ? fmt::format("{}:{}", redis.host, redis.port)
               : redis.unix_socket;
  };
  bool sent = false;
  client->SetOnDown(
      [&](const absl::Status& why) { last_down = std::string(why.message()); });
  client->SetOnReady([&] {
    if (sent) return;
    sent = true;
    client->Execute(
        {Command{"FCALL", "pg2_acct_put", "1",
                 internal::AccountKey(prefix, update.account_id),
                 internal::EncodeAccountDoc(update), "set", "0"}},
        [&](absl::StatusOr<std::vector<Reply>> replies) {
          int64_t version = 0;
          if (!replies.ok()) return finish(replies.status());
          const Reply& r = (*replies)[0];
          if (r.is_error()) {
            return finish(absl::InternalError(
                fmt::format("redis FCALL pg2_acct_put at {}: {}", where(),
                            internal::QuotablePrefix(r.str))));
          }
          if (r.type != Reply::Type::kArray || r.elements.empty() ||
              r.elements[0].type != Reply::Type::kInteger) {
            return finish(absl::InternalError(fmt::format(
                "redis FCALL pg2_acct_put at {}: unexpected reply", where())));
          }
          version = r.elements[0].integer;
          client->Execute(
              {Command{"XADD", internal::AccountFeedKey(prefix), "MAXLEN", "~",
                       internal::kAccountFeedMaxLen, "*", "a",
                       update.account_id, "v", std::to_string(version)}},
              [&, version](absl::StatusOr<std::vector<Reply>> added) {
                if (!added.ok()) return finish(added.status());
                if ((*added)[0].is_error()) {
                  return finish(absl::InternalError(
                      fmt::format("redis XADD at {}: {}", where(),
                                  internal::QuotablePrefix((*added)[0].str))));
                }
                finish(version);
              });
        });
  });
  deadline.async_wait([&](const boost::system::error_code& ec) {
    if (ec) return;
    finish(absl::DeadlineExceededError(fmt::format(
        "redis at {}: no answer within {} ms{}{}", where(), timeout.count(),
        last_down.empty() ? "" : ": ", last_down)));
  });
  boost::asio::post(strand, [&] { client->Start(); });
  io.run();
  return *result;
}

}  // namespace plangate
