// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "redis/cluster_slots.h"

#include <fmt/format.h>

#include <algorithm>

#include "absl/status/status.h"
#include "redis/cluster_slot.h"

namespace plangate::internal::redis {
namespace {

absl::Status Bad(std::string_view from_node, std::string_view why) {
  return absl::FailedPreconditionError(fmt::format(
      "redis CLUSTER SLOTS at {}: unexpected reply: {}", from_node, why));
}

}  // namespace

absl::StatusOr<std::vector<SlotRange>> ParseClusterSlots(
    const Reply& reply, std::string_view from_node,
    std::string_view from_host) {
  if (reply.is_error()) {
    return absl::FailedPreconditionError(
        fmt::format("redis CLUSTER SLOTS at {}: {}", from_node, reply.str));
  }
  if (reply.type != Reply::Type::kArray) return Bad(from_node, "not an array");
  std::vector<SlotRange> ranges;
  for (size_t i = 0; i < reply.elements.size(); ++i) {
    const Reply& e = reply.elements[i];
    if (e.type != Reply::Type::kArray || e.elements.size() < 3 ||
        e.elements[0].type != Reply::Type::kInteger ||
        e.elements[1].type != Reply::Type::kInteger ||
        e.elements[2].type != Reply::Type::kArray ||
        e.elements[2].elements.size() < 2) {
      return Bad(from_node,
                 fmt::format("entry {} is not [first, last, [host, port]]", i));
    }
    const int64_t first = e.elements[0].integer;
    const int64_t last = e.elements[1].integer;
    if (first < 0 || last >= kClusterSlots || first > last) {
      return Bad(from_node, fmt::format("entry {}: slots {}..{} out of range",
                                        i, first, last));
    }
    const Reply& host = e.elements[2].elements[0];
    const Reply& port = e.elements[2].elements[1];
    if ((host.type != Reply::Type::kString &&
         host.type != Reply::Type::kStatus) ||
        port.type != Reply::Type::kInteger || port.integer <= 0 ||
        port.integer > 65535 || host.str == "?") {
      return Bad(from_node,
                 fmt::format("entry {}: primary without a host and port", i));
    }
    const std::string_view h = host.str.empty() ? from_host : host.str;
    const bool v6 = h.find(':') != std::string_view::npos;
    SlotRange range;
    range.first = static_cast<int>(first);
    range.last = static_cast<int>(last);
    range.primary = v6 ? fmt::format("[{}]:{}", h, port.integer)
                       : fmt::format("{}:{}", h, port.integer);
    std::string check_host;
    int check_port = 0;
    if (!SplitNode(range.primary, &check_host, &check_port)) {
      return Bad(from_node, fmt::format("entry {}: bad address", i));
    }
    ranges.push_back(std::move(range));
  }
  if (ranges.empty()) return Bad(from_node, "no slot is assigned");
  std::sort(
      ranges.begin(), ranges.end(),
      [](const SlotRange& a, const SlotRange& b) { return a.first < b.first; });
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first <= ranges[i - 1].last) {
      return Bad(from_node,
                 fmt::format("slot ranges overlap at {}", ranges[i].first));
    }
  }
  return ranges;
}

}  // namespace plangate::internal::redis
