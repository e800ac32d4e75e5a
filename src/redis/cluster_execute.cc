// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// cluster_execute.cc: ClusterClient::Execute: one pipeline per node, MOVED
// and ASK, and the replies put back in the caller's order.

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "redis/cluster_client.h"
#include "redis/cluster_client_impl.h"
#include "redis/cluster_slot.h"

namespace plangate::internal::redis {
namespace {

Reply ErrorReply(std::string text) {
  Reply r;
  r.type = Reply::Type::kError;
  r.str = "ERR plangate cluster: " + std::move(text);
  return r;
}

std::string ReplicationId(const std::string& info) {
  constexpr std::string_view kField = "master_replid:";
  const size_t at = info.find(kField);
  if (at == std::string::npos) return "";
  const size_t from = at + kField.size();
  const size_t end = info.find_first_of("\r\n", from);
  return info.substr(from, end == std::string::npos ? end : end - from);
}

bool IsPushCommand(const Command& c) {
  const std::string name = absl::AsciiStrToUpper(c[0]);
  return name == "SUBSCRIBE" || name == "PSUBSCRIBE" || name == "SSUBSCRIBE" ||
         name == "MONITOR";
}

}  // namespace

void ClusterClient::Execute(std::vector<Command> commands, BatchCallback done) {
  if (single_) return single_->Execute(std::move(commands), std::move(done));
  auto fail = [&](absl::Status status) {
    boost::asio::post(strand_, [done = std::move(done),
                                status = std::move(status)]() mutable {
      done(std::move(status));
    });
  };
  if (stopped_) return fail(absl::CancelledError("redis cluster: stopped"));
  for (const Command& c : commands) {
    if (c.empty() || IsPushCommand(c)) {
      return fail(absl::InvalidArgumentError(
          "redis: empty command or one that makes a push channel"));
    }
  }
  if (!ready()) {
    return fail(absl::UnavailableError(fmt::format(
        "redis cluster: no node connected (seed {}){}", seed_,
        stats_.last_error.empty() ? "" : ": " + stats_.last_error)));
  }
  auto batch = std::make_shared<Batch>();
  const size_t n = commands.size();
  batch->commands = std::move(commands);
  batch->replies.resize(n);
  batch->redirects.assign(n, 0);
  batch->ask.resize(n);
  batch->done = std::move(done);
  std::vector<size_t> all(n);
  for (size_t i = 0; i < n; ++i) all[i] = i;
  Dispatch(std::move(batch), std::move(all));
}

void ClusterClient::Dispatch(std::shared_ptr<Batch> batch,
                             std::vector<size_t> indices) {
  struct Group {
    std::shared_ptr<Node> node;
    std::vector<Sent> sent;
  };
  std::map<std::string, Group> groups;
  std::shared_ptr<Node> any;
  for (const auto& [address, node] : nodes_) {
    if (node->client->ready() && (!any || node->primary)) any = node;
  }
  for (const size_t i : indices) {
    const Command& c = batch->commands[i];
    const Route route = CommandRoute(c);
    std::shared_ptr<Node> node;
    bool asking = false;
    if (batch->ask[i]) {
      node = std::move(batch->ask[i]);
      asking = true;
    } else if (route.kind == RouteKind::kAllPrimaries) {
      const auto primaries = Primaries();
      batch->fan[i].clear();
      batch->fan_expected[i] = primaries.size();
      for (const auto& p : primaries) {
        Group& g = groups[p->address];
        g.node = p;
        g.sent.push_back(Sent{i, false, true});
      }
      continue;
    } else if (route.kind == RouteKind::kKey) {
      node = owner_[KeyHashSlot(c[route.key_index])];
      if (!node) {
        batch->replies[i] = ErrorReply(
            fmt::format("no node owns slot {} ({})",
                        KeyHashSlot(c[route.key_index]), CommandName(c)));
        continue;
      }
    } else {
      node = any;
      if (!node) {
        batch->replies[i] =
            ErrorReply(fmt::format("no node connected ({})", CommandName(c)));
        continue;
      }
    }
    Group& g = groups[node->address];
    g.node = node;
    g.sent.push_back(Sent{i, asking, false});
  }
  for (auto& [address, g] : groups) {
    if (!g.node->client->ready()) {
      ScheduleRefresh();  // the map may name a primary that is gone
      for (const Sent& s : g.sent) {
        ++g.node->stats.errors;
        Reply r =
            ErrorReply(fmt::format("node {} not connected ({})", address,
                                   CommandName(batch->commands[s.index])));
        if (s.fan) {
          batch->fan[s.index].emplace_back(address, std::move(r));
        } else {
          batch->replies[s.index] = std::move(r);
        }
      }
      continue;
    }
    std::vector<Command> sub;
    sub.reserve(g.sent.size());
    for (const Sent& s : g.sent) {
      if (s.asking) sub.push_back(Command{"ASKING"});
      sub.push_back(batch->commands[s.index]);
    }
    g.node->stats.commands += g.sent.size();
    ++batch->outstanding;
    g.node->client->Execute(
        std::move(sub),
        [self = shared_from_this(), batch, node = g.node,
         sent = std::move(g.sent)](absl::StatusOr<std::vector<Reply>> replies) {
          self->OnNodeReplies(batch, node, sent, std::move(replies));
        });
  }
  if (batch->outstanding == 0) {
    boost::asio::post(
        strand_, [self = shared_from_this(), batch] { self->Finish(batch); });
  }
}

void ClusterClient::OnNodeReplies(const std::shared_ptr<Batch>& batch,
                                  const std::shared_ptr<Node>& node,
                                  const std::vector<Sent>& sent,
                                  absl::StatusOr<std::vector<Reply>> replies) {
  --batch->outstanding;
  auto put = [&](const Sent& s, Reply r) {
    if (s.fan) {
      batch->fan[s.index].emplace_back(node->address, std::move(r));
    } else {
      batch->replies[s.index] = std::move(r);
    }
  };
  bool refresh = false;
  if (!replies.ok()) {
    node->stats.errors += sent.size();
    for (const Sent& s : sent) {
      put(s, ErrorReply(fmt::format("node {}: {} ({})", node->address,
                                    std::string(replies.status().message()),
                                    CommandName(batch->commands[s.index]))));
    }
    refresh = true;
  } else {
    ++node->stats.round_trips;
    size_t pos = 0;
    for (const Sent& s : sent) {
      const Command& c = batch->commands[s.index];
      if (s.asking) ++pos;  // ASKING's +OK
      if (pos >= replies->size()) {
        put(s, ErrorReply(fmt::format("node {}: reply missing ({})",
                                      node->address, CommandName(c))));
        continue;
      }
      Reply r = std::move((*replies)[pos++]);
      if (s.fan || !r.is_error()) {
        put(s, std::move(r));
        continue;
      }
      bool malformed = false;
      std::optional<Redirect> red = ParseRedirect(r.str, &malformed);
      if (malformed) {
        ++stats_.bad_redirects;
        put(s, ErrorReply(fmt::format("malformed redirection \"{}\" from node "
                                      "{} ({})",
                                      r.str.substr(0, 100), node->address,
                                      CommandName(c))));
        continue;
      }
      if (!red) {
        put(s, std::move(r));
        continue;
      }
      ++node->stats.redirections;
      if (red->node.starts_with(":")) {  // "MOVED 1 :6380": the sender's host
        std::string host;
        int port = 0;
        SplitNode(node->address, &host, &port);
        red->node = host + red->node;
      }
      if (++batch->redirects[s.index] > options_.cluster_max_redirects) {
        ++stats_.redirect_loops;
        put(s, ErrorReply(fmt::format(
                   "redirection loop: {} redirected {} times, last by node {} "
                   "to {}",
                   CommandName(c), batch->redirects[s.index] - 1, node->address,
                   red->node)));
        continue;
      }
      std::shared_ptr<Node> target = NodeFor(red->node);
      if (!target) {
        ++stats_.bad_redirects;
        put(s,
            ErrorReply(fmt::format("node {} redirected {} to {}, which "
                                   "cannot be used",
                                   node->address, CommandName(c), red->node)));
        continue;
      }
      if (red->ask) {
        ++stats_.ask;
        batch->ask[s.index] = target;
      } else {
        ++stats_.moved;
        owner_[red->slot] = target;
        refresh = true;
      }
      batch->retry.push_back(s.index);
    }
  }
  if (refresh) ScheduleRefresh();
  if (batch->outstanding > 0) return;
  if (!batch->retry.empty()) {
    std::vector<size_t> again = std::move(batch->retry);
    batch->retry.clear();
    std::sort(again.begin(), again.end());
    Dispatch(batch, std::move(again));
    return;
  }
  Finish(batch);
}

void ClusterClient::Finish(const std::shared_ptr<Batch>& batch) {
  for (auto& [i, parts] : batch->fan) {
    std::sort(parts.begin(), parts.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    const Reply* bad = nullptr;
    std::string ids;
    for (const auto& [address, r] : parts) {
      if (r.is_error() || r.type != Reply::Type::kString) {
        bad = &r;
        break;
      }
      if (!ids.empty()) ids += ',';
      ids += ReplicationId(r.str);
    }
    if (bad != nullptr || parts.empty() ||
        parts.size() != batch->fan_expected[i]) {
      batch->replies[i] =
          bad != nullptr && bad->is_error()
              ? *bad
              : ErrorReply(fmt::format("{}: not every primary answered",
                                       CommandName(batch->commands[i])));
      continue;
    }
    std::string text = parts.front().second.str;
    const std::string first = ReplicationId(text);
    const size_t at = text.find("master_replid:");
    if (at != std::string::npos) {
      text.replace(at + 14, first.size(), ids);
    } else {
      text += "\r\nmaster_replid:" + ids + "\r\n";
    }
    batch->replies[i].type = Reply::Type::kString;
    batch->replies[i].str = std::move(text);
  }
  BatchCallback done = std::move(batch->done);
  done(std::move(batch->replies));
}

}  // namespace plangate::internal::redis
