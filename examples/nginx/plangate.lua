-- Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
--
-- plangate.lua: plangate inside nginx (lua-nginx-module), through LuaJIT's
-- FFI over include/plangate/c.h (libplangate_c.so).
--
--   init_worker_by_lua_block { require("plangate").init_worker({...}) }
--   access_by_lua_block      { require("plangate").access() }
--   header_filter_by_lua_block { require("plangate").header_filter() }
--   body_filter_by_lua_block { require("plangate").body_filter() }
--   log_by_lua_block         { require("plangate").log() }
--   exit_worker_by_lua_block { require("plangate").exit_worker() }
--
-- One Enforcer per worker process: the Enforcer's counter cache is process
-- memory (lock-free tables the C++ core allocates), so it cannot live in an
-- nginx shared-memory zone; instead each worker is one plangate instance
-- and, with `redis`, all workers of all nginx servers share counts through
-- Redis exactly as several gateway processes do (leases keep hard caps
-- across them). Without Redis each worker counts on its own: run one
-- worker, or accept per-worker limits.
--
-- The request path: access() authenticates the key, estimates the request's
-- tokens, checks (a 429 quota_syncing for a counter not synced yet is
-- retried for up to sync_wait_ms), and renders a denial with plangate's own
-- status, headers and body. An admitted request goes upstream;
-- header_filter() adds the rate-limit and warning headers, body_filter()
-- keeps the start of the reply, and log() commits the tokens the upstream
-- reported, or refunds when the upstream failed (5xx or no response).

local ffi = require("ffi")
local cjson = require("cjson.safe")

-- The part of c.h this module uses; layouts must match it exactly.
ffi.cdef [[
typedef struct pg_catalog_t pg_catalog_t;
typedef struct pg_enforcer_t pg_enforcer_t;
typedef struct pg_sync_t pg_sync_t;
typedef struct pg_sync_options_t pg_sync_options_t;
typedef struct pg_meter_amount_t { int meter; int64_t amount; } pg_meter_amount_t;
typedef struct pg_reservation_t { uint32_t slot; uint32_t generation; } pg_reservation_t;
typedef struct pg_check_request_t {
  const char* account_id; size_t account_id_len;
  const char* project_id; size_t project_id_len;
  const char* key_id; size_t key_id_len;
  const char* user_id; size_t user_id_len;
  int key_kind;
  unsigned char byok;
  const char* model; size_t model_len;
  const char* const* features; const size_t* features_lens; size_t num_features;
  int64_t wallet_micros;
  const pg_meter_amount_t* amounts; size_t num_amounts;
  int64_t now_ms;
  uint64_t request_id;
} pg_check_request_t;
typedef struct pg_commit_request_t {
  pg_reservation_t reservation;
  unsigned char failed;
  const pg_meter_amount_t* actual; size_t num_actual;
  unsigned char set_wallet;
  int64_t wallet_micros;
  uint64_t request_id;
} pg_commit_request_t;
typedef struct pg_decision_t {
  int status; int deny;
  const char* reason; size_t reason_len;
  const char* message; size_t message_len;
  uint32_t warnings; unsigned char shadow;
  unsigned char has_limit;
  const char* limit_id; size_t limit_id_len;
  int limit_scope;
  const char* limit_meter; size_t limit_meter_len;
  int limit_window; int limit_mode; int limit_window_count;
  int64_t limit_value, hard_limit, used, remaining, window_start_ms, reset_ms,
      retry_after_ms;
  const char* upgrade_plan; size_t upgrade_plan_len;
  pg_reservation_t reservation;
} pg_decision_t;
typedef struct pg_limit_override_t {
  const char* limit_id; size_t limit_id_len;
  const char* user_id; size_t user_id_len;
  unsigned char unlimited; int64_t limit;
  unsigned char set_grace; double grace;
} pg_limit_override_t;
typedef struct pg_account_t {
  const char* account_id; size_t account_id_len;
  const char* plan_id; size_t plan_id_len;
  int64_t anchor_ms; int state; int64_t past_due_deadline_ms;
  const char* scheduled_plan_id; size_t scheduled_plan_id_len;
  const char* default_model; size_t default_model_len;
  const pg_limit_override_t* overrides; size_t num_overrides;
} pg_account_t;

const char* pg_version(void);
void pg_free(void* ptr);
pg_catalog_t* pg_catalog_load_file(const char* path, char** errptr);
void pg_catalog_destroy(pg_catalog_t* catalog);
pg_enforcer_t* pg_enforcer_create(const pg_catalog_t* catalog,
                                  const void* options, char** errptr);
void pg_enforcer_destroy(pg_enforcer_t* enforcer);
void pg_enforcer_upsert_account(pg_enforcer_t* e, const pg_account_t* a,
                                char** errptr);
int64_t pg_enforcer_credit_wallet(pg_enforcer_t* e, const char* id,
                                  size_t id_len, int64_t credit,
                                  const char* credit_id, size_t credit_id_len,
                                  char** errptr);
void pg_enforcer_check(pg_enforcer_t* e, const pg_check_request_t* r,
                       pg_decision_t* d);
int pg_enforcer_commit(pg_enforcer_t* e, const pg_commit_request_t* c);
int pg_enforcer_meter_id(const pg_enforcer_t* e, const char* m, size_t len);
char* pg_enforcer_usage_json(const pg_enforcer_t* e, const char* id,
                             size_t id_len, int64_t now_ms, size_t* len,
                             char** errptr);
void pg_enforcer_maintain(pg_enforcer_t* e, int64_t now_ms);
char* pg_enforcer_prometheus_text(const pg_enforcer_t* e, size_t* len);
int pg_http_render(const pg_decision_t* d, int64_t now_ms, uint32_t omit,
                   char* headers, size_t headers_size, size_t* headers_len,
                   char* body, size_t body_size, size_t* body_len,
                   char** errptr);
const char* pg_http_error_type(int status);
pg_sync_options_t* pg_sync_options_create(void);
void pg_sync_options_destroy(pg_sync_options_t* o);
void pg_sync_options_set_key_prefix(pg_sync_options_t* o, const char* p,
                                    size_t len);
void pg_sync_options_set_flush_interval_ms(pg_sync_options_t* o, int64_t ms);
pg_sync_t* pg_sync_start(pg_enforcer_t* e, const char* url,
                         const pg_sync_options_t* o, char** errptr);
void pg_sync_destroy(pg_sync_t* s);
void pg_sync_drain(pg_sync_t* s, int64_t timeout_ms, char** errptr);
char* pg_sync_prometheus_text(const pg_sync_t* s, size_t* len);
]]

local C = ffi.C
local M = {}

local HEADERS_SIZE, BODY_SIZE = 1536, 2056
local DENY_SYNCING = 12
local COMMIT_RESULTS = {[0] = "applied", "refunded", "duplicate", "expired",
                        "invalid", "empty"}
local KINDS = {live = 0, test = 1, sandbox = 1, internal = 2}
local STATES = {active = 0, past_due = 1, blocked = 2}

-- Per worker: the library, the enforcer, and scratch structs reused by
-- every request (one Lua thread runs at a time in a worker, and nothing
-- yields between filling a scratch struct and reading it back).
local lib, enforcer, sync
local keys = {}
local tokens_meter = -1
local config = {}
local req = ffi.new("pg_check_request_t")
local decision = ffi.new("pg_decision_t")
local commit = ffi.new("pg_commit_request_t")
local amount = ffi.new("pg_meter_amount_t[1]")
local actual = ffi.new("pg_meter_amount_t[1]")
local hbuf = ffi.new("char[?]", HEADERS_SIZE)
local bbuf = ffi.new("char[?]", BODY_SIZE)
local hlen = ffi.new("size_t[1]")
local blen = ffi.new("size_t[1]")
local errp = ffi.new("char*[1]")
local lenp = ffi.new("size_t[1]")

local function take_error()
  local p = errp[0]
  if p == nil then return nil end
  local s = ffi.string(p)
  lib.pg_free(p)
  errp[0] = nil
  return s
end

local function take_text(p, len)
  if p == nil then return nil end
  local s = ffi.string(p, len)
  lib.pg_free(p)
  return s
end

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then error("plangate: " .. tostring(err)) end
  local s = f:read("*a")
  f:close()
  return s
end

-- "2026-01-01T00:00:00Z" (UTC, optional fraction) to Unix ms.
local function rfc3339_ms(s)
  local y, mo, d, h, mi, sec = s:match(
    "^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)")
  if not y then error("plangate: bad time " .. s) end
  y, mo = tonumber(y), tonumber(mo)
  -- days_from_civil (Howard Hinnant's algorithm)
  y = mo <= 2 and y - 1 or y
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (mo + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + tonumber(d) - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  local days = era * 146097 + doe - 719468
  return ((days * 24 + tonumber(h)) * 60 + tonumber(mi)) * 60000 +
      tonumber(sec) * 1000
end

local function load_accounts(path)
  local accounts = cjson.decode(read_file(path))
  if type(accounts) ~= "table" then error("plangate: " .. path .. ": not a JSON array") end
  for i, a in ipairs(accounts) do
    local acc = ffi.new("pg_account_t")
    acc.account_id, acc.account_id_len = a.id, #a.id
    acc.plan_id, acc.plan_id_len = a.plan, #a.plan
    acc.anchor_ms = a.anchor and rfc3339_ms(a.anchor) or 0
    acc.state = STATES[a.state or "active"] or 99
    acc.past_due_deadline_ms = a.past_due_until and rfc3339_ms(a.past_due_until) or 0
    local model = a.default_model or ""
    acc.default_model, acc.default_model_len = model, #model
    local overrides = a.overrides or {}
    local arr
    if #overrides > 0 then
      arr = ffi.new("pg_limit_override_t[?]", #overrides)
      for j, o in ipairs(overrides) do
        local c = arr[j - 1]
        c.limit_id, c.limit_id_len = o.limit_id, #o.limit_id
        c.unlimited = o.unlimited and 1 or 0
        c.limit = o.limit or 0
        if o.grace then c.set_grace, c.grace = 1, o.grace end
      end
      acc.overrides, acc.num_overrides = arr, #overrides
    end
    lib.pg_enforcer_upsert_account(enforcer, acc, errp)
    local err = take_error()
    if err then error(("plangate: %s: accounts[%d]: %s"):format(path, i - 1, err)) end
    if a.wallet_micros then
      -- One id per account and amount: with wallets shared through Redis
      -- every worker's and every restart's credit counts once.
      local credit_id = ("accounts-file:%s:%d"):format(a.id, a.wallet_micros)
      lib.pg_enforcer_credit_wallet(enforcer, a.id, #a.id, a.wallet_micros,
                                    credit_id, #credit_id, errp)
      err = take_error()
      if err then error(("plangate: %s: accounts[%d]: %s"):format(path, i - 1, err)) end
    end
  end
end

local function load_keys(path)
  local list = cjson.decode(read_file(path))
  if type(list) ~= "table" then error("plangate: " .. path .. ": not a JSON array") end
  for i, k in ipairs(list) do
    local kind = KINDS[k.kind or "live"]
    if not kind then
      error(("plangate: %s: [%d].kind: must be live, test or internal"):format(path, i - 1))
    end
    keys[k.key] = {account = k.account, id = k.id or "", project = k.project or "",
                   user = k.user or "", kind = kind, byok = k.byok and 1 or 0}
  end
end

-- opts: library (path of libplangate_c.so.0), catalog, keys, accounts
-- (files), redis (URL, optional), redis_prefix, sync_wait_ms (default
-- 500), default_max_tokens (default 256).
function M.init_worker(opts)
  config = opts
  lib = ffi.load(opts.library or "libplangate_c.so.0")
  local catalog = lib.pg_catalog_load_file(opts.catalog, errp)
  local err = take_error()
  if err then error("plangate: " .. err) end
  enforcer = lib.pg_enforcer_create(catalog, nil, errp)
  lib.pg_catalog_destroy(catalog)
  err = take_error()
  if err then error("plangate: " .. err) end
  tokens_meter = lib.pg_enforcer_meter_id(enforcer, "tokens", 6)
  if opts.redis then
    -- Before the accounts: registering them then primes their counters.
    local o = lib.pg_sync_options_create()
    local prefix = opts.redis_prefix or "pg"
    lib.pg_sync_options_set_key_prefix(o, prefix, #prefix)
    sync = lib.pg_sync_start(enforcer, opts.redis, o, errp)
    lib.pg_sync_options_destroy(o)
    err = take_error()
    if err then error("plangate: " .. err) end
  end
  if opts.accounts then load_accounts(opts.accounts) end
  load_keys(opts.keys)
  ngx.timer.every(1, function(premature)
    if not premature and enforcer ~= nil then lib.pg_enforcer_maintain(enforcer, 0) end
  end)
  ngx.log(ngx.INFO, "plangate ", ffi.string(lib.pg_version()), ": worker ",
          ngx.worker.id(), " ready", sync and " with Redis sync" or "")
end

function M.exit_worker()
  if sync ~= nil then
    lib.pg_sync_drain(sync, 2000, errp)
    local err = take_error()
    if err then ngx.log(ngx.WARN, "plangate: drain: ", err) end
    lib.pg_sync_destroy(sync)
    sync = nil
  end
  if enforcer ~= nil then
    lib.pg_enforcer_destroy(enforcer)
    enforcer = nil
  end
end

local function json_error(status, message, code)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.print(cjson.encode({error = {message = message,
    type = ffi.string(lib.pg_http_error_type(status)), code = code}}))
  return ngx.exit(status)
end

local function key_of_request()
  local auth = ngx.var.http_authorization
  if not auth then return nil end
  return keys[auth:match("^Bearer%s+(%S+)%s*$") or ""]
end

-- Sends the rendered denial (or collects the admitted headers).
local function render(now_ms)
  local status = lib.pg_http_render(decision, now_ms, 0, hbuf, HEADERS_SIZE, hlen,
                                    bbuf, BODY_SIZE, blen, errp)
  local err = take_error()
  if err then
    ngx.log(ngx.ERR, "plangate: render: ", err)
    return 500, {}, ""
  end
  local headers = {}
  for name, value in ffi.string(hbuf, hlen[0]):gmatch("([^:\r\n]+): ([^\r\n]*)\r\n") do
    headers[#headers + 1] = {name, value}
  end
  return status, headers, ffi.string(bbuf, blen[0])
end

function M.access()
  local key = key_of_request()
  if not key then return json_error(401, "invalid API key", "invalid_api_key") end

  -- Token estimate: prompt bytes / 4 plus max_tokens (as plangate_gateway).
  ngx.req.read_body()
  local raw = ngx.req.get_body_data()
  local body = raw and cjson.decode(raw) or {}
  if type(body) ~= "table" then
    return json_error(400, "the body is not a chat request", "invalid_request")
  end
  local model = type(body.model) == "string" and body.model or ""
  local estimate = 0
  if tokens_meter >= 0 then
    local bytes = 0
    if type(body.messages) == "table" then
      for _, m in ipairs(body.messages) do
        if type(m) == "table" and type(m.content) == "string" then bytes = bytes + #m.content end
      end
    end
    local max_tokens = tonumber(body.max_tokens) or config.default_max_tokens or 256
    estimate = math.ceil(bytes / 4) + max_tokens
  end

  local account = key.account
  ffi.fill(req, ffi.sizeof(req))
  req.account_id, req.account_id_len = account, #account
  req.project_id, req.project_id_len = key.project, #key.project
  req.key_id, req.key_id_len = key.id, #key.id
  req.user_id, req.user_id_len = key.user, #key.user
  req.key_kind = key.kind
  req.byok = key.byok
  req.model, req.model_len = model, #model
  if tokens_meter >= 0 then
    amount[0].meter, amount[0].amount = tokens_meter, estimate
    req.amounts, req.num_amounts = amount, 1
  end
  local now_ms = math.floor(ngx.now() * 1000)
  req.now_ms = now_ms
  lib.pg_enforcer_check(enforcer, req, decision)
  -- A leased counter this worker has not synced yet: wait for its lease.
  local waited, wait_ms = 0, config.sync_wait_ms or 500
  while decision.deny == DENY_SYNCING and waited < wait_ms do
    ngx.sleep(0.01)
    waited = waited + 10
    ngx.update_time()
    now_ms = math.floor(ngx.now() * 1000)
    -- req's strings are still alive (key's fields, the local model).
    req.now_ms = now_ms
    lib.pg_enforcer_check(enforcer, req, decision)
  end

  local status, headers, denial = render(now_ms)
  if decision.status >= 300 then
    ngx.status = status
    for _, h in ipairs(headers) do ngx.header[h[1]] = h[2] end
    ngx.print(denial)
    return ngx.exit(status)
  end
  ngx.ctx.plangate = {
    slot = decision.reservation.slot,
    generation = decision.reservation.generation,
    headers = headers,
    body = {},
    size = 0,
  }
end

function M.header_filter()
  local pg = ngx.ctx.plangate
  if not pg then return end
  for _, h in ipairs(pg.headers) do
    if h[1] ~= "Content-Type" then ngx.header[h[1]] = h[2] end
  end
end

-- Keeps the first 64 KiB of the reply, for its usage.
function M.body_filter()
  local pg = ngx.ctx.plangate
  if not pg or tokens_meter < 0 then return end
  local chunk = ngx.arg[1]
  if chunk and #chunk > 0 and pg.size < 65536 then
    pg.body[#pg.body + 1] = chunk
    pg.size = pg.size + #chunk
  end
end

function M.log()
  local pg = ngx.ctx.plangate
  if not pg or pg.generation == 0 then return end
  ffi.fill(commit, ffi.sizeof(commit))
  commit.reservation.slot = pg.slot
  commit.reservation.generation = pg.generation
  -- The last upstream's status ("502, 504" after retries: the last one).
  local upstream = tonumber((ngx.var.upstream_status or ""):match("(%d+)%s*$"))
  if not upstream or upstream >= 500 then
    commit.failed = 1
  elseif tokens_meter >= 0 then
    local reply = cjson.decode(table.concat(pg.body))
    local usage = type(reply) == "table" and reply.usage
    local total = type(usage) == "table" and tonumber(usage.total_tokens)
    if total then
      actual[0].meter, actual[0].amount = tokens_meter, total
      commit.actual, commit.num_actual = actual, 1
    end
  end
  local result = lib.pg_enforcer_commit(enforcer, commit)
  ngx.var.plangate_commit = COMMIT_RESULTS[result] or tostring(result)
end

-- GET: the key's account's usage report.
function M.usage()
  local key = key_of_request()
  if not key then return json_error(401, "invalid API key", "invalid_api_key") end
  local p = lib.pg_enforcer_usage_json(enforcer, key.account, #key.account, 0, lenp, errp)
  local err = take_error()
  if err then return json_error(404, err, "unknown_account") end
  ngx.header["Content-Type"] = "application/json"
  ngx.print(take_text(p, lenp[0]))
end

-- GET: this worker's counters (sync and enforcer) as Prometheus text.
function M.metrics()
  local p
  if sync ~= nil then
    p = lib.pg_sync_prometheus_text(sync, lenp)
  else
    p = lib.pg_enforcer_prometheus_text(enforcer, lenp)
  end
  ngx.header["Content-Type"] = "text/plain; version=0.0.4"
  ngx.print(take_text(p, lenp[0]) or "")
end

-- For tests: "struct size N" and "struct.field offset" lines of every
-- struct declared above, to compare with the C compiler's view of c.h
-- (e2e_test.sh does).
local LAYOUT = {
  pg_meter_amount_t = {"meter", "amount"},
  pg_reservation_t = {"slot", "generation"},
  pg_check_request_t = {"account_id", "account_id_len", "project_id",
    "project_id_len", "key_id", "key_id_len", "user_id", "user_id_len",
    "key_kind", "byok", "model", "model_len", "features", "features_lens",
    "num_features", "wallet_micros", "amounts", "num_amounts", "now_ms",
    "request_id"},
  pg_commit_request_t = {"reservation", "failed", "actual", "num_actual",
    "set_wallet", "wallet_micros", "request_id"},
  pg_decision_t = {"status", "deny", "reason", "reason_len", "message",
    "message_len", "warnings", "shadow", "has_limit", "limit_id",
    "limit_id_len", "limit_scope", "limit_meter", "limit_meter_len",
    "limit_window", "limit_mode", "limit_window_count", "limit_value",
    "hard_limit", "used",
    "remaining", "window_start_ms", "reset_ms", "retry_after_ms",
    "upgrade_plan", "upgrade_plan_len", "reservation"},
  pg_limit_override_t = {"limit_id", "limit_id_len", "user_id",
    "user_id_len", "unlimited", "limit", "set_grace", "grace"},
  pg_account_t = {"account_id", "account_id_len", "plan_id", "plan_id_len",
    "anchor_ms", "state", "past_due_deadline_ms", "scheduled_plan_id",
    "scheduled_plan_id_len", "default_model", "default_model_len",
    "overrides", "num_overrides"},
}

function M.layout()
  local names = {}
  for name in pairs(LAYOUT) do names[#names + 1] = name end
  table.sort(names)
  local out = {}
  for _, name in ipairs(names) do
    out[#out + 1] = ("%s size %d"):format(name, ffi.sizeof(name))
    for _, field in ipairs(LAYOUT[name]) do
      out[#out + 1] = ("%s.%s %d"):format(name, field, ffi.offsetof(name, field))
    end
  end
  return table.concat(out, "\n") .. "\n"
end

return M
