// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// sentinel_resolver.cc: SentinelResolver (sentinel_resolver.h).

#include "redis/sentinel_resolver.h"

#include <boost/asio/post.hpp>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace plangate::internal::redis {
namespace {

constexpr char kCommand[] = "SENTINEL get-master-addr-by-name";

std::string HostPort(const std::string& host, int port) {
  return host.find(':') != std::string::npos
             ? absl::StrCat("[", host, "]:", port)
             : absl::StrCat(host, ":", port);
}

std::string Describe(const Reply& reply) {
  switch (reply.type) {
    case Reply::Type::kNil:
      return "nil";
    case Reply::Type::kInteger:
      return absl::StrCat("integer ", reply.integer);
    case Reply::Type::kString:
    case Reply::Type::kStatus:
    case Reply::Type::kError:
      return absl::StrCat("\"", reply.str.substr(0, 64), "\"");
    case Reply::Type::kArray:
      return absl::StrCat("an array of ", reply.elements.size());
  }
  return "?";
}

}  // namespace

std::shared_ptr<SentinelResolver> SentinelResolver::Create(
    Strand strand, RedisOptions options) {
  return std::shared_ptr<SentinelResolver>(
      new SentinelResolver(std::move(strand), std::move(options)));
}

SentinelResolver::SentinelResolver(Strand strand, RedisOptions options)
    : strand_(std::move(strand)), options_(std::move(options)) {}

absl::StatusOr<SentinelResolver::Primary> SentinelResolver::ParseReply(
    const Reply& reply, const std::string& master) {
  if (reply.is_error()) {
    return absl::FailedPreconditionError(
        absl::StrCat(kCommand, " ", master, " failed: ", reply.str));
  }
  if (reply.type == Reply::Type::kNil) {
    return absl::NotFoundError(absl::StrCat("master \"", master,
                                            "\" is unknown to this sentinel (",
                                            kCommand, " gave nil)"));
  }
  const auto malformed = [&](const std::string& what) {
    return absl::InternalError(
        absl::StrCat("malformed reply to ", kCommand, " ", master, ": ", what));
  };
  if (reply.type != Reply::Type::kArray || reply.elements.size() != 2) {
    return malformed(
        absl::StrCat(Describe(reply), ", expected an array of host and port"));
  }
  const Reply& host = reply.elements[0];
  const Reply& port = reply.elements[1];
  if (host.type != Reply::Type::kString || host.str.empty() ||
      host.str.size() > 255) {
    return malformed(absl::StrCat("host is ", Describe(host)));
  }
  int value = 0;
  const bool digits =
      port.type == Reply::Type::kString && !port.str.empty() &&
      port.str.size() <= 5 &&
      port.str.find_first_not_of("0123456789") == std::string::npos;
  if (digits) value = std::stoi(port.str);
  if (!digits || value < 1 || value > 65535) {
    return malformed(absl::StrCat("port is ", Describe(port)));
  }
  return Primary{host.str, value, "", 0};
}

RedisOptions SentinelResolver::SentinelOptions(
    const RedisOptions& options, const RedisOptions::Address& at) {
  RedisOptions o = options;
  o.host = at.host;
  o.port = at.port;
  o.unix_socket.clear();
  o.user = options.sentinel_user;
  o.password = options.sentinel_password;
  o.db = 0;
  o.cluster = false;
  o.sentinels.clear();
  o.tls_server_name.clear();  // the sentinel's own name, not the master's
  return o;
}

std::optional<SentinelResolver::Primary> SentinelResolver::ParseSwitchMaster(
    const Reply& push, const std::string& master) {
  if (push.type != Reply::Type::kArray || push.elements.size() != 3 ||
      push.elements[0].str != "message" ||
      push.elements[1].str != "+switch-master") {
    return std::nullopt;
  }
  std::vector<std::string> words =
      absl::StrSplit(push.elements[2].str, ' ', absl::SkipEmpty());
  if (words.size() != 5 || words[0] != master || words[3].empty() ||
      words[4].empty() || words[4].size() > 5 ||
      words[4].find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  const int port = std::stoi(words[4]);
  if (port < 1 || port > 65535) return std::nullopt;
  return Primary{words[3], port, "", 0};
}

void SentinelResolver::Resolve(Done done) {
  Cancel();
  done_ = std::move(done);
  asked_ = 0;
  unknown_ = 0;
  errors_.clear();
  if (options_.sentinels.empty()) {
    Finish(absl::InvalidArgumentError(
        "redis sentinel: RedisOptions::sentinels is empty"));
    return;
  }
  TryNext();
}

void SentinelResolver::Cancel() {
  ++gen_;
  done_ = nullptr;
  if (client_) {
    client_->Stop();
    client_.reset();
  }
}

std::string SentinelResolver::Name(size_t i) const {
  const RedisOptions::Address& a = options_.sentinels[i];
  return HostPort(a.host, a.port);
}

void SentinelResolver::TryNext() {
  if (client_) {
    client_->Stop();
    client_.reset();
  }
  if (asked_ == options_.sentinels.size()) {
    const std::string why = absl::StrCat(
        "redis sentinel: no sentinel gave the address of master \"",
        options_.sentinel_master, "\": ", absl::StrJoin(errors_, "; "));
    Finish(unknown_ == asked_ ? absl::NotFoundError(why)
                              : absl::UnavailableError(why));
    return;
  }
  const size_t i = (first_ + asked_) % options_.sentinels.size();
  ++asked_;
  client_ =
      Client::Create(strand_, SentinelOptions(options_, options_.sentinels[i]));
  const uint64_t gen = ++gen_;
  std::weak_ptr<SentinelResolver> weak = weak_from_this();
  client_->SetOnReady([weak, gen, i] {
    auto self = weak.lock();
    if (!self || gen != self->gen_ || !self->client_) return;
    self->client_->Execute(
        {{"SENTINEL", "get-master-addr-by-name",
          self->options_.sentinel_master}},
        [weak, gen, i](absl::StatusOr<std::vector<Reply>> replies) {
          auto me = weak.lock();
          if (!me || gen != me->gen_) return;
          if (!replies.ok()) {
            me->Failed(std::string(replies.status().message()), false);
            return;
          }
          absl::StatusOr<Primary> primary =
              ParseReply(replies->empty() ? Reply() : replies->front(),
                         me->options_.sentinel_master);
          if (!primary.ok()) {
            me->Failed(std::string(primary.status().message()),
                       absl::IsNotFound(primary.status()));
            return;
          }
          primary->sentinel = me->Name(i);
          primary->index = i;
          me->first_ = i;
          me->Finish(std::move(primary));
        });
  });
  client_->SetOnDown([weak, gen](const absl::Status& why) {
    auto self = weak.lock();
    if (!self || gen != self->gen_) return;
    self->Failed(std::string(why.message()), false);
  });
  client_->Start();
}

void SentinelResolver::Failed(const std::string& why, bool unknown) {
  const size_t i = (first_ + asked_ + options_.sentinels.size() - 1) %
                   options_.sentinels.size();
  errors_.push_back(absl::StrCat("sentinel ", Name(i), ": ", why));
  if (unknown) ++unknown_;
  ++gen_;  // the attempt's later callbacks do nothing
  TryNext();
}

void SentinelResolver::Finish(absl::StatusOr<Primary> result) {
  const uint64_t gen = ++gen_;
  if (client_) {
    client_->Stop();
    client_.reset();
  }
  Done done = std::move(done_);
  done_ = nullptr;
  if (!done) return;
  boost::asio::post(strand_,
                    [weak = weak_from_this(), gen, done = std::move(done),
                     result = std::move(result)]() mutable {
                      auto self = weak.lock();
                      if (!self || gen != self->gen_)
                        return;  // cancelled meanwhile
                      done(std::move(result));
                    });
}

}  // namespace plangate::internal::redis
