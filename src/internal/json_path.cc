// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "internal/json_path.h"

#include <algorithm>

#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace plangate::internal {

std::string JsonQuote(std::string_view s) {
  return nlohmann::json(std::string(s))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool IsPlainJsonKey(std::string_view key) {
  return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_';
  });
}

std::string JsonMemberPath(std::string_view parent, std::string_view key) {
  if (!IsPlainJsonKey(key))
    return fmt::format("{}[{}]", parent, JsonQuote(key));
  if (parent.empty()) return std::string(key);
  return fmt::format("{}.{}", parent, key);
}

std::string JsonElementPath(std::string_view parent, size_t index) {
  return fmt::format("{}[{}]", parent, index);
}

}  // namespace plangate::internal
