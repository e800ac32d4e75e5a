// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// sentinel_resolver.h: asks Redis Sentinels where the master is.
//
// Resolve() tries the sentinels of RedisOptions::sentinels in turn, starting
// with the last one that answered, each on a connection of its own (a
// Client with the sentinel's host and port, sentinel_user /
// sentinel_password, the TLS options; bounded by connect_timeout and
// command_timeout), with SENTINEL get-master-addr-by-name <sentinel_master>.
// The first address a sentinel gives is the answer. When none gives one,
// the error names every sentinel and what went wrong there: not reachable,
// AUTH refused, an error reply, the master unknown to it (a nil reply), a
// malformed reply. NotFound when every sentinel answered and none knows the
// master, Unavailable otherwise.
//
// Thread safety: confined to its strand, like Client: every method must be
// called from it, `done` runs on it. Held by shared_ptr.

#ifndef PLANGATE_REDIS_SENTINEL_RESOLVER_H_
#define PLANGATE_REDIS_SENTINEL_RESOLVER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "redis/redis_client.h"

namespace plangate::internal::redis {

class SentinelResolver : public std::enable_shared_from_this<SentinelResolver> {
 public:
  using Strand = Client::Strand;

  struct Primary {
    std::string host;
    int port = 0;
    std::string sentinel;  // "host:port" of the sentinel that answered
    size_t index = 0;      // its index in RedisOptions::sentinels
  };
  using Done = std::function<void(absl::StatusOr<Primary> primary)>;

  static std::shared_ptr<SentinelResolver> Create(Strand strand,
                                                  RedisOptions options);

  // Starts a resolution; `done` is called once, on the strand (never from
  // inside Resolve). A resolution still in progress is cancelled first.
  void Resolve(Done done);
  // Abandons the resolution in progress: its `done` is never called.
  void Cancel();

  // The reply of SENTINEL get-master-addr-by-name, checked (exposed for
  // tests): the address, or an error describing what is wrong with it.
  static absl::StatusOr<Primary> ParseReply(const Reply& reply,
                                            const std::string& master);

  // A message of the +switch-master channel (["message", "+switch-master",
  // "<master> <old ip> <old port> <new ip> <new port>"]) for `master`: the
  // new address; nullopt for anything else.
  static std::optional<Primary> ParseSwitchMaster(const Reply& push,
                                                  const std::string& master);

  // The options for a connection to sentinel `at`: its address,
  // sentinel_user / sentinel_password, db 0, the TLS options (SNI: its own
  // host), no sentinels.
  static RedisOptions SentinelOptions(const RedisOptions& options,
                                      const RedisOptions::Address& at);

  SentinelResolver(const SentinelResolver&) = delete;
  SentinelResolver& operator=(const SentinelResolver&) = delete;

 private:
  SentinelResolver(Strand strand, RedisOptions options);

  void TryNext();
  // The sentinel being asked failed with `why` (`unknown`: it answered
  // that it does not know the master).
  void Failed(const std::string& why, bool unknown);
  void Finish(absl::StatusOr<Primary> result);
  std::string Name(size_t i) const;

  Strand strand_;
  RedisOptions options_;
  Done done_;
  std::shared_ptr<Client> client_;  // the connection to the sentinel asked
  uint64_t gen_ = 0;                // the current resolution (or attempt)
  size_t first_ = 0;                // the sentinel asked first
  size_t asked_ = 0;                // sentinels asked so far
  size_t unknown_ = 0;              // of which did not know the master
  std::vector<std::string> errors_;
};

}  // namespace plangate::internal::redis

#endif  // PLANGATE_REDIS_SENTINEL_RESOLVER_H_
