// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// The C API's Redis TLS options against a real redis-server --tls-port with
// certificates the test makes (tests/support/test_certs.h): with
// pg_sync_options_set_redis_tls_ca_file the sync connects over rediss://
// and flushes what the enforcer admitted into Redis; with a CA that did not
// sign the server's certificate every attempt fails and the sync's last
// error says why.

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "plangate/c.h"
#include "support/redis_server.h"
#include "support/test_certs.h"

namespace plangate::testing {
namespace {

constexpr char kCatalog[] = R"({"version": 1, "plans": [{"id": "p",
  "limits": [{"id": "monthly", "limit": 1000}]}]})";

std::string TakeError(char** err) {
  if (*err == nullptr) return "";
  std::string s = *err;
  pg_free(*err);
  *err = nullptr;
  return s;
}

struct Fixture {
  std::unique_ptr<TestCerts> certs;
  std::unique_ptr<RedisServer> server;
  pg_enforcer_t* enforcer = nullptr;

  Fixture() {
    auto c = TestCerts::Make();
    if (!c.ok()) FAIL("cannot make certificates: " << c.status());
    certs = *std::move(c);
    RedisServer::Options o;
    o.tls_cert_file = certs->Path("server.crt");
    o.tls_key_file = certs->Path("server.key");
    o.tls_ca_file = certs->Path("ca.crt");
    auto s = RedisServer::Start(o);
    if (!s.ok()) FAIL("cannot start a redis-server: " << s.status());
    server = *std::move(s);
    char* err = nullptr;
    pg_catalog_t* catalog =
        pg_catalog_parse(kCatalog, std::strlen(kCatalog), &err);
    REQUIRE(TakeError(&err).empty());
    enforcer = pg_enforcer_create(catalog, nullptr, &err);
    pg_catalog_destroy(catalog);
    REQUIRE(TakeError(&err).empty());
    pg_account_t a;
    std::memset(&a, 0, sizeof(a));
    a.account_id = "acme";
    a.account_id_len = 4;
    a.plan_id = "p";
    a.plan_id_len = 1;
    pg_enforcer_upsert_account(enforcer, &a, &err);
    REQUIRE(TakeError(&err).empty());
  }
  ~Fixture() { pg_enforcer_destroy(enforcer); }

  std::string Url() const {
    return "rediss://127.0.0.1:" + std::to_string(server->tls_port());
  }
  pg_sync_t* Start(const std::string& ca) {
    pg_sync_options_t* o = pg_sync_options_create();
    REQUIRE(o != nullptr);
    pg_sync_options_set_instance_id(o, "c-tls", 5);
    pg_sync_options_set_redis_tls_ca_file(o, ca.data(), ca.size());
    char* err = nullptr;
    pg_sync_t* s = pg_sync_start(enforcer, Url().c_str(), o, &err);
    pg_sync_options_destroy(o);
    INFO(TakeError(&err));
    REQUIRE(s != nullptr);
    return s;
  }
  // Checks until `n` were admitted (a counter not synced yet answers 429
  // quota_syncing for about one round) or 30 s passed; commits each.
  int Admit(int n) {
    int admitted = 0;
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (admitted < n && std::chrono::steady_clock::now() < deadline) {
      pg_check_request_t r;
      std::memset(&r, 0, sizeof(r));
      r.account_id = "acme";
      r.account_id_len = 4;
      pg_decision_t d;
      pg_enforcer_check(enforcer, &r, &d);
      if (!pg_decision_admitted(&d)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      pg_commit_request_t c;
      std::memset(&c, 0, sizeof(c));
      c.reservation = d.reservation;
      pg_enforcer_commit(enforcer, &c);
      ++admitted;
    }
    return admitted;
  }
};

TEST_CASE("C API: pg_sync over TLS with a CA file", "[capi][redis][tls]") {
  Fixture f;
  pg_sync_t* s = f.Start(f.certs->Path("ca.crt"));
  char* err = nullptr;
  pg_sync_flush(s, 30000, &err);
  REQUIRE(TakeError(&err).empty());
  const int admitted = f.Admit(25);
  CHECK(admitted == 25);
  pg_sync_flush(s, 30000, &err);
  REQUIRE(TakeError(&err).empty());
  pg_sync_stats_t stats;
  pg_sync_stats(s, &stats);
  CHECK(stats.connected == 1);
  CHECK(stats.units_flushed == static_cast<uint64_t>(admitted));
  pg_sync_destroy(s);
  // Redis holds exactly what was admitted (read on the plain port).
  auto keys = f.server->Command({"KEYS", "pg:{acme}:*"});
  REQUIRE(keys.ok());
  REQUIRE(keys->elements.size() == 1);
  auto t = f.server->Command({"HGET", keys->elements[0].str, "t"});
  REQUIRE(t.ok());
  CHECK(t->str == std::to_string(admitted));
}

TEST_CASE("C API: a CA that did not sign the server's certificate",
          "[capi][redis][tls]") {
  Fixture f;
  pg_sync_t* s = f.Start(f.certs->Path("other_ca.crt"));
  char* err = nullptr;
  std::string last;
  for (int i = 0; i < 1500; ++i) {  // up to 30 s
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    pg_sync_flush(s, 1, &err);
    TakeError(&err);
    char* l = pg_sync_last_error(s);
    REQUIRE(l != nullptr);
    last = l;
    pg_free(l);
    if (last.find("certificate verify failed") != std::string::npos) break;
  }
  INFO(last);
  CHECK(last.find("certificate verify failed") != std::string::npos);
  CHECK(last.find("127.0.0.1:" + std::to_string(f.server->tls_port())) !=
        std::string::npos);
  pg_sync_stats_t stats;
  pg_sync_stats(s, &stats);
  CHECK(stats.connected == 0);
  CHECK(stats.rounds == 0);
  pg_sync_destroy(s);
}

}  // namespace
}  // namespace plangate::testing
