// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// mock_upstream.h: a stand-in LLM provider and MCP server, so the gateway
// runs with nothing else.
//
//   POST /v1/chat/completions  an OpenAI-shaped chat.completion whose usage is
//       deterministic: prompt_tokens = ceil(text bytes of the messages / 4),
//       completion_tokens = min(max_tokens, 16) (16 without max_tokens).
//       Model "mock-error" answers 500; "mock-slow" answers after 1 s.
//       With "stream": true, a server-sent event stream written chunk by
//       chunk: a role chunk, one "tok " content chunk per completion token,
//       the finish chunk, a usage chunk (choices: []) when the request set
//       stream_options.include_usage, and "data: [DONE]". Model
//       "mock-stream-slow" waits 100 ms before each event;
//       "mock-stream-break" cuts the connection after half the content.
//       "mock-reasoner" reports half the prompt tokens as cached
//       (prompt_tokens_details.cached_tokens) and half the completion
//       tokens as reasoning (completion_tokens_details.reasoning_tokens).
//   GET /v1/models  an OpenAI model list: the mock-* models and gpt-4o.
//   POST /mcp  JSON-RPC 2.0: initialize, tools/list, tools/call with the
//       tools "echo" (returns its "text" argument), "add" (a + b) and
//       "fail" (a result with isError: true); an unknown tool or method is
//       a JSON-RPC error; a notification gets 202.
//   GET /healthz  "ok".
//
// Thread safety: Start, local_endpoint and Stop may be called from any one
// thread; requests are served on the mock's own threads.

#ifndef PLANGATE_EXAMPLES_GATEWAY_MOCK_UPSTREAM_H_
#define PLANGATE_EXAMPLES_GATEWAY_MOCK_UPSTREAM_H_

#include <memory>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "net.h"

namespace gateway {

class MockUpstream {
 public:
  // Listens on `endpoint` (port 0: a free port) and serves on `threads`
  // threads of its own.
  static absl::StatusOr<std::unique_ptr<MockUpstream>> Start(
      const tcp::endpoint& endpoint, int threads);

  ~MockUpstream();  // Stop()
  MockUpstream(const MockUpstream&) = delete;
  MockUpstream& operator=(const MockUpstream&) = delete;

  tcp::endpoint local_endpoint() const { return local_; }

  // Closes the listener and every connection; joins the threads.
  void Stop();

 private:
  MockUpstream() = default;

  asio::io_context ioc_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  tcp::endpoint local_;
  std::vector<std::thread> threads_;
};

// Answers one request as the mock would (exposed for tests and for hosts
// that want an in-process upstream).
awaitable<void> MockHandle(const Request& request, Response& response);

}  // namespace gateway

#endif  // PLANGATE_EXAMPLES_GATEWAY_MOCK_UPSTREAM_H_
