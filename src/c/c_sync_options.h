// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// c_sync_options.h: pg_sync_options_t (include/plangate/c.h), shared by
// c.cc (the sync) and c_redis_options.cc (the Redis TLS and Sentinel
// setters), and ApplyRedisOptions, which pg_sync_start uses.
//
// Thread safety: as c.h says of sync options: not thread-safe, read by
// pg_sync_start only.

#ifndef PLANGATE_C_C_SYNC_OPTIONS_H_
#define PLANGATE_C_C_SYNC_OPTIONS_H_

#include <chrono>
#include <string>

#include "absl/status/status.h"
#include "plangate/sync.h"

struct pg_sync_options_t {
  plangate::SyncOptions options;
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds command_timeout{1000};
  // pg_sync_options_set_redis_tls_* (the URL must be rediss:// for them).
  bool tls_set = false;
  bool tls_verify = true;
  std::string tls_ca_file, tls_ca_dir, tls_cert_file, tls_key_file,
      tls_server_name;
  // pg_sync_options_set_redis_sentinel_password (redis-sentinel:// only).
  std::string sentinel_password;
};

namespace plangate::c_api {

// Copies the TLS and Sentinel options of `o` into `redis` (parsed from the
// URL): InvalidArgument when they do not fit it (TLS options without TLS,
// a certificate without its key, a sentinel password without sentinels).
absl::Status ApplyRedisOptions(const pg_sync_options_t& o, RedisOptions* redis);

}  // namespace plangate::c_api

#endif  // PLANGATE_C_C_SYNC_OPTIONS_H_
