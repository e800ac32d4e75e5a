// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "proxy_server.h"

#include <algorithm>
#include <array>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <charconv>
#include <future>
#include <optional>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <utility>

#include "fmt/format.h"
#include "internal/json_path.h"
#include "nlohmann/json.hpp"
#include "plangate/clock.h"
#include "plangate/http.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <x86intrin.h>
#define PLANGATE_GATEWAY_HAVE_TSC 1
#endif

namespace gateway {
namespace {

// Ordered, so error bodies read like OpenAI's: message, type, code, param.
using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxRequestBody = 4 << 20;  // 4 MiB
// An upstream reply read whole (not relayed as a stream).
constexpr size_t kMaxUpstreamBody = 64 << 20;  // 64 MiB
// One event of a relayed stream; a longer one breaks the stream.
constexpr size_t kMaxStreamEvent = 1 << 20;  // 1 MiB
constexpr auto kClientIdleTimeout = std::chrono::seconds(120);
constexpr auto kClientWriteTimeout = std::chrono::seconds(60);

// A JSON-RPC "server error" code for requests the plan does not allow;
// error.data says which denial it was (status 402, 403, 429...).
constexpr int kJsonRpcPlanDenied = -32000;

enum RouteId : int {
  kRouteChat = 0,
  kRouteModels,
  kRouteMcp,
  kRouteUsage,
  kRoutePlans,
  kRouteMetrics,
  kRouteHealth,
  kRouteOther,
  kNumRoutes,
};
constexpr std::array<std::string_view, kNumRoutes> kRouteNames = {
    "chat_completions", "models",  "mcp",     "billing_usage",
    "billing_plans",    "metrics", "healthz", "other"};

// The clock of the enforce timer (plangate_gateway_enforce_seconds_total):
// the time-stamp counter where the CPU has an invariant one (rdtsc, about
// 10 ns a read on the 2-vCPU benchmark VM, against 25-60 ns for
// steady_clock::now(), which on that VM reads the same counter through the
// vDSO and scales it), else steady_clock's nanoseconds. Ticks become
// seconds at /metrics, at the rate steady_clock measured for them since
// the server started (SecondsPerTick). Its reads bracket the enforcement work
// of a request: two per stretch of it that I/O does not interrupt, so four for
// a buffered chat completion or MCP tool call (Check and rendering before
// the upstream call, usage parsing and Commit after it), two for a denial.
class Ticks {
 public:
  static uint64_t Now() {
#ifdef PLANGATE_GATEWAY_HAVE_TSC
    if (kTsc) return __rdtsc();
#endif
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(
            Clock::now().time_since_epoch())
            .count());
  }
  // Whether Now() counts CPU cycles (else nanoseconds).
  static bool IsTsc() { return kTsc; }

 private:
  static bool InvariantTsc() {
#ifdef PLANGATE_GATEWAY_HAVE_TSC
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (__get_cpuid(0x80000000u, &a, &b, &c, &d) == 0 || a < 0x80000007u) {
      return false;
    }
    if (__get_cpuid(0x80000007u, &a, &b, &c, &d) == 0) return false;
    return (d & (1u << 8)) != 0;  // "invariant TSC": a constant rate
#else
    return false;
#endif
  }
  static inline const bool kTsc = InvariantTsc();
};

// Ticks between two reads of Ticks::Now(); 0 when the second is earlier
// (the thread moved to a CPU whose counter lags).
uint64_t TicksSince(uint64_t start) {
  const uint64_t end = Ticks::Now();
  return end > start ? end - start : 0;
}

// A counter written by one thread and read by any: a relaxed load and
// store, no read-modify-write.
class Counter {
 public:
  void Add(uint64_t n = 1) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t Get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) {
      return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// An OpenAI-style error body, like plangate's rendering of a denial.
void JsonError(Response& res, http::status status, std::string_view message,
               std::string_view type, std::string_view code) {
  Json body;
  body["error"] = {
      {"message", message}, {"type", type}, {"code", code}, {"param", nullptr}};
  res.result(status);
  res.set(http::field::content_type, "application/json");
  res.body() = body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// A JSON-RPC 2.0 error reply.
void JsonRpcError(Response& res, http::status status, const Json& id, int code,
                  std::string_view message, Json data = nullptr) {
  Json body = {{"jsonrpc", "2.0"}, {"id", id}};
  body["error"] = {{"code", code}, {"message", message}};
  if (!data.is_null()) body["error"]["data"] = std::move(data);
  res.result(status);
  res.set(http::field::content_type, "application/json");
  res.body() = body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// plangate's headers (rate limits, Retry-After, warnings) onto a response.
void AddPlangateHeaders(const plangate::HttpRendering& rendering,
                        http::fields& res, bool with_content_type) {
  for (const plangate::HttpHeader& h : rendering.headers()) {
    if (!with_content_type && EqualsIgnoreCase(h.name, "Content-Type")) {
      continue;
    }
    res.set(h.name, h.value);
  }
}

// A denial as plangate renders it.
void Deny(const plangate::HttpRendering& rendering, Response& res) {
  res.result(static_cast<unsigned>(rendering.status()));
  AddPlangateHeaders(rendering, res, /*with_content_type=*/true);
  res.body() = std::string(rendering.body());
}

bool IsEventStream(const http::response_header<>& res) {
  const auto it = res.find(http::field::content_type);
  return it != res.end() && it->value().starts_with("text/event-stream");
}

bool Is2xx(const http::response_header<>& res) {
  return res.result_int() / 100 == 2;
}

// A managed model the plan's allowlist admits: an exact name, or a pattern
// where '*' stands for any run of characters.
bool GlobMatch(std::string_view pattern, std::string_view name) {
  size_t p = 0, n = 0, star = std::string_view::npos, mark = 0;
  while (n < name.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = n;
    } else if (p < pattern.size() && pattern[p] == name[n]) {
      ++p;
      ++n;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      n = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool ModelAllowed(const plangate::Plan& plan, std::string_view model) {
  if (!plan.models_restricted) return true;
  return std::any_of(
      plan.models.begin(), plan.models.end(),
      [&](const std::string& pattern) { return GlobMatch(pattern, model); });
}

// The object an MCP denial carries (JSON-RPC error.data, or the tool
// result's _meta): plangate's OpenAI-style error (message, type, code)
// plus the HTTP status it stands for, Retry-After in seconds and the plan
// that lifts the limit.
Json McpDenialData(const plangate::Decision& d,
                   const plangate::HttpRendering& rendering) {
  Json data = Json::parse(rendering.body(), nullptr, false);
  data = data.is_object() && data.contains("error") && data["error"].is_object()
             ? data["error"]
             : Json::object();
  data["status"] = rendering.status();
  for (const plangate::HttpHeader& h : rendering.headers()) {
    if (!EqualsIgnoreCase(h.name, "Retry-After")) continue;
    int64_t seconds = 0;
    const auto [ptr, ec] = std::from_chars(
        h.value.data(), h.value.data() + h.value.size(), seconds);
    if (ec == std::errc() && ptr == h.value.data() + h.value.size()) {
      data["retry_after"] = seconds;
    }
  }
  if (!d.upgrade_plan.empty()) {
    data["upgrade_plan"] = std::string(d.upgrade_plan);
  }
  return data;
}

void RemoveHopByHop(http::fields& f) {
  for (const http::field name :
       {http::field::connection, http::field::keep_alive,
        http::field::proxy_authenticate, http::field::proxy_authorization,
        http::field::proxy_connection, http::field::te, http::field::trailer,
        http::field::transfer_encoding, http::field::upgrade,
        http::field::expect}) {
    f.erase(name);
  }
}

// A request the parser rejected (as opposed to a connection that ended).
bool IsMalformed(const beast::error_code& ec) {
  static const beast::error_category& http_errors =
      beast::error_code(http::error::bad_version).category();
  return ec.category() == http_errors && ec != http::error::end_of_stream &&
         ec != http::error::partial_message && ec != http::error::body_limit;
}

std::string_view PathOf(std::string_view target) {
  return target.substr(0, target.find('?'));
}

// "%2F" and the like decoded; nullopt for a malformed escape.
std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

}  // namespace

// Per worker thread.
struct ProxyServer::Worker {
  struct Stats {
    std::array<Counter, kNumRoutes> requests;
    std::array<Counter, 600> responses;  // by status code
    Counter checks;                      // Enforcer::Check calls
    Counter denials;                     // ... that denied
    Counter commits;          // reservations settled with the actual usage
    Counter refunds;          // ... refunded (upstream failed)
    Counter upstream_errors;  // no answer, or a 5xx
    Counter streams;          // event streams relayed
    Counter streams_broken;   // ... that the upstream broke off
    Counter streams_left;     // ... that the client left
    Counter streams_cut;      // ... ended at a cap (an extension denied)
    Counter enforce_ticks;    // time in plangate and usage parsing (Ticks)
  };

  explicit Worker(const ProxyOptions& options)
      : ioc(1),
        guard(asio::make_work_guard(ioc)),
        pool(ioc.get_executor(), options.upstream_endpoints,
             options.upstream_timeout) {}

  asio::io_context ioc;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>>
      guard;
  UpstreamPool pool;
  // Touched only on this worker's thread.
  std::unordered_set<Session*> sessions;
  bool draining = false;
  Stats stats;
  std::thread thread;
};

// One client connection, registered with its worker while it lives.
struct ProxyServer::Session {
  beast::tcp_stream* stream = nullptr;
  bool idle = true;  // waiting for the next request
  // The route wrote the response itself (a relayed stream); `reusable`:
  // the connection may serve another request after it.
  bool responded = false;
  bool reusable = true;
  unsigned version = 11;
  bool keep_alive = false;
};

ProxyServer::ProxyServer(ProxyOptions options, plangate::Enforcer& enforcer,
                         const KeyStore& keys, const Metering& metering)
    : options_(std::move(options)),
      enforcer_(enforcer),
      keys_(keys),
      metering_(metering),
      plans_json_(PublicCatalogJson(*enforcer.catalog())),
      tick_origin_ns_(std::chrono::duration_cast<std::chrono::nanoseconds>(
                          Clock::now().time_since_epoch())
                          .count()),
      tick_origin_(Ticks::Now()) {}

double ProxyServer::SecondsPerTick() const {
  if (!Ticks::IsTsc()) return 1e-9;
  // The counter's rate, as steady_clock saw it since the server started
  // (at least 10 ms, for a scrape right after the start).
  for (;;) {
    const int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                           Clock::now().time_since_epoch())
                           .count() -
                       tick_origin_ns_;
    const uint64_t ticks = Ticks::Now() - tick_origin_;
    if (ns >= 10'000'000 && ticks > 0) {
      return static_cast<double>(ns) * 1e-9 / static_cast<double>(ticks);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

ProxyServer::~ProxyServer() { Shutdown(std::chrono::milliseconds(0)); }

absl::Status ProxyServer::Start() {
  for (int i = 0; i < std::max(1, options_.threads); ++i) {
    workers_.push_back(std::make_unique<Worker>(options_));
  }
  acceptor_ = std::make_unique<tcp::acceptor>(workers_[0]->ioc);
  beast::error_code ec;
  tcp::acceptor& a = *acceptor_;
  a.open(options_.listen.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(options_.listen, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) local_ = a.local_endpoint(ec);
  if (ec) {
    workers_.clear();
    return absl::UnavailableError(
        fmt::format("--listen: cannot listen on {}:{}: {}",
                    options_.listen.address().to_string(),
                    options_.listen.port(), ec.message()));
  }
  asio::co_spawn(workers_[0]->ioc, Accept(), asio::detached);
  for (auto& w : workers_) {
    w->thread = std::thread([w = w.get()] { w->ioc.run(); });
  }
  return absl::OkStatus();
}

bool ProxyServer::Shutdown(std::chrono::milliseconds timeout) {
  if (workers_.empty()) return true;
  // 1. No new connections; idle ones close now, busy ones after their
  //    response (which says Connection: close).
  std::promise<void> closed;
  asio::post(workers_[0]->ioc, [this, &closed] {
    beast::error_code ec;
    acceptor_->close(ec);
    closed.set_value();
  });
  closed.get_future().wait();
  for (auto& w : workers_) {
    asio::post(w->ioc, [w = w.get()] {
      w->draining = true;
      for (Session* s : w->sessions) {
        if (s->idle) s->stream->cancel();
      }
    });
  }
  // 2. Wait for the requests in flight.
  const auto deadline = Clock::now() + timeout;
  while (sessions_.load() > 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const bool clean = sessions_.load() == 0;
  // 3. Stop the workers (what is left is abandoned) and join them.
  for (auto& w : workers_) {
    if (clean) {
      w->guard.reset();
    } else {
      w->ioc.stop();
    }
  }
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
  acceptor_.reset();
  workers_.clear();
  return clean;
}

awaitable<void> ProxyServer::Accept() {
  for (;;) {
    Worker& w = *workers_[next_worker_];
    next_worker_ = (next_worker_ + 1) % workers_.size();
    beast::error_code ec;
    tcp::socket socket = co_await acceptor_->async_accept(w.ioc, Await(ec));
    if (!acceptor_->is_open()) co_return;
    if (ec) continue;  // e.g. EMFILE; the next accept may succeed
    sessions_.fetch_add(1);
    asio::co_spawn(w.ioc, Serve(w, std::move(socket)), asio::detached);
  }
}

awaitable<void> ProxyServer::Serve(Worker& w, tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::error_code ec;
  stream.socket().set_option(tcp::no_delay(true), ec);
  Session session{.stream = &stream};
  w.sessions.insert(&session);
  beast::flat_buffer buffer;
  while (!w.draining) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(kMaxRequestBody);
    session.idle = true;
    stream.expires_after(kClientIdleTimeout);
    co_await http::async_read_header(stream, buffer, parser, Await(ec));
    session.idle = false;
    if (!ec && parser.get()[http::field::expect] == "100-continue") {
      http::response<http::empty_body> cont{http::status::continue_, 11};
      co_await http::async_write(stream, cont, Await(ec));
    }
    if (!ec) co_await http::async_read(stream, buffer, parser, Await(ec));

    Response res;
    bool keep_alive = false;
    unsigned version = 11;
    session.responded = false;
    session.reusable = true;
    if (ec == http::error::body_limit) {
      JsonError(res, http::status::payload_too_large,
                fmt::format("request body over {} bytes", kMaxRequestBody),
                "invalid_request_error", "request_too_large");
    } else if (IsMalformed(ec)) {
      JsonError(res, http::status::bad_request,
                fmt::format("malformed HTTP request: {}", ec.message()),
                "invalid_request_error", "bad_request");
    } else if (ec) {
      break;  // closed, reset, timed out or cancelled by Shutdown
    } else {
      Request& req = parser.get();
      keep_alive = req.keep_alive();  // before Route rewrites req upstream
      version = req.version();
      session.keep_alive = keep_alive && !w.draining;
      session.version = version;
      co_await Route(w, session, req, res);
      if (session.responded) {
        if (!session.reusable || !session.keep_alive || w.draining) break;
        continue;
      }
    }
    keep_alive = keep_alive && !w.draining;
    res.version(version);
    res.keep_alive(keep_alive);
    res.prepare_payload();
    w.stats.responses[std::min(res.result_int(), 599u)].Add();
    stream.expires_after(kClientWriteTimeout);
    beast::error_code write_ec;
    co_await http::async_write(stream, res, Await(write_ec));
    if (write_ec || !keep_alive) break;
  }
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  w.sessions.erase(&session);
  sessions_.fetch_sub(1);
}

awaitable<void> ProxyServer::Route(Worker& w, Session& session, Request& req,
                                   Response& res) {
  const std::string_view path = PathOf(req.target());
  const http::verb method = req.method();
  const auto route = [&](RouteId r, http::verb allowed) {
    w.stats.requests[r].Add();
    if (method == allowed) return true;
    res.set(http::field::allow, http::to_string(allowed));
    JsonError(res, http::status::method_not_allowed,
              fmt::format("{} {}: use {}", req.method_string(), path,
                          http::to_string(allowed)),
              "invalid_request_error", "method_not_allowed");
    return false;
  };
  if (path == "/v1/chat/completions") {
    if (route(kRouteChat, http::verb::post)) {
      co_await ChatCompletions(w, session, req, res);
    }
  } else if (path == "/v1/models") {
    if (route(kRouteModels, http::verb::get)) co_await Models(w, req, res);
  } else if (path.starts_with("/v1/models/")) {
    if (route(kRouteModels, http::verb::get)) co_await Models(w, req, res);
  } else if (path == "/mcp") {
    if (route(kRouteMcp, http::verb::post)) co_await Mcp(w, req, res);
  } else if (path == "/v1/billing/usage") {
    if (route(kRouteUsage, http::verb::get)) Usage(w, req, res);
  } else if (path == "/v1/billing/plans") {
    if (route(kRoutePlans, http::verb::get)) {
      res.set(http::field::content_type, "application/json");
      res.body() = plans_json_;
    }
  } else if (path == "/metrics") {
    if (route(kRouteMetrics, http::verb::get)) {
      res.set(http::field::content_type, "text/plain; version=0.0.4");
      res.body() = MetricsText();
    }
  } else if (path == "/healthz") {
    if (route(kRouteHealth, http::verb::get)) {
      res.set(http::field::content_type, "text/plain");
      res.body() = "ok\n";
    }
  } else {
    w.stats.requests[kRouteOther].Add();
    JsonError(res, http::status::not_found,
              fmt::format("no route {} {}", req.method_string(), path),
              "invalid_request_error", "not_found");
  }
}

const KeyRecord* ProxyServer::Authenticate(const Request& req,
                                           Response& res) const {
  std::string_view secret;
  if (const auto it = req.find(http::field::authorization); it != req.end()) {
    const std::string_view value = it->value();
    if (value.size() > 7 && EqualsIgnoreCase(value.substr(0, 7), "Bearer ")) {
      secret = value.substr(7);
      while (!secret.empty() && secret.front() == ' ') secret.remove_prefix(1);
    }
  }
  if (const KeyRecord* key = secret.empty() ? nullptr : keys_.Find(secret)) {
    return key;
  }
  res.set(http::field::www_authenticate, "Bearer");
  JsonError(res, http::status::unauthorized,
            secret.empty() ? "Missing API key: send Authorization: Bearer <key>"
                           : "Invalid API key",
            "invalid_request_error", "invalid_api_key");
  return nullptr;
}

void ProxyServer::PrepareUpstream(Request& req) const {
  RemoveHopByHop(req);
  req.erase(http::field::authorization);
  if (!options_.upstream_authorization.empty()) {
    req.set(http::field::authorization, options_.upstream_authorization);
  }
  req.set(http::field::host, options_.upstream.host_header);
  if (!options_.upstream.base_path.empty()) {
    req.target(options_.upstream.base_path + std::string(req.target()));
  }
  req.version(11);
  req.keep_alive(true);
  req.prepare_payload();
}

awaitable<UpstreamResult> ProxyServer::CallUpstream(Worker& w, Request& req) {
  PrepareUpstream(req);
  UpstreamResult up = co_await w.pool.RoundTrip(req);
  if (up.ec || up.response.result_int() >= 500) w.stats.upstream_errors.Add();
  co_return up;
}

void ProxyServer::Relay(Worker&, UpstreamResult& up, Response& res) const {
  if (up.ec) {
    const bool timeout = up.ec == beast::error::timeout;
    JsonError(
        res,
        timeout ? http::status::gateway_timeout : http::status::bad_gateway,
        fmt::format("upstream {}: {}", timeout ? "timed out" : "failed",
                    up.ec.message()),
        "server_error", timeout ? "upstream_timeout" : "upstream_unavailable");
    return;
  }
  if (up.response.result_int() >= 500) {
    JsonError(res, http::status::bad_gateway,
              fmt::format("upstream answered {}", up.response.result_int()),
              "server_error", "upstream_error");
    return;
  }
  res = std::move(up.response);
  RemoveHopByHop(res);
}

awaitable<void> ProxyServer::ChatCompletions(Worker& w, Session& session,
                                             Request& req, Response& res) {
  const KeyRecord* key = Authenticate(req, res);
  if (key == nullptr) co_return;
  const absl::StatusOr<ChatRequestInfo> chat = ParseChatRequest(req.body());
  if (!chat.ok()) {
    JsonError(res, http::status::bad_request,
              std::string(chat.status().message()), "invalid_request_error",
              "invalid_request");
    co_return;
  }
  if (!options_.enforce) {
    if (chat->stream) {
      co_await StreamChat(w, session, req, res, *chat, *key, nullptr);
      co_return;
    }
    UpstreamResult up = co_await CallUpstream(w, req);
    Relay(w, up, res);
    co_return;
  }

  // Check: may this request go upstream?
  uint64_t t0 = Ticks::Now();
  const Charge estimate = metering_.ChatEstimate(*chat, *key);
  plangate::CheckRequest check = {
      .account_id = key->account,
      .project_id = key->project,
      .key_id = key->id,
      .user_id = key->user,
      .key_kind = key->kind,
      .byok = key->byok,
      .model = chat->model,
      .features = metering_.Features(*key),
      .wallet_micros = estimate.wallet_micros,
      .amounts = estimate.span(),
      .now_ms = plangate::SystemClock::Default()->NowMs(),
  };
  plangate::Decision d = enforcer_.Check(check);
  if (d.deny == plangate::DenyKind::kSyncing) {
    const uint64_t before = TicksSince(t0);
    co_await WaitForSync(check, d);
    t0 = Ticks::Now() - before;  // the wait is not plangate's CPU time
  }
  w.stats.checks.Add();
  if (!d.admitted()) {
    Deny(plangate::HttpRendering(d, check.now_ms), res);
    w.stats.denials.Add();
    w.stats.enforce_ticks.Add(TicksSince(t0));
    co_return;
  }
  // Rendered in place: Admitted keeps the only copy.
  Admitted admitted{.decision = d,
                    .rendering = plangate::HttpRendering(d, check.now_ms)};
  w.stats.enforce_ticks.Add(TicksSince(t0));
  admitted.reserved_tokens = metering_.TokensOf(estimate);
  admitted.model = chat->model;

  if (chat->stream) {
    co_await StreamChat(w, session, req, res, *chat, *key, &admitted);
    co_return;
  }
  UpstreamResult up = co_await CallUpstream(w, req);
  SettleBuffered(w, admitted, *key, up);
  Relay(w, up, res);
  AddPlangateHeaders(admitted.rendering, res, /*with_content_type=*/false);
}

void ProxyServer::SettleBuffered(Worker& w, const Admitted& a,
                                 const KeyRecord& key,
                                 const UpstreamResult& up) {
  // Commit: the actual usage, or a refund when the upstream failed.
  const uint64_t t0 = Ticks::Now();
  if (up.ec || !Is2xx(up.response)) {
    Settle(w, a, key, /*success=*/false, nullptr);
  } else {
    // Read back from the end of the reply, where OpenAI-compatible
    // upstreams put their usage.
    const std::optional<TokenUsage> usage =
        ReplyUsage(up.response.body(), IsEventStream(up.response));
    if (usage) {
      const Charge actual = metering_.ChatActual(*usage, a.model, key);
      Settle(w, a, key, true, &actual);
    } else {
      Settle(w, a, key, true, nullptr);  // no usage block: the estimate stands
    }
  }
  w.stats.enforce_ticks.Add(TicksSince(t0));
}

void ProxyServer::Settle(Worker& w, const Admitted& a, const KeyRecord& key,
                         bool success, const Charge* actual) {
  if (!success) {
    enforcer_.Commit({.reservation = a.decision.reservation, .success = false});
    w.stats.refunds.Add();
    return;
  }
  if (actual != nullptr) {
    enforcer_.Commit(
        {.reservation = a.decision.reservation,
         .success = true,
         .actual = actual->span(),
         .wallet_micros = key.prepaid ? actual->wallet_micros : int64_t{-1}});
  } else {
    enforcer_.Commit({.reservation = a.decision.reservation, .success = true});
  }
  w.stats.commits.Add();
}

namespace {

// Writes one part of a relayed stream: a chunk (HTTP/1.1), or the bytes
// themselves (HTTP/1.0, whose body runs to the connection's close).
awaitable<void> WriteStreamPart(beast::tcp_stream& client, bool chunked,
                                const std::string& out, beast::error_code& ec) {
  client.expires_after(kClientWriteTimeout);
  if (chunked) {
    co_await asio::async_write(client, http::make_chunk(asio::buffer(out)),
                               Await(ec));
  } else {
    co_await asio::async_write(client, asio::buffer(out), Await(ec));
  }
}

}  // namespace

awaitable<void> ProxyServer::StreamChat(Worker& w, Session& session,
                                        Request& req, Response& res,
                                        const ChatRequestInfo& chat,
                                        const KeyRecord& key,
                                        const Admitted* admitted) {
  // The upstream is asked for its usage chunk even when the client did not
  // ask: it is what the stream is committed with.
  if (!chat.include_usage) req.body() = WithStreamUsage(req.body());
  PrepareUpstream(req);
  beast::error_code ec;
  std::unique_ptr<UpstreamExchange> ex = co_await w.pool.Open(req, ec);
  if (ec || ex == nullptr) {
    w.stats.upstream_errors.Add();
    if (admitted) Settle(w, *admitted, key, /*success=*/false, nullptr);
    UpstreamResult up{.ec = ec ? ec : beast::error::timeout};
    Relay(w, up, res);
    co_return;
  }
  if (!Is2xx(ex->header()) || !IsEventStream(ex->header())) {
    // An error, or an upstream that does not stream: read it whole and
    // treat it as a buffered reply.
    UpstreamResult up;
    up.response.base() = ex->header();
    up.response.body() = co_await ex->ReadAll(kMaxUpstreamBody, up.ec);
    if (up.ec || up.response.result_int() >= 500) w.stats.upstream_errors.Add();
    if (admitted) SettleBuffered(w, *admitted, key, up);
    Relay(w, up, res);
    if (admitted) {
      AddPlangateHeaders(admitted->rendering, res, /*with_content_type=*/false);
    }
    co_return;
  }

  // The stream's head, then each event as soon as it is complete.
  beast::tcp_stream& client = *session.stream;
  http::response<http::empty_body> head{http::status::ok, session.version};
  head.set(http::field::content_type, "text/event-stream");
  head.set(http::field::cache_control, "no-cache");
  head.set("X-Accel-Buffering", "no");
  if (admitted) {
    AddPlangateHeaders(admitted->rendering, head, /*with_content_type=*/false);
  }
  // HTTP/1.1: chunked, and the connection may serve more. HTTP/1.0 has no
  // chunks: the body runs to the connection's close.
  const bool chunked = session.version >= 11;
  head.keep_alive(chunked && session.keep_alive);
  head.chunked(chunked);
  session.responded = true;
  w.stats.responses[200].Add();
  http::response_serializer<http::empty_body> sr{head};
  client.expires_after(kClientWriteTimeout);
  beast::error_code client_ec;
  co_await http::async_write_header(client, sr, Await(client_ec));

  SseSplitter splitter(kMaxStreamEvent);
  std::vector<std::string> events;
  std::string out;
  std::array<char, 16 << 10> buf;
  std::optional<TokenUsage> usage;
  int64_t text_bytes = 0;
  bool upstream_broke = false;
  std::string broke_reason;
  // A stream past its estimate extends its reservation; `cut` holds the
  // denial that ended it.
  int64_t reserved_tokens = admitted ? admitted->reserved_tokens : 0;
  std::optional<plangate::HttpRendering> cut;
  while (!client_ec && !ex->done()) {
    beast::error_code up_ec;
    const size_t n = co_await ex->ReadSome(buf, up_ec);
    if (up_ec) {
      upstream_broke = true;
      broke_reason = up_ec == beast::error::timeout
                         ? "upstream stream timed out"
                         : "upstream stream broke: " + up_ec.message();
      break;
    }
    events.clear();
    if (!splitter.Feed(std::string_view(buf.data(), n), &events)) {
      upstream_broke = true;
      broke_reason =
          fmt::format("upstream stream event over {} bytes", kMaxStreamEvent);
      break;
    }
    out.clear();
    for (const std::string& e : events) {
      const StreamEventInfo info = ScanStreamEvent(e);
      if (admitted != nullptr && options_.stream_extend_tokens > 0 &&
          info.text_bytes > 0) {
        // The tokens streamed with this event, as the commit will count
        // them: past what is reserved, extend first; denied, this event
        // and the rest do not go out.
        const int64_t so_far = metering_.TokensOf(
            metering_.ChatStreamed(chat, text_bytes + info.text_bytes, key));
        if (so_far > reserved_tokens) {
          const int64_t step = options_.stream_extend_tokens;
          const int64_t more =
              (so_far - reserved_tokens + step - 1) / step * step;
          const Charge extension =
              metering_.StreamExtension(more, chat.model, key);
          const uint64_t t0 = Ticks::Now();
          const int64_t now = plangate::SystemClock::Default()->NowMs();
          const plangate::Decision xd =
              enforcer_.Extend({.reservation = admitted->decision.reservation,
                                .amounts = extension.span(),
                                .now_ms = now});
          if (xd.admitted()) {
            reserved_tokens += more;
          } else {
            cut.emplace(xd, now);
          }
          w.stats.enforce_ticks.Add(TicksSince(t0));
          if (cut) break;
        }
      }
      text_bytes += info.text_bytes;
      if (info.usage) usage = info.usage;
      // The usage chunk (no choices) goes on only if the client asked.
      if (info.usage && !info.has_choices && !chat.include_usage) continue;
      out += e;
    }
    if (ex->done() && !cut) out += splitter.pending();  // unterminated last
    if (!out.empty()) {
      co_await WriteStreamPart(client, chunked, out, client_ec);
    }
    if (cut) break;
  }
  if (!client_ec) {
    if (cut) {
      // The denial as the stream's last event, in the error shape the
      // OpenAI SDKs raise (the same body a denied request gets).
      out = fmt::format("data: {}\n\n", cut->body());
      co_await WriteStreamPart(client, chunked, out, client_ec);
      w.stats.streams_cut.Add();
    } else if (upstream_broke) {
      // A final event the OpenAI SDKs raise as an APIError.
      Json e;
      e["error"] = {{"message", broke_reason},
                    {"type", "server_error"},
                    {"code", "upstream_error"},
                    {"param", nullptr}};
      out = fmt::format("data: {}\n\n",
                        e.dump(-1, ' ', false, Json::error_handler_t::replace));
      co_await WriteStreamPart(client, chunked, out, client_ec);
      w.stats.upstream_errors.Add();
    }
    if (!client_ec && chunked) {
      co_await asio::async_write(client, http::make_chunk_last(),
                                 Await(client_ec));
    }
  }
  session.reusable = chunked && !client_ec;
  w.stats.streams.Add();
  if (upstream_broke) w.stats.streams_broken.Add();
  if (client_ec) w.stats.streams_left.Add();
  ex.reset();  // back to the pool if read to the end, else closed

  // Commit: the usage the upstream reported; else what was streamed; a
  // stream that failed before producing anything is refunded. A stream cut
  // at a cap commits what went out, which its extensions covered.
  if (admitted == nullptr) co_return;
  const uint64_t t0 = Ticks::Now();
  const bool finished = !upstream_broke && !client_ec && !cut;
  if (usage) {
    const Charge actual = metering_.ChatActual(*usage, chat.model, key);
    Settle(w, *admitted, key, true, &actual);
  } else if (!finished && text_bytes == 0) {
    Settle(w, *admitted, key, false, nullptr);
  } else {
    const Charge actual = metering_.ChatStreamed(chat, text_bytes, key);
    Settle(w, *admitted, key, true, &actual);
  }
  w.stats.enforce_ticks.Add(TicksSince(t0));
}

awaitable<void> ProxyServer::Models(Worker& w, Request& req, Response& res) {
  const KeyRecord* key = Authenticate(req, res);
  if (key == nullptr) co_return;
  // GET /v1/models/{id} (percent-encoded, as the SDKs send it).
  std::optional<std::string> model_id;
  if (std::string_view path = PathOf(req.target());
      path.starts_with("/v1/models/")) {
    path.remove_prefix(std::string_view("/v1/models/").size());
    model_id = PercentDecode(path);
    if (!model_id || model_id->empty()) {
      JsonError(res, http::status::bad_request,
                "the model id in the path is not valid percent-encoding",
                "invalid_request_error", "invalid_request");
      co_return;
    }
  }
  // The key's plan: the account's, else the catalog's default plan.
  const std::shared_ptr<const plangate::Catalog> catalog = enforcer_.catalog();
  std::string plan_id;
  if (absl::StatusOr<plangate::AccountUsage> usage =
          enforcer_.Usage(key->account);
      usage.ok()) {
    plan_id = usage->plan_id;
  } else {
    plan_id = catalog->default_plan();
  }
  const plangate::Plan* plan = catalog->FindPlan(plan_id);
  if (plan == nullptr && options_.enforce) {
    JsonError(res, http::status::forbidden,
              fmt::format("Account {} has no plan", Json(key->account).dump()),
              "permission_denied", "unknown_account");
    co_return;
  }
  const bool restricted =
      options_.enforce && !key->byok && plan->models_restricted;

  // The upstream's list.
  Request list{http::verb::get, "/v1/models", 11};
  PrepareUpstream(list);
  UpstreamResult up = co_await w.pool.RoundTrip(list);
  Json upstream_models = Json::array();
  bool have_list = false;
  if (!up.ec && Is2xx(up.response)) {
    Json body = Json::parse(up.response.body(), nullptr, false);
    if (body.is_object() && body.contains("data") && body["data"].is_array()) {
      for (Json& m : body["data"]) {
        if (m.is_object() && m.contains("id") && m["id"].is_string()) {
          upstream_models.push_back(std::move(m));
        }
      }
      have_list = true;
    }
  }
  if (!have_list && !restricted) {
    // Any model is allowed and only the upstream knows which exist.
    w.stats.upstream_errors.Add();
    JsonError(res, http::status::bad_gateway,
              up.ec ? fmt::format("upstream model list unavailable: {}",
                                  up.ec.message())
              : Is2xx(up.response)
                  ? std::string("upstream model list is not an OpenAI list")
                  : fmt::format("upstream model list answered {}",
                                up.response.result_int()),
              "server_error", "upstream_error");
    co_return;
  }
  Json data = Json::array();
  std::unordered_set<std::string> listed;
  for (Json& m : upstream_models) {
    const std::string& id = m["id"].get_ref<const std::string&>();
    if (restricted && !ModelAllowed(*plan, id)) continue;
    if (!listed.insert(id).second) continue;
    data.push_back(std::move(m));
  }
  if (restricted) {
    // Exact names of the allowlist the upstream did not list.
    for (const std::string& name : plan->models) {
      if (name.find('*') != std::string::npos) continue;
      if (!listed.insert(name).second) continue;
      data.push_back({{"id", name},
                      {"object", "model"},
                      {"created", 0},
                      {"owned_by", "system"}});
    }
  }
  res.set(http::field::content_type, "application/json");
  if (!model_id) {
    res.body() = Json{{"object", "list"}, {"data", std::move(data)}}.dump(
        -1, ' ', false, Json::error_handler_t::replace);
    co_return;
  }
  // GET /v1/models/{id}: that model, if the plan allows it.
  for (Json& m : data) {
    if (m["id"] == *model_id) {
      res.body() = m.dump(-1, ' ', false, Json::error_handler_t::replace);
      co_return;
    }
  }
  JsonError(res, http::status::not_found,
            fmt::format("The model {} does not exist or your plan does not "
                        "allow it",
                        plangate::internal::JsonQuote(*model_id)),
            "invalid_request_error", "model_not_found");
}

awaitable<void> ProxyServer::WaitForSync(plangate::CheckRequest& check,
                                         plangate::Decision& d) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  std::chrono::milliseconds delay(2), waited(0);
  while (d.deny == plangate::DenyKind::kSyncing &&
         waited < options_.sync_wait) {
    timer.expires_after(delay);
    beast::error_code ec;
    co_await timer.async_wait(Await(ec));
    if (ec) co_return;
    waited += delay;
    delay = std::min(delay * 2, std::chrono::milliseconds(100));
    check.now_ms = plangate::SystemClock::Default()->NowMs();
    d = enforcer_.Check(check);
  }
}

awaitable<void> ProxyServer::Mcp(Worker& w, Request& req, Response& res) {
  const KeyRecord* key = Authenticate(req, res);
  if (key == nullptr) co_return;
  const absl::StatusOr<McpRequestInfo> rpc = ParseMcpRequest(req.body());
  if (!rpc.ok()) {
    const bool not_json =
        rpc.status().message() == "request body is not valid JSON";
    JsonRpcError(res, http::status::bad_request, nullptr,
                 not_json ? -32700 : -32600,
                 std::string(rpc.status().message()));
    co_return;
  }
  // Only tools/call is metered; initialize, tools/list, notifications...
  // pass through.
  if (!options_.enforce || rpc->method != "tools/call" || rpc->notification) {
    UpstreamResult up = co_await CallUpstream(w, req);
    Relay(w, up, res);
    co_return;
  }

  uint64_t t0 = Ticks::Now();
  const Charge charge = metering_.ToolCall(rpc->tool);
  plangate::CheckRequest check = {
      .account_id = key->account,
      .project_id = key->project,
      .key_id = key->id,
      .user_id = key->user,
      .key_kind = key->kind,
      .byok = key->byok,
      .features = metering_.Features(*key),
      .amounts = charge.span(),
      .now_ms = plangate::SystemClock::Default()->NowMs(),
  };
  plangate::Decision d = enforcer_.Check(check);
  if (d.deny == plangate::DenyKind::kSyncing) {
    const uint64_t before = TicksSince(t0);
    co_await WaitForSync(check, d);
    t0 = Ticks::Now() - before;
  }
  const plangate::HttpRendering rendering(d, check.now_ms);
  w.stats.checks.Add();
  if (!d.admitted()) {
    // HTTP 200 either way: to an MCP client a 4xx is a broken transport,
    // while this is an answer to its request that says why and when.
    Json data = McpDenialData(d, rendering);
    const std::string message = data.value("message", "denied by the plan");
    if (options_.mcp_denial == McpDenial::kToolResult) {
      std::string text = fmt::format(
          "The tool {} was not run: {} (HTTP {}, {}).",
          Json(rpc->tool).dump(-1, ' ', false, Json::error_handler_t::replace),
          message, rendering.status(), data.value("code", "denied"));
      Json body = {{"jsonrpc", "2.0"}, {"id", rpc->id}};
      body["result"] = {
          {"content", Json::array({{{"type", "text"}, {"text", text}}})},
          {"isError", true},
          {"_meta", {{"plangate/denial", std::move(data)}}}};
      res.result(http::status::ok);
      res.set(http::field::content_type, "application/json");
      res.body() = body.dump(-1, ' ', false, Json::error_handler_t::replace);
    } else {
      JsonRpcError(res, http::status::ok, rpc->id, kJsonRpcPlanDenied, message,
                   std::move(data));
    }
    AddPlangateHeaders(rendering, res, /*with_content_type=*/false);
    w.stats.denials.Add();
    w.stats.enforce_ticks.Add(TicksSince(t0));
    co_return;
  }
  uint64_t spent = TicksSince(t0);

  UpstreamResult up = co_await CallUpstream(w, req);

  // A tool call counts only when it succeeded: a result without isError.
  t0 = Ticks::Now();
  bool ok = !up.ec && Is2xx(up.response);
  if (ok) {
    const ReplyScan scan =
        ScanReply(up.response.body(), IsEventStream(up.response));
    ok = scan.valid && scan.has_result && !scan.has_error &&
         !scan.result_is_error;
  }
  enforcer_.Commit({.reservation = d.reservation, .success = ok});
  (ok ? w.stats.commits : w.stats.refunds).Add();
  spent += TicksSince(t0);
  w.stats.enforce_ticks.Add(spent);
  Relay(w, up, res);
  AddPlangateHeaders(rendering, res, /*with_content_type=*/false);
}

void ProxyServer::Usage(Worker&, const Request& req, Response& res) {
  const KeyRecord* key = Authenticate(req, res);
  if (key == nullptr) return;
  const absl::StatusOr<plangate::AccountUsage> usage =
      enforcer_.Usage(key->account);
  if (!usage.ok()) {
    JsonError(
        res, http::status::not_found,
        fmt::format("no usage for account {}: {}", Json(key->account).dump(),
                    std::string(usage.status().message())),
        "invalid_request_error", "unknown_account");
    return;
  }
  res.set(http::field::content_type, "application/json");
  res.body() = plangate::UsageReportJson(*usage);
}

std::string ProxyServer::MetricsText() const {
  std::string out;
  const auto sum = [&](auto get) {
    uint64_t total = 0;
    for (const auto& w : workers_) total += get(w->stats);
    return total;
  };
  const auto metric = [&](std::string_view name, std::string_view type,
                          std::string_view help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };

  metric("plangate_gateway_requests_total", "counter",
         "Requests received, by route.");
  for (int r = 0; r < kNumRoutes; ++r) {
    out += fmt::format(
        "plangate_gateway_requests_total{{route=\"{}\"}} {}\n", kRouteNames[r],
        sum([r](const Worker::Stats& s) { return s.requests[r].Get(); }));
  }
  metric("plangate_gateway_responses_total", "counter",
         "Responses sent, by status code.");
  for (unsigned code = 100; code < 600; ++code) {
    const uint64_t n =
        sum([code](const Worker::Stats& s) { return s.responses[code].Get(); });
    if (n > 0) {
      out += fmt::format("plangate_gateway_responses_total{{code=\"{}\"}} {}\n",
                         code, n);
    }
  }
  const auto counter = [&](std::string_view name, std::string_view help,
                           auto get) {
    metric(name, "counter", help);
    out += fmt::format("{} {}\n", name, sum(get));
  };
  counter("plangate_gateway_checks_total", "Enforcer::Check calls.",
          [](const Worker::Stats& s) { return s.checks.Get(); });
  counter("plangate_gateway_denials_total", "Checks that denied.",
          [](const Worker::Stats& s) { return s.denials.Get(); });
  counter("plangate_gateway_commits_total",
          "Reservations settled with the upstream's usage.",
          [](const Worker::Stats& s) { return s.commits.Get(); });
  counter("plangate_gateway_refunds_total",
          "Reservations refunded because the upstream call failed.",
          [](const Worker::Stats& s) { return s.refunds.Get(); });
  counter("plangate_gateway_streams_total",
          "Event streams (stream: true) relayed to clients.",
          [](const Worker::Stats& s) { return s.streams.Get(); });
  counter("plangate_gateway_streams_broken_total",
          "Streams the upstream broke off (reset, torn, silent, oversized).",
          [](const Worker::Stats& s) { return s.streams_broken.Get(); });
  counter("plangate_gateway_streams_abandoned_total",
          "Streams whose client went away before the end.",
          [](const Worker::Stats& s) { return s.streams_left.Get(); });
  counter("plangate_gateway_streams_cut_total",
          "Streams ended at a cap: an extension of their reservation was "
          "denied.",
          [](const Worker::Stats& s) { return s.streams_cut.Get(); });
  counter("plangate_gateway_upstream_errors_total",
          "Upstream calls without an answer or with a 5xx.",
          [](const Worker::Stats& s) { return s.upstream_errors.Get(); });
  metric("plangate_gateway_enforce_seconds_total", "counter",
         "Time spent in Check, rendering, usage parsing and Commit.");
  out += fmt::format("plangate_gateway_enforce_seconds_total {:.9f}\n",
                     static_cast<double>(sum([](const Worker::Stats& s) {
                       return s.enforce_ticks.Get();
                     })) *
                         SecondsPerTick());
  metric("plangate_gateway_upstream_connections_opened_total", "counter",
         "Connections opened to the upstream (kept alive and reused).");
  out += fmt::format("plangate_gateway_upstream_connections_opened_total {}\n",
                     [&] {
                       uint64_t n = 0;
                       for (const auto& w : workers_) {
                         n += w->pool.connections_opened();
                       }
                       return n;
                     }());
  metric("plangate_gateway_enforcement_enabled", "gauge",
         "1 unless started with --no-enforce.");
  out += fmt::format("plangate_gateway_enforcement_enabled {}\n",
                     options_.enforce ? 1 : 0);

  if (sync_metrics_) {
    out += sync_metrics_();
    return out;
  }
  const plangate::EnforcerStats st = enforcer_.Stats();
  const auto value = [&](std::string_view name, std::string_view type,
                         std::string_view help, uint64_t v) {
    metric(name, type, help);
    out += fmt::format("{} {}\n", name, v);
  };
  value("plangate_subjects", "gauge", "Live subject records.", st.subjects);
  value("plangate_subject_capacity", "gauge", "Subject table capacity.",
        st.subject_capacity);
  value("plangate_reservations_pending", "gauge",
        "Reservations admitted and not yet committed.",
        st.reservations_pending);
  value("plangate_reservations_expired_total", "counter",
        "Reservations refunded by Maintain.", st.reservations_expired);
  value("plangate_subjects_reclaimed_total", "counter",
        "Idle subjects reclaimed.", st.subjects_reclaimed);
  value("plangate_capacity_denials_total", "counter",
        "Checks denied because a table was full.", st.capacity_denials);
  value("plangate_unreserved_admits_total", "counter",
        "Admitted while the reservation table was full.", st.unreserved_admits);
  value("plangate_events_delivered_total", "counter",
        "Threshold events delivered.", st.events_delivered);
  value("plangate_events_dropped_total", "counter",
        "Threshold events dropped (queue full).", st.events_dropped);
  return out;
}

std::string PublicCatalogJson(const plangate::Catalog& catalog) {
  using OJson = Json;
  OJson out;
  out["default_plan"] = catalog.default_plan().empty()
                            ? OJson(nullptr)
                            : OJson(catalog.default_plan());
  out["upgrade_order"] = catalog.upgrade_order();
  out["meters"] = catalog.meters();
  OJson plans = OJson::array();
  for (const plangate::Plan& p : catalog.plans()) {
    OJson plan;
    plan["id"] = p.id;
    plan["name"] = p.name;
    OJson limits = OJson::array();
    for (const plangate::Limit& l : p.limits) {
      OJson limit;
      limit["id"] = l.id;
      limit["scope"] = plangate::ScopeName(l.scope);
      limit["meter"] = l.meter;
      limit["window"] = plangate::WindowName(l.window, l.window_count);
      limit["mode"] = plangate::WindowModeName(l.mode);
      limit["limit"] = l.unlimited ? OJson(nullptr) : OJson(l.limit);
      limit["hard_limit"] = l.unlimited ? OJson(nullptr) : OJson(l.hard());
      limit["soft_nudge"] = l.soft_nudge;
      limit["grace"] = l.grace;
      limit["applies_to"] = plangate::TrafficName(l.applies_to);
      if (l.shadow || p.shadow) limit["shadow"] = true;
      limits.push_back(std::move(limit));
    }
    plan["limits"] = std::move(limits);
    plan["features"] = p.features;
    plan["models"] = p.models_restricted ? OJson(p.models) : OJson(nullptr);
    OJson kinds = OJson::array();
    for (const plangate::KeyKind k : p.key_kinds) {
      kinds.push_back(plangate::KeyKindName(k));
    }
    plan["key_kinds"] = std::move(kinds);
    plan["wallet"] = {{"required", p.wallet.required},
                      {"min_balance_micros", p.wallet.min_balance_micros}};
    OJson gauges = OJson::object();
    for (const plangate::Gauge& g : p.gauges) {
      gauges[g.name] = g.unlimited ? OJson(nullptr) : OJson(g.cap);
    }
    plan["gauges"] = std::move(gauges);
    plans.push_back(std::move(plan));
  }
  out["plans"] = std::move(plans);
  return out.dump();
}

}  // namespace gateway
