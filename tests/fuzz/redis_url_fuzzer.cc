// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// redis_url_fuzzer: ParseRedisUrl (plangate/sync.h) on arbitrary text:
// redis://, rediss://, unix://, ?cluster=1, redis-sentinel:// and
// rediss-sentinel://. Nothing may crash; a refusal is InvalidArgument and
// starts with `redis URL "`; what is accepted is usable: a port in
// [1, 65535] (for every sentinel too), a host (or socket path, or
// sentinels with a master name), db 0 in a cluster, never Sentinel and
// Cluster at once.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "absl/strings/match.h"
#include "plangate/sync.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view url(reinterpret_cast<const char*>(data), size);
  const absl::StatusOr<plangate::RedisOptions> o = plangate::ParseRedisUrl(url);
  if (!o.ok()) {
    Check(o.status().code() == absl::StatusCode::kInvalidArgument);
    Check(absl::StartsWith(o.status().message(), "redis URL \""));
    return 0;
  }
  Check(o->db >= 0);
  if (!o->sentinels.empty()) {
    Check(!o->sentinel_master.empty());
    Check(!o->cluster);
    for (const plangate::RedisOptions::Address& a : o->sentinels) {
      Check(!a.host.empty());
      Check(a.port >= 1 && a.port <= 65535);
    }
  } else if (!o->unix_socket.empty()) {
    Check(o->unix_socket.front() == '/');
    Check(!o->tls);
  } else {
    Check(!o->host.empty());
    Check(o->port >= 1 && o->port <= 65535);
  }
  if (o->cluster) Check(o->db == 0);
  return 0;
}
