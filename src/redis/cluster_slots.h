// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// cluster_slots.h: the slot map a CLUSTER SLOTS reply describes.
//
// Thread safety: pure functions, callable from any thread.

#ifndef PLANGATE_REDIS_CLUSTER_SLOTS_H_
#define PLANGATE_REDIS_CLUSTER_SLOTS_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "redis/redis_client.h"

namespace plangate::internal::redis {

struct SlotRange {
  int first = 0;
  int last = 0;         // inclusive
  std::string primary;  // "host:port"
};

// CLUSTER SLOTS: an array of [first, last, [host, port, id, ...],
// replicas...]. A primary whose host is "" is at `from_host` (the node
// asked). FailedPrecondition naming `from_node` for an error reply, one of
// another shape, a slot out of 0..16383, a range with first > last, a
// primary without a usable host and port ("?" is a node whose address is
// unknown) or overlapping ranges; an empty map (no slot assigned) is
// FailedPrecondition too. Slots no range covers are allowed (a cluster
// being set up); commands for them fail.
absl::StatusOr<std::vector<SlotRange>> ParseClusterSlots(
    const Reply& reply, std::string_view from_node, std::string_view from_host);

}  // namespace plangate::internal::redis

#endif  // PLANGATE_REDIS_CLUSTER_SLOTS_H_
