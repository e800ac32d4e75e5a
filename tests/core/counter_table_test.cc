// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "core/counter_table.h"

#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

namespace plangate::internal {
namespace {

SubjectRef Insert(CounterTable& t, Scope s, std::string_view a,
                  std::string_view sub) {
  auto ref = t.FindOrInsert(s, a, sub, t.Hash(s, a, sub), 0);
  REQUIRE(ref.ok());
  return *ref;
}

TEST_CASE("cell words pack generation, tag and count", "[cell]") {
  const uint64_t w = Cell::Pack(0x1ab, 0x3fff, kMaxCount);
  CHECK(Cell::Gen(w) == 0xab);
  CHECK(Cell::Tag(w) == 0x3fff);
  CHECK(Cell::Count(w) == kMaxCount);
  CHECK(Cell::Count(Cell::Pack(1, 2, 12345)) == 12345);
  CHECK(Cell::Tag(Cell::Pack(1, 0x4001, 0)) == 1);  // tag wraps at 2^14
}

TEST_CASE("the account lookup builds the key and hash Find and Hash do",
          "[table]") {
  CounterTable t(1000);
  // Every id length across the inline capacity (48 bytes) and past it.
  std::vector<std::string> ids;
  for (size_t len = 0; len <= 70; ++len) {
    std::string id;
    for (size_t i = 0; i < len; ++i)
      id += static_cast<char>('a' + (i * 7 + len) % 26);
    ids.push_back(id);
  }
  for (const std::string& id : ids) {
    INFO("id of " << id.size() << " bytes");
    uint64_t hash = 0;
    CHECK_FALSE(t.FindAccount(id, &hash));
    CHECK(hash == t.Hash(Scope::kAccount, id, {}));
    t.PrefetchAccount(id);  // a hint: changes nothing
    const SubjectRef inserted = Insert(t, Scope::kAccount, id, {});
    const SubjectRef found = t.FindAccount(id, &hash);
    CHECK(found.rec == inserted.rec);
    CHECK(found.index == inserted.index);
    CHECK(hash == t.Hash(Scope::kAccount, id, {}));
    // The general lookup and a second insert find the same record (an
    // empty id too: it once missed every time and took a new record).
    CHECK(t.Find(Scope::kAccount, id, {}, hash).rec == inserted.rec);
    CHECK(Insert(t, Scope::kAccount, id, {}).rec == inserted.rec);
  }
  // One byte more or less, or another scope, is another key.
  uint64_t hash = 0;
  CHECK_FALSE(t.FindAccount("abcdefghx", &hash));
  Insert(t, Scope::kKey, "zzz", {});
  CHECK_FALSE(t.FindAccount("zzz", &hash));
}

TEST_CASE("keys compare exactly, whatever the hash says", "[table]") {
  CounterTable t(100);
  const SubjectRef a = Insert(t, Scope::kKey, "acme", "bc");
  const SubjectRef b = Insert(t, Scope::kKey, "acmeb", "c");
  const SubjectRef c = Insert(t, Scope::kUser, "acme", "bc");
  CHECK(a.rec != b.rec);
  CHECK(a.rec != c.rec);
  // Same hash forced: the key comparison still tells them apart.
  const uint64_t h = 42;
  auto x = t.FindOrInsert(Scope::kKey, "x", "1", h, 0);
  auto y = t.FindOrInsert(Scope::kKey, "y", "1", h, 0);
  REQUIRE(x.ok());
  REQUIRE(y.ok());
  CHECK(x->rec != y->rec);
  CHECK(t.Find(Scope::kKey, "x", "1", h).rec == x->rec);
  CHECK(t.Find(Scope::kKey, "y", "1", h).rec == y->rec);
  CHECK(!t.Find(Scope::kKey, "z", "1", h));
  CHECK(t.size() == 5);
}

TEST_CASE("long keys live out of line and compare exactly", "[table]") {
  CounterTable t(10);
  const std::string long_a(200, 'a');
  std::string long_b = long_a;
  long_b.back() = 'b';
  const SubjectRef a = Insert(t, Scope::kUser, "acct", long_a);
  const SubjectRef b = Insert(t, Scope::kUser, "acct", long_b);
  CHECK(a.rec != b.rec);
  Scope s;
  std::string account, sub;
  CounterTable::ReadKey(*b.rec, &s, &account, &sub);
  CHECK(s == Scope::kUser);
  CHECK(account == "acct");
  CHECK(sub == long_b);
}

TEST_CASE("reclaimed slots are reused under a new generation", "[table]") {
  CounterTable t(4);
  const SubjectRef a = Insert(t, Scope::kKey, "acct", "a");
  a.rec->cells[0].store(Cell::Pack(a.gen, 1, 5));
  CHECK(t.Reclaim([](SubjectRecord&) { return true; }, 0, 0) == 1);
  CHECK(t.size() == 0);
  CHECK(!t.Find(Scope::kKey, "acct", "a", t.Hash(Scope::kKey, "acct", "a")));
  // A stale holder of `a` sees the generation change in every cell.
  CHECK(Cell::Gen(a.rec->cells[0].load()) != a.gen);
  // Fill to capacity: max_subjects is enforced.
  for (int i = 0; i < 4; ++i) Insert(t, Scope::kKey, "acct", std::to_string(i));
  auto full = t.FindOrInsert(Scope::kKey, "acct", "x",
                             t.Hash(Scope::kKey, "acct", "x"), 0);
  CHECK(absl::IsResourceExhausted(full.status()));
}

TEST_CASE("concurrent first sightings of one key make one record",
          "[table][concurrency]") {
  CounterTable t(1000);
  std::vector<SubjectRecord*> seen(4 * 200);
  std::vector<std::thread> threads;
  for (int th = 0; th < 4; ++th) {
    threads.emplace_back([&, th] {
      for (int i = 0; i < 200; ++i) {
        const std::string key = std::to_string(i);
        const uint64_t h = t.Hash(Scope::kKey, "acct", key);
        SubjectRef r = t.Find(Scope::kKey, "acct", key, h);
        if (!r) r = *t.FindOrInsert(Scope::kKey, "acct", key, h, 0);
        seen[th * 200 + i] = r.rec;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(t.size() == 200);
  for (int i = 0; i < 200; ++i) {
    for (int th = 1; th < 4; ++th) CHECK(seen[th * 200 + i] == seen[i]);
  }
}

}  // namespace
}  // namespace plangate::internal
