// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "usage.h"

#include <charconv>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/compiled_catalog.h"
#include "core/window.h"
#include "fmt/format.h"
#include "internal/period.h"
#include "plangate/clock.h"
#include "redis_batch.h"
#include "sync/sync_keys.h"
#include "trace.h"

namespace plangate::quotactl {
namespace {

using internal::redis::Command;
using internal::redis::Reply;

constexpr std::chrono::milliseconds kRedisTimeout{2000};

// A whole decimal number, no sign; nullopt when `text` is not one.
std::optional<int64_t> ParseInt64(std::string_view text, bool allow_sign) {
  if (text.empty()) return std::nullopt;
  if (!allow_sign && (text[0] < '0' || text[0] > '9')) return std::nullopt;
  int64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

std::string_view ReplyTypeName(Reply::Type type) {
  switch (type) {
    case Reply::Type::kString:
      return "string";
    case Reply::Type::kArray:
      return "array";
    case Reply::Type::kInteger:
      return "integer";
    case Reply::Type::kNil:
      return "nil";
    case Reply::Type::kStatus:
      return "status";
    case Reply::Type::kError:
      return "error";
  }
  return "unknown";
}

// Field t of one HMGET key t L n reply.
absl::StatusOr<int64_t> TotalOf(std::string_view where, const std::string& key,
                                const Reply& reply) {
  if (reply.is_error()) {
    if (reply.str.rfind("NOAUTH", 0) == 0) {
      return absl::PermissionDeniedError(fmt::format(
          "{}: {} (the URL needs the password: redis://[user]:PASSWORD@...)",
          where, reply.str));
    }
    return absl::FailedPreconditionError(
        fmt::format("{}: key {}: {}", where, Quote(key), reply.str));
  }
  if (reply.type != Reply::Type::kArray || reply.elements.size() != 3) {
    return absl::DataLossError(fmt::format(
        "{}: key {}: unexpected reply to HMGET ({} of {} elements)", where,
        Quote(key), ReplyTypeName(reply.type), reply.elements.size()));
  }
  const Reply& t = reply.elements[0];
  switch (t.type) {
    case Reply::Type::kNil:
      return 0;  // no such key (or field): nothing counted yet
    case Reply::Type::kInteger:
      return t.integer;
    case Reply::Type::kString: {
      if (std::optional<int64_t> v = ParseInt64(t.str, true)) return *v;
      return absl::DataLossError(fmt::format(
          "{}: key {}: field t is not an integer (got {})", where, Quote(key),
          Quote(std::string_view(t.str).substr(0, 40))));
    }
    default:
      break;
  }
  return absl::DataLossError(
      fmt::format("{}: key {}: field t is not an integer (got a {} reply)",
                  where, Quote(key), ReplyTypeName(t.type)));
}

// Field t of each hash, read with one pipelined HMGET key t L n per key;
// 0 for a missing key or field. Every failure names the server (`where`).
absl::StatusOr<std::vector<int64_t>> ReadTotals(
    const RedisOptions& redis, std::string_view where,
    const std::vector<std::string>& keys) {
  std::vector<Command> commands;
  commands.reserve(keys.size());
  for (const std::string& key : keys) {
    commands.push_back({"HMGET", key, "t", "L", "n"});
  }
  absl::StatusOr<std::vector<Reply>> replies =
      RunBatch(redis, std::move(commands), kRedisTimeout);
  if (!replies.ok()) {
    const std::string message(replies.status().message());
    const bool noauth = message.find("NOAUTH") != std::string::npos;
    return absl::Status(replies.status().code(),
                        fmt::format("{}: {}{}", where, message,
                                    noauth ? " (the URL needs the password: "
                                             "redis://[user]:PASSWORD@...)"
                                           : ""));
  }
  if (replies->size() != keys.size()) {
    return absl::InternalError(fmt::format(
        "{}: {} replies to {} commands", where, replies->size(), keys.size()));
  }
  std::vector<int64_t> totals;
  totals.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    absl::StatusOr<int64_t> t = TotalOf(where, keys[i], (*replies)[i]);
    if (!t.ok()) return t.status();
    totals.push_back(*t);
  }
  return totals;
}

const Limit* FindLimit(const Plan& plan, std::string_view id) {
  for (const Limit& limit : plan.limits) {
    if (limit.id == id) return &limit;
  }
  return nullptr;
}

}  // namespace

absl::StatusOr<int64_t> ParseInstant(std::string_view flag,
                                     std::string_view text) {
  if (!text.empty() && text[0] >= '0' && text[0] <= '9' &&
      text.find_first_not_of("0123456789") == std::string_view::npos) {
    const std::optional<int64_t> ms = ParseInt64(text, false);
    if (!ms || *ms < 1 || *ms > replay::kMaxTimeMs) {
      return absl::InvalidArgumentError(fmt::format(
          "{}: {} ms is out of range [1, {}]", flag, text, replay::kMaxTimeMs));
    }
    return *ms;
  }
  if (std::optional<int64_t> ms = replay::ParseRfc3339(text)) return *ms;
  return absl::InvalidArgumentError(
      fmt::format("{}: must be Unix ms or an RFC 3339 UTC time like "
                  "2026-01-31T00:00:00Z (got {})",
                  flag, Quote(text)));
}

std::string RedisDisplayName(const RedisOptions& redis) {
  const auto host_port = [](const std::string& host, int port) {
    return host.find(':') != std::string::npos
               ? fmt::format("[{}]:{}", host, port)
               : fmt::format("{}:{}", host, port);
  };
  if (!redis.sentinels.empty()) {
    std::string out = redis.tls ? "rediss-sentinel://" : "redis-sentinel://";
    for (size_t i = 0; i < redis.sentinels.size(); ++i) {
      if (i > 0) out += ',';
      out += host_port(redis.sentinels[i].host, redis.sentinels[i].port);
    }
    out += "/" + redis.sentinel_master;
    if (redis.db != 0) out += fmt::format("/{}", redis.db);
    return out;
  }
  if (!redis.unix_socket.empty()) {
    return redis.db == 0
               ? fmt::format("unix://{}", redis.unix_socket)
               : fmt::format("unix://{}?db={}", redis.unix_socket, redis.db);
  }
  std::string out = fmt::format("{}://{}", redis.tls ? "rediss" : "redis",
                                host_port(redis.host, redis.port));
  if (redis.db != 0) out += fmt::format("/{}", redis.db);
  if (redis.cluster) out += "?cluster=1";
  return out;
}

absl::Status FillFromRedis(const Plan& plan, const RedisOptions& redis,
                           std::string_view where, std::string_view key_prefix,
                           int64_t now_ms, AccountUsage* usage) {
  struct Counter {
    const Limit* limit = nullptr;
    size_t current = 0;   // index into keys
    size_t previous = 0;  // sliding only
    bool local = false;   // in flight (concurrent): not in Redis
  };
  std::vector<std::string> keys;
  std::vector<Counter> counters;
  for (const LimitUsage& lu : usage->limits) {
    Counter c;
    c.limit = FindLimit(plan, lu.limit_id);
    if (c.limit == nullptr) {
      return absl::InternalError(
          fmt::format("limit {} of the usage report is not in plan {}",
                      Quote(lu.limit_id), Quote(plan.id)));
    }
    if (lu.window == WindowUnit::kConcurrent) {
      // Requests in flight are each gateway's own; Redis has none.
      c.local = true;
      counters.push_back(c);
      continue;
    }
    auto key = [&](int64_t start_ms) {
      keys.push_back(internal::CounterKey(
          key_prefix, usage->account_id, lu.scope, "",
          CounterMeterName(*c.limit), WindowName(lu.window, lu.window_count),
          c.limit->mode, start_ms));
      return keys.size() - 1;
    };
    c.current = key(lu.window_start_ms);
    if (c.limit->mode == WindowMode::kSliding) {
      c.previous =
          key(lu.window_start_ms - (lu.window_end_ms - lu.window_start_ms));
    }
    counters.push_back(c);
  }
  if (keys.empty()) return absl::OkStatus();

  absl::StatusOr<std::vector<int64_t>> totals = ReadTotals(redis, where, keys);
  if (!totals.ok()) return totals.status();

  for (size_t i = 0; i < usage->limits.size(); ++i) {
    LimitUsage& lu = usage->limits[i];
    const Counter& c = counters[i];
    if (c.local) continue;
    lu.used = (*totals)[c.current];
    const int64_t previous =
        c.limit->mode == WindowMode::kSliding ? (*totals)[c.previous] : 0;
    if (previous > 0 && lu.window_start_ms <= now_ms &&
        now_ms < lu.window_end_ms) {
      // Enforcer::Usage's estimate, from the cluster's totals.
      lu.used = internal::SlidingEstimate(lu.used, previous, lu.window_start_ms,
                                          lu.window_end_ms, now_ms);
    }
    // Exactly Enforcer::Usage's rule.
    lu.state = internal::LimitStateName(
        lu.unlimited, lu.used, lu.limit, lu.hard_limit,
        internal::NudgeThreshold(c.limit->soft_nudge, lu.limit));
  }
  return absl::OkStatus();
}

absl::StatusOr<RedisOptions> RedisFromFlags(
    std::string_view url, const UsageQuery::RedisTlsFlags& f,
    const std::string& sentinel_password) {
  absl::StatusOr<RedisOptions> parsed = ParseRedisUrl(url);
  if (!parsed.ok()) return parsed.status();
  const bool tls_flags = !f.ca_file.empty() || !f.ca_dir.empty() ||
                         !f.cert_file.empty() || !f.key_file.empty() ||
                         !f.server_name.empty() || !f.verify;
  if (tls_flags && !parsed->tls) {
    return absl::InvalidArgumentError(
        "--redis-tls-*: the --redis URL must be rediss:// or "
        "rediss-sentinel:// (TLS)");
  }
  if (f.cert_file.empty() != f.key_file.empty()) {
    return absl::InvalidArgumentError(
        "--redis-tls-cert and --redis-tls-key go together");
  }
  if (!sentinel_password.empty() && parsed->sentinels.empty()) {
    return absl::InvalidArgumentError(
        "--redis-sentinel-password: the --redis URL must be "
        "redis-sentinel://");
  }
  parsed->tls_ca_file = f.ca_file;
  parsed->tls_ca_dir = f.ca_dir;
  parsed->tls_cert_file = f.cert_file;
  parsed->tls_key_file = f.key_file;
  parsed->tls_server_name = f.server_name;
  parsed->tls_verify = f.verify;
  parsed->sentinel_password = sentinel_password;
  return parsed;
}

absl::StatusOr<std::string> UsageReport(const UsageQuery& query) {
  std::optional<RedisOptions> redis;
  if (!query.redis_url.empty()) {
    absl::StatusOr<RedisOptions> parsed =
        RedisFromFlags(query.redis_url, query.tls, query.sentinel_password);
    if (!parsed.ok()) return parsed.status();
    redis = *std::move(parsed);
  }

  absl::StatusOr<std::shared_ptr<const Catalog>> catalog =
      Catalog::LoadFile(query.catalog_path);
  if (!catalog.ok()) return catalog.status();
  const Plan* plan = (*catalog)->FindPlan(query.plan_id);
  if (plan == nullptr) {
    return absl::NotFoundError(fmt::format(
        "plan {} is not in {}", Quote(query.plan_id), query.catalog_path));
  }

  const int64_t now_ms =
      query.now_ms ? *query.now_ms : SystemClock::Default()->NowMs();
  int64_t anchor_ms = 0;
  if (query.anchor_ms) {
    anchor_ms = *query.anchor_ms;
  } else {
    const internal::CivilTime civil = internal::ToCivil(now_ms);
    anchor_ms = internal::FromCivil(civil.year, civil.month, 1, 0);
  }

  EnforcerOptions options;
  options.max_subjects = 16;
  options.max_reservations = 1;
  absl::StatusOr<std::unique_ptr<Enforcer>> enforcer =
      Enforcer::Create(*catalog, options);
  if (!enforcer.ok()) return enforcer.status();
  AccountUpdate update;
  update.account_id = query.account_id;
  update.plan_id = query.plan_id;
  update.anchor_ms = anchor_ms;
  if (absl::Status s = (*enforcer)->UpsertAccount(update); !s.ok()) return s;
  absl::StatusOr<AccountUsage> usage =
      (*enforcer)->Usage(query.account_id, now_ms);
  if (!usage.ok()) return usage.status();

  if (redis) {
    absl::Status s = FillFromRedis(*plan, *redis, RedisDisplayName(*redis),
                                   query.key_prefix, now_ms, &*usage);
    if (!s.ok()) return s;
  }
  return UsageReportJson(*usage);
}

}  // namespace plangate::quotactl
