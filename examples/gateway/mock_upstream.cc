// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "mock_upstream.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/this_coro.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

#include "fmt/format.h"
#include "metering.h"  // PromptTextBytes
#include "nlohmann/json.hpp"

namespace gateway {
namespace {

using Json = nlohmann::ordered_json;

constexpr int64_t kMaxCompletionTokens = 16;
constexpr auto kSlowDelay = std::chrono::seconds(1);
constexpr auto kIdleTimeout = std::chrono::seconds(300);

std::atomic<uint64_t> next_completion_id{1};

void Reply(Response& res, http::status status, std::string body,
           std::string_view content_type = "application/json") {
  res.result(status);
  res.set(http::field::content_type, content_type);
  res.body() = std::move(body);
}

std::string OpenAiError(std::string_view message, std::string_view type) {
  Json e;
  e["error"] = {{"message", message},
                {"type", type},
                {"code", nullptr},
                {"param", nullptr}};
  return e.dump();
}

awaitable<void> ChatCompletions(const Request& req, Response& res) {
  const nlohmann::json body =
      nlohmann::json::parse(req.body(), nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    Reply(res, http::status::bad_request,
          OpenAiError("body must be a JSON object", "invalid_request_error"));
    co_return;
  }
  const auto model_it = body.find("model");
  const std::string model = model_it != body.end() && model_it->is_string()
                                ? model_it->get<std::string>()
                                : "mock-small";
  if (model == "mock-error") {
    Reply(res, http::status::internal_server_error,
          OpenAiError("the mock upstream fails model mock-error on purpose",
                      "server_error"));
    co_return;
  }
  if (model == "mock-slow") {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    timer.expires_after(kSlowDelay);
    beast::error_code ec;
    co_await timer.async_wait(Await(ec));
  }
  const auto messages = body.find("messages");
  const int64_t prompt_tokens =
      (messages == body.end() ? 0 : PromptTextBytes(*messages) + 3) / 4;
  int64_t max_tokens = kMaxCompletionTokens;
  for (const char* field : {"max_tokens", "max_completion_tokens"}) {
    const auto it = body.find(field);
    if (it != body.end() && it->is_number_integer()) {
      max_tokens = it->get<int64_t>();
    }
  }
  const int64_t completion_tokens =
      std::clamp<int64_t>(max_tokens, 0, kMaxCompletionTokens);

  Json out;
  out["id"] = fmt::format("chatcmpl-mock-{}", next_completion_id++);
  out["object"] = "chat.completion";
  out["created"] = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  out["model"] = model;
  Json choice;
  choice["index"] = 0;
  choice["message"] = {{"role", "assistant"},
                       {"content", "This is a reply from the mock upstream."}};
  choice["finish_reason"] =
      completion_tokens < kMaxCompletionTokens ? "length" : "stop";
  out["choices"] = Json::array({std::move(choice)});
  out["usage"] = {{"prompt_tokens", prompt_tokens},
                  {"completion_tokens", completion_tokens},
                  {"total_tokens", prompt_tokens + completion_tokens}};
  Reply(res, http::status::ok, out.dump());
}

Json ToolSchema(std::string_view name, std::string_view description,
                Json properties) {
  Json required = Json::array();
  for (const auto& [key, value] : properties.items()) required.push_back(key);
  return {{"name", name},
          {"description", description},
          {"inputSchema",
           {{"type", "object"},
            {"properties", std::move(properties)},
            {"required", std::move(required)}}}};
}

Json TextResult(std::string text, bool is_error) {
  return {{"content", Json::array({{{"type", "text"}, {"text", text}}})},
          {"isError", is_error}};
}

void Mcp(const Request& req, Response& res) {
  const Json body = Json::parse(req.body(), nullptr, false);
  Json out;
  out["jsonrpc"] = "2.0";
  out["id"] = nullptr;
  const auto rpc_error = [&](int code, std::string message) {
    out["error"] = {{"code", code}, {"message", std::move(message)}};
    Reply(res, http::status::ok, out.dump());
  };
  if (body.is_discarded() || !body.is_object() || !body.contains("method") ||
      !body["method"].is_string()) {
    rpc_error(-32600, "invalid request");
    res.result(http::status::bad_request);
    return;
  }
  if (!body.contains("id")) {  // a notification
    res.result(http::status::accepted);
    return;
  }
  out["id"] = body["id"];
  const std::string method = body["method"].get<std::string>();
  const Json params = body.value("params", Json::object());
  if (method == "initialize") {
    out["result"] = {
        {"protocolVersion", params.value("protocolVersion", "2025-03-26")},
        {"capabilities", {{"tools", {{"listChanged", false}}}}},
        {"serverInfo", {{"name", "plangate-mock"}, {"version", "1.0.0"}}}};
  } else if (method == "ping") {
    out["result"] = Json::object();
  } else if (method == "tools/list") {
    out["result"]["tools"] = Json::array(
        {ToolSchema("echo", "Returns its text.",
                    {{"text", {{"type", "string"}}}}),
         ToolSchema("add", "Adds two numbers.",
                    {{"a", {{"type", "number"}}}, {"b", {{"type", "number"}}}}),
         ToolSchema("fail", "Always fails (isError: true).", Json::object())});
  } else if (method == "tools/call") {
    const std::string tool = params.value("name", "");
    const Json args = params.value("arguments", Json::object());
    if (tool == "echo") {
      const auto text = args.find("text");
      out["result"] = TextResult(text != args.end() && text->is_string()
                                     ? text->get<std::string>()
                                     : "",
                                 false);
    } else if (tool == "add") {
      const double a = args.value("a", 0.0), b = args.value("b", 0.0);
      out["result"] = TextResult(fmt::format("{}", a + b), false);
    } else if (tool == "fail") {
      out["result"] = TextResult("the tool failed (on purpose)", true);
    } else {
      return rpc_error(-32602,
                       fmt::format("unknown tool {}", Json(tool).dump()));
    }
  } else {
    return rpc_error(-32601, fmt::format("method not found: {}", method));
  }
  Reply(res, http::status::ok, out.dump());
}

awaitable<void> Serve(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::error_code ec;
  stream.socket().set_option(tcp::no_delay(true), ec);
  beast::flat_buffer buffer;
  for (;;) {
    Request req;
    stream.expires_after(kIdleTimeout);
    co_await http::async_read(stream, buffer, req, Await(ec));
    if (ec) break;
    Response res;
    co_await MockHandle(req, res);
    res.version(req.version());
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    co_await http::async_write(stream, res, Await(ec));
    if (ec || !res.keep_alive()) break;
  }
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

awaitable<void> Accept(tcp::acceptor& acceptor) {
  for (;;) {
    beast::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(Await(ec));
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) continue;
    asio::co_spawn(acceptor.get_executor(), Serve(std::move(socket)),
                   asio::detached);
  }
}

}  // namespace

awaitable<void> MockHandle(const Request& req, Response& res) {
  const std::string_view target = req.target();
  const std::string_view path = target.substr(0, target.find('?'));
  if (path == "/v1/chat/completions" && req.method() == http::verb::post) {
    co_await ChatCompletions(req, res);
  } else if (path == "/mcp" && req.method() == http::verb::post) {
    Mcp(req, res);
  } else if (path == "/healthz") {
    Reply(res, http::status::ok, "ok\n", "text/plain");
  } else {
    Reply(res, http::status::not_found,
          OpenAiError(fmt::format("no route {} {}", req.method_string(), path),
                      "invalid_request_error"));
  }
}

absl::StatusOr<std::unique_ptr<MockUpstream>> MockUpstream::Start(
    const tcp::endpoint& endpoint, int threads) {
  std::unique_ptr<MockUpstream> mock(new MockUpstream());
  mock->acceptor_ = std::make_unique<tcp::acceptor>(mock->ioc_);
  beast::error_code ec;
  tcp::acceptor& a = *mock->acceptor_;
  a.open(endpoint.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) mock->local_ = a.local_endpoint(ec);
  if (ec) {
    return absl::UnavailableError(fmt::format(
        "mock upstream: cannot listen on {}:{}: {}",
        endpoint.address().to_string(), endpoint.port(), ec.message()));
  }
  asio::co_spawn(mock->ioc_, Accept(a), asio::detached);
  for (int i = 0; i < std::max(1, threads); ++i) {
    mock->threads_.emplace_back([m = mock.get()] { m->ioc_.run(); });
  }
  return mock;
}

MockUpstream::~MockUpstream() { Stop(); }

void MockUpstream::Stop() {
  if (threads_.empty()) return;
  ioc_.stop();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  beast::error_code ec;
  acceptor_->close(ec);
}

}  // namespace gateway
