// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// sentinel_watch.cc: the +switch-master watch of Client::Impl in Sentinel
// mode (redis_client_impl.h). Once a connection is ready, a second Client
// to the sentinel that named the master SUBSCRIBEs to +switch-master (and
// reconnects to it after every loss, as any Client does). An announcement
// of another address for our master drops the current connection; the
// next attempt asks the sentinels again. A switch missed while the watch
// was down is still caught by the connection's own loss, a READONLY reply
// or the ROLE check.

#include "redis/redis_client_impl.h"

namespace plangate::internal::redis {

void Client::Impl::WatchSentinel() {
  if (watch_ && watched_ == answered_) return;
  StopWatch();
  if (answered_ >= options_.sentinels.size()) return;
  watched_ = answered_;
  watch_ = Client::Create(strand_, SentinelResolver::SentinelOptions(
                                       options_, options_.sentinels[watched_]));
  watch_->SetInitCommands({{"SUBSCRIBE", "+switch-master"}});
  std::weak_ptr<Client> weak = client_.weak_from_this();
  watch_->SetOnPush([this, weak](const Reply& push) {
    const std::shared_ptr<Client> self = weak.lock();
    if (!self || state_ == State::kStopped) return;
    if (std::optional<SentinelResolver::Primary> to =
            SentinelResolver::ParseSwitchMaster(push,
                                                options_.sentinel_master)) {
      OnSwitchMaster(*to);
    }
  });
  watch_->Start();
}

void Client::Impl::StopWatch() {
  if (!watch_) return;
  watch_->Stop();
  watch_.reset();
}

void Client::Impl::OnSwitchMaster(const SentinelResolver::Primary& to) {
  if (state_ != State::kReady) return;  // the next attempt asks anyway
  if (to.host == options_.host && to.port == options_.port) return;
  const absl::Status why = absl::UnavailableError(absl::StrCat(
      "redis sentinel ", options_.sentinels[watched_].host, ":",
      options_.sentinels[watched_].port, " announced +switch-master: ",
      options_.sentinel_master, " is now at ", to.host, ":", to.port,
      "; connection dropped, the sentinels will be asked again", At()));
  ConnectionLost(why, why);
}

}  // namespace plangate::internal::redis
