// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

#include "support/redis_server.h"

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "redis/hiredis_util.h"

namespace plangate::testing {
namespace {

using Reply = RedisServer::Reply;
using internal::redis::CopyReply;
using internal::redis::ScopedSigpipeGuard;
using std::chrono::steady_clock;

constexpr auto kStartTimeout = std::chrono::seconds(20);
constexpr auto kStopTimeout = std::chrono::seconds(10);
constexpr auto kRestartTimeout = std::chrono::seconds(10);

std::string ErrnoText(int err) { return std::system_category().message(err); }

timeval ToTimeval(std::chrono::milliseconds d) {
  return timeval{static_cast<time_t>(d.count() / 1000),
                 static_cast<suseconds_t>((d.count() % 1000) * 1000)};
}

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using Context = std::unique_ptr<redisContext, ContextDeleter>;

absl::StatusOr<Reply> RunOn(redisContext* c,
                            const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<size_t> lens;
  for (const std::string& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  void* raw;
  {
    ScopedSigpipeGuard block;
    raw = redisCommandArgv(c, static_cast<int>(args.size()), args.data(),
                           lens.data());
  }
  if (raw == nullptr) {
    return absl::UnavailableError(
        absl::StrCat(argv.empty() ? "" : argv[0], ": ", c->errstr));
  }
  auto* reply = static_cast<redisReply*>(raw);
  Reply out = CopyReply(*reply);
  freeReplyObject(reply);
  return out;
}

// A connection for the fixture's own use: AUTH with `password` when set
// (an AUTH error reply is returned as the status), then SELECT `db`.
absl::StatusOr<Context> Open(const std::string& host, int port,
                             const std::string& password, int db,
                             std::chrono::milliseconds connect_timeout,
                             std::chrono::milliseconds io_timeout) {
  const std::string where = absl::StrCat("redis test server ", host, ":", port);
  Context c(
      redisConnectWithTimeout(host.c_str(), port, ToTimeval(connect_timeout)));
  if (c == nullptr) return absl::ResourceExhaustedError(where + ": no memory");
  if (c->err != 0) {
    return absl::UnavailableError(absl::StrCat(where, ": ", c->errstr));
  }
  redisSetTimeout(c.get(), ToTimeval(io_timeout));
  if (!password.empty()) {
    absl::StatusOr<Reply> r = RunOn(c.get(), {"AUTH", password});
    if (!r.ok()) return r.status();
    if (r->is_error()) {
      return absl::UnauthenticatedError(absl::StrCat(where, ": ", r->str));
    }
  }
  if (db != 0) {
    absl::StatusOr<Reply> r = RunOn(c.get(), {"SELECT", std::to_string(db)});
    if (!r.ok()) return r.status();
    if (r->is_error()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", r->str));
    }
  }
  return c;
}

absl::StatusOr<Reply> RunCommand(const std::string& host, int port,
                                 const std::string& password, int db,
                                 const std::vector<std::string>& argv,
                                 std::chrono::milliseconds io_timeout) {
  absl::StatusOr<Context> c =
      Open(host, port, password, db, std::chrono::seconds(5), io_timeout);
  if (!c.ok()) return c.status();
  absl::StatusOr<Reply> r = RunOn(c->get(), argv);
  if (!r.ok()) {
    return absl::Status(r.status().code(),
                        absl::StrCat("redis test server ", host, ":", port,
                                     ": ", r.status().message()));
  }
  return r;
}

absl::StatusOr<std::string> FindBinary() {
  const char* env = std::getenv("PLANGATE_TEST_REDIS_SERVER");
  if (env != nullptr && *env != '\0') {
    if (access(env, X_OK) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("PLANGATE_TEST_REDIS_SERVER=", env,
                       " is not an executable file: ", ErrnoText(errno)));
    }
    return std::string(env);
  }
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/local/bin:/usr/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/redis-server";
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return absl::FailedPreconditionError(
      "redis-server not found on PATH: install it (apt-get install "
      "redis-server) or set PLANGATE_TEST_REDIS_SERVER to its path");
}

bool PortIsFree(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok =
      bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// A free port below Linux's ephemeral range (32768+), so that no outgoing
// connection of the test itself can be holding it when the server restarts.
int PickPort() {
  static thread_local std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> dist(20000, 32000);
  for (int i = 0; i < 200; ++i) {
    const int port = dist(rng);
    if (PortIsFree(port)) return port;
  }
  return 0;
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exit code ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return absl::StrCat("signal ", WTERMSIG(status));
  return absl::StrCat("wait status ", status);
}

}  // namespace

RedisServer::RedisServer(Options options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<RedisServer>> RedisServer::Start(
    Options options) {
  absl::StatusOr<std::string> binary = FindBinary();
  if (!binary.ok()) return binary.status();
  std::unique_ptr<RedisServer> server(new RedisServer(std::move(options)));
  server->binary_ = *std::move(binary);

  // A unix socket path must fit in sockaddr_un (108 bytes).
  const char* tmp = std::getenv("TMPDIR");
  std::string base = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  if (base.size() > 60) base = "/tmp";
  std::string dir = base + "/plangate-redis.XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot create a temp dir from ",
                                               dir, ": ", ErrnoText(errno)));
  }
  server->dir_ = dir;
  if (server->options_.unix_socket) server->unix_socket_ = dir + "/redis.sock";

  absl::Status last = absl::UnavailableError("no free loopback port found");
  for (int attempt = 0; attempt < 5; ++attempt) {
    server->port_ = PickPort();
    if (server->port_ == 0) continue;
    if (!server->options_.tls_cert_file.empty()) {
      server->tls_port_ = PickPort();
      if (server->tls_port_ == 0 || server->tls_port_ == server->port_) {
        continue;
      }
    }
    last = server->Launch();
    if (last.ok()) return server;
  }
  return last;  // the destructor removes the temp dir
}

RedisServer::~RedisServer() {
  (void)Reap(/*kill_first=*/true);
  for (auto& f : background_) f.wait();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

RedisOptions RedisServer::ClientOptions() const {
  RedisOptions o;
  o.host = host_;
  o.port = port_;
  o.password = options_.password;
  return o;
}

absl::Status RedisServer::Launch() {
  std::vector<std::string> args = {binary_};
  if (!options_.sentinel_config.empty()) {
    const std::string conf = dir_ + "/sentinel.conf";
    if (!std::filesystem::exists(conf)) {
      std::ofstream out(conf);
      out << options_.sentinel_config;
      if (!out.good()) {
        return absl::UnavailableError(absl::StrCat("cannot write ", conf));
      }
    }
    args.insert(args.end(), {conf, "--sentinel"});
  }
  args.insert(args.end(),
              {"--port", std::to_string(port_), "--bind", host_, "--dir", dir_,
               "--save", "", "--appendonly", "no", "--daemonize", "no",
               "--enable-debug-command", "local"});
  if (!unix_socket_.empty()) {
    args.insert(args.end(),
                {"--unixsocket", unix_socket_, "--unixsocketperm", "700"});
  }
  if (!options_.password.empty()) {
    args.insert(args.end(), {"--requirepass", options_.password});
  }
  if (tls_port_ != 0) {
    args.insert(
        args.end(),
        {"--tls-port", std::to_string(tls_port_), "--tls-cert-file",
         options_.tls_cert_file, "--tls-key-file", options_.tls_key_file,
         "--tls-ca-cert-file", options_.tls_ca_file, "--tls-auth-clients",
         options_.tls_auth_clients ? "yes" : "no"});
  }
  args.insert(args.end(), options_.args.begin(), options_.args.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  const std::string log = dir_ + "/redis.log";
  const int log_fd =
      open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot open ", log, ": ", ErrnoText(errno)));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    const int err = errno;
    close(log_fd);
    return absl::UnavailableError(absl::StrCat("fork: ", ErrnoText(err)));
  }
  if (pid == 0) {
    // The child: async-signal-safe calls only until exec.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    const int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    // Inherit no other descriptor (client sockets of the test, above all).
    if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0) {
      for (int fd = 3; fd < 4096; ++fd) close(fd);
    }
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGPIPE, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(argv[0], argv.data());
    static const char kMsg[] = "redis_server.cc: execv failed\n";
    (void)!write(2, kMsg, sizeof(kMsg) - 1);
    _exit(127);
  }
  close(log_fd);
  pid_ = pid;
  return WaitUntilUp();
}

absl::Status RedisServer::WaitUntilUp() {
  const auto deadline = steady_clock::now() + kStartTimeout;
  const std::string want = absl::StrCat("process_id:", pid_, "\r\n");
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return absl::UnavailableError(
          absl::StrCat("redis-server on port ", port_,
                       " exited during startup (", DescribeExit(status), "); ",
                       dir_, "/redis.log ends with:\n", LogTail()));
    }
    absl::StatusOr<Context> c =
        Open(host_, port_, options_.password, 0, std::chrono::milliseconds(500),
             std::chrono::seconds(2));
    if (c.ok()) {
      // Our server, and done loading (INFO answers LOADING errors before).
      absl::StatusOr<Reply> info = RunOn(c->get(), {"INFO", "server"});
      if (info.ok() && info->type == Reply::Type::kString &&
          info->str.find(want) != std::string::npos) {
        return absl::OkStatus();
      }
    }
    if (steady_clock::now() > deadline) {
      (void)Reap(/*kill_first=*/true);
      return absl::DeadlineExceededError(
          absl::StrCat("redis-server on port ", port_,
                       " did not answer within ", kStartTimeout.count(), " s; ",
                       dir_, "/redis.log ends with:\n", LogTail()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

absl::Status RedisServer::Reap(bool kill_first) {
  if (pid_ <= 0) return absl::OkStatus();
  if (kill_first) kill(pid_, SIGKILL);
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  const pid_t pid = pid_;
  pid_ = -1;
  if (r != pid) {
    return absl::InternalError(
        absl::StrCat("waitpid(", pid, "): ", ErrnoText(errno)));
  }
  return absl::OkStatus();
}

absl::Status RedisServer::Stop() {
  if (pid_ <= 0) return absl::OkStatus();
  kill(pid_, SIGTERM);
  kill(pid_, SIGCONT);  // a paused server must run to act on SIGTERM
  const auto deadline = steady_clock::now() + kStopTimeout;
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return absl::OkStatus();
    }
    if (r < 0 && errno != EINTR) return Reap(/*kill_first=*/true);
    if (steady_clock::now() > deadline) return Reap(/*kill_first=*/true);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

absl::Status RedisServer::Kill() { return Reap(/*kill_first=*/true); }

absl::Status RedisServer::Pause() {
  if (pid_ <= 0)
    return absl::FailedPreconditionError("redis-server not running");
  if (kill(pid_, SIGSTOP) != 0) {
    return absl::InternalError(absl::StrCat("SIGSTOP: ", ErrnoText(errno)));
  }
  // Wait until it is really stopped, so the test knows it is.
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, WUNTRACED);
  } while (r < 0 && errno == EINTR);
  if (r == pid_ && !WIFSTOPPED(status)) {
    pid_ = -1;
    return absl::InternalError(
        absl::StrCat("redis-server exited instead of stopping (",
                     DescribeExit(status), ")"));
  }
  return absl::OkStatus();
}

absl::Status RedisServer::Resume() {
  if (pid_ <= 0)
    return absl::FailedPreconditionError("redis-server not running");
  if (kill(pid_, SIGCONT) != 0) {
    return absl::InternalError(absl::StrCat("SIGCONT: ", ErrnoText(errno)));
  }
  return absl::OkStatus();
}

absl::Status RedisServer::Restart() {
  absl::Status s = Stop();
  if (!s.ok()) return s;
  const auto deadline = steady_clock::now() + kRestartTimeout;
  for (;;) {
    s = Launch();
    if (s.ok() || steady_clock::now() > deadline) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

absl::StatusOr<Reply> RedisServer::Command(const std::vector<std::string>& argv,
                                           int db) const {
  return RunCommand(host_, port_, options_.password, db, argv,
                    std::chrono::seconds(10));
}

std::shared_future<absl::StatusOr<Reply>> RedisServer::CommandInBackground(
    std::vector<std::string> argv) {
  std::shared_future<absl::StatusOr<Reply>> f =
      std::async(std::launch::async, [host = host_, port = port_,
                                      password = options_.password,
                                      argv = std::move(argv)] {
        return RunCommand(host, port, password, 0, argv,
                          std::chrono::seconds(60));
      }).share();
  background_.push_back(f);
  return f;
}

std::string RedisServer::LogTail(size_t max_bytes) const {
  std::ifstream in(dir_ + "/redis.log", std::ios::binary);
  if (!in) return "(no log)";
  std::stringstream ss;
  ss << in.rdbuf();
  std::string all = ss.str();
  if (all.size() > max_bytes) all = "..." + all.substr(all.size() - max_bytes);
  return all;
}

}  // namespace plangate::testing
