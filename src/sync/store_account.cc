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
#include "sync/one_shot.h"
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
  const std::string where = internal::sync_once::Where(redis);
  // Two batches, each one write alone: a batch the cluster client could
  // not send yet (its node still connecting) is sent again (RunOnce), which
  // cannot apply anything twice.
  return internal::sync_once::RunOnce<int64_t>(
      redis, /*load_library=*/true, timeout,
      [&](const internal::sync_once::Exec& exec,
          const internal::sync_once::Finish<int64_t>& finish) {
        exec({Command{"FCALL", "pg2_acct_put", "1",
                      internal::AccountKey(prefix, update.account_id),
                      internal::EncodeAccountDoc(update), "set", "0"}},
             [&, exec, finish](absl::StatusOr<std::vector<Reply>> replies) {
               if (!replies.ok()) return finish(replies.status());
               const Reply& r = (*replies)[0];
               if (r.is_error()) {
                 return finish(absl::InternalError(
                     fmt::format("redis FCALL pg2_acct_put at {}: {}", where,
                                 internal::QuotablePrefix(r.str))));
               }
               if (r.type != Reply::Type::kArray || r.elements.empty() ||
                   r.elements[0].type != Reply::Type::kInteger) {
                 return finish(absl::InternalError(fmt::format(
                     "redis FCALL pg2_acct_put at {}: unexpected reply",
                     where)));
               }
               const int64_t version = r.elements[0].integer;
               exec({Command{"XADD", internal::AccountFeedKey(prefix), "MAXLEN",
                             "~", internal::kAccountFeedMaxLen, "*", "a",
                             update.account_id, "v", std::to_string(version)}},
                    [&, finish,
                     version](absl::StatusOr<std::vector<Reply>> added) {
                      if (!added.ok()) return finish(added.status());
                      if ((*added)[0].is_error()) {
                        return finish(absl::InternalError(fmt::format(
                            "redis XADD at {}: {}", where,
                            internal::QuotablePrefix((*added)[0].str))));
                      }
                      finish(version);
                    });
             });
      });
}

}  // namespace plangate
