// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// plangate_gateway: an OpenAI-compatible and MCP reverse proxy that enforces
// a plangate catalog on every request. See examples/gateway/README.md.
//
//   plangate_gateway --catalog plans.json --keys keys.json
//       --accounts accounts.json [--listen 127.0.0.1:8080] [--upstream URL]
//   plangate_gateway --serve-mock 127.0.0.1:9000
//
// Exit status: 0 after a clean shutdown (SIGINT, SIGTERM), 1 for a bad
// catalog, keys or accounts file or a failure to start, 2 for a usage error.

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "config.h"
#include "fmt/format.h"
#include "metering.h"
#include "mock_upstream.h"
#include "net.h"
#include "plangate/catalog.h"
#include "plangate/enforcer.h"
#include "plangate/events.h"
#include "proxy_server.h"

// The cluster sync (include/plangate/sync.h) is compiled in only when the
// build defines PLANGATE_GATEWAY_WITH_SYNC (CMake option of the same name).
#ifdef PLANGATE_GATEWAY_WITH_SYNC
#include "plangate/sync.h"
#endif

namespace gateway {
namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "plangate_gateway: %s\n",
               std::string(status.message()).c_str());
  return 1;
}

// Prints threshold events (the Enforcer delivers them from Maintain): where
// a real gateway would send the "80% of your quota" email.
class EventLog final : public plangate::EventSink {
 public:
  void OnThreshold(const plangate::ThresholdEvent& e) override {
    std::fprintf(
        stderr,
        "plangate_gateway: event %s account=%s%s%s limit=%s used=%lld/%lld\n",
        e.kind == plangate::ThresholdKind::kSoftNudge ? "soft_nudge"
                                                      : "hard_cap",
        e.account_id.c_str(),
        e.subject_id.empty() ? "" : " subject=", e.subject_id.c_str(),
        e.limit_id.c_str(), static_cast<long long>(e.used),
        static_cast<long long>(e.limit));
  }
};

absl::StatusOr<std::vector<tcp::endpoint>> Resolve(const std::string& host,
                                                   uint16_t port,
                                                   bool passive) {
  asio::io_context io;
  tcp::resolver resolver(io);
  beast::error_code ec;
  const auto results = resolver.resolve(
      host, std::to_string(port),
      passive ? tcp::resolver::passive : tcp::resolver::flags(), ec);
  if (ec || results.empty()) {
    return absl::UnavailableError(fmt::format(
        "cannot resolve {}: {}", host, ec ? ec.message() : "no address"));
  }
  std::vector<tcp::endpoint> endpoints;
  for (const auto& r : results) endpoints.push_back(r.endpoint());
  return endpoints;
}

// Runs `io` until SIGINT or SIGTERM; calls `on_tick` every second.
void RunUntilSignal(asio::io_context& io, std::function<void()> on_tick) {
  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::steady_timer timer(io);
  std::function<void()> arm = [&] {
    timer.expires_after(std::chrono::seconds(1));
    timer.async_wait([&](const beast::error_code& ec) {
      if (ec) return;
      if (on_tick) on_tick();
      arm();
    });
  };
  arm();
  signals.async_wait([&](const beast::error_code& ec, int signo) {
    if (!ec) {
      std::fprintf(stderr, "plangate_gateway: %s, shutting down\n",
                   signo == SIGINT ? "SIGINT" : "SIGTERM");
    }
    timer.cancel();
  });
  io.run();
}

int ServeMock(const Flags& flags, int threads) {
  absl::StatusOr<HostPort> hp = ParseHostPort(flags.serve_mock);
  if (!hp.ok()) {
    return Fail(absl::InvalidArgumentError(
        fmt::format("--serve-mock: {}", std::string(hp.status().message()))));
  }
  auto listen = Resolve(hp->host, hp->port, true);
  if (!listen.ok()) return Fail(listen.status());
  auto mock = MockUpstream::Start(listen->front(), threads);
  if (!mock.ok()) return Fail(mock.status());
  const tcp::endpoint at = (*mock)->local_endpoint();
  std::printf(
      "plangate_gateway: mock upstream listening on http://%s\n",
      fmt::format("{}:{}", at.address().to_string(), at.port()).c_str());
  std::fflush(stdout);
  asio::io_context control;
  RunUntilSignal(control, nullptr);
  (*mock)->Stop();
  return 0;
}

int RunGateway(const Flags& flags, int threads) {
  // The plan catalog, the accounts and the keys: all validated up front.
  auto catalog = plangate::Catalog::LoadFile(flags.catalog);
  if (!catalog.ok()) return Fail(catalog.status());
  std::vector<plangate::replay::AccountSpec> accounts;
  if (!flags.accounts.empty()) {
    auto loaded = LoadAccountsFile(flags.accounts, **catalog);
    if (!loaded.ok()) return Fail(loaded.status());
    accounts = std::move(*loaded);
  }
  absl::StatusOr<KeyStore> keys = KeyStore::LoadFile(flags.keys);
  if (!keys.ok()) return Fail(keys.status());
  keys->ResolvePlans(**catalog, accounts);

  EventLog events;
  auto enforcer = plangate::Enforcer::Create(*catalog, {.event_sink = &events});
  if (!enforcer.ok()) return Fail(enforcer.status());
  // With --redis the wallets are shared: their credits go to Redis.
  if (absl::Status s = RegisterAccounts(**enforcer, accounts, flags.accounts,
                                        /*credit_wallets=*/flags.redis.empty());
      !s.ok()) {
    return Fail(s);
  }
  const Metering metering(**enforcer,
                          {.micros_per_1k_tokens = flags.micros_per_1k_tokens,
                           .default_max_tokens = flags.default_max_tokens});

  // The upstream: the built-in mock, or a URL.
  std::unique_ptr<MockUpstream> mock;
  ProxyOptions options;
  if (flags.upstream == "mock") {
    auto started = MockUpstream::Start(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0), 1);
    if (!started.ok()) return Fail(started.status());
    mock = std::move(*started);
    const uint16_t port = mock->local_endpoint().port();
    options.upstream = {.host = "127.0.0.1",
                        .port = port,
                        .host_header = fmt::format("127.0.0.1:{}", port)};
  } else {
    absl::StatusOr<UpstreamUrl> url = ParseUpstreamUrl(flags.upstream);
    if (!url.ok()) {
      return Fail(absl::InvalidArgumentError(
          fmt::format("--upstream: {}", std::string(url.status().message()))));
    }
    options.upstream = *url;
  }
  auto upstream_endpoints =
      Resolve(options.upstream.host, options.upstream.port, false);
  if (!upstream_endpoints.ok()) {
    return Fail(absl::UnavailableError(fmt::format(
        "--upstream: {}", std::string(upstream_endpoints.status().message()))));
  }
  options.upstream_endpoints = std::move(*upstream_endpoints);
  if (const char* key = std::getenv("PLANGATE_UPSTREAM_API_KEY");
      key != nullptr && *key != '\0') {
    options.upstream_authorization = fmt::format("Bearer {}", key);
  }
  auto listen = Resolve(flags.listen.host, flags.listen.port, true);
  if (!listen.ok()) {
    return Fail(absl::UnavailableError(
        fmt::format("--listen: {}", std::string(listen.status().message()))));
  }
  options.listen = listen->front();
  options.threads = threads;
  options.enforce = flags.enforce;
  options.upstream_timeout = flags.upstream_timeout;
  options.sync_wait = flags.sync_wait;
  options.mcp_denial = flags.mcp_denial;
  options.stream_extend_tokens = flags.stream_extend_tokens;

  // Cluster-wide counts through Redis.
#ifdef PLANGATE_GATEWAY_WITH_SYNC
  std::unique_ptr<plangate::RedisSync> sync;
  if (!flags.redis.empty()) {
    absl::StatusOr<plangate::RedisOptions> redis =
        plangate::ParseRedisUrl(flags.redis);
    if (!redis.ok()) {
      return Fail(absl::InvalidArgumentError(
          fmt::format("--redis: {}", std::string(redis.status().message()))));
    }
    const bool tls_flags =
        !flags.redis_tls_ca.empty() || !flags.redis_tls_ca_dir.empty() ||
        !flags.redis_tls_cert.empty() || !flags.redis_tls_key.empty() ||
        !flags.redis_tls_server_name.empty() || !flags.redis_tls_verify;
    if (tls_flags && !redis->tls) {
      return Fail(absl::InvalidArgumentError(
          "--redis-tls-*: the --redis URL must be rediss:// (TLS)"));
    }
    if (!flags.redis_sentinel_password.empty() && redis->sentinels.empty()) {
      return Fail(absl::InvalidArgumentError(
          "--redis-sentinel-password: the --redis URL must be "
          "redis-sentinel:// (or rediss-sentinel://)"));
    }
    redis->sentinel_password = flags.redis_sentinel_password;
    if (flags.redis_tls_cert.empty() != flags.redis_tls_key.empty()) {
      return Fail(absl::InvalidArgumentError(
          "--redis-tls-cert and --redis-tls-key go together"));
    }
    redis->tls_ca_file = flags.redis_tls_ca;
    redis->tls_ca_dir = flags.redis_tls_ca_dir;
    redis->tls_cert_file = flags.redis_tls_cert;
    redis->tls_key_file = flags.redis_tls_key;
    redis->tls_server_name = flags.redis_tls_server_name;
    redis->tls_verify = flags.redis_tls_verify;
    plangate::SyncOptions sync_options;
    sync_options.redis = *redis;
    sync_options.key_prefix = flags.redis_prefix;
    auto started = plangate::RedisSync::Start(**enforcer, sync_options);
    if (!started.ok()) {
      return Fail(absl::UnavailableError(
          fmt::format("--redis: {}", std::string(started.status().message()))));
    }
    sync = std::move(*started);
    // The accounts file only seeds the shared store: an account Redis
    // already has keeps its stored state (an upgrade made elsewhere
    // survives this instance's restart).
    for (const plangate::replay::AccountSpec& spec : accounts) {
      if (absl::Status s = (*enforcer)->SeedAccount(AccountUpdateOf(spec));
          !s.ok()) {
        return Fail(s);
      }
    }
    if (absl::Status s = SeedWallets(**enforcer, accounts); !s.ok()) {
      return Fail(s);
    }
  }
#else
  if (!flags.redis.empty()) {
    return Fail(absl::FailedPreconditionError(
        "--redis: this plangate_gateway was built without cluster sync; "
        "configure with -DPLANGATE_GATEWAY_WITH_SYNC=ON (needs plangate's "
        "RedisSync, include/plangate/sync.h)"));
  }
#endif

  ProxyServer server(std::move(options), **enforcer, *keys, metering);
#ifdef PLANGATE_GATEWAY_WITH_SYNC
  if (sync) {
    server.set_sync_metrics([s = sync.get()] { return s->PrometheusText(); });
  }
#endif
  if (absl::Status s = server.Start(); !s.ok()) return Fail(s);

  const tcp::endpoint at = server.local_endpoint();
  std::printf(
      "plangate_gateway: listening on http://%s (%d thread%s, upstream %s, "
      "enforcement %s, %zu keys, %zu accounts, meters: %s%s)\n",
      fmt::format("{}:{}", at.address().to_string(), at.port()).c_str(),
      threads, threads == 1 ? "" : "s",
      mock ? fmt::format("mock at http://127.0.0.1:{}",
                         mock->local_endpoint().port())
                 .c_str()
           : flags.upstream.c_str(),
      flags.enforce ? "on" : "off", keys->size(), accounts.size(),
      metering.Describe().c_str(),
      flags.redis.empty() ? "" : ", redis sync on");
  std::fflush(stdout);

  asio::io_context control;
  plangate::Enforcer& e = **enforcer;
  RunUntilSignal(control, [&e] { e.Maintain(); });

  // Graceful shutdown: finish what is in flight, then drain to Redis.
  const bool clean = server.Shutdown(flags.drain_timeout);
  if (!clean) {
    std::fprintf(stderr,
                 "plangate_gateway: requests still running after %lld ms were "
                 "cut off\n",
                 static_cast<long long>(flags.drain_timeout.count()));
  }
  if (mock) mock->Stop();
#ifdef PLANGATE_GATEWAY_WITH_SYNC
  if (sync) {
    absl::Status drained = sync->Drain(std::chrono::milliseconds(5000));
    std::fprintf(stderr, "plangate_gateway: redis drain: %s\n",
                 drained.ok() ? "ok" : std::string(drained.message()).c_str());
    sync.reset();
  }
#endif
  e.Maintain();  // deliver the last threshold events
  std::fprintf(stderr, "plangate_gateway: stopped\n");
  return 0;
}

}  // namespace
}  // namespace gateway

int main(int argc, char** argv) {
  absl::StatusOr<gateway::Flags> flags = gateway::ParseFlags(argc, argv);
  if (!flags.ok()) {
    std::fprintf(stderr, "plangate_gateway: %s\n\n%s",
                 std::string(flags.status().message()).c_str(),
                 std::string(gateway::Usage()).c_str());
    return 2;
  }
  if (flags->help) {
    std::fputs(std::string(gateway::Usage()).c_str(), stdout);
    return 0;
  }
  const int threads =
      flags->threads > 0
          ? flags->threads
          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (!flags->serve_mock.empty()) return gateway::ServeMock(*flags, threads);
  return gateway::RunGateway(*flags, threads);
}
