// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// fault_cluster.cc: the fault harness of fault_cluster.h.

#include "sync/fault_cluster.h"

#include <fmt/format.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "plangate/enforcer.h"
#include "plangate/sync.h"
#include "support/redis_server.h"
#include "support/tcp_proxy.h"
#include "sync/sync_test_util.h"

namespace plangate::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

double MsSince(Clock::time_point t0, Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(t - t0).count();
}

// Sum of a hash field over the account's counter keys on `server`.
absl::StatusOr<int64_t> SumField(const RedisServer& server,
                                 const std::string& field) {
  auto keys = server.Command({"KEYS", "pg:{acme}:*"});
  if (!keys.ok()) return keys.status();
  int64_t sum = 0;
  for (const auto& k : keys->elements) {
    auto v = server.Command({"HGET", k.str, field});
    if (!v.ok()) return v.status();
    if (v->type == RedisServer::Reply::Type::kString) {
      sum += std::stoll(v->str);
    }
  }
  return sum;
}

constexpr char kWalletKey[] = "pg:{acme}:wallet";

// A field of the account's wallet hash on `server` (0 when missing).
absl::StatusOr<int64_t> WalletField(const RedisServer& server,
                                    const std::string& field) {
  auto v = server.Command({"HGET", kWalletKey, field});
  if (!v.ok()) return v.status();
  if (v->type != RedisServer::Reply::Type::kString) return 0;
  return std::stoll(v->str);
}

std::string Catalog(const FaultRun& run) {
  const std::string policy(RedisDownPolicyName(run.policy));
  if (run.wallet_micros > 0) {
    // The limit is far away: only the wallet stops the traffic.
    return fmt::format(
        R"({{"version": 1, "plans": [{{"id": "cap",
          "wallet": {{"required": true, "min_balance_micros": 0}},
          "limits": [{{"id": "monthly", "meter": "requests",
            "window": "billing_period", "limit": 100000000,
            "redis_down": "{}"}}]}}]}})",
        policy);
  }
  return fmt::format(
      R"({{"version": 1, "plans": [{{"id": "cap", "limits": [
        {{"id": "monthly", "meter": "requests", "window": "billing_period",
          "limit": {}, "redis_down": "{}"}}]}}]}})",
      run.hard, policy);
}

// Every instance sends the one credit (it must count once); returns once
// the primary has it.
absl::Status CreditWallet(const FaultRun& run, std::vector<Instance>& inst,
                          const RedisServer& primary) {
  for (size_t i = 0; i < inst.size(); ++i) {
    auto r = inst[i].enforcer->UpdateWallet({.account_id = "acme",
                                             .credit_micros = run.wallet_micros,
                                             .credit_id = "fault-run-credit"});
    if (!r.ok()) {
      return absl::InternalError(fmt::format(
          "instance {}: credit: {}", i, std::string(r.status().message())));
    }
  }
  int64_t k = 0;
  for (int i = 0; i < 1000; ++i) {
    auto v = WalletField(primary, "k");
    if (!v.ok()) return v.status();
    k = *v;
    if (k >= run.wallet_micros) break;
    std::this_thread::sleep_for(milliseconds(10));
  }
  if (k != run.wallet_micros) {
    return absl::DeadlineExceededError(
        fmt::format("the wallet credit of {} reached Redis as {} after 10 s "
                    "(instance 0: {})",
                    run.wallet_micros, k, inst[0].sync->LastError()));
  }
  return absl::OkStatus();
}

absl::Status WaitReplicaInSync(const RedisServer& replica) {
  for (int i = 0; i < 500; ++i) {
    auto info = replica.Command({"INFO", "replication"});
    if (info.ok() &&
        info->str.find("master_link_status:up") != std::string::npos) {
      return absl::OkStatus();
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  return absl::DeadlineExceededError("replica never reached its primary");
}

}  // namespace

const char* FaultName(Fault f) {
  switch (f) {
    case Fault::kNone:
      return "none";
    case Fault::kRestartEmpty:
      return "restart_empty";
    case Fault::kFlushAll:
      return "flushall";
    case Fault::kFailover:
      return "failover";
    case Fault::kPartition:
      return "partition";
    case Fault::kInstanceDeath:
      return "instance_death";
  }
  return "?";
}

absl::StatusOr<FaultResult> RunFault(const FaultRun& run) {
  RedisServer::Options primary_options;
  if (run.fault == Fault::kFailover) {
    // The replica's first sync at once, not after the default 5 s wait for
    // more replicas.
    primary_options.args = {"--repl-diskless-sync-delay", "0"};
  }
  auto primary_or = RedisServer::Start(primary_options);
  if (!primary_or.ok()) return primary_or.status();
  std::unique_ptr<RedisServer> primary = std::move(*primary_or);
  std::unique_ptr<RedisServer> replica;
  std::unique_ptr<TcpProxy> relay;  // the replica's link to the primary
  if (run.fault == Fault::kFailover) {
    auto r = TcpProxy::Start(primary->port());
    if (!r.ok()) return r.status();
    relay = std::move(*r);
    RedisServer::Options o;
    o.args = {"--replicaof", "127.0.0.1", std::to_string(relay->port())};
    auto rs = RedisServer::Start(o);
    if (!rs.ok()) return rs.status();
    replica = std::move(*rs);
    if (absl::Status s = WaitReplicaInSync(*replica); !s.ok()) return s;
  }
  const bool wallet = run.wallet_micros > 0;
  const std::string catalog = Catalog(run);

  const int n = run.instances;
  std::vector<std::unique_ptr<TcpProxy>> proxies;
  std::vector<Instance> inst(n);
  for (int i = 0; i < n; ++i) {
    auto p = TcpProxy::Start(primary->port());
    if (!p.ok()) return p.status();
    proxies.push_back(std::move(*p));
    SyncOptions o = TestSyncOptions(proxies.back()->port());
    o.expected_instances = n;
    o.lease_ttl = run.lease_ttl;
    try {
      inst[i] = MakeInstance(catalog, "acme", "cap", o);
    } catch (const std::exception& e) {
      return absl::InternalError(fmt::format("instance {}: {}", i, e.what()));
    }
  }
  if (wallet) {
    if (absl::Status s = CreditWallet(run, inst, *primary); !s.ok()) return s;
  }
  // One check: what it admitted (a request of the cap, or its price of the
  // wallet, debited at commit), and its status.
  const auto admit = [&](Instance& in, int* status) -> int64_t {
    if (!wallet) {
      const Decision d = in.Check("acme");
      *status = d.status;
      return d.admitted() ? 1 : 0;
    }
    CheckRequest req;
    req.account_id = "acme";
    req.wallet_micros = run.price_micros;
    const Decision d = in.enforcer->Check(req);
    *status = d.status;
    if (!d.admitted()) return 0;
    in.enforcer->Commit({.reservation = d.reservation});
    return run.price_micros;
  };

  std::vector<std::atomic<int64_t>> admitted(n);
  std::vector<std::atomic<int64_t>> last_admit_ns(n);
  // Wallet runs: since when every check was refused for want of credit
  // (402; 0 while it is not).
  std::vector<std::atomic<int64_t>> broke_since_ns(n);
  std::vector<std::atomic<bool>> stop(n);
  for (int i = 0; i < n; ++i) {
    admitted[i] = 0;
    last_admit_ns[i] = 0;
    broke_since_ns[i] = 0;
    stop[i] = false;
  }
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      while (!stop[i].load(std::memory_order_relaxed)) {
        int status = 0;
        if (const int64_t units = admit(inst[i], &status); units > 0) {
          admitted[i].fetch_add(units, std::memory_order_relaxed);
          last_admit_ns[i].store((Clock::now() - t0).count(),
                                 std::memory_order_relaxed);
        }
        if (status != 402) {
          broke_since_ns[i].store(0, std::memory_order_relaxed);
        } else if (broke_since_ns[i].load(std::memory_order_relaxed) == 0) {
          broke_since_ns[i].store((Clock::now() - t0).count(),
                                  std::memory_order_relaxed);
        }
        std::this_thread::sleep_for(run.pace);
      }
    });
  }
  const auto total_admitted = [&] {
    int64_t sum = 0;
    for (auto& a : admitted) sum += a.load(std::memory_order_relaxed);
    return sum;
  };
  const auto stop_all = [&] {
    for (auto& s : stop) s = true;
    for (auto& t : threads) {
      if (t.joinable()) t.join();
    }
  };

  FaultResult res;
  // Wait for the fault point (or give up after 20 s).
  const auto give_up = Clock::now() + std::chrono::seconds(20);
  const auto fault_point = static_cast<int64_t>(
      run.fault_at *
      static_cast<double>(wallet ? run.wallet_micros : run.hard));
  while (total_admitted() < fault_point && Clock::now() < give_up) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  res.admitted_at_fault = total_admitted();
  RedisServer* serving = primary.get();
  std::string dead_id;  // kInstanceDeath
  absl::Status fault_status;
  switch (run.fault) {
    case Fault::kNone:
      break;
    case Fault::kRestartEmpty:
      fault_status = primary->Kill();
      std::this_thread::sleep_for(run.outage);
      if (fault_status.ok()) fault_status = primary->Restart();
      break;
    case Fault::kFlushAll:
      fault_status = primary->Command({"FLUSHALL"}).status();
      break;
    case Fault::kFailover:
      relay->Blackhole();
      std::this_thread::sleep_for(run.outage / 2);
      fault_status = primary->Kill();
      std::this_thread::sleep_for(run.outage / 2);
      relay->Heal();  // what it held back is lost with the primary
      if (fault_status.ok()) {
        fault_status = replica->Command({"REPLICAOF", "NO", "ONE"}).status();
      }
      for (auto& p : proxies) p->Retarget(replica->port());
      serving = replica.get();
      break;
    case Fault::kPartition:
      proxies[0]->Blackhole();
      std::this_thread::sleep_for(run.outage);
      proxies[0]->Heal();
      break;
    case Fault::kInstanceDeath: {
      stop[0] = true;
      threads[0].join();
      res.dead_admitted = admitted[0].load();
      const std::string id = inst[0].sync->instance_id();
      inst[0].sync.reset();  // no drain: leases and unsent usage die with it
      dead_id = id;
      auto flushed = wallet ? WalletField(*serving, "c:" + id)
                            : SumField(*serving, "c:" + id);
      if (!flushed.ok()) fault_status = flushed.status();
      res.dead_flushed = flushed.ok() ? *flushed : 0;
      if (wallet && fault_status.ok()) {
        auto leased = WalletField(*serving, "r:" + id);
        if (!leased.ok()) fault_status = leased.status();
        res.dead_leased = leased.ok() ? *leased : 0;
      }
      break;
    }
  }
  if (!fault_status.ok()) {
    stop_all();
    return fault_status;
  }
  const auto fault_end = Clock::now();
  res.admitted_during = total_admitted() - res.admitted_at_fault;

  // Resumption: each live instance completes a round and admits after it.
  std::vector<uint64_t> rounds_at_end(n);
  std::vector<int64_t> admitted_at_end(n);
  std::vector<double> resumed(n, -1);
  for (int i = 0; i < n; ++i) {
    if (inst[i].sync) rounds_at_end[i] = inst[i].sync->Stats().rounds;
    admitted_at_end[i] = admitted[i].load();
  }
  std::vector<int64_t> round_seen_ns(n, -1);
  const auto end = fault_end + run.after;
  // A wallet run ends early once every live instance was refused for want
  // of credit for 300 ms on end (the balance, as they hear it, is spent).
  const auto all_broke = [&] {
    const int64_t now_ns = (Clock::now() - t0).count();
    for (int i = 0; i < n; ++i) {
      if (!inst[i].sync) continue;
      const int64_t since = broke_since_ns[i].load(std::memory_order_relaxed);
      if (since == 0 || now_ns - since < 300'000'000) return false;
    }
    return true;
  };
  while (Clock::now() < end && !(wallet && all_broke())) {
    for (int i = 0; i < n; ++i) {
      if (!inst[i].sync || resumed[i] >= 0) continue;
      if (round_seen_ns[i] < 0 &&
          inst[i].sync->Stats().rounds > rounds_at_end[i] + 1) {
        round_seen_ns[i] = (Clock::now() - t0).count();
      }
      if (round_seen_ns[i] >= 0 && last_admit_ns[i].load() > round_seen_ns[i]) {
        resumed[i] =
            MsSince(fault_end, t0 + Clock::duration(last_admit_ns[i].load()));
      }
    }
    std::this_thread::sleep_for(milliseconds(1));
  }
  stop_all();
  double worst = 0;
  for (int i = 0; i < n; ++i) {
    if (!inst[i].sync) continue;
    if (resumed[i] < 0) {
      worst = -1;
      break;
    }
    worst = std::max(worst, resumed[i]);
  }
  res.resume_ms = worst;
  res.admitted = total_admitted();

  for (int i = 0; i < n; ++i) {
    if (!inst[i].sync) continue;
    const absl::Status s = inst[i].sync->Drain(milliseconds(15000));
    const SyncStats st = inst[i].sync->Stats();
    res.epoch_changes += st.epoch_changes;
    res.recoveries += st.recoveries;
    res.log += fmt::format(
        "instance {}: admitted {} ({} after the fault, resumed {:.0f} ms) "
        "rounds {} errors {} reconnects {} "
        "lease_units {} epoch_changes {} recoveries {} drain \"{}\" last "
        "error \"{}\"{}\n",
        i, admitted[i].load(), admitted[i].load() - admitted_at_end[i],
        resumed[i], st.rounds, st.errors, st.reconnects, st.lease_units,
        st.epoch_changes, st.recoveries, std::string(s.message()),
        inst[i].sync->LastError(),
        wallet ? fmt::format(" wallet granted {} returned {} errors {}",
                             st.wallet_granted, st.wallet_returned,
                             st.wallet_errors)
               : "");
    if (!s.ok()) {
      return absl::DeadlineExceededError(fmt::format(
          "drain failed after {}:\n{}", FaultName(run.fault), res.log));
    }
  }
  if (!wallet) {
    auto total = SumField(*serving, "t");
    if (!total.ok()) return total.status();
    res.redis_total = *total;
    return res;
  }
  auto t = WalletField(*serving, "t");
  if (!t.ok()) return t.status();
  auto b = WalletField(*serving, "b");
  if (!b.ok()) return b.status();
  auto k = WalletField(*serving, "k");
  if (!k.ok()) return k.status();
  res.credited = *b + *k;
  res.redis_total = *t;
  if (!dead_id.empty()) {
    // Silent for two lease_ttl, the dead instance's lease became spent.
    auto c = WalletField(*serving, "c:" + dead_id);
    if (!c.ok()) return c.status();
    res.dead_taken_back = *c - res.dead_flushed;
    res.redis_total -= res.dead_taken_back;
  }
  return res;
}

}  // namespace plangate::testing
