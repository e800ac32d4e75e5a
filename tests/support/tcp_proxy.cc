// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// tcp_proxy.cc: the loopback forwarder of tcp_proxy.h.

#include "support/tcp_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

namespace plangate::testing {
namespace {

sockaddr_in Loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// Moves what is readable on `from` to `to`; false when either side ended.
bool Pump(int from, int to) {
  char buf[16384];
  const ssize_t n = ::recv(from, buf, sizeof buf, MSG_DONTWAIT);
  if (n == 0) return false;
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  ssize_t off = 0;
  while (off < n) {
    const ssize_t w =
        ::send(to, buf + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        pollfd p{to, POLLOUT, 0};
        ::poll(&p, 1, 100);
        continue;
      }
      return false;
    }
    off += w;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TcpProxy>> TcpProxy::Start(int target_port) {
  std::unique_ptr<TcpProxy> p(new TcpProxy());
  p->target_.store(target_port);
  p->listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (p->listen_fd_ < 0) {
    return absl::InternalError(std::string("socket: ") + std::strerror(errno));
  }
  const int one = 1;
  ::setsockopt(p->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a = Loopback(0);
  if (::bind(p->listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(p->listen_fd_, 64) != 0) {
    return absl::InternalError(std::string("bind/listen: ") +
                               std::strerror(errno));
  }
  socklen_t len = sizeof a;
  ::getsockname(p->listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  p->port_ = ntohs(a.sin_port);
  p->thread_ = std::thread([raw = p.get()] { raw->Run(); });
  return p;
}

TcpProxy::~TcpProxy() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  CloseAll();
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

void TcpProxy::Retarget(int target_port) {
  target_.store(target_port);
  Heal();
}

void TcpProxy::Blackhole() { blackhole_.store(true); }

void TcpProxy::Heal() {
  std::lock_guard<std::mutex> lock(drop_mu_);
  drop_.store(true);
  blackhole_.store(false);
  // Wait for the proxy thread to close the pairs, so that a caller knows
  // every connection made before is gone.
  while (drop_.load())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void TcpProxy::CloseAll() {
  for (const Pair& pr : pairs_) {
    ::close(pr.client);
    ::close(pr.server);
  }
  pairs_.clear();
}

void TcpProxy::Run() {
  std::vector<pollfd> fds;
  while (!stop_.load()) {
    if (drop_.load()) {
      CloseAll();
      drop_.store(false);
    }
    const bool hole = blackhole_.load();
    fds.clear();
    fds.push_back({listen_fd_, POLLIN, 0});
    if (!hole) {
      for (const Pair& pr : pairs_) {
        fds.push_back({pr.client, POLLIN, 0});
        fds.push_back({pr.server, POLLIN, 0});
      }
    }
    if (::poll(fds.data(), fds.size(), 10) <= 0) continue;
    const size_t polled = hole ? 0 : pairs_.size();
    if (fds[0].revents & POLLIN) {
      const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) {
        const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a = Loopback(target_.load());
        if (s >= 0 &&
            ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
          const int one = 1;
          ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          pairs_.push_back({c, s});
        } else {
          // The target is down: the client sees its connection closed.
          if (s >= 0) ::close(s);
          ::close(c);
        }
      }
    }
    if (hole) continue;
    // fds[1 + 2i] / fds[2 + 2i] are pair i's client / server.
    std::vector<Pair> kept;
    kept.reserve(pairs_.size());
    for (size_t i = polled; i < pairs_.size(); ++i) kept.push_back(pairs_[i]);
    for (size_t i = 0; i < polled; ++i) {
      const Pair pr = pairs_[i];
      bool ok = true;
      const short cr = fds[1 + 2 * i].revents;
      const short sr = fds[2 + 2 * i].revents;
      if (cr & (POLLIN | POLLHUP | POLLERR)) ok = Pump(pr.client, pr.server);
      if (ok && (sr & (POLLIN | POLLHUP | POLLERR))) {
        ok = Pump(pr.server, pr.client);
      }
      if (ok) {
        kept.push_back(pr);
      } else {
        ::close(pr.client);
        ::close(pr.server);
      }
    }
    pairs_ = std::move(kept);
  }
}

}  // namespace plangate::testing
