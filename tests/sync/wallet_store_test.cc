// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// CreditStoredWallet and ReadStoredWallet (sync.h, what `quotactl wallet`
// runs) against a real redis-server: a credit id counts once however often
// it is sent, and once between a gateway instance and the tool in either
// order; a credit made with no gateway running is spent by the instances;
// the dataset epoch goes with the credit; a correction that would leave
// less than is spent or leased is refused with Redis's figures and changes
// nothing; bad input and an unreachable Redis give a clear error fast.

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "plangate/sync.h"
#include "support/redis_server.h"
#include "sync/sync_test_util.h"

namespace plangate::testing {
namespace {

using std::chrono::milliseconds;

constexpr char kPrepaid[] = R"({"version": 1, "plans": [
  {"id": "prepaid", "wallet": {"required": true, "min_balance_micros": 0},
   "limits": [{"id": "monthly", "meter": "requests",
               "window": "billing_period", "limit": 100000000}]}]})";

using Node = Instance;

Node MakeNode(int port) {
  SyncOptions o = TestSyncOptions(port);
  o.share_wallets = true;
  o.lease_ttl = milliseconds(2000);
  Node n = StartInstance(kPrepaid, std::move(o));
  Register(n, "acme", "prepaid");
  return n;
}

// Spends 100 per request until `most` were admitted or none was for a
// second; returns the admitted.
int SpendAll(Node& n, int most) { return SpendEach({&n}, "acme", 100, most); }

RedisOptions Local(int port) {
  RedisOptions r;
  r.port = port;
  r.connect_timeout = milliseconds(300);
  r.command_timeout = milliseconds(300);
  return r;
}

std::string HGet(RedisServer& server, const std::string& key,
                 const std::string& field) {
  auto r = server.Command({"HGET", key, field});
  if (!r.ok() || r->type != internal::redis::Reply::Type::kString) {
    return "(none)";
  }
  return r->str;
}

std::string Dump(RedisServer& server) {
  auto all = server.Command({"HGETALL", "pg:{acme}:wallet"});
  std::string out;
  if (!all.ok()) return out;
  for (const auto& e : all->elements) out += e.str + " ";
  return out;
}

TEST_CASE("a stored credit counts once per id", "[sync][redis][wallet]") {
  auto started = RedisServer::Start();
  REQUIRE(started.ok());
  RedisServer& server = **started;
  const RedisOptions redis = Local(server.port());

  auto first = CreditStoredWallet(redis, "pg", "acme", "topup-1", 1000);
  REQUIRE(first.ok());
  CHECK(first->applied);
  CHECK(first->wallet.exists);
  CHECK(first->wallet.credits == 1000);
  CHECK(first->wallet.balance == 1000);
  CHECK(first->wallet.spent == 0);
  CHECK(first->wallet.leased == 0);
  CHECK(first->wallet.available == 1000);
  CHECK(first->wallet.credit_applied);
  CHECK(first->wallet.credit_amount == 1000);
  // No instance has created the dataset epoch: the credit carries none.
  CHECK(first->wallet.epoch.empty());
  CHECK(HGet(server, "pg:{acme}:wallet", "ep") == "(none)");

  // The same id again, with the same amount or another: nothing changes.
  for (const int64_t micros : {1000, 700, -300}) {
    INFO(micros);
    auto again = CreditStoredWallet(redis, "pg", "acme", "topup-1", micros);
    REQUIRE(again.ok());
    CHECK_FALSE(again->applied);
    CHECK(again->wallet.credit_amount == 1000);
    CHECK(again->wallet.credits == 1000);
    CHECK(again->wallet.balance == 1000);
  }
  CHECK(HGet(server, "pg:{acme}:wallet", "k") == "1000");
  CHECK(HGet(server, "pg:{acme}:wallet", "i:topup-1") == "1000");

  auto second = CreditStoredWallet(redis, "pg", "acme", "topup-2", 250);
  REQUIRE(second.ok());
  CHECK(second->applied);
  CHECK(second->wallet.credits == 1250);

  auto read = ReadStoredWallet(redis, "pg", "acme", "topup-2");
  REQUIRE(read.ok());
  CHECK(read->exists);
  CHECK(read->credits == 1250);
  CHECK(read->balance == 1250);
  CHECK(read->credit_applied);
  CHECK(read->credit_amount == 250);
  auto unknown_id = ReadStoredWallet(redis, "pg", "acme", "never");
  REQUIRE(unknown_id.ok());
  CHECK_FALSE(unknown_id->credit_applied);

  // Another prefix, another wallet; ids are escaped as WalletKey does.
  auto other = ReadStoredWallet(redis, "other", "acme");
  REQUIRE(other.ok());
  CHECK_FALSE(other->exists);
  CHECK(other->credits == 0);
  REQUIRE(CreditStoredWallet(redis, "other", "a:b{c}", "x", 5).ok());
  CHECK(HGet(server, "other:{a%3Ab%7Bc%7D}:wallet", "k") == "5");

  // With a dataset epoch the credit carries it, as WalletSync's does.
  REQUIRE(server.Command({"SET", "pg:epoch", "1767225600000-123"}).ok());
  auto epoched = CreditStoredWallet(redis, "pg", "beta", "b1", 40);
  REQUIRE(epoched.ok());
  CHECK(epoched->wallet.epoch == "1767225600000-123");
  CHECK(HGet(server, "pg:{beta}:wallet", "ep") == "1767225600000-123");
}

TEST_CASE("a gateway and the tool count one credit id once",
          "[sync][redis][wallet]") {
  auto started = RedisServer::Start();
  REQUIRE(started.ok());
  RedisServer& server = **started;
  const RedisOptions redis = Local(server.port());
  Node a;
  REQUIRE_NOTHROW(a = MakeNode(server.port()));

  // The instance applies X; the tool then sends X too: counted once.
  REQUIRE(
      a.enforcer
          ->UpdateWallet(
              {.account_id = "acme", .credit_micros = 1000, .credit_id = "X"})
          .ok());
  REQUIRE(a.sync->Flush(milliseconds(5000)).ok());
  REQUIRE(HGet(server, "pg:{acme}:wallet", "i:X") == "1000");
  auto x = CreditStoredWallet(redis, "pg", "acme", "X", 1000);
  REQUIRE(x.ok());
  CHECK_FALSE(x->applied);
  CHECK(x->wallet.credits == 1000);
  // The instance's epoch, which the tool read and sent.
  auto epoch = server.Command({"GET", "pg:epoch"});
  REQUIRE(epoch.ok());
  REQUIRE(epoch->type == internal::redis::Reply::Type::kString);
  CHECK(x->wallet.epoch == epoch->str);
  CHECK(x->wallet.instances == 1);

  CHECK(SpendAll(a, 1000) == 10);
  REQUIRE(a.sync->Flush(milliseconds(5000)).ok());
  CHECK(a.Spend("acme", 100) == 402);

  // A new id from the tool: the instance spends exactly it.
  auto y = CreditStoredWallet(redis, "pg", "acme", "Y", 500);
  REQUIRE(y.ok());
  CHECK(y->applied);
  CHECK(y->wallet.credits == 1500);
  CHECK(y->wallet.spent == 1000);
  CHECK(y->wallet.balance == 500);
  const int after_y = SpendAll(a, 1000);
  INFO("error: " << a.sync->LastError() << ", hash " << Dump(server));
  CHECK(after_y == 5);

  // The tool first, the instance second: once again.
  auto z = CreditStoredWallet(redis, "pg", "acme", "Z", 300);
  REQUIRE(z.ok());
  REQUIRE(z->applied);
  REQUIRE(
      a.enforcer
          ->UpdateWallet(
              {.account_id = "acme", .credit_micros = 300, .credit_id = "Z"})
          .ok());
  REQUIRE(a.sync->Flush(milliseconds(5000)).ok());
  CHECK(SpendAll(a, 1000) == 3);
  REQUIRE(a.sync->Flush(milliseconds(5000)).ok());
  auto end = ReadStoredWallet(redis, "pg", "acme");
  REQUIRE(end.ok());
  CHECK(end->credits == 1800);
  CHECK(end->spent == 1800);
  CHECK(end->balance == 0);
  CHECK(a.sync->Stats().wallet_errors == 0);
}

TEST_CASE("a tool credit after a FLUSHALL adds to the restored credits",
          "[sync][redis][wallet]") {
  auto started = RedisServer::Start();
  REQUIRE(started.ok());
  RedisServer& server = **started;
  const RedisOptions redis = Local(server.port());
  Node a;
  REQUIRE_NOTHROW(a = MakeNode(server.port()));
  REQUIRE(
      a.enforcer
          ->UpdateWallet(
              {.account_id = "acme", .credit_micros = 1000, .credit_id = "X"})
          .ok());
  REQUIRE(SpendAll(a, 2) == 2);
  REQUIRE(a.sync->Flush(milliseconds(5000)).ok());
  REQUIRE(server.Command({"FLUSHALL"}).ok());
  // Once the instance has created the new epoch, the tool's credit goes
  // under it (before or after the instance re-sends, the same sum).
  REQUIRE(WaitFor(
      [&] {
        auto e = server.Command({"EXISTS", "pg:epoch"});
        return e.ok() && e->integer == 1;
      },
      milliseconds(5000)));
  auto y = CreditStoredWallet(redis, "pg", "acme", "Y", 300);
  REQUIRE(y.ok());
  CHECK(y->applied);
  REQUIRE(WaitFor(
      [&] {
        auto w = ReadStoredWallet(redis, "pg", "acme");
        return w.ok() && w->instances == 1 && w->recovering_until_ms == 0 &&
               HGet(server, "pg:{acme}:wallet", "rd") == "(none)";
      },
      milliseconds(10000)));
  auto w = ReadStoredWallet(redis, "pg", "acme");
  REQUIRE(w.ok());
  INFO(Dump(server));
  CHECK(w->credits == 1300);
  CHECK(w->spent + w->leased <= 1300);
  // 1,300 credited, 200 spent: 11 more.
  CHECK(SpendAll(a, 1000) == 11);
  REQUIRE(a.sync->Flush(milliseconds(5000)).ok());
  auto end = ReadStoredWallet(redis, "pg", "acme");
  REQUIRE(end.ok());
  CHECK(end->credits == 1300);
  CHECK(end->spent == 1300);
}

TEST_CASE("a correction past what is unspent is refused",
          "[sync][redis][wallet]") {
  auto started = RedisServer::Start();
  REQUIRE(started.ok());
  RedisServer& server = **started;
  const RedisOptions redis = Local(server.port());
  REQUIRE(CreditStoredWallet(redis, "pg", "acme", "c1", 1000).ok());
  Node a;
  REQUIRE_NOTHROW(a = MakeNode(server.port()));
  REQUIRE(SpendAll(a, 3) == 3);
  // Leases back: Redis holds t = 300, L = 0.
  REQUIRE(a.sync->Drain(milliseconds(5000)).ok());
  REQUIRE(HGet(server, "pg:{acme}:wallet", "t") == "300");
  REQUIRE(HGet(server, "pg:{acme}:wallet", "L") == "0");
  const std::string before = Dump(server);

  auto refused = CreditStoredWallet(redis, "pg", "acme", "fix-1", -701);
  REQUIRE_FALSE(refused.ok());
  CHECK(absl::IsFailedPrecondition(refused.status()));
  CHECK(std::string(refused.status().message()) ==
        "account \"acme\": credit \"fix-1\": refused by redis at 127.0.0.1:" +
            std::to_string(server.port()) +
            ": a correction of -701 would leave less than is spent or "
            "leased (300 of 1000)");
  CHECK(Dump(server) == before);
  auto read = ReadStoredWallet(redis, "pg", "acme", "fix-1");
  REQUIRE(read.ok());
  CHECK_FALSE(read->credit_applied);
  CHECK(read->credits == 1000);

  // One that fits (to exactly what is spent) is applied; the refused id
  // was not used up.
  auto fits = CreditStoredWallet(redis, "pg", "acme", "fix-1", -700);
  REQUIRE(fits.ok());
  CHECK(fits->applied);
  CHECK(fits->wallet.credits == 300);
  CHECK(fits->wallet.balance == 0);
  CHECK(fits->wallet.available == 0);
}

TEST_CASE("bad input and an unreachable redis fail fast and say why",
          "[sync][redis][wallet]") {
  auto started = RedisServer::Start();
  REQUIRE(started.ok());
  RedisServer& server = **started;
  const RedisOptions redis = Local(server.port());
  auto message = [](const absl::Status& s) { return std::string(s.message()); };

  auto no_account = CreditStoredWallet(redis, "pg", "", "c1", 5);
  REQUIRE(absl::IsInvalidArgument(no_account.status()));
  CHECK(message(no_account.status()) == "account_id: must not be empty");
  auto no_account_read = ReadStoredWallet(redis, "pg", "");
  REQUIRE(absl::IsInvalidArgument(no_account_read.status()));
  CHECK(message(no_account_read.status()) == "account_id: must not be empty");
  auto no_id = CreditStoredWallet(redis, "pg", "acme", "", 5);
  REQUIRE(absl::IsInvalidArgument(no_id.status()));
  CHECK(message(no_id.status()) ==
        "account \"acme\": credit_id: must not be empty (a credit counts "
        "once per id)");
  auto zero = CreditStoredWallet(redis, "pg", "acme", "c1", 0);
  REQUIRE(absl::IsInvalidArgument(zero.status()));
  CHECK(message(zero.status()) ==
        "account \"acme\": credit \"c1\": micros: must not be 0");
  auto huge =
      CreditStoredWallet(redis, "pg", "acme", "c1", (int64_t{1} << 53) + 1);
  REQUIRE(absl::IsInvalidArgument(huge.status()));
  CHECK(message(huge.status()) ==
        "account \"acme\": credit \"c1\": micros: 9007199254740993 is past "
        "+-2^53 (9007199254740992)");
  // None of them reached Redis.
  auto keys = server.Command({"DBSIZE"});
  REQUIRE(keys.ok());
  CHECK(keys->integer == 0);

  // A key that is not a wallet hash, a field that is not a number.
  REQUIRE(server.Command({"SET", "pg:{str}:wallet", "x"}).ok());
  auto wrong = ReadStoredWallet(redis, "pg", "str");
  REQUIRE(absl::IsInternal(wrong.status()));
  CHECK(message(wrong.status()).find("WRONGTYPE") != std::string::npos);
  CHECK(message(wrong.status()).find("\"pg:{str}:wallet\"") !=
        std::string::npos);
  auto wrong_credit = CreditStoredWallet(redis, "pg", "str", "c1", 5);
  REQUIRE(absl::IsInternal(wrong_credit.status()));
  CHECK(message(wrong_credit.status())
            .starts_with("account \"str\": credit \"c1\": redis FCALL "
                         "pg2_wallet_credit at 127.0.0.1:"));
  REQUIRE(server.Command({"HSET", "pg:{bad}:wallet", "t", "abc"}).ok());
  auto bad = ReadStoredWallet(redis, "pg", "bad");
  REQUIRE(absl::IsInternal(bad.status()));
  CHECK(message(bad.status()) ==
        "redis at 127.0.0.1:" + std::to_string(server.port()) +
            ": key \"pg:{bad}:wallet\": field t is not an integer: \"abc\"");

  // A server that accepts and never answers (SIGSTOP): the same, fast.
  REQUIRE(server.Pause().ok());
  for (const bool credit : {true, false}) {
    INFO((credit ? "credit, paused" : "read, paused"));
    const auto t0 = std::chrono::steady_clock::now();
    const absl::Status s =
        credit ? CreditStoredWallet(redis, "pg", "acme", "c1", 5,
                                    milliseconds(400))
                     .status()
               : ReadStoredWallet(redis, "pg", "acme", "", milliseconds(400))
                     .status();
    const auto took = std::chrono::steady_clock::now() - t0;
    INFO(message(s));
    CHECK(absl::IsDeadlineExceeded(s));
    CHECK(took < milliseconds(1500));
    CHECK(message(s).starts_with(
        "redis at 127.0.0.1:" + std::to_string(server.port()) +
        ": no answer within 400 ms"));
  }
  REQUIRE(server.Resume().ok());
  auto none = server.Command({"HGET", "pg:{acme}:wallet", "k"});
  REQUIRE(none.ok());
  CHECK(none->type == internal::redis::Reply::Type::kNil);

  // Nobody listens: DeadlineExceeded within the timeout, naming the server
  // and the connection's error.
  const int port = server.port();
  REQUIRE(server.Stop().ok());
  const RedisOptions down = Local(port);
  for (const bool credit : {true, false}) {
    INFO((credit ? "credit" : "read"));
    const auto t0 = std::chrono::steady_clock::now();
    const absl::Status s =
        credit
            ? CreditStoredWallet(down, "pg", "acme", "c1", 5, milliseconds(400))
                  .status()
            : ReadStoredWallet(down, "pg", "acme", "", milliseconds(400))
                  .status();
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK(absl::IsDeadlineExceeded(s));
    CHECK(took < milliseconds(1500));
    INFO(message(s));
    CHECK(message(s).starts_with("redis at 127.0.0.1:" + std::to_string(port) +
                                 ": no answer within 400 ms: "));
    CHECK(message(s).find("Connection refused") != std::string::npos);
  }
}

}  // namespace
}  // namespace plangate::testing
