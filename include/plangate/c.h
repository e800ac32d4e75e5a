/* Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.

   c.h: plangate's C API, a stable ABI over the C++ Enforcer.

   For hosts that cannot link C++ built with the same compiler and standard
   library: C, LuaJIT (FFI), Python (ctypes), Go (cgo), Rust. The shared
   library libplangate_c.so.<major> exports only the pg_ symbols declared
   here; its C++ dependencies are linked in or resolved at load time.

     char* err = NULL;
     pg_catalog_t* catalog = pg_catalog_load_file("plans.json", &err);
     if (err != NULL) { fprintf(stderr, "%s\n", err); pg_free(err); ... }
     pg_enforcer_t* enforcer = pg_enforcer_create(catalog, NULL, &err);
     pg_catalog_destroy(catalog);  // the enforcer keeps its own reference

     pg_account_t account = {0};
     account.account_id = "acme";  account.account_id_len = 4;
     account.plan_id = "pro";      account.plan_id_len = 3;
     pg_enforcer_upsert_account(enforcer, &account, &err);

     pg_check_request_t req = {0};
     req.account_id = "acme";  req.account_id_len = 4;
     pg_decision_t d;
     pg_enforcer_check(enforcer, &req, &d);
     if (!pg_decision_admitted(&d)) { ...render with pg_http_render... }
     ... call upstream ...
     pg_commit_request_t commit = {0};
     commit.reservation = d.reservation;
     commit.failed = !upstream_ok;  // a failed call refunds
     pg_enforcer_commit(enforcer, &commit);

   docs/c-api.md has the whole picture. Conventions (leveldb's, adapted):

   (1) Handles are opaque struct pointers (pg_catalog_t, pg_enforcer_t,
   pg_sync_t and the option objects), created by a pg_*_create / _load /
   _start function and released by its pg_*_destroy. Requests, decisions
   and statistics are plain structs the caller owns, e.g. on the stack.

   (2) Strings are passed as a pointer and a length, and need not be
   NUL-terminated. In a struct, a string field `x` has its length in
   `x_len`; x == NULL means the empty string whatever x_len says. Strings
   are read during the call only. Strings the library returns in structs
   (pg_decision_t's reason, message...) are pointer and length too.

   (3) Errors are NUL-terminated C strings. Every function that can fail
   takes a "char** errptr" as its last argument. On entry *errptr is NULL
   or a string malloc()ed by this library. On success the function leaves
   *errptr unchanged; on failure it frees the old value and sets *errptr
   to a new malloc()ed message (release it with pg_free). Messages name
   what is wrong; catalog errors list every problem, one per line, as
   "<path>: <reason>" (e.g. "plans[2].limits[0].grace: must be in [0, 1]").

   (4) Booleans are unsigned char (0 false, anything else true).

   (5) Pointer arguments must be non-NULL unless the comment says NULL is
   allowed.

   (6) An all-zero struct is a valid request with the default of every
   field (`pg_check_request_t req = {0};`), so zero-filling FFI allocators
   (LuaJIT ffi.new, ctypes) produce defaults. Struct layouts are part of
   the ABI of one major version: fields are never reordered or removed
   within it; a new field means a new major version (a new SONAME).

   (7) Memory this library returns (error strings, JSON and Prometheus
   text) is malloc()ed; release it with pg_free, never with another
   allocator's free.

   (8) Bad input is a clear error or a 400 invalid_request decision, never
   a crash: out-of-range enum values, negative amounts and malformed JSON
   are reported. What C cannot check (a dangling pointer, a length longer
   than its buffer) is the caller's to get right.
*/

#ifndef PLANGATE_C_H_
#define PLANGATE_C_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PG_VERSION_MAJOR 0
#define PG_VERSION_MINOR 1
#define PG_VERSION_PATCH 0

/* Handles */

typedef struct pg_catalog_t pg_catalog_t;
typedef struct pg_enforcer_t pg_enforcer_t;
typedef struct pg_enforcer_options_t pg_enforcer_options_t;
typedef struct pg_sync_t pg_sync_t;
typedef struct pg_sync_options_t pg_sync_options_t;

/* Enumerations (plangate/catalog.h, decision.h, enforcer.h) */

/* What a counter belongs to. */
enum {
  pg_scope_account = 0,
  pg_scope_project = 1,
  pg_scope_key = 2,
  pg_scope_user = 3
};

/* The unit of a limit's window. */
enum {
  pg_window_billing_period = 0,
  pg_window_annual = 1,
  pg_window_day = 2,
  pg_window_hour = 3,
  pg_window_minute = 4,
  pg_window_second = 5,
  pg_window_concurrent = 6 /* requests in flight, not a window of time */
};

enum { pg_mode_fixed = 0, pg_mode_sliding = 1 };

/* The kind of API key a request carries. Live keys are counted; test
   (sandbox) keys are checked against the plan's key kinds but never
   counted; internal traffic is never counted or limited. */
enum { pg_key_live = 0, pg_key_test = 1, pg_key_internal = 2 };

/* Why a request was denied (pg_decision_t.deny). */
enum {
  pg_deny_none = 0,
  pg_deny_limit = 1,                /* a limit's hard cap */
  pg_deny_unknown_account = 2,      /* 403 */
  pg_deny_unknown_plan = 3,         /* 403 */
  pg_deny_invalid_request = 4,      /* 400 */
  pg_deny_capacity = 5,             /* 503: the counter cache is full */
  pg_deny_payment_required = 6,     /* 402: subscription past due */
  pg_deny_feature_not_in_plan = 7,  /* 402 */
  pg_deny_model_not_allowed = 8,    /* 403 */
  pg_deny_key_kind_not_allowed = 9, /* 403 */
  pg_deny_insufficient_credit = 10, /* 402 */
  pg_deny_resource_limit = 11,      /* 402: a gauge at its cap */
  pg_deny_syncing = 12,             /* 429: leased counter not synced yet */
  pg_deny_subject_limit = 13        /* 429: the account's most projects,
                                       keys and users are resident */
};

/* Warning bits of pg_decision_t.warnings. */
enum {
  pg_warn_soft_nudge = 1u << 0,    /* a limit reached its soft-nudge share */
  pg_warn_grace = 1u << 1,         /* past 100%, within the grace */
  pg_warn_shadow_denied = 1u << 2, /* a shadow limit would have denied */
  pg_warn_past_due = 1u << 3       /* subscription past due, in its grace */
};

/* What pg_enforcer_commit did. */
enum {
  pg_commit_applied = 0,   /* settled with the actual amounts */
  pg_commit_refunded = 1,  /* failed upstream: reserved amounts given back */
  pg_commit_duplicate = 2, /* already settled: no change */
  pg_commit_expired = 3,   /* expired and refunded before */
  pg_commit_invalid = 4,   /* not a reservation of this enforcer */
  pg_commit_empty = 5      /* an empty reservation: nothing to do */
};

/* pg_account_t.state */
enum {
  pg_subscription_active = 0,
  pg_subscription_past_due = 1, /* admitted with pg_warn_past_due until
                                   past_due_deadline_ms, then 402 */
  pg_subscription_blocked = 2   /* 402 payment_required */
};

/* pg_threshold_event_t.kind */
enum { pg_threshold_soft_nudge = 0, pg_threshold_hard_cap = 1 };

/* Plain structs */

/* An amount of one meter; `meter` comes from pg_enforcer_meter_id. */
typedef struct pg_meter_amount_t {
  int meter;
  int64_t amount;
} pg_meter_amount_t;

/* A handle on what a check reserved; pass it to pg_enforcer_commit once.
   generation == 0 is the empty reservation. */
typedef struct pg_reservation_t {
  uint32_t slot;
  uint32_t generation;
} pg_reservation_t;

/* One request to decide (plangate::CheckRequest). All-zero: a live,
   managed request of the account's default model, amount 1 of "requests",
   at the enforcer's clock. */
typedef struct pg_check_request_t {
  const char* account_id;
  size_t account_id_len;
  /* Narrower scopes; a limit of a scope applies only when its id is set. */
  const char* project_id;
  size_t project_id_len;
  const char* key_id;
  size_t key_id_len;
  const char* user_id;
  size_t user_id_len;
  int key_kind; /* pg_key_*; default live */
  /* On the customer's own provider key: no managed allowlist, no wallet
     debit, only limits that apply to BYOK or all traffic. */
  unsigned char byok;
  /* The model asked for; empty: the account's default model. */
  const char* model;
  size_t model_len;
  /* Features the request uses, each in the plan: features[i] of
     features_lens[i] bytes (features_lens NULL: each is NUL-terminated;
     features[i] NULL: empty). */
  const char* const* features;
  const size_t* features_lens;
  size_t num_features;
  /* Wallet debit in micro-units for a live managed request; 0 for none. */
  int64_t wallet_micros;
  /* Amounts by meter; "requests" is 1 unless listed. Estimates for meters
     known only afterwards (tokens) are settled by commit. */
  const pg_meter_amount_t* amounts;
  size_t num_amounts;
  /* The request's instant (Unix ms); 0 reads the enforcer's clock. */
  int64_t now_ms;
  /* The host's request id; a commit may name it again as a cross-check. */
  uint64_t request_id;
} pg_check_request_t;

/* What pg_enforcer_commit does with a reservation (plangate::
   CommitRequest). All-zero with a reservation: the upstream succeeded and
   every estimate stands. */
typedef struct pg_commit_request_t {
  pg_reservation_t reservation;
  /* Nonzero: the upstream call failed; everything reserved is refunded. */
  unsigned char failed;
  /* Actual amounts for meters that had estimates; a meter not listed keeps
     what the check reserved. */
  const pg_meter_amount_t* actual;
  size_t num_actual;
  /* Nonzero: wallet_micros is the actual wallet debit. Zero: keep what
     the check reserved. */
  unsigned char set_wallet;
  int64_t wallet_micros;
  /* When nonzero, must equal the check request's request_id. */
  uint64_t request_id;
} pg_commit_request_t;

/* More for a pending reservation while its request runs (plangate::
   ExtendRequest): a stream's tokens as they flow. */
typedef struct pg_extend_request_t {
  pg_reservation_t reservation;
  /* Amounts to add; a meter not listed adds nothing. */
  const pg_meter_amount_t* amounts;
  size_t num_amounts;
  int64_t now_ms; /* 0: the enforcer's clock */
} pg_extend_request_t;

/* A check's outcome (plangate::Decision). Being denied is a normal
   decision, never an error. String fields point into static storage or
   into a catalog the enforcer keeps alive: they stay valid until the
   enforcer is destroyed (reloads included), and are not NUL-terminated in
   general; use the _len. */
typedef struct pg_decision_t {
  int status;         /* 200 admitted; else 4xx/5xx */
  int deny;           /* pg_deny_* */
  const char* reason; /* machine-readable: "billing_limit_reached"... */
  size_t reason_len;
  const char* message; /* human-readable; may be empty */
  size_t message_len;
  uint32_t warnings;    /* pg_warn_* bits */
  unsigned char shadow; /* admitted only because of shadow mode */

  /* The deciding limit: the denying one, else the tightest warning one. */
  unsigned char has_limit;
  const char* limit_id;
  size_t limit_id_len;
  int limit_scope; /* pg_scope_* */
  const char* limit_meter;
  size_t limit_meter_len;
  int limit_window; /* pg_window_* */
  int limit_mode;   /* pg_mode_* */
  /* Whole units per window ("15m": pg_window_minute x 15); 1 for the
     named windows. pg_http_render takes 0 as 1. */
  int limit_window_count;
  int64_t limit_value;     /* the limit's nominal cap */
  int64_t hard_limit;      /* cap including grace */
  int64_t used;            /* usage before this request */
  int64_t remaining;       /* at least 0 */
  int64_t window_start_ms; /* when the deciding window began (Unix ms) */
  int64_t reset_ms;        /* when it ends (Unix ms) */
  int64_t retry_after_ms;  /* for denials: until the request may fit */

  /* For denials an upgrade fixes: the plan to suggest; may be empty. */
  const char* upgrade_plan;
  size_t upgrade_plan_len;

  pg_reservation_t reservation; /* set when admitted and counted */
} pg_decision_t;

/* 1 when the decision admits (status < 300), else 0. */
int pg_decision_admitted(const pg_decision_t* decision);

/* An account's own number for one limit of its plan, or a user's own
   number for a user-scope limit (plangate::LimitOverride). */
typedef struct pg_limit_override_t {
  const char* limit_id;
  size_t limit_id_len;
  const char* user_id; /* empty: the account's limit */
  size_t user_id_len;
  unsigned char unlimited;
  int64_t limit;
  unsigned char set_grace; /* nonzero: grace replaces the plan's grace */
  double grace;
} pg_limit_override_t;

/* Registers an account or changes it (plangate::AccountUpdate). */
typedef struct pg_account_t {
  const char* account_id;
  size_t account_id_len;
  const char* plan_id;
  size_t plan_id_len;
  /* The billing anchor: periods start on its day-of-month and time. */
  int64_t anchor_ms;
  int state; /* pg_subscription_* */
  int64_t past_due_deadline_ms;
  /* The plan the account moves to at the end of the period; may be empty. */
  const char* scheduled_plan_id;
  size_t scheduled_plan_id_len;
  /* The model used when a request names none. */
  const char* default_model;
  size_t default_model_len;
  const pg_limit_override_t* overrides;
  size_t num_overrides;
} pg_account_t;

/* Counters a host reads to watch an enforcer (plangate::EnforcerStats). */
typedef struct pg_enforcer_stats_t {
  uint64_t subjects;
  uint64_t subject_capacity;
  uint64_t reservations_pending;
  uint64_t reservations_expired;
  uint64_t subjects_reclaimed;
  uint64_t capacity_denials;
  uint64_t unreserved_admits;
  uint64_t events_delivered;
  uint64_t events_dropped;
} pg_enforcer_stats_t;

/* A usage threshold crossed (plangate::ThresholdEvent), passed to the
   event callback. Strings are valid during the callback only. */
typedef struct pg_threshold_event_t {
  int kind; /* pg_threshold_* */
  const char* account_id;
  size_t account_id_len;
  int scope;              /* pg_scope_* */
  const char* subject_id; /* project, key or user id; empty: the account */
  size_t subject_id_len;
  const char* limit_id;
  size_t limit_id_len;
  int64_t window_start_ms;
  int64_t window_end_ms;
  int64_t used;
  int64_t limit;
} pg_threshold_event_t;

/* plangate::SyncStats. */
typedef struct pg_sync_stats_t {
  unsigned char connected;
  unsigned char redis_up;
  uint64_t counters;
  uint64_t leased_counters;
  uint64_t rounds;
  uint64_t round_trips;
  uint64_t commands;
  uint64_t retries;
  uint64_t errors;
  uint64_t timeouts;
  uint64_t reconnects;
  uint64_t lease_grants;
  uint64_t lease_units;
  uint64_t lease_returns;
  uint64_t units_flushed;
  uint64_t events_won;
  uint64_t pending;
  uint64_t pending_dropped;
  uint64_t dirty_overflow;
  int64_t last_sync_age_ms; /* -1: never */
} pg_sync_stats_t;

/* Library */

/* "0.1.0"; static storage. */
const char* pg_version(void);
/* PG_VERSION_MAJOR * 10000 + PG_VERSION_MINOR * 100 + PG_VERSION_PATCH of
   the loaded library. */
int pg_version_number(void);

/* Releases memory this library returned (error strings, JSON, text).
   NULL is allowed. */
void pg_free(void* ptr);

/* Static names: "applied", "refunded"... for pg_commit_*; "unknown" for
   other values. */
const char* pg_commit_result_name(int result);
/* "unknown_account"... for pg_deny_*; "" for none and limit. */
const char* pg_deny_reason(int deny);

/* Catalog

   A validated, immutable plan catalog (docs/catalog.md). Thread safety:
   safe for concurrent access from multiple threads without external
   synchronization. An enforcer holds its own reference: a catalog may be
   destroyed as soon as the enforcers that use it are created. */

/* Parses and validates a JSON catalog. NULL and *errptr set on error. */
pg_catalog_t* pg_catalog_parse(const char* json, size_t json_len,
                               char** errptr);
/* Reads a NUL-terminated path and parses the file; the error names the
   path. */
pg_catalog_t* pg_catalog_load_file(const char* path, char** errptr);
/* NULL is allowed. */
void pg_catalog_destroy(pg_catalog_t* catalog);

size_t pg_catalog_num_plans(const pg_catalog_t* catalog);
/* The id of plan i (document order), NUL-terminated, valid while the
   catalog lives; NULL when i >= pg_catalog_num_plans. */
const char* pg_catalog_plan_id(const pg_catalog_t* catalog, size_t i);
size_t pg_catalog_num_meters(const pg_catalog_t* catalog);
/* Meter i's name ("requests" is 0), as pg_catalog_plan_id. */
const char* pg_catalog_meter(const pg_catalog_t* catalog, size_t i);
/* The plan given to accounts never registered; "" for none. */
const char* pg_catalog_default_plan(const pg_catalog_t* catalog);
/* What a call of `model` costs at the catalog's prices, in micro-units
   (plangate::CostMicros: prompt tokens, of which cached; completion tokens,
   of which reasoning), into *cost_micros. Returns 1 when the model has a
   price, 0 when it has none (no price table, or no entry matches; then
   *cost_micros is 0). */
int pg_catalog_cost_micros(const pg_catalog_t* catalog, const char* model,
                           size_t model_len, int64_t input_tokens,
                           int64_t cached_input_tokens, int64_t output_tokens,
                           int64_t reasoning_tokens, int64_t* cost_micros);

/* Enforcer options

   Read by pg_enforcer_create only; destroy them any time after. Not
   thread-safe: one thread sets them. Defaults as in plangate::
   EnforcerOptions. */

pg_enforcer_options_t* pg_enforcer_options_create(void);
void pg_enforcer_options_destroy(pg_enforcer_options_t* options);
/* An admitted reservation never committed is refunded this long after
   its check. Default 600000 (10 minutes). */
void pg_enforcer_options_set_reservation_ttl_ms(pg_enforcer_options_t* o,
                                                int64_t ms);
/* An idle subject may be reclaimed after this long. Default 600000. */
void pg_enforcer_options_set_idle_subject_ttl_ms(pg_enforcer_options_t* o,
                                                 int64_t ms);
/* Subjects resident at once (128 bytes each, allocated up front).
   Default 131072. */
void pg_enforcer_options_set_max_subjects(pg_enforcer_options_t* o, size_t n);
/* Reservations outstanding at once. Default 65536. */
void pg_enforcer_options_set_max_reservations(pg_enforcer_options_t* o,
                                              size_t n);
/* Threshold events buffered between deliveries. Default 4096. */
void pg_enforcer_options_set_event_queue_capacity(pg_enforcer_options_t* o,
                                                  size_t n);
/* The time source when a request's now_ms is 0: now_ms(state) returns
   Unix milliseconds. Called from any thread that checks, concurrently;
   must not call into the enforcer. NULL now_ms: the system clock (the
   default). `state` must outlive the enforcer. */
void pg_enforcer_options_set_clock(pg_enforcer_options_t* o,
                                   int64_t (*now_ms)(void* state), void* state);
/* Receives threshold events from pg_enforcer_maintain and
   pg_enforcer_deliver_events, one call at a time, on the thread that
   called them. It may call into the enforcer. NULL: no sink (default).
   `state` must outlive the enforcer. */
void pg_enforcer_options_set_event_sink(
    pg_enforcer_options_t* o,
    void (*on_threshold)(void* state, const pg_threshold_event_t* event),
    void* state);

/* Enforcer

   Thread safety: safe for concurrent access from multiple threads without
   external synchronization, except pg_enforcer_destroy, which must be the
   last call (after pg_sync_destroy of an attached sync). check, peek and
   commit take no lock, allocate nothing and make no system call once a
   subject has been seen; upsert, wallet, reload, usage and maintain are
   slow-path calls that may lock and allocate. */

/* NULL options: the defaults. InvalidArgument-style error for nonsensical
   options. */
pg_enforcer_t* pg_enforcer_create(const pg_catalog_t* catalog,
                                  const pg_enforcer_options_t* options,
                                  char** errptr);
/* NULL is allowed. */
void pg_enforcer_destroy(pg_enforcer_t* enforcer);

/* Replaces the catalog; on error the running one stays in force. Counters
   present in both keep their counts. */
void pg_enforcer_reload_catalog(pg_enforcer_t* enforcer,
                                const pg_catalog_t* catalog, char** errptr);

/* Registers an account or changes its plan, anchor or state; usage in the
   current windows is kept. Errors: unknown plan, bad override, invalid
   state value, table full. */
void pg_enforcer_upsert_account(pg_enforcer_t* enforcer,
                                const pg_account_t* account, char** errptr);

/* Adds credit_micros (may be negative) to the account's wallet; returns
   the new balance. Error (and 0) for an unknown account or a balance
   that would go below zero. */
int64_t pg_enforcer_update_wallet(pg_enforcer_t* enforcer,
                                  const char* account_id, size_t account_id_len,
                                  int64_t credit_micros, char** errptr);

/* pg_enforcer_update_wallet with a credit id: with wallets shared through
   Redis (a sync attached, share_wallets on) the credit is applied once per
   id, from whichever instance or tool, and an id is required; in local
   mode the id is ignored. With shared wallets the returned balance is an
   estimate (the balance last heard from Redis plus this credit). */
int64_t pg_enforcer_credit_wallet(pg_enforcer_t* enforcer,
                                  const char* account_id, size_t account_id_len,
                                  int64_t credit_micros, const char* credit_id,
                                  size_t credit_id_len, char** errptr);

/* Decides *request into *decision. When admitted, counts its amounts
   against every applicable limit; decision->reservation is then to be
   committed. Never fails: an invalid request is a 400 decision. */
void pg_enforcer_check(pg_enforcer_t* enforcer,
                       const pg_check_request_t* request,
                       pg_decision_t* decision);

/* A hint: the CPU starts bringing the record of the account
   (account_id, account_id_len bytes) into its caches, so that the check
   that follows does not wait on memory. Call it as soon as the account is
   known (when the headers arrive). No effect on any decision; no lock,
   no allocation, no system call. */
void pg_enforcer_prefetch(const pg_enforcer_t* enforcer, const char* account_id,
                          size_t account_id_len);

/* What pg_enforcer_check would decide now, without counting anything. */
void pg_enforcer_peek(const pg_enforcer_t* enforcer,
                      const pg_check_request_t* request,
                      pg_decision_t* decision);

/* Charges *request's amounts more against the limits the reservation
   counts in, as a check would (plangate::Enforcer::Extend): admitted, the
   reservation holds them too; denied (the limit's status and reason),
   nothing more is charged and the reservation is still to be committed.
   400 invalid_request for a reservation that is not pending. Not at the
   same time as a commit of the same reservation. */
void pg_enforcer_extend(pg_enforcer_t* enforcer,
                        const pg_extend_request_t* request,
                        pg_decision_t* decision);

/* Settles a reservation; returns pg_commit_*. Idempotent: a second commit
   of the same reservation is pg_commit_duplicate. */
int pg_enforcer_commit(pg_enforcer_t* enforcer,
                       const pg_commit_request_t* commit);

/* Whether the account may create one more of `gauge` (projects, keys...)
   when it has `current` now: admitted, or 402 resource_limit_reached. */
void pg_enforcer_check_create(const pg_enforcer_t* enforcer,
                              const char* account_id, size_t account_id_len,
                              const char* gauge, size_t gauge_len,
                              int64_t current, pg_decision_t* decision);

/* The index of a meter name for pg_meter_amount_t, or -1. */
int pg_enforcer_meter_id(const pg_enforcer_t* enforcer, const char* meter,
                         size_t meter_len);

/* The account's usage report as JSON (plangate::UsageReportJson): a
   malloc()ed NUL-terminated string of *json_len bytes (json_len may be
   NULL), or NULL and an error for an unknown account. now_ms 0: the
   clock. */
char* pg_enforcer_usage_json(const pg_enforcer_t* enforcer,
                             const char* account_id, size_t account_id_len,
                             int64_t now_ms, size_t* json_len, char** errptr);

/* Housekeeping, off the hot path, every second or so from any thread:
   refunds expired reservations, reclaims idle subjects, delivers events.
   now_ms 0: the clock. */
void pg_enforcer_maintain(pg_enforcer_t* enforcer, int64_t now_ms);
/* Hands buffered threshold events to the sink; returns how many. */
size_t pg_enforcer_deliver_events(pg_enforcer_t* enforcer, int64_t now_ms);

void pg_enforcer_stats(const pg_enforcer_t* enforcer,
                       pg_enforcer_stats_t* stats);
/* The enforcer's counters in Prometheus text exposition format (metric
   names plangate_*, as pg_sync_prometheus_text uses for them): malloc()ed,
   NUL-terminated, *text_len bytes (text_len may be NULL). */
char* pg_enforcer_prometheus_text(const pg_enforcer_t* enforcer,
                                  size_t* text_len);

/* HTTP rendering (plangate/http.h)

   A decision as an HTTP status, header lines and an OpenAI-style error
   body, written into caller buffers; nothing is allocated on success.
   Buffers of PG_HTTP_HEADERS_SIZE and PG_HTTP_BODY_SIZE bytes always
   suffice. Thread safety: a pure function of its arguments. */

#define PG_HTTP_HEADERS_SIZE 1536
#define PG_HTTP_BODY_SIZE 2056

/* Bits of pg_http_render's `omit`; 0 renders every family. */
enum {
  pg_http_omit_ietf = 1u << 0,        /* RateLimit-Policy, RateLimit */
  pg_http_omit_x_ratelimit = 1u << 1, /* X-RateLimit-{Limit,Remaining,Reset} */
  pg_http_omit_warning = 1u << 2,     /* X-Plangate-Warning, -Shadow */
  pg_http_omit_content_type = 1u << 3 /* Content-Type of a denial's body */
};

/* Renders *decision (as a check filled it) at now_ms, the request's
   instant, the origin of Retry-After and the reset seconds (0: the system
   clock). Returns the
   HTTP status (200 when admitted). Writes "Name: value\r\n" lines, in
   the order of plangate::HttpRendering::headers(), to headers and the
   JSON error body (empty when admitted) to body, each NUL-terminated,
   their lengths without the NUL to *headers_len and *body_len. On error
   (a buffer too small: *headers_len / *body_len then say how many bytes
   are needed, without the NUL; a decision field out of range) returns 0,
   writes empty strings where the buffers allow and sets *errptr. */
int pg_http_render(const pg_decision_t* decision, int64_t now_ms, uint32_t omit,
                   char* headers, size_t headers_size, size_t* headers_len,
                   char* body, size_t body_size, size_t* body_len,
                   char** errptr);

/* The OpenAI-style error type for a status: "insufficient_quota" (402),
   "rate_limit_exceeded" (429), "permission_denied" (403),
   "invalid_request_error" (400), else "server_error". Static storage. */
const char* pg_http_error_type(int status);

/* Sync options (plangate/sync.h SyncOptions)

   Read by pg_sync_start only. Not thread-safe. Defaults as in
   plangate::SyncOptions. */

pg_sync_options_t* pg_sync_options_create(void);
void pg_sync_options_destroy(pg_sync_options_t* options);
/* Key prefix in Redis; default "pg". */
void pg_sync_options_set_key_prefix(pg_sync_options_t* o, const char* prefix,
                                    size_t prefix_len);
/* Unique per process start; empty (default): a random 64-bit id. */
void pg_sync_options_set_instance_id(pg_sync_options_t* o, const char* id,
                                     size_t id_len);
void pg_sync_options_set_flush_interval_ms(pg_sync_options_t* o, int64_t ms);
void pg_sync_options_set_refresh_interval_ms(pg_sync_options_t* o, int64_t ms);
void pg_sync_options_set_max_batch(pg_sync_options_t* o, size_t n);
void pg_sync_options_set_leases(pg_sync_options_t* o, unsigned char on);
void pg_sync_options_set_expected_instances(pg_sync_options_t* o, int n);
void pg_sync_options_set_min_round_units(pg_sync_options_t* o, int64_t n);
void pg_sync_options_set_cold_start_share(pg_sync_options_t* o, double share);
void pg_sync_options_set_lease_ttl_ms(pg_sync_options_t* o, int64_t ms);
void pg_sync_options_set_unavailable_after_ms(pg_sync_options_t* o, int64_t ms);
/* Connection and per-batch command timeouts; default 1000 each. */
void pg_sync_options_set_connect_timeout_ms(pg_sync_options_t* o, int64_t ms);
void pg_sync_options_set_command_timeout_ms(pg_sync_options_t* o, int64_t ms);
/* Redis TLS (plangate/sync.h RedisOptions tls_*; docs/sync.md "TLS"): the
   URL must be rediss:// (or rediss-sentinel://), else pg_sync_start fails.
   A CA file (PEM) and/or a directory of hashed CA certificates (default:
   OpenSSL's trust store), a client certificate and its key (both or
   neither), the name the server's certificate must carry (default: the
   host), and verify = 0 to accept any certificate (testing only). */
void pg_sync_options_set_redis_tls_ca_file(pg_sync_options_t* o,
                                           const char* path, size_t path_len);
void pg_sync_options_set_redis_tls_ca_dir(pg_sync_options_t* o,
                                          const char* path, size_t path_len);
void pg_sync_options_set_redis_tls_cert_file(pg_sync_options_t* o,
                                             const char* path, size_t path_len);
void pg_sync_options_set_redis_tls_key_file(pg_sync_options_t* o,
                                            const char* path, size_t path_len);
void pg_sync_options_set_redis_tls_server_name(pg_sync_options_t* o,
                                               const char* name,
                                               size_t name_len);
void pg_sync_options_set_redis_tls_verify(pg_sync_options_t* o,
                                          unsigned char on);
/* The sentinels' own password (RedisOptions::sentinel_password), for a
   redis-sentinel:// URL only; the URL's credentials are the master's. */
void pg_sync_options_set_redis_sentinel_password(pg_sync_options_t* o,
                                                 const char* password,
                                                 size_t password_len);

/* Sync

   Keeps an enforcer's counters in step with every other instance on the
   same Redis, on a thread of its own; checks never wait for Redis.
   Thread safety: flush, drain, stats, prometheus_text, instance_id and
   last_error may be called from any thread; pg_sync_destroy not
   concurrently with them, and before pg_enforcer_destroy. */

/* Attaches to `enforcer` and starts connecting to redis_url
   (NUL-terminated; any form plangate::ParseRedisUrl takes:
   redis://[[user]:password@]host[:port][/db], rediss://... (TLS),
   ...?cluster=1 (Redis Cluster), unix:///path/to.sock[?db=N] or
   redis-sentinel://host[:port][,host[:port]...]/master[/db]). NULL options: the
   defaults. Errors: a bad URL (naming the part), bad options, a sync already
   attached. An unreachable Redis is not an error: the sync keeps reconnecting.
 */
pg_sync_t* pg_sync_start(pg_enforcer_t* enforcer, const char* redis_url,
                         const pg_sync_options_t* options, char** errptr);
/* Stops without draining. NULL is allowed. */
void pg_sync_destroy(pg_sync_t* sync);
/* Flushes all pending usage, keeping leases: a barrier. Error when Redis
   did not acknowledge everything within timeout_ms. */
void pg_sync_flush(pg_sync_t* sync, int64_t timeout_ms, char** errptr);
/* For a graceful shutdown: flushes and returns every lease. */
void pg_sync_drain(pg_sync_t* sync, int64_t timeout_ms, char** errptr);
void pg_sync_stats(const pg_sync_t* sync, pg_sync_stats_t* stats);
/* Sync and enforcer counters as Prometheus text: malloc()ed,
   NUL-terminated, *text_len bytes (text_len may be NULL). */
char* pg_sync_prometheus_text(const pg_sync_t* sync, size_t* text_len);
/* NUL-terminated, valid while the sync lives. */
const char* pg_sync_instance_id(const pg_sync_t* sync);
/* The last connection or reply error ("" when none): malloc()ed. */
char* pg_sync_last_error(const pg_sync_t* sync);

#ifdef __cplusplus
} /* end extern "C" */
#endif

#endif /* PLANGATE_C_H_ */
