// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// counter_table.h: the lock-free counter cache.
//
// A fixed-capacity open-addressing table (linear probing) of 192-byte
// SubjectRecords, one per subject: an account, or a project, key or user of
// an account. A record holds every counter of its subject, so one lookup
// costs one record's cache lines, not one miss per limit.
//
// Thread safety. Find() and every read or CAS of a record's cells are
// lock-free and may run on any number of threads. FindOrInsert() and
// Reclaim() serialize on an internal mutex; they are the slow path (the
// first sighting of a subject, housekeeping).
//
// Invariants:
//  1. A record's state goes Empty -> Busy -> Live -> Dead -> Busy -> Live...
//     Its key, shape and hash are written only while it is Busy (under the
//     mutex) and published by the release store of Live.
//  2. Every record carries a generation, bumped on each reuse. Every cell
//     word embeds the low 8 bits of the generation of the record it was
//     written for. Reclaim marks the record Dead and rewrites each cell with
//     the next generation, so a thread that found the record before it died
//     fails its CAS (the generation differs) and looks the subject up again.
//     Only a thread stalled across 256 reuses of one slot could be fooled.
//  3. Keys are compared exactly: scope, account id and sub id, byte for
//     byte, after the 64-bit hash matches. Two tenants never share a record.
//  4. A key longer than the inline capacity lives in a heap buffer that
//     stays immutable until Reclaim retires it; retired buffers are freed
//     one full Reclaim cycle (at least `min_retire_ms`) later, when no
//     lookup can still be reading them.

#ifndef PLANGATE_CORE_COUNTER_TABLE_H_
#define PLANGATE_CORE_COUNTER_TABLE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "absl/base/optimization.h"
#include "absl/status/statusor.h"
#include "internal/huge_array.h"
#include "plangate/catalog.h"

namespace plangate::internal {

// A counter cell is one 64-bit word: [generation:8][tag:14][count:42].
// The tag names the window instance the count belongs to (its index modulo
// 2^14); a count whose tag is not the current window's is zero.
struct Cell {
  static constexpr int kCountBits = 42;
  static constexpr int kTagBits = 14;
  static constexpr uint64_t kCountMask = (uint64_t{1} << kCountBits) - 1;
  static constexpr uint64_t kTagMask = (uint64_t{1} << kTagBits) - 1;

  static constexpr uint64_t Pack(uint64_t gen, uint64_t tag, int64_t count) {
    return ((gen & 0xff) << (kCountBits + kTagBits)) |
           ((tag & kTagMask) << kCountBits) |
           (static_cast<uint64_t>(count) & kCountMask);
  }
  static constexpr uint8_t Gen(uint64_t w) {
    return static_cast<uint8_t>(w >> (kCountBits + kTagBits));
  }
  static constexpr uint32_t Tag(uint64_t w) {
    return static_cast<uint32_t>((w >> kCountBits) & kTagMask);
  }
  static constexpr int64_t Count(uint64_t w) {
    return static_cast<int64_t>(w & kCountMask);
  }
};
static_assert(kMaxCount == static_cast<int64_t>(Cell::kCountMask));

enum class RecordState : uint32_t {
  kEmpty = 0,
  kBusy = 1,
  kLive = 2,
  kDead = 3
};

struct AccountProfile;  // defined by the enforcer; immutable once published

struct alignas(64) SubjectRecord {
  static constexpr size_t kInlineKeyBytes = 48;
  // Key words in the first cache line: an id of up to 24 bytes is compared
  // without reading the third line.
  static constexpr size_t kHeadKeyWords = 3;

  // Line 0: what every check of the record reads (its identity, plan,
  // profile and billing period), with the first 24 bytes of the key.
  //
  // ctrl: [generation:24][unused:6][state:2] (bits 8..31 hold the
  // generation).
  std::atomic<uint32_t> ctrl{0};
  // Seconds since the epoch of the last check (for idle reclamation).
  std::atomic<uint32_t> last_used_s{0};
  // shape: [scope:8][account_len:16][sub_len:16] (low to high bits).
  std::atomic<uint64_t> shape{0};
  // meta, bits 0..24 (account records only; zero otherwise): [plan index +
  // 1:16][subscription state:8][registered:1] (low to high).
  std::atomic<uint64_t> meta{0};
  // What UpsertAccount said beyond plan and state; replaced whole; null
  // when it said nothing more (AccountProfile::empty).
  std::atomic<const AccountProfile*> profile{nullptr};
  // Billing-period cache (monthly): [start_ms:44][length_days:9] packed as
  // start_ms << 9 | length_days; 0 when empty.
  std::atomic<uint64_t> period_month{0};
  std::atomic<uint64_t> key_head[kHeadKeyWords] = {};

  // Line 1: the counters.
  std::atomic<uint64_t> cells[kCellsPerSubject] = {};

  // Line 2: what a check reads only on a probe, a long id, a rollover or a
  // wallet.
  std::atomic<uint64_t> hash{0};
  std::atomic<const char*> long_key{nullptr};
  std::atomic<int64_t> anchor_ms{0};
  // Prepaid balance in micro-units; never below zero.
  std::atomic<int64_t> wallet_micros{0};
  std::atomic<uint64_t> period_year{0};  // as period_month, annual
  std::atomic<uint64_t> key_tail[kInlineKeyBytes / 8 - kHeadKeyWords] = {};

  // Inline key word i (of kInlineKeyBytes / 8).
  std::atomic<uint64_t>& KeyWord(size_t i) {
    return i < kHeadKeyWords ? key_head[i] : key_tail[i - kHeadKeyWords];
  }
  const std::atomic<uint64_t>& KeyWord(size_t i) const {
    return i < kHeadKeyWords ? key_head[i] : key_tail[i - kHeadKeyWords];
  }
  // Period cache slot 0 (monthly) or 1 (annual).
  std::atomic<uint64_t>& PeriodCache(int slot) {
    return slot == 0 ? period_month : period_year;
  }

  static uint32_t Generation(uint32_t ctrl) { return ctrl >> 8; }
  static RecordState State(uint32_t ctrl) {
    return static_cast<RecordState>(ctrl & 3);
  }
};
static_assert(sizeof(SubjectRecord) == 192);
static_assert(offsetof(SubjectRecord, cells) == 64);
static_assert(offsetof(SubjectRecord, hash) == 128);

// A found record and the generation it was found under.
struct SubjectRef {
  SubjectRecord* rec = nullptr;
  uint32_t index = 0;
  uint8_t gen = 0;  // low 8 bits of the record's generation
  explicit operator bool() const { return rec != nullptr; }
};

// The key hash's parts (CounterTable::Hash): a small multiply-mix over
// 8-byte words (the folded 128-bit product of two words, as in
// wyhash-style designs), seeded per table so that ids chosen to collide in
// one process do not collide in another. Inline: the account lookup of
// every check builds and hashes its key from these.
namespace key_hash {
__extension__ typedef unsigned __int128 U128;
inline constexpr uint64_t kP0 = 0xa0761d6478bd642full;
inline constexpr uint64_t kP1 = 0xe7037ed1a0b428dbull;
inline constexpr uint64_t kP2 = 0x8ebc6af09c88c6e3ull;

inline uint64_t Mix(uint64_t a, uint64_t b) {
  const U128 r = static_cast<U128>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}
inline uint64_t Load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline uint64_t Load32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
// The n <= 8 bytes at p as one little-endian word, zero above them, from
// at most two loads (no memcpy call for a short id).
inline uint64_t LoadUpTo8(const char* p, size_t n) {
  if (n >= 8) return Load64(p);
  if (n >= 4) {
    // Two overlapping 4-byte loads; the overlap ORs equal bytes.
    return Load32(p) | (Load32(p + n - 4) << (8 * (n - 4)));
  }
  if (n == 0) return 0;
  return uint64_t{static_cast<uint8_t>(p[0])} |
         (uint64_t{static_cast<uint8_t>(p[n / 2])} << (8 * (n / 2))) |
         (uint64_t{static_cast<uint8_t>(p[n - 1])} << (8 * (n - 1)));
}
// shape: [scope:8][account_len:16][sub_len:16] (low to high bits).
inline uint64_t PackShape(Scope scope, size_t account_len, size_t sub_len) {
  return static_cast<uint64_t>(scope) | (uint64_t{account_len} << 8) |
         (uint64_t{sub_len} << 24);
}
}  // namespace key_hash

// The lookup form of a key: scope, lengths and (for short keys) the bytes
// padded to whole words, built once per lookup and compared word by word.
struct KeyProbe {
  KeyProbe(Scope scope, std::string_view account, std::string_view sub);
  std::string_view account;
  std::string_view sub;
  uint64_t shape = 0;
  // A key longer than kInlineKeyBytes is stored out of line (num_words 0);
  // an empty key is inline with no words.
  bool out_of_line = false;
  size_t num_words = 0;
  // The key's bytes, zero-padded to whole words; words[num_words..] unset.
  uint64_t words[SubjectRecord::kInlineKeyBytes / 8];
};

// The account record a new project, key or user record belongs to, and how
// many such records that account may have resident.
struct SubjectOwner {
  uint32_t index = 0;  // the account record's index
  uint32_t budget = 0;
};

class CounterTable {
 public:
  // Room for max_subjects live records at a load factor <= 0.7.
  explicit CounterTable(size_t max_subjects);
  ~CounterTable();
  CounterTable(const CounterTable&) = delete;
  CounterTable& operator=(const CounterTable&) = delete;

  // A seeded 64-bit hash of the key (not for the hash of any other table).
  uint64_t Hash(Scope scope, std::string_view account,
                std::string_view sub) const;
  uint64_t Hash(const KeyProbe& key) const;

  // Lock-free lookup of a Live record; empty ref when absent.
  SubjectRef Find(Scope scope, std::string_view account, std::string_view sub,
                  uint64_t hash) const;
  SubjectRef Find(const KeyProbe& key, uint64_t hash) const;
  // The account record of `id`, or an empty ref; *hash is Hash of the
  // account key (for an insert after a miss). The hot path's lookup: for
  // an id of up to kInlineKeyBytes whose record sits in its home slot it
  // builds, hashes and compares the key in registers, without a KeyProbe
  // or a call; anything else takes Find.
  ABSL_ATTRIBUTE_ALWAYS_INLINE SubjectRef FindAccount(std::string_view id,
                                                      uint64_t* hash) const;
  // FindAccount's slow half: any id, probing from the home slot.
  SubjectRef FindAccountSlow(std::string_view id, uint64_t* hash) const;
  // Asks the CPU to bring the cache lines of the account record of `id`'s
  // home slot in (a hint: no load, no fault, no effect on any result), so
  // that a check that follows finds them there.
  void PrefetchAccount(std::string_view id) const;

  // Finds the record or inserts a fresh one (cells zero, meta zero). The
  // insert path takes the table mutex. With an owner, the new record counts
  // against the owner's budget until reclaimed. ResourceExhausted when
  // full; FailedPrecondition when the owner has its budget resident;
  // InvalidArgument when an id is longer than 65535 bytes.
  absl::StatusOr<SubjectRef> FindOrInsert(Scope scope, std::string_view account,
                                          std::string_view sub, uint64_t hash,
                                          int64_t now_ms,
                                          const SubjectOwner* owner = nullptr);

  // Marks Dead every Live record for which `should_reclaim` returns true
  // (called under the mutex), except records that own live ones, and frees
  // long keys retired at least min_retire_ms ago. Returns the number
  // reclaimed.
  size_t Reclaim(const std::function<bool(SubjectRecord&)>& should_reclaim,
                 int64_t now_ms, int64_t min_retire_ms);

  // Calls fn on every Live record (slow; for reloads and reports).
  void ForEachLive(const std::function<void(SubjectRecord&)>& fn);

  SubjectRecord& at(uint32_t index) const { return (*records_)[index]; }
  // The index of a record of this table.
  uint32_t IndexOf(const SubjectRecord& rec) const {
    return static_cast<uint32_t>(&rec - &(*records_)[0]);
  }
  size_t capacity() const { return mask_ + 1; }
  size_t max_subjects() const { return max_subjects_; }
  size_t size() const { return live_.load(std::memory_order_relaxed); }
  // Records resident that record `index` owns (a figure; may be stale).
  uint32_t owned(uint32_t index) const {
    return owned_[index].load(std::memory_order_relaxed);
  }

  // Reads a record's key: scope, account id and sub id (slow path only).
  static void ReadKey(const SubjectRecord& rec, Scope* scope,
                      std::string* account, std::string* sub);

 private:
  static bool KeyEquals(const SubjectRecord& rec, const KeyProbe& key);

  uint64_t seed_ = 0;
  std::unique_ptr<HugeArray<SubjectRecord>> records_;
  size_t mask_ = 0;
  size_t max_subjects_ = 0;
  std::atomic<size_t> live_{0};
  size_t occupied_ = 0;  // Live + Dead + Busy slots; under mu_
  // Per slot: how many live records it owns (written under mu_, read
  // anywhere), and the slot of its owner (under mu_).
  static constexpr uint32_t kNoOwner = 0xffffffff;
  std::unique_ptr<std::atomic<uint32_t>[]> owned_;
  std::unique_ptr<uint32_t[]> owner_;

  std::mutex mu_;
  struct Retired {
    const char* key;
    int64_t retired_ms;
  };
  std::vector<Retired> retired_keys_;  // under mu_
};

namespace key_hash {
// The words and hash of an account id of at most kInlineKeyBytes, the same
// as KeyProbe and CounterTable::Hash(const KeyProbe&) make: whole words,
// then the tail's.
inline uint64_t AccountWords(uint64_t seed, std::string_view id,
                             uint64_t* words) {
  const size_t len = id.size();
  uint64_t h = seed ^ (PackShape(Scope::kAccount, len, 0) * kP2);
  const size_t whole = len / 8;
  for (size_t i = 0; i < whole; ++i) {
    words[i] = Load64(id.data() + 8 * i);
    h = Mix(words[i] ^ kP1, h ^ kP2);
  }
  if (len % 8 != 0) {
    words[whole] = LoadUpTo8(id.data() + 8 * whole, len % 8);
    h = Mix(words[whole] ^ kP1, h ^ kP2);
  }
  return h;
}
}  // namespace key_hash

inline SubjectRef CounterTable::FindAccount(std::string_view id,
                                            uint64_t* hash) const {
  using namespace key_hash;  // NOLINT: the hash's parts, above
  const size_t len = id.size();
  if (ABSL_PREDICT_FALSE(len > SubjectRecord::kInlineKeyBytes)) {
    return FindAccountSlow(id, hash);
  }
  const uint64_t shape = PackShape(Scope::kAccount, len, 0);
  const size_t num_words = (len + 7) / 8;
  uint64_t words[SubjectRecord::kInlineKeyBytes / 8];
  const uint64_t h = AccountWords(seed_, id, words);
  *hash = h;
  const size_t home = h & mask_;
  SubjectRecord& rec = (*records_)[home];
  // Acquire, as in Find: the key written before Live is visible.
  const uint32_t ctrl = rec.ctrl.load(std::memory_order_acquire);
  const RecordState state = SubjectRecord::State(ctrl);
  if (state == RecordState::kEmpty) return {};
  // The shape (scope and lengths) and the key words say it all: the hash,
  // on another line, is not read (an id of up to 24 bytes is in line 0).
  bool equal = state == RecordState::kLive &&
               rec.shape.load(std::memory_order_relaxed) == shape;
  for (size_t i = 0; equal && i < num_words; ++i) {
    // Relaxed, as in KeyEquals: validated by the ctrl re-check below.
    equal = rec.KeyWord(i).load(std::memory_order_relaxed) == words[i];
  }
  if (ABSL_PREDICT_TRUE(equal)) {
    // Orders the key reads above before the re-check of ctrl (as in Find).
    std::atomic_thread_fence(std::memory_order_acquire);
    if (rec.ctrl.load(std::memory_order_relaxed) == ctrl) {
      return {&rec, static_cast<uint32_t>(home),
              static_cast<uint8_t>(SubjectRecord::Generation(ctrl))};
    }
  }
  return FindAccountSlow(id, hash);  // probing on, or racing a reuse
}

inline void CounterTable::PrefetchAccount(std::string_view id) const {
  uint64_t h;
  if (ABSL_PREDICT_TRUE(id.size() <= SubjectRecord::kInlineKeyBytes)) {
    uint64_t words[SubjectRecord::kInlineKeyBytes / 8];
    h = key_hash::AccountWords(seed_, id, words);
  } else {
    h = Hash(KeyProbe(Scope::kAccount, id, {}));
  }
  const char* rec = reinterpret_cast<const char*>(&(*records_)[h & mask_]);
  static_assert(sizeof(SubjectRecord) == 3 * 64);
  // Read, keep in every cache level: the check reads line 0 (identity,
  // plan, period) and charges line 1 (cells); line 2 holds the rest of an
  // id longer than the head's words.
  __builtin_prefetch(rec, 0, 3);
  __builtin_prefetch(rec + 64, 0, 3);
  if (id.size() > SubjectRecord::kHeadKeyWords * 8) {
    __builtin_prefetch(rec + 128, 0, 3);
  }
}

}  // namespace plangate::internal

#endif  // PLANGATE_CORE_COUNTER_TABLE_H_
