// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// cluster_slot.h: Redis Cluster key routing, as the cluster specification
// defines it: the hash slot of a key (CRC16/XMODEM of its hash tag, mod
// 16384), which argument of a command is its key, and the MOVED / ASK
// redirections a node answers with.
//
// Thread safety: pure functions, callable from any thread.

#ifndef PLANGATE_REDIS_CLUSTER_SLOT_H_
#define PLANGATE_REDIS_CLUSTER_SLOT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "redis/redis_client.h"

namespace plangate::internal::redis {

inline constexpr int kClusterSlots = 16384;

// CRC16/XMODEM (polynomial 0x1021, initial value 0, no reflection):
// Crc16("123456789") == 0x31C3.
uint16_t Crc16(std::string_view data);

// The slot of `key`: of the part between the first '{' and the next '}'
// when that is not empty, else of the whole key.
int KeyHashSlot(std::string_view key);

// How a command is routed in a cluster.
enum class RouteKind : uint8_t {
  kKey,           // to the primary of the slot of argv[key_index]
  kAnyNode,       // no key (PING, FUNCTION ..., FCALL with 0 keys): any node
  kAllPrimaries,  // INFO: every primary; the replies are combined
};
struct Route {
  RouteKind kind = RouteKind::kAnyNode;
  size_t key_index = 0;
};
// FCALL / FCALL_RO / EVAL / EVALSHA: the first key after numkeys; INFO: all
// primaries; PING, ECHO, FUNCTION, CLUSTER, SCRIPT, TIME, ... any node;
// every other command: argv[1] (GET, SET, HGETALL, DEL, ...; a multi-key
// command is routed by its first key, and the node refuses keys in other
// slots with CROSSSLOT).
Route CommandRoute(const Command& command);

// A MOVED or ASK error reply: "MOVED <slot> <host>:<port>".
struct Redirect {
  bool ask = false;  // ASK (one command, after ASKING) rather than MOVED
  int slot = 0;
  std::string node;  // "host:port" (an empty host means the sender's)
};
// nullopt unless `error` starts with "MOVED " or "ASK "; a redirection that
// starts so but does not parse (slot out of range, no port) is nullopt too,
// and `*malformed` is then set.
std::optional<Redirect> ParseRedirect(std::string_view error, bool* malformed);

// "host:port" -> host and port; false when it does not parse (IPv6
// addresses are "[::1]:6379" or "::1:6379": the last ':' splits).
bool SplitNode(std::string_view node, std::string* host, int* port);

// A short name of a command for error messages: "FCALL pg2_sync <key>",
// "GET <key>", "INFO".
std::string CommandName(const Command& command);

}  // namespace plangate::internal::redis

#endif  // PLANGATE_REDIS_CLUSTER_SLOT_H_
