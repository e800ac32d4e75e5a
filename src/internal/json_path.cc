// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "internal/json_path.h"

#include <algorithm>

#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace plangate::internal {

namespace {

// The whole of an error text kept, quoted input included.
constexpr size_t kMaxErrorTextBytes = 4 * kMaxQuotedBytes;

}  // namespace

std::string_view QuotablePrefix(std::string_view s, size_t max) {
  if (s.size() <= max) return s;
  // s[end] is the first byte left out; while it continues a UTF-8
  // sequence (10xxxxxx), that sequence would be split: cut before it. Not
  // UTF-8 (more than 3 continuation bytes): cut at max.
  size_t end = max;
  while (end > 0 && max - end < 3 &&
         (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) {
    --end;
  }
  if ((static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) end = max;
  return s.substr(0, end);
}

std::string JsonQuote(std::string_view s) {
  const std::string_view kept = QuotablePrefix(s);
  std::string quoted =
      nlohmann::json(std::string(kept))
          .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (kept.size() == s.size()) return quoted;
  quoted.insert(quoted.size() - 1, "...");
  return fmt::format("{} ({} bytes)", quoted, s.size());
}

std::string BoundedJsonErrorText(std::string_view what) {
  if (what.substr(0, 16) == "[json.exception.") {
    const size_t end = what.find("] ");
    if (end != std::string_view::npos) what.remove_prefix(end + 2);
  }
  std::string out;
  constexpr std::string_view kLastRead = "last read: '";
  const size_t at = what.find(kLastRead);
  if (at != std::string_view::npos) {
    std::string_view token = what.substr(at + kLastRead.size());
    if (!token.empty() && token.back() == '\'') token.remove_suffix(1);
    const std::string_view kept = QuotablePrefix(token);
    out = fmt::format("{}{}{}{}",
                      QuotablePrefix(what.substr(0, at), kMaxErrorTextBytes),
                      kLastRead, kept,
                      kept.size() == token.size()
                          ? "'"
                          : fmt::format("...' ({} bytes)", token.size()));
  } else {
    const std::string_view kept = QuotablePrefix(what, kMaxErrorTextBytes);
    out = std::string(kept);
    if (kept.size() < what.size()) out += "...";
  }
  return out;
}

bool IsPlainJsonKey(std::string_view key) {
  return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_';
  });
}

std::string JsonMemberPath(std::string_view parent, std::string_view key) {
  if (!IsPlainJsonKey(key) || key.size() > kMaxQuotedBytes)
    return fmt::format("{}[{}]", parent, JsonQuote(key));
  if (parent.empty()) return std::string(key);
  return fmt::format("{}.{}", parent, key);
}

std::string JsonElementPath(std::string_view parent, size_t index) {
  return fmt::format("{}[{}]", parent, index);
}

}  // namespace plangate::internal
