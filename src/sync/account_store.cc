// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "sync/account_store.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "fmt/format.h"
#include "internal/json_path.h"
#include "sync/account_doc.h"
#include "sync/sync_keys.h"

namespace plangate::internal {
namespace {

using redis::Command;
using redis::Reply;

// Commands per batch; the rest go in the next round.
constexpr size_t kMaxBatch = 1024;
// Feed entries per read.
constexpr char kFeedCount[] = "1000";

bool ParseInt(const Reply& r, int64_t* out) {
  if (r.type == Reply::Type::kInteger) {
    *out = r.integer;
    return true;
  }
  return r.type == Reply::Type::kString && absl::SimpleAtoi(r.str, out);
}

}  // namespace

AccountStore::AccountStore(Enforcer& enforcer, SyncLink& link,
                           std::shared_ptr<redis::ClusterClient> client,
                           std::string prefix,
                           std::chrono::milliseconds poll_interval,
                           std::string epoch_key, EpochSink on_epoch,
                           ErrorSink on_error)
    : enforcer_(enforcer),
      link_(link),
      client_(std::move(client)),
      prefix_(std::move(prefix)),
      feed_key_(AccountFeedKey(prefix_)),
      poll_interval_(poll_interval),
      epoch_key_(std::move(epoch_key)),
      on_epoch_(std::move(on_epoch)),
      on_error_(std::move(on_error)) {}

void AccountStore::Round(int64_t steady_ms) {
  uint64_t entry = 0;
  std::string id;
  while (link_.sightings.Pop(&entry)) {
    if (SyncAccess::AccountIdOf(enforcer_, static_cast<uint32_t>(entry >> 8),
                                static_cast<uint8_t>(entry & 0xff), &id)) {
      to_load_[id] = true;  // a new record: apply whatever is stored
    }
  }
  for (AccountPublish& p : link_.TakePublished()) {
    ++putting_[p.update.account_id];
    to_put_.push_back(std::move(p));
  }
  if (in_flight_ || !client_->ready()) return;

  std::vector<Command> batch;
  std::vector<Op> ops;
  if (feed_id_.empty()) {
    batch.push_back({"XREVRANGE", feed_key_, "+", "-", "COUNT", "1"});
    ops.push_back({OpKind::kFeedTail});
  } else if (steady_ms - last_poll_ms_ >= poll_interval_.count()) {
    last_poll_ms_ = steady_ms;
    batch.push_back({"GET", epoch_key_});
    ops.push_back({OpKind::kEpoch});
    batch.push_back(
        {"XREAD", "COUNT", kFeedCount, "STREAMS", feed_key_, feed_id_});
    ops.push_back({OpKind::kFeedRead});
  }
  size_t taken = 0;
  for (; taken < to_put_.size() && batch.size() < kMaxBatch; ++taken) {
    AccountPublish& p = to_put_[taken];
    Op op{OpKind::kPut, p.update.account_id};
    op.mode = p.seed ? "seed" : "set";
    op.doc = EncodeAccountDoc(p.update);
    batch.push_back({"FCALL", "pg2_acct_put", "1",
                     AccountKey(prefix_, op.account), op.doc, op.mode, "0"});
    op.publish = std::move(p);
    ops.push_back(std::move(op));
  }
  to_put_.erase(to_put_.begin(), to_put_.begin() + taken);
  if (restore_) {
    restore_ = false;
    for (const auto& [account, h] : held_) {
      if (h.version <= 0) continue;
      ++putting_[account];
      batch.push_back({"FCALL", "pg2_acct_put", "1",
                       AccountKey(prefix_, account), h.doc, "restore",
                       std::to_string(h.version)});
      Op op{OpKind::kPut, account};
      op.publish.update.account_id = account;
      op.mode = "restore";
      ops.push_back(std::move(op));
    }
  }
  taken = 0;
  for (; taken < to_announce_.size() && batch.size() < kMaxBatch; ++taken) {
    const auto& [account, version] = to_announce_[taken];
    batch.push_back({"XADD", feed_key_, "MAXLEN", "~", kAccountFeedMaxLen, "*",
                     "a", account, "v", std::to_string(version)});
    Op op{OpKind::kAnnounce, account};
    op.version = version;
    ops.push_back(std::move(op));
  }
  to_announce_.erase(to_announce_.begin(), to_announce_.begin() + taken);
  for (auto it = to_load_.begin();
       it != to_load_.end() && batch.size() < kMaxBatch;) {
    if (putting_.contains(it->first)) {
      ++it;  // the put's reply brings the stored state
      continue;
    }
    batch.push_back({"HMGET", AccountKey(prefix_, it->first), "v", "doc"});
    Op op{OpKind::kLoad, it->first};
    op.force = it->second;
    ops.push_back(std::move(op));
    to_load_.erase(it++);
  }
  if (batch.empty()) return;
  in_flight_ = true;
  client_->Execute(std::move(batch),
                   [this, ops = std::move(ops)](
                       absl::StatusOr<std::vector<Reply>> replies) mutable {
                     OnReplies(std::move(ops), std::move(replies));
                   });
}

void AccountStore::OnReplies(std::vector<Op> ops,
                             absl::StatusOr<std::vector<Reply>> replies) {
  in_flight_ = false;
  const bool failed = !replies.ok() || replies->size() != ops.size();
  if (failed) {
    Error(fmt::format("redis account state batch: {}",
                      replies.ok() ? "unexpected reply count"
                                   : std::string(replies.status().message())));
  }
  for (size_t i = 0; i < ops.size(); ++i) {
    Op& op = ops[i];
    Reply* r = failed ? nullptr : &(*replies)[i];
    if (r != nullptr && r->is_error()) {
      Error(fmt::format("redis {} for account {}: {}",
                        op.kind == OpKind::kPut        ? "FCALL pg2_acct_put"
                        : op.kind == OpKind::kLoad     ? "HMGET"
                        : op.kind == OpKind::kAnnounce ? "XADD"
                        : op.kind == OpKind::kEpoch    ? "GET"
                                                       : "XREAD",
                        JsonQuote(op.account), QuotablePrefix(r->str)));
    }
    const bool ok = r != nullptr && !r->is_error();
    switch (op.kind) {
      case OpKind::kEpoch:
        if (ok && on_epoch_) on_epoch_(*r);
        break;
      case OpKind::kFeedTail:
        if (ok && r->type == Reply::Type::kArray) {
          feed_id_ = "0-0";
          if (!r->elements.empty() &&
              r->elements[0].type == Reply::Type::kArray &&
              !r->elements[0].elements.empty()) {
            feed_id_ = r->elements[0].elements[0].str;
          }
        }
        break;
      case OpKind::kFeedRead:
        if (ok) OnFeed(*r);
        break;
      case OpKind::kPut: {
        if (--putting_[op.account] <= 0) putting_.erase(op.account);
        if (!ok) {
          // The batch failed: try again (an error reply is not retried).
          if (failed && op.mode == "restore") restore_ = true;
          if (failed && op.mode != "restore") {
            ++putting_[op.account];
            to_put_.push_back(std::move(op.publish));
          }
          break;
        }
        int64_t version = 0;
        int64_t changed = 0;
        if (r->type != Reply::Type::kArray || r->elements.size() != 3 ||
            !ParseInt(r->elements[0], &version) ||
            !ParseInt(r->elements[2], &changed)) {
          Error(
              fmt::format("redis FCALL pg2_acct_put for account {}: "
                          "unexpected reply",
                          JsonQuote(op.account)));
          break;
        }
        stored_.fetch_add(changed, std::memory_order_relaxed);
        if (changed) to_announce_.emplace_back(op.account, version);
        std::string& stored = r->elements[1].str;
        if (stored == op.doc && op.mode != "restore") {
          // What the host applied here is what Redis keeps.
          Held& held = held_[op.account];
          if (version >= held.version) held = {version, std::move(stored)};
          break;
        }
        Apply(op.account, version, std::move(stored), /*force=*/false);
        break;
      }
      case OpKind::kAnnounce:
        if (failed) to_announce_.emplace_back(op.account, op.version);
        break;
      case OpKind::kLoad: {
        if (!ok) {
          if (failed) to_load_.emplace(op.account, op.force);
          break;
        }
        int64_t version = 0;
        if (r->type != Reply::Type::kArray || r->elements.size() != 2) {
          Error(fmt::format("redis HMGET for account {}: unexpected reply",
                            JsonQuote(op.account)));
          break;
        }
        if (r->elements[0].type == Reply::Type::kNil) {
          // Nothing stored: the host's configuration decides (and an entry
          // on the feed, once someone stores it, loads it).
          held_.try_emplace(op.account);
          break;
        }
        if (!ParseInt(r->elements[0], &version) ||
            r->elements[1].type != Reply::Type::kString) {
          Error(fmt::format("redis HMGET for account {}: unexpected reply",
                            JsonQuote(op.account)));
          break;
        }
        Apply(op.account, version, std::move(r->elements[1].str), op.force);
        break;
      }
    }
  }
  held_count_.store(held_.size(), std::memory_order_relaxed);
}

void AccountStore::OnFeed(const Reply& reply) {
  if (reply.type == Reply::Type::kNil) return;  // nothing new
  // [[feed, [[id, [field, value, ...]], ...]]]
  if (reply.type != Reply::Type::kArray || reply.elements.size() != 1 ||
      reply.elements[0].type != Reply::Type::kArray ||
      reply.elements[0].elements.size() != 2 ||
      reply.elements[0].elements[1].type != Reply::Type::kArray) {
    Error("redis XREAD of the account feed: unexpected reply");
    return;
  }
  for (const Reply& entry : reply.elements[0].elements[1].elements) {
    if (entry.type != Reply::Type::kArray || entry.elements.size() != 2 ||
        entry.elements[0].type != Reply::Type::kString ||
        entry.elements[1].type != Reply::Type::kArray) {
      Error("redis XREAD of the account feed: unexpected entry");
      return;
    }
    feed_id_ = entry.elements[0].str;
    feed_entries_.fetch_add(1, std::memory_order_relaxed);
    const std::vector<Reply>& fields = entry.elements[1].elements;
    std::string account;
    int64_t version = 0;
    for (size_t i = 0; i + 1 < fields.size(); i += 2) {
      if (fields[i].str == "a") account = fields[i + 1].str;
      if (fields[i].str == "v") ParseInt(fields[i + 1], &version);
    }
    const auto it = held_.find(account);
    if (it == held_.end()) continue;  // never seen here: loaded on sight
    if (version > it->second.version) to_load_.try_emplace(account, false);
  }
}

void AccountStore::Apply(const std::string& account, int64_t version,
                         std::string doc, bool force) {
  Held& held = held_[account];
  if (!force && (version < held.version ||
                 (version == held.version && doc == held.doc))) {
    return;
  }
  // The record may be gone (reclaimed, or never seen here): a state is
  // applied only to an account this instance has.
  if (!force && held.version == 0 &&
      !SyncAccess::HasAccount(enforcer_, account)) {
    held.version = version;
    held.doc = std::move(doc);
    return;
  }
  absl::StatusOr<AccountUpdate> update = DecodeAccountDoc(account, doc);
  held.version = version;
  held.doc = std::move(doc);
  if (!update.ok()) {
    Error(std::string(update.status().message()));
    return;
  }
  if (absl::Status s = SyncAccess::ApplyAccount(enforcer_, *update); !s.ok()) {
    Error(fmt::format("stored state of account {}: {}", JsonQuote(account),
                      std::string(s.message())));
    return;
  }
  loaded_.fetch_add(1, std::memory_order_relaxed);
}

void AccountStore::OnDataLoss() { restore_ = true; }

bool AccountStore::Idle() const {
  return !in_flight_ && to_put_.empty() && to_announce_.empty() &&
         to_load_.empty() && !restore_;
}

void AccountStore::Error(const std::string& what) {
  errors_.fetch_add(1, std::memory_order_relaxed);
  if (on_error_) on_error_(what);
}

AccountStoreStats AccountStore::Stats() const {
  AccountStoreStats s;
  s.held = held_count_.load(std::memory_order_relaxed);
  s.loaded = loaded_.load(std::memory_order_relaxed);
  s.stored = stored_.load(std::memory_order_relaxed);
  s.feed_entries = feed_entries_.load(std::memory_order_relaxed);
  s.errors = errors_.load(std::memory_order_relaxed);
  s.sightings_dropped =
      link_.sightings_overflow.load(std::memory_order_relaxed);
  return s;
}

}  // namespace plangate::internal
