// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// cluster_client_impl.h: ClusterClient's node and batch records, private
// to cluster_client.cc (the slot map, node connections, refreshes) and
// cluster_execute.cc (routing a batch, redirections, reassembly).
//
// Thread safety: as ClusterClient's: everything on the strand.

#ifndef PLANGATE_REDIS_CLUSTER_CLIENT_IMPL_H_
#define PLANGATE_REDIS_CLUSTER_CLIENT_IMPL_H_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "redis/cluster_client.h"

namespace plangate::internal::redis {

struct ClusterClient::Node {
  std::string address;
  std::shared_ptr<Client> client;
  bool primary = false;
  bool seed = false;
  ClusterNodeStats stats;
};

// One command of a node's pipeline: its index in the batch, whether ASKING
// goes before it, whether it is a part of an INFO sent to every primary.
struct ClusterClient::Sent {
  size_t index = 0;
  bool asking = false;
  bool fan = false;
};

struct ClusterClient::Batch {
  std::vector<Command> commands;
  std::vector<Reply> replies;
  std::vector<int> redirects;
  std::vector<std::shared_ptr<Node>> ask;  // ASK target, for the next send
  // INFO: each primary's reply by address, and how many are expected.
  std::map<size_t, std::vector<std::pair<std::string, Reply>>> fan;
  std::map<size_t, size_t> fan_expected;
  std::vector<size_t> retry;
  size_t outstanding = 0;
  BatchCallback done;
};
}  // namespace plangate::internal::redis

#endif  // PLANGATE_REDIS_CLUSTER_CLIENT_IMPL_H_
