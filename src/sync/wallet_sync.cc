// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "sync/wallet_sync.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "fmt/format.h"
#include "internal/json_path.h"
#include "sync/sync_keys.h"

namespace plangate::internal {
namespace {

using redis::Command;
using redis::Reply;

constexpr size_t kMaxBatch = 1024;

// The first n elements of an array of `size` (n when 0), integers.
bool Ints(const Reply& r, size_t n, int64_t* out, size_t size = 0) {
  if (r.type != Reply::Type::kArray || r.elements.size() != (size ? size : n))
    return false;
  for (size_t i = 0; i < n; ++i) {
    if (r.elements[i].type != Reply::Type::kInteger) return false;
    out[i] = r.elements[i].integer;
  }
  return true;
}

// "seq:total:amount:id" (the id may hold ':').
bool ParseCredit(std::string_view s, int64_t* seq, int64_t* total,
                 int64_t* amount, std::string* id) {
  int64_t* nums[] = {seq, total, amount};
  for (int64_t* n : nums) {
    const size_t colon = s.find(':');
    if (colon == std::string_view::npos ||
        !absl::SimpleAtoi(absl::string_view(s.data(), colon), n)) {
      return false;
    }
    s.remove_prefix(colon + 1);
  }
  if (s.empty()) return false;
  id->assign(s);
  return true;
}

}  // namespace

WalletSync::WalletSync(Enforcer& enforcer, SyncLink& link,
                       std::shared_ptr<redis::ClusterClient> client,
                       const SyncOptions& options, EpochSource epoch,
                       EpochStale epoch_stale, ErrorSink on_error)
    : enforcer_(enforcer),
      facts_(SyncAccess::Facts(enforcer)),
      link_(link),
      client_(std::move(client)),
      options_(options),
      clock_(SyncAccess::ClockOf(enforcer)),
      epoch_(std::move(epoch)),
      epoch_stale_(std::move(epoch_stale)),
      on_error_(std::move(on_error)),
      seq_(static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::system_clock::now().time_since_epoch())
              .count())) {}

void WalletSync::Track(uint32_t index, uint8_t gen, int64_t steady_ms) {
  const auto it = wallets_.find(index);
  if (it != wallets_.end() && it->second->gen == gen) return;
  std::string account;
  if (!SyncAccess::AccountIdOf(enforcer_, index, gen, &account)) return;
  std::atomic<int64_t>* word = SyncAccess::WalletOf(enforcer_, index, gen);
  if (word == nullptr) return;
  auto w = std::make_unique<Wallet>();
  w->index = index;
  w->gen = gen;
  w->account = account;
  w->key = WalletKey(options_.key_prefix, account);
  w->last_use = steady_ms;  // wanted now: a check or a credit asked
  // A balance credited here before the sync tracked the wallet is a
  // credit of this instance's, once (relaxed: the word is self-contained).
  const int64_t before = word->exchange(0, std::memory_order_relaxed);
  if (before > 0) {
    to_credit_.push_back(
        {account,
         fmt::format("local:{}:{}", options_.instance_id, ++local_credits_),
         before});
  }
  wallets_[index] = std::move(w);
  count_.store(wallets_.size(), std::memory_order_relaxed);
}

void WalletSync::Round(int64_t steady_ms) {
  uint64_t entry = 0;
  while (link_.wallets.Pop(&entry)) {
    Track(static_cast<uint32_t>(entry >> 8), static_cast<uint8_t>(entry & 0xff),
          steady_ms);
  }
  for (WalletCredit& c : link_.TakeCredits())
    to_credit_.push_back(std::move(c));
  if (!client_->ready()) ++downs_;
  if (in_flight_ || !client_->ready()) return;

  const std::string& epoch = epoch_();
  const int64_t now = clock_.NowMs();
  std::vector<Command> batch;
  std::vector<Sent> sent;
  size_t taken = 0;
  for (; taken < to_credit_.size() && batch.size() < kMaxBatch; ++taken) {
    WalletCredit& c = to_credit_[taken];
    batch.push_back({"FCALL", "pg2_wallet_credit", "1",
                     WalletKey(options_.key_prefix, c.account_id), c.credit_id,
                     std::to_string(c.micros), epoch});
    sent.push_back({nullptr, std::move(c), now});
  }
  to_credit_.erase(to_credit_.begin(), to_credit_.begin() + taken);

  for (auto it = wallets_.begin(); it != wallets_.end();) {
    Wallet& w = *it->second;
    std::atomic<int64_t>* word =
        SyncAccess::WalletOf(enforcer_, w.index, w.gen);
    if (word == nullptr) {
      // The record is gone (it held no lease: a record with a balance is
      // never reclaimed).
      link_.ClearWallet(w.index);
      wallets_.erase(it++);
      count_.store(wallets_.size(), std::memory_order_relaxed);
      continue;
    }
    ++it;
    if (w.in_flight || batch.size() >= kMaxBatch) continue;
    int64_t held = word->load(std::memory_order_relaxed);
    const int64_t cum = w.granted - w.returned - held;
    if (cum != w.last_cum) {
      // What was spent while Redis was unreachable is many rounds' spend:
      // it sizes no lease (after an outage the first to ask would take
      // twice it, and the last of a balance with it).
      if (w.downs == downs_) {
        w.round_spend = std::max(cum - w.last_cum, w.round_spend * 7 / 8);
        w.unit = std::max(w.unit, cum - w.last_cum);
      }
      w.last_cum = cum;
      w.last_use = steady_ms;
    }
    w.downs = downs_;
    // A check short of lease names the request size (and counts as use).
    const uint64_t wanted =
        link_.wallet_wanted[w.index].load(std::memory_order_relaxed);
    if (wanted != w.wanted) {
      w.wanted = wanted;
      w.unit = std::max<int64_t>(w.unit, wanted & 0xffffffff);
      w.last_use = steady_ms;
    }
    const bool idle = steady_ms - w.last_use > options_.refresh_idle.count();
    int64_t want = 0;
    // Starved with less than a request's worth: hand it back, so that the
    // last of a balance split across instances can come together (a grant
    // is all that is free, up to what is asked).
    const int64_t need = static_cast<int64_t>(w.wanted & 0xffffffff);
    const int64_t floor = WalletFloor(facts_, w.index, w.gen, now);
    const bool fragment =
        w.starved && held > 0 && held < need && w.balance >= need;
    if ((idle || returning_ || fragment) && held > 0) {
      // Hand the lease back: what the word holds now.
      const int64_t back = word->exchange(0, std::memory_order_relaxed);
      w.returned += back;
      returned_.fetch_add(back, std::memory_order_relaxed);
      held = 0;
    } else if (!idle && !returning_ && !fragment && w.balance >= 0) {
      const int64_t n = std::max<int64_t>(1, w.instances);
      // What leases may take: the balance above the plan's minimum (Redis
      // grants none below it, but one request at it).
      const int64_t spendable = std::max<int64_t>(0, w.balance - floor);
      const int64_t target = std::min<int64_t>(
          spendable, std::max({4 * w.round_spend, 2 * w.unit,
                               options_.min_round_units, spendable / (4 * n)}));
      // Below half the target, or short of one request: ask.
      if (held * 2 < target || held < need) {
        want = std::max(target, need) - held;
      }
    }
    const bool due =
        steady_ms - w.last_reply >= options_.refresh_interval.count();
    // The credits it knows go again when they may have been lost: its
    // epoch moved on since it heard them, or Redis asked (flag 64).
    const bool resend =
        w.resend || (!w.credits_epoch.empty() && w.credits_epoch != epoch);
    const bool send = w.sent_cum != cum || w.sent_held != held ||
                      (want > 0 && (!w.starved || due)) || (!idle && due) ||
                      (w.balance < 0 && due) || resend;
    if (!send) continue;
    w.sent_cum = cum;
    w.sent_held = held;
    w.sent_cn = w.known_cn;
    w.in_flight = true;
    Command call{"FCALL",
                 "pg2_wallet",
                 "1",
                 w.key,
                 options_.instance_id,
                 std::to_string(++seq_),
                 std::to_string(cum),
                 std::to_string(held),
                 std::to_string(want),
                 std::to_string(options_.lease_ttl.count()),
                 epoch,
                 std::to_string(w.known_cr),
                 w.credits_epoch,
                 std::to_string(options_.lease_ttl.count()),
                 std::to_string(want > 0 ? need : 0),
                 std::to_string(w.known_cn),
                 w.hid,
                 resend ? std::to_string(w.known.size()) : "-1",
                 std::to_string(floor)};
    if (resend) {
      for (const KnownCredit& c : w.known) {
        call.push_back(
            fmt::format("{}:{}:{}:{}", c.seq, c.total, c.amount, c.id));
      }
    }
    batch.push_back(std::move(call));
    Sent s;
    s.wallet = &w;
    s.sent_at = now;
    s.epoch = epoch;
    s.with_credits = resend;
    sent.push_back(std::move(s));
  }
  if (batch.empty()) return;
  in_flight_ = true;
  client_->Execute(std::move(batch),
                   [this, sent = std::move(sent)](
                       absl::StatusOr<std::vector<Reply>> replies) mutable {
                     OnReplies(std::move(sent), std::move(replies));
                   });
}

void WalletSync::OnReplies(std::vector<Sent> sent,
                           absl::StatusOr<std::vector<Reply>> replies) {
  in_flight_ = false;
  const bool failed = !replies.ok() || replies->size() != sent.size();
  if (failed) {
    ++downs_;
    Error(fmt::format("redis wallet batch: {}",
                      replies.ok() ? "unexpected reply count"
                                   : std::string(replies.status().message())));
  }
  for (size_t i = 0; i < sent.size(); ++i) {
    Sent& s = sent[i];
    const Reply* r = failed ? nullptr : &(*replies)[i];
    if (s.wallet == nullptr) {
      if (r == nullptr) {
        to_credit_.push_back(std::move(s.credit));  // sent again, same id
        continue;
      }
      int64_t v[3];
      if (r->is_error()) {
        Error(
            fmt::format("redis FCALL pg2_wallet_credit for account {} "
                        "(credit {}): {}",
                        JsonQuote(s.credit.account_id),
                        JsonQuote(s.credit.credit_id), QuotablePrefix(r->str)));
      } else if (!Ints(*r, 3, v)) {
        Error(
            fmt::format("redis FCALL pg2_wallet_credit for account {}: "
                        "unexpected reply",
                        JsonQuote(s.credit.account_id)));
      } else {
        credits_.fetch_add(v[0], std::memory_order_relaxed);
        // The balance moved: the wallet asks again at once.
        for (auto& [index, w] : wallets_) {
          if (w->account == s.credit.account_id) {
            w->balance = v[1];
            w->starved = false;
            w->last_reply = -1'000'000'000;
          }
        }
      }
      continue;
    }
    Wallet& w = *s.wallet;
    w.in_flight = false;
    if (r == nullptr) {
      w.sent_cum = -1;  // send again
      w.sent_held = -1;
      continue;
    }
    if (r->is_error()) {
      w.sent_cum = -1;
      Error(fmt::format("redis FCALL pg2_wallet for account {}: {}",
                        JsonQuote(w.account), QuotablePrefix(r->str)));
      continue;
    }
    OnWalletReply(w, s, *r);
  }
}

void WalletSync::OnWalletReply(Wallet& w, const Sent& s, const Reply& r) {
  // {balance, r, grant, credits, n, flags, through, upto, hid, entries}
  int64_t v[8];
  if (!Ints(r, 8, v, 10) || r.elements[8].type != Reply::Type::kString ||
      r.elements[9].type != Reply::Type::kArray) {
    w.sent_cum = -1;
    Error(
        fmt::format("redis FCALL pg2_wallet for account {}: unexpected "
                    "reply",
                    JsonQuote(w.account)));
    return;
  }
  const int64_t flags = v[5];
  if (flags & 4) return;  // stale: a later call is the one that counts
  if (flags & 16) {
    w.sent_cum = -1;
    if (epoch_stale_) epoch_stale_();
    return;
  }
  std::atomic<int64_t>* word = SyncAccess::WalletOf(enforcer_, w.index, w.gen);
  if (word == nullptr) return;
  if (flags & 32) {
    // Redis took the lease back while this instance was silent (and
    // counted it as spent until now): what is left here is not ours.
    const int64_t back = word->exchange(0, std::memory_order_relaxed);
    w.returned += back;
    w.sent_cum = -1;  // tell Redis what was not spent
  }
  if (v[2] > 0) {
    // Relaxed: the word is self-contained (sync_link.h).
    word->fetch_add(v[2], std::memory_order_relaxed);
    w.granted += v[2];
    grants_.fetch_add(1, std::memory_order_relaxed);
    granted_.fetch_add(v[2], std::memory_order_relaxed);
  }
  w.starved = v[2] == 0;
  if (flags & 64) {
    // The hash may lack credits this instance knows: it re-sends them
    // next, and until then keeps what it knew (the balance included).
    w.resend = true;
    if (w.balance < 0) w.balance = v[0];
  } else {
    if (s.with_credits) w.resend = false;
    w.balance = v[0];
    if (Learn(w, v[6], v[7], r.elements[8].str, r.elements[9])) {
      w.credits_epoch = s.epoch;
    }
  }
  w.instances = v[4];
  w.last_reply = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now().time_since_epoch())
                     .count();
  // Recovering (8): nothing granted, the lease held stays spendable.
  link_.SetWallet(w.index, w.gen, w.balance,
                  s.sent_at + options_.lease_ttl.count());
}

bool WalletSync::Learn(Wallet& w, int64_t through, int64_t upto,
                       const std::string& hid, const Reply& entries) {
  std::vector<KnownCredit> got;
  got.reserve(entries.elements.size());
  for (const Reply& e : entries.elements) {
    KnownCredit c;
    if (e.type != Reply::Type::kString ||
        !ParseCredit(e.str, &c.seq, &c.total, &c.amount, &c.id) || c.seq <= 0 ||
        c.seq > through) {
      Error(fmt::format(
          "redis FCALL pg2_wallet for account {}: credit log entry {}: not "
          "seq:total:amount:id up to {}",
          JsonQuote(w.account), QuotablePrefix(e.str), through));
      return false;
    }
    got.push_back(std::move(c));
  }
  if (hid != w.hid) {
    // Another numbering (the hash was merged or made again after a loss):
    // the entries came from its start.
    w.known.clear();
    w.hid = hid;
  } else if (through < w.sent_cn) {
    std::erase_if(w.known,
                  [&](const KnownCredit& c) { return c.seq > through; });
  }
  for (KnownCredit& c : got) {
    std::erase_if(w.known, [&](const KnownCredit& k) {
      return k.seq == c.seq || k.id == c.id;
    });
    auto at = std::upper_bound(
        w.known.begin(), w.known.end(), c.seq,
        [](int64_t seq, const KnownCredit& k) { return seq < k.seq; });
    w.known.insert(at, std::move(c));
  }
  while (w.known.size() > kMaxKnownCredits) w.known.pop_front();
  w.known_cn = through;
  w.known_cr = upto;
  return true;
}

void WalletSync::ReturnAll(bool on) {
  if (returning_ && !on) {
    // Drained: a lease is taken again when a check needs one, not before.
    for (auto& [index, w] : wallets_) w->last_use = -1'000'000'000;
  }
  returning_ = on;
}

bool WalletSync::Idle() const {
  if (in_flight_ || !to_credit_.empty()) return false;
  for (const auto& [index, w] : wallets_) {
    if (w->in_flight || w->resend) return false;
    std::atomic<int64_t>* word =
        SyncAccess::WalletOf(enforcer_, w->index, w->gen);
    if (word == nullptr) continue;
    const int64_t held = word->load(std::memory_order_relaxed);
    if (w->sent_cum != w->granted - w->returned - held) return false;
    if (returning_ && (held > 0 || w->sent_held > 0)) return false;
  }
  return true;
}

void WalletSync::Error(const std::string& what) {
  errors_.fetch_add(1, std::memory_order_relaxed);
  if (on_error_) on_error_(what);
}

WalletSyncStats WalletSync::Stats() const {
  WalletSyncStats s;
  s.wallets = count_.load(std::memory_order_relaxed);
  s.credits = credits_.load(std::memory_order_relaxed);
  s.grants = grants_.load(std::memory_order_relaxed);
  s.granted = granted_.load(std::memory_order_relaxed);
  s.returned = returned_.load(std::memory_order_relaxed);
  s.errors = errors_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace plangate::internal
