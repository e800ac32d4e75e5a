#!/usr/bin/env bash
# Two plangate_gateway processes on one Redis share their counts: a monthly
# cap of 10 requests (plan "shared" of tests/gateway/data) holds across
# both under concurrent load, both report the cluster's total, and what a
# gateway admitted just before SIGTERM reaches Redis (it drains on exit)
# and counts at the other gateway.
#
#   two_gateways_test.sh PLANGATE_GATEWAY DATA_DIR [tls|sentinel]
#
# With "tls" the same runs over TLS: the test makes a CA and a server
# certificate for 127.0.0.1 with the openssl CLI, redis-server listens only
# on --tls-port, and the gateways connect with rediss:// and --redis-tls-ca.
# With "sentinel" the gateways find the server through a sentinel that has
# a password of its own (redis-sentinel://, --redis-sentinel-password).
#
# Starts its own redis-server on a free loopback port (the binary from
# PLANGATE_TEST_REDIS_SERVER, else redis-server on PATH) and one mock
# upstream process both gateways forward to. Needs a gateway built with
# PLANGATE_GATEWAY_WITH_SYNC. Exit 0: passed; 1: failed; 77: no
# redis-server (skipped).
# NAME_port and NAME_pid are set by start_gateway (lib.sh).
# shellcheck disable=SC2154
set -euo pipefail

GATEWAY=${1:?usage: two_gateways_test.sh PLANGATE_GATEWAY DATA_DIR}
data=${2:?usage: two_gateways_test.sh PLANGATE_GATEWAY DATA_DIR}
redis_server=${PLANGATE_TEST_REDIS_SERVER:-$(command -v redis-server || true)}
if [[ -z "$redis_server" || ! -x "$redis_server" ]]; then
  echo "SKIP: no redis-server (set PLANGATE_TEST_REDIS_SERVER)" >&2
  exit 77
fi
mode=${3:-plain}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/plangate-gateway-two.XXXXXX")
# shellcheck source=tests/gateway/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

listen_args=(--port)
scheme=redis
tls_flags=()
if [[ "$mode" == tls ]]; then
  command -v openssl >/dev/null || fail "openssl not found (apt-get install openssl)"
  {
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca \
      -keyout "$tmp/ca.key" -out "$tmp/ca.crt" &&
      openssl req -newkey rsa:2048 -nodes -subj /CN=redis \
        -keyout "$tmp/server.key" -out "$tmp/server.csr" &&
      printf 'subjectAltName=IP:127.0.0.1\n' >"$tmp/server.ext" &&
      openssl x509 -req -days 2 -in "$tmp/server.csr" -CA "$tmp/ca.crt" \
        -CAkey "$tmp/ca.key" -CAcreateserial -extfile "$tmp/server.ext" \
        -out "$tmp/server.crt"
  } >"$tmp/openssl.log" 2>&1 || fail "openssl: $(tail -5 "$tmp/openssl.log")"
  listen_args=(--port 0 --tls-cert-file "$tmp/server.crt"
    --tls-key-file "$tmp/server.key" --tls-ca-cert-file "$tmp/ca.crt"
    --tls-auth-clients no --tls-port)
  scheme=rediss
  tls_flags=(--redis-tls-ca "$tmp/ca.crt")
fi

# start_on_free_port VAR LOG CMD...: runs CMD, with @PORT@ in its words
# replaced by a free loopback port, until one comes up (20 tries); sets VAR
# to that port. Only the server that came up goes on pids[] (stop_all stops
# it and checks its status); a failed attempt is reaped here.
start_on_free_port() {
  local var=$1 log=$2 port pid word
  shift 2
  for _ in $(seq 1 20); do
    port=$((20000 + RANDOM % 20000))
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
    local cmd=()
    for word in "$@"; do cmd+=("${word//@PORT@/$port}"); done
    "${cmd[@]}" >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 1 50); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        pids+=("$pid")
        printf -v "$var" '%s' "$port"
        return 0
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  return 1
}

# A private redis-server, no persistence.
start_on_free_port redis_port "$tmp/redis.log" "$redis_server" \
  "${listen_args[@]}" @PORT@ --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$tmp" --daemonize no || fail "could not start $redis_server"
echo "redis-server on 127.0.0.1:$redis_port ($mode)"

redis_url="$scheme://127.0.0.1:$redis_port"
if [[ "$mode" == sentinel ]]; then
  # One sentinel with a password of its own (requirepass) names the
  # server as master "pgmaster": the gateways find it through the sentinel,
  # which answers them only with --redis-sentinel-password.
  printf '%s\n' "port SENTINEL_PORT" "bind 127.0.0.1" "dir $tmp" \
    "sentinel monitor pgmaster 127.0.0.1 $redis_port 1" \
    "requirepass sentinel-secret" >"$tmp/sentinel.conf.in"
  # A sentinel takes its port from its config file (which it rewrites):
  # written per attempt, then exec'd so that the pid is the sentinel's.
  # shellcheck disable=SC2016  # $1.. are the inner shell's
  start_on_free_port sentinel_port "$tmp/sentinel.log" bash -c \
    'sed "s/SENTINEL_PORT/$1/" "$2" >"$3" && exec "$4" "$3" --sentinel' \
    sentinel @PORT@ "$tmp/sentinel.conf.in" "$tmp/sentinel.conf" \
    "$redis_server" ||
    fail "could not start a sentinel: $(tail -5 "$tmp/sentinel.log")"
  echo "sentinel on 127.0.0.1:$sentinel_port (master pgmaster)"
  redis_url="redis-sentinel://127.0.0.1:$sentinel_port/pgmaster"
  tls_flags=(--redis-sentinel-password sentinel-secret)
  # The sentinel password goes only with a sentinel URL.
  if timeout 10 "$GATEWAY" --catalog "$data/catalog.json" --keys "$data/keys.json" \
    --redis-sentinel-password x --redis "redis://127.0.0.1:$redis_port" \
    --listen 127.0.0.1:0 >"$tmp/bad-flag.log" 2>&1; then
    fail "--redis-sentinel-password with a redis:// URL was accepted"
  fi
  grep -q 'redis-sentinel-password: the --redis URL must be redis-sentinel://' \
    "$tmp/bad-flag.log" || fail "unexpected: $(cat "$tmp/bad-flag.log")"
fi

start_gateway mock --serve-mock 127.0.0.1:0 --threads 1
common=(--catalog "$data/catalog.json" --keys "$data/keys.json"
  --accounts "$data/accounts.json" --threads 2
  --upstream "http://127.0.0.1:$mock_port"
  --redis "$redis_url" "${tls_flags[@]}"
  --redis-prefix "pgtest$$")
start_gateway a "${common[@]}"
start_gateway b "${common[@]}"
a="http://127.0.0.1:$a_port"
b="http://127.0.0.1:$b_port"
body='{"model":"mock-small","messages":[{"role":"user","content":"hi"}],"max_tokens":4}'

# used URL KEY: the account's monthly_requests as that gateway reports it.
used() {
  call GET "$1/v1/billing/usage" "$2"
  expect_status 200 "usage from $1"
  jget .usage.monthly_requests.used
}

# settles URL KEY EXPECTED: waits (up to 5 s) for the gateway to report it.
settles() {
  local got=
  for _ in $(seq 1 50); do
    got=$(used "$1" "$2")
    [[ "$got" == "$3" ]] && return 0
    sleep 0.1
  done
  fail "$1 reports $got requests for key $2, expected $3"
}

echo "--- 40 concurrent requests, 20 per gateway, on a cap of 10"
for i in $(seq 1 20); do
  for url in "$a" "$b"; do
    curl -sS --max-time 20 -o /dev/null -w '%{http_code}\n' \
      -H 'Authorization: Bearer sk-shared' -H 'Content-Type: application/json' \
      --data-binary "$body" "$url/v1/chat/completions" >>"$tmp/codes" &
  done
done
wait_curls() {
  local pid
  for pid in $(jobs -p); do
    # Only the curls: the servers are in pids[] and keep running.
    [[ " ${pids[*]} " == *" $pid "* ]] && continue
    wait "$pid" || true
  done
}
wait_curls
admitted=$(grep -c '^200$' "$tmp/codes" || true)
others=$(grep -v -c -E '^(200|402|429)$' "$tmp/codes" || true)
echo "admitted $admitted of 40 ($(sort "$tmp/codes" | uniq -c | tr '\n' ' '))"
expect_eq "answers other than 200, 402, 429" 0 "$others"
((admitted <= 10)) || fail "the cap of 10 did not hold: $admitted admitted"
((admitted >= 1)) || fail "nothing admitted"

echo "--- both gateways report the cluster total, and both deny at the cap"
settles "$a" sk-shared "$admitted"
settles "$b" sk-shared "$admitted"
# Sequentially, until the cap is reached: whatever leases left unused come
# back, so the total ends at exactly 10.
for _ in $(seq 1 40); do
  for url in "$a" "$b"; do
    call POST "$url/v1/chat/completions" sk-shared "$body"
    [[ "$status" == 200 ]] && admitted=$((admitted + 1))
  done
  ((admitted >= 10)) && break
  sleep 0.05
done
expect_eq "admitted in all" 10 "$admitted"
for url in "$a" "$b"; do
  call POST "$url/v1/chat/completions" sk-shared "$body"
  expect_status 402 "$url past the shared cap"
  expect_eq "$url error.code" billing_limit_reached "$(jget .error.code)"
done
settles "$a" sk-shared 10
settles "$b" sk-shared 10

if [[ "$mode" == plain && -n "${PLANGATE_QUOTACTL:-}" ]]; then
  quotactl=(timeout 20 "$PLANGATE_QUOTACTL" account set
    --redis "redis://127.0.0.1:$redis_port" --prefix "pgtest$$"
    --catalog "$data/catalog.json")
  now_ms() { date +%s%3N; }

  # in_force URL KEY STATUS: waits (up to 5 s) until a chat request on
  # that gateway answers STATUS; prints the milliseconds it took.
  in_force() {
    local from got=
    from=$(now_ms)
    for _ in $(seq 1 100); do
      call POST "$1/v1/chat/completions" "$2" "$body"
      got=$status
      if [[ "$got" == "$3" ]]; then
        echo "$(($(now_ms) - from))"
        return 0
      fi
      sleep 0.05
    done
    fail "$1: key $2 still answers $got, expected $3"
  }

  echo "--- an upgrade is in force on both gateways (Agent Handler)"
  for url in "$a" "$b"; do
    call POST "$url/v1/chat/completions" sk-free-live "$body"
    expect_status 403 "$url: free has no live keys"
  done
  "${quotactl[@]}" --account acct-free --plan pro \
    --anchor 2026-01-01T00:00:00Z >"$tmp/quotactl.out" 2>&1 ||
    fail "quotactl account set: $(cat "$tmp/quotactl.out")"
  for url in "$a" "$b"; do
    ms=$(in_force "$url" sk-free-live 200)
    checks=$((checks + 1))
    echo "  $url: upgrade in force after ${ms} ms (target 250)"
  done

  echo "--- a past-due deadline blocks on both gateways (Cosantoir)"
  # (The first request on a gateway may wait for its first lease: 429.)
  for url in "$a" "$b"; do
    in_force "$url" sk-pastdue 200 >/dev/null
    checks=$((checks + 1))
  done
  "${quotactl[@]}" --account acct-pastdue --plan pro \
    --anchor 2026-01-01T00:00:00Z --state past_due \
    --past-due-until 2026-01-02T00:00:00Z >"$tmp/quotactl.out" 2>&1 ||
    fail "quotactl account set: $(cat "$tmp/quotactl.out")"
  for url in "$a" "$b"; do
    ms=$(in_force "$url" sk-pastdue 402)
    expect_eq "$url error.code" payment_required "$(jget .error.code)"
    echo "  $url: deadline in force after ${ms} ms"
  done

  echo "--- a restarted gateway keeps the upgrade its accounts file lacks"
  start_gateway c "${common[@]}"
  c="http://127.0.0.1:$c_port"
  ms=$(in_force "$c" sk-free-live 200)
  checks=$((checks + 1))
  echo "  $c: stored plan in force after ${ms} ms"
  kill -TERM "$c_pid"
  wait "$c_pid" || true
fi

echo "--- one prepaid wallet across both gateways (Aerostack, Cosantoir)"
# acct-wsolo and acct-wshared are credited alike by the accounts file (each
# gateway sends the same credit id: it counts once), 1,050 micros on a plan
# whose minimum balance is 1,000. The first spends its wallet through
# gateway a alone, the second through both in turn: one shared wallet
# admits as many requests either way (a wallet per gateway would admit
# about twice as many through two), and none starts below the minimum.
# (The last of a balance comes together on one gateway: the other answers
# 429 quota_syncing meanwhile, after its --sync-wait-ms.)
# spend KEY URL...: requests until every gateway answers 402 in one round;
# prints how many were admitted.
spend() {
  local key=$1 n=0 denied url
  shift
  for _ in $(seq 1 300); do
    denied=0
    for url in "$@"; do
      call POST "$url/v1/chat/completions" "$key" "$body"
      case "$status" in
        200) n=$((n + 1)) ;;
        402) denied=$((denied + 1)) ;;
        429) ;; # quota_syncing: a lease of the wallet on its way
        *) fail "$key on $url: HTTP $status: $(cat "$tmp/body")" ;;
      esac
    done
    ((denied == $#)) && break
    sleep 0.02
  done
  ((denied == $#)) || fail "$key: still admitted after 300 rounds"
  echo "$n"
}
solo=$(spend sk-wsolo "$a")
shared=$(spend sk-wshared "$a" "$b")
echo "  admitted: $solo through one gateway, $shared through two"
((solo >= 3)) || fail "the test wallet admitted only $solo requests"
expect_eq "requests one wallet admits through two gateways" "$solo" "$shared"
for url in "$a" "$b"; do
  call POST "$url/v1/chat/completions" sk-wshared "$body"
  expect_status 402 "$url past the shared wallet"
  expect_eq "$url error.code" insufficient_credit "$(jget .error.code)"
done

echo "--- SIGTERM drains usage to Redis"
for i in 1 2 3; do
  call POST "$a/v1/chat/completions" sk-drain "$body"
  expect_status 200 "drain request #$i"
done
kill -TERM "$a_pid"
rc=0
wait "$a_pid" || rc=$?
expect_eq "gateway a exit status" 0 "$rc"
grep -q 'redis drain: ok' "$tmp/a.log" || fail "gateway a did not drain to Redis"
# b has not checked acct-drain yet, so it holds no counter for it: its
# first request there syncs the counter and finds a's 3 in Redis.
call POST "$b/v1/chat/completions" sk-drain "$body"
expect_status 200 "the first acct-drain request on b"
settles "$b" sk-drain 4

echo "--- /metrics carries the sync counters"
call GET "$b/metrics" ""
expect_status 200 "metrics"
expect_match "metrics: gateway counters" 'plangate_gateway_checks_total' "$(cat "$tmp/body")"

# b drains to Redis on SIGTERM: stop it while Redis is still up (stop_all
# would stop Redis at the same time, and a drain that loses that race fails).
kill -TERM "$b_pid"
rc=0
wait "$b_pid" || rc=$?
expect_eq "gateway b exit status" 0 "$rc"
stop_all
echo "PASS: $checks checks"
