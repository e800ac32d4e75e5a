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
  auto primary_or = RedisServer::Start();
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
  const std::string catalog = fmt::format(
      R"({{"version": 1, "plans": [{{"id": "cap", "limits": [
        {{"id": "monthly", "meter": "requests", "window": "billing_period",
          "limit": {}, "redis_down": "{}"}}]}}]}})",
      run.hard, std::string(RedisDownPolicyName(run.policy)));

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

  std::vector<std::atomic<int64_t>> admitted(n);
  std::vector<std::atomic<int64_t>> last_admit_ns(n);
  std::vector<std::atomic<bool>> stop(n);
  for (int i = 0; i < n; ++i) {
    admitted[i] = 0;
    last_admit_ns[i] = 0;
    stop[i] = false;
  }
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      while (!stop[i].load(std::memory_order_relaxed)) {
        if (inst[i].Check("acme").admitted()) {
          admitted[i].fetch_add(1, std::memory_order_relaxed);
          last_admit_ns[i].store((Clock::now() - t0).count(),
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
  const auto fault_point =
      static_cast<int64_t>(run.fault_at * static_cast<double>(run.hard));
  while (total_admitted() < fault_point && Clock::now() < give_up) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  res.admitted_at_fault = total_admitted();
  RedisServer* serving = primary.get();
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
      auto flushed = SumField(*serving, "c:" + id);
      if (!flushed.ok()) fault_status = flushed.status();
      res.dead_flushed = flushed.ok() ? *flushed : 0;
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
  std::vector<double> resumed(n, -1);
  for (int i = 0; i < n; ++i) {
    if (inst[i].sync) rounds_at_end[i] = inst[i].sync->Stats().rounds;
  }
  std::vector<int64_t> round_seen_ns(n, -1);
  const auto end = fault_end + run.after;
  while (Clock::now() < end) {
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
        "instance {}: admitted {} rounds {} errors {} reconnects {} "
        "lease_units {} epoch_changes {} recoveries {} drain \"{}\" last "
        "error \"{}\"\n",
        i, admitted[i].load(), st.rounds, st.errors, st.reconnects,
        st.lease_units, st.epoch_changes, st.recoveries,
        std::string(s.message()), inst[i].sync->LastError());
    if (!s.ok()) {
      return absl::DeadlineExceededError(fmt::format(
          "drain failed after {}:\n{}", FaultName(run.fault), res.log));
    }
  }
  auto total = SumField(*serving, "t");
  if (!total.ok()) return total.status();
  res.redis_total = *total;
  return res;
}

}  // namespace plangate::testing
