// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// json_path.h: how plangate names a place in a JSON document in messages.
//
// A member is "parent.key" ("key" at the root), or parent["odd key"] when
// the key is not a plain identifier; an element is parent[3]. Strings in
// messages are quoted as JSON strings. The catalog parser and quotactl's
// trace parser both speak this way, so their errors read alike.
//
// Thread safety: pure functions.

#ifndef PLANGATE_INTERNAL_JSON_PATH_H_
#define PLANGATE_INTERNAL_JSON_PATH_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace plangate::internal {

// How much of a piece of input a message quotes, in bytes: a syntax error
// inside a 10 MB string must not make a 10 MB message.
inline constexpr size_t kMaxQuotedBytes = 80;

// The first `max` bytes of s or fewer, never splitting a UTF-8 sequence
// (s itself when it fits).
std::string_view QuotablePrefix(std::string_view s,
                                size_t max = kMaxQuotedBytes);

// s as a JSON string literal, quotes included; invalid UTF-8 is replaced.
// Longer than kMaxQuotedBytes, only its QuotablePrefix is quoted, marked
// as cut and followed by the full size: "abc..." (10485760 bytes).
std::string JsonQuote(std::string_view s);

// A JSON parser's error text (nlohmann's what(), "[json.exception...]"
// prefix removed) with the input it quotes ("last read: '...'") cut to
// kMaxQuotedBytes, and the whole text to a few hundred bytes.
std::string BoundedJsonErrorText(std::string_view what);

// Whether key can follow a '.' in a path: [A-Za-z0-9_]+.
bool IsPlainJsonKey(std::string_view key);

// A key that is not plain, or longer than kMaxQuotedBytes, is quoted
// (JsonQuote, so cut): parent["odd key"].
std::string JsonMemberPath(std::string_view parent, std::string_view key);
std::string JsonElementPath(std::string_view parent, size_t index);

}  // namespace plangate::internal

#endif  // PLANGATE_INTERNAL_JSON_PATH_H_
