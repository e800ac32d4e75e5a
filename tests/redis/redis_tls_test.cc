// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// The Redis client over TLS against real redis-servers started with
// --tls-port and certificates this test makes (tests/support/test_certs.h):
// pipelined batches, verification on by default, each refusal (expired,
// wrong CA, name mismatch) with its reason, client certificates, and a TLS
// server killed and restarted mid-run.

#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "plangate/sync.h"
#include "redis/client_harness.h"
#include "redis/redis_client.h"
#include "support/redis_server.h"
#include "support/test_certs.h"

namespace plangate::internal::redis {
namespace {

using namespace std::chrono_literals;
using namespace plangate::internal::redis::test;  // NOLINT(build/namespaces)
using plangate::testing::RedisServer;
using plangate::testing::TestCerts;

std::unique_ptr<TestCerts> MakeCerts() {
  absl::StatusOr<std::unique_ptr<TestCerts>> certs = TestCerts::Make();
  if (!certs.ok()) FAIL("cannot make certificates: " << certs.status());
  return *std::move(certs);
}

// A server whose TLS port presents `cert` (with server.key).
std::unique_ptr<RedisServer> StartTlsServer(const TestCerts& certs,
                                            const std::string& cert,
                                            bool auth_clients = false) {
  RedisServer::Options options;
  options.tls_cert_file = certs.Path(cert);
  options.tls_key_file = certs.Path("server.key");
  options.tls_ca_file = certs.Path("ca.crt");
  options.tls_auth_clients = auth_clients;
  return StartServer(std::move(options));
}

// The client's options for the server's TLS port, trusting ca.crt.
RedisOptions TlsOptions(const RedisServer& server, const TestCerts& certs) {
  RedisOptions o = TestOptions(server);
  o.port = server.tls_port();
  o.tls = true;
  o.tls_ca_file = certs.Path("ca.crt");
  return o;
}

std::string Where(const RedisServer& server) {
  return "(at 127.0.0.1:" + std::to_string(server.tls_port()) + ")";
}

// Starts a client that must be refused; returns the first on_down status
// after checking that no connection became ready and a batch fails.
absl::Status FirstRefusal(const RedisOptions& options) {
  Harness h(options);
  h.Start();
  if (!h.events.WaitDowns(2)) FAIL("on_down was not called twice");
  CHECK(h.events.Ready() == 0);
  Result r = h.Exec({{"PING"}});
  CHECK(r.status().code() == absl::StatusCode::kUnavailable);
  CHECK(Contains(r.status(), "last error: redis TLS handshake failed"));
  const ClientStats stats = h.Stats();
  CHECK(stats.tls_failures >= 2);
  CHECK(stats.tls_failures == stats.connect_failures);
  CHECK(stats.node == "127.0.0.1:" + std::to_string(options.port));
  CHECK(absl::StartsWith(stats.last_error, "redis TLS handshake failed"));
  h.Finish();
  return h.events.Downs()[0];
}

TEST_CASE("TLS: a pipelined batch over a verified connection", "[redis][tls]") {
  auto certs = MakeCerts();
  auto server = StartTlsServer(*certs, "server.crt");

  // From a rediss:// URL, verifying the IP address against the IP SAN.
  absl::StatusOr<RedisOptions> parsed = ParseRedisUrl(
      "rediss://127.0.0.1:" + std::to_string(server->tls_port()) + "/1");
  REQUIRE_OK(parsed);
  RedisOptions options = TlsOptions(*server, *certs);
  options.host = parsed->host;
  options.port = parsed->port;
  options.db = parsed->db;
  REQUIRE(parsed->tls);
  Harness h(options);
  h.Start();
  RequireReady(h);

  const std::string big(3 << 20, 'x');  // many TLS records each way
  Result r = h.Exec({{"SET", "k", "v"},
                     {"INCRBY", "n", "5"},
                     {"SET", "big", big},
                     {"GET", "big"},
                     {"CLIENT", "INFO"},
                     {"GET", "missing"},
                     {"NOSUCHCOMMAND"}});
  REQUIRE_OK(r);
  REQUIRE(r->size() == 7);
  CHECK((*r)[0].str == "OK");
  CHECK((*r)[1].integer == 5);
  CHECK((*r)[3].str == big);
  CHECK(absl::StrContains((*r)[4].str, "db=1"));
  CHECK((*r)[5].type == Reply::Type::kNil);
  CHECK((*r)[6].is_error());
  // It went over TLS: the plain port's db 1 has the key too (same server),
  // and CLIENT LIST shows the TLS connection on the TLS port.
  absl::StatusOr<Reply> got = server->Command({"GET", "k"}, 1);
  REQUIRE_OK(got);
  CHECK(got->str == "v");
  CHECK(h.Stats().batches == 1);
  h.Finish();
}

TEST_CASE("TLS: SNI and the host name verified, by name", "[redis][tls]") {
  auto certs = MakeCerts();
  auto server = StartTlsServer(*certs, "server.crt");
  RedisOptions options = TlsOptions(*server, *certs);
  options.tls_server_name = "localhost";
  Harness h(options);
  h.Start();
  RequireReady(h);
  REQUIRE_OK(h.Exec({{"PING"}}));
  h.Finish();
}

TEST_CASE("TLS: refusals say why and where", "[redis][tls]") {
  auto certs = MakeCerts();

  SECTION("expired certificate") {
    auto server = StartTlsServer(*certs, "expired.crt");
    const absl::Status why = FirstRefusal(TlsOptions(*server, *certs));
    CHECK(why.code() == absl::StatusCode::kFailedPrecondition);
    CHECK(Contains(why, "certificate verify failed: certificate has expired"));
    CHECK(Contains(why, Where(*server)));
  }
  SECTION("certificate from another CA") {
    auto server = StartTlsServer(*certs, "server.crt");
    RedisOptions options = TlsOptions(*server, *certs);
    options.tls_ca_file = certs->Path("other_ca.crt");
    const absl::Status why = FirstRefusal(options);
    CHECK(why.code() == absl::StatusCode::kFailedPrecondition);
    // redis-server sends its CA along: the chain ends in an unknown root.
    CHECK(Contains(why,
                   "certificate verify failed: self-signed certificate in "
                   "certificate chain"));
    CHECK(Contains(why, Where(*server)));
  }
  SECTION("name mismatch: IP address") {
    auto server = StartTlsServer(*certs, "wrong_name.crt");
    const absl::Status why = FirstRefusal(TlsOptions(*server, *certs));
    CHECK(why.code() == absl::StatusCode::kFailedPrecondition);
    CHECK(Contains(why, "certificate verify failed: IP address mismatch"));
    CHECK(Contains(why, Where(*server)));
  }
  SECTION("name mismatch: host name") {
    auto server = StartTlsServer(*certs, "wrong_name.crt");
    RedisOptions options = TlsOptions(*server, *certs);
    options.tls_server_name = "localhost";
    const absl::Status why = FirstRefusal(options);
    CHECK(why.code() == absl::StatusCode::kFailedPrecondition);
    CHECK(Contains(why, "certificate verify failed: hostname mismatch"));
    CHECK(Contains(why, Where(*server)));
  }
  SECTION("tls_verify = false accepts the expired certificate") {
    auto server = StartTlsServer(*certs, "expired.crt");
    RedisOptions options = TlsOptions(*server, *certs);
    options.tls_verify = false;
    Harness h(options);
    h.Start();
    RequireReady(h);
    REQUIRE_OK(h.Exec({{"PING"}}));
    h.Finish();
  }
  SECTION("a plain client on the TLS port is not mistaken for a server") {
    auto server = StartTlsServer(*certs, "server.crt");
    RedisOptions options = TlsOptions(*server, *certs);
    options.tls = false;
    options.connect_timeout = 2s;
    Harness h(options);
    h.Start();
    REQUIRE(h.events.WaitDowns(1));
    CHECK(h.events.Ready() == 0);
    h.Finish();
  }
  SECTION("a CA file that does not exist") {
    auto server = StartTlsServer(*certs, "server.crt");
    RedisOptions options = TlsOptions(*server, *certs);
    options.tls_ca_file = certs->Path("nope.crt");
    Harness h(options);
    h.Start();
    REQUIRE(h.events.WaitDowns(1));
    const absl::Status why = h.events.Downs()[0];
    CHECK(why.code() == absl::StatusCode::kFailedPrecondition);
    CHECK(Contains(why, "cannot load the CA file"));
    CHECK(Contains(why, "nope.crt"));
    CHECK(h.events.Ready() == 0);
    h.Finish();
  }
}

TEST_CASE("TLS: a client certificate when the server requires one",
          "[redis][tls]") {
  auto certs = MakeCerts();
  auto server = StartTlsServer(*certs, "server.crt", /*auth_clients=*/true);

  SECTION("without one the connection is refused") {
    Harness h(TlsOptions(*server, *certs));
    h.Start();
    REQUIRE(h.events.WaitDowns(2));
    CHECK(h.events.Ready() == 0);
    const absl::Status why = h.events.Downs()[0];
    CHECK(why.code() == absl::StatusCode::kUnavailable);
    CHECK(Contains(why, Where(*server)));
    h.Finish();
  }
  SECTION("with one it works") {
    RedisOptions options = TlsOptions(*server, *certs);
    options.tls_cert_file = certs->Path("client.crt");
    options.tls_key_file = certs->Path("client.key");
    Harness h(options);
    h.Start();
    RequireReady(h);
    Result r = h.Exec({{"SET", "a", "1"}, {"GET", "a"}});
    REQUIRE_OK(r);
    CHECK((*r)[1].str == "1");
    h.Finish();
  }
}

TEST_CASE("TLS: a server killed mid-batch and restarted is reconnected",
          "[redis][tls]") {
  auto certs = MakeCerts();
  auto server = StartTlsServer(*certs, "server.crt");
  RedisOptions options = TlsOptions(*server, *certs);
  options.command_timeout = 30s;
  Harness h(options);
  h.Start();
  RequireReady(h);
  REQUIRE_OK(h.Exec({{"SET", "before", "1"}}));

  std::future<Result> blocked = h.ExecAsync({{"BLPOP", "nolist", "30"}});
  bool seen = false;
  for (int i = 0; i < 6000 && !seen; ++i) {
    absl::StatusOr<Reply> list = server->Command({"CLIENT", "LIST"});
    REQUIRE_OK(list);
    seen = absl::StrContains(list->str, "cmd=blpop");
    if (!seen) std::this_thread::sleep_for(10ms);
  }
  REQUIRE(seen);
  REQUIRE_OK(server->Kill());
  Result r = Harness::Get(blocked);
  CHECK(r.status().code() == absl::StatusCode::kUnavailable);
  CHECK(Contains(r.status(), "redis connection lost"));
  CHECK(Contains(r.status(), Where(*server)));

  REQUIRE_OK(server->Restart());
  RequireReady(h, 2);
  Result after = h.ExecEventually({{"SET", "after", "2"}, {"GET", "after"}});
  REQUIRE_OK(after);
  CHECK((*after)[1].str == "2");
  const ClientStats stats = h.Stats();
  CHECK(stats.disconnects == 1);
  CHECK(stats.connects == 2);
  CHECK(stats.io_errors >= 1);
  // An attempt that lands while the server dies or starts may fail its
  // handshake; each such failure is a failed attempt, never a connect.
  CHECK(stats.tls_failures <= stats.connect_failures);
  CHECK(absl::StrContains(stats.last_error, Where(*server)));
  h.Finish();
}

}  // namespace
}  // namespace plangate::internal::redis
