// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// redis_batch.h: one pipelined batch through plangate's own Redis client
// (ClusterClient: one server, TLS, Redis Cluster, Sentinel; every URL form
// RedisSync accepts), run synchronously for a one-shot tool: an io_context
// on the calling thread runs until the replies came, the first connection
// attempt failed, or `timeout` passed; then the client is stopped and the
// io_context runs dry.
//
// Errors (the client's own message, which names the node):
//   a failed connection attempt: its status (Unavailable "redis connect
//     failed: Connection refused (at 127.0.0.1:1)", Unauthenticated for
//     AUTH, a refused certificate, no sentinel knowing the master, ...);
//   DeadlineExceeded "no reply within 2 s" when nothing came in time.
// Error replies are replies. In a cluster, while some primary's connection
// is not ready yet, its commands' "not connected" error replies make the
// batch be sent again (until `timeout`).
//
// Thread safety: RunBatch may run concurrently with itself; each call has
// its own io_context and client.

#ifndef PLANGATE_TOOLS_QUOTACTL_REDIS_BATCH_H_
#define PLANGATE_TOOLS_QUOTACTL_REDIS_BATCH_H_

#include <chrono>
#include <vector>

#include "absl/status/statusor.h"
#include "plangate/sync.h"
#include "redis/redis_client.h"

namespace plangate::quotactl {

absl::StatusOr<std::vector<internal::redis::Reply>> RunBatch(
    const RedisOptions& options, std::vector<internal::redis::Command> commands,
    std::chrono::milliseconds timeout);

}  // namespace plangate::quotactl

#endif  // PLANGATE_TOOLS_QUOTACTL_REDIS_BATCH_H_
