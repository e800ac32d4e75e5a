// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// sync_link.h: what an Enforcer and its cluster sync component share.
//
// The hot path tells the sync component what changed without waiting for
// it and without locks:
//  - The change log. After a check or commit changes a record's cells it
//    compares the record's `logged` sequence (its own) with `consumed`
//    (the sync strand's): equal, nothing is queued, so it advances
//    `logged` (one CAS winner) and pushes (index, generation, sequence) on
//    `dirty`. The sync strand pops, stores the entry's sequence in
//    `consumed` and only then reads the cells. The cell CAS and the two
//    loads of the hot path are seq_cst; the sync strand's store and cell
//    loads are separated by a seq_cst fence (one per batch of entries) or
//    are seq_cst themselves (a Dekker pair): either the sync strand sees
//    the charge, or the charging thread sees the entry consumed and
//    queues the record again. Each word has one writer: `logged` the hot
//    path, `consumed` the sync strand.
//  - Closed windows. A check that rolls a cell over to a new window pushes
//    the word it replaced on `closed`: the final count of the old window,
//    which no one can read from the record any more.
//  - Readiness. For leasable limits, a cell's word in `ready` (the sync
//    strand's) names the window it last brought in step with Redis. A
//    check on a cell that is not ready admits at most a cold-start share.
//  - Ceilings. For leasable limits the sync thread also publishes, per
//    (record, cell), the count the cell may reach on this instance: the
//    count at its last read plus what this instance may still use (its
//    lease, or what the redis_down policy allows). Decisions add the
//    remote usage to the cell's count, so they report the cluster's
//    numbers; a check past the ceiling but within the hard cap is a
//    transient 429. A lowered
//    ceiling (rights given back) is stored before the sync reads the cell
//    for the usage it reports, and a check re-reads the ceiling after its
//    charge (both seq_cst), so no charge slips past a ceiling unreported.
//
// The record's cells hold this instance's usage only: checks and commits
// write them, the sync strand only reads them. What the other instances
// used comes back as remote usage (`remote`, the sync strand's), which
// checks and reports add to the cells' counts (docs/architecture.md, "The
// enforcer and the sync"). Threshold crossings the sync strand learns from
// Redis go on its own `events` queue.
//
// Shared account state (share_accounts): a check that meets an account
// this instance has no record of inserts one (with the catalog's default
// plan, or none: 403 unknown_account as before) and pushes it on
// `sightings`, so the sync loads the account's stored state; the host's
// UpsertAccount and SeedAccount queue what they applied on
// `accounts_out` (admin path, under accounts_mu) for the sync to store.
//
// Shared wallets (share_wallets): an account record's wallet_micros is
// this instance's lease of the account's balance in Redis. The hot path
// debits and refunds it as in local mode; the sync strand adds the grants
// and takes back what it returns (both relaxed RMWs on the one word, so
// every change is seen in full), and from its own grants and returns and
// the word's value knows what was spent. Per account record it publishes,
// as their only writer, the cluster balance (wallet_balance) and until when
// (Enforcer clock) the lease may be spent (wallet_valid_until): one
// lease_ttl after the send of the last answered call. A check on an
// account whose wallet the sync does not track yet pushes it on
// `wallets`. Credits (UpdateWallet) queue on credits_out.
//
// Thread safety: the queues are multi-producer, single-consumer (the sync
// strand). The atomics may be read anywhere. SyncAccess functions are the
// sync component's slow path; each says what it locks.

#ifndef PLANGATE_CORE_SYNC_LINK_H_
#define PLANGATE_CORE_SYNC_LINK_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/counter_table.h"
#include "core/event_queue.h"
#include "core/window.h"
#include "internal/huge_array.h"
#include "plangate/catalog.h"
#include "plangate/enforcer.h"

namespace plangate {
class Enforcer;
class Clock;
}  // namespace plangate

namespace plangate::internal {

class CounterTable;

struct ClosedWindow {
  uint32_t index = 0;
  uint8_t cell = 0;
  uint64_t word = 0;  // the cell word the rollover replaced
};

inline constexpr uint64_t PackDirty(uint32_t index, uint8_t gen) {
  return (uint64_t{index} << 8) | gen;
}

// A change-log entry: (index, gen) and the record's change sequence
// (24 bits, wrapping: only equality is ever tested).
inline constexpr uint32_t kChangeSeqMask = (1u << 24) - 1;
inline constexpr uint64_t PackChange(uint32_t index, uint8_t gen,
                                     uint32_t seq) {
  return (uint64_t{seq & kChangeSeqMask} << 40) | PackDirty(index, gen);
}
inline constexpr uint32_t ChangeIndex(uint64_t e) {
  return static_cast<uint32_t>(e >> 8);
}
inline constexpr uint8_t ChangeGen(uint64_t e) {
  return static_cast<uint8_t>(e & 0xff);
}
inline constexpr uint32_t ChangeSeq(uint64_t e) {
  return static_cast<uint32_t>(e >> 40) & kChangeSeqMask;
}

// A readiness word: the (record generation, window tag) the sync strand
// last brought a cell in step with Redis for (and published its ceiling);
// 0 before.
inline constexpr uint32_t ReadyWord(uint8_t gen, uint32_t tag) {
  return 0x80000000u | (uint32_t{gen} << 14) | (tag & 0x3fff);
}
// (The fast check builds ReadyWord(gen, 0) | tag once per check.)
static_assert(Cell::kTagMask == 0x3fff);

// An account state the host applied, for the sync to store in Redis.
struct AccountPublish {
  AccountUpdate update;
  bool seed = false;  // store only if Redis has no state for the account
};

// A wallet credit for the sync to apply in Redis, once per id.
struct WalletCredit {
  std::string account_id;
  std::string credit_id;
  int64_t micros = 0;
};

struct SyncLink {
  // Per (record, cell slot), the sync strand's two words a check of a
  // synced counter reads (their only writer): the remote usage (RemoteIn)
  // and ceiling + 1, 0 being "none" (Ceiling).
  struct Budget {
    std::atomic<uint64_t> remote{0};
    std::atomic<int64_t> ceiling{0};
  };
  static_assert(sizeof(Budget) == 16);
  // Everything a check reads or writes of the link for one record, in one
  // block of three cache lines: the budgets of cells 0-3 (line 0), of cells
  // 4-7 (line 1), and the change log's sequences with the readiness words
  // (line 2). A check of limits in the first four cells touches two lines
  // of one block; as four arrays (sequences, readiness, budgets) it
  // touched four lines, each in an array of its own.
  // The words keep their owners: `logged` the hot path's; `consumed`,
  // `ready` and the budgets the sync strand's. A check finds the block once
  // (Words) and reads each word from it; the SyncLink methods that take a
  // record index do the same for one word.
  struct alignas(64) RecordWords {
    Budget budgets[kCellsPerSubject];
    std::atomic<uint32_t> logged{0};
    std::atomic<uint32_t> consumed{0};
    // ReadyWord per cell.
    std::atomic<uint32_t> ready[kCellsPerSubject] = {};

    // See SyncLink::Ready.
    bool Ready(int cell, uint32_t ready_word) const {
      return ready[cell].load(std::memory_order_acquire) == ready_word;
    }
    // Remote usage in slot `slot` for (gen, tag), else 0: the word's
    // generation and tag compared as one field.
    int64_t RemoteIn(int slot, uint8_t gen, uint32_t tag) const {
      // Relaxed: a self-contained value, as a cell is.
      const uint64_t w = budgets[slot].remote.load(std::memory_order_relaxed);
      const uint64_t want =
          (uint64_t{gen} << Cell::kTagBits) | (uint64_t{tag} & Cell::kTagMask);
      return (w >> Cell::kCountBits) == want ? Cell::Count(w) : 0;
    }
    CellView RemoteView(int cell, uint8_t gen, uint32_t tag,
                        bool sliding) const {
      if (!sliding) return {RemoteIn(cell, gen, tag), 0};
      const uint32_t prev = (tag - 1) & Cell::kTagMask;
      return {RemoteIn(RemoteSlot(cell, true, tag), gen, tag),
              RemoteIn(RemoteSlot(cell, true, prev), gen, prev)};
    }
    int64_t Ceiling(int cell) const {
      return budgets[cell].ceiling.load(std::memory_order_acquire) - 1;
    }
    int64_t CeilingSeqCst(int cell) const {
      return budgets[cell].ceiling.load(std::memory_order_seq_cst) - 1;
    }
  };
  static_assert(sizeof(RecordWords) == 192);

  const RecordWords& Words(uint32_t index) const { return records_[index]; }

  SyncLink(size_t queue_capacity, size_t records)
      : dirty(queue_capacity),
        closed(queue_capacity),
        events(queue_capacity),
        sightings(queue_capacity),
        wallets(queue_capacity),
        wallet_balance(records),
        wallet_valid_until(records),
        wallet_wanted(records),
        records_(records) {}

  // The cluster balance of account record `index` of generation `gen` as
  // last heard, or -1 when the sync does not track its wallet (yet).
  int64_t WalletBalance(uint32_t index, uint8_t gen) const {
    // Acquire pairs with SetWallet's release: valid_until is as new.
    const uint64_t word = wallet_balance[index].load(std::memory_order_acquire);
    if (word == 0 || (word >> 56) != gen) return -1;
    return static_cast<int64_t>(word & kWalletMask) - 1;
  }
  int64_t WalletValidUntil(uint32_t index) const {
    return wallet_valid_until[index].load(std::memory_order_relaxed);
  }
  // The sync strand's (only writer) publication for record `index`.
  void SetWallet(uint32_t index, uint8_t gen, int64_t balance,
                 int64_t valid_until) {
    wallet_valid_until[index].store(valid_until, std::memory_order_relaxed);
    const uint64_t word =
        (uint64_t{gen} << 56) |
        (static_cast<uint64_t>(
             std::clamp<int64_t>(balance, -1, kWalletMask - 1) + 1) &
         kWalletMask);
    // Release: a check that sees the balance sees valid_until with it.
    wallet_balance[index].store(word, std::memory_order_release);
  }
  void ClearWallet(uint32_t index) {
    wallet_balance[index].store(0, std::memory_order_relaxed);
  }
  static constexpr int64_t kWalletMask = (int64_t{1} << 56) - 1;
  void QueueCredit(WalletCredit credit) {
    std::lock_guard<std::mutex> lock(accounts_mu);
    credits_out.push_back(std::move(credit));
  }
  std::vector<WalletCredit> TakeCredits() {
    std::lock_guard<std::mutex> lock(accounts_mu);
    return std::exchange(credits_out, {});
  }

  // Queues an applied account state for the sync to store (admin path).
  void PublishAccount(const AccountUpdate& update, bool seed) {
    std::lock_guard<std::mutex> lock(accounts_mu);
    accounts_out.push_back({update, seed});
  }
  std::vector<AccountPublish> TakePublished() {
    std::lock_guard<std::mutex> lock(accounts_mu);
    return std::exchange(accounts_out, {});
  }

  // Whether the sync strand brought cell `cell` of record `index` (of
  // generation `gen`) in step with Redis for the window of tag `tag`.
  // Acquire pairs with SetReady's release: the ceiling stored before it is
  // visible.
  bool Ready(uint32_t index, int cell, uint8_t gen, uint32_t tag) const {
    return records_[index].Ready(cell, ReadyWord(gen, tag));
  }
  // The sync strand's (only writer): marks, or unmarks (ready false), the
  // cell ready for window `tag`. An unchanged word is not stored again (the
  // check's cache keeps the line).
  void SetReady(uint32_t index, int cell, uint8_t gen, uint32_t tag,
                bool is_ready) {
    std::atomic<uint32_t>& w = records_[index].ready[cell];
    const uint32_t next = is_ready ? ReadyWord(gen, tag) : 0;
    if (w.load(std::memory_order_relaxed) == next) return;
    w.store(next, std::memory_order_release);
  }

  // Remote usage: the other instances' usage of a synced counter in one
  // window, as of the sync strand's last reply from Redis, as a cell word
  // [generation][tag][count] (the sync strand's only; the record's own
  // cells hold this instance's usage only). A fixed window's lives in the
  // slot of its cell; a sliding pair's windows alternate between the
  // pair's two slots by tag parity, so the previous window's stays
  // readable when the current one rolls over.
  static int RemoteSlot(int cell, bool sliding, uint32_t tag) {
    return sliding ? cell + static_cast<int>(tag & 1) : cell;
  }
  int64_t RemoteIn(uint32_t index, int slot, uint8_t gen, uint32_t tag) const {
    return records_[index].RemoteIn(slot, gen, tag);
  }
  // The remote part of a counter's view in the window of tag `tag`.
  CellView RemoteView(uint32_t index, int cell, uint8_t gen, uint32_t tag,
                      bool sliding) const {
    return records_[index].RemoteView(cell, gen, tag, sliding);
  }
  void SetRemote(uint32_t index, int slot, uint8_t gen, uint32_t tag,
                 int64_t count) {
    std::atomic<uint64_t>& w = records_[index].budgets[slot].remote;
    const uint64_t next =
        Cell::Pack(gen, tag, std::clamp<int64_t>(count, 0, kMaxCount));
    if (w.load(std::memory_order_relaxed) == next) return;
    w.store(next, std::memory_order_relaxed);
  }

  // Ceiling of cell `cell` of record `index`, or -1 for none.
  int64_t Ceiling(uint32_t index, int cell) const {
    return records_[index].Ceiling(cell);
  }
  // The check's re-read after its charge (see SetCeiling).
  int64_t CeilingSeqCst(uint32_t index, int cell) const {
    return records_[index].CeilingSeqCst(cell);
  }
  // seq_cst, not just release: when the sync lowers a ceiling it stores it
  // and then reads the cell (seq_cst) for the usage it reports; a check
  // charges the cell (seq_cst CAS) and then re-reads the ceiling
  // (CeilingSeqCst). In the single total order one of the two sees the
  // other: the charge is reported inside the old lease, or undone.
  // An unchanged ceiling is not stored again (the sync strand is the only
  // writer, so its relaxed load sees its own last store): the check's
  // cache keeps the line, and ordering only matters for a lowered one.
  void SetCeiling(uint32_t index, int cell, int64_t ceiling) {
    std::atomic<int64_t>& slot = records_[index].budgets[cell].ceiling;
    if (slot.load(std::memory_order_relaxed) == ceiling + 1) return;
    slot.store(ceiling + 1, std::memory_order_seq_cst);
  }

  // The change log: PackChange(index, gen, seq) of records a check or
  // commit changed, at most one entry per record not yet consumed.
  BoundedQueue<uint64_t> dirty;
  BoundedQueue<ClosedWindow> closed;  // rollovers of synced cells
  // Cluster-wide threshold crossings, the sync strand's (the Enforcer's
  // DeliverEvents drains them with its own).
  EventQueue events;
  std::atomic<uint64_t> events_dropped{0};
  // The change log's sequences of record `index`: of the last entry
  // pushed (the hot path's: written by checks and commits only) and of the
  // last one the sync strand consumed (the sync strand's only). Equal:
  // nothing queued.
  std::atomic<uint32_t>& logged(uint32_t index) const {
    return records_[index].logged;
  }
  std::atomic<uint32_t>& consumed(uint32_t index) const {
    return records_[index].consumed;
  }
  // Whether a record has changes the sync strand has not read yet.
  bool Unread(uint32_t index) const {
    return logged(index).load(std::memory_order_seq_cst) !=
           consumed(index).load(std::memory_order_seq_cst);
  }
  // PackDirty(index, gen) of account records a check inserted
  // (share_accounts only).
  BoundedQueue<uint64_t> sightings;
  std::atomic<uint64_t> sightings_overflow{0};
  // PackDirty(index, gen) of account records whose wallet a check needs
  // and the sync does not track yet (share_wallets only).
  BoundedQueue<uint64_t> wallets;
  std::mutex accounts_mu;
  std::vector<AccountPublish> accounts_out;  // guarded by accounts_mu
  std::vector<WalletCredit> credits_out;     // guarded by accounts_mu
  // gen << 56 | (balance + 1) per record (0: untracked), and its
  // valid-until: the sync's.
  HugeArray<std::atomic<uint64_t>> wallet_balance;
  HugeArray<std::atomic<int64_t>> wallet_valid_until;
  // count << 32 | debit: how many checks found this instance's lease
  // short, and the debit of the last: the hot path's (the sync reads it
  // to size the lease it asks for).
  HugeArray<std::atomic<uint64_t>> wallet_wanted;

  void NoteWalletShort(uint32_t index, int64_t debit) {
    // Relaxed: a hint; a racing check's increment may be lost, not the
    // news that some check was short.
    std::atomic<uint64_t>& w = wallet_wanted[index];
    const uint64_t old = w.load(std::memory_order_relaxed);
    w.store(
        (((old >> 32) + 1) << 32) |
            static_cast<uint64_t>(std::clamp<int64_t>(debit, 0, 0xffffffff)),
        std::memory_order_relaxed);
  }
  std::atomic<uint64_t> dirty_overflow{0};
  std::atomic<uint64_t> closed_overflow{0};

  // Redis answered within SyncOptions::unavailable_after.
  std::atomic<bool> up{false};
  // Instances assumed to share a counter (cold-start share divisor).
  std::atomic<uint32_t> instances{1};
  // Fixed at attach time.
  bool leases = true;
  bool share_accounts = false;
  bool share_wallets = false;
  double cold_start_share = 0.0;

  // The most a not-yet-ready leasable cell may hold: a share of the hard
  // cap split across the instances.
  int64_t ColdBudget(int64_t hard) const {
    const double n = instances.load(std::memory_order_relaxed);
    return static_cast<int64_t>(static_cast<double>(hard) * cold_start_share /
                                (n < 1 ? 1 : n));
  }

 private:
  HugeArray<RecordWords> records_;
};

// The facts the enforcer publishes for the sync strand to read what a
// record's cells mean (sync/record_view.h lists each with its writer).
struct CompiledCatalog;
struct PublishedFacts {
  CounterTable* table = nullptr;
  const std::atomic<const CompiledCatalog*>* catalog = nullptr;
};

// The sync component's access to an Enforcer's internals.
class SyncAccess {
 public:
  // Attaches `link`, which the Enforcer then owns (checks may still hold
  // it after Detach); FailedPrecondition when one is attached. Detach
  // clears it. Both take the admin mutex.
  static absl::StatusOr<SyncLink*> Attach(Enforcer& e,
                                          std::unique_ptr<SyncLink> link);
  static void Detach(Enforcer& e);

  static CounterTable& Table(Enforcer& e);
  static Clock& ClockOf(Enforcer& e);

  // The record table and the current compilation, for the sync's own
  // reading of what a record's cells mean (sync/record_view.h).
  static PublishedFacts Facts(Enforcer& e);
  // Whether the Enforcer delivers threshold events (has a sink).
  static bool WantsEvents(Enforcer& e);

  // Shared account state. The account id of account record `index` of
  // generation `gen`; false when the record is gone or not an account.
  static bool AccountIdOf(Enforcer& e, uint32_t index, uint8_t gen,
                          std::string* id);
  // Whether the enforcer has a record of the account.
  static bool HasAccount(Enforcer& e, std::string_view id);
  // Applies a stored account state here only (UpsertAccount without
  // publishing it back); takes the admin mutex.
  static absl::Status ApplyAccount(Enforcer& e, const AccountUpdate& update);
  // The wallet word of account record `index` (share_wallets); null when
  // the record is gone or of another generation.
  static std::atomic<int64_t>* WalletOf(Enforcer& e, uint32_t index,
                                        uint8_t gen);
};

}  // namespace plangate::internal

#endif  // PLANGATE_CORE_SYNC_LINK_H_
