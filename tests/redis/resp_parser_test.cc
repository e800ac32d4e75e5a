// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// RespParser: every RESP2 type, input split at every byte, and each bound
// and malformation as a clear, sticky error.

#include "redis/resp_parser.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/strings/match.h"

namespace plangate::internal::redis {
namespace {

// Feeds `wire` in pieces of `chunk` bytes and collects the replies.
absl::StatusOr<std::vector<Reply>> ParseAll(const std::string& wire,
                                            size_t chunk,
                                            RespLimits limits = {}) {
  RespParser parser(limits);
  std::vector<Reply> out;
  for (size_t i = 0; i < wire.size(); i += chunk) {
    parser.Feed(std::string_view(wire).substr(i, chunk));
    for (;;) {
      Reply r;
      absl::StatusOr<bool> got = parser.Next(&r);
      if (!got.ok()) return got.status();
      if (!*got) break;
      out.push_back(std::move(r));
    }
  }
  if (parser.buffered() != 0) {
    return absl::DataLossError("bytes left over");
  }
  return out;
}

std::string ErrorOf(const std::string& wire, RespLimits limits = {}) {
  absl::StatusOr<std::vector<Reply>> r = ParseAll(wire, wire.size(), limits);
  if (r.ok()) return "(no error)";
  CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  return std::string(r.status().message());
}

TEST_CASE("RESP2: every type, whole or split at any byte", "[redis][resp]") {
  const std::string binary("a\r\n\0b", 5);
  const std::string wire =
      "+OK\r\n-ERR bad thing\r\n:42\r\n:-9223372036854775808\r\n"
      "$5\r\n" +
      binary +
      "\r\n$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n"
      "*3\r\n:1\r\n*2\r\n+a\r\n$1\r\nb\r\n$-1\r\n";
  for (size_t chunk : {wire.size(), size_t{1}, size_t{2}, size_t{7}}) {
    INFO("chunk " << chunk);
    absl::StatusOr<std::vector<Reply>> r = ParseAll(wire, chunk);
    REQUIRE(r.ok());
    const std::vector<Reply>& v = *r;
    REQUIRE(v.size() == 10);
    CHECK(v[0].type == Reply::Type::kStatus);
    CHECK(v[0].str == "OK");
    CHECK(v[1].is_error());
    CHECK(v[1].str == "ERR bad thing");
    CHECK(v[2].integer == 42);
    CHECK(v[3].integer == INT64_MIN);
    CHECK(v[4].type == Reply::Type::kString);
    CHECK(v[4].str == binary);
    CHECK(v[5].str.empty());
    CHECK(v[5].type == Reply::Type::kString);
    CHECK(v[6].type == Reply::Type::kNil);
    CHECK(v[7].type == Reply::Type::kNil);
    CHECK(v[8].type == Reply::Type::kArray);
    CHECK(v[8].elements.empty());
    REQUIRE(v[9].elements.size() == 3);
    CHECK(v[9].elements[0].integer == 1);
    REQUIRE(v[9].elements[1].elements.size() == 2);
    CHECK(v[9].elements[1].elements[1].str == "b");
    CHECK(v[9].elements[2].type == Reply::Type::kNil);
  }
}

TEST_CASE("RESP2: a large bulk string fed in small reads", "[redis][resp]") {
  const std::string value(1 << 20, 'v');
  const std::string wire =
      "$" + std::to_string(value.size()) + "\r\n" + value + "\r\n:1\r\n";
  absl::StatusOr<std::vector<Reply>> r = ParseAll(wire, 1000);
  REQUIRE(r.ok());
  REQUIRE(r->size() == 2);
  CHECK((*r)[0].str == value);
}

TEST_CASE("RESP2: malformed input and exceeded bounds are clear errors",
          "[redis][resp]") {
  CHECK(ErrorOf("%3\r\n") ==
        "RESP protocol error at byte 0: unexpected type byte 0x25 (RESP2 "
        "replies start with + - : $ *)");
  CHECK(ErrorOf("+OK\r\n:12x\r\n") ==
        "RESP protocol error at byte 6: bad integer");
  CHECK(ErrorOf(":\r\n") == "RESP protocol error at byte 1: bad integer");
  CHECK(ErrorOf(":9223372036854775808\r\n") ==
        "RESP protocol error at byte 1: integer out of range");
  CHECK(ErrorOf(":99999999999999999999\r\n") ==
        "RESP protocol error at byte 1: bad integer");
  CHECK(ErrorOf("+OK\rX") ==
        "RESP protocol error at byte 3: CR not followed by LF");
  CHECK(ErrorOf("+O\nK\r\n") ==
        "RESP protocol error at byte 1: LF inside a line");
  CHECK(ErrorOf("$-2\r\n") ==
        "RESP protocol error at byte 0: negative bulk length");
  CHECK(ErrorOf("*-5\r\n") ==
        "RESP protocol error at byte 0: negative array length");
  CHECK(ErrorOf("$3\r\nabcd\r\n") ==
        "RESP protocol error at byte 7: bulk string not followed by CRLF");

  RespLimits small;
  small.max_bulk_bytes = 10;
  small.max_array_elements = 3;
  small.max_depth = 2;
  small.max_line_bytes = 8;
  CHECK(ErrorOf("$11\r\n", small) ==
        "RESP protocol error at byte 0: bulk length 11 exceeds 10");
  CHECK(ErrorOf("*4\r\n", small) ==
        "RESP protocol error at byte 0: array length 4 exceeds 3");
  CHECK(ErrorOf("*1\r\n*1\r\n*1\r\n:1\r\n", small) ==
        "RESP protocol error at byte 8: arrays nested deeper than 2");
  CHECK(ErrorOf("*1\r\n*1\r\n:1\r\n", small) == "(no error)");
  CHECK(ErrorOf("+123456789012", small) ==
        "RESP protocol error at byte 1: line longer than 8 bytes");
  // The default depth bound keeps recursion shallow on hostile input.
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "*1\r\n";
  CHECK(ErrorOf(deep) ==
        "RESP protocol error at byte 64: arrays nested deeper than 16");
}

TEST_CASE("RESP2: an error is sticky", "[redis][resp]") {
  RespParser parser;
  parser.Feed("?\r\n+OK\r\n");
  Reply r;
  CHECK_FALSE(parser.Next(&r).ok());
  parser.Feed("+OK\r\n");
  CHECK_FALSE(parser.Next(&r).ok());
}

TEST_CASE("RESP2: byte offsets count consumed replies", "[redis][resp]") {
  RespParser parser;
  Reply r;
  parser.Feed("+OK\r\n");
  REQUIRE(*parser.Next(&r));
  parser.Feed("+OK\r\n!");
  REQUIRE(*parser.Next(&r));
  absl::StatusOr<bool> bad = parser.Next(&r);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message() ==
        "RESP protocol error at byte 10: unexpected type byte 0x21 (RESP2 "
        "replies start with + - : $ *)");
}

}  // namespace
}  // namespace plangate::internal::redis
