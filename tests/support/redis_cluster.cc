// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "support/redis_cluster.h"

#include <fmt/format.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <thread>
#include <utility>

#include "redis/hiredis_util.h"

namespace plangate::testing {
namespace {

using internal::redis::Reply;
using Clock = std::chrono::steady_clock;

bool HasLine(const std::string& text, const std::string& line) {
  return text.find(line + "\r\n") != std::string::npos ||
         text.find(line + "\n") != std::string::npos;
}

// "OK" or the error a reply is.
absl::Status Expect(const absl::StatusOr<Reply>& r, std::string_view what) {
  if (!r.ok()) return r.status();
  if (r->is_error()) {
    return absl::InternalError(fmt::format("{}: {}", what, r->str));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<RedisCluster>> RedisCluster::Start(
    Options options) {
  std::unique_ptr<RedisCluster> c(new RedisCluster());
  c->options_ = options;
  const int n = options.primaries * (1 + options.replicas);
  for (int i = 0; i < n; ++i) {
    RedisServer::Options o;
    o.args = {"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
              "--cluster-node-timeout", std::to_string(options.node_timeout_ms),
              "--cluster-require-full-coverage", "no",
              // A replica may always take over, however long its primary
              // was silent (a loaded CI machine).
              "--cluster-replica-validity-factor", "0"};
    auto s = RedisServer::Start(o);
    if (!s.ok()) return s.status();
    c->nodes_.push_back(std::move(*s));
  }
  for (int i = 0; i < n; ++i) {
    auto id = c->nodes_[i]->Command({"CLUSTER", "MYID"});
    if (!id.ok()) return id.status();
    c->ids_.push_back(id->str);
    if (absl::Status s =
            Expect(c->nodes_[i]->Command(
                       {"CLUSTER", "SET-CONFIG-EPOCH", std::to_string(i + 1)}),
                   "CLUSTER SET-CONFIG-EPOCH");
        !s.ok()) {
      return s;
    }
  }
  for (int i = 1; i < n; ++i) {
    if (absl::Status s = Expect(
            c->nodes_[0]->Command({"CLUSTER", "MEET", "127.0.0.1",
                                   std::to_string(c->nodes_[i]->port())}),
            "CLUSTER MEET");
        !s.ok()) {
      return s;
    }
  }
  const int per = 16384 / options.primaries;
  for (int p = 0; p < options.primaries; ++p) {
    const int first = p * per;
    const int last = p == options.primaries - 1 ? 16383 : first + per - 1;
    if (absl::Status s =
            Expect(c->nodes_[p]->Command({"CLUSTER", "ADDSLOTSRANGE",
                                          std::to_string(first),
                                          std::to_string(last)}),
                   "CLUSTER ADDSLOTSRANGE");
        !s.ok()) {
      return s;
    }
  }
  // Every node knows every other before the replicas pick their primaries.
  const auto give_up = Clock::now() + std::chrono::seconds(20);
  for (int i = 0; i < n; ++i) {
    for (;;) {
      auto nodes = c->nodes_[i]->Command({"CLUSTER", "NODES"});
      if (!nodes.ok()) return nodes.status();
      int known = 0;
      for (const std::string& id : c->ids_) {
        if (nodes->str.find(id) != std::string::npos) ++known;
      }
      if (known == n && nodes->str.find("handshake") == std::string::npos) {
        break;
      }
      if (Clock::now() > give_up) {
        return absl::DeadlineExceededError(fmt::format(
            "node {} knows {} of {} nodes:\n{}", i, known, n, nodes->str));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  for (int i = options.primaries; i < n; ++i) {
    const int primary = (i - options.primaries) % options.primaries;
    if (absl::Status s = Expect(
            c->nodes_[i]->Command({"CLUSTER", "REPLICATE", c->ids_[primary]}),
            "CLUSTER REPLICATE");
        !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = c->WaitHealthy(std::chrono::seconds(30)); !s.ok()) {
    return s;
  }
  return c;
}

RedisOptions RedisCluster::ClientOptions() const {
  RedisOptions o = nodes_[0]->ClientOptions();
  o.cluster = true;
  return o;
}

bool RedisCluster::IsPrimary(int i) const {
  if (!nodes_[i]->running()) return false;
  auto role = nodes_[i]->Command({"ROLE"});
  return role.ok() && role->type == Reply::Type::kArray &&
         !role->elements.empty() && role->elements[0].str == "master";
}

absl::StatusOr<int> RedisCluster::PrimaryOfSlot(int slot, int asked) const {
  auto slots = nodes_[asked]->Command({"CLUSTER", "SLOTS"});
  if (!slots.ok()) return slots.status();
  for (const Reply& range : slots->elements) {
    if (range.elements.size() < 3 || range.elements[0].integer > slot ||
        range.elements[1].integer < slot) {
      continue;
    }
    const int64_t port = range.elements[2].elements[1].integer;
    for (int i = 0; i < size(); ++i) {
      if (nodes_[i]->port() == port) return i;
    }
  }
  return absl::NotFoundError(fmt::format("no primary serves slot {}", slot));
}

absl::StatusOr<int> RedisCluster::ReplicaOf(int primary) const {
  for (int i = 0; i < size(); ++i) {
    if (i == primary || !nodes_[i]->running()) continue;
    auto role = nodes_[i]->Command({"ROLE"});
    if (role.ok() && role->elements.size() >= 3 &&
        role->elements[0].str == "slave" &&
        role->elements[2].integer == nodes_[primary]->port()) {
      return i;
    }
  }
  return absl::NotFoundError(fmt::format("node {} has no replica", primary));
}

absl::Status RedisCluster::WaitHealthy(
    std::chrono::milliseconds deadline) const {
  const auto give_up = Clock::now() + deadline;
  std::string why;
  for (;;) {
    why.clear();
    std::string first_map;
    for (int i = 0; i < size() && why.empty(); ++i) {
      if (!nodes_[i]->running()) continue;
      auto info = nodes_[i]->Command({"CLUSTER", "INFO"});
      if (!info.ok() || !HasLine(info->str, "cluster_state:ok") ||
          !HasLine(info->str, "cluster_slots_ok:16384")) {
        why = fmt::format("node {}: {}", i,
                          info.ok() ? info->str : info.status().ToString());
        break;
      }
      // The same primary port for every range on every node.
      auto slots = nodes_[i]->Command({"CLUSTER", "SLOTS"});
      if (!slots.ok()) {
        why = slots.status().ToString();
        break;
      }
      std::vector<std::string> ranges;
      for (const Reply& r : slots->elements) {
        if (r.elements.size() < 3) continue;
        ranges.push_back(fmt::format("{}-{}@{}", r.elements[0].integer,
                                     r.elements[1].integer,
                                     r.elements[2].elements[1].integer));
      }
      std::sort(ranges.begin(), ranges.end());
      const std::string map = fmt::format("{}", fmt::join(ranges, ","));
      if (first_map.empty()) first_map = map;
      if (map != first_map) {
        why = fmt::format("node {} sees {}, another {}", i, map, first_map);
        break;
      }
      auto repl = nodes_[i]->Command({"INFO", "replication"});
      if (!repl.ok()) {
        why = repl.status().ToString();
        break;
      }
      if (HasLine(repl->str, "role:slave") &&
          !HasLine(repl->str, "master_link_status:up")) {
        why = fmt::format("replica {} not in sync", i);
      }
    }
    if (why.empty()) return absl::OkStatus();
    if (Clock::now() > give_up) {
      return absl::DeadlineExceededError("cluster not healthy: " + why);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

absl::Status RedisCluster::MigrateSlot(int slot, int from, int to,
                                       const std::function<void()>& between) {
  const std::string s = std::to_string(slot);
  if (absl::Status st = Expect(nodes_[to]->Command({"CLUSTER", "SETSLOT", s,
                                                    "IMPORTING", ids_[from]}),
                               "SETSLOT IMPORTING");
      !st.ok()) {
    return st;
  }
  if (absl::Status st = Expect(nodes_[from]->Command({"CLUSTER", "SETSLOT", s,
                                                      "MIGRATING", ids_[to]}),
                               "SETSLOT MIGRATING");
      !st.ok()) {
    return st;
  }
  for (;;) {
    auto keys = nodes_[from]->Command({"CLUSTER", "GETKEYSINSLOT", s, "10"});
    if (!keys.ok()) return keys.status();
    if (keys->elements.empty()) break;
    for (const Reply& k : keys->elements) {
      if (absl::Status st =
              Expect(nodes_[from]->Command({"MIGRATE", "127.0.0.1",
                                            std::to_string(nodes_[to]->port()),
                                            k.str, "0", "5000"}),
                     "MIGRATE");
          !st.ok()) {
        return st;
      }
      between();
    }
  }
  std::vector<int> order = {to, from};
  for (int i = 0; i < size(); ++i) {
    if (i != to && i != from && IsPrimary(i)) order.push_back(i);
  }
  for (const int i : order) {
    if (absl::Status st = Expect(
            nodes_[i]->Command({"CLUSTER", "SETSLOT", s, "NODE", ids_[to]}),
            "SETSLOT NODE");
        !st.ok()) {
      return st;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::map<std::string, int64_t>> RedisCluster::HashFieldByKey(
    const std::string& pattern, const std::string& field) const {
  std::map<std::string, int64_t> out;
  for (int i = 0; i < size(); ++i) {
    if (!IsPrimary(i)) continue;
    redisContext* c = redisConnect("127.0.0.1", nodes_[i]->port());
    if (c == nullptr || c->err != 0) {
      if (c != nullptr) redisFree(c);
      return absl::UnavailableError(fmt::format("node {}: connect", i));
    }
    std::unique_ptr<redisContext, void (*)(redisContext*)> guard(c, redisFree);
    auto* keys = static_cast<redisReply*>(
        redisCommand(c, "KEYS %b", pattern.data(), pattern.size()));
    if (keys == nullptr) return absl::UnavailableError("KEYS");
    const Reply all = internal::redis::CopyReply(*keys);
    freeReplyObject(keys);
    for (const Reply& k : all.elements) {
      redisAppendCommand(c, "HGET %b %b", k.str.data(), k.str.size(),
                         field.data(), field.size());
    }
    for (const Reply& k : all.elements) {
      void* raw = nullptr;
      if (redisGetReply(c, &raw) != REDIS_OK || raw == nullptr) {
        return absl::UnavailableError(fmt::format("node {}: HGET", i));
      }
      const Reply v =
          internal::redis::CopyReply(*static_cast<redisReply*>(raw));
      freeReplyObject(raw);
      int64_t value = 0;
      if (v.type == Reply::Type::kString) value = std::stoll(v.str);
      if (!out.emplace(k.str, value).second) {
        return absl::InternalError(
            fmt::format("key {} is on two primaries", k.str));
      }
    }
  }
  return out;
}

}  // namespace plangate::testing
