// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// config.h: the gateway's command line, its API keys file and its accounts.
//
// Every loader validates its input as a whole and names the file, the place
// and the reason of each problem:
//
//   keys.json: [3].kind: must be live, test or internal
//   accounts.json:4: accounts[1].plan: unknown plan "gold"
//   --listen: must be HOST:PORT (got "8080")
//
// The accounts file is quotactl's (docs/replay.md), read by the same parser
// (plangate_replay), so one file serves a replay and a running gateway.
//
// Thread safety: the loaders are pure; a KeyStore is immutable once loaded
// and may be read from any number of threads.

#ifndef PLANGATE_EXAMPLES_GATEWAY_CONFIG_H_
#define PLANGATE_EXAMPLES_GATEWAY_CONFIG_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "plangate/catalog.h"
#include "plangate/enforcer.h"
#include "trace.h"  // plangate::replay::AccountSpec, ParseAccounts

namespace gateway {

// One API key of the keys file.
struct KeyRecord {
  std::string id;  // the key-scope subject and the id in reports
  std::string account;
  std::string project;  // empty: no project scope
  std::string user;     // empty: no user scope
  plangate::KeyKind kind = plangate::KeyKind::kLive;
  // The customer's own provider key: the Enforcer skips the managed-model
  // allowlist and the wallet, and counts only limits for BYOK or all traffic.
  bool byok = false;
  // Derived from the account's plan: its wallet is debited per request.
  bool prepaid = false;
};

// The API keys, by secret. Lookups take a string_view (no allocation).
class KeyStore {
 public:
  // Parses a keys file: a JSON array of
  //   {"key": secret, "account": id, "kind": "live"|"test"|"internal",
  //    "id": key id, "project": id, "user": id, "byok": bool}
  // ("key" and "account" required). Errors name `file_name` and the field.
  static absl::StatusOr<KeyStore> Parse(std::string_view text,
                                        std::string_view file_name);
  static absl::StatusOr<KeyStore> LoadFile(const std::string& path);

  // The key with this secret, or nullptr.
  const KeyRecord* Find(std::string_view secret) const;
  size_t size() const { return keys_.size(); }

  // Sets each key's `prepaid` from its account's plan (the accounts file,
  // else the catalog's default plan): true when the plan requires a wallet.
  void ResolvePlans(const plangate::Catalog& catalog,
                    const std::vector<plangate::replay::AccountSpec>& accounts);

 private:
  absl::flat_hash_map<std::string, KeyRecord> keys_;
};

// Reads a whole file. NotFound or Unavailable naming the path.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// Parses the accounts file (docs/replay.md) against the catalog.
absl::StatusOr<std::vector<plangate::replay::AccountSpec>> LoadAccountsFile(
    const std::string& path, const plangate::Catalog& catalog);

// The Enforcer's view of one accounts-file entry.
plangate::AccountUpdate AccountUpdateOf(
    const plangate::replay::AccountSpec& spec);

// Registers the accounts with the Enforcer (UpsertAccount, then the initial
// wallet credit unless `credit_wallets` is false: with shared wallets the
// credit goes to Redis once the sync runs, as SeedWallets does). Errors
// name the file, the line and the account.
absl::Status RegisterAccounts(
    plangate::Enforcer& enforcer,
    const std::vector<plangate::replay::AccountSpec>& accounts,
    std::string_view file_name, bool credit_wallets = true);

// The accounts file's wallet balances as credits to shared wallets, with
// ids ("accounts-file:<account>:<micros>") that make every gateway's
// credit, and every restart's, count once.
absl::Status SeedWallets(
    plangate::Enforcer& enforcer,
    const std::vector<plangate::replay::AccountSpec>& accounts);

// "host:port" or "[v6addr]:port"; the host may be a name.
struct HostPort {
  std::string host;
  uint16_t port = 0;
};
absl::StatusOr<HostPort> ParseHostPort(std::string_view text);

// An upstream base URL: http://host[:port][/base/path]. Plain HTTP only.
struct UpstreamUrl {
  std::string host;
  uint16_t port = 80;
  std::string base_path;    // "" or "/v1-proxy" (no trailing '/')
  std::string host_header;  // what goes into the Host header
};
absl::StatusOr<UpstreamUrl> ParseUpstreamUrl(std::string_view url);

// How a denied MCP request is answered (--mcp-denial). Either way the HTTP
// status is 200, so an MCP client sees an answer to its request rather than
// a transport failure.
enum class McpDenial {
  // A JSON-RPC error -32000 whose data carries status, reason, retry-after
  // and the upgrade hint.
  kJsonRpcError,
  // For tools/call: a CallToolResult with isError: true and a text the model
  // can read (other methods still get the JSON-RPC error).
  kToolResult,
};

// The command line.
struct Flags {
  HostPort listen = {"127.0.0.1", 8080};
  std::string catalog;
  std::string keys;
  std::string accounts;  // empty: only the catalog's default plan serves
  std::string upstream = "mock";  // "mock": the built-in mock upstream
  int threads = 0;                // 0: one per core
  bool enforce = true;
  std::string redis;  // empty: in-process counts only
  std::string redis_prefix = "pg";
  // TLS to Redis (rediss:// URLs only): RedisOptions' tls_* fields.
  std::string redis_tls_ca;             // --redis-tls-ca FILE
  std::string redis_tls_ca_dir;         // --redis-tls-ca-dir DIR
  std::string redis_tls_cert;           // --redis-tls-cert FILE
  std::string redis_tls_key;            // --redis-tls-key FILE
  std::string redis_tls_server_name;    // --redis-tls-server-name NAME
  bool redis_tls_verify = true;         // --redis-tls-no-verify: false
  std::string redis_sentinel_password;  // --redis-sentinel-password PW
  std::chrono::milliseconds sync_wait{500};
  std::chrono::milliseconds upstream_timeout{60'000};
  std::chrono::milliseconds drain_timeout{10'000};
  int64_t micros_per_1k_tokens = 1000;
  int64_t default_max_tokens = 256;
  int64_t stream_extend_tokens = 64;
  McpDenial mcp_denial = McpDenial::kJsonRpcError;
  // Set: run only the mock upstream on this address.
  std::string serve_mock;
  bool help = false;
};

// Parses argv. InvalidArgument naming the flag (the caller prints usage).
absl::StatusOr<Flags> ParseFlags(int argc, char** argv);
std::string_view Usage();

}  // namespace gateway

#endif  // PLANGATE_EXAMPLES_GATEWAY_CONFIG_H_
