// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// c_redis_options.cc: the Redis TLS and Sentinel setters of pg_sync_options_t
// (include/plangate/c.h) and ApplyRedisOptions (c_sync_options.h).

// Compiled with -fvisibility=hidden, as c.cc: the C API's declarations,
// and so their definitions, are the only default-visibility symbols.
#pragma GCC visibility push(default)
#include "plangate/c.h"
#pragma GCC visibility pop

#include <string>

#include "c/c_sync_options.h"

namespace {

std::string Copy(const char* data, size_t len) {
  return data == nullptr ? std::string() : std::string(data, len);
}

}  // namespace

namespace plangate::c_api {

absl::Status ApplyRedisOptions(const pg_sync_options_t& o,
                               RedisOptions* redis) {
  if (o.tls_set && !redis->tls) {
    return absl::InvalidArgumentError(
        "pg_sync_options_set_redis_tls_*: the URL must be rediss:// or "
        "rediss-sentinel:// (TLS)");
  }
  if (o.tls_cert_file.empty() != o.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "pg_sync_options_set_redis_tls_cert_file and _key_file go together");
  }
  if (!o.sentinel_password.empty() && redis->sentinels.empty()) {
    return absl::InvalidArgumentError(
        "pg_sync_options_set_redis_sentinel_password: the URL must be "
        "redis-sentinel://");
  }
  redis->tls_verify = o.tls_verify;
  redis->tls_ca_file = o.tls_ca_file;
  redis->tls_ca_dir = o.tls_ca_dir;
  redis->tls_cert_file = o.tls_cert_file;
  redis->tls_key_file = o.tls_key_file;
  redis->tls_server_name = o.tls_server_name;
  redis->sentinel_password = o.sentinel_password;
  return absl::OkStatus();
}

}  // namespace plangate::c_api

extern "C" {

void pg_sync_options_set_redis_tls_ca_file(pg_sync_options_t* o,
                                           const char* path, size_t path_len) {
  o->tls_ca_file = Copy(path, path_len);
  o->tls_set = true;
}

void pg_sync_options_set_redis_tls_ca_dir(pg_sync_options_t* o,
                                          const char* path, size_t path_len) {
  o->tls_ca_dir = Copy(path, path_len);
  o->tls_set = true;
}

void pg_sync_options_set_redis_tls_cert_file(pg_sync_options_t* o,
                                             const char* path,
                                             size_t path_len) {
  o->tls_cert_file = Copy(path, path_len);
  o->tls_set = true;
}

void pg_sync_options_set_redis_tls_key_file(pg_sync_options_t* o,
                                            const char* path, size_t path_len) {
  o->tls_key_file = Copy(path, path_len);
  o->tls_set = true;
}

void pg_sync_options_set_redis_tls_server_name(pg_sync_options_t* o,
                                               const char* name,
                                               size_t name_len) {
  o->tls_server_name = Copy(name, name_len);
  o->tls_set = true;
}

void pg_sync_options_set_redis_tls_verify(pg_sync_options_t* o,
                                          unsigned char on) {
  o->tls_verify = on != 0;
  if (on == 0) o->tls_set = true;
}

void pg_sync_options_set_redis_sentinel_password(pg_sync_options_t* o,
                                                 const char* password,
                                                 size_t password_len) {
  o->sentinel_password = Copy(password, password_len);
}

}  // extern "C"
