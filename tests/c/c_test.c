/* Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

   c_test.c: the C API (include/plangate/c.h) from a C11 program, like
   leveldb's db/c_test.c. Compiled with -std=c11 -Wall -Wextra -pedantic
   -Werror and linked against libplangate_c.so only; run under ASan and
   UBSan in the asan preset.

     c_test         every function except the Redis round trips
     c_test sync    pg_sync_* against the redis-server on
                    PLANGATE_TEST_REDIS_PORT; exits 77 (skipped) when the
                    variable is unset

   Each phase opens with one line saying what it verifies. */

#define _POSIX_C_SOURCE 200809L

#include "plangate/c.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char* phase = "";
static int failures = 0;

static void StartPhase(const char* name) {
  fprintf(stderr, "=== %s\n", name);
  phase = name;
}

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "%s:%d: %s: CHECK failed: %s\n", __FILE__, __LINE__, \
              phase, #cond);                                               \
      ++failures;                                                          \
    }                                                                      \
  } while (0)

/* Aborts the phase's callers that cannot go on without the handle. */
#define REQUIRE(cond)                                                        \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "%s:%d: %s: REQUIRE failed: %s\n", __FILE__, __LINE__, \
              phase, #cond);                                                 \
      exit(1);                                                               \
    }                                                                        \
  } while (0)

#define CHECK_NO_ERROR(err)                                                    \
  do {                                                                         \
    if ((err) != NULL) {                                                       \
      fprintf(stderr, "%s:%d: %s: unexpected error: %s\n", __FILE__, __LINE__, \
              phase, (err));                                                   \
      ++failures;                                                              \
      pg_free(err);                                                            \
      (err) = NULL;                                                            \
    }                                                                          \
  } while (0)

/* Checks that err is set and contains `part`, then frees it. */
#define CHECK_ERROR(err, part)                                          \
  do {                                                                  \
    if ((err) == NULL) {                                                \
      fprintf(stderr, "%s:%d: %s: expected an error containing '%s'\n", \
              __FILE__, __LINE__, phase, (part));                       \
      ++failures;                                                       \
    } else {                                                            \
      if (strstr((err), (part)) == NULL) {                              \
        fprintf(stderr, "%s:%d: %s: error '%s' lacks '%s'\n", __FILE__, \
                __LINE__, phase, (err), (part));                        \
        ++failures;                                                     \
      }                                                                 \
      pg_free(err);                                                     \
      (err) = NULL;                                                     \
    }                                                                   \
  } while (0)

/* A pointer-and-length string equals a C string. */
static int StrEq(const char* data, size_t len, const char* want) {
  return len == strlen(want) && (len == 0 || memcmp(data, want, len) == 0);
}

/* 2026-01-01T00:00:00Z, a month boundary, and an instant an hour later. */
#define T0 INT64_C(1767225600000)
#define NOW (T0 + INT64_C(3600000))
#define FEB1 (T0 + INT64_C(31) * 86400000)

static const char kCatalog[] =
    "{\"version\": 1,"
    " \"meters\": [\"requests\", \"tokens\"],"
    " \"upgrade_order\": [\"free\", \"pro\"],"
    " \"plans\": ["
    "  {\"id\": \"free\","
    "   \"limits\": ["
    "     {\"id\": \"monthly\", \"limit\": 10, \"grace\": 0.2,"
    "      \"soft_nudge\": 0.5},"
    "     {\"id\": \"burst\", \"window\": \"minute\", \"limit\": 100}],"
    "   \"models\": [\"small-*\"],"
    "   \"key_kinds\": [\"live\", \"test\", \"internal\"],"
    "   \"gauges\": {\"projects\": 2}},"
    "  {\"id\": \"pro\","
    "   \"limits\": ["
    "     {\"id\": \"tokens\", \"meter\": \"tokens\", \"window\": \"day\","
    "      \"limit\": 1000},"
    "     {\"id\": \"per_key\", \"scope\": \"key\", \"window\": \"minute\","
    "      \"limit\": 3, \"message\": \"Three a minute per key.\"}],"
    "   \"features\": [\"tools\"]}]}";

/* The same with Free's monthly limit raised to 20 (hard limit 24). */
static const char kCatalogBigger[] =
    "{\"version\": 1,"
    " \"meters\": [\"requests\", \"tokens\"],"
    " \"plans\": ["
    "  {\"id\": \"free\","
    "   \"limits\": ["
    "     {\"id\": \"monthly\", \"limit\": 20, \"grace\": 0.2,"
    "      \"soft_nudge\": 0.5},"
    "     {\"id\": \"burst\", \"window\": \"minute\", \"limit\": 100}],"
    "   \"gauges\": {\"projects\": 2}},"
    "  {\"id\": \"pro\","
    "   \"limits\": [{\"id\": \"tokens\", \"meter\": \"tokens\","
    "                 \"window\": \"day\", \"limit\": 1000}],"
    "   \"features\": [\"tools\"]}]}";

/* The test's clock and event sink. */
static int64_t sim_now_ms = NOW;
static int clock_calls = 0;
static int64_t SimNow(void* state) {
  CHECK(state == &sim_now_ms);
  ++clock_calls;
  return *(int64_t*)state;
}

typedef struct Events {
  int soft_nudge;
  int hard_cap;
  int other;
} Events;
static void OnThreshold(void* state, const pg_threshold_event_t* e) {
  Events* events = (Events*)state;
  if (StrEq(e->account_id, e->account_id_len, "acme") &&
      StrEq(e->limit_id, e->limit_id_len, "monthly") &&
      e->scope == pg_scope_account && e->subject_id_len == 0 &&
      e->limit == 10 && e->window_start_ms == T0 && e->window_end_ms == FEB1) {
    if (e->kind == pg_threshold_soft_nudge && e->used == 5) {
      ++events->soft_nudge;
      return;
    }
    if (e->kind == pg_threshold_hard_cap && e->used == 10) {
      ++events->hard_cap;
      return;
    }
  }
  ++events->other;
}

static pg_check_request_t Request(const char* account) {
  pg_check_request_t r;
  memset(&r, 0, sizeof(r));
  r.account_id = account;
  r.account_id_len = strlen(account);
  r.now_ms = NOW;
  return r;
}

static void Upsert(pg_enforcer_t* e, const char* account, const char* plan) {
  char* err = NULL;
  pg_account_t a;
  memset(&a, 0, sizeof(a));
  a.account_id = account;
  a.account_id_len = strlen(account);
  a.plan_id = plan;
  a.plan_id_len = strlen(plan);
  a.anchor_ms = T0;
  a.default_model = "small-default"; /* Free's allowlist is small-* */
  a.default_model_len = strlen(a.default_model);
  pg_enforcer_upsert_account(e, &a, &err);
  CHECK_NO_ERROR(err);
}

static int Commit(pg_enforcer_t* e, const pg_decision_t* d,
                  unsigned char failed) {
  pg_commit_request_t c;
  memset(&c, 0, sizeof(c));
  c.reservation = d->reservation;
  c.failed = failed;
  return pg_enforcer_commit(e, &c);
}

/* The "used" of a limit in the usage JSON, or -1. */
static long UsedIn(const char* json, const char* limit_id) {
  char key[64];
  snprintf(key, sizeof(key), "\"%s\":{\"used\":", limit_id);
  const char* p = strstr(json, key);
  return p == NULL ? -1 : strtol(p + strlen(key), NULL, 10);
}

static long UsageAt(pg_enforcer_t* e, const char* account, const char* limit,
                    int64_t now_ms) {
  char* err = NULL;
  size_t len = 0;
  char* json =
      pg_enforcer_usage_json(e, account, strlen(account), now_ms, &len, &err);
  CHECK_NO_ERROR(err);
  if (json == NULL) return -2;
  CHECK(len == strlen(json));
  const long used = UsedIn(json, limit);
  pg_free(json);
  return used;
}

static long Usage(pg_enforcer_t* e, const char* account, const char* limit) {
  return UsageAt(e, account, limit, NOW);
}

static void TestLibrary(void) {
  StartPhase("version and static names");
  char want[32];
  snprintf(want, sizeof(want), "%d.%d.%d", PG_VERSION_MAJOR, PG_VERSION_MINOR,
           PG_VERSION_PATCH);
  CHECK(strcmp(pg_version(), want) == 0);
  CHECK(pg_version_number() ==
        PG_VERSION_MAJOR * 10000 + PG_VERSION_MINOR * 100 + PG_VERSION_PATCH);
  CHECK(strcmp(pg_commit_result_name(pg_commit_applied), "applied") == 0);
  CHECK(strcmp(pg_commit_result_name(pg_commit_refunded), "refunded") == 0);
  CHECK(strcmp(pg_commit_result_name(pg_commit_duplicate), "duplicate") == 0);
  CHECK(strcmp(pg_commit_result_name(99), "unknown") == 0);
  CHECK(strcmp(pg_commit_result_name(-1), "unknown") == 0);
  CHECK(strcmp(pg_deny_reason(pg_deny_unknown_account), "unknown_account") ==
        0);
  CHECK(strcmp(pg_deny_reason(pg_deny_syncing), "quota_syncing") == 0);
  CHECK(strcmp(pg_deny_reason(pg_deny_limit), "") == 0);
  CHECK(strcmp(pg_deny_reason(13), "") == 0);
  CHECK(strcmp(pg_deny_reason(-5), "") == 0);
  CHECK(strcmp(pg_http_error_type(402), "insufficient_quota") == 0);
  CHECK(strcmp(pg_http_error_type(429), "rate_limit_exceeded") == 0);
  CHECK(strcmp(pg_http_error_type(503), "server_error") == 0);
  pg_free(NULL);
  pg_catalog_destroy(NULL);
  pg_enforcer_destroy(NULL);
  pg_sync_destroy(NULL);
}

static pg_catalog_t* TestCatalog(void) {
  StartPhase("catalog errors name the field; an old error is replaced");
  char* err = NULL;
  static const char kBad[] =
      "{\"version\": 2, \"plans\": [{\"id\": \"a\", \"limits\": "
      "[{\"limit\": 5, \"grace\": 3}]}]}";
  CHECK(pg_catalog_parse(kBad, strlen(kBad), &err) == NULL);
  REQUIRE(err != NULL);
  CHECK(strstr(err, "version: must be 1") != NULL);
  /* A second failure frees the first message (ASan's leak check). */
  CHECK(pg_catalog_parse("{", 1, &err) == NULL);
  REQUIRE(err != NULL);
  CHECK(strstr(err, "version: must be 1") == NULL);
  pg_free(err);
  err = NULL;
  CHECK(pg_catalog_parse(kBad, strlen(kBad), &err) == NULL);
  CHECK_ERROR(err, "plans[0].limits[0].grace: must be in [0, 1]");
  /* Length is honoured: the valid document cut short is an error. */
  CHECK(pg_catalog_parse(kCatalog, 20, &err) == NULL);
  REQUIRE(err != NULL);
  pg_free(err);
  err = NULL;
  CHECK(pg_catalog_parse(NULL, 0, &err) == NULL);
  REQUIRE(err != NULL);
  pg_free(err);
  err = NULL;
  CHECK(pg_catalog_load_file("/nonexistent/plans.json", &err) == NULL);
  CHECK_ERROR(err, "/nonexistent/plans.json");

  StartPhase("catalog from a file and from a string; accessors");
  char path[] = "/tmp/plangate-c-test-XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, kCatalog, strlen(kCatalog)) == (ssize_t)strlen(kCatalog));
  close(fd);
  pg_catalog_t* from_file = pg_catalog_load_file(path, &err);
  CHECK_NO_ERROR(err);
  REQUIRE(from_file != NULL);
  CHECK(pg_catalog_num_plans(from_file) == 2);
  pg_catalog_destroy(from_file);
  /* A broken file's error is prefixed with its path. */
  FILE* f = fopen(path, "w");
  REQUIRE(f != NULL);
  fputs(kBad, f);
  fclose(f);
  CHECK(pg_catalog_load_file(path, &err) == NULL);
  REQUIRE(err != NULL);
  CHECK(strstr(err, path) != NULL);
  CHECK(strstr(err, "plans[0].limits[0].grace: must be in [0, 1]") != NULL);
  pg_free(err);
  err = NULL;
  unlink(path);

  pg_catalog_t* catalog = pg_catalog_parse(kCatalog, strlen(kCatalog), &err);
  CHECK_NO_ERROR(err);
  REQUIRE(catalog != NULL);
  CHECK(pg_catalog_num_plans(catalog) == 2);
  CHECK(strcmp(pg_catalog_plan_id(catalog, 0), "free") == 0);
  CHECK(strcmp(pg_catalog_plan_id(catalog, 1), "pro") == 0);
  CHECK(pg_catalog_plan_id(catalog, 2) == NULL);
  CHECK(pg_catalog_num_meters(catalog) == 2);
  {
    int64_t cost = -1;
    /* kCatalog has no price table: nothing is priced. */
    CHECK(pg_catalog_cost_micros(catalog, "gpt-4o", 6, 1000, 0, 10, 0, &cost) ==
          0);
    CHECK(cost == 0);
    static const char kPriced[] =
        "{\"version\": 1, \"prices\": [{\"models\": [\"gpt-*\"], "
        "\"input\": 2500000, \"cached_input\": 1250000, "
        "\"output\": 10000000}], \"plans\": [{\"id\": \"p\", "
        "\"limits\": []}]}";
    pg_catalog_t* priced = pg_catalog_parse(kPriced, strlen(kPriced), &err);
    CHECK_NO_ERROR(err);
    REQUIRE(priced != NULL);
    CHECK(pg_catalog_cost_micros(priced, "gpt-4o", 6, 1000, 200, 500, 0,
                                 &cost) == 1);
    CHECK(cost == 2000 + 250 + 5000);
    CHECK(pg_catalog_cost_micros(priced, "claude", 6, 1, 0, 1, 0, &cost) == 0);
    pg_catalog_destroy(priced);
  }
  CHECK(strcmp(pg_catalog_meter(catalog, 0), "requests") == 0);
  CHECK(strcmp(pg_catalog_meter(catalog, 1), "tokens") == 0);
  CHECK(pg_catalog_meter(catalog, 2) == NULL);
  CHECK(strcmp(pg_catalog_default_plan(catalog), "") == 0);
  return catalog;
}

static pg_enforcer_t* TestCreate(pg_catalog_t* catalog, Events* events) {
  StartPhase("enforcer options: bad ones are an error naming the field");
  char* err = NULL;
  pg_enforcer_options_t* options = pg_enforcer_options_create();
  REQUIRE(options != NULL);
  pg_enforcer_options_set_max_subjects(options, 0);
  CHECK(pg_enforcer_create(catalog, options, &err) == NULL);
  CHECK_ERROR(err, "max_subjects");
  pg_enforcer_options_set_max_subjects(options, 1024);
  pg_enforcer_options_set_max_reservations(options, 0);
  CHECK(pg_enforcer_create(catalog, options, &err) == NULL);
  CHECK_ERROR(err, "max_reservations");
  pg_enforcer_options_set_max_reservations(options, 256);
  pg_enforcer_options_set_reservation_ttl_ms(options, -1);
  CHECK(pg_enforcer_create(catalog, options, &err) == NULL);
  CHECK_ERROR(err, "reservation_ttl_ms");

  StartPhase("enforcer create with every option; defaults with NULL");
  pg_enforcer_t* defaults = pg_enforcer_create(catalog, NULL, &err);
  CHECK_NO_ERROR(err);
  REQUIRE(defaults != NULL);
  pg_enforcer_stats_t stats;
  pg_enforcer_stats(defaults, &stats);
  CHECK(stats.subject_capacity >= 131072);
  pg_enforcer_destroy(defaults);

  pg_enforcer_options_set_reservation_ttl_ms(options, 1000);
  pg_enforcer_options_set_idle_subject_ttl_ms(options, 60000);
  pg_enforcer_options_set_event_queue_capacity(options, 64);
  pg_enforcer_options_set_clock(options, SimNow, &sim_now_ms);
  pg_enforcer_options_set_event_sink(options, OnThreshold, events);
  pg_enforcer_t* enforcer = pg_enforcer_create(catalog, options, &err);
  CHECK_NO_ERROR(err);
  REQUIRE(enforcer != NULL);
  pg_enforcer_options_destroy(options); /* read by create only */
  pg_enforcer_stats(enforcer, &stats);
  CHECK(stats.subject_capacity >= 1024 && stats.subject_capacity < 131072);
  CHECK(stats.subjects == 0);
  return enforcer;
}

static void TestAccounts(pg_enforcer_t* e) {
  StartPhase("account upsert: plans, states and overrides checked");
  char* err = NULL;
  Upsert(e, "acme", "free");
  Upsert(e, "beta", "pro");
  Upsert(e, "gamma", "pro");

  pg_account_t a;
  memset(&a, 0, sizeof(a));
  a.account_id = "x";
  a.account_id_len = 1;
  a.plan_id = "gold";
  a.plan_id_len = 4;
  pg_enforcer_upsert_account(e, &a, &err);
  CHECK_ERROR(err, "gold");
  a.plan_id = "free";
  a.plan_id_len = 4;
  a.state = 7;
  pg_enforcer_upsert_account(e, &a, &err);
  CHECK_ERROR(err, "state");

  /* An override for a limit the plan does not have is an error. */
  pg_limit_override_t o[2];
  memset(o, 0, sizeof(o));
  o[0].limit_id = "nope";
  o[0].limit_id_len = 4;
  o[0].limit = 5;
  a.state = pg_subscription_active;
  a.overrides = o;
  a.num_overrides = 1;
  pg_enforcer_upsert_account(e, &a, &err);
  CHECK_ERROR(err, "nope");
  a.overrides = NULL;
  a.num_overrides = 3;
  pg_enforcer_upsert_account(e, &a, &err);
  CHECK_ERROR(err, "overrides");

  /* "big": monthly 1000 with its own grace of 0; three checks fit. */
  o[0].limit_id = "monthly";
  o[0].limit_id_len = 7;
  o[0].limit = 2;
  o[0].set_grace = 1;
  o[0].grace = 0.5; /* hard 3 */
  a.account_id = "big";
  a.account_id_len = 3;
  a.anchor_ms = T0;
  a.overrides = o;
  a.num_overrides = 1;
  a.default_model = "small-default";
  a.default_model_len = strlen(a.default_model);
  pg_enforcer_upsert_account(e, &a, &err);
  CHECK_NO_ERROR(err);
  pg_check_request_t r = Request("big");
  pg_decision_t d;
  for (int i = 0; i < 3; ++i) {
    pg_enforcer_check(e, &r, &d);
    CHECK(d.status == 200);
    CHECK(Commit(e, &d, 0) == pg_commit_applied);
  }
  pg_enforcer_check(e, &r, &d);
  CHECK(d.status == 402);
  CHECK(d.hard_limit == 3);
  CHECK(d.limit_value == 2);

  /* Blocked: 402 payment_required. */
  a.account_id = "blocked";
  a.account_id_len = 7;
  a.num_overrides = 0;
  a.state = pg_subscription_blocked;
  pg_enforcer_upsert_account(e, &a, &err);
  CHECK_NO_ERROR(err);
  r = Request("blocked");
  pg_enforcer_check(e, &r, &d);
  CHECK(d.status == 402 && d.deny == pg_deny_payment_required);
  CHECK(StrEq(d.reason, d.reason_len, "payment_required"));

  /* Past due, inside its deadline: admitted with a warning. */
  a.account_id = "late";
  a.account_id_len = 4;
  a.state = pg_subscription_past_due;
  a.past_due_deadline_ms = NOW + 1000;
  pg_enforcer_upsert_account(e, &a, &err);
  CHECK_NO_ERROR(err);
  r = Request("late");
  pg_enforcer_check(e, &r, &d);
  CHECK(d.status == 200 && (d.warnings & pg_warn_past_due) != 0);
  CHECK(Commit(e, &d, 0) == pg_commit_applied);
  r.now_ms = NOW + 2000;
  pg_enforcer_check(e, &r, &d);
  CHECK(d.status == 402 && d.deny == pg_deny_payment_required);

  /* A scheduled plan shows in the usage report. */
  a.account_id = "leaving";
  a.account_id_len = 7;
  a.plan_id = "pro";
  a.plan_id_len = 3;
  a.state = pg_subscription_active;
  a.scheduled_plan_id = "free";
  a.scheduled_plan_id_len = 4;
  pg_enforcer_upsert_account(e, &a, &err);
  CHECK_NO_ERROR(err);
  char* json = pg_enforcer_usage_json(e, "leaving", 7, NOW, NULL, &err);
  CHECK_NO_ERROR(err);
  REQUIRE(json != NULL);
  CHECK(strstr(json, "\"scheduled_plan\":\"free\"") != NULL);
  pg_free(json);
}

static void TestCheckCommit(pg_enforcer_t* e, pg_decision_t* denial) {
  StartPhase("check: admits to the hard limit with warnings, then denies");
  pg_check_request_t r = Request("acme");
  pg_decision_t d;
  for (int i = 1; i <= 12; ++i) {
    pg_enforcer_check(e, &r, &d);
    CHECK(d.status == 200);
    CHECK(pg_decision_admitted(&d) == 1);
    CHECK(d.deny == pg_deny_none);
    CHECK(d.reservation.generation != 0);
    /* Soft nudge from request 5 (0.5 of 10); grace past 10. */
    const int nudge = (d.warnings & pg_warn_soft_nudge) != 0;
    const int grace = (d.warnings & pg_warn_grace) != 0;
    if ((i < 5 && d.warnings != 0) || (i >= 5 && i <= 10 && !nudge) ||
        (i <= 10 && grace) || (i > 10 && !grace)) {
      fprintf(stderr, "%s: request %d: warnings %u\n", phase, i, d.warnings);
      ++failures;
    }
    if (i >= 5) {
      CHECK(d.has_limit);
      CHECK(StrEq(d.limit_id, d.limit_id_len, "monthly"));
      CHECK(d.used == i - 1);
      CHECK(d.remaining == 12 - i);
    }
    CHECK(Commit(e, &d, 0) == pg_commit_applied);
  }
  pg_enforcer_check(e, &r, &d);
  CHECK(d.status == 402);
  CHECK(pg_decision_admitted(&d) == 0);
  CHECK(d.deny == pg_deny_limit);
  CHECK(StrEq(d.reason, d.reason_len, "billing_limit_reached"));
  CHECK(d.has_limit);
  CHECK(StrEq(d.limit_id, d.limit_id_len, "monthly"));
  CHECK(StrEq(d.limit_meter, d.limit_meter_len, "requests"));
  CHECK(d.limit_scope == pg_scope_account);
  CHECK(d.limit_window == pg_window_billing_period);
  CHECK(d.limit_mode == pg_mode_fixed);
  CHECK(d.limit_value == 10);
  CHECK(d.hard_limit == 12);
  CHECK(d.used == 12);
  CHECK(d.remaining == 0);
  CHECK(d.window_start_ms == T0);
  CHECK(d.reset_ms == FEB1);
  CHECK(d.retry_after_ms == FEB1 - NOW);
  CHECK(StrEq(d.upgrade_plan, d.upgrade_plan_len, "pro"));
  CHECK(d.reservation.generation == 0);
  *denial = d;
  CHECK(Usage(e, "acme", "monthly") == 12);

  StartPhase("prefetch is a hint: it changes no count");
  pg_enforcer_prefetch(e, "acme", 4);
  pg_enforcer_prefetch(e, "nobody-registered-this", 22);
  pg_enforcer_prefetch(e, NULL, 0);
  CHECK(Usage(e, "acme", "monthly") == 12);

  StartPhase("peek decides without counting");
  pg_decision_t p;
  pg_enforcer_peek(e, &r, &p);
  CHECK(p.status == 402 && p.used == 12);
  r = Request("fresh");
  Upsert(e, "fresh", "free");
  for (int i = 0; i < 3; ++i) {
    pg_enforcer_peek(e, &r, &p);
    CHECK(p.status == 200 && p.reservation.generation == 0);
  }
  CHECK(Usage(e, "fresh", "monthly") == 0);

  StartPhase("commit: refund, duplicate, empty, invalid, request id");
  pg_enforcer_check(e, &r, &d);
  CHECK(d.status == 200);
  CHECK(Usage(e, "fresh", "monthly") == 1);
  CHECK(Commit(e, &d, 1) == pg_commit_refunded);
  CHECK(Usage(e, "fresh", "monthly") == 0);
  CHECK(Commit(e, &d, 0) == pg_commit_duplicate);
  pg_decision_t empty;
  memset(&empty, 0, sizeof(empty));
  CHECK(Commit(e, &empty, 0) == pg_commit_empty);
  pg_decision_t bogus = d;
  bogus.reservation.slot = 1u << 30;
  CHECK(Commit(e, &bogus, 0) == pg_commit_invalid);
  r.request_id = 42;
  pg_enforcer_check(e, &r, &d);
  pg_commit_request_t c;
  memset(&c, 0, sizeof(c));
  c.reservation = d.reservation;
  c.request_id = 43;
  CHECK(pg_enforcer_commit(e, &c) == pg_commit_invalid);
  c.request_id = 42;
  CHECK(pg_enforcer_commit(e, &c) == pg_commit_applied);
  c.actual = NULL;
  c.num_actual = 2;
  CHECK(pg_enforcer_commit(e, &c) == pg_commit_invalid);

  StartPhase("extend: a stream's tokens charged as they flow");
  {
    pg_check_request_t sr = Request("fresh");
    pg_decision_t sd;
    pg_enforcer_check(e, &sr, &sd);
    CHECK(sd.status == 200);
    const int64_t before = Usage(e, "fresh", "monthly");
    pg_meter_amount_t more = {0, 2}; /* two more "requests" */
    pg_extend_request_t x;
    memset(&x, 0, sizeof(x));
    x.reservation = sd.reservation;
    x.amounts = &more;
    x.num_amounts = 1;
    x.now_ms = NOW;
    pg_decision_t xd;
    pg_enforcer_extend(e, &x, &xd);
    CHECK(xd.status == 200);
    CHECK(xd.reservation.slot == sd.reservation.slot);
    CHECK(Usage(e, "fresh", "monthly") == before + 2);
    CHECK(Commit(e, &sd, 1) == pg_commit_refunded); /* all three back */
    CHECK(Usage(e, "fresh", "monthly") == before - 1);
    pg_enforcer_extend(e, &x, &xd); /* settled now */
    CHECK(xd.status == 400 && xd.deny == pg_deny_invalid_request);
    x.amounts = NULL;
    pg_enforcer_extend(e, &x, &xd);
    CHECK(xd.status == 400);
  }

  StartPhase("bad requests are 400 decisions, never a crash");
  r = Request("acme");
  r.key_kind = 9;
  pg_enforcer_check(e, &r, &d);
  CHECK(d.status == 400 && d.deny == pg_deny_invalid_request);
  CHECK(StrEq(d.reason, d.reason_len, "invalid_request"));
  CHECK(d.message_len > 0 && memcmp(d.message, "key_kind", 8) == 0);
  r.key_kind = -1;
  pg_enforcer_peek(e, &r, &d);
  CHECK(d.status == 400);
  r = Request("fresh");
  pg_meter_amount_t negative = {0, -5};
  r.amounts = &negative;
  r.num_amounts = 1;
  pg_enforcer_check(e, &r, &d);
  CHECK(d.status == 400 && d.deny == pg_deny_invalid_request);
  r.amounts = NULL;
  r.num_amounts = 1;
  pg_enforcer_check(e, &r, &d);
  CHECK(d.status == 400);
  r.num_amounts = 0;
  r.features = NULL;
  r.num_features = 2;
  pg_enforcer_check(e, &r, &d);
  CHECK(d.status == 400);
  /* NULL strings with a length are empty strings. */
  pg_check_request_t nul = Request("fresh");
  nul.key_id = NULL;
  nul.key_id_len = 99;
  nul.model = NULL;
  nul.model_len = 7;
  pg_enforcer_peek(e, &nul, &d);
  CHECK(d.status == 200);

  StartPhase("key kinds, models, BYOK, features, unknown account");
  r = Request("fresh");
  r.key_kind = pg_key_test;
  pg_enforcer_check(e, &r, &d);
  CHECK(d.status == 200 && d.reservation.generation == 0);
  r.key_kind = pg_key_internal;
  pg_enforcer_check(e, &r, &d);
  CHECK(d.status == 200 && d.reservation.generation == 0);
  CHECK(Usage(e, "fresh", "monthly") == 1);
  r = Request("fresh");
  r.model = "small-1";
  r.model_len = 7;
  pg_enforcer_peek(e, &r, &d);
  CHECK(d.status == 200);
  r.model = "large-1";
  pg_enforcer_peek(e, &r, &d);
  CHECK(d.status == 403 && d.deny == pg_deny_model_not_allowed);
  r.byok = 1;
  pg_enforcer_peek(e, &r, &d);
  CHECK(d.status == 200);
  r = Request("fresh");
  const char* features[] = {"tools"};
  const size_t features_lens[] = {5};
  r.features = features;
  r.features_lens = features_lens;
  r.num_features = 1;
  pg_enforcer_check(e, &r, &d);
  CHECK(d.status == 402 && d.deny == pg_deny_feature_not_in_plan);
  CHECK(StrEq(d.reason, d.reason_len, "feature_not_in_plan"));
  CHECK(StrEq(d.upgrade_plan, d.upgrade_plan_len, "pro"));
  r.features_lens = NULL; /* NUL-terminated features */
  pg_enforcer_peek(e, &r, &d);
  CHECK(d.deny == pg_deny_feature_not_in_plan);
  r = Request("beta");
  r.features = features;
  r.features_lens = features_lens;
  r.num_features = 1;
  pg_enforcer_peek(e, &r, &d);
  CHECK(d.status == 200);
  /* More features than fit on the stack take the heap path, same answer. */
  const char* many[40];
  size_t many_lens[40];
  for (int i = 0; i < 40; ++i) {
    many[i] = "tools";
    many_lens[i] = 5;
  }
  r.features = many;
  r.features_lens = many_lens;
  r.num_features = 40;
  pg_enforcer_peek(e, &r, &d);
  CHECK(d.status == 200);
  many[39] = "sso";
  many_lens[39] = 3;
  pg_enforcer_peek(e, &r, &d);
  CHECK(d.status == 402 && d.deny == pg_deny_feature_not_in_plan);
  r = Request("nobody");
  pg_enforcer_check(e, &r, &d);
  CHECK(d.status == 403 && d.deny == pg_deny_unknown_account);
  CHECK(StrEq(d.reason, d.reason_len, "unknown_account"));
}

static void TestMetersWalletGauges(pg_enforcer_t* e) {
  StartPhase("meters: estimates settled by commit's actual amounts");
  const int tokens = pg_enforcer_meter_id(e, "tokens", 6);
  CHECK(tokens == 1);
  CHECK(pg_enforcer_meter_id(e, "requests", 8) == 0);
  CHECK(pg_enforcer_meter_id(e, "tokensX", 6) == 1); /* length honoured */
  CHECK(pg_enforcer_meter_id(e, "nope", 4) == -1);
  pg_check_request_t r = Request("beta");
  pg_meter_amount_t estimate = {tokens, 600};
  r.amounts = &estimate;
  r.num_amounts = 1;
  pg_decision_t d;
  pg_enforcer_check(e, &r, &d);
  CHECK(d.status == 200);
  CHECK(Usage(e, "beta", "tokens") == 600);
  pg_meter_amount_t actual = {tokens, 100};
  pg_commit_request_t c;
  memset(&c, 0, sizeof(c));
  c.reservation = d.reservation;
  c.actual = &actual;
  c.num_actual = 1;
  CHECK(pg_enforcer_commit(e, &c) == pg_commit_applied);
  CHECK(Usage(e, "beta", "tokens") == 100);
  estimate.amount = 800;
  pg_enforcer_check(e, &r, &d);
  CHECK(d.status == 200);
  CHECK(Commit(e, &d, 0) == pg_commit_applied);
  estimate.amount = 200;
  pg_enforcer_check(e, &r, &d);
  CHECK(d.status == 429);
  CHECK(StrEq(d.reason, d.reason_len, "rate_limited"));
  CHECK(StrEq(d.limit_id, d.limit_id_len, "tokens"));
  CHECK(d.limit_window == pg_window_day);
  CHECK(d.limit_window_count == 1);
  CHECK(d.used == 900);
  CHECK(d.remaining == 100);

  StartPhase("a key-scope limit, its message, the clock callback");
  r = Request("gamma");
  r.key_id = "k1";
  r.key_id_len = 2;
  r.now_ms = 0; /* read the callback clock */
  sim_now_ms = NOW + 30500;
  clock_calls = 0;
  for (int i = 0; i < 3; ++i) {
    pg_enforcer_check(e, &r, &d);
    CHECK(d.status == 200);
    CHECK(Commit(e, &d, 0) == pg_commit_applied);
  }
  pg_enforcer_check(e, &r, &d);
  CHECK(clock_calls >= 4);
  CHECK(d.status == 429);
  CHECK(d.limit_scope == pg_scope_key);
  CHECK(d.limit_window == pg_window_minute);
  CHECK(StrEq(d.limit_id, d.limit_id_len, "per_key"));
  CHECK(StrEq(d.message, d.message_len, "Three a minute per key."));
  CHECK(d.window_start_ms == NOW);
  CHECK(d.reset_ms == NOW + 60000);
  r.key_id = "k2"; /* another key has its own counter */
  pg_enforcer_check(e, &r, &d);
  CHECK(d.status == 200);
  CHECK(Commit(e, &d, 0) == pg_commit_applied);
  sim_now_ms = NOW;

  StartPhase("wallet: credit, debit, settle, insufficient, errors");
  char* err = NULL;
  CHECK(pg_enforcer_update_wallet(e, "beta", 4, 5000, &err) == 5000);
  CHECK_NO_ERROR(err);
  r = Request("beta");
  r.wallet_micros = 3000;
  pg_enforcer_check(e, &r, &d);
  CHECK(d.status == 200);
  memset(&c, 0, sizeof(c));
  c.reservation = d.reservation;
  c.set_wallet = 1;
  c.wallet_micros = 1000;
  CHECK(pg_enforcer_commit(e, &c) == pg_commit_applied);
  char* json = pg_enforcer_usage_json(e, "beta", 4, NOW, NULL, &err);
  CHECK_NO_ERROR(err);
  REQUIRE(json != NULL);
  CHECK(strstr(json, "\"wallet_micros\":4000") != NULL);
  pg_free(json);
  r.wallet_micros = 10000;
  pg_enforcer_check(e, &r, &d);
  CHECK(d.status == 402 && d.deny == pg_deny_insufficient_credit);
  CHECK(pg_enforcer_update_wallet(e, "beta", 4, -10000, &err) == 0);
  REQUIRE(err != NULL);
  pg_free(err);
  err = NULL;
  CHECK(pg_enforcer_update_wallet(e, "nobody", 6, 5, &err) == 0);
  CHECK_ERROR(err, "nobody");
  CHECK(pg_enforcer_update_wallet(e, "beta", 4, 0, &err) == 4000);
  CHECK_NO_ERROR(err);
  /* Local mode: the credit id is ignored, the credit applies. */
  CHECK(pg_enforcer_credit_wallet(e, "beta", 4, 500, "c-1", 3, &err) == 4500);
  CHECK_NO_ERROR(err);
  CHECK(pg_enforcer_credit_wallet(e, "nobody", 6, 5, "c-2", 3, &err) == 0);
  CHECK_ERROR(err, "nobody");
  CHECK(pg_enforcer_credit_wallet(e, "beta", 4, -500, "c-3", 3, &err) == 4000);
  CHECK_NO_ERROR(err);

  StartPhase("check_create: gauges at their cap");
  pg_enforcer_check_create(e, "acme", 4, "projects", 8, 1, &d);
  CHECK(d.status == 200);
  pg_enforcer_check_create(e, "acme", 4, "projects", 8, 2, &d);
  CHECK(d.status == 402 && d.deny == pg_deny_resource_limit);
  CHECK(StrEq(d.reason, d.reason_len, "resource_limit_reached"));
  pg_enforcer_check_create(e, "nobody", 6, "projects", 8, 0, &d);
  CHECK(d.status == 403);
}

static void TestHttp(const pg_decision_t* denial) {
  StartPhase("http: status, header lines and body of a denial");
  char headers[PG_HTTP_HEADERS_SIZE];
  char body[PG_HTTP_BODY_SIZE];
  size_t headers_len = 1234, body_len = 1234;
  char* err = NULL;
  int status =
      pg_http_render(denial, NOW, 0, headers, sizeof(headers), &headers_len,
                     body, sizeof(body), &body_len, &err);
  CHECK_NO_ERROR(err);
  CHECK(status == 402);
  CHECK(headers_len == strlen(headers));
  CHECK(body_len == strlen(body));
  /* Retry-After is first; the seconds to Feb 1 from NOW. */
  char want[64];
  snprintf(want, sizeof(want), "Retry-After: %lld\r\n",
           (long long)((FEB1 - NOW) / 1000));
  CHECK(strncmp(headers, want, strlen(want)) == 0);
  CHECK(strstr(headers, "X-RateLimit-Limit: 12\r\n") != NULL);
  CHECK(strstr(headers, "X-RateLimit-Remaining: 0\r\n") != NULL);
  CHECK(strstr(headers, "X-RateLimit-Reset: 2674800\r\n") != NULL);
  CHECK(strstr(headers, "RateLimit-Policy: \"monthly\";q=12;") != NULL);
  CHECK(strstr(headers, "Content-Type: application/json\r\n") != NULL);
  CHECK(headers_len >= 2 && memcmp(headers + headers_len - 2, "\r\n", 2) == 0);
  CHECK(strstr(body, "\"type\":\"insufficient_quota\"") != NULL);
  CHECK(strstr(body, "\"code\":\"billing_limit_reached\"") != NULL);
  CHECK(body[0] == '{' && body[body_len - 1] == '}');
  const size_t full_headers = headers_len;

  /* now_ms 0 is the system clock (December 2026 or later: past the
     window's end, so the reset is 0 seconds away). */
  char later[PG_HTTP_HEADERS_SIZE];
  size_t later_len = 0;
  status = pg_http_render(denial, 0, 0, later, sizeof(later), &later_len, body,
                          sizeof(body), &body_len, &err);
  CHECK_NO_ERROR(err);
  CHECK(status == 402);
  CHECK(strstr(later, "X-RateLimit-Reset: 0\r\n") != NULL);

  StartPhase("http: omitted families");
  status = pg_http_render(
      denial, NOW,
      pg_http_omit_ietf | pg_http_omit_x_ratelimit | pg_http_omit_content_type,
      headers, sizeof(headers), &headers_len, body, sizeof(body), &body_len,
      &err);
  CHECK_NO_ERROR(err);
  CHECK(status == 402);
  CHECK(strcmp(headers, want) == 0); /* only Retry-After is left */
  CHECK(body_len > 0);

  StartPhase("http: small buffers and bad fields are errors, not overflows");
  char small[8];
  memset(small, 'x', sizeof(small));
  status = pg_http_render(denial, NOW, 0, small, sizeof(small), &headers_len,
                          body, sizeof(body), &body_len, &err);
  CHECK(status == 0);
  CHECK_ERROR(err, "headers buffer too small");
  CHECK(headers_len == full_headers); /* what would be needed */
  CHECK(small[0] == '\0' && small[7] == 'x');
  status = pg_http_render(denial, NOW, 0, headers, sizeof(headers),
                          &headers_len, small, sizeof(small), &body_len, &err);
  CHECK(status == 0);
  CHECK_ERROR(err, "body buffer too small");
  CHECK(body_len > sizeof(small));
  status = pg_http_render(denial, NOW, 0, NULL, 0, &headers_len, NULL, 0,
                          &body_len, &err);
  CHECK(status == 0);
  CHECK_ERROR(err, "too small");
  pg_decision_t bad = *denial;
  bad.limit_window = 17;
  status = pg_http_render(&bad, NOW, 0, headers, sizeof(headers), &headers_len,
                          body, sizeof(body), &body_len, &err);
  CHECK(status == 0);
  CHECK_ERROR(err, "limit_window");
  bad = *denial;
  bad.deny = -3;
  status = pg_http_render(&bad, NOW, 0, headers, sizeof(headers), &headers_len,
                          body, sizeof(body), &body_len, &err);
  CHECK_ERROR(err, "deny");
  bad = *denial;
  bad.limit_scope = 4;
  status = pg_http_render(&bad, NOW, 0, headers, sizeof(headers), &headers_len,
                          body, sizeof(body), &body_len, &err);
  CHECK_ERROR(err, "limit_scope");
  bad = *denial;
  bad.limit_mode = 2;
  status = pg_http_render(&bad, NOW, 0, headers, sizeof(headers), &headers_len,
                          body, sizeof(body), &body_len, &err);
  CHECK_ERROR(err, "limit_mode");
  /* A status that is no HTTP status renders as 500. */
  bad = *denial;
  bad.status = 9999;
  status = pg_http_render(&bad, NOW, 0, headers, sizeof(headers), &headers_len,
                          body, sizeof(body), &body_len, &err);
  CHECK_NO_ERROR(err);
  CHECK(status == 500);

  StartPhase("http: an admitted decision has no body");
  pg_decision_t ok;
  memset(&ok, 0, sizeof(ok));
  ok.status = 200;
  status = pg_http_render(&ok, NOW, 0, headers, sizeof(headers), &headers_len,
                          body, sizeof(body), &body_len, &err);
  CHECK_NO_ERROR(err);
  CHECK(status == 200);
  CHECK(body_len == 0 && body[0] == '\0');
  CHECK(headers_len == 0);
}

static void TestReloadStatsMaintain(pg_enforcer_t* e, pg_catalog_t* catalog,
                                    Events* events) {
  StartPhase("events: soft nudge and hard cap, once each, to the sink");
  const size_t delivered = pg_enforcer_deliver_events(e, NOW);
  CHECK(delivered >= 2);
  CHECK(events->soft_nudge == 1);
  CHECK(events->hard_cap == 1);
  pg_enforcer_maintain(e, NOW);
  CHECK(events->soft_nudge == 1 && events->hard_cap == 1);
  pg_enforcer_stats_t stats;
  pg_enforcer_stats(e, &stats);
  CHECK(stats.events_delivered == delivered);
  CHECK(stats.events_dropped == 0);

  StartPhase("maintain refunds a reservation never committed");
  pg_check_request_t r = Request("fresh");
  pg_decision_t d;
  const long before = Usage(e, "fresh", "monthly");
  pg_enforcer_check(e, &r, &d);
  CHECK(d.status == 200);
  CHECK(Usage(e, "fresh", "monthly") == before + 1);
  pg_enforcer_stats(e, &stats);
  CHECK(stats.reservations_pending == 1);
  CHECK(stats.subjects >= 8);
  pg_enforcer_maintain(e, NOW + 5000); /* past the 1 s reservation TTL */
  pg_enforcer_stats(e, &stats);
  CHECK(stats.reservations_pending == 0);
  CHECK(stats.reservations_expired == 1);
  CHECK(Usage(e, "fresh", "monthly") == before);
  CHECK(Commit(e, &d, 0) == pg_commit_expired);

  StartPhase("prometheus text of the enforcer");
  size_t len = 0;
  char* text = pg_enforcer_prometheus_text(e, &len);
  REQUIRE(text != NULL);
  CHECK(len == strlen(text));
  CHECK(strstr(text, "# TYPE plangate_subjects gauge\n") != NULL);
  char want[64];
  snprintf(want, sizeof(want), "\nplangate_subjects %llu\n",
           (unsigned long long)stats.subjects);
  CHECK(strstr(text, want) != NULL);
  CHECK(strstr(text, "\nplangate_reservations_expired_total 1\n") != NULL);
  pg_free(text);

  StartPhase("reload: errors keep the running catalog; counts carry over");
  char* err = NULL;
  static const char kNoFree[] =
      "{\"version\": 1, \"plans\": [{\"id\": \"pro\", \"limits\": []}]}";
  pg_catalog_t* no_free = pg_catalog_parse(kNoFree, strlen(kNoFree), &err);
  CHECK_NO_ERROR(err);
  REQUIRE(no_free != NULL);
  pg_enforcer_reload_catalog(e, no_free, &err);
  CHECK_ERROR(err, "free");
  pg_catalog_destroy(no_free);
  r = Request("acme");
  pg_enforcer_peek(e, &r, &d);
  CHECK(d.status == 402);
  pg_catalog_t* bigger =
      pg_catalog_parse(kCatalogBigger, strlen(kCatalogBigger), &err);
  CHECK_NO_ERROR(err);
  REQUIRE(bigger != NULL);
  pg_enforcer_reload_catalog(e, bigger, &err);
  CHECK_NO_ERROR(err);
  pg_catalog_destroy(bigger); /* the enforcer holds its own reference */
  pg_enforcer_check(e, &r, &d);
  CHECK(d.status == 200);
  CHECK(d.used == 12 && d.hard_limit == 24);
  CHECK(Commit(e, &d, 0) == pg_commit_applied);
  /* Decisions made before the reload keep valid strings. */
  CHECK(StrEq(d.limit_id, d.limit_id_len, "monthly"));
  /* Back to the first catalog. */
  pg_enforcer_reload_catalog(e, catalog, &err);
  CHECK_NO_ERROR(err);

  StartPhase("usage report JSON; an unknown account is an error");
  len = 0;
  char* json = pg_enforcer_usage_json(e, "acme", 4, NOW, &len, &err);
  CHECK_NO_ERROR(err);
  REQUIRE(json != NULL);
  CHECK(len == strlen(json));
  CHECK(strncmp(json, "{\"account\":\"acme\",\"plan\":\"free\"", 31) == 0);
  CHECK(strstr(json, "\"period_start\":\"2026-01-01T00:00:00Z\"") != NULL);
  CHECK(UsedIn(json, "monthly") == 13);
  CHECK(strstr(json, "\"projects\":{\"limit\":2}") != NULL);
  pg_free(json);
  len = 99;
  CHECK(pg_enforcer_usage_json(e, "nobody", 6, NOW, &len, &err) == NULL);
  CHECK(len == 0);
  CHECK_ERROR(err, "nobody");
}

/* The Redis TLS and Sentinel options: checked against the URL at start;
   a CA file that cannot be loaded fails every connection attempt, named in
   the sync's last error. */
static void TestSyncRedisOptions(pg_enforcer_t* e) {
  char* err = NULL;
  pg_sync_options_t* t = pg_sync_options_create();
  REQUIRE(t != NULL);
  pg_sync_options_set_connect_timeout_ms(t, 100);
  pg_sync_options_set_redis_tls_ca_file(t, "/nonexistent/ca.pem", 19);
  CHECK(pg_sync_start(e, "redis://127.0.0.1:1", t, &err) == NULL);
  CHECK_ERROR(err, "the URL must be rediss://");
  pg_sync_options_set_redis_tls_cert_file(t, "client.pem", 10);
  CHECK(pg_sync_start(e, "rediss://127.0.0.1:1", t, &err) == NULL);
  CHECK_ERROR(err, "go together");
  pg_sync_options_set_redis_tls_key_file(t, "client.key", 10);
  pg_sync_options_set_redis_tls_ca_dir(t, "/nonexistent", 12);
  pg_sync_options_set_redis_tls_server_name(t, "redis.example", 13);
  pg_sync_options_set_redis_tls_verify(t, 1);
  pg_sync_options_set_redis_sentinel_password(t, "pw", 2);
  CHECK(pg_sync_start(e, "rediss://127.0.0.1:1", t, &err) == NULL);
  CHECK_ERROR(err, "the URL must be redis-sentinel://");
  pg_sync_options_set_redis_sentinel_password(t, NULL, 0);
  pg_sync_t* s = pg_sync_start(e, "rediss://127.0.0.1:1", t, &err);
  CHECK_NO_ERROR(err);
  REQUIRE(s != NULL);
  pg_sync_options_destroy(t);
  char* last = NULL;
  for (int i = 0; i < 500; ++i) { /* up to 5 s on a loaded machine */
    pg_sync_flush(s, 10, &err);
    pg_free(err);
    err = NULL;
    last = pg_sync_last_error(s);
    REQUIRE(last != NULL);
    if (strstr(last, "cannot load the CA") != NULL) break;
    pg_free(last);
    last = NULL;
  }
  REQUIRE(last != NULL);
  CHECK(strstr(last, "/nonexistent/ca.pem") != NULL);
  pg_free(last);
  pg_sync_destroy(s);
  /* verify off alone is a TLS option too. */
  t = pg_sync_options_create();
  REQUIRE(t != NULL);
  pg_sync_options_set_redis_tls_verify(t, 0);
  CHECK(pg_sync_start(e, "redis://127.0.0.1:1", t, &err) == NULL);
  CHECK_ERROR(err, "the URL must be rediss://");
  pg_sync_options_destroy(t);
}

static void TestSyncWithoutRedis(pg_catalog_t* catalog) {
  StartPhase("sync: bad URL and options, unreachable Redis, detach");
  char* err = NULL;
  pg_enforcer_t* e = pg_enforcer_create(catalog, NULL, &err);
  CHECK_NO_ERROR(err);
  REQUIRE(e != NULL);
  CHECK(pg_sync_start(e, "http://x", NULL, &err) == NULL);
  CHECK_ERROR(err, "redis://");
  pg_sync_options_t* o = pg_sync_options_create();
  REQUIRE(o != NULL);
  pg_sync_options_set_max_batch(o, 0);
  CHECK(pg_sync_start(e, "redis://127.0.0.1:1", o, &err) == NULL);
  CHECK_ERROR(err, "max_batch");
  pg_sync_options_set_max_batch(o, 64);
  pg_sync_options_set_connect_timeout_ms(o, 100);
  pg_sync_options_set_command_timeout_ms(o, 100);
  pg_sync_options_set_instance_id(o, "c-test-down", 11);
  /* Admit on the local view before the first reply (never comes). */
  pg_sync_options_set_cold_start_share(o, 1.0);
  TestSyncRedisOptions(e);
  /* Port 1 is closed: starting is fine, the sync keeps reconnecting. */
  pg_sync_t* s = pg_sync_start(e, "redis://127.0.0.1:1", o, &err);
  CHECK_NO_ERROR(err);
  REQUIRE(s != NULL);
  pg_sync_options_destroy(o);
  CHECK(strcmp(pg_sync_instance_id(s), "c-test-down") == 0);
  CHECK(pg_sync_start(e, "redis://127.0.0.1:1", NULL, &err) == NULL);
  CHECK_ERROR(err, "already attached");
  Upsert(e, "acme", "free");
  pg_check_request_t r = Request("acme");
  pg_decision_t d;
  pg_enforcer_check(e, &r, &d);
  CHECK(d.status == 200);
  pg_sync_flush(s, 200, &err);
  REQUIRE(err != NULL); /* nothing can be acknowledged */
  pg_free(err);
  err = NULL;
  pg_sync_stats_t stats;
  pg_sync_stats(s, &stats);
  CHECK(stats.connected == 0);
  CHECK(stats.rounds == 0);
  CHECK(stats.last_sync_age_ms == -1);
  char* last = pg_sync_last_error(s);
  REQUIRE(last != NULL);
  CHECK(strlen(last) > 0);
  pg_free(last);
  /* Destroying the enforcer first stops the sync; its handle reports. */
  pg_enforcer_destroy(e);
  pg_sync_flush(s, 10, &err);
  CHECK_ERROR(err, "sync stopped");
  pg_sync_drain(s, 10, &err);
  CHECK_ERROR(err, "sync stopped");
  pg_sync_stats(s, &stats);
  CHECK(stats.connected == 0 && stats.last_sync_age_ms == -1);
  char* text = pg_sync_prometheus_text(s, NULL);
  REQUIRE(text != NULL);
  CHECK(text[0] == '\0');
  pg_free(text);
  last = pg_sync_last_error(s);
  REQUIRE(last != NULL);
  CHECK(strstr(last, "sync stopped") != NULL);
  pg_free(last);
  CHECK(strcmp(pg_sync_instance_id(s), "") == 0);
  pg_sync_destroy(s);
}

static pg_sync_t* StartSync(pg_enforcer_t* e, const char* url,
                            const char* prefix, const char* id) {
  char* err = NULL;
  pg_sync_options_t* o = pg_sync_options_create();
  REQUIRE(o != NULL);
  pg_sync_options_set_key_prefix(o, prefix, strlen(prefix));
  pg_sync_options_set_instance_id(o, id, strlen(id));
  pg_sync_options_set_flush_interval_ms(o, 5);
  pg_sync_options_set_refresh_interval_ms(o, 20);
  pg_sync_options_set_max_batch(o, 512);
  pg_sync_options_set_leases(o, 1);
  pg_sync_options_set_expected_instances(o, 2);
  pg_sync_options_set_min_round_units(o, 1);
  pg_sync_options_set_cold_start_share(o, 0.5);
  pg_sync_options_set_lease_ttl_ms(o, 5000);
  pg_sync_options_set_unavailable_after_ms(o, 2000);
  pg_sync_options_set_connect_timeout_ms(o, 1000);
  pg_sync_options_set_command_timeout_ms(o, 1000);
  pg_sync_t* s = pg_sync_start(e, url, o, &err);
  pg_sync_options_destroy(o);
  CHECK_NO_ERROR(err);
  REQUIRE(s != NULL);
  return s;
}

/* Far from its cap, so that counts sync without leases. */
static const char kSyncCatalog[] =
    "{\"version\": 1, \"plans\": [{\"id\": \"free\", \"models\": "
    "[\"small-*\"], \"limits\": [{\"id\": \"monthly\", \"limit\": 1000000}]}]}";

static int TestSync(void) {
  const char* port = getenv("PLANGATE_TEST_REDIS_PORT");
  if (port == NULL || port[0] == '\0') {
    fprintf(stderr, "SKIP: PLANGATE_TEST_REDIS_PORT is not set\n");
    return 77;
  }
  StartPhase("sync: two enforcers share counts through Redis");
  char url[64], prefix[64];
  snprintf(url, sizeof(url), "redis://127.0.0.1:%s", port);
  snprintf(prefix, sizeof(prefix), "ctest%ld-%ld", (long)getpid(),
           (long)time(NULL));
  char* err = NULL;
  pg_catalog_t* catalog =
      pg_catalog_parse(kSyncCatalog, strlen(kSyncCatalog), &err);
  CHECK_NO_ERROR(err);
  REQUIRE(catalog != NULL);
  pg_enforcer_t* a = pg_enforcer_create(catalog, NULL, &err);
  CHECK_NO_ERROR(err);
  pg_enforcer_t* b = pg_enforcer_create(catalog, NULL, &err);
  CHECK_NO_ERROR(err);
  REQUIRE(a != NULL && b != NULL);
  pg_sync_t* sa = StartSync(a, url, prefix, "c-test-a");
  pg_sync_t* sb = StartSync(b, url, prefix, "c-test-b");
  Upsert(a, "acme", "free");
  Upsert(b, "acme", "free");
  pg_sync_flush(sa, 5000, &err);
  CHECK_NO_ERROR(err);
  pg_sync_flush(sb, 5000, &err);
  CHECK_NO_ERROR(err);

  /* Real time: Redis keys expire some weeks after their window ends. */
  pg_check_request_t r = Request("acme");
  r.now_ms = 0;
  pg_decision_t d;
  for (int i = 0; i < 4; ++i) {
    pg_enforcer_check(a, &r, &d);
    if (d.status != 200) {
      fprintf(stderr, "check %d on a: %d %.*s\n", i, d.status,
              (int)d.reason_len, d.reason);
    }
    CHECK(d.status == 200);
    CHECK(Commit(a, &d, 0) == pg_commit_applied);
  }
  pg_sync_flush(sa, 5000, &err);
  CHECK_NO_ERROR(err);
  /* b sees a's 4 within a few refresh rounds. */
  long seen = -1;
  for (int i = 0; i < 200 && seen != 4; ++i) {
    pg_sync_flush(sb, 5000, &err);
    CHECK_NO_ERROR(err);
    seen = UsageAt(b, "acme", "monthly", 0);
    if (seen != 4) {
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  CHECK(seen == 4);
  /* b's own request adds to the shared count: a sees 5. */
  pg_enforcer_check(b, &r, &d);
  CHECK(d.status == 200);
  CHECK(d.used >= 4 || !d.has_limit);
  CHECK(Commit(b, &d, 0) == pg_commit_applied);
  pg_sync_flush(sb, 5000, &err);
  CHECK_NO_ERROR(err);
  seen = -1;
  for (int i = 0; i < 200 && seen != 5; ++i) {
    pg_sync_flush(sa, 5000, &err);
    CHECK_NO_ERROR(err);
    seen = UsageAt(a, "acme", "monthly", 0);
    if (seen != 5) {
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  CHECK(seen == 5);

  StartPhase("sync: stats, prometheus text, instance id, last error");
  pg_sync_stats_t stats;
  pg_sync_stats(sa, &stats);
  CHECK(stats.connected == 1);
  CHECK(stats.redis_up == 1);
  CHECK(stats.rounds > 0 && stats.round_trips > 0 && stats.commands > 0);
  CHECK(stats.units_flushed >= 4);
  CHECK(stats.counters > 0);
  CHECK(stats.last_sync_age_ms >= 0);
  CHECK(stats.pending == 0);
  size_t len = 0;
  char* text = pg_sync_prometheus_text(sa, &len);
  REQUIRE(text != NULL);
  CHECK(len == strlen(text));
  CHECK(strstr(text, "\nplangate_sync_connected 1\n") != NULL);
  CHECK(strstr(text, "\nplangate_subjects ") != NULL);
  pg_free(text);
  CHECK(strcmp(pg_sync_instance_id(sa), "c-test-a") == 0);
  CHECK(strcmp(pg_sync_instance_id(sb), "c-test-b") == 0);
  char* last = pg_sync_last_error(sa);
  REQUIRE(last != NULL);
  pg_free(last);

  StartPhase("sync: drain for shutdown");
  pg_sync_drain(sa, 5000, &err);
  CHECK_NO_ERROR(err);
  pg_sync_drain(sb, 5000, &err);
  CHECK_NO_ERROR(err);
  pg_sync_stats(sa, &stats);
  CHECK(stats.pending == 0);
  pg_sync_destroy(sa);
  pg_sync_destroy(sb);
  pg_enforcer_destroy(a);
  pg_enforcer_destroy(b);
  pg_catalog_destroy(catalog);
  return 0;
}

int main(int argc, char** argv) {
  const int sync = argc > 1 && strcmp(argv[1], "sync") == 0;
  int rc = 0;
  TestLibrary();
  pg_catalog_t* catalog = TestCatalog();
  if (sync) {
    rc = TestSync();
  } else {
    Events events = {0, 0, 0};
    pg_enforcer_t* e = TestCreate(catalog, &events);
    pg_decision_t denial;
    TestAccounts(e);
    TestCheckCommit(e, &denial);
    TestMetersWalletGauges(e);
    TestHttp(&denial);
    TestReloadStatsMaintain(e, catalog, &events);
    pg_enforcer_destroy(e);
    TestSyncWithoutRedis(catalog);
  }
  pg_catalog_destroy(catalog);
  if (failures > 0) {
    fprintf(stderr, "FAIL: %d checks failed\n", failures);
    return 1;
  }
  if (rc == 77) return 77;
  fprintf(stderr, "PASS\n");
  return 0;
}
