// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// resp_fuzzer: the Redis client's RESP2 reply parser on arbitrary bytes.
// Nothing may crash or run away (small limits keep recursion and memory
// bounded); the replies and the error do not depend on how the bytes are
// split into reads; every error is "RESP protocol error at byte N: ...";
// and every parsed reply, encoded again, parses back to itself.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "redis/resp_parser.h"

namespace {

using plangate::internal::redis::Reply;
using plangate::internal::redis::RespLimits;
using plangate::internal::redis::RespParser;

void Check(bool ok) {
  if (!ok) std::abort();
}

RespLimits Limits() {
  RespLimits limits;
  limits.max_depth = 8;
  limits.max_bulk_bytes = 1 << 16;
  limits.max_array_elements = 1 << 12;
  limits.max_line_bytes = 256;
  return limits;
}

struct Outcome {
  std::vector<Reply> replies;
  std::string error;  // empty: none
};

// Feeds `in` in pieces of `chunk` bytes (the whole at once when 0).
Outcome Parse(std::string_view in, size_t chunk) {
  RespParser parser(Limits());
  Outcome out;
  if (chunk == 0) chunk = in.size() + 1;
  for (size_t i = 0; i < in.size() && out.error.empty(); i += chunk) {
    parser.Feed(in.substr(i, chunk));
    for (;;) {
      Reply r;
      absl::StatusOr<bool> got = parser.Next(&r);
      if (!got.ok()) {
        out.error = std::string(got.status().message());
        break;
      }
      if (!*got) break;
      out.replies.push_back(std::move(r));
    }
  }
  return out;
}

void Encode(const Reply& r, std::string* out) {
  switch (r.type) {
    case Reply::Type::kNil:
      out->append("$-1\r\n");
      break;
    case Reply::Type::kInteger:
      absl::StrAppend(out, ":", r.integer, "\r\n");
      break;
    case Reply::Type::kStatus:
      absl::StrAppend(out, "+", r.str, "\r\n");
      break;
    case Reply::Type::kError:
      absl::StrAppend(out, "-", r.str, "\r\n");
      break;
    case Reply::Type::kString:
      absl::StrAppend(out, "$", r.str.size(), "\r\n", r.str, "\r\n");
      break;
    case Reply::Type::kArray:
      absl::StrAppend(out, "*", r.elements.size(), "\r\n");
      for (const Reply& e : r.elements) Encode(e, out);
      break;
  }
}

bool Same(const Reply& a, const Reply& b) {
  if (a.type != b.type || a.integer != b.integer || a.str != b.str ||
      a.elements.size() != b.elements.size()) {
    return false;
  }
  for (size_t i = 0; i < a.elements.size(); ++i) {
    if (!Same(a.elements[i], b.elements[i])) return false;
  }
  return true;
}

bool Same(const std::vector<Reply>& a, const std::vector<Reply>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!Same(a[i], b[i])) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the read size of the split run.
  const size_t chunk = static_cast<size_t>(data[0] % 16) + 1;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);

  const Outcome whole = Parse(in, 0);
  const Outcome split = Parse(in, chunk);
  Check(Same(whole.replies, split.replies));
  Check(whole.error == split.error);
  if (!whole.error.empty()) {
    Check(absl::StartsWith(whole.error, "RESP protocol error at byte "));
  }

  std::string again;
  for (const Reply& r : whole.replies) Encode(r, &again);
  const Outcome reparsed = Parse(again, 0);
  Check(reparsed.error.empty());
  Check(Same(whole.replies, reparsed.replies));
  return 0;
}
