// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "support/redis_sentinel.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace plangate::testing {
namespace {

using Reply = RedisServer::Reply;
using std::chrono::steady_clock;

// The value of `key` in a flat key-value array reply ("" when absent).
std::string Field(const Reply& r, const std::string& key) {
  if (r.type != Reply::Type::kArray) return "";
  for (size_t i = 0; i + 1 < r.elements.size(); i += 2) {
    if (r.elements[i].str == key) return r.elements[i + 1].str;
  }
  return "";
}

bool IsMaster(const RedisServer& node) {
  if (!node.running()) return false;
  absl::StatusOr<Reply> role = node.Command({"ROLE"});
  return role.ok() && role->type == Reply::Type::kArray &&
         !role->elements.empty() && role->elements[0].str == "master";
}

}  // namespace

absl::StatusOr<std::unique_ptr<RedisSentinels>> RedisSentinels::Start(
    Options options) {
  std::unique_ptr<RedisSentinels> s(new RedisSentinels());
  s->options_ = options;
  auto primary = RedisServer::Start();
  if (!primary.ok()) return primary.status();
  s->nodes_.push_back(*std::move(primary));
  const std::string port = std::to_string(s->nodes_[0]->port());
  for (int i = 0; i < options.replicas; ++i) {
    RedisServer::Options o;
    o.args = {"--replicaof", "127.0.0.1", port};
    auto replica = RedisServer::Start(o);
    if (!replica.ok()) return replica.status();
    s->nodes_.push_back(*std::move(replica));
  }
  const std::string config = absl::StrCat(
      "sentinel monitor ", options.master_name, " 127.0.0.1 ", port, " ",
      options.quorum, "\n", "sentinel down-after-milliseconds ",
      options.master_name, " ", options.down_after_ms, "\n",
      "sentinel failover-timeout ", options.master_name, " ",
      options.failover_timeout_ms, "\n",
      options.sentinel_password.empty()
          ? ""
          : absl::StrCat("sentinel sentinel-pass ", options.sentinel_password,
                         "\n"));
  for (int i = 0; i < options.sentinels; ++i) {
    RedisServer::Options o;
    o.sentinel_config = config;
    o.password = options.sentinel_password;
    auto sentinel = RedisServer::Start(o);
    if (!sentinel.ok()) return sentinel.status();
    s->sentinels_.push_back(*std::move(sentinel));
  }
  if (absl::Status st = s->WaitReady(std::chrono::seconds(60)); !st.ok()) {
    return st;
  }
  return s;
}

absl::Status RedisSentinels::WaitReady(
    std::chrono::milliseconds deadline) const {
  const auto give_up = steady_clock::now() + deadline;
  std::string last;
  for (;;) {
    last.clear();
    for (size_t i = 1; i < nodes_.size(); ++i) {
      absl::StatusOr<Reply> info = nodes_[i]->Command({"INFO", "replication"});
      if (!info.ok() ||
          info->str.find("master_link_status:up") == std::string::npos) {
        last = absl::StrCat("replica ", i, " link not up");
      }
    }
    for (size_t i = 0; i < sentinels_.size() && last.empty(); ++i) {
      absl::StatusOr<Reply> m =
          sentinels_[i]->Command({"SENTINEL", "MASTER", options_.master_name});
      if (!m.ok()) {
        last = std::string(m.status().message());
      } else if (Field(*m, "num-slaves") != std::to_string(options_.replicas) ||
                 Field(*m, "num-other-sentinels") !=
                     std::to_string(options_.sentinels - 1)) {
        last = absl::StrCat("sentinel ", i, " knows ", Field(*m, "num-slaves"),
                            " replicas and ", Field(*m, "num-other-sentinels"),
                            " other sentinels");
      }
    }
    if (last.empty()) return absl::OkStatus();
    if (steady_clock::now() > give_up) {
      return absl::DeadlineExceededError(
          absl::StrCat("sentinel deployment not ready: ", last));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

RedisOptions RedisSentinels::ClientOptions() const {
  RedisOptions o;
  for (const auto& s : sentinels_) {
    o.sentinels.push_back({s->host(), s->port()});
  }
  o.sentinel_master = options_.master_name;
  o.sentinel_password = options_.sentinel_password;
  return o;
}

std::string RedisSentinels::Url() const {
  std::vector<std::string> hosts;
  for (const auto& s : sentinels_) {
    hosts.push_back(absl::StrCat(s->host(), ":", s->port()));
  }
  return absl::StrCat("redis-sentinel://", absl::StrJoin(hosts, ","), "/",
                      options_.master_name);
}

absl::StatusOr<int> RedisSentinels::MasterPerSentinel(int asked) const {
  absl::StatusOr<Reply> r = sentinels_[asked]->Command(
      {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", options_.master_name});
  if (!r.ok()) return r.status();
  if (r->type != Reply::Type::kArray || r->elements.size() != 2) {
    return absl::InternalError("unexpected get-master-addr-by-name reply");
  }
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (std::to_string(nodes_[i]->port()) == r->elements[1].str) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

absl::StatusOr<int> RedisSentinels::Failover(
    std::chrono::milliseconds deadline) {
  absl::StatusOr<int> old = MasterPerSentinel(0);
  if (!old.ok()) return old.status();
  const auto give_up = steady_clock::now() + deadline;
  for (;;) {
    // Refused while a previous failover is still settling ("INPROG", or
    // "NOGOODSLAVE" before the replica's state is fresh): try again.
    absl::StatusOr<Reply> r =
        sentinels_[0]->Command({"SENTINEL", "FAILOVER", options_.master_name});
    if (!r.ok()) return r.status();
    if (!r->is_error()) break;
    if (steady_clock::now() > give_up) {
      return absl::DeadlineExceededError(
          absl::StrCat("SENTINEL FAILOVER kept failing: ", r->str));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      give_up - steady_clock::now());
  return WaitNewMaster(*old, std::max(left, std::chrono::milliseconds(0)));
}

absl::StatusOr<int> RedisSentinels::WaitNewMaster(
    int old_master, std::chrono::milliseconds deadline) {
  const auto give_up = steady_clock::now() + deadline;
  std::string last;
  for (;;) {
    int agreed = -2;
    last.clear();
    for (size_t i = 0; i < sentinels_.size() && last.empty(); ++i) {
      if (!sentinels_[i]->running()) continue;
      absl::StatusOr<int> m = MasterPerSentinel(static_cast<int>(i));
      if (!m.ok()) {
        last = std::string(m.status().message());
      } else if (*m < 0 || *m == old_master || (agreed != -2 && *m != agreed)) {
        last = absl::StrCat("sentinel ", i, " names node ", *m);
      } else {
        agreed = *m;
      }
    }
    if (last.empty() && agreed >= 0 && IsMaster(*nodes_[agreed])) {
      return agreed;
    }
    if (last.empty()) last = absl::StrCat("node ", agreed, " not master yet");
    if (steady_clock::now() > give_up) {
      return absl::DeadlineExceededError(
          absl::StrCat("no new master agreed on: ", last));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

absl::Status RedisSentinels::WaitReplica(int i,
                                         std::chrono::milliseconds deadline) {
  const auto give_up = steady_clock::now() + deadline;
  std::string role;
  for (;;) {
    absl::StatusOr<Reply> r = nodes_[i]->Command({"ROLE"});
    role = r.ok() && r->type == Reply::Type::kArray && !r->elements.empty()
               ? r->elements[0].str
               : std::string(r.status().message());
    if (role == "slave") return absl::OkStatus();
    if (steady_clock::now() > give_up) {
      return absl::DeadlineExceededError(
          absl::StrCat("node ", i, " is still ", role));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

absl::Status RedisSentinels::WaitSubscribers(
    int i, int n, std::chrono::milliseconds deadline) {
  const auto give_up = steady_clock::now() + deadline;
  for (;;) {
    absl::StatusOr<Reply> r = sentinels_[i]->Command({"CLIENT", "LIST"});
    int subscribed = 0;
    if (r.ok()) {
      for (size_t at = r->str.find(" sub="); at != std::string::npos;
           at = r->str.find(" sub=", at + 1)) {
        if (r->str.compare(at, 7, " sub=0 ") != 0) ++subscribed;
      }
    }
    if (subscribed >= n) return absl::OkStatus();
    if (steady_clock::now() > give_up) {
      return absl::DeadlineExceededError(absl::StrCat(
          "sentinel ", i, " has ", subscribed, " subscribers, not ", n));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace plangate::testing
