// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "mock_upstream.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "fmt/format.h"
#include "metering.h"  // PromptTextBytes
#include "nlohmann/json.hpp"

namespace gateway {
namespace {

using Json = nlohmann::ordered_json;

constexpr int64_t kMaxCompletionTokens = 16;
constexpr auto kSlowDelay = std::chrono::seconds(1);
// GET /v1/models: the mock's special models and two ordinary ones (gpt-4o
// is outside the test catalog's allowlist "mock-*").
constexpr const char* kModels[] = {
    "mock-small",       "mock-large",        "mock-slow",     "mock-error",
    "mock-stream-slow", "mock-stream-break", "mock-reasoner", "gpt-4o"};
constexpr auto kStreamDelay = std::chrono::milliseconds(100);
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

// What the mock answers to one chat completion request.
struct ChatReply {
  std::string model;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  bool stream = false;
  bool include_usage = false;
  std::string id;
  int64_t created = 0;
};

// Parses the request; false (with `res` filled) when it is answered
// already: a bad body or model mock-error.
bool PlanChat(const Request& req, Response& res, ChatReply* out) {
  const nlohmann::json body =
      nlohmann::json::parse(req.body(), nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    Reply(res, http::status::bad_request,
          OpenAiError("body must be a JSON object", "invalid_request_error"));
    return false;
  }
  const auto model_it = body.find("model");
  out->model = model_it != body.end() && model_it->is_string()
                   ? model_it->get<std::string>()
                   : "mock-small";
  if (out->model == "mock-error") {
    Reply(res, http::status::internal_server_error,
          OpenAiError("the mock upstream fails model mock-error on purpose",
                      "server_error"));
    return false;
  }
  const auto messages = body.find("messages");
  out->prompt_tokens =
      (messages == body.end() ? 0 : PromptTextBytes(*messages) + 3) / 4;
  int64_t max_tokens = kMaxCompletionTokens;
  for (const char* field : {"max_tokens", "max_completion_tokens"}) {
    const auto it = body.find(field);
    if (it != body.end() && it->is_number_integer()) {
      max_tokens = it->get<int64_t>();
    }
  }
  out->completion_tokens =
      std::clamp<int64_t>(max_tokens, 0, kMaxCompletionTokens);
  const auto stream = body.find("stream");
  out->stream =
      stream != body.end() && stream->is_boolean() && stream->get<bool>();
  const auto options = body.find("stream_options");
  out->include_usage = options != body.end() && options->is_object() &&
                       options->value("include_usage", false) == true;
  out->id = fmt::format("chatcmpl-mock-{}", next_completion_id++);
  out->created = std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  return true;
}

Json UsageJson(const ChatReply& c) {
  Json usage = {{"prompt_tokens", c.prompt_tokens},
                {"completion_tokens", c.completion_tokens},
                {"total_tokens", c.prompt_tokens + c.completion_tokens}};
  if (c.model == "mock-reasoner") {
    // Half the prompt read from a cache, half the completion reasoning;
    // both inside the counts above, as OpenAI reports them.
    usage["prompt_tokens_details"] = {{"cached_tokens", c.prompt_tokens / 2}};
    usage["completion_tokens_details"] = {
        {"reasoning_tokens", c.completion_tokens / 2}};
  }
  return usage;
}

// The events of a streamed reply, in order: the role, one 4-byte piece of
// content per completion token, the finish reason, the usage chunk when
// asked for, and [DONE]. Each is a whole "data: ...\n\n" event.
std::vector<std::string> StreamEvents(const ChatReply& c) {
  const auto chunk = [&](Json delta, Json finish_reason) {
    Json out;
    out["id"] = c.id;
    out["object"] = "chat.completion.chunk";
    out["created"] = c.created;
    out["model"] = c.model;
    out["choices"] =
        Json::array({{{"index", 0},
                      {"delta", std::move(delta)},
                      {"finish_reason", std::move(finish_reason)}}});
    if (c.include_usage) out["usage"] = nullptr;
    return fmt::format("data: {}\n\n", out.dump());
  };
  std::vector<std::string> events;
  events.push_back(chunk({{"role", "assistant"}, {"content", ""}}, nullptr));
  for (int64_t i = 0; i < c.completion_tokens; ++i) {
    events.push_back(chunk({{"content", "tok "}}, nullptr));
  }
  events.push_back(
      chunk(Json::object(),
            c.completion_tokens < kMaxCompletionTokens ? "length" : "stop"));
  if (c.include_usage) {
    Json out;
    out["id"] = c.id;
    out["object"] = "chat.completion.chunk";
    out["created"] = c.created;
    out["model"] = c.model;
    out["choices"] = Json::array();
    out["usage"] = UsageJson(c);
    events.push_back(fmt::format("data: {}\n\n", out.dump()));
  }
  events.push_back("data: [DONE]\n\n");
  return events;
}

awaitable<void> ChatCompletions(const Request& req, Response& res) {
  ChatReply c;
  if (!PlanChat(req, res, &c)) co_return;
  if (c.model == "mock-slow") {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    timer.expires_after(kSlowDelay);
    beast::error_code ec;
    co_await timer.async_wait(Await(ec));
  }
  if (c.stream) {  // all events at once (Serve writes them as they go)
    std::string body;
    for (const std::string& e : StreamEvents(c)) body += e;
    Reply(res, http::status::ok, std::move(body), "text/event-stream");
    co_return;
  }
  Json out;
  out["id"] = c.id;
  out["object"] = "chat.completion";
  out["created"] = c.created;
  out["model"] = c.model;
  Json choice;
  choice["index"] = 0;
  choice["message"] = {{"role", "assistant"},
                       {"content", "This is a reply from the mock upstream."}};
  choice["finish_reason"] =
      c.completion_tokens < kMaxCompletionTokens ? "length" : "stop";
  out["choices"] = Json::array({std::move(choice)});
  out["usage"] = UsageJson(c);
  Reply(res, http::status::ok, out.dump());
}

// A streamed chat completion written event by event as a chunked
// response. Model "mock-stream-slow" waits 100 ms before each event;
// "mock-stream-break" cuts the connection after half of the content.
// Returns whether the connection may serve another request.
awaitable<bool> StreamChat(beast::tcp_stream& stream, const Request& req,
                           const ChatReply& c) {
  http::response<http::empty_body> head{http::status::ok, req.version()};
  head.set(http::field::content_type, "text/event-stream");
  head.set(http::field::cache_control, "no-cache");
  head.keep_alive(req.keep_alive());
  head.chunked(true);
  http::response_serializer<http::empty_body> sr{head};
  beast::error_code ec;
  co_await http::async_write_header(stream, sr, Await(ec));
  if (ec) co_return false;
  const std::vector<std::string> events = StreamEvents(c);
  const size_t break_after = 1 + static_cast<size_t>(c.completion_tokens / 2);
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (size_t i = 0; i < events.size(); ++i) {
    if (c.model == "mock-stream-break" && i == break_after) {
      stream.socket().shutdown(tcp::socket::shutdown_both, ec);
      stream.close();
      co_return false;
    }
    if (c.model == "mock-stream-slow") {
      timer.expires_after(kStreamDelay);
      co_await timer.async_wait(Await(ec));
    }
    co_await asio::async_write(
        stream, http::make_chunk(asio::buffer(events[i])), Await(ec));
    if (ec) co_return false;
  }
  co_await asio::async_write(stream, http::make_chunk_last(), Await(ec));
  co_return !ec && req.keep_alive();
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
    const std::string_view path =
        req.target().substr(0, req.target().find('?'));
    if (path == "/v1/chat/completions" && req.method() == http::verb::post) {
      ChatReply c;
      const bool planned = PlanChat(req, res, &c);
      if (planned && c.stream) {
        if (!co_await StreamChat(stream, req, c)) break;
        continue;
      }
      if (planned) co_await MockHandle(req, res);
    } else {
      co_await MockHandle(req, res);
    }
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
  } else if (path == "/v1/models" && req.method() == http::verb::get) {
    Json data = Json::array();
    for (const char* id : kModels) {
      data.push_back({{"id", id},
                      {"object", "model"},
                      {"created", 1767225600},
                      {"owned_by", "plangate-mock"}});
    }
    Reply(res, http::status::ok,
          Json{{"object", "list"}, {"data", std::move(data)}}.dump());
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
