// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "redis/cluster_client.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "redis/cluster_client_impl.h"
#include "redis/cluster_slot.h"
#include "redis/cluster_slots.h"

namespace plangate::internal::redis {
namespace {

// More nodes than any sane cluster has: redirections to ever new addresses
// (a confused or hostile server) stop here.
constexpr size_t kMaxNodes = 1024;
constexpr auto kMinRefreshGap = std::chrono::milliseconds(100);

}  // namespace

std::shared_ptr<ClusterClient> ClusterClient::Create(Strand strand,
                                                     RedisOptions options) {
  return std::shared_ptr<ClusterClient>(
      new ClusterClient(std::move(strand), std::move(options)));
}

ClusterClient::ClusterClient(Strand strand, RedisOptions options)
    : strand_(std::move(strand)),
      options_(std::move(options)),
      owner_(kClusterSlots),
      refresh_timer_(strand_) {
  if (!options_.cluster) {
    single_ = Client::Create(strand_, options_);
  } else {
    seed_ = options_.host.find(':') != std::string::npos
                ? fmt::format("[{}]:{}", options_.host, options_.port)
                : fmt::format("{}:{}", options_.host, options_.port);
  }
}

ClusterClient::~ClusterClient() = default;

void ClusterClient::SetInitCommands(std::vector<Command> commands) {
  if (single_) return single_->SetInitCommands(std::move(commands));
  init_ = std::move(commands);
  for (auto& [address, node] : nodes_) node->client->SetInitCommands(init_);
}

void ClusterClient::SetOnReady(std::function<void()> on_ready) {
  if (single_) return single_->SetOnReady(std::move(on_ready));
  on_ready_ = std::move(on_ready);
}

void ClusterClient::SetOnDown(
    std::function<void(const absl::Status& why)> on_down) {
  if (single_) return single_->SetOnDown(std::move(on_down));
  on_down_ = std::move(on_down);
}

std::shared_ptr<ClusterClient::Node> ClusterClient::NodeFor(
    const std::string& address) {
  if (auto it = nodes_.find(address); it != nodes_.end()) return it->second;
  std::string host;
  int port = 0;
  if (nodes_.size() >= kMaxNodes || !SplitNode(address, &host, &port)) {
    return nullptr;
  }
  auto node = std::make_shared<Node>();
  node->address = address;
  node->stats.node = address;
  RedisOptions o = options_;
  o.host = host;
  o.port = port;
  o.unix_socket.clear();
  node->client = Client::Create(strand_, std::move(o));
  node->client->SetInitCommands(init_);
  std::weak_ptr<ClusterClient> weak = weak_from_this();
  node->client->SetOnReady([weak] {
    auto self = weak.lock();
    if (!self || self->stopped_) return;
    if (!self->have_map_) {
      self->Refresh();
    } else if (self->on_ready_) {
      self->on_ready_();
    }
  });
  node->client->SetOnDown([weak, address](const absl::Status& why) {
    auto self = weak.lock();
    if (!self || self->stopped_) return;
    self->stats_.last_error = std::string(why.message());
    // A seed that owns no slots (gone, or a replica) is only a fallback
    // for reading the map: its failures are not the caller's.
    auto it = self->nodes_.find(address);
    const bool primary = it != self->nodes_.end() && it->second->primary;
    if (self->on_down_ && (primary || !self->have_map_)) self->on_down_(why);
    self->ScheduleRefresh();
  });
  nodes_.emplace(address, node);
  if (started_ && !stopped_) node->client->Start();
  return node;
}

void ClusterClient::Start() {
  if (single_) return single_->Start();
  if (started_) return;
  started_ = true;
  if (auto seed = NodeFor(seed_)) seed->seed = true;
  for (auto& [address, node] : nodes_) node->client->Start();
  ScheduleRefresh();
}

void ClusterClient::ScheduleRefresh() {
  if (stopped_) return;
  if (refresh_in_flight_) {
    refresh_again_ = true;
    return;
  }
  if (refresh_soon_) return;  // already due; never postponed
  refresh_soon_ = true;
  refresh_timer_.cancel();
  // A short delay gathers the redirections and losses of one batch, and
  // refreshes are at least kMinRefreshGap apart (a shard that is down is
  // asked about on every round).
  std::chrono::steady_clock::duration delay = std::chrono::milliseconds(0);
  if (have_map_) {
    const auto since = std::chrono::steady_clock::now() - last_refresh_;
    delay = std::max<std::chrono::steady_clock::duration>(
        std::chrono::milliseconds(20), kMinRefreshGap - since);
  }
  refresh_timer_.expires_after(delay);
  refresh_timer_.async_wait(
      [self = shared_from_this()](const boost::system::error_code& ec) {
        if (!ec) self->Refresh();
      });
}

void ClusterClient::Refresh() {
  if (stopped_) return;
  if (refresh_in_flight_) {
    refresh_again_ = true;
    return;
  }
  // Until the next event, refresh on a schedule.
  refresh_soon_ = false;
  refresh_timer_.cancel();
  refresh_timer_.expires_after(options_.cluster_refresh);
  refresh_timer_.async_wait(
      [self = shared_from_this()](const boost::system::error_code& ec) {
        if (!ec) self->Refresh();
      });
  std::shared_ptr<Node> from;
  for (auto& [address, node] : nodes_) {
    if (node->client->ready() && (!from || node->primary)) from = node;
  }
  if (!from) return;  // a node's on_ready refreshes
  refresh_in_flight_ = true;
  refresh_again_ = false;
  last_refresh_ = std::chrono::steady_clock::now();
  from->client->Execute(
      {Command{"CLUSTER", "SLOTS"}},
      [self = shared_from_this(),
       from](absl::StatusOr<std::vector<Reply>> replies) {
        self->refresh_in_flight_ = false;
        if (self->stopped_) return;
        std::string host;
        int port = 0;
        SplitNode(from->address, &host, &port);
        absl::StatusOr<std::vector<SlotRange>> map =
            !replies.ok()
                ? absl::StatusOr<std::vector<SlotRange>>(replies.status())
            : replies->size() != 1
                ? absl::FailedPreconditionError("no reply")
                : ParseClusterSlots((*replies)[0], from->address, host);
        if (!map.ok()) {
          ++self->stats_.refresh_failures;
          self->stats_.last_error =
              fmt::format("redis CLUSTER SLOTS at {}: {}", from->address,
                          std::string(map.status().message()));
          if (self->refresh_again_) self->ScheduleRefresh();
          return;
        }
        ++self->stats_.refreshes;
        for (auto& [address, node] : self->nodes_) node->primary = false;
        std::fill(self->owner_.begin(), self->owner_.end(), nullptr);
        for (const SlotRange& range : *map) {
          std::shared_ptr<Node> node = self->NodeFor(range.primary);
          if (!node) continue;
          node->primary = true;
          for (int s = range.first; s <= range.last; ++s) {
            self->owner_[s] = node;
          }
        }
        // Nodes that own nothing now (a former primary, a redirection's
        // target that is gone) are closed; the seed stays.
        for (auto it = self->nodes_.begin(); it != self->nodes_.end();) {
          if (!it->second->primary && !it->second->seed) {
            it->second->client->Stop();
            it = self->nodes_.erase(it);
          } else {
            ++it;
          }
        }
        const bool first = !self->have_map_;
        self->have_map_ = true;
        if (first && self->ready() && self->on_ready_) self->on_ready_();
        if (self->refresh_again_) self->ScheduleRefresh();
      });
}

void ClusterClient::Stop() {
  if (single_) return single_->Stop();
  stopped_ = true;
  refresh_timer_.cancel();
  for (auto& [address, node] : nodes_) node->client->Stop();
}

bool ClusterClient::ready() const {
  if (single_) return single_->ready();
  if (!have_map_ || stopped_) return false;
  for (const auto& [address, node] : nodes_) {
    if (node->client->ready()) return true;
  }
  return false;
}

void ClusterClient::DropConnection() {
  if (single_) return single_->DropConnection();
  for (auto& [address, node] : nodes_) node->client->DropConnection();
}

std::vector<std::shared_ptr<ClusterClient::Node>> ClusterClient::Primaries()
    const {
  std::vector<std::shared_ptr<Node>> out;
  for (const auto& [address, node] : nodes_) {
    if (node->primary) out.push_back(node);
  }
  return out;
}

ClientStats ClusterClient::stats() const {
  if (single_) return single_->stats();
  ClientStats sum;
  sum.node = seed_;
  for (const auto& [address, node] : nodes_) {
    const ClientStats& s = node->client->stats();
    sum.connects += s.connects;
    sum.connect_failures += s.connect_failures;
    sum.disconnects += s.disconnects;
    sum.batches += s.batches;
    sum.commands += s.commands;
    sum.timeouts += s.timeouts;
    sum.failed_batches += s.failed_batches;
    sum.io_errors += s.io_errors;
    sum.protocol_errors += s.protocol_errors;
    sum.tls_failures += s.tls_failures;
    if (!s.last_error.empty()) sum.last_error = s.last_error;
  }
  if (!stats_.last_error.empty()) sum.last_error = stats_.last_error;
  return sum;
}

ClusterStats ClusterClient::cluster_stats() const {
  ClusterStats out = stats_;
  for (const auto& [address, node] : nodes_) {
    ClusterNodeStats s = node->stats;
    s.primary = node->primary;
    s.connected = node->client->ready();
    out.nodes.push_back(std::move(s));
  }
  return out;
}

}  // namespace plangate::internal::redis
