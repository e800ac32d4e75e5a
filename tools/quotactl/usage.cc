// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "usage.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

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
#include "redis/hiredis_util.h"
#include "sync/sync_keys.h"
#include "trace.h"

namespace plangate::quotactl {
namespace {

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

// hiredis' error strings start with a capital ("Connection refused");
// messages here are lower case after the colon.
std::string LowerFirst(std::string text) {
  if (text.size() >= 2 && text[0] >= 'A' && text[0] <= 'Z' && text[1] >= 'a' &&
      text[1] <= 'z') {
    text[0] = static_cast<char>(text[0] - 'A' + 'a');
  }
  return text;
}

std::string_view ReplyTypeName(int type) {
  switch (type) {
    case REDIS_REPLY_STRING:
      return "string";
    case REDIS_REPLY_ARRAY:
      return "array";
    case REDIS_REPLY_INTEGER:
      return "integer";
    case REDIS_REPLY_NIL:
      return "nil";
    case REDIS_REPLY_STATUS:
      return "status";
    case REDIS_REPLY_ERROR:
      return "error";
  }
  return "unknown";
}

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

// One synchronous hiredis connection; every failure names the server.
class RedisConnection {
 public:
  static absl::StatusOr<std::unique_ptr<RedisConnection>> Open(
      const RedisOptions& options, std::string where) {
    timeval tv{};
    tv.tv_sec = kRedisTimeout.count() / 1000;
    tv.tv_usec =
        static_cast<suseconds_t>((kRedisTimeout.count() % 1000) * 1000);
    redisContext* ctx =
        options.unix_socket.empty()
            ? redisConnectWithTimeout(options.host.c_str(), options.port, tv)
            : redisConnectUnixWithTimeout(options.unix_socket.c_str(), tv);
    std::unique_ptr<RedisConnection> conn(
        new RedisConnection(ctx, std::move(where)));
    if (ctx == nullptr) {
      return absl::UnavailableError(
          fmt::format("{}: cannot allocate a connection", conn->where_));
    }
    if (ctx->err != 0) return conn->IoError("");
    if (redisSetTimeout(ctx, tv) != REDIS_OK) return conn->IoError("");

    if (!options.password.empty()) {
      std::vector<std::string> auth = {"AUTH"};
      if (!options.user.empty()) auth.push_back(options.user);
      auth.push_back(options.password);
      absl::StatusOr<ReplyPtr> reply = conn->Command(auth, "AUTH: ");
      if (!reply.ok()) return reply.status();
      if ((*reply)->type == REDIS_REPLY_ERROR) {
        return absl::PermissionDeniedError(
            fmt::format("{}: AUTH failed: {}", conn->where_,
                        std::string((*reply)->str, (*reply)->len)));
      }
    }
    if (options.db != 0) {
      absl::StatusOr<ReplyPtr> reply =
          conn->Command({"SELECT", std::to_string(options.db)}, "SELECT: ");
      if (!reply.ok()) return reply.status();
      if ((*reply)->type == REDIS_REPLY_ERROR) {
        return absl::FailedPreconditionError(
            fmt::format("{}: SELECT {} failed: {}", conn->where_, options.db,
                        std::string((*reply)->str, (*reply)->len)));
      }
    }
    return conn;
  }

  ~RedisConnection() {
    if (ctx_ != nullptr) redisFree(ctx_);
  }
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Field t of each hash, pipelined (HMGET key t L n); 0 for a missing key
  // or field.
  absl::StatusOr<std::vector<int64_t>> ReadTotals(
      const std::vector<std::string>& keys) {
    // A server that closes the socket must not kill us with SIGPIPE.
    const internal::redis::ScopedSigpipeGuard no_sigpipe;
    for (const std::string& key : keys) {
      const char* argv[] = {"HMGET", key.c_str(), "t", "L", "n"};
      const size_t lens[] = {5, key.size(), 1, 1, 1};
      if (redisAppendCommandArgv(ctx_, 5, argv, lens) != REDIS_OK) {
        return IoError("");
      }
    }
    std::vector<int64_t> totals;
    totals.reserve(keys.size());
    for (const std::string& key : keys) {
      void* raw = nullptr;
      if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) {
        return IoError("");
      }
      const ReplyPtr reply(static_cast<redisReply*>(raw));
      absl::StatusOr<int64_t> t = TotalOf(key, *reply);
      if (!t.ok()) return t.status();
      totals.push_back(*t);
    }
    return totals;
  }

 private:
  RedisConnection(redisContext* ctx, std::string where)
      : ctx_(ctx), where_(std::move(where)) {}

  // The connection's error, as "<where>: <what><error>".
  absl::Status IoError(std::string_view what) const {
    std::string error = ctx_->errstr;
    if (error.empty()) error = "I/O error";
    // hiredis reports a read or write past the socket timeout as EAGAIN.
    if (error == "Resource temporarily unavailable") {
      error =
          fmt::format("no reply within {} s", kRedisTimeout.count() / 1000.0);
    } else if (error == "Server closed the connection") {
      error = "the server closed the connection";
    }
    return absl::UnavailableError(
        fmt::format("{}: {}{}", where_, what, LowerFirst(error)));
  }

  absl::StatusOr<ReplyPtr> Command(const std::vector<std::string>& args,
                                   std::string_view what) {
    const internal::redis::ScopedSigpipeGuard no_sigpipe;
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const std::string& a : args) {
      argv.push_back(a.c_str());
      lens.push_back(a.size());
    }
    void* raw = redisCommandArgv(ctx_, static_cast<int>(argv.size()),
                                 argv.data(), lens.data());
    if (raw == nullptr) return IoError(what);
    return ReplyPtr(static_cast<redisReply*>(raw));
  }

  absl::StatusOr<int64_t> TotalOf(const std::string& key,
                                  const redisReply& reply) const {
    if (reply.type == REDIS_REPLY_ERROR) {
      const std::string error(reply.str, reply.len);
      if (error.rfind("NOAUTH", 0) == 0) {
        return absl::PermissionDeniedError(fmt::format(
            "{}: {} (the URL needs the password: redis://[user]:PASSWORD@...)",
            where_, error));
      }
      return absl::FailedPreconditionError(
          fmt::format("{}: key {}: {}", where_, Quote(key), error));
    }
    if (reply.type != REDIS_REPLY_ARRAY || reply.elements != 3) {
      return absl::DataLossError(fmt::format(
          "{}: key {}: unexpected reply to HMGET ({} of {} elements)", where_,
          Quote(key), ReplyTypeName(reply.type), reply.elements));
    }
    const redisReply& t = *reply.element[0];
    switch (t.type) {
      case REDIS_REPLY_NIL:
        return 0;  // no such key (or field): nothing counted yet
      case REDIS_REPLY_INTEGER:
        return static_cast<int64_t>(t.integer);
      case REDIS_REPLY_STRING: {
        const std::string_view text(t.str, t.len);
        if (std::optional<int64_t> v = ParseInt64(text, true)) return *v;
        return absl::DataLossError(
            fmt::format("{}: key {}: field t is not an integer (got {})",
                        where_, Quote(key), Quote(text.substr(0, 40))));
      }
    }
    return absl::DataLossError(
        fmt::format("{}: key {}: field t is not an integer (got a {} reply)",
                    where_, Quote(key), ReplyTypeName(t.type)));
  }

  redisContext* ctx_;
  std::string where_;
};

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
  if (!redis.unix_socket.empty()) {
    return redis.db == 0
               ? fmt::format("unix://{}", redis.unix_socket)
               : fmt::format("unix://{}?db={}", redis.unix_socket, redis.db);
  }
  const std::string host = redis.host.find(':') != std::string::npos
                               ? fmt::format("[{}]", redis.host)
                               : redis.host;
  return redis.db == 0
             ? fmt::format("redis://{}:{}", host, redis.port)
             : fmt::format("redis://{}:{}/{}", host, redis.port, redis.db);
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

  absl::StatusOr<std::unique_ptr<RedisConnection>> conn =
      RedisConnection::Open(redis, std::string(where));
  if (!conn.ok()) return conn.status();
  absl::StatusOr<std::vector<int64_t>> totals = (*conn)->ReadTotals(keys);
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

absl::StatusOr<std::string> UsageReport(const UsageQuery& query) {
  std::optional<RedisOptions> redis;
  if (!query.redis_url.empty()) {
    absl::StatusOr<RedisOptions> parsed = ParseRedisUrl(query.redis_url);
    if (!parsed.ok()) return parsed.status();
    if (parsed->tls) {
      // Its connection is hiredis 0.14's synchronous one, which has no TLS.
      return absl::InvalidArgumentError(
          "rediss:// (TLS) is not supported by quotactl usage yet");
    }
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
