// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// proxy_server.h: the gateway's HTTP/1.1 server and reverse proxy.
//
// Routes:
//   POST /v1/chat/completions  OpenAI-compatible; metered (requests, tokens,
//                              cost) and forwarded to the upstream; a
//                              "stream": true reply is relayed event by event
//   GET  /v1/models[/{id}]     the models the key's plan allows (OpenAI shape)
//   POST /mcp                  MCP (JSON-RPC 2.0); tools/call is metered as
//                              tool_calls, other methods pass through; a
//                              denial is an HTTP 200 (McpDenial)
//   GET  /v1/billing/usage     the key's account's usage report (JSON)
//   GET  /v1/billing/plans     the public plan catalog (JSON)
//   GET  /metrics              Prometheus text
//   GET  /healthz              "ok"
// Every route but the last three needs `Authorization: Bearer <key>`.
//
// Per metered request: authenticate the key (401), parse the body (400),
// Enforcer::Check; a denial answers with plangate's HttpRendering (status,
// RateLimit/Retry-After headers, JSON error body). An admitted request goes
// upstream; its response carries the rendering's headers (warnings, rate
// limits), and the reservation is committed with the upstream's actual
// usage, or refunded when the upstream failed (5xx or no answer: 502/504 to
// the client; 4xx: passed through).
//
// Threads: each worker thread runs its own io_context and owns the client
// connections it was handed and a pool of upstream connections; a request
// is served start to end on one thread, so nothing but the Enforcer and
// the statistics is shared.
//
// Thread safety: Start and Shutdown from one controlling thread.

#ifndef PLANGATE_EXAMPLES_GATEWAY_PROXY_SERVER_H_
#define PLANGATE_EXAMPLES_GATEWAY_PROXY_SERVER_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "config.h"
#include "metering.h"
#include "net.h"
#include "plangate/enforcer.h"
#include "plangate/http.h"
#include "upstream.h"

namespace gateway {

struct ProxyOptions {
  tcp::endpoint listen;
  int threads = 1;
  // false: authenticate and forward, never call plangate (--no-enforce).
  bool enforce = true;
  UpstreamUrl upstream;
  std::vector<tcp::endpoint> upstream_endpoints;  // resolved
  std::chrono::milliseconds upstream_timeout{60'000};
  std::string upstream_authorization;  // Authorization header value, or ""
  // With cluster sync, a counter this instance has not synced yet answers
  // 429 quota_syncing until its first lease arrives (a round trip or two);
  // the request waits that long, re-checking, rather than fail.
  std::chrono::milliseconds sync_wait{500};
  // How a denied MCP tools/call is answered (--mcp-denial).
  McpDenial mcp_denial = McpDenial::kJsonRpcError;
  // A stream that outgrows its estimate extends its reservation this many
  // tokens at a time (Enforcer::Extend); a denied extension ends it with
  // the denial as its last event. 0: never extend.
  int64_t stream_extend_tokens = 64;
};

class ProxyServer {
 public:
  // `enforcer`, `keys` and `metering` must outlive the server.
  ProxyServer(ProxyOptions options, plangate::Enforcer& enforcer,
              const KeyStore& keys, const Metering& metering);
  ~ProxyServer();
  ProxyServer(const ProxyServer&) = delete;
  ProxyServer& operator=(const ProxyServer&) = delete;

  // Binds the listener and starts the worker threads.
  absl::Status Start();
  tcp::endpoint local_endpoint() const { return local_; }

  // Graceful stop: closes the listener, closes idle connections, lets
  // requests in flight finish (their responses say Connection: close) for
  // up to `timeout`, then closes whatever is left and joins the workers.
  // Returns whether everything finished in time.
  bool Shutdown(std::chrono::milliseconds timeout);

  // Extra Prometheus text for /metrics (cluster sync). When set, it is
  // expected to carry the enforcer's counters too, and the server's own
  // copy of them is left out. Call before Start.
  void set_sync_metrics(std::function<std::string()> fn) {
    sync_metrics_ = std::move(fn);
  }

 private:
  struct Worker;
  struct Session;
  // What Check admitted a request with, kept until it is settled.
  struct Admitted {
    plangate::Decision decision;
    plangate::HttpRendering rendering;
    int64_t reserved_tokens = 0;  // what the check reserved of the tokens meter
    std::string model;            // as the request named it (for prices)
  };

  awaitable<void> Accept();
  awaitable<void> Serve(Worker& w, tcp::socket socket);
  awaitable<void> Route(Worker& w, Session& session, Request& req,
                        Response& res);
  awaitable<void> ChatCompletions(Worker& w, Session& session, Request& req,
                                  Response& res);
  // A "stream": true completion: relays the upstream's events to the client
  // as each completes (writing the response itself), then settles
  // `admitted` (nullptr: not enforced) with the reported or streamed usage.
  awaitable<void> StreamChat(Worker& w, Session& session, Request& req,
                             Response& res, const ChatRequestInfo& chat,
                             const KeyRecord& key, const Admitted* admitted);
  // Commits (with `actual`, or the estimate when nullptr) or refunds.
  void Settle(Worker& w, const Admitted& a, const KeyRecord& key, bool success,
              const Charge* actual);
  // Settles a reply read whole: refund unless 2xx, else its usage.
  void SettleBuffered(Worker& w, const Admitted& a, const KeyRecord& key,
                      const UpstreamResult& up);
  // GET /v1/models: the models the key's plan allows, in OpenAI's shape.
  awaitable<void> Models(Worker& w, Request& req, Response& res);
  awaitable<void> Mcp(Worker& w, Request& req, Response& res);
  // Re-checks `check` (with a fresh now_ms) while `d` is 429 quota_syncing,
  // with backoff, for up to options_.sync_wait.
  awaitable<void> WaitForSync(plangate::CheckRequest& check,
                              plangate::Decision& d);
  void Usage(Worker& w, const Request& req, Response& res);
  std::string MetricsText() const;
  // What one tick of the enforce timer is, in seconds.
  double SecondsPerTick() const;

  const KeyRecord* Authenticate(const Request& req, Response& res) const;
  // Rewrites `req` in place for the upstream: hop-by-hop headers, Host,
  // Authorization, base path, Content-Length.
  void PrepareUpstream(Request& req) const;
  // Sends `req` upstream (rewritten in place for the upstream).
  awaitable<UpstreamResult> CallUpstream(Worker& w, Request& req);
  // Copies an upstream answer into `res`, or a 502/504 when it failed.
  void Relay(Worker& w, UpstreamResult& up, Response& res) const;

  ProxyOptions options_;
  plangate::Enforcer& enforcer_;
  const KeyStore& keys_;
  const Metering& metering_;
  const std::string plans_json_;
  std::function<std::string()> sync_metrics_;
  // steady_clock (ns) and the enforce timer's ticks when the server started.
  const int64_t tick_origin_ns_;
  const uint64_t tick_origin_;

  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<tcp::acceptor> acceptor_;  // on workers_[0]
  tcp::endpoint local_;
  size_t next_worker_ = 0;  // round robin, on workers_[0]'s thread
  std::atomic<int> sessions_{0};
};

// The catalog as GET /v1/billing/plans shows it: every plan with its
// limits (hard limits worked out), features, models, key kinds, wallet and
// gauges, plus the upgrade order.
std::string PublicCatalogJson(const plangate::Catalog& catalog);

}  // namespace gateway

#endif  // PLANGATE_EXAMPLES_GATEWAY_PROXY_SERVER_H_
