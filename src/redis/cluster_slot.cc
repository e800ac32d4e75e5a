// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "redis/cluster_slot.h"

#include <array>
#include <charconv>

#include "absl/strings/ascii.h"

namespace plangate::internal::redis {
namespace {

constexpr std::array<uint16_t, 256> MakeCrcTable() {
  std::array<uint16_t, 256> table{};
  for (int i = 0; i < 256; ++i) {
    uint16_t crc = static_cast<uint16_t>(i << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) != 0 ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                                : static_cast<uint16_t>(crc << 1);
    }
    table[i] = crc;
  }
  return table;
}

constexpr std::array<uint16_t, 256> kCrcTable = MakeCrcTable();

// A whole decimal number, digits only.
bool ParseInt(std::string_view text, int* out) {
  if (text.empty() || text.size() > 9) return false;
  const auto [end, ec] =
      std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size() && *out >= 0;
}

}  // namespace

uint16_t Crc16(std::string_view data) {
  uint16_t crc = 0;
  for (const char c : data) {
    const auto byte = static_cast<unsigned char>(c);
    crc = static_cast<uint16_t>((crc << 8) ^
                                kCrcTable[((crc >> 8) ^ byte) & 0xff]);
  }
  return crc;
}

int KeyHashSlot(std::string_view key) {
  const size_t open = key.find('{');
  if (open != std::string_view::npos) {
    const size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return Crc16(key) & (kClusterSlots - 1);
}

Route CommandRoute(const Command& command) {
  Route route;
  if (command.empty()) return route;
  const std::string name = absl::AsciiStrToUpper(command[0]);
  if (name == "INFO") {
    route.kind = RouteKind::kAllPrimaries;
    return route;
  }
  if (name == "FCALL" || name == "FCALL_RO" || name == "EVAL" ||
      name == "EVALSHA" || name == "EVAL_RO" || name == "EVALSHA_RO") {
    int numkeys = 0;
    if (command.size() > 3 && ParseInt(command[2], &numkeys) && numkeys > 0) {
      route.kind = RouteKind::kKey;
      route.key_index = 3;
    }
    return route;
  }
  if (name == "PING" || name == "ECHO" || name == "FUNCTION" ||
      name == "CLUSTER" || name == "SCRIPT" || name == "TIME" ||
      name == "AUTH" || name == "HELLO" || name == "CLIENT" ||
      name == "CONFIG" || name == "COMMAND" || name == "DBSIZE" ||
      name == "READONLY" || name == "READWRITE" || name == "ASKING" ||
      command.size() < 2) {
    return route;
  }
  route.kind = RouteKind::kKey;
  route.key_index = 1;
  if (name == "XREAD" || name == "XREADGROUP") {
    // ... STREAMS key [key ...] id [id ...]: the first key.
    route.kind = RouteKind::kAnyNode;
    for (size_t i = 1; i + 2 < command.size(); ++i) {
      if (absl::AsciiStrToUpper(command[i]) == "STREAMS") {
        route.kind = RouteKind::kKey;
        route.key_index = i + 1;
        break;
      }
    }
  }
  return route;
}

std::optional<Redirect> ParseRedirect(std::string_view error, bool* malformed) {
  *malformed = false;
  if (error == "MOVED" || error == "ASK") {
    *malformed = true;
    return std::nullopt;
  }
  Redirect r;
  if (error.starts_with("MOVED ")) {
    error.remove_prefix(6);
  } else if (error.starts_with("ASK ")) {
    r.ask = true;
    error.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  const size_t space = error.find(' ');
  std::string host;
  int port = 0;
  if (space == std::string_view::npos ||
      !ParseInt(error.substr(0, space), &r.slot) || r.slot < 0 ||
      r.slot >= kClusterSlots ||
      !SplitNode(error.substr(space + 1), &host, &port)) {
    *malformed = true;
    return std::nullopt;
  }
  r.node = std::string(error.substr(space + 1));
  return r;
}

bool SplitNode(std::string_view node, std::string* host, int* port) {
  const size_t colon = node.rfind(':');
  if (colon == std::string_view::npos) return false;
  std::string_view h = node.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') {
    h = h.substr(1, h.size() - 2);
  }
  if (!ParseInt(node.substr(colon + 1), port) || *port <= 0 || *port > 65535) {
    return false;
  }
  for (const char c : h) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
  }
  *host = std::string(h);
  return true;
}

std::string CommandName(const Command& command) {
  if (command.empty()) return "(empty command)";
  std::string out = command[0];
  const Route route = CommandRoute(command);
  if (route.kind == RouteKind::kKey && route.key_index < command.size()) {
    if (route.key_index == 3) out += " " + command[1];
    std::string_view key = command[route.key_index];
    if (key.size() > 120) key = key.substr(0, 120);
    out += " " + std::string(key);
  } else if (command.size() > 1 && command[1].size() < 40) {
    out += " " + command[1];
  }
  return out;
}

}  // namespace plangate::internal::redis
