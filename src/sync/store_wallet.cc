// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// CreditStoredWallet and ReadStoredWallet (sync.h): an account's shared
// wallet credited and read from a connection of their own, the way
// WalletSync (wallet_sync.h) credits it on an instance, for admin tools
// (quotactl wallet) and billing hooks that run no Enforcer.
//
// A credit is one FCALL pg2_wallet_credit, the command WalletSync sends,
// with the same arguments: the wallet key, the credit id, the amount and
// the dataset epoch. The epoch is read (GET <prefix>:epoch) and never
// created or replaced here: deciding that the dataset lost writes is the
// instances' (RedisSync's INFO replication check, pg2_epoch). With no
// epoch yet (no instance ever ran on this prefix, or one is about to
// resolve a new one after a FLUSHALL) the epoch sent is "", which the
// Function documents as the epoch of a tool that does not know it: the
// credit joins `k` and the first instance's call adopts it.
//
// After the credit the same pipeline reads the hash back (HMGET of the
// fields pg2_wallet keeps, and i:<id>) and the server's TIME, so the
// result names the balance as it stands and, for an id seen before, what
// that id applied.

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "fmt/format.h"
#include "internal/json_path.h"
#include "plangate/sync.h"
#include "redis/cluster_client.h"
#include "sync/one_shot.h"
#include "sync/redis_functions.h"
#include "sync/sync_keys.h"

namespace plangate {
namespace {

using internal::JsonQuote;
using internal::QuotablePrefix;
using internal::redis::ClusterClient;
using internal::redis::Command;
using internal::redis::Reply;
using internal::sync_once::Exec;
using internal::sync_once::Finish;
using internal::sync_once::Replies;
using internal::sync_once::RunOnce;
using internal::sync_once::Where;

// Lua numbers are doubles: amounts past 2^53 would not add exactly.
constexpr int64_t kMaxMicros = int64_t{1} << 53;

absl::Status CheckIds(std::string_view account_id) {
  if (account_id.empty()) {
    return absl::InvalidArgumentError("account_id: must not be empty");
  }
  return absl::OkStatus();
}

// HMGET's fields, in this order, then i:<id> when one is asked about.
constexpr const char* kFields[] = {"k", "b", "t", "L", "n", "ep", "rd"};
constexpr size_t kNumFields = sizeof(kFields) / sizeof(kFields[0]);

Command ReadCommand(const std::string& key, std::string_view credit_id) {
  Command c{"HMGET", key};
  for (const char* f : kFields) c.emplace_back(f);
  if (!credit_id.empty()) c.push_back(fmt::format("i:{}", credit_id));
  return c;
}

// The wallet from the HMGET reply and the TIME reply.
absl::StatusOr<StoredWallet> ParseWallet(const Reply& fields, const Reply& time,
                                         const std::string& key,
                                         std::string_view credit_id,
                                         const std::string& where) {
  const size_t want = kNumFields + (credit_id.empty() ? 0 : 1);
  if (fields.is_error()) {
    return absl::InternalError(fmt::format("redis HMGET {} at {}: {}",
                                           JsonQuote(key), where,
                                           QuotablePrefix(fields.str)));
  }
  if (fields.type != Reply::Type::kArray || fields.elements.size() != want) {
    return absl::InternalError(fmt::format(
        "redis HMGET {} at {}: unexpected reply", JsonQuote(key), where));
  }
  int64_t v[kNumFields + 1] = {};
  bool present[kNumFields + 1] = {};
  for (size_t i = 0; i < want; ++i) {
    const Reply& e = fields.elements[i];
    if (e.type == Reply::Type::kNil) continue;
    present[i] = true;
    if (i == 5) continue;  // ep: text
    if (e.type != Reply::Type::kString || !absl::SimpleAtoi(e.str, &v[i])) {
      return absl::InternalError(
          fmt::format("redis at {}: key {}: field {} is not an integer: {}",
                      where, JsonQuote(key),
                      i < kNumFields ? std::string(kFields[i])
                                     : fmt::format("i:{}", credit_id),
                      JsonQuote(e.str)));
    }
  }
  StoredWallet w;
  for (size_t i = 0; i < kNumFields; ++i) w.exists |= present[i];
  w.credits = v[0] + v[1];
  w.spent = v[2];
  w.leased = v[3];
  w.balance = w.credits - w.spent;
  w.available = w.balance - w.leased;
  w.instances = v[4];
  if (present[5]) w.epoch = fields.elements[5].str;
  // TIME: {seconds, microseconds} as strings.
  int64_t now_ms = 0;
  int64_t sec = 0, usec = 0;
  if (time.type == Reply::Type::kArray && time.elements.size() == 2 &&
      absl::SimpleAtoi(time.elements[0].str, &sec) &&
      absl::SimpleAtoi(time.elements[1].str, &usec)) {
    now_ms = sec * 1000 + usec / 1000;
  } else {
    return absl::InternalError(
        fmt::format("redis TIME at {}: unexpected reply", where));
  }
  if (present[6] && v[6] > now_ms) w.recovering_until_ms = v[6];
  if (!credit_id.empty() && present[kNumFields]) {
    w.credit_applied = true;
    w.credit_amount = v[kNumFields];
  }
  return w;
}

// The text of a pg2_wallet_credit error without "ERR pg2_wallet_credit: ".
std::string_view CreditErrorText(std::string_view s) {
  for (std::string_view p : {"ERR pg2_wallet_credit: ", "ERR "}) {
    if (s.substr(0, p.size()) == p) return s.substr(p.size());
  }
  return s;
}

}  // namespace

absl::StatusOr<StoredWalletCredit> CreditStoredWallet(
    const RedisOptions& redis, std::string_view key_prefix,
    std::string_view account_id, std::string_view credit_id, int64_t micros,
    std::chrono::milliseconds timeout) {
  if (absl::Status s = CheckIds(account_id); !s.ok()) return s;
  const std::string account = JsonQuote(account_id);
  if (credit_id.empty()) {
    return absl::InvalidArgumentError(fmt::format(
        "account {}: credit_id: must not be empty (a credit counts once "
        "per id)",
        account));
  }
  const std::string credit = JsonQuote(credit_id);
  if (micros == 0) {
    return absl::InvalidArgumentError(fmt::format(
        "account {}: credit {}: micros: must not be 0", account, credit));
  }
  if (micros > kMaxMicros || micros < -kMaxMicros) {
    return absl::InvalidArgumentError(
        fmt::format("account {}: credit {}: micros: {} is past +-2^53 ({})",
                    account, credit, micros, kMaxMicros));
  }
  const std::string prefix(key_prefix);
  const std::string key = internal::WalletKey(prefix, account_id);
  const std::string epoch_key = prefix + ":epoch";
  const std::string id(credit_id);
  const std::string where = Where(redis);
  // Three steps, each safe to send again (Exec): the epoch, the credit
  // alone, the wallet read back.
  bool applied = false;
  bool in_doubt = false;  // the credit sent, its reply not in
  absl::StatusOr<StoredWalletCredit> out = RunOnce<StoredWalletCredit>(
      redis, /*load_library=*/true, timeout,
      [&](const Exec& exec, const Finish<StoredWalletCredit>& finish) {
        auto read_back = [&, exec, finish] {
          exec({ReadCommand(key, id), Command{"TIME"}},
               [&, finish](absl::StatusOr<std::vector<Reply>> replies) {
                 if (!replies.ok()) {
                   return finish(absl::UnavailableError(fmt::format(
                       "account {}: credit {}: {} at {}, but reading the "
                       "wallet back failed: {}",
                       account, credit, applied ? "applied" : "applied before",
                       where, std::string(replies.status().message()))));
                 }
                 absl::StatusOr<StoredWallet> w =
                     ParseWallet((*replies)[0], (*replies)[1], key, id, where);
                 if (!w.ok()) return finish(w.status());
                 StoredWalletCredit credited;
                 credited.applied = applied;
                 credited.wallet = std::move(*w);
                 finish(std::move(credited));
               });
        };
        auto credit_step = [&, exec, finish,
                            read_back](const std::string& epoch) {
          in_doubt = true;
          exec({Command{"FCALL", "pg2_wallet_credit", "1", key, id,
                        std::to_string(micros), epoch}},
               [&, finish,
                read_back](absl::StatusOr<std::vector<Reply>> replies) {
                 if (!replies.ok()) {
                   return finish(absl::UnavailableError(fmt::format(
                       "account {}: credit {}: redis at {}: {} (the "
                       "credit may or may not be applied: send it again "
                       "with the same id)",
                       account, credit, where,
                       std::string(replies.status().message()))));
                 }
                 in_doubt = false;
                 const Reply& r = (*replies)[0];
                 if (r.is_error()) {
                   const std::string_view text = CreditErrorText(r.str);
                   if (text.find("would leave less than") !=
                       std::string_view::npos) {
                     return finish(absl::FailedPreconditionError(fmt::format(
                         "account {}: credit {}: refused by redis at {}: {}",
                         account, credit, where, QuotablePrefix(text, 200))));
                   }
                   return finish(absl::InternalError(fmt::format(
                       "account {}: credit {}: redis FCALL "
                       "pg2_wallet_credit at {}: {}",
                       account, credit, where, QuotablePrefix(r.str))));
                 }
                 if (r.type != Reply::Type::kArray || r.elements.size() != 3 ||
                     r.elements[0].type != Reply::Type::kInteger) {
                   return finish(absl::InternalError(
                       fmt::format("account {}: credit {}: redis FCALL "
                                   "pg2_wallet_credit at {}: unexpected reply",
                                   account, credit, where)));
                 }
                 applied = r.elements[0].integer == 1;
                 read_back();
               });
        };
        exec({Command{"GET", epoch_key}},
             [&, finish, credit_step](absl::StatusOr<std::vector<Reply>> got) {
               if (!got.ok()) {
                 return finish(absl::UnavailableError(
                     fmt::format("redis GET {} at {}: {}", JsonQuote(epoch_key),
                                 where, std::string(got.status().message()))));
               }
               const Reply& e = (*got)[0];
               std::string epoch;  // "": no instance has created one yet
               if (e.type == Reply::Type::kString) {
                 epoch = e.str;
               } else if (e.type != Reply::Type::kNil) {
                 return finish(absl::InternalError(fmt::format(
                     "redis GET {} at {}: {}", JsonQuote(epoch_key), where,
                     e.is_error() ? std::string(QuotablePrefix(e.str))
                                  : std::string("unexpected reply"))));
               }
               credit_step(epoch);
             });
      });
  if (in_doubt && absl::IsDeadlineExceeded(out.status())) {
    return absl::DeadlineExceededError(fmt::format(
        "account {}: credit {}: {} (the credit may or may not be applied: "
        "send it again with the same id)",
        account, credit, std::string(out.status().message())));
  }
  return out;
}

absl::StatusOr<StoredWallet> ReadStoredWallet(
    const RedisOptions& redis, std::string_view key_prefix,
    std::string_view account_id, std::string_view credit_id,
    std::chrono::milliseconds timeout) {
  if (absl::Status s = CheckIds(account_id); !s.ok()) return s;
  const std::string key = internal::WalletKey(key_prefix, account_id);
  const std::string id(credit_id);
  const std::string where = Where(redis);
  return RunOnce<StoredWallet>(
      redis, /*load_library=*/false, timeout,
      [&](const Exec& exec, const Finish<StoredWallet>& finish) {
        exec(
            {ReadCommand(key, id), Command{"TIME"}},
            [&, finish](absl::StatusOr<std::vector<Reply>> replies) {
              if (!replies.ok()) {
                return finish(absl::UnavailableError(fmt::format(
                    "account {}: redis at {}: {}", JsonQuote(account_id), where,
                    std::string(replies.status().message()))));
              }
              finish(ParseWallet((*replies)[0], (*replies)[1], key, id, where));
            });
      });
}

}  // namespace plangate
