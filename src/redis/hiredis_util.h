// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// hiredis_util.h: small helpers around hiredis shared by the client, the
// test fixture and tools.
//
// Thread safety: CopyReply is a pure function; a ScopedSigpipeGuard affects
// only the calling thread.

#ifndef PLANGATE_REDIS_HIREDIS_UTIL_H_
#define PLANGATE_REDIS_HIREDIS_UTIL_H_

#include <signal.h>

#include "redis/redis_client.h"

struct redisReply;

namespace plangate::internal::redis {

// A deep copy of a hiredis reply (hiredis frees its own).
Reply CopyReply(const redisReply& r);

// Blocks SIGPIPE on this thread for its lifetime and swallows a SIGPIPE
// raised meanwhile (by hiredis' write(2) to a closed socket), so that a
// host keeping SIGPIPE's default action is not killed. A SIGPIPE that was
// already pending is left alone.
class ScopedSigpipeGuard {
 public:
  ScopedSigpipeGuard();
  ~ScopedSigpipeGuard();
  ScopedSigpipeGuard(const ScopedSigpipeGuard&) = delete;
  ScopedSigpipeGuard& operator=(const ScopedSigpipeGuard&) = delete;

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool was_pending_ = false;
  bool blocked_ = false;
};

}  // namespace plangate::internal::redis

#endif  // PLANGATE_REDIS_HIREDIS_UTIL_H_
