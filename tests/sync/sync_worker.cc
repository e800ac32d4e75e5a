// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// sync_worker: one gateway process for the multi-process sync test.
// Usage: sync_worker PORT HARD CHECKS INSTANCES [PACE_US]. Sends CHECKS
// requests, unpaced or one per PACE_US, to account "acme" (plan with a
// monthly cap of HARD requests),
// drains to Redis and prints "admitted N". Exit status 1 on any setup or drain
// error.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <thread>

#include "sync/sync_test_util.h"

int main(int argc, char** argv) {
  using namespace plangate;
  using namespace plangate::testing;
  if (argc != 5 && argc != 6) {
    std::fprintf(stderr,
                 "usage: sync_worker PORT HARD CHECKS INSTANCES [PACE_US]\n");
    return 2;
  }
  const int pace_us = argc == 6 ? std::atoi(argv[5]) : 0;
  const int port = std::atoi(argv[1]);
  const std::string hard = argv[2];
  const int checks = std::atoi(argv[3]);
  const int instances = std::atoi(argv[4]);
  const std::string catalog =
      R"({"version": 1, "plans": [{"id": "cap", "limits": [
        {"id": "monthly", "meter": "requests", "window": "billing_period",
         "limit": )" +
      hard + "}]}]}";
  try {
    SyncOptions o = TestSyncOptions(port);
    o.expected_instances = instances;
    Instance inst = MakeInstance(catalog, "acme", "cap", o);
    // Each request is retried while it gets 429 quota_syncing (a lease on
    // its way), as a client honouring Retry-After would, a little faster.
    long long admitted = 0;
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (int i = 0; i < checks; ++i) {
      for (;;) {
        const Decision d = inst.Check("acme");
        if (d.admitted()) {
          ++admitted;
        } else if (d.deny == DenyKind::kSyncing &&
                   std::chrono::steady_clock::now() < deadline) {
          std::this_thread::sleep_for(std::chrono::microseconds(200));
          continue;
        }
        break;
      }
      if (pace_us > 0) {
        std::this_thread::sleep_for(std::chrono::microseconds(pace_us));
      }
    }
    const absl::Status s = inst.sync->Drain(std::chrono::milliseconds(15000));
    if (!s.ok()) {
      std::fprintf(stderr, "sync_worker: %s\n",
                   std::string(s.message()).c_str());
      return 1;
    }
    std::printf("admitted %lld\n", admitted);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sync_worker: %s\n", e.what());
    return 1;
  }
}
