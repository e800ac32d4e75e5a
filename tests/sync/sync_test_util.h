// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// sync_test_util.h: enforcers with a RedisSync, for the sync tests and the
// multi-process worker.

#ifndef PLANGATE_TESTS_SYNC_SYNC_TEST_UTIL_H_
#define PLANGATE_TESTS_SYNC_SYNC_TEST_UTIL_H_

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "plangate/catalog.h"
#include "plangate/enforcer.h"
#include "plangate/sync.h"

namespace plangate::testing {

// Jan 1 2026 00:00 UTC: billing periods are calendar months.
inline constexpr int64_t kAnchorMs = 1767225600000;

// One gateway instance: an Enforcer and its RedisSync.
struct Instance {
  std::unique_ptr<Enforcer> enforcer;
  std::unique_ptr<RedisSync> sync;

  Decision Check(const std::string& account,
                 const MeterAmount* amounts = nullptr, size_t n = 0) {
    CheckRequest req;
    req.account_id = account;
    req.amounts = std::span<const MeterAmount>(amounts, n);
    return enforcer->Check(req);
  }

  // One request priced at `micros` (a wallet plan): admitted (and
  // committed), or why not.
  int Spend(const std::string& account, int64_t micros) {
    CheckRequest req;
    req.account_id = account;
    req.wallet_micros = micros;
    const Decision d = enforcer->Check(req);
    if (d.admitted()) enforcer->Commit({.reservation = d.reservation});
    return d.status;
  }
};

inline SyncOptions TestSyncOptions(int port) {
  SyncOptions o;
  o.redis.port = port;
  o.redis.command_timeout = std::chrono::milliseconds(300);
  o.redis.connect_timeout = std::chrono::milliseconds(300);
  o.redis.reconnect_initial = std::chrono::milliseconds(20);
  o.redis.reconnect_max = std::chrono::milliseconds(200);
  o.flush_interval = std::chrono::milliseconds(5);
  o.unavailable_after = std::chrono::milliseconds(400);
  // The tests' counters are small: lease by measured rate, not by D_max.
  o.min_round_units = 1;
  return o;
}

// An Enforcer (max_subjects 1024) on `catalog_json` with a RedisSync
// attached; no account yet. Throws on setup errors (tests REQUIRE_NOTHROW
// around it).
inline Instance StartInstance(const std::string& catalog_json,
                              SyncOptions options) {
  auto catalog = Catalog::Parse(catalog_json);
  if (!catalog.ok())
    throw std::runtime_error(std::string(catalog.status().message()));
  EnforcerOptions eo;
  eo.max_subjects = 1024;
  auto enforcer = Enforcer::Create(*catalog, eo);
  if (!enforcer.ok())
    throw std::runtime_error(std::string(enforcer.status().message()));
  Instance inst;
  inst.enforcer = std::move(*enforcer);
  auto sync = RedisSync::Start(*inst.enforcer, std::move(options));
  if (!sync.ok())
    throw std::runtime_error(std::string(sync.status().message()));
  inst.sync = std::move(*sync);
  return inst;
}

// Registers `account` on `plan`, anchored at kAnchorMs; throws on error.
inline void Register(Instance& inst, const std::string& account,
                     const std::string& plan) {
  AccountUpdate up;
  up.account_id = account;
  up.plan_id = plan;
  up.anchor_ms = kAnchorMs;
  if (absl::Status s = inst.enforcer->UpsertAccount(up); !s.ok()) {
    throw std::runtime_error(std::string(s.message()));
  }
}

// StartInstance, then `account` registered (after the sync is attached,
// which primes its counters) and a Flush (Redis answered for them).
inline Instance MakeInstance(const std::string& catalog_json,
                             const std::string& account,
                             const std::string& plan, SyncOptions options) {
  Instance inst = StartInstance(catalog_json, std::move(options));
  Register(inst, account, plan);
  if (absl::Status s = inst.sync->Flush(std::chrono::milliseconds(10000));
      !s.ok()) {
    throw std::runtime_error(std::string(s.message()));
  }
  return inst;
}

// Spends `micros` per request on `account` from every instance in turn
// until `most` were admitted or none was for a second; returns the
// admitted.
inline int SpendEach(const std::vector<Instance*>& instances,
                     const std::string& account, int64_t micros, int most) {
  int admitted = 0;
  auto last = std::chrono::steady_clock::now();
  while (admitted < most && std::chrono::steady_clock::now() - last <
                                std::chrono::milliseconds(1000)) {
    for (Instance* inst : instances) {
      if (inst->Spend(account, micros) == 200) {
        ++admitted;
        last = std::chrono::steady_clock::now();
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return admitted;
}

// Waits until pred() or the deadline; returns pred().
template <typename Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace plangate::testing

#endif  // PLANGATE_TESTS_SYNC_SYNC_TEST_UTIL_H_
