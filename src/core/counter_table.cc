// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "core/counter_table.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "absl/base/attributes.h"
#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "fmt/format.h"

namespace plangate::internal {
namespace {

constexpr double kMaxLoad = 0.7;
// Inserts stop when this share of slots is occupied (Live, Busy or Dead) and
// no Dead slot is on the probe path, so probe sequences stay short.
constexpr double kMaxOccupied = 0.9;

uint32_t MakeCtrl(uint32_t gen, RecordState state) {
  return (gen << 8) | static_cast<uint32_t>(state);
}

using namespace key_hash;  // NOLINT: the hash's parts (counter_table.h)

uint64_t HashBytes(std::string_view s, uint64_t h) {
  const char* p = s.data();
  size_t n = s.size();
  h ^= n * kP0;
  for (; n >= 16; p += 16, n -= 16) {
    h = Mix(Load64(p) ^ kP1, Load64(p + 8) ^ h);
  }
  if (n >= 8) {
    h = Mix(Load64(p) ^ kP1, h ^ kP2);
    p += 8;
    n -= 8;
  }
  uint64_t tail = 0;
  if (n >= 4) {
    tail = (Load32(p) << 32) | Load32(p + n - 4);
  } else if (n > 0) {
    tail = (uint64_t{static_cast<uint8_t>(p[0])} << 16) |
           (uint64_t{static_cast<uint8_t>(p[n / 2])} << 8) |
           static_cast<uint8_t>(p[n - 1]);
  }
  return Mix(tail ^ kP2, h ^ kP1);
}

}  // namespace

KeyProbe::KeyProbe(Scope scope, std::string_view a, std::string_view s)
    : account(a), sub(s), shape(PackShape(scope, a.size(), s.size())) {
  const size_t len = a.size() + s.size();
  if (len > SubjectRecord::kInlineKeyBytes) {
    out_of_line = true;
    return;
  }
  num_words = (len + 7) / 8;
  if (s.empty()) {
    // An account id: build the words straight from the id.
    const char* p = a.data();
    for (size_t i = 0; i < num_words; ++i) {
      words[i] = LoadUpTo8(p + 8 * i, std::min<size_t>(8, len - 8 * i));
    }
    return;
  }
  char buf[SubjectRecord::kInlineKeyBytes] = {};
  // memcpy from an empty view's null data() is undefined: skip empties.
  if (!a.empty()) std::memcpy(buf, a.data(), a.size());
  std::memcpy(buf + a.size(), s.data(), s.size());
  std::memcpy(words, buf, num_words * 8);
}

CounterTable::CounterTable(size_t max_subjects)
    : max_subjects_(std::max<size_t>(max_subjects, 1)) {
  seed_ = absl::HashOf(reinterpret_cast<uintptr_t>(this)) | 1;
  const auto wanted =
      static_cast<size_t>(static_cast<double>(max_subjects_) / kMaxLoad) + 1;
  const size_t capacity = std::bit_ceil(std::max<size_t>(wanted, 16));
  records_ = std::make_unique<HugeArray<SubjectRecord>>(capacity);
  mask_ = capacity - 1;
  owned_ = std::make_unique<std::atomic<uint32_t>[]>(capacity);
  owner_ = std::make_unique<uint32_t[]>(capacity);
  std::fill_n(owner_.get(), capacity, kNoOwner);
}

CounterTable::~CounterTable() {
  for (size_t i = 0; i <= mask_; ++i) {
    delete[](*records_)[i].long_key.load(std::memory_order_relaxed);
  }
  for (const Retired& r : retired_keys_) delete[] r.key;
}

uint64_t CounterTable::Hash(const KeyProbe& key) const {
  uint64_t h = seed_ ^ (key.shape * kP2);
  if (key.out_of_line) {  // hash the bytes
    h = HashBytes(key.account, h);
    return key.sub.empty() ? h : HashBytes(key.sub, h);
  }
  for (size_t i = 0; i < key.num_words; ++i) {
    h = Mix(key.words[i] ^ kP1, h ^ kP2);
  }
  return h;
}

uint64_t CounterTable::Hash(Scope scope, std::string_view account,
                            std::string_view sub) const {
  return Hash(KeyProbe(scope, account, sub));
}

bool CounterTable::KeyEquals(const SubjectRecord& rec, const KeyProbe& key) {
  // Relaxed loads: the caller acquired ctrl == Live before and re-validates
  // ctrl after (seqlock style), so a torn view of a reused record is
  // discarded rather than trusted.
  if (rec.shape.load(std::memory_order_relaxed) != key.shape) return false;
  if (key.out_of_line) {
    const char* stored = rec.long_key.load(std::memory_order_acquire);
    // Long keys are never empty; a sub id may be (then nothing to compare).
    return stored != nullptr &&
           std::memcmp(stored, key.account.data(), key.account.size()) == 0 &&
           (key.sub.empty() ||
            std::memcmp(stored + key.account.size(), key.sub.data(),
                        key.sub.size()) == 0);
  }
  for (size_t i = 0; i < key.num_words; ++i) {
    if (rec.KeyWord(i).load(std::memory_order_relaxed) != key.words[i]) {
      return false;
    }
  }
  return true;
}

SubjectRef CounterTable::Find(Scope scope, std::string_view account,
                              std::string_view sub, uint64_t hash) const {
  return Find(KeyProbe(scope, account, sub), hash);
}

ABSL_ATTRIBUTE_NOINLINE SubjectRef
CounterTable::FindAccountSlow(std::string_view id, uint64_t* hash) const {
  const KeyProbe key(Scope::kAccount, id, {});
  *hash = Hash(key);
  return Find(key, *hash);
}

SubjectRef CounterTable::Find(const KeyProbe& key, uint64_t hash) const {
  for (;;) {  // restarts only when a matching record is reused under us
    bool restart = false;
    size_t i = hash & mask_;
    for (size_t probes = 0; probes <= mask_; ++probes, i = (i + 1) & mask_) {
      SubjectRecord& rec = (*records_)[i];
      // Acquire pairs with the release store of Live in FindOrInsert: the
      // key, shape and hash written before it are visible.
      const uint32_t ctrl = rec.ctrl.load(std::memory_order_acquire);
      const RecordState state = SubjectRecord::State(ctrl);
      if (state == RecordState::kEmpty) return {};
      if (state != RecordState::kLive ||
          rec.hash.load(std::memory_order_relaxed) != hash ||
          !KeyEquals(rec, key)) {
        continue;
      }
      // Orders the key reads above before the re-check of ctrl.
      std::atomic_thread_fence(std::memory_order_acquire);
      if (rec.ctrl.load(std::memory_order_relaxed) != ctrl) {
        restart = true;
        break;
      }
      return {&rec, static_cast<uint32_t>(i),
              static_cast<uint8_t>(SubjectRecord::Generation(ctrl))};
    }
    if (!restart) return {};
  }
}

absl::StatusOr<SubjectRef> CounterTable::FindOrInsert(
    Scope scope, std::string_view account, std::string_view sub, uint64_t hash,
    int64_t now_ms, const SubjectOwner* owner) {
  if (account.size() > 0xffff || sub.size() > 0xffff) {
    return absl::InvalidArgumentError(
        fmt::format("{} id: longer than 65535 bytes", ScopeName(scope)));
  }
  const KeyProbe key(scope, account, sub);
  std::lock_guard<std::mutex> lock(mu_);
  // Under the mutex no other insert or reclaim runs, so the probe path is
  // stable except for Live records' cells.
  size_t i = hash & mask_;
  size_t target = SIZE_MAX;
  for (size_t probes = 0; probes <= mask_; ++probes, i = (i + 1) & mask_) {
    SubjectRecord& rec = (*records_)[i];
    const uint32_t ctrl = rec.ctrl.load(std::memory_order_relaxed);
    const RecordState state = SubjectRecord::State(ctrl);
    if (state == RecordState::kEmpty) {
      if (target == SIZE_MAX) target = i;
      break;
    }
    if (state == RecordState::kDead) {
      if (target == SIZE_MAX) target = i;
      continue;
    }
    if (state == RecordState::kLive &&
        rec.hash.load(std::memory_order_relaxed) == hash &&
        KeyEquals(rec, key)) {
      return SubjectRef{&rec, static_cast<uint32_t>(i),
                        static_cast<uint8_t>(SubjectRecord::Generation(ctrl))};
    }
  }
  if (owner != nullptr &&
      owned_[owner->index].load(std::memory_order_relaxed) >= owner->budget) {
    return absl::FailedPreconditionError(
        fmt::format("{} subjects of this account resident (its max_subjects)",
                    owned_[owner->index].load(std::memory_order_relaxed)));
  }
  if (target == SIZE_MAX ||
      live_.load(std::memory_order_relaxed) >= max_subjects_) {
    return absl::ResourceExhaustedError(
        fmt::format("counter table full: {} subjects resident (max_subjects)",
                    live_.load(std::memory_order_relaxed)));
  }
  SubjectRecord& rec = (*records_)[target];
  const uint32_t old_ctrl = rec.ctrl.load(std::memory_order_relaxed);
  const bool was_empty = SubjectRecord::State(old_ctrl) == RecordState::kEmpty;
  if (was_empty && static_cast<double>(occupied_ + 1) >
                       kMaxOccupied * static_cast<double>(capacity())) {
    return absl::ResourceExhaustedError(
        "counter table full: too many occupied slots; raise max_subjects");
  }
  const uint32_t gen = SubjectRecord::Generation(old_ctrl) + 1;
  rec.ctrl.store(MakeCtrl(gen, RecordState::kBusy), std::memory_order_relaxed);

  const size_t len = account.size() + sub.size();
  rec.hash.store(hash, std::memory_order_relaxed);
  rec.shape.store(PackShape(scope, account.size(), sub.size()),
                  std::memory_order_relaxed);
  if (len > SubjectRecord::kInlineKeyBytes) {
    char* bytes = new char[len];
    if (!account.empty()) std::memcpy(bytes, account.data(), account.size());
    if (!sub.empty())
      std::memcpy(bytes + account.size(), sub.data(), sub.size());
    rec.long_key.store(bytes, std::memory_order_release);
  } else {
    for (size_t w = 0; w < SubjectRecord::kInlineKeyBytes / 8; ++w) {
      rec.KeyWord(w).store(w < key.num_words ? key.words[w] : 0,
                           std::memory_order_relaxed);
    }
  }
  rec.meta.store(0, std::memory_order_relaxed);
  rec.anchor_ms.store(0, std::memory_order_relaxed);
  rec.profile.store(nullptr, std::memory_order_relaxed);
  rec.wallet_micros.store(0, std::memory_order_relaxed);
  rec.period_month.store(0, std::memory_order_relaxed);
  rec.period_year.store(0, std::memory_order_relaxed);
  rec.last_used_s.store(static_cast<uint32_t>(now_ms / 1000),
                        std::memory_order_relaxed);
  for (auto& cell : rec.cells) {
    cell.store(Cell::Pack(gen, 0, 0), std::memory_order_relaxed);
  }
  // Relaxed: the counts are written under mu_ and read as figures only.
  owned_[target].store(0, std::memory_order_relaxed);
  owner_[target] = owner != nullptr ? owner->index : kNoOwner;
  if (owner != nullptr) {
    owned_[owner->index].fetch_add(1, std::memory_order_relaxed);
  }
  // Publishes everything above to lookups that acquire ctrl.
  rec.ctrl.store(MakeCtrl(gen, RecordState::kLive), std::memory_order_release);
  live_.fetch_add(1, std::memory_order_relaxed);
  if (was_empty) ++occupied_;
  return SubjectRef{&rec, static_cast<uint32_t>(target),
                    static_cast<uint8_t>(gen)};
}

size_t CounterTable::Reclaim(
    const std::function<bool(SubjectRecord&)>& should_reclaim, int64_t now_ms,
    int64_t min_retire_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  // Free long keys retired by an earlier cycle, long enough ago that no
  // lookup that saw them Live is still comparing them.
  std::erase_if(retired_keys_, [&](const Retired& r) {
    if (now_ms - r.retired_ms < min_retire_ms) return false;
    delete[] r.key;
    return true;
  });
  size_t reclaimed = 0;
  for (size_t i = 0; i <= mask_; ++i) {
    SubjectRecord& rec = (*records_)[i];
    const uint32_t ctrl = rec.ctrl.load(std::memory_order_acquire);
    // A record that owns live ones (an account with resident projects,
    // keys or users) stays until they are gone: its index names them.
    if (SubjectRecord::State(ctrl) != RecordState::kLive ||
        owned_[i].load(std::memory_order_relaxed) != 0 ||
        !should_reclaim(rec)) {
      continue;
    }
    const uint32_t gen = SubjectRecord::Generation(ctrl);
    // seq_cst: Dead is visible before the cells change generation, so a
    // thread that fails its CAS and retries its lookup skips this record.
    rec.ctrl.store(MakeCtrl(gen, RecordState::kDead),
                   std::memory_order_seq_cst);
    for (auto& cell : rec.cells) {
      cell.store(Cell::Pack(gen + 1, 0, 0), std::memory_order_seq_cst);
    }
    if (const char* key =
            rec.long_key.exchange(nullptr, std::memory_order_acq_rel)) {
      retired_keys_.push_back({key, now_ms});
    }
    if (owner_[i] != kNoOwner) {
      owned_[owner_[i]].fetch_sub(1, std::memory_order_relaxed);
      owner_[i] = kNoOwner;
    }
    live_.fetch_sub(1, std::memory_order_relaxed);
    ++reclaimed;
  }
  return reclaimed;
}

void CounterTable::ForEachLive(const std::function<void(SubjectRecord&)>& fn) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i <= mask_; ++i) {
    SubjectRecord& rec = (*records_)[i];
    if (SubjectRecord::State(rec.ctrl.load(std::memory_order_acquire)) ==
        RecordState::kLive) {
      fn(rec);
    }
  }
}

void CounterTable::ReadKey(const SubjectRecord& rec, Scope* scope,
                           std::string* account, std::string* sub) {
  const uint64_t shape = rec.shape.load(std::memory_order_relaxed);
  *scope = static_cast<Scope>(shape & 0xff);
  const size_t account_len = (shape >> 8) & 0xffff;
  const size_t sub_len = (shape >> 24) & 0xffff;
  std::string key(account_len + sub_len, '\0');
  if (key.size() > SubjectRecord::kInlineKeyBytes) {
    const char* p = rec.long_key.load(std::memory_order_acquire);
    if (p != nullptr) std::memcpy(key.data(), p, key.size());
  } else {
    char buf[SubjectRecord::kInlineKeyBytes];
    for (size_t w = 0; w < SubjectRecord::kInlineKeyBytes / 8; ++w) {
      const uint64_t word = rec.KeyWord(w).load(std::memory_order_relaxed);
      std::memcpy(buf + 8 * w, &word, 8);
    }
    std::memcpy(key.data(), buf, key.size());
  }
  *account = key.substr(0, account_len);
  *sub = key.substr(account_len);
}

}  // namespace plangate::internal
