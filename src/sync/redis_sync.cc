// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// redis_sync.cc: the cluster sync component (sync.h).
//
// One strand runs everything here. Each round:
//  1. Closed windows (rollovers the hot path reported) fold their final
//     counts into their counter states.
//  2. The change log's records are read: for each synced cell, the counter
//     state of the cell's window takes the cell's count as this instance's
//     own usage ("fold"); the cells hold nothing else, and this strand
//     never writes them.
//  3. Counters with unsent usage, unsynced leased counters and leases that
//     run low are sent as one pipeline of FCALL pg2_sync (one per counter,
//     each with this instance's cumulative usage and a fresh sequence
//     number; see redis_functions.h), after a GET of the dataset epoch.
//  4. Each reply brings the cluster total and this instance's lease and
//     down reserve. The strand publishes the counter's budget in words
//     only it writes (sync_link.h): the other instances' usage, which
//     checks add to the cell's count, and in lease mode the ceiling (own
//     usage + what this instance may still admit) and readiness.
//
// A counter state is keyed by (record index, cell, window tag). Its own
// usage never decreases except through refunds, and is sent whole (not as
// a delta), so a lost or repeated reply is harmless.
//
// Data loss. After every connect, and whenever the epoch GET of a round
// differs from the one held, the strand resolves the dataset epoch
// (INFO replication, then FCALL pg2_epoch: a new replication id means the
// server may have lost writes, and the epoch is replaced) before it sends
// any counter. Every call carries the epoch, what the instance last saw of
// the counter and the rights it holds, so the Function can tell a hash
// that lost writes and hold all grants until the instances re-sent.

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <cinttypes>
#include <condition_variable>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "core/counter_table.h"
#include "core/sync_link.h"
#include "plangate/clock.h"
#include "plangate/enforcer.h"
#include "plangate/events.h"
#include "plangate/sync.h"
#include "redis/cluster_client.h"
#include "sync/account_store.h"
#include "sync/counter_state.h"
#include "sync/record_view.h"
#include "sync/redis_functions.h"
#include "sync/sync_keys.h"
#include "sync/unsynced_memo.h"
#include "sync/wallet_sync.h"

namespace plangate {
namespace {

using internal::Cell;
using internal::ClosedWindow;
using internal::CounterState;
using internal::CounterTable;
using internal::DescribeRecord;
using internal::SubjectRecord;
using internal::SyncAccess;
using internal::SyncCellInfo;
using internal::SyncLink;
using internal::SyncRecordInfo;
using internal::WindowOfTag;
using internal::redis::ClusterClient;
using internal::redis::Command;
using internal::redis::Reply;

// How many windows back a late rollover may still be matched to its key.
constexpr int kMaxWindowsBack = 64;
// Rounds a state whose cell rolled waits for the rollover's final count.
constexpr int kMaxAwaitRounds = 200;
// pg2_sync reply flags (redis_functions.h).
constexpr int64_t kFlagStale = 4;
constexpr int64_t kFlagRecovering = 8;
constexpr int64_t kFlagEpochBehind = 16;

uint64_t StateKey(uint32_t index, uint8_t cell, uint32_t tag) {
  return (uint64_t{index} << 20) | (uint64_t{cell} << 16) |
         (tag & Cell::kTagMask);
}

std::string RandomInstanceId() {
  std::random_device rd;
  const uint64_t hi = rd();
  const uint64_t lo = rd();
  return fmt::format(
      "{:016x}",
      (hi << 32) ^ lo ^
          static_cast<uint64_t>(
              std::chrono::steady_clock::now().time_since_epoch().count()));
}

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

class RedisSync::Impl {
 public:
  Impl(Enforcer& enforcer, SyncOptions options, boost::asio::io_context* io)
      : enforcer_(enforcer),
        options_(std::move(options)),
        own_io_(io == nullptr ? std::make_unique<boost::asio::io_context>()
                              : nullptr),
        io_(io != nullptr ? *io : *own_io_),
        strand_(boost::asio::make_strand(io_)),
        timer_(strand_),
        table_(SyncAccess::Table(enforcer)),
        facts_(SyncAccess::Facts(enforcer)),
        clock_(SyncAccess::ClockOf(enforcer)) {
    if (options_.instance_id.empty()) options_.instance_id = RandomInstanceId();
  }

  absl::Status Start() {
    const size_t capacity =
        std::clamp<size_t>(table_.capacity(), 1024, size_t{1} << 20);
    auto link = std::make_unique<SyncLink>(capacity, table_.capacity());
    link->leases = options_.leases;
    link->cold_start_share = options_.cold_start_share;
    link->share_accounts = options_.share_accounts;
    link->share_wallets = options_.share_wallets;
    link->instances.store(
        static_cast<uint32_t>(std::max(1, options_.expected_instances)),
        std::memory_order_relaxed);
    auto attached = SyncAccess::Attach(enforcer_, std::move(link));
    if (!attached.ok()) return attached.status();
    link_ = *attached;
    client_ = ClusterClient::Create(strand_, options_.redis);
    client_->SetInitCommands({Command{"FUNCTION", "LOAD", "REPLACE",
                                      internal::kRedisFunctionLibrary}});
    if (options_.share_accounts) {
      accounts_ = std::make_unique<internal::AccountStore>(
          enforcer_, *link_, client_, options_.key_prefix,
          options_.account_poll_interval, EpochKey(),
          [this](const Reply& epoch) {
            // As the counters' epoch GET (OnReplies): another epoch, or
            // none, is a dataset that changed under this connection.
            if (epoch_ready_ &&
                (epoch.type != Reply::Type::kString || epoch.str != epoch_)) {
              epoch_ready_ = false;
            }
          },
          [this](const std::string& what) {
            errors_.fetch_add(1, std::memory_order_relaxed);
            std::lock_guard<std::mutex> lock(error_mu_);
            last_error_ = what;
          });
    }
    client_->SetOnReady([this] {
      if (connected_before_) {
        reconnects_.fetch_add(1, std::memory_order_relaxed);
      }
      connected_before_ = true;
      connected_.store(true, std::memory_order_relaxed);
      for (auto& [key, st] : states_) st->reassert = true;
      for (auto& st : retired_) st->reassert = true;
      // Nothing is sent before the epoch of this server is known.
      epoch_ready_ = false;
      check_replid_ = true;
      ResolveEpoch();
    });
    client_->SetOnDown([this](const absl::Status& why) {
      connected_.store(false, std::memory_order_relaxed);
      std::lock_guard<std::mutex> lock(error_mu_);
      last_error_ = std::string(why.message());
    });
    if (options_.share_wallets) {
      wallets_ = std::make_unique<internal::WalletSync>(
          enforcer_, *link_, client_, options_,
          [this]() -> const std::string& { return epoch_; },
          [this] { epoch_ready_ = false; },
          [this](const std::string& what) {
            errors_.fetch_add(1, std::memory_order_relaxed);
            std::lock_guard<std::mutex> lock(error_mu_);
            last_error_ = what;
          });
    }
    boost::asio::post(strand_, [this] {
      client_->Start();
      Tick();
    });
    if (own_io_ != nullptr) {
      work_ = std::make_unique<WorkGuard>(io_.get_executor());
      thread_ = std::thread([this] { io_.run(); });
    }
    return absl::OkStatus();
  }

  void Stop() {
    SyncAccess::Detach(enforcer_);
    std::promise<void> stopped;
    auto done = stopped.get_future();
    boost::asio::post(strand_, [this, &stopped] {
      stopping_ = true;
      timer_.cancel();
      client_->Stop();
      stopped.set_value();
    });
    if (own_io_ != nullptr) {
      done.wait();
      work_.reset();
      io_.stop();
      thread_.join();
    } else {
      // The host runs the io_context; it must still be running.
      done.wait();
    }
  }

  absl::Status Drain(std::chrono::milliseconds timeout, bool return_leases) {
    auto state = std::make_shared<DrainWait>();
    boost::asio::post(strand_, [this, state, return_leases] {
      draining_ = true;
      returning_leases_ = returning_leases_ || return_leases;
      drain_waiters_.push_back(state);
      Round();
    });
    std::unique_lock<std::mutex> lock(state->mu);
    if (!state->cv.wait_for(lock, timeout, [&] { return state->done; })) {
      return absl::DeadlineExceededError(fmt::format(
          "RedisSync::Drain: {} counters still had usage Redis had not "
          "acknowledged after {} ms",
          pending_.load(std::memory_order_relaxed), timeout.count()));
    }
    return absl::OkStatus();
  }

  SyncStats Stats() const {
    SyncStats s;
    s.connected = connected_.load(std::memory_order_relaxed);
    s.rounds = rounds_.load(std::memory_order_relaxed);
    s.round_trips = round_trips_.load(std::memory_order_relaxed);
    s.commands = commands_.load(std::memory_order_relaxed);
    s.retries = retries_.load(std::memory_order_relaxed);
    s.errors = errors_.load(std::memory_order_relaxed);
    s.timeouts = timeouts_.load(std::memory_order_relaxed);
    s.reconnects = reconnects_.load(std::memory_order_relaxed);
    s.lease_grants = lease_grants_.load(std::memory_order_relaxed);
    s.lease_units = lease_units_.load(std::memory_order_relaxed);
    s.lease_returns = lease_returns_.load(std::memory_order_relaxed);
    s.units_flushed = units_flushed_.load(std::memory_order_relaxed);
    s.events_won = events_won_.load(std::memory_order_relaxed);
    s.pending = pending_.load(std::memory_order_relaxed);
    s.pending_dropped = pending_dropped_.load(std::memory_order_relaxed);
    s.dirty_overflow = link_->dirty_overflow.load(std::memory_order_relaxed) +
                       link_->closed_overflow.load(std::memory_order_relaxed);
    const int64_t last = last_good_ms_.load(std::memory_order_relaxed);
    s.last_sync_age_ms = last == 0 ? -1 : SteadyMs() - last;
    s.redis_up = link_->up.load(std::memory_order_relaxed);
    s.counters = counters_.load(std::memory_order_relaxed);
    s.leased_counters = leased_.load(std::memory_order_relaxed);
    s.epoch_changes = epoch_changes_.load(std::memory_order_relaxed);
    s.recoveries = recoveries_.load(std::memory_order_relaxed);
    if (accounts_ != nullptr) {
      const internal::AccountStoreStats a = accounts_->Stats();
      s.accounts_held = a.held;
      s.accounts_loaded = a.loaded;
      s.accounts_stored = a.stored;
      s.account_feed_entries = a.feed_entries;
      s.account_errors = a.errors;
      s.account_sightings_dropped = a.sightings_dropped;
    }
    if (wallets_ != nullptr) {
      const internal::WalletSyncStats w = wallets_->Stats();
      s.wallets = w.wallets;
      s.wallet_credits = w.credits;
      s.wallet_granted = w.granted;
      s.wallet_returned = w.returned;
      s.wallet_errors = w.errors;
    }
    {
      std::lock_guard<std::mutex> lock(error_mu_);
      const internal::redis::ClusterStats& c = cluster_stats_;
      s.redirections = c.moved + c.ask;
      s.cluster_refreshes = c.refreshes;
      for (const internal::redis::ClusterNodeStats& node : c.nodes) {
        if (node.primary) ++s.cluster_primaries;
        s.cluster_nodes.push_back(SyncStats::Node{
            node.node, node.round_trips, node.errors, node.redirections});
      }
    }
    return s;
  }

  std::string LastError() const {
    std::lock_guard<std::mutex> lock(error_mu_);
    return last_error_;
  }

  const SyncOptions& options() const { return options_; }
  Enforcer& enforcer() const { return enforcer_; }

 private:
  using WorkGuard =
      boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  struct DrainWait {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
  };

  void Tick() {
    if (stopping_) return;
    Round();
    timer_.expires_after(options_.flush_interval);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) Tick();
    });
  }

  // ---- One round -------------------------------------------------------

  void Round() {
    if (stopping_) return;
    const int64_t now = clock_.NowMs();
    DrainClosed(now);
    DrainDirty(now);
    UpdateAvailability(now);
    if (!epoch_ready_) ResolveEpoch();
    if (!in_flight_) Send(now);
    // Accounts wait for the epoch: a loss must be known before a read.
    if (accounts_ != nullptr && epoch_ready_) accounts_->Round(SteadyMs());
    if (wallets_ != nullptr && epoch_ready_) wallets_->Round(SteadyMs());
    Housekeep();
    FinishDrainIfDone();
  }

  void DrainClosed(int64_t now) {
    ClosedWindow note;
    while (link_->closed.Pop(&note)) {
      const uint8_t gen = Cell::Gen(note.word);
      const uint32_t tag = Cell::Tag(note.word);
      CounterState* st = FindState(note.index, note.cell, tag);
      if ((st == nullptr || st->gen != gen) && Cell::Count(note.word) == 0) {
        continue;  // an empty window nobody tracked: nothing to report
      }
      if (st == nullptr || st->gen != gen) {
        // A window we never read while it was open: the cell held only
        // this instance's usage, as always.
        st = CreateState(note.index, gen, note.cell, tag, now);
        if (st == nullptr) {
          pending_dropped_.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
      }
      if (st->closed || st->gone) continue;
      st->own = Cell::Count(note.word);
      st->closed = true;
    }
  }

  // The change log, a batch at a time: every entry of the batch marked
  // consumed, one seq_cst fence, then the batch's records read. The fence
  // stands between each store of `consumed` and the cell loads after it,
  // as the seq_cst store does in Consume (the Dekker pair of sync_link.h:
  // a check that charged before the fence is seen by the read; one after
  // it sees the entry consumed and queues the record again). One fence per
  // batch instead of a locked store per record: the stores' misses on
  // lines the checks read overlap instead of stalling one by one.
  // Only what was queued when the round began: a record checked again
  // while the round reads queues itself again, and chasing those would
  // read a busy record many times a round; they wait for the next.
  void DrainDirty(int64_t now) {
    constexpr size_t kBatch = 256;
    uint64_t batch[kBatch];
    size_t left = link_->dirty.Backlog();
    while (left > 0) {
      size_t n = 0;
      while (n < kBatch && n < left && link_->dirty.Pop(&batch[n])) ++n;
      if (n == 0) return;
      left -= n;
      for (size_t i = 0; i < n; ++i) {
        // Relaxed: ordered before the cell loads by the fence below.
        link_->consumed(internal::ChangeIndex(batch[i]))
            .store(internal::ChangeSeq(batch[i]), std::memory_order_relaxed);
      }
      std::atomic_thread_fence(std::memory_order_seq_cst);
      for (size_t i = 0; i < n; ++i) ReadConsumed(batch[i], now);
    }
  }

  // One change-log entry: marked consumed, then the record read (the
  // store before the cell loads, seq_cst: sync_link.h).
  void Consume(uint64_t entry, int64_t now) {
    link_->consumed(internal::ChangeIndex(entry))
        .store(internal::ChangeSeq(entry), std::memory_order_seq_cst);
    ReadConsumed(entry, now);
  }

  // The record of a consumed entry, if it is still the one logged.
  void ReadConsumed(uint64_t entry, int64_t now) {
    const uint32_t index = internal::ChangeIndex(entry);
    const uint8_t gen = internal::ChangeGen(entry);
    const uint32_t ctrl = table_.at(index).ctrl.load(std::memory_order_acquire);
    if (SubjectRecord::State(ctrl) != internal::RecordState::kLive ||
        static_cast<uint8_t>(SubjectRecord::Generation(ctrl)) != gen) {
      return;
    }
    ReadRecord(index, gen, now);
  }

  // Folds every synced cell of a record; creates the states it lacks.
  void ReadRecord(uint32_t index, uint8_t gen, int64_t now) {
    SubjectRecord& rec = table_.at(index);
    bool described = false;
    SyncRecordInfo info;
    // Describes the record once, and remembers which cells are not synced.
    auto describe = [&] {
      described = true;
      if (!DescribeRecord(facts_, index, gen, now, &info)) return false;
      unsynced_.Remember(index, gen, info);
      return true;
    };
    // Cells known to hold no synced counter and no state (a fresh
    // record's unused cells carry its generation too): passed over.
    const uint32_t skip = unsynced_.Skippable(facts_, index, gen, now);
    int64_t steady = 0;
    for (int c = 0; c < kCellsPerSubject; ++c) {
      if ((skip >> c) & 1) continue;
      const uint64_t word = rec.cells[c].load(std::memory_order_seq_cst);
      if (Cell::Gen(word) != gen) continue;
      CounterState* st =
          FindState(index, static_cast<uint8_t>(c), Cell::Tag(word));
      if (st != nullptr && st->gen == gen) {
        // In use: keep (or get) a lease. (One clock read per record.)
        if (steady == 0) steady = SteadyMs();
        st->last_change = steady;
        if (internal::CapsSourceChanged(facts_, st->source, now)) {
          // An upgrade, a downgrade, new overrides or a reload: the
          // counter takes the caps it now has (its leases follow).
          if (!described && !describe()) return;
          TakeCaps(*st, info);
        }
        Fold(*st, now);
        // A cell still on a window that ended: a check denied for want of
        // the current window's lease rolls nothing, so prime it here.
        if (now < st->end_ms || !st->lease_mode) continue;
        if (!described && !describe()) return;
        for (const SyncCellInfo& x : info.cells) {
          if (x.cell == c && x.tag != st->tag) {
            TouchCurrent(index, gen, static_cast<uint8_t>(c), x.tag, now, info);
          }
        }
        continue;
      }
      if (!described && !describe()) return;
      const SyncCellInfo* ci = nullptr;
      for (const SyncCellInfo& x : info.cells) {
        if (x.cell == c) ci = &x;
      }
      if (ci == nullptr) continue;  // not a synced counter
      // A cell with usage gets a state for the window it holds; a leased
      // counter also gets one for the current window (priming), so that it
      // is ready before its first check.
      if (Cell::Count(word) != 0) {
        if (CounterState* s = CreateState(index, gen, static_cast<uint8_t>(c),
                                          Cell::Tag(word), now, &info)) {
          Fold(*s, now);
        }
      }
      if (ci->leasable && options_.leases && Cell::Tag(word) != ci->tag) {
        TouchCurrent(index, gen, static_cast<uint8_t>(c), ci->tag, now, info);
      }
    }
  }

  // The caps of the limit that now owns st's cell, when the cell still
  // means st's counter (one a reload reassigned starts from zero anyway).
  void TakeCaps(CounterState& st, const SyncRecordInfo& info) {
    st.source = info.source;
    for (const SyncCellInfo& x : info.cells) {
      if (x.cell == st.cell && internal::SameCounter(x, st.info)) {
        st.info = x;  // its window fields are the current window's
        break;
      }
    }
    UpdateLeaseMode(st);
  }

  // A change to a record whose cell still holds an older window than the
  // current one (nothing charged in it yet: a check denied for want of
  // the current window's lease charges nothing): the current window's
  // state is in use, created if need be (priming), so it keeps, or gets,
  // its lease. The cells are the hot path's: this strand never rolls one.
  void TouchCurrent(uint32_t index, uint8_t gen, uint8_t cell, uint32_t tag,
                    int64_t now, const SyncRecordInfo& info) {
    CounterState* cur = FindState(index, cell, tag);
    if (cur == nullptr || cur->gen != gen) {
      cur = CreateState(index, gen, cell, tag, now, &info);
      if (cur == nullptr) return;
    }
    cur->last_change = SteadyMs();
    Fold(*cur, now);
  }

  CounterState* FindState(uint32_t index, uint8_t cell, uint32_t tag) {
    const auto it = states_.find(StateKey(index, cell, tag));
    return it == states_.end() ? nullptr : it->second.get();
  }

  CounterState* CreateState(uint32_t index, uint8_t gen, uint8_t cell,
                            uint32_t tag, int64_t now,
                            const SyncRecordInfo* known = nullptr) {
    SyncRecordInfo local;
    if (known == nullptr) {
      if (!DescribeRecord(facts_, index, gen, now, &local)) {
        return nullptr;
      }
      known = &local;
    }
    const SyncCellInfo* ci = nullptr;
    for (const SyncCellInfo& x : known->cells) {
      if (x.cell == cell) ci = &x;
    }
    if (ci == nullptr) return nullptr;
    int64_t start = 0;
    int64_t end = 0;
    if (!WindowOfTag(facts_, index, *ci, tag, kMaxWindowsBack, &start, &end)) {
      return nullptr;
    }
    auto st = std::make_unique<CounterState>();
    st->index = index;
    st->gen = gen;
    st->cell = cell;
    st->tag = tag;
    st->start_ms = start;
    st->end_ms = end;
    st->info = *ci;
    st->source = known->source;
    st->lease_mode = options_.leases && ci->leasable && !ci->unlimited &&
                     ci->limit_index >= 0;
    st->key = internal::CounterKey(options_.key_prefix, known->account,
                                   known->scope, known->sub, ci->meter_name,
                                   WindowName(ci->window, ci->window_count),
                                   ci->mode, start);
    if (ci->mode == WindowMode::kSliding) {
      // The previous window's counter: its usage takes its weighted share
      // of the cap from this window's grants.
      st->prev_key = internal::CounterKey(
          options_.key_prefix, known->account, known->scope, known->sub,
          ci->meter_name, WindowName(ci->window, ci->window_count), ci->mode,
          start - (end - start));
    }
    CounterState* raw = st.get();
    unsynced_.NoteState(index, gen, cell);
    const uint64_t key = StateKey(index, cell, tag);
    auto& slot = states_[key];
    if (slot != nullptr && slot->Pending()) {
      // A reused record slot: the old state still owes Redis usage.
      retired_.push_back(std::move(slot));
    }
    slot = std::move(st);
    counters_.store(states_.size(), std::memory_order_relaxed);
    return raw;
  }

  // The other instances' usage in st's window as of the last reply: what
  // checks add to the cell's own count (SyncLink::remote).
  static int64_t RemoteUsage(const CounterState& st) {
    return st.synced ? std::max<int64_t>(0, st.total - st.reply_cum) : 0;
  }

  // How much more this instance may use of the counter, or -1 for no
  // bound beyond the hard cap.
  // Leases and reserves are never taken back from a silent instance
  // (redis_functions.h), so they stay good however long Redis is away.
  int64_t Allowance(const CounterState& st) const {
    const SyncCellInfo& ci = st.info;
    if (ci.unlimited || ci.limit_index < 0) return -1;
    if (st.down_baked) {
      switch (ci.down_policy) {
        case RedisDownPolicy::kFailOpen:
          return -1;
        case RedisDownPolicy::kFailClosed:
          return st.lease_mode ? st.LeaseLeft() : 0;
        case RedisDownPolicy::kLocalShare:
          return std::max<int64_t>(0,
                                   st.down_allowance - (st.own - st.down_own));
      }
    }
    if (!st.lease_mode) return -1;
    return st.LeaseLeft();
  }

  // Reads this instance's usage from the cell into `st` (the cell holds
  // nothing else: the sync strand only reads it), then publishes the
  // counter's budget. False when the cell no longer holds st's window.
  bool Fold(CounterState& st, int64_t now) {
    if (st.closed || st.gone) return false;
    // seq_cst: after the store of `consumed` or of a lowered ceiling
    // (sync_link.h, the Dekker pairs with the hot path).
    const uint64_t w =
        table_.at(st.index).cells[st.cell].load(std::memory_order_seq_cst);
    if (Cell::Gen(w) != st.gen) {
      st.gone = true;  // reclaimed: what we folded is all there is
      return false;
    }
    int64_t count = 0;
    if (Cell::Tag(w) == st.tag) {
      count = Cell::Count(w);
    } else {
      const bool current = st.start_ms <= now && now < st.end_ms;
      if (!current || st.own != 0) {
        // The hot path rolled it on; its final count is on `closed`.
        if (++st.await_rounds > kMaxAwaitRounds) {
          st.closed = true;
          pending_dropped_.fetch_add(1, std::memory_order_relaxed);
        }
        return false;
      }
      // Our window is current and the cell still holds an older one:
      // nothing was charged in ours yet (the first charge rolls it).
    }
    st.own = count;
    Publish(st, now);
    return true;
  }

  // The counter's budget, the sync strand's words (sync_link.h): the
  // other instances' usage, then the ceiling, then readiness (a check that
  // sees the readiness sees the ceiling and the remote usage). The words
  // are per cell, so only the current window's state publishes them, and
  // a sliding pair's previous window its remote usage (in the other slot).
  void Publish(CounterState& st, int64_t now) {
    const bool sliding = st.info.mode == WindowMode::kSliding;
    const int64_t len = st.end_ms - st.start_ms;
    const bool current = st.start_ms <= now && now < st.end_ms;
    const bool previous = sliding && st.end_ms <= now && now < st.end_ms + len;
    if (!current && !previous) return;
    link_->SetRemote(st.index, SyncLink::RemoteSlot(st.cell, sliding, st.tag),
                     st.gen, st.tag, RemoteUsage(st));
    if (!current || !st.info.leasable || !options_.leases) return;
    const int64_t allowance = Allowance(st);
    link_->SetCeiling(
        st.index, st.cell,
        allowance < 0 ? -1 : std::min(st.own + allowance, kMaxCount));
    if (st.synced || st.down_baked) {
      link_->SetReady(st.index, st.cell, st.gen, st.tag, true);
    }
  }

  // ---- Availability and failure policies ------------------------------

  void UpdateAvailability(int64_t now) {
    const int64_t steady = SteadyMs();
    const int64_t last = last_good_ms_.load(std::memory_order_relaxed);
    const int64_t since = last == 0 ? steady - started_ms_ : steady - last;
    // A dropped connection alone is not an outage: reconnects are quick,
    // and usage is only at risk once no round succeeds for a while.
    const bool up = since < options_.unavailable_after.count();
    const bool was_up = link_->up.load(std::memory_order_relaxed);
    if (up != was_up) link_->up.store(up, std::memory_order_relaxed);
    for (auto& [key, st] : states_) {
      if (st->closed || st->gone) continue;
      if (!up && !st->down_baked) {
        EnterDown(*st, now);  // at the outage, and states created during it
      } else if (up && st->down_baked) {
        st->down_baked = false;
        Fold(*st, now);
      }
    }
  }

  void EnterDown(CounterState& st, int64_t now) {
    const SyncCellInfo& ci = st.info;
    if (ci.unlimited || ci.limit_index < 0) return;
    st.down_baked = true;
    const int64_t lease_left = st.lease_mode ? st.LeaseLeft() : 0;
    st.down_own = st.own;
    switch (ci.down_policy) {
      case RedisDownPolicy::kFailOpen:
        st.down_allowance = 0;
        break;
      case RedisDownPolicy::kFailClosed:
        st.down_allowance = lease_left;
        break;
      case RedisDownPolicy::kLocalShare: {
        const int64_t n =
            std::max<int64_t>({st.instances, options_.expected_instances, 1});
        const int64_t used =
            st.synced ? st.total + (st.own - st.reply_cum) : st.own;
        const int64_t remainder = std::max<int64_t>(0, ci.hard - used);
        if (st.synced && st.lease_mode) {
          // The reserve Redis set aside for this instance: the reserves of
          // all instances and their leases together never pass the cap.
          st.down_allowance = lease_left + st.ReserveLeft();
        } else if (st.synced) {
          // Not leased (leases off, or a window that is not leasable): no
          // bound across instances beyond this share.
          st.down_allowance = std::max(lease_left, remainder / n);
        } else {
          // Never synced: the cold-start share, counted from zero usage
          // (what the hot path already admitted under it counts).
          st.down_allowance = link_->ColdBudget(ci.hard);
          st.down_own = 0;
        }
        break;
      }
    }
    Fold(st, now);
  }

  // ---- Sending ---------------------------------------------------------

  void Send(int64_t now) {
    if (!client_->ready() || !epoch_ready_) return;
    const int64_t steady = SteadyMs();
    std::vector<Command> batch;
    std::vector<CounterState*> sent;
    // The epoch first: a flush or restart between rounds shows here.
    batch.push_back(Command{"GET", EpochKey()});
    sent.push_back(nullptr);
    for (auto& [key, st] : states_) {
      if (batch.size() > options_.max_batch) break;
      if (!NeedsSend(*st, steady)) continue;
      if (!st->closed && !st->gone) Fold(*st, now);
      batch.push_back(MakeCommand(*st, now));
      sent.push_back(st.get());
    }
    for (auto& st : retired_) {
      if (batch.size() > options_.max_batch) break;
      if (st->in_flight || !st->Pending()) continue;
      batch.push_back(MakeCommand(*st, now));
      sent.push_back(st.get());
    }
    if (batch.size() == 1) return;
    in_flight_ = true;
    // States on the wire are neither erased nor dropped (Housekeep skips
    // in_flight ones), so the pointers stay valid until the reply.
    batch_states_ = std::move(sent);
    const size_t n = batch.size();
    client_->Execute(std::move(batch),
                     [this, n](absl::StatusOr<std::vector<Reply>> replies) {
                       OnReplies(n, std::move(replies));
                     });
  }

  bool NeedsSend(const CounterState& st, int64_t steady) const {
    if (st.in_flight) return false;
    if (st.Pending()) return true;
    if (st.release_lease) return true;
    // A window that ended gives its lease and reserve back.
    if (st.closed || st.gone) return st.HoldsRights();
    if (returning_leases_ && st.HoldsRights()) return true;
    // Counters in use learn the others' usage even when we add none.
    if (steady - st.last_change < options_.refresh_idle.count() &&
        steady - st.last_reply >= options_.refresh_interval.count()) {
      return true;
    }
    if (!st.lease_mode) return false;
    // An idle counter hands its lease back (see MakeCommand).
    if (steady - st.last_change > options_.lease_ttl.count() / 2) {
      return st.HoldsRights();
    }
    // Lease mode: top up when low; call before Redis counts this instance
    // silent (it would stop sharing the remainder with it).
    const int64_t left = st.lease - (st.own - st.reply_cum);
    const int64_t chunk = LeaseChunk(st);
    return left * 2 < chunk ||
           steady > st.lease_valid_until - options_.lease_ttl.count() / 4;
  }

  // The lease to hold: twice the usage per round (at least D_max), and far
  // from the cap a good share of the remainder, so bursts seldom wait.
  int64_t LeaseChunk(const CounterState& st) const {
    const int64_t n =
        std::max<int64_t>({st.instances, options_.expected_instances, 1});
    const int64_t share =
        std::max<int64_t>(0, st.info.hard - st.total) / (4 * n);
    return std::max<int64_t>(
        {options_.min_round_units, 2 * st.round_units, share, 1});
  }

  Command MakeCommand(CounterState& st, int64_t now) {
    const SyncCellInfo& ci = st.info;
    const bool capped = !ci.unlimited && ci.limit_index >= 0;
    if (st.own != st.sent || st.last_change == 0) st.last_change = SteadyMs();
    int64_t want = 0;
    const bool idle =
        SteadyMs() - st.last_change > options_.lease_ttl.count() / 2;
    if (st.release_lease || (returning_leases_ && st.HoldsRights()) ||
        st.closed || st.gone || (st.lease_mode && idle && st.own == st.sent)) {
      want = st.HoldsRights() ? -1 : 0;
    } else if (st.lease_mode) {
      const int64_t left = st.lease - (st.own - st.reply_cum);
      const int64_t chunk = LeaseChunk(st);
      if (left * 2 < chunk) want = chunk - std::max<int64_t>(0, left);
    }
    // A down reserve only where the redis_down policy spends one.
    int64_t rq = 0;
    if (want >= 0 && st.lease_mode && capped &&
        ci.down_policy == RedisDownPolicy::kLocalShare) {
      // The share the Function aims at (a quarter of what nobody else
      // holds, split over the active instances), as of the last reply.
      const int64_t n = std::max<int64_t>(st.instances, 1);
      rq = std::max<int64_t>(0, ci.hard - st.alloc + st.reserve) / (4 * n);
    }
    // Rights given back count as gone from now on, whatever becomes of
    // this call: lower the ceiling first, then read the usage to report
    // (sync_link.h), so a check that slipped past the old ceiling is
    // reported inside the rights it used.
    const int64_t used = std::max<int64_t>(0, st.own - st.reply_cum);
    bool shrink = false;
    if (want < 0) {
      const int64_t lease = std::min(st.lease, used);
      st.reserve = std::min(st.reserve, used - lease);
      st.lease = lease;
      shrink = true;
    } else if (rq < st.ReserveLeft()) {
      st.reserve =
          std::min(st.reserve, rq + std::max<int64_t>(0, used - st.lease));
      shrink = true;
    }
    if (shrink && st.down_baked) {
      st.down_allowance =
          std::min(st.down_allowance,
                   (st.own - st.down_own) + st.LeaseLeft() + st.ReserveLeft());
    }
    if (shrink && !st.closed && !st.gone) {
      Fold(st, now);  // publishes the lower ceiling
      Fold(st, now);  // and reads what was charged meanwhile
    }
    st.in_flight = true;
    if (st.own != st.sent) st.last_change = SteadyMs();
    st.sent = st.own;
    const int64_t used_this_round = st.own - st.last_sent_own;
    st.round_units = std::max(used_this_round, st.round_units * 7 / 8);
    st.last_sent_own = st.own;
    st.want = want;
    st.sent_seq = ++seq_;
    const bool sliding = !st.prev_key.empty();
    Command cmd{"FCALL",
                "pg2_sync",
                sliding ? "2" : "1",
                st.key,
                options_.instance_id,
                std::to_string(st.sent_seq),
                std::to_string(st.own),
                std::to_string(st.end_ms + options_.key_retention.count()),
                std::to_string(capped ? ci.hard : 0),
                std::to_string(want),
                std::to_string(options_.lease_ttl.count()),
                std::to_string(capped ? ci.nudge_at : 0),
                std::to_string(capped ? ci.limit : 0),
                epoch_,
                std::to_string(st.alloc),
                std::to_string(st.synced ? st.instances : 0),
                std::to_string(st.acked_seq),
                std::to_string(rq),
                std::to_string(st.LeaseLeft()),
                std::to_string(st.ReserveLeft()),
                std::to_string(options_.lease_ttl.count())};
    if (sliding) {
      // KEYS[2] goes after KEYS[1]; the window's geometry as of now, and
      // the previous window's count this instance's checks read (the cell
      // pair's second word), which Redis may have lost.
      cmd.insert(cmd.begin() + 4, st.prev_key);
      cmd.push_back(std::to_string(
          std::clamp<int64_t>(st.end_ms - now, 0, st.end_ms - st.start_ms)));
      cmd.push_back(std::to_string(st.end_ms - st.start_ms));
      cmd.push_back(std::to_string(PreviousCount(st)));
    }
    return cmd;
  }

  // The count of the window before st's, as the hot path's estimate reads
  // it (this instance's cells and the remote usage); 0 when none is there.
  int64_t PreviousCount(const CounterState& st) const {
    if (st.closed || st.gone) return 0;
    const SubjectRecord& rec = table_.at(st.index);
    const uint64_t cur = rec.cells[st.cell].load(std::memory_order_relaxed);
    const uint64_t prev =
        rec.cells[st.cell + 1].load(std::memory_order_relaxed);
    const uint32_t prev_tag = (st.tag - 1) & Cell::kTagMask;
    // This instance's part as the check's view reads it (the pair may not
    // have rolled over yet), and the other instances' as last heard.
    const int64_t own =
        Cell::Gen(cur) == st.gen && Cell::Gen(prev) == st.gen
            ? internal::ViewOf(cur, prev, st.tag, true).previous
            : (Cell::Gen(cur) == st.gen && Cell::Tag(cur) == prev_tag
                   ? Cell::Count(cur)
                   : 0);
    return own + link_->RemoteIn(st.index,
                                 SyncLink::RemoteSlot(st.cell, true, prev_tag),
                                 st.gen, prev_tag);
  }

  // ---- The dataset epoch ----------------------------------------------

  std::string EpochKey() const { return options_.key_prefix + ":epoch"; }

  // INFO replication, then pg2_epoch: a replication id other than the one
  // of the last connection means the server may not have every write this
  // instance saw acknowledged (a restart without data, a failover to a
  // replica that lagged), so the epoch is replaced, once for the cluster
  // (pg2_epoch only replaces the epoch the caller knew).
  void ResolveEpoch() {
    if (epoch_in_flight_ || !client_->ready()) return;
    epoch_in_flight_ = true;
    client_->Execute(
        {Command{"INFO", "replication"}},
        [this](absl::StatusOr<std::vector<Reply>> replies) {
          if (!replies.ok() || replies->size() != 1 ||
              (*replies)[0].is_error()) {
            epoch_in_flight_ = false;
            NoteError("redis INFO replication", replies);
            return;  // the next round tries again
          }
          const std::string replid = ReplicationId((*replies)[0].str);
          const bool loss = check_replid_ && !replid_.empty() &&
                            !replid.empty() && replid != replid_;
          client_->Execute(
              {Command{"FCALL", "pg2_epoch", "1", EpochKey(), epoch_,
                       loss ? "1" : "0"}},
              [this, replid](absl::StatusOr<std::vector<Reply>> epoch_replies) {
                epoch_in_flight_ = false;
                if (!epoch_replies.ok() || epoch_replies->size() != 1 ||
                    (*epoch_replies)[0].type != Reply::Type::kString) {
                  NoteError("redis FCALL pg2_epoch", epoch_replies);
                  return;
                }
                if (!replid.empty()) replid_ = replid;
                check_replid_ = false;
                AdoptEpoch((*epoch_replies)[0].str);
              });
        });
  }

  void AdoptEpoch(const std::string& epoch) {
    if (epoch != epoch_) {
      if (!epoch_.empty()) {
        epoch_changes_.fetch_add(1, std::memory_order_relaxed);
      }
      // Every account state applied here goes back to a dataset that lost
      // it.
      if (!epoch_.empty() && accounts_ != nullptr) accounts_->OnDataLoss();
      epoch_ = epoch;
      // Every counter tells the new dataset what it holds.
      for (auto& [key, st] : states_) st->reassert = true;
      for (auto& st : retired_) st->reassert = true;
    }
    epoch_ready_ = true;
  }

  // master_replid from an INFO replication text ("" when absent).
  static std::string ReplicationId(const std::string& info) {
    constexpr std::string_view kField = "master_replid:";
    const size_t at = info.find(kField);
    if (at == std::string::npos) return "";
    const size_t from = at + kField.size();
    const size_t end = info.find_first_of("\r\n", from);
    return info.substr(from, end == std::string::npos ? end : end - from);
  }

  void NoteError(std::string_view what,
                 const absl::StatusOr<std::vector<Reply>>& replies) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    std::string why;
    if (!replies.ok()) {
      why = std::string(replies.status().message());
    } else if (replies->size() == 1 && (*replies)[0].is_error()) {
      why = (*replies)[0].str;
    } else {
      why = "unexpected reply";
    }
    std::lock_guard<std::mutex> lock(error_mu_);
    last_error_ = fmt::format("{}: {}", what, why);
  }

  void OnReplies(size_t n, absl::StatusOr<std::vector<Reply>> replies) {
    in_flight_ = false;
    const int64_t now = clock_.NowMs();
    const int64_t steady = SteadyMs();
    std::vector<CounterState*> states = std::move(batch_states_);
    batch_states_.clear();
    states.resize(n, nullptr);
    for (CounterState* st : states) {
      if (st != nullptr) st->in_flight = false;
    }
    if (options_.redis.cluster) {
      std::lock_guard<std::mutex> lock(error_mu_);
      cluster_stats_ = client_->cluster_stats();
    }
    if (!replies.ok()) {
      errors_.fetch_add(1, std::memory_order_relaxed);
      retries_.fetch_add(1, std::memory_order_relaxed);
      if (absl::IsDeadlineExceeded(replies.status())) {
        timeouts_.fetch_add(1, std::memory_order_relaxed);
      }
      std::lock_guard<std::mutex> lock(error_mu_);
      last_error_ = std::string(replies.status().message());
      return;  // the next round sends the (cumulative) values again
    }
    round_trips_.fetch_add(1, std::memory_order_relaxed);
    rounds_.fetch_add(1, std::memory_order_relaxed);
    commands_.fetch_add(n - 1, std::memory_order_relaxed);
    last_good_ms_.store(steady, std::memory_order_relaxed);
    bool reload = false;
    uint32_t max_instances = 0;
    // The epoch GET: a missing or other epoch means the dataset changed
    // under this connection (FLUSHALL, or another instance saw a loss).
    if (!replies->empty()) {
      const Reply& e = (*replies)[0];
      if (e.type != Reply::Type::kString || e.str != epoch_) {
        epoch_ready_ = false;
      }
    }
    for (size_t i = 1; i < n && i < replies->size(); ++i) {
      CounterState* st = states[i];
      const Reply& r = (*replies)[i];
      if (st == nullptr) continue;
      if (r.type != Reply::Type::kArray || r.elements.size() != 6) {
        errors_.fetch_add(1, std::memory_order_relaxed);
        std::lock_guard<std::mutex> lock(error_mu_);
        last_error_ =
            r.is_error()
                ? fmt::format("redis FCALL pg2_sync on \"{}\": {}", st->key,
                              r.str)
                : fmt::format(
                      "redis FCALL pg2_sync on \"{}\": unexpected reply "
                      "(not an array of 6 integers)",
                      st->key);
        if (r.is_error() &&
            r.str.find("Function not found") != std::string::npos) {
          reload = true;
        }
        continue;
      }
      int64_t v[6];
      bool ok = true;
      for (int k = 0; k < 6; ++k) {
        if (r.elements[k].type != Reply::Type::kInteger) ok = false;
        v[k] = r.elements[k].integer;
      }
      if (!ok) {
        errors_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      ApplyReply(*st, v, now, steady);
      max_instances =
          std::max(max_instances,
                   static_cast<uint32_t>(std::max<int64_t>(1, st->instances)));
    }
    if (max_instances > 0) {
      const auto n_inst = std::max<uint32_t>(
          max_instances, static_cast<uint32_t>(options_.expected_instances));
      if (n_inst > link_->instances.load(std::memory_order_relaxed)) {
        link_->instances.store(n_inst, std::memory_order_relaxed);
      }
    }
    if (reload) client_->DropConnection();  // reconnecting loads it again
    if (!epoch_ready_ && !reload) ResolveEpoch();
    std::erase_if(retired_, [](const std::unique_ptr<CounterState>& st) {
      return !st->in_flight && !st->Pending();
    });
    FinishDrainIfDone();
  }

  // v: {t, r, d, n, flags, alloc} (redis_functions.h).
  void ApplyReply(CounterState& st, const int64_t v[6], int64_t now,
                  int64_t steady) {
    const int64_t total = v[0];
    const int64_t lease = v[1];
    const int64_t reserve = v[2];
    const int64_t instances = v[3];
    const int64_t flags = v[4];
    if (flags & kFlagEpochBehind) {
      // Nothing was applied: send again under the current epoch.
      epoch_ready_ = false;
      return;
    }
    const bool stale = (flags & kFlagStale) != 0;
    if (stale) {
      // A newer call of ours was applied first: its figures (or the next
      // call's) are the ones to take.
      st.want = 0;
      return;
    }
    {
      units_flushed_.fetch_add(
          static_cast<uint64_t>(std::max<int64_t>(0, st.sent - st.acked)),
          std::memory_order_relaxed);
      st.acked = st.sent;
      st.reply_cum = st.sent;
      st.acked_seq = st.sent_seq;
    }
    const bool recovering = (flags & kFlagRecovering) != 0;
    if (recovering && !st.recovering) {
      recoveries_.fetch_add(1, std::memory_order_relaxed);
    }
    st.recovering = recovering;
    st.reserve = reserve;
    st.alloc = v[5];
    st.reassert = false;
    if (lease > st.lease && st.want > 0) {
      lease_grants_.fetch_add(1, std::memory_order_relaxed);
      lease_units_.fetch_add(static_cast<uint64_t>(lease - st.lease),
                             std::memory_order_relaxed);
    }
    if (st.want < 0 && lease == 0 && reserve == 0) {
      lease_returns_.fetch_add(1, std::memory_order_relaxed);
      st.release_lease = false;
    }
    st.total = total;
    st.lease = lease;
    st.instances = std::max<int64_t>(1, instances);
    st.synced = true;
    st.lease_valid_until = steady + options_.lease_ttl.count() / 2;
    st.last_reply = steady;
    st.want = 0;
    if ((flags & 3) != 0) EmitEvents(st, flags & 3, total);
    UpdateLeaseMode(st);
    if (!st.closed && !st.gone) Fold(st, now);
  }

  // Leasable counters always admit within a lease (when leases are on):
  // the server never grants more than the remainder, so instances together
  // never pass the cap; far from it leases are large.
  void UpdateLeaseMode(CounterState& st) {
    const SyncCellInfo& ci = st.info;
    const bool leased = options_.leases && ci.leasable && !ci.unlimited &&
                        ci.limit_index >= 0 && !st.closed && !st.gone;
    if (!leased && st.HoldsRights()) st.release_lease = true;
    st.lease_mode = leased;
  }

  void EmitEvents(const CounterState& st, int64_t flags, int64_t total) {
    const SyncCellInfo& ci = st.info;
    if (ci.limit_index < 0 || ci.plan < 0) return;
    for (int bit = 0; bit < 2; ++bit) {
      if ((flags & (int64_t{1} << bit)) == 0) continue;
      internal::RawEvent e;
      e.record = st.index;
      e.gen = st.gen;
      e.kind = static_cast<uint8_t>(bit == 0 ? ThresholdKind::kSoftNudge
                                             : ThresholdKind::kHardCap);
      e.limit_index = static_cast<uint16_t>(ci.limit_index);
      e.plan = ci.plan;
      e.window_start_ms = st.start_ms;
      e.window_end_ms = st.end_ms;
      e.used = total;
      e.limit = ci.limit;
      // Back to the Enforcer on this component's own queue, for a sink.
      if (SyncAccess::WantsEvents(enforcer_) && !link_->events.Push(e)) {
        link_->events_dropped.fetch_add(1, std::memory_order_relaxed);
      }
      events_won_.fetch_add(1, std::memory_order_relaxed);
    }
  }

  // ---- Housekeeping ----------------------------------------------------

  void Housekeep() {
    uint64_t pending = 0;
    uint64_t leased = 0;
    std::vector<uint64_t> erase;
    for (auto& [key, st] : states_) {
      if (st->Pending()) ++pending;
      if (st->lease_mode) ++leased;
      const bool finished = (st->closed || st->gone) && !st->in_flight &&
                            !st->Pending() && !st->HoldsRights();
      if (finished) erase.push_back(key);
    }
    for (auto& st : retired_) pending += st->Pending();
    for (const uint64_t key : erase) {
      states_.erase(key);
    }
    // Bound what is kept while Redis is down: closed windows go first.
    if (states_.size() > options_.max_pending) {
      std::vector<uint64_t> drop;
      for (auto& [key, st] : states_) {
        if (states_.size() - drop.size() <= options_.max_pending) break;
        if ((st->closed || st->gone) && !st->in_flight) drop.push_back(key);
      }
      for (const uint64_t key : drop) {
        if (states_[key]->Pending()) {
          pending_dropped_.fetch_add(1, std::memory_order_relaxed);
        }
        states_.erase(key);
      }
    }
    pending_.store(pending, std::memory_order_relaxed);
    leased_.store(leased, std::memory_order_relaxed);
    counters_.store(states_.size(), std::memory_order_relaxed);
  }

  void FinishDrainIfDone() {
    if (!draining_ || drain_waiters_.empty()) return;
    if (wallets_ != nullptr) {
      if (returning_leases_) wallets_->ReturnAll(true);
      if (!wallets_->Idle()) return;
    }
    for (auto& [key, st] : states_) {
      if (st->Pending() || st->in_flight) return;
      if (returning_leases_ && st->HoldsRights()) return;
    }
    for (auto& st : retired_) {
      if (st->Pending()) return;
    }
    if (link_->dirty_overflow.load(std::memory_order_relaxed) == 0) {
      // Records marked dirty but not read yet would still owe usage.
      uint64_t entry;
      if (link_->dirty.Pop(&entry)) {
        // Put the work back through a normal round.
        Consume(entry, clock_.NowMs());
        return;
      }
    }
    for (auto& w : drain_waiters_) {
      std::lock_guard<std::mutex> lock(w->mu);
      w->done = true;
      w->cv.notify_all();
    }
    drain_waiters_.clear();
    draining_ = false;
    returning_leases_ = false;
    if (wallets_ != nullptr) wallets_->ReturnAll(false);
  }

  Enforcer& enforcer_;
  SyncOptions options_;
  std::unique_ptr<boost::asio::io_context> own_io_;
  boost::asio::io_context& io_;
  ClusterClient::Strand strand_;
  boost::asio::steady_timer timer_;
  CounterTable& table_;
  const internal::PublishedFacts facts_;  // read only: what records mean
  Clock& clock_;
  SyncLink* link_ = nullptr;
  std::shared_ptr<ClusterClient> client_;
  std::unique_ptr<internal::AccountStore> accounts_;  // share_accounts
  std::unique_ptr<internal::WalletSync> wallets_;     // share_wallets
  std::unique_ptr<WorkGuard> work_;
  std::thread thread_;

  // Strand-only state.
  absl::flat_hash_map<uint64_t, std::unique_ptr<CounterState>> states_;
  // The cells of records that hold no synced counter (ReadRecord).
  internal::UnsyncedMemo unsynced_;
  std::vector<std::unique_ptr<CounterState>> retired_;
  std::vector<CounterState*> batch_states_;
  std::vector<std::shared_ptr<DrainWait>> drain_waiters_;
  uint64_t seq_ = static_cast<uint64_t>(SteadyMs());
  bool in_flight_ = false;
  bool stopping_ = false;
  bool draining_ = false;
  bool returning_leases_ = false;
  bool connected_before_ = false;
  const int64_t started_ms_ = SteadyMs();
  // The dataset epoch every call carries, and the replication id of the
  // server it was resolved on.
  std::string epoch_;
  std::string replid_;
  bool epoch_ready_ = false;
  bool epoch_in_flight_ = false;
  bool check_replid_ = false;  // the first resolve after a connect

  mutable std::mutex error_mu_;
  std::string last_error_;
  // ClusterClient's figures after the last round (under error_mu_).
  internal::redis::ClusterStats cluster_stats_;

  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> rounds_{0}, round_trips_{0}, commands_{0}, retries_{0},
      errors_{0}, timeouts_{0}, reconnects_{0}, lease_grants_{0},
      lease_units_{0}, lease_returns_{0}, units_flushed_{0}, events_won_{0},
      pending_{0}, pending_dropped_{0}, counters_{0}, leased_{0},
      epoch_changes_{0}, recoveries_{0};
  std::atomic<int64_t> last_good_ms_{0};
};

// ---- RedisSync -----------------------------------------------------------

absl::StatusOr<std::unique_ptr<RedisSync>> RedisSync::Start(
    Enforcer& enforcer, SyncOptions options, boost::asio::io_context* io) {
  if (options.flush_interval.count() <= 0) {
    return absl::InvalidArgumentError(
        "SyncOptions.flush_interval: must be positive");
  }
  if (options.max_batch == 0) {
    return absl::InvalidArgumentError(
        "SyncOptions.max_batch: must be positive");
  }
  if (options.lease_ttl.count() <= 0) {
    return absl::InvalidArgumentError(
        "SyncOptions.lease_ttl: must be positive");
  }
  if (options.expected_instances < 1) {
    return absl::InvalidArgumentError(
        "SyncOptions.expected_instances: must be at least 1");
  }
  if (options.cold_start_share < 0 || options.cold_start_share > 1) {
    return absl::InvalidArgumentError(
        "SyncOptions.cold_start_share: must be in [0, 1]");
  }
  if (options.key_prefix.empty() ||
      options.key_prefix.find_first_of("{}") != std::string::npos) {
    return absl::InvalidArgumentError(
        "SyncOptions.key_prefix: must be non-empty, without '{' or '}'");
  }
  if (options.instance_id.find_first_of(" \t\r\n") != std::string::npos) {
    return absl::InvalidArgumentError(
        "SyncOptions.instance_id: must not contain whitespace");
  }
  auto impl = std::make_unique<Impl>(enforcer, std::move(options), io);
  if (absl::Status s = impl->Start(); !s.ok()) return s;
  return std::unique_ptr<RedisSync>(new RedisSync(std::move(impl)));
}

RedisSync::RedisSync(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RedisSync::~RedisSync() { impl_->Stop(); }

absl::Status RedisSync::Drain(std::chrono::milliseconds timeout) {
  return impl_->Drain(timeout, /*return_leases=*/true);
}

absl::Status RedisSync::Flush(std::chrono::milliseconds timeout) {
  return impl_->Drain(timeout, /*return_leases=*/false);
}

SyncStats RedisSync::Stats() const { return impl_->Stats(); }

const std::string& RedisSync::instance_id() const {
  return impl_->options().instance_id;
}

std::string RedisSync::LastError() const { return impl_->LastError(); }

std::string RedisSync::PrometheusText() const {
  const SyncStats s = Stats();
  const EnforcerStats e = impl_->enforcer().Stats();
  std::string out;
  const auto metric = [&out](std::string_view name, std::string_view type,
                             std::string_view help, auto value) {
    out += fmt::format("# HELP plangate_{} {}\n# TYPE plangate_{} {}\n", name,
                       help, name, type);
    out += fmt::format("plangate_{} {}\n", name, value);
  };
  metric("sync_connected", "gauge", "1 when the Redis connection is ready.",
         s.connected ? 1 : 0);
  metric("sync_redis_up", "gauge",
         "1 while Redis answered within unavailable_after.",
         s.redis_up ? 1 : 0);
  metric("sync_rounds_total", "counter", "Flush rounds Redis answered.",
         s.rounds);
  metric("sync_round_trips_total", "counter", "Pipelines Redis answered.",
         s.round_trips);
  metric("sync_commands_total", "counter", "FCALLs Redis answered.",
         s.commands);
  metric("sync_retries_total", "counter",
         "Rounds that failed and are sent again.", s.retries);
  metric("sync_errors_total", "counter", "Failed rounds and error replies.",
         s.errors);
  metric("sync_timeouts_total", "counter",
         "Rounds failed by the command timeout.", s.timeouts);
  metric("sync_reconnects_total", "counter",
         "Connections made after the first.", s.reconnects);
  metric("sync_lease_grants_total", "counter", "Lease grants received.",
         s.lease_grants);
  metric("sync_lease_units_total", "counter", "Units granted in leases.",
         s.lease_units);
  metric("sync_lease_returns_total", "counter", "Leases handed back.",
         s.lease_returns);
  metric("sync_units_flushed_total", "counter", "Own usage Redis acknowledged.",
         s.units_flushed);
  metric("sync_events_won_total", "counter",
         "Threshold events this instance delivered for the cluster.",
         s.events_won);
  metric("sync_pending_counters", "gauge",
         "Counters with usage Redis has not acknowledged.", s.pending);
  metric("sync_pending_dropped_total", "counter",
         "Closed windows dropped at max_pending (usage lost to Redis).",
         s.pending_dropped);
  metric("sync_dirty_overflow_total", "counter",
         "Change notices that found the sync queues full.", s.dirty_overflow);
  metric("sync_counters", "gauge", "Counters the sync component tracks.",
         s.counters);
  metric("sync_leased_counters", "gauge", "Counters in lease mode.",
         s.leased_counters);
  metric("sync_epoch_changes_total", "counter",
         "Dataset epochs replaced after Redis lost or may have lost writes.",
         s.epoch_changes);
  metric("sync_accounts_held", "gauge",
         "Accounts whose shared state this instance knows.", s.accounts_held);
  metric("sync_accounts_loaded_total", "counter",
         "Shared account states read from Redis and applied here.",
         s.accounts_loaded);
  metric("sync_accounts_stored_total", "counter",
         "Account states this instance wrote to Redis.", s.accounts_stored);
  metric("sync_account_errors_total", "counter",
         "Failed account-state batches, error replies and bad stored states.",
         s.account_errors);
  metric("sync_wallets", "gauge", "Shared wallets this instance tracks.",
         s.wallets);
  metric("sync_wallet_granted_micros_total", "counter",
         "Micro-units of wallet leases granted to this instance.",
         s.wallet_granted);
  metric("sync_recoveries_total", "counter",
         "Counters that waited for the cluster to re-send after a loss.",
         s.recoveries);
  metric("sync_last_sync_age_seconds", "gauge",
         "Seconds since the last good round (-1: never).",
         s.last_sync_age_ms < 0
             ? -1.0
             : static_cast<double>(s.last_sync_age_ms) / 1000.0);
  if (!s.cluster_nodes.empty()) {
    metric("sync_redis_redirections_total", "counter",
           "MOVED and ASK replies followed (Redis Cluster).", s.redirections);
    metric("sync_redis_cluster_refreshes_total", "counter",
           "Slot maps read (Redis Cluster).", s.cluster_refreshes);
    metric("sync_redis_cluster_primaries", "gauge",
           "Primaries in the slot map (Redis Cluster).", s.cluster_primaries);
    const auto per_node = [&out, &s](std::string_view name,
                                     std::string_view help, auto field) {
      out += fmt::format("# HELP plangate_{} {}\n# TYPE plangate_{} counter\n",
                         name, help, name);
      for (const SyncStats::Node& node : s.cluster_nodes) {
        out += fmt::format("plangate_{}{{node=\"{}\"}} {}\n", name, node.node,
                           node.*field);
      }
    };
    per_node("sync_redis_node_round_trips_total",
             "Pipelines a Redis Cluster node answered.",
             &SyncStats::Node::round_trips);
    per_node("sync_redis_node_errors_total",
             "Commands failed at a Redis Cluster node.",
             &SyncStats::Node::errors);
    per_node("sync_redis_node_redirections_total",
             "MOVED and ASK replies a Redis Cluster node answered.",
             &SyncStats::Node::redirections);
  }
  metric("subjects", "gauge", "Subjects in the counter cache.", e.subjects);
  metric("reservations_pending", "gauge", "Reservations not yet settled.",
         e.reservations_pending);
  metric("reservations_expired_total", "counter",
         "Reservations refunded by expiry.", e.reservations_expired);
  metric("subjects_reclaimed_total", "counter", "Idle subjects reclaimed.",
         e.subjects_reclaimed);
  metric("capacity_denials_total", "counter",
         "Checks denied because the counter cache was full.",
         e.capacity_denials);
  metric("events_delivered_total", "counter", "Threshold events delivered.",
         e.events_delivered);
  metric("events_dropped_total", "counter",
         "Threshold events dropped (queue full).", e.events_dropped);
  return out;
}

}  // namespace plangate
