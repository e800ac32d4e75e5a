// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// metering.h: what one request costs, in the catalog's meters.
//
// The gateway charges, per request:
//   - "requests": 1 (the Enforcer's default), on every metered route;
//   - tokens ("tokens", else "ai_tokens"): at check, an estimate of
//     ceil(text bytes of the messages / 4) + max_tokens (or
//     --default-max-tokens); at commit, the upstream's usage.total_tokens;
//   - "cost_micros": at the catalog's price for the model (prompt, cached,
//     completion and reasoning tokens each at its rate; see TokenUsage),
//     else tokens * --micros-per-1k-tokens / 1000, rounded up, for managed
//     (non-BYOK) traffic, estimated and committed like tokens;
//   - "tool_calls": 1 for an MCP tools/call, committed only if it succeeded,
//     and 1 of "tool_calls.<tool name>" when the catalog declares that
//     meter: a plan caps one expensive tool by a limit on its own meter;
//   - the wallet of an account whose plan requires one: the same cost.
// A meter the catalog does not declare is not charged. A BYOK key asks for
// the feature "byok" when some plan of the catalog lists it, so plans
// without it answer 402 feature_not_in_plan naming the plan to upgrade to.
//
// The parsers here never throw. Request bodies are parsed with nlohmann
// into a document (the gateway validates them anyway); upstream replies are
// only walked once, without building or allocating anything, to find their
// usage and outcome: that walk is part of enforcement's cost per request,
// so a chat completion's usage is first read back from the reply's end
// (ReplyUsage), which skips the rest of the reply.
//
// Thread safety: Metering is immutable after construction; the functions
// are pure.

#ifndef PLANGATE_EXAMPLES_GATEWAY_METERING_H_
#define PLANGATE_EXAMPLES_GATEWAY_METERING_H_

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "config.h"
#include "nlohmann/json.hpp"
#include "plangate/enforcer.h"

namespace gateway {

// Bytes of text in an OpenAI "messages" array: every string "content" and
// every "text" of a content part. The mock upstream counts prompt tokens
// from the same number, as ceil(bytes / 4).
int64_t PromptTextBytes(const nlohmann::json& messages);

// What the gateway reads from a chat completions request body.
struct ChatRequestInfo {
  std::string model;                  // empty: the account's default
  int64_t prompt_bytes = 0;           // PromptTextBytes(messages)
  std::optional<int64_t> max_tokens;  // max_completion_tokens or max_tokens
  bool stream = false;                // "stream": true
  // "stream_options": {"include_usage": true}: the client wants the final
  // usage chunk of a stream.
  bool include_usage = false;
};

// Validates the body: a JSON object with "messages" (an array), optional
// "model" (a string), "max_tokens" / "max_completion_tokens" (integers
// >= 0), "stream" (a boolean) and "stream_options" (an object whose
// "include_usage" is a boolean). InvalidArgument with a message for the
// client otherwise.
absl::StatusOr<ChatRequestInfo> ParseChatRequest(std::string_view body);

// An OpenAI "usage" block (chat completions, and their streams' usage
// chunk). OpenAI's counts nest: prompt_tokens includes the cached ones and
// completion_tokens the reasoning ones, so each is read as a part of its
// total and priced once (plangate::TokenCounts has the same convention);
// the tokens meter counts total_tokens, every kind included.
struct TokenUsage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t total_tokens = 0;      // prompt + completion when the reply omits it
  int64_t cached_tokens = 0;     // prompt_tokens_details.cached_tokens
  int64_t reasoning_tokens = 0;  // completion_tokens_details.reasoning_tokens
};

// What a JSON-RPC or OpenAI reply says, found without building a document.
struct ReplyScan {
  bool valid = false;       // parsed as JSON (an SSE reply: some event did)
  bool has_result = false;  // top-level "result"
  bool has_error = false;   // top-level "error" that is not null
  bool result_is_error = false;     // "result": {"isError": true} (MCP)
  std::optional<TokenUsage> usage;  // top-level "usage" object
};

// Scans a reply body. With `event_stream` (Content-Type text/event-stream)
// every "data:" line is scanned as JSON and the last usage, result or error
// seen wins; "data: [DONE]" is skipped.
ReplyScan ScanReply(std::string_view body, bool event_stream);

// The usage block of an upstream's reply to a chat completion that was not
// streamed to the client: ScanUsageFromEnd, and ScanReply(body,
// event_stream).usage when that cannot tell. The same usage ScanReply
// finds in every reply that is one JSON object; in a body that is not
// JSON but ends with a well-formed usage member, the tail scan reads it
// where ScanReply reads none.
std::optional<TokenUsage> ReplyUsage(std::string_view body, bool event_stream);

// Reads the top-level "usage" object of a JSON object by scanning back from
// its end, where OpenAI-compatible upstreams put it (after "choices"; a few
// short members, such as "system_fingerprint", may follow it), so the
// reply's text before it is not read at all: finds the last "usage" key in
// the last 4 KiB, then walks forward from it, as ScanReply would, over the
// usage object and any members after it to the closing brace and the end.
// True, with `usage` set, when that walk succeeds; false (the caller walks
// the whole reply) when the body does not open an object, when there is no
// such key there, or when that last one is not the top-level object's,
// not an object (null), or malformed, or followed by anything but members
// and the closing brace. It does not check the syntax of the body before
// the key.
bool ScanUsageFromEnd(std::string_view body, TokenUsage* usage);

// The same request body with "stream_options": {"include_usage": true}, so
// the upstream ends its stream with a usage chunk; other members (and
// their order) are kept. The body must have passed ParseChatRequest.
std::string WithStreamUsage(std::string_view body);

// Splits a server-sent event stream (text/event-stream) into events as its
// bytes arrive in pieces of any size. An event is the bytes up to and
// including the blank line that ends it ("\n\n", "\r\n\r\n" or mixed);
// events come out byte for byte as they came in.
class SseSplitter {
 public:
  // An event longer than `max_event` bytes is an error (Feed returns
  // false), so a stream without blank lines cannot grow memory unbounded.
  explicit SseSplitter(size_t max_event) : max_event_(max_event) {}

  // Appends `bytes`; each event they complete is appended to `events`.
  bool Feed(std::string_view bytes, std::vector<std::string>* events);

  // Bytes of an event not ended yet.
  const std::string& pending() const { return pending_; }

 private:
  size_t max_event_;
  std::string pending_;
  size_t scanned_ = 0;  // pending_[0, scanned_) has no event end
};

// What one event of an OpenAI chat completion stream says.
struct StreamEventInfo {
  bool done = false;                // "data: [DONE]"
  bool valid = false;               // its data is a JSON object
  bool error = false;               // the object has a non-null "error"
  bool has_choices = false;         // "choices" is a non-empty array
  std::optional<TokenUsage> usage;  // "usage" object
  // Bytes of generated text in the chunk: every choice's delta "content",
  // "refusal", "reasoning_content" and tool call "arguments".
  int64_t text_bytes = 0;
};

// Reads an event's "data:" lines (joined by "\n", as SSE defines) as JSON.
StreamEventInfo ScanStreamEvent(std::string_view event);

// A JSON-RPC 2.0 request to the MCP endpoint.
struct McpRequestInfo {
  std::string method;
  nlohmann::json id;          // null when absent
  bool notification = false;  // no "id": no reply is expected
  std::string tool;           // params.name of a tools/call
};

// InvalidArgument (-32600 "invalid request" to the client) when the body is
// not a JSON-RPC 2.0 request object; batches are refused, since a batch
// could carry unmetered tool calls.
absl::StatusOr<McpRequestInfo> ParseMcpRequest(std::string_view body);

// Meter amounts for one check or commit.
struct Charge {
  std::array<plangate::MeterAmount, 3> amounts{};
  size_t count = 0;
  int64_t wallet_micros = 0;

  std::span<const plangate::MeterAmount> span() const {
    return {amounts.data(), count};
  }
  void Add(int meter, int64_t amount) {
    if (meter >= 0) amounts[count++] = {meter, amount};
  }
};

struct MeteringOptions {
  int64_t micros_per_1k_tokens = 1000;
  int64_t default_max_tokens = 256;
};

// The catalog's meters and features, resolved once at start.
class Metering {
 public:
  Metering(const plangate::Enforcer& enforcer, MeteringOptions options);

  // At check: the estimate. At commit: the actual amounts.
  Charge ChatEstimate(const ChatRequestInfo& chat, const KeyRecord& key) const;
  Charge ChatActual(const TokenUsage& usage, std::string_view model,
                    const KeyRecord& key) const;
  // A stream that reported no usage (it broke, the client left, or the
  // upstream sends none): the prompt estimate, ceil(prompt bytes / 4), plus
  // ceil(generated text bytes / 4).
  Charge ChatStreamed(const ChatRequestInfo& chat, int64_t text_bytes,
                      const KeyRecord& key) const;
  // The tokens meter's amount in `c` (0 when the catalog has none).
  int64_t TokensOf(const Charge& c) const;
  // `tokens` more of a running stream: tokens and their cost, to extend a
  // reservation with.
  Charge StreamExtension(int64_t tokens, std::string_view model,
                         const KeyRecord& key) const;
  // tool_calls, and tool_calls.<tool> if the catalog has that meter.
  Charge ToolCall(std::string_view tool = {}) const;

  // The features a request with `key` uses (BYOK: "byok", if gated).
  std::span<const std::string_view> Features(const KeyRecord& key) const;

  // "tokens=tokens cost=cost_micros tool_calls=- byok_feature=no"
  std::string Describe() const;

 private:
  // What `tokens` of `model` cost: at the catalog's price for the model
  // when it has a price table that prices it (cached input and reasoning
  // at their own rates), else at --micros-per-1k-tokens for input + output
  // (an explicit rate, never a silent zero); 0 on a BYOK key.
  int64_t CostMicros(std::string_view model,
                     const plangate::TokenCounts& tokens,
                     const KeyRecord& key) const;
  // The catalog the price table is read from (the one at start).
  std::shared_ptr<const plangate::Catalog> catalog_;

  MeteringOptions options_;
  int tokens_ = -1;
  int cost_ = -1;
  int tool_calls_ = -1;
  // Meters "tool_calls.<tool>", by tool name.
  absl::flat_hash_map<std::string, int> tool_meters_;
  std::string tokens_name_;
  bool byok_gated_ = false;
};

}  // namespace gateway

#endif  // PLANGATE_EXAMPLES_GATEWAY_METERING_H_
