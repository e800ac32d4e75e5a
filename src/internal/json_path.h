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

// s as a JSON string literal, quotes included; invalid UTF-8 is replaced.
std::string JsonQuote(std::string_view s);

// Whether key can follow a '.' in a path: [A-Za-z0-9_]+.
bool IsPlainJsonKey(std::string_view key);

std::string JsonMemberPath(std::string_view parent, std::string_view key);
std::string JsonElementPath(std::string_view parent, size_t index);

}  // namespace plangate::internal

#endif  // PLANGATE_INTERNAL_JSON_PATH_H_
