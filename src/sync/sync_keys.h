// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// sync_keys.h: the Redis keys of one counter (subject, limit, window), of
// an account's state and of the feed of account changes.
//
//   <prefix>:{<account>}:<scope>:<sub>:<meter>:<window>:<f|s>:<start_ms>
//     (scope "model" and sub the model, or "" for the other models, for
//     usage_by_model counts)
//   <prefix>:{<account>}:account
//   <prefix>:{<account>}:wallet
//   <prefix>:accounts
//
// The account is the hash tag, so all of an account's keys share a Redis
// Cluster slot. Ids are percent-encoded where they would break the layout
// ('{', '}', ':', '%' and control characters).

#ifndef PLANGATE_SYNC_SYNC_KEYS_H_
#define PLANGATE_SYNC_SYNC_KEYS_H_

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "plangate/catalog.h"

namespace plangate::internal {

inline std::string EscapeKeyPart(std::string_view id) {
  std::string out;
  out.reserve(id.size());
  for (const char c : id) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '{' || c == '}' || c == ':' || c == '%' || u < 0x20 || u == 0x7f) {
      out += fmt::format("%{:02X}", u);
    } else {
      out += c;
    }
  }
  return out;
}

// `window` is WindowName(unit, count): "day", "15m".
inline std::string CounterKey(std::string_view prefix, std::string_view account,
                              Scope scope, std::string_view sub,
                              std::string_view meter, std::string_view window,
                              WindowMode mode, int64_t start_ms) {
  return fmt::format(
      "{}:{{{}}}:{}:{}:{}:{}:{}:{}", prefix, EscapeKeyPart(account),
      // The internal per-model scope (usage_by_model).
      static_cast<int>(scope) == kNumScopes ? std::string_view("model")
                                            : ScopeName(scope),
      EscapeKeyPart(sub), EscapeKeyPart(meter), window,
      mode == WindowMode::kSliding ? "s" : "f", start_ms);
}

// An account's stored state (account_doc.h) and the feed of changes to
// account states: one stream per prefix, entries {"a": account, "v":
// version}.
inline std::string AccountKey(std::string_view prefix,
                              std::string_view account) {
  return fmt::format("{}:{{{}}}:account", prefix, EscapeKeyPart(account));
}
inline std::string AccountFeedKey(std::string_view prefix) {
  return fmt::format("{}:accounts", prefix);
}
// An account's shared wallet (redis_functions.h, pg2_wallet).
inline std::string WalletKey(std::string_view prefix,
                             std::string_view account) {
  return fmt::format("{}:{{{}}}:wallet", prefix, EscapeKeyPart(account));
}
// The feed is trimmed to about this many entries (XADD MAXLEN ~).
inline constexpr char kAccountFeedMaxLen[] = "100000";

}  // namespace plangate::internal

#endif  // PLANGATE_SYNC_SYNC_KEYS_H_
