// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// cluster_client.h: the Redis client plangate's sync uses, with Client's
// contract (redis_client.h), for one server or a Redis Cluster.
//
// Without RedisOptions::cluster it is one Client and forwards every call.
// With it, the configured host:port is a seed: CLUSTER SLOTS from any
// connected node gives the slot map, and every primary gets a Client of its
// own (the same options with its host and port, the same init commands:
// FUNCTION LOAD runs on every primary). Execute() routes each command
// (cluster_slot.h: the slot of its key, INFO to every primary, keyless
// commands to any connected node), sends one pipeline per node, and hands
// `done` the replies in the caller's order. Redirections:
//   MOVED <slot> <node>: the slot map takes the new owner, a refresh of the
//     whole map is scheduled, and the command is sent again there;
//   ASK <slot> <node>: ASKING, then the command, on that node (once).
// After RedisOptions::cluster_max_redirects redirections of one command its
// reply is an error reply naming the command and the last node. A command
// whose node is not connected, a node lost mid-batch (its commands get an
// error reply naming the node and the command; the other nodes' replies
// stay), a malformed redirection, a slot no node owns: error replies, never
// a failed batch, so the caller resends only what failed. INFO's reply is
// one text: the first primary's, with `master_replid:` replaced by the
// primaries' ids joined by ',' in the order of their addresses, so a
// failover or restart of any shard changes it; an error when any primary
// cannot answer.
//
// The map is refreshed on MOVED, when a node's connection is lost or a
// command finds its node not connected (at most every 100 ms), and every
// cluster_refresh. on_down is not called for a seed that owns no slots.
// on_ready runs each time a node's connection becomes ready once a map is known
// (the caller re-checks what it must after any reconnect); on_down for every
// node's failure. ready(): a map is known and some node is connected.
//
// Thread safety: as Client's: confined to its strand; every method must be
// called from it, every callback runs on it. Held by shared_ptr; call Stop()
// before dropping the last reference.

#ifndef PLANGATE_REDIS_CLUSTER_CLIENT_H_
#define PLANGATE_REDIS_CLUSTER_CLIENT_H_

#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "redis/redis_client.h"

namespace plangate::internal::redis {

struct ClusterNodeStats {
  std::string node;      // "host:port"
  bool primary = false;  // owns slots in the current map
  bool connected = false;
  uint64_t round_trips = 0;   // pipelines it answered
  uint64_t commands = 0;      // commands sent to it
  uint64_t errors = 0;        // commands failed there (lost, not connected)
  uint64_t redirections = 0;  // MOVED / ASK it answered
};

struct ClusterStats {
  uint64_t moved = 0;
  uint64_t ask = 0;
  uint64_t redirect_loops = 0;          // commands given up after too many
  uint64_t bad_redirects = 0;           // malformed MOVED / ASK replies
  uint64_t refreshes = 0;               // slot maps taken
  uint64_t refresh_failures = 0;        // CLUSTER SLOTS failed or malformed
  std::vector<ClusterNodeStats> nodes;  // by address
  std::string last_error;
};

class ClusterClient : public std::enable_shared_from_this<ClusterClient> {
 public:
  using Strand = Client::Strand;

  static std::shared_ptr<ClusterClient> Create(Strand strand,
                                               RedisOptions options);
  ~ClusterClient();

  void SetInitCommands(std::vector<Command> commands);
  void SetOnReady(std::function<void()> on_ready);
  void SetOnDown(std::function<void(const absl::Status& why)> on_down);
  void Start();
  void Stop();
  bool ready() const;
  // Client::Execute's contract; see above for cluster mode.
  void Execute(std::vector<Command> commands, BatchCallback done);
  // Drops every node's connection (each reconnects, with its init commands).
  void DropConnection();

  // The sums over the node connections (node: the seed's address).
  ClientStats stats() const;
  // Cluster mode's own counters (zero and empty for one server).
  ClusterStats cluster_stats() const;
  Strand strand() const { return strand_; }

  ClusterClient(const ClusterClient&) = delete;
  ClusterClient& operator=(const ClusterClient&) = delete;

 private:
  struct Node;
  struct Batch;
  struct Sent;
  ClusterClient(Strand strand, RedisOptions options);

  std::shared_ptr<Node> NodeFor(const std::string& address);
  void Dispatch(std::shared_ptr<Batch> batch, std::vector<size_t> indices);
  void OnNodeReplies(const std::shared_ptr<Batch>& batch,
                     const std::shared_ptr<Node>& node,
                     const std::vector<Sent>& sent,
                     absl::StatusOr<std::vector<Reply>> replies);
  void Finish(const std::shared_ptr<Batch>& batch);
  void Refresh();
  void ScheduleRefresh();
  std::vector<std::shared_ptr<Node>> Primaries() const;

  Strand strand_;
  RedisOptions options_;
  std::shared_ptr<Client> single_;  // without RedisOptions::cluster
  std::vector<Command> init_;
  std::function<void()> on_ready_;
  std::function<void(const absl::Status&)> on_down_;
  std::string seed_;
  std::map<std::string, std::shared_ptr<Node>> nodes_;
  std::vector<std::shared_ptr<Node>> owner_;  // per slot; null: unknown
  bool have_map_ = false;
  bool started_ = false;
  bool stopped_ = false;
  bool refresh_in_flight_ = false;
  bool refresh_again_ = false;
  bool refresh_soon_ = false;  // the timer is set for an event's refresh
  std::chrono::steady_clock::time_point last_refresh_;
  boost::asio::steady_timer refresh_timer_;
  ClusterStats stats_;
};

}  // namespace plangate::internal::redis

#endif  // PLANGATE_REDIS_CLUSTER_CLIENT_H_
