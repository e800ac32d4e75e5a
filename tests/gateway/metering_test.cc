// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// examples/gateway's parsers: the keys file, chat and MCP request bodies,
// and the reply walker that finds the upstream's usage and outcome.

#include "metering.h"

#include <array>
#include <catch2/catch.hpp>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "plangate/catalog.h"
#include "plangate/enforcer.h"

namespace gateway {
namespace {

TEST_CASE("ScanReply finds an OpenAI usage block") {
  const ReplyScan s = ScanReply(
      R"({"id":"x","choices":[{"message":{"content":"a \"usage\": {} b\\"}}],)"
      R"("usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19,)"
      R"("prompt_tokens_details":{"cached_tokens":3}}})",
      false);
  REQUIRE(s.valid);
  REQUIRE(s.usage.has_value());
  CHECK(s.usage->prompt_tokens == 12);
  CHECK(s.usage->completion_tokens == 7);
  CHECK(s.usage->total_tokens == 19);
  CHECK(s.usage->cached_tokens == 3);
  CHECK(s.usage->reasoning_tokens == 0);
  CHECK_FALSE(s.has_error);
  CHECK_FALSE(s.has_result);
}

TEST_CASE("ScanReply reads cached and reasoning tokens, and only those") {
  const ReplyScan s = ScanReply(
      R"({"usage":{"prompt_tokens":100,"completion_tokens":50,)"
      R"("total_tokens":150,"prompt_tokens_details":{"audio_tokens":7,)"
      R"("cached_tokens":64,"x":{"cached_tokens":1}},)"
      R"("completion_tokens_details":{"reasoning_tokens":32,)"
      R"("accepted_prediction_tokens":5,"rejected_prediction_tokens":0}}})",
      false);
  REQUIRE(s.usage.has_value());
  CHECK(s.usage->cached_tokens == 64);
  CHECK(s.usage->reasoning_tokens == 32);
  CHECK(s.usage->prompt_tokens == 100);  // the details are inside it
  // Details that are null, or not counts, read as zero.
  const ReplyScan nulls =
      ScanReply(R"({"usage":{"prompt_tokens":4,"prompt_tokens_details":null,)"
                R"("completion_tokens_details":{"reasoning_tokens":-3}}})",
                false);
  REQUIRE(nulls.usage.has_value());
  CHECK(nulls.usage->cached_tokens == 0);
  CHECK(nulls.usage->reasoning_tokens == 0);
  CHECK(nulls.usage->total_tokens == 4);
}

TEST_CASE("ScanReply adds up a usage block without total_tokens") {
  const ReplyScan s = ScanReply(
      R"({"usage": {"prompt_tokens": 5, "completion_tokens": 6}})", false);
  REQUIRE(s.usage.has_value());
  CHECK(s.usage->total_tokens == 11);
}

TEST_CASE("ScanReply ignores usage below the top level and in strings") {
  const ReplyScan s = ScanReply(
      R"({"data":{"usage":{"total_tokens":99}},"note":"\"usage\":{}"})", false);
  CHECK(s.valid);
  CHECK_FALSE(s.usage.has_value());
}

TEST_CASE("ScanReply reads JSON-RPC outcomes") {
  const ReplyScan ok = ScanReply(
      R"({"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":false}})",
      false);
  CHECK(ok.has_result);
  CHECK_FALSE(ok.result_is_error);
  CHECK_FALSE(ok.has_error);
  const ReplyScan tool_failed = ScanReply(
      R"({"jsonrpc":"2.0","id":1,"result":{"content":[{"isError":false}],)"
      R"("isError":true}})",
      false);
  CHECK(tool_failed.result_is_error);
  const ReplyScan rpc_error = ScanReply(
      R"({"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"x"}})",
      false);
  CHECK(rpc_error.has_error);
  CHECK_FALSE(rpc_error.has_result);
  CHECK_FALSE(ScanReply(R"({"result":null,"error":null})", false).has_error);
}

TEST_CASE("ScanReply rejects what is not one JSON object") {
  for (const char* text :
       {"", "{", "}", "[]", "null", R"({"usage":{"total_tokens":1})",
        R"({"usage":{"total_tokens":1}} x)", R"({"a":tru})", R"({"a" 1})",
        R"({"a":"unterminated})", R"({"a":[1,2,})", R"({,})"}) {
    INFO(text);
    const ReplyScan s = ScanReply(text, false);
    CHECK_FALSE(s.valid);
    CHECK_FALSE(s.usage.has_value());
  }
}

TEST_CASE("ScanReply survives deep nesting") {
  std::string deep = R"({"a":)";
  for (int i = 0; i < 100000; ++i) deep += "[";
  CHECK_FALSE(ScanReply(deep, false).valid);
  std::string ok = R"({"a":)";
  for (int i = 0; i < 100; ++i) ok += "[";
  for (int i = 0; i < 100; ++i) ok += "]";
  ok += R"(,"usage":{"total_tokens":4}})";
  const ReplyScan s = ScanReply(ok, false);
  CHECK(s.valid);
  REQUIRE(s.usage.has_value());
  CHECK(s.usage->total_tokens == 4);
}

TEST_CASE("ScanReply reads server-sent events") {
  const ReplyScan s = ScanReply(
      "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\r\n\r\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,"
      "\"completion_tokens\":2,\"total_tokens\":5}}\n\n"
      "data: [DONE]\n\n",
      true);
  CHECK(s.valid);
  REQUIRE(s.usage.has_value());
  CHECK(s.usage->total_tokens == 5);
  CHECK_FALSE(ScanReply("event: ping\n\n", true).valid);
}

// A reply as the mock upstream (and OpenAI) writes it: usage last.
constexpr std::string_view kChatReply =
    R"({"id":"chatcmpl-mock-1","object":"chat.completion","created":1764633600,)"
    R"("model":"mock-small","choices":[{"index":0,"message":{"role":"assistant",)"
    R"("content":"This is a reply from the mock upstream."},"finish_reason":)"
    R"("length"}],"usage":{"prompt_tokens":10,"completion_tokens":16,)"
    R"("total_tokens":26}})";

// ReplyUsage must agree with ScanReply on every reply that is JSON.
void CheckSameUsage(std::string_view body) {
  INFO(body);
  const std::optional<TokenUsage> walked = ScanReply(body, false).usage;
  const std::optional<TokenUsage> read = ReplyUsage(body, false);
  REQUIRE(read.has_value() == walked.has_value());
  if (!read) return;
  CHECK(read->prompt_tokens == walked->prompt_tokens);
  CHECK(read->completion_tokens == walked->completion_tokens);
  CHECK(read->total_tokens == walked->total_tokens);
  CHECK(read->cached_tokens == walked->cached_tokens);
  CHECK(read->reasoning_tokens == walked->reasoning_tokens);
}

TEST_CASE("ScanUsageFromEnd reads the usage an OpenAI reply ends with") {
  TokenUsage u;
  REQUIRE(ScanUsageFromEnd(kChatReply, &u));
  CHECK(u.prompt_tokens == 10);
  CHECK(u.completion_tokens == 16);
  CHECK(u.total_tokens == 26);
  CheckSameUsage(kChatReply);

  // Short members after the usage, as OpenAI sends them, and whitespace.
  const std::string openai =
      std::string(kChatReply.substr(0, kChatReply.size() - 1)) +
      R"(,"service_tier":"default", "system_fingerprint" : "fp_44709d6fcb",)"
      R"("x":null,"n":-1.5e3,"ok":true ,"list":[1,[2,{"a":"}"}]]} )"
      "\r\n";
  u = {};
  REQUIRE(ScanUsageFromEnd(openai, &u));
  CHECK(u.total_tokens == 26);
  CheckSameUsage(openai);
}

TEST_CASE("ScanUsageFromEnd reads nested details and sums a missing total") {
  const std::string_view body =
      R"({"choices":[],"usage":{"prompt_tokens":100,"completion_tokens":50,)"
      R"("prompt_tokens_details":{"cached_tokens":40,"audio_tokens":{"x":[1]}},)"
      R"("completion_tokens_details":{"reasoning_tokens":20}}})";
  TokenUsage u;
  REQUIRE(ScanUsageFromEnd(body, &u));
  CHECK(u.total_tokens == 150);
  CHECK(u.cached_tokens == 40);
  CHECK(u.reasoning_tokens == 20);
  CheckSameUsage(body);
  CheckSameUsage(R"({"usage":{}})");
  CheckSameUsage(R"({"usage":{"total_tokens":99999999999999999999999}})");
  CheckSameUsage(R"({"usage":{"total_tokens":-4,"prompt_tokens":2.5}})");
}

TEST_CASE("ScanUsageFromEnd reads flat and other usage blocks alike") {
  // The flat three counts take a shortcut; every variant must read as the
  // walker reads it.
  for (
      const std::string_view body : {
          R"({"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}})",
          R"({ "usage" : { "prompt_tokens" : 1 , "total_tokens" : 0 } } )",
          R"({"usage":{"total_tokens":007,"total_tokens":5}})",
          R"({"usage":{"total_tokens":999999999999999999}})",
          R"({"usage":{"total_tokens":9999999999999999999}})",
          R"({"usage":{"total_tokens":1.0}})",
          R"({"usage":{"total_tokens":1e3}})",
          R"({"usage":{"total_tokens":-1}})",
          R"({"usage":{"total_tokens":"5"}})",
          R"({"usage":{"total_token":5}})",
          R"({"usage":{"total_tokens_":5}})",
          R"({"usage":{"total_tokens":5,"audio":null}})",
          R"({"usage":{"total_tokens":5},"x":1})",
          R"({"a":1,"usage":{"total_tokens":5}})",
      }) {
    INFO(body);
    CheckSameUsage(body);
  }
}

TEST_CASE("ScanUsageFromEnd leaves what it cannot read to the walker") {
  TokenUsage u;
  for (const std::string_view body : {
           // "usage" in strings, escaped or not
           R"({"choices":[],"note":"\"usage\":{\"total_tokens\":9}"})",
           R"({"a":"x \"usage\":{\"total_tokens\":9}}"})",
           R"({"a\"usage":{"total_tokens":9}})",
           R"({"note":"usage","n":{"total_tokens":9}})",
           R"({"n":["usage",{"total_tokens":9}]})",
           // usage below the top level, after the top-level one too
           R"({"data":{"usage":{"total_tokens":99}}})",
           R"({"choices":[{"usage":{"total_tokens":99}}]})",
           R"({"usage":{"total_tokens":3},"x":{"usage":{"total_tokens":9}}})",
           R"({"x":{"a":1,"usage":{"total_tokens":9}},"y":2})",
           // usage not an object: an earlier one may count
           R"({"usage":{"total_tokens":3},"usage":null})",
           R"({"usage":null})",
           R"({"usage":[{"total_tokens":3}]})",
           // no usage at all
           R"({"id":"x","choices":[]})",
           R"({})",
       }) {
    INFO(body);
    CHECK_FALSE(ScanUsageFromEnd(body, &u));
    CheckSameUsage(body);
  }
  // The walker finds the earlier usage when the last one is null, or the
  // last one is nested.
  for (const std::string_view body : {
           R"({"usage":{"total_tokens":3},"usage":null})",
           R"({"usage":{"total_tokens":3},"x":{"usage":{"total_tokens":9}}})",
       }) {
    const auto earlier = ReplyUsage(body, false);
    REQUIRE(earlier.has_value());
    CHECK(earlier->total_tokens == 3);
  }
  // Escapes after the usage are walked like the walker walks them.
  for (const std::string_view body : {
           R"({"usage":{"total_tokens":3},"k\"":1})",
           R"({"usage":{"total_tokens":3},"k":"\\","n":"\"usage\""})",
       }) {
    INFO(body);
    u = {};
    REQUIRE(ScanUsageFromEnd(body, &u));
    CHECK(u.total_tokens == 3);
    CheckSameUsage(body);
  }
  // Two usage objects: the last one, as the walker reads it.
  const std::string_view twice =
      R"({"usage":{"total_tokens":3},"usage":{"total_tokens":5}})";
  REQUIRE(ScanUsageFromEnd(twice, &u));
  CHECK(u.total_tokens == 5);
  CheckSameUsage(twice);
}

TEST_CASE("ScanUsageFromEnd rejects malformed and truncated replies") {
  TokenUsage u;
  for (const std::string_view body : {
           "",
           " ",
           "{",
           "}",
           "{}",
           "[]",
           "null",
           "\"usage\"",
           R"("usage":{"total_tokens":1}})",
           R"({"usage":{"total_tokens":1})",
           R"({"usage":{"total_tokens":1}} x)",
           R"({"usage":{"total_tokens":1}}})",
           R"({"usage":{"total_tokens":1},})",
           R"({,"usage":{"total_tokens":1}})",
           R"({"usage"{"total_tokens":1}})",
           R"({usage:{"total_tokens":1}})",
           R"({"usage":{"total_tokens":1,}})",
           R"({"usage":{"total_tokens":}})",
           R"({"usage":{"total_tokens":1 2}})",
           R"({"usage":{"total_tokens"1}})",
           R"({"usage":{total_tokens:1}})",
           R"({"usage":"total_tokens":1}})",
           R"({"usage":{"total_tokens":1}}})",
           R"({"x":1 "usage":{"total_tokens":1}})",
           R"({"x":1,,"usage":{"total_tokens":1}})",
           R"({"x":,"usage":{"total_tokens":1}})",
       }) {
    INFO(body);
    CHECK_FALSE(ScanUsageFromEnd(body, &u));
    CHECK_FALSE(ReplyUsage(body, false).has_value());
  }
  // Every prefix of a reply: none ends with a usage member.
  for (size_t n = 0; n < kChatReply.size(); ++n) {
    const std::string_view prefix = kChatReply.substr(0, n);
    INFO(prefix);
    CHECK_FALSE(ScanUsageFromEnd(prefix, &u));
    CHECK_FALSE(ReplyUsage(prefix, false).has_value());
  }
  const std::string nul("{\"usage\":{\"total_tokens\":1}}\0", 29);
  CHECK_FALSE(ScanUsageFromEnd(nul, &u));
  CHECK_FALSE(ReplyUsage(nul, false).has_value());
  // What it does not check: the members before those it reads. A body
  // broken there but ending with a well-formed usage is read.
  for (const std::string_view body : {
           R"({"a":tru,"usage":{"total_tokens":1}})",
           R"({"a":[1,2}],"usage":{"total_tokens":1}})",
       }) {
    INFO(body);
    u = {};
    REQUIRE(ScanUsageFromEnd(body, &u));
    CHECK(u.total_tokens == 1);
    CHECK_FALSE(ScanReply(body, false).usage.has_value());
  }
}

TEST_CASE("ScanUsageFromEnd is bounded on hostile replies") {
  TokenUsage u;
  // Deep nesting at the end, open or balanced.
  std::string deep = R"({"a":)";
  for (int i = 0; i < 100000; ++i) deep += "[";
  for (int i = 0; i < 100000; ++i) deep += "]";
  deep += "}";
  CHECK_FALSE(ScanUsageFromEnd(deep, &u));
  CheckSameUsage(deep);
  std::string deep_tail = R"({"usage":{"total_tokens":7},"a":)";
  for (int i = 0; i < 1000; ++i) deep_tail += "[";
  for (int i = 0; i < 1000; ++i) deep_tail += "]";
  deep_tail += "}";
  CHECK_FALSE(ScanUsageFromEnd(deep_tail, &u));
  CheckSameUsage(deep_tail);
  std::string deep_usage = R"({"usage":{"total_tokens":7,"x":)";
  for (int i = 0; i < 1000; ++i) deep_usage += "{\"a\":";
  deep_usage += "1";
  for (int i = 0; i < 1000; ++i) deep_usage += "}";
  deep_usage += "}}";
  CHECK_FALSE(ScanUsageFromEnd(deep_usage, &u));
  CheckSameUsage(deep_usage);
  CHECK_FALSE(ScanUsageFromEnd(std::string(1 << 20, '}'), &u));
  CHECK_FALSE(ScanUsageFromEnd("{" + std::string(1 << 20, '"') + "}", &u));
  std::string keys = "{";
  for (int i = 0; i < 1 << 16; ++i) keys += R"("usage")";
  keys += "}";
  CHECK_FALSE(ScanUsageFromEnd(keys, &u));
  CheckSameUsage(keys);
  CHECK_FALSE(ScanUsageFromEnd("{" + std::string(1 << 20, ' ') + "}", &u));
  CHECK_FALSE(
      ScanUsageFromEnd("{\"a\":\"" + std::string(1 << 20, 'x') + "\"}", &u));
  // Members after the usage are walked, up to 4 KiB of them; a longer
  // tail is left to the walker.
  std::string many = R"({"usage":{"total_tokens":7})";
  for (int i = 0; i < 100; ++i) many += ",\"k\":" + std::to_string(i);
  many += "}";
  REQUIRE(ScanUsageFromEnd(many, &u));
  CHECK(u.total_tokens == 7);
  CheckSameUsage(many);
  const std::string long_tail =
      R"({"usage":{"total_tokens":7},"k":")" + std::string(8192, 'x') + "\"}";
  CHECK_FALSE(ScanUsageFromEnd(long_tail, &u));
  CheckSameUsage(long_tail);
  // A long reply before the usage costs the tail scan nothing.
  const std::string long_head = R"({"choices":[{"content":")" +
                                std::string(1 << 20, 'x') +
                                R"("}],"usage":{"total_tokens":7}})";
  REQUIRE(ScanUsageFromEnd(long_head, &u));
  CHECK(u.total_tokens == 7);
}

// Random JSON values, with the bytes that trouble a backward reader:
// escaped quotes and backslashes, braces and "usage" inside strings.
std::string RandomJson(std::mt19937& rng, int depth) {
  const auto pick = [&](int n) {
    return static_cast<int>(rng() % static_cast<unsigned>(n));
  };
  static const std::array<std::string_view, 10> kStrings = {
      R"("")",
      R"("usage")",
      R"("a \"usage\":{} b")",
      R"("x\\")",
      R"("}]{[,:")",
      R"("\\\"")",
      R"("\u0022")",
      R"("total_tokens")",
      R"("usage\":{\"total_tokens\":5}")",
      R"("plain text")"};
  switch (depth > 3 ? pick(3) : pick(6)) {
    case 0:
      return std::string(kStrings[static_cast<size_t>(pick(10))]);
    case 1: {
      static const std::array<std::string_view, 6> kScalars = {
          "0", "-12", "3.5e2", "true", "false", "null"};
      return std::string(kScalars[static_cast<size_t>(pick(6))]);
    }
    case 2:
      return std::to_string(pick(1000));
    case 3: {
      std::string out = "[";
      for (int i = pick(4); i > 0; --i) {
        out += RandomJson(rng, depth + 1);
        if (i > 1) out += pick(2) ? "," : " , ";
      }
      return out + "]";
    }
    default: {
      static const std::array<std::string_view, 6> kKeys = {
          R"("usage")",         R"("a")",
          R"("total_tokens")",  R"("us\"age")",
          R"("prompt_tokens")", R"("choices")"};
      std::string out = "{";
      for (int i = pick(4); i > 0; --i) {
        out += kKeys[static_cast<size_t>(pick(6))];
        out += pick(2) ? ":" : " : ";
        out += RandomJson(rng, depth + 1);
        if (i > 1) out += ",";
      }
      return out + "}";
    }
  }
}

TEST_CASE("ReplyUsage agrees with ScanReply on random replies") {
  std::mt19937 rng(2026);
  int found = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string body = "{";
    const int members = static_cast<int>(rng() % 5);
    for (int i = 0; i < members; ++i) {
      if (i > 0) body += ",";
      switch (rng() % 4) {
        case 0:
          body += R"("usage":{"prompt_tokens":)" + std::to_string(rng() % 100) +
                  R"(,"total_tokens":)" + std::to_string(rng() % 1000) + "}";
          break;
        case 1:
          body += R"("usage":)" + RandomJson(rng, 1);
          break;
        default:
          body += R"("k":)" + RandomJson(rng, 1);
      }
    }
    body += rng() % 2 ? "}" : "} \n";
    TokenUsage u;
    found += ScanUsageFromEnd(body, &u) ? 1 : 0;
    CheckSameUsage(body);
    // A byte dropped, changed or doubled: never a crash; where the result is
    // still one JSON object, the same usage.
    std::string mutated = body;
    const size_t at = rng() % mutated.size();
    switch (rng() % 3) {
      case 0:
        mutated.erase(at, 1);
        break;
      case 1:
        mutated[at] = "{}[]\",:\\ 1a"[rng() % 12];
        break;
      default:
        mutated.insert(at, 1, mutated[at]);
    }
    const bool json = ScanReply(mutated, false).valid;
    const std::optional<TokenUsage> read = ReplyUsage(mutated, false);
    if (json) CheckSameUsage(mutated);
    if (!json && read) {
      // Read from a tail that is well-formed; the body is not JSON.
      TokenUsage tail;
      CHECK(ScanUsageFromEnd(mutated, &tail));
    }
  }
  CHECK(found > 1000);  // the fast path is taken, not only the walker
}

TEST_CASE("ReplyUsage reads event streams with ScanReply") {
  const std::string_view stream =
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,"
      "\"completion_tokens\":2,\"total_tokens\":5}}\n\n"
      "data: [DONE]\n\n";
  const auto u = ReplyUsage(stream, true);
  REQUIRE(u.has_value());
  CHECK(u->total_tokens == 5);
  CHECK_FALSE(ReplyUsage(stream, false).has_value());
}

TEST_CASE("ParseChatRequest validates and measures the prompt") {
  auto chat = ParseChatRequest(
      R"({"model":"gpt-4o","max_tokens":50,"messages":[)"
      R"({"role":"system","content":"abcd"},)"
      R"({"role":"user","content":[{"type":"text","text":"efgh"},)"
      R"({"type":"image_url","image_url":{"url":"http://x"}}]}]})");
  REQUIRE(chat.ok());
  CHECK(chat->model == "gpt-4o");
  CHECK(chat->prompt_bytes == 8);
  CHECK(chat->max_tokens == 50);
  auto newer = ParseChatRequest(R"({"messages":[],"max_completion_tokens":7})");
  REQUIRE(newer.ok());
  CHECK(newer->model.empty());
  CHECK(newer->max_tokens == 7);

  CHECK(ParseChatRequest("{").status().message() ==
        "request body is not valid JSON");
  CHECK(ParseChatRequest("[]").status().message() ==
        "request body must be a JSON object");
  CHECK(ParseChatRequest(R"({"model":"m"})").status().message() ==
        "messages: must be an array");
  CHECK(ParseChatRequest(R"({"model":3,"messages":[]})").status().message() ==
        "model: must be a string");
  CHECK(ParseChatRequest(R"({"messages":[],"max_tokens":1.5})")
            .status()
            .message() == "max_tokens: must be an integer in [0, 100000000]");
  CHECK_FALSE(
      ParseChatRequest(R"({"messages":[],"max_tokens":100000001})").ok());
}

TEST_CASE("ParseChatRequest reads stream and stream_options") {
  auto plain = ParseChatRequest(R"({"messages":[]})");
  REQUIRE(plain.ok());
  CHECK_FALSE(plain->stream);
  CHECK_FALSE(plain->include_usage);
  auto asked = ParseChatRequest(
      R"({"messages":[],"stream":true,"stream_options":{"include_usage":true}})");
  REQUIRE(asked.ok());
  CHECK(asked->stream);
  CHECK(asked->include_usage);
  auto declined = ParseChatRequest(
      R"({"messages":[],"stream":true,"stream_options":{"include_usage":false}})");
  REQUIRE(declined.ok());
  CHECK(declined->stream);
  CHECK_FALSE(declined->include_usage);
  CHECK(ParseChatRequest(R"({"messages":[],"stream":"yes"})")
            .status()
            .message() == "stream: must be a boolean");
  CHECK(ParseChatRequest(R"({"messages":[],"stream_options":[]})")
            .status()
            .message() == "stream_options: must be an object");
  CHECK(ParseChatRequest(
            R"({"messages":[],"stream_options":{"include_usage":1}})")
            .status()
            .message() == "stream_options.include_usage: must be a boolean");
}

TEST_CASE("WithStreamUsage asks for the usage chunk, keeping the rest") {
  CHECK(WithStreamUsage(R"({"model":"m","stream":true,"messages":[]})") ==
        R"({"model":"m","stream":true,"messages":[],)"
        R"("stream_options":{"include_usage":true}})");
  CHECK(
      WithStreamUsage(R"({"stream_options":{"include_usage":false,"x":1}})") ==
      R"({"stream_options":{"include_usage":true,"x":1}})");
  CHECK(WithStreamUsage(R"({"stream_options":null})") ==
        R"({"stream_options":{"include_usage":true}})");
}

TEST_CASE("SseSplitter cuts events at blank lines, whatever the pieces") {
  const std::string stream =
      "data: {\"a\":1}\n\n"
      ": a comment\r\ndata: {\"b\":2}\r\n\r\n"
      "event: x\ndata: 1\ndata: 2\n\n"
      "data: [DONE]\n\n";
  const std::vector<std::string> expected = {
      "data: {\"a\":1}\n\n", ": a comment\r\ndata: {\"b\":2}\r\n\r\n",
      "event: x\ndata: 1\ndata: 2\n\n", "data: [DONE]\n\n"};
  // Every piece size, including one byte at a time.
  for (size_t piece = 1; piece <= stream.size(); ++piece) {
    INFO("piece size " << piece);
    SseSplitter splitter(1024);
    std::vector<std::string> events;
    for (size_t i = 0; i < stream.size(); i += piece) {
      REQUIRE(
          splitter.Feed(std::string_view(stream).substr(i, piece), &events));
    }
    CHECK(events == expected);
    CHECK(splitter.pending().empty());
  }
  SseSplitter partial(1024);
  std::vector<std::string> events;
  REQUIRE(partial.Feed("data: 1\n\ndata: 2\n", &events));
  CHECK(events.size() == 1);
  CHECK(partial.pending() == "data: 2\n");
}

TEST_CASE("SseSplitter refuses an event longer than its bound") {
  SseSplitter splitter(16);
  std::vector<std::string> events;
  CHECK(splitter.Feed("data: 0123456", &events));
  CHECK_FALSE(splitter.Feed("789abcdef", &events));
  CHECK(events.empty());
  // A stream of complete short events never reaches the bound.
  SseSplitter ok(16);
  for (int i = 0; i < 1000; ++i) REQUIRE(ok.Feed("data: 1\n\n", &events));
  CHECK(events.size() == 1000);
}

TEST_CASE("SseSplitter and ScanStreamEvent survive arbitrary bytes") {
  std::mt19937 rng(11);
  const std::string alphabet = "data: {}[]\",:\n\r\\u0aé\xff";
  for (int round = 0; round < 2000; ++round) {
    std::string stream(rng() % 300, ' ');
    for (char& c : stream) c = alphabet[rng() % alphabet.size()];
    SseSplitter splitter(64);
    std::vector<std::string> events;
    bool within_bound = true;
    for (size_t i = 0; i < stream.size() && within_bound;) {
      const size_t n = 1 + rng() % 17;
      within_bound =
          splitter.Feed(std::string_view(stream).substr(i, n), &events);
      i += n;
    }
    // Events, then what is pending, are the input byte for byte.
    std::string seen;
    for (const std::string& e : events) {
      seen += e;
      (void)ScanStreamEvent(e);
    }
    seen += splitter.pending();
    if (within_bound) {
      CHECK(seen == stream);
    } else {
      CHECK(stream.starts_with(seen));
      CHECK(splitter.pending().size() > 64);
    }
  }
}

TEST_CASE("ScanStreamEvent reads chunks, the usage chunk and [DONE]") {
  const StreamEventInfo chunk = ScanStreamEvent(
      "data: {\"choices\":[{\"delta\":{\"content\":\"h\\u00e9!\","
      "\"tool_calls\":[{\"function\":{\"arguments\":\"{}\"}}]}}],"
      "\"usage\":null}\n\n");
  CHECK(chunk.valid);
  CHECK(chunk.has_choices);
  CHECK_FALSE(chunk.usage.has_value());
  CHECK(chunk.text_bytes == 4 + 2);  // "hé!" is 4 bytes of UTF-8; "{}"
  const StreamEventInfo usage = ScanStreamEvent(
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,"
      "\"completion_tokens\":4}}\r\n\r\n");
  CHECK_FALSE(usage.has_choices);
  REQUIRE(usage.usage.has_value());
  CHECK(usage.usage->total_tokens == 7);
  CHECK(usage.usage->cached_tokens == 0);
  const StreamEventInfo details = ScanStreamEvent(
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":30,"
      "\"completion_tokens\":20,\"total_tokens\":50,"
      "\"prompt_tokens_details\":{\"cached_tokens\":10},"
      "\"completion_tokens_details\":{\"reasoning_tokens\":12}}}\n\n");
  REQUIRE(details.usage.has_value());
  CHECK(details.usage->cached_tokens == 10);
  CHECK(details.usage->reasoning_tokens == 12);
  CHECK(ScanStreamEvent("data: [DONE]\n\n").done);
  CHECK(ScanStreamEvent("data:[DONE]\n\n").done);
  // data: lines of one event are joined by a newline.
  CHECK(ScanStreamEvent("data: {\"choices\":\ndata: []}\n\n").valid);
  const StreamEventInfo error =
      ScanStreamEvent("data: {\"error\":{\"message\":\"x\"}}\n\n");
  CHECK(error.error);
  CHECK_FALSE(ScanStreamEvent(": keep-alive\n\n").valid);
  CHECK_FALSE(ScanStreamEvent("data: {\"choices\":[\n\n").valid);
}

TEST_CASE("ParseMcpRequest") {
  auto call =
      ParseMcpRequest(R"({"jsonrpc":"2.0","id":"a1","method":"tools/call",)"
                      R"("params":{"name":"search","arguments":{}}})");
  REQUIRE(call.ok());
  CHECK(call->method == "tools/call");
  CHECK(call->tool == "search");
  CHECK(call->id == "a1");
  CHECK_FALSE(call->notification);
  auto note = ParseMcpRequest(
      R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  REQUIRE(note.ok());
  CHECK(note->notification);
  CHECK(ParseMcpRequest("[]").status().message() ==
        "JSON-RPC batches are not supported");
  // A tool call sent as a notification would run unmetered.
  CHECK(ParseMcpRequest(R"({"jsonrpc":"2.0","method":"tools/call",)"
                        R"("params":{"name":"echo"}})")
            .status()
            .message() ==
        "tools/call: must have an id (a notification gets no result)");
  CHECK(ParseMcpRequest(R"({"id":1,"method":"x"})").status().message() ==
        "jsonrpc: must be \"2.0\"");
  CHECK(ParseMcpRequest(R"({"jsonrpc":"2.0","id":{},"method":"x"})")
            .status()
            .message() == "id: must be a string or an integer");
}

TEST_CASE("KeyStore::Parse names the file, the entry and the field") {
  auto keys = KeyStore::Parse(
      R"([{"key":"k1","account":"a","kind":"internal","user":"u"},)"
      R"({"key":"k2","account":"b","kind":"sandbox","byok":true,"id":"kid"}])",
      "keys.json");
  REQUIRE(keys.ok());
  CHECK(keys->size() == 2);
  const KeyRecord* k1 = keys->Find("k1");
  REQUIRE(k1 != nullptr);
  CHECK(k1->id == "k1");
  CHECK(k1->kind == plangate::KeyKind::kInternal);
  CHECK(k1->user == "u");
  const KeyRecord* k2 = keys->Find("k2");
  REQUIRE(k2 != nullptr);
  CHECK(k2->id == "kid");
  CHECK(k2->kind == plangate::KeyKind::kTest);
  CHECK(k2->byok);
  CHECK(keys->Find("k3") == nullptr);

  auto bad = KeyStore::Parse(
      R"([{"key":"k1","account":"a"},{"key":"k1","account":"a"},)"
      R"({"account":"a","kind":"prod","colour":1},{"key":"","account":"a",)"
      R"("byok":"yes"}, 7])",
      "keys.json");
  REQUIRE_FALSE(bad.ok());
  CHECK(std::string(bad.status().message()) ==
        "keys.json: [1].key: duplicate key (also [0])\n"
        "keys.json: [2].colour: unknown field\n"
        "keys.json: [2].key: missing required field\n"
        "keys.json: [2].kind: must be live, test or internal\n"
        "keys.json: [3].key: must be a non-empty string\n"
        "keys.json: [3].byok: must be true or false\n"
        "keys.json: [4]: must be an object");
  CHECK(std::string(KeyStore::Parse("{}", "k.json").status().message()) ==
        "k.json: keys: must be a JSON array of keys");
}

TEST_CASE("KeyStore::Parse quotes at most about 80 bytes of bad input") {
  const std::string huge(10 << 20, 'k');
  const auto syntax =
      KeyStore::Parse(R"([{"key": ")" + huge + "\x01\"}]", "keys.json");
  REQUIRE_FALSE(syntax.ok());
  CHECK(syntax.status().message().size() < 400);
  CHECK(std::string(syntax.status().message())
            .ends_with("...' (10485769 bytes)"));
  const auto field = KeyStore::Parse(
      R"([{"key": "k", "account": "a", ")" + huge + R"(": 1}])", "keys.json");
  REQUIRE_FALSE(field.ok());
  CHECK(std::string(field.status().message()) ==
        R"(keys.json: [0][")" + std::string(80, 'k') +
            R"(..." (10485760 bytes)]: unknown field)");
}

TEST_CASE("Metering charges a tool's own meter when the catalog has one") {
  auto catalog = plangate::Catalog::Parse(R"({
    "version": 1,
    "meters": ["requests", "tool_calls", "tool_calls.search", "tool_calls."],
    "plans": [{"id": "p", "limits": [
      {"meter": "tool_calls", "limit": 100},
      {"meter": "tool_calls.search", "limit": 5}]}]})");
  REQUIRE(catalog.ok());
  auto enforcer = plangate::Enforcer::Create(*catalog);
  REQUIRE(enforcer.ok());
  const Metering m(**enforcer, {});
  const Charge search = m.ToolCall("search");
  REQUIRE(search.count == 2);
  CHECK(search.amounts[0].meter == (*enforcer)->MeterId("tool_calls"));
  CHECK(search.amounts[1].meter == (*enforcer)->MeterId("tool_calls.search"));
  CHECK(search.amounts[1].amount == 1);
  CHECK(m.ToolCall("echo").count == 1);
  CHECK(m.ToolCall("").count == 1);  // "tool_calls." names no tool
  CHECK(m.ToolCall("searc").count == 1);
  CHECK(m.Describe() ==
        "tokens=- cost=- tool_calls=tool_calls per_tool=1 byok_feature=no");
}

TEST_CASE("Metering charges the catalog's meters") {
  auto catalog = plangate::Catalog::Parse(R"({
    "version": 1,
    "meters": ["requests", "tokens", "cost_micros", "tool_calls"],
    "plans": [{"id": "p", "features": ["byok"], "limits": [
      {"meter": "tokens", "limit": 1000},
      {"meter": "cost_micros", "limit": 1000},
      {"meter": "tool_calls", "limit": 1000}]}]})");
  REQUIRE(catalog.ok());
  auto enforcer = plangate::Enforcer::Create(*catalog);
  REQUIRE(enforcer.ok());
  const Metering m(**enforcer,
                   {.micros_per_1k_tokens = 2500, .default_max_tokens = 100});
  const KeyRecord live{.id = "k", .account = "a", .prepaid = true};
  const KeyRecord byok{.id = "k", .account = "a", .byok = true};

  const Charge est = m.ChatEstimate({.prompt_bytes = 41}, live);
  REQUIRE(est.count == 2);  // tokens, cost
  CHECK(est.amounts[0].amount == 11 + 100);
  CHECK(est.amounts[1].amount == 278);  // ceil(111 * 2.5)
  CHECK(est.wallet_micros == 278);
  const Charge actual = m.ChatActual({.total_tokens = 40}, "", byok);
  CHECK(actual.amounts[0].amount == 40);
  CHECK(actual.amounts[1].amount == 0);  // BYOK: the platform pays nothing
  CHECK(actual.wallet_micros == 0);
  CHECK(m.ToolCall().count == 1);
  // A stream without a usage chunk: ceil(41 / 4) + ceil(9 / 4) tokens.
  const Charge streamed = m.ChatStreamed({.prompt_bytes = 41}, 9, live);
  CHECK(streamed.amounts[0].amount == 11 + 3);
  CHECK(streamed.amounts[1].amount == 35);  // ceil(14 * 2.5)
  CHECK(streamed.wallet_micros == 35);
  // Absurd usage saturates instead of overflowing.
  const Charge huge =
      m.ChatActual({.total_tokens = int64_t{1} << 62}, "", live);
  CHECK(huge.amounts[0].amount == plangate::kMaxCount);
  CHECK(huge.amounts[1].amount == plangate::kMaxCount);
  CHECK(m.Features(byok).size() == 1);
  CHECK(m.Features(live).empty());
}

TEST_CASE("Metering prices calls at the catalog's price for the model") {
  auto catalog = plangate::Catalog::Parse(R"({
    "version": 1,
    "meters": ["requests", "tokens", "cost_micros"],
    "prices": [{"models": ["mock-*"], "input": 1000000, "output": 4000000}],
    "plans": [{"id": "p", "models": ["mock-small"], "limits": [
      {"meter": "tokens", "limit": 1000000},
      {"meter": "cost_micros", "limit": 1000000}]}]})");
  REQUIRE(catalog.ok());
  auto enforcer = plangate::Enforcer::Create(*catalog);
  REQUIRE(enforcer.ok());
  const Metering m(**enforcer, {.micros_per_1k_tokens = 2500});
  const KeyRecord live{.id = "k", .account = "a", .prepaid = true};
  // 11 prompt tokens at 1 micro-unit, 100 completion tokens at 4.
  const Charge est = m.ChatEstimate(
      {.model = "mock-small", .prompt_bytes = 41, .max_tokens = 100}, live);
  CHECK(est.amounts[1].amount == 11 + 400);
  CHECK(est.wallet_micros == 411);
  const Charge actual = m.ChatActual(
      {.prompt_tokens = 10, .completion_tokens = 5, .total_tokens = 15},
      "mock-small", live);
  CHECK(actual.amounts[1].amount == 10 + 20);
  // A model the table does not price falls to the explicit flat rate.
  const Charge other = m.ChatActual(
      {.prompt_tokens = 10, .completion_tokens = 5, .total_tokens = 15},
      "gpt-9", live);
  CHECK(other.amounts[1].amount == 38);  // ceil(15 * 2.5)
  // Only a total: priced as prompt tokens.
  CHECK(m.ChatActual({.total_tokens = 15}, "mock-small", live)
            .amounts[1]
            .amount == 15);
}

TEST_CASE("Metering prices cached and reasoning tokens once, at their rates") {
  auto catalog = plangate::Catalog::Parse(R"({
    "version": 1,
    "meters": ["requests", "tokens", "cost_micros"],
    "prices": [{"models": ["o-mini"], "input": 1000000,
                "cached_input": 250000, "output": 4000000,
                "reasoning": 6000000}],
    "plans": [{"id": "p", "limits": [
      {"meter": "tokens", "limit": 1000000},
      {"meter": "cost_micros", "limit": 1000000}]}]})");
  REQUIRE(catalog.ok());
  auto enforcer = plangate::Enforcer::Create(*catalog);
  REQUIRE(enforcer.ok());
  const Metering m(**enforcer, {.micros_per_1k_tokens = 1000});
  const KeyRecord live{.id = "k", .account = "a", .prepaid = true};
  // 100 prompt tokens, 40 of them cached; 30 completion tokens, 20 of them
  // reasoning: 60 x 1 + 40 x 0.25 + 10 x 4 + 20 x 6 = 230.
  const Charge actual = m.ChatActual({.prompt_tokens = 100,
                                      .completion_tokens = 30,
                                      .total_tokens = 130,
                                      .cached_tokens = 40,
                                      .reasoning_tokens = 20},
                                     "o-mini", live);
  CHECK(actual.amounts[0].amount == 130);  // tokens: the total
  CHECK(actual.amounts[1].amount == 230);
  CHECK(actual.wallet_micros == 230);
  // The same call without details: 100 x 1 + 30 x 4.
  CHECK(
      m.ChatActual(
           {.prompt_tokens = 100, .completion_tokens = 30, .total_tokens = 130},
           "o-mini", live)
          .amounts[1]
          .amount == 220);
  // Details past their totals are capped at them: all cached, all
  // reasoning: 100 x 0.25 + 30 x 6 = 205.
  CHECK(m.ChatActual({.prompt_tokens = 100,
                      .completion_tokens = 30,
                      .total_tokens = 130,
                      .cached_tokens = 500,
                      .reasoning_tokens = 500},
                     "o-mini", live)
            .amounts[1]
            .amount == 205);
  // An unpriced model at the flat rate: the details are inside the totals,
  // so 130 tokens at 1 micro-unit, not 190.
  CHECK(m.ChatActual({.prompt_tokens = 100,
                      .completion_tokens = 30,
                      .total_tokens = 130,
                      .cached_tokens = 40,
                      .reasoning_tokens = 20},
                     "gpt-9", live)
            .amounts[1]
            .amount == 130);
}

}  // namespace
}  // namespace gateway
