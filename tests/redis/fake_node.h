// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// fake_node.h: a scripted Redis node on loopback for the cluster client's
// bad-input tests: every command a client sends is handed to `answer`,
// whose raw RESP text goes back; an empty answer closes the connection
// there (a node that vanishes mid-batch).
//
// Thread safety: the handler runs on the node's connection threads (one per
// connection); construct and destroy a FakeNode on the test thread.

#ifndef PLANGATE_TESTS_REDIS_FAKE_NODE_H_
#define PLANGATE_TESTS_REDIS_FAKE_NODE_H_

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "redis/redis_client.h"
#include "redis/resp_parser.h"

namespace plangate::internal::redis::test {

class FakeNode {
 public:
  using Answer = std::function<std::string(const Command&)>;

  explicit FakeNode(Answer answer) : answer_(std::move(answer)) {
    listen_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    ::getsockname(listen_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    ::listen(listen_, 16);
    acceptor_ = std::thread([this] { Accept(); });
  }

  ~FakeNode() {
    stop_ = true;
    ::shutdown(listen_, SHUT_RDWR);
    ::close(listen_);
    acceptor_.join();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : conns_) t.join();
    for (const int fd : fds_) ::close(fd);
  }

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  FakeNode(const FakeNode&) = delete;
  FakeNode& operator=(const FakeNode&) = delete;

 private:
  void Accept() {
    while (!stop_) {
      const int fd = ::accept(listen_, nullptr, nullptr);
      if (fd < 0) return;
      std::lock_guard<std::mutex> lock(mu_);
      fds_.push_back(fd);
      conns_.emplace_back([this, fd] { Serve(fd); });
    }
  }

  void Serve(int fd) {
    RespParser parser;
    char buf[4096];
    for (;;) {
      const ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n <= 0) break;
      parser.Feed(std::string_view(buf, static_cast<size_t>(n)));
      Reply request;
      bool closed = false;
      std::string out;
      while (!closed) {
        absl::StatusOr<bool> got = parser.Next(&request);
        if (!got.ok() || !*got) break;
        Command command;
        for (const Reply& e : request.elements) command.push_back(e.str);
        std::string answer = answer_(command);
        if (answer.empty()) {
          closed = true;
        } else {
          out += answer;
        }
      }
      if (!out.empty()) {
        (void)!::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
      }
      if (closed) break;
    }
    ::shutdown(fd, SHUT_RDWR);
  }

  Answer answer_;
  int listen_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> conns_;
};

// CLUSTER SLOTS text: all 16384 slots on 127.0.0.1:port.
inline std::string OneRangeSlots(int port) {
  return "*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:" +
         std::to_string(port) + "\r\n$2\r\nid\r\n";
}

}  // namespace plangate::internal::redis::test

#endif  // PLANGATE_TESTS_REDIS_FAKE_NODE_H_
