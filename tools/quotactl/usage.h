// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// usage.h: `quotactl usage`, an account's usage report with the live
// cluster totals that RedisSync keeps in Redis (docs/replay.md).
//
// The report is the library's own: an Enforcer is created on the catalog,
// the account registered on the plan, and Enforcer::Usage computes the
// limits and their windows. Without Redis every count is 0; with Redis each
// account-scope limit's `used` is field `t` of its counter hash (the key is
// internal::CounterKey's, so it is the one RedisSync writes; for a sliding
// window the previous window's hash is read too and weighted as
// Enforcer::Usage does), and its state is recomputed from it. The JSON is
// UsageReportJson's, so its shape is exactly the usage report's.
//
// Redis is read with plangate's own client, run synchronously
// (redis_batch.h; 2 s timeouts), one pipelined `HMGET key t L n` per
// counter: no Function library is needed, and nothing is written. Every
// URL form RedisSync accepts works: redis://, rediss:// (with the TLS
// flags), ?cluster=1 (each key read from its slot's primary), unix://,
// redis-sentinel:// (the master the sentinels name).
//
// Thread safety: UsageReport may run concurrently with itself; it shares
// no state.

#ifndef PLANGATE_TOOLS_QUOTACTL_USAGE_H_
#define PLANGATE_TOOLS_QUOTACTL_USAGE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "plangate/catalog.h"
#include "plangate/enforcer.h"
#include "plangate/sync.h"

namespace plangate::quotactl {

struct UsageQuery {
  std::string catalog_path;
  std::string plan_id;
  std::string account_id;
  // The billing anchor; unset: the start of now's UTC month.
  std::optional<int64_t> anchor_ms;
  // The instant the report is for; unset: the system clock.
  std::optional<int64_t> now_ms;
  // Any URL ParseRedisUrl takes; empty: no Redis, all zeros.
  std::string redis_url;
  std::string key_prefix = "pg";  // SyncOptions::key_prefix of the gateways
  // --redis-tls-* (rediss:// only), as RedisOptions' tls_* fields.
  struct RedisTlsFlags {
    std::string ca_file, ca_dir, cert_file, key_file, server_name;
    bool verify = true;
  };
  RedisTlsFlags tls;
  // --redis-sentinel-password (redis-sentinel:// only).
  std::string sentinel_password;
};

// An instant given on the command line: Unix ms (1 to 9999-12-31) or an
// RFC 3339 UTC time. `flag` names it in the error ("--anchor").
absl::StatusOr<int64_t> ParseInstant(std::string_view flag,
                                     std::string_view text);

// The RedisOptions of --redis URL and the --redis-tls-* and
// --redis-sentinel-password flags; InvalidArgument for flags the URL does
// not take.
absl::StatusOr<RedisOptions> RedisFromFlags(
    std::string_view url, const UsageQuery::RedisTlsFlags& tls,
    const std::string& sentinel_password);

// The report as one line of JSON (no newline). Errors are one line each,
// naming what and where, e.g.
//   plan "gold" is not in catalog.json
//   redis://127.0.0.1:1: redis connect failed: Connection refused (at
//     127.0.0.1:1)
//   redis://127.0.0.1:6379: key "pg:{acme}:...": field t is not an integer
absl::StatusOr<std::string> UsageReport(const UsageQuery& query);

// Sets `used` and `state` of every limit in `usage` (from Enforcer::Usage
// at now_ms for an account on `plan`) to the cluster totals in Redis.
// `where` names the server in messages (no password).
absl::Status FillFromRedis(const Plan& plan, const RedisOptions& redis,
                           std::string_view where, std::string_view key_prefix,
                           int64_t now_ms, AccountUsage* usage);

// The server, for messages (credentials left out): "redis://host:port[/db]"
// (rediss:// with TLS, "?cluster=1" for a cluster), "unix:///path[?db=N]",
// "redis-sentinel://h1:p1,h2:p2/master[/db]".
std::string RedisDisplayName(const RedisOptions& redis);

}  // namespace plangate::quotactl

#endif  // PLANGATE_TOOLS_QUOTACTL_USAGE_H_
