#!/usr/bin/env bash
# Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
#
# e2e_test.sh LIBRARY GATEWAY DATA MODE: nginx with plangate.lua, end to
# end, with curl. A real nginx (Debian's, with libnginx-mod-http-lua) on a
# free loopback port in front of the example mock upstream
# (GATEWAY --serve-mock), configured from DATA (tests/gateway/data).
#
#   MODE single  plangate.lua's FFI struct layouts equal c.h's (LuaJIT's
#                view against the C compiler's); one worker, no Redis: 200,
#                429 with its headers, 402, 403, 401, test and internal keys
#                free, tokens committed from the reply's usage, a failing
#                and an unreachable upstream refunded, /v1/usage, /metrics,
#                graceful stop
#   MODE shared  two nginx servers (2 workers + 1 worker, each worker one
#                plangate instance) on the redis-server at
#                PLANGATE_TEST_REDIS_PORT: a 10-request monthly cap holds
#                exactly across all three and both servers report it;
#                exits 77 (skipped) without it
# shellcheck source-path=SCRIPTDIR
# Variables set by the sourced tests/gateway/lib.sh (mock_port, mock_pid,
# checks) and read by it (GATEWAY):
# shellcheck disable=SC2154,SC2034
set -euo pipefail
LIBRARY=$(realpath "$1")
GATEWAY=$(realpath "$2")
data=$(realpath "$3")
mode=$4
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
CATALOG=$data/catalog.json KEYS=$data/keys.json ACCOUNTS=$data/accounts.json
export LIBRARY CATALOG KEYS ACCOUNTS

if ! command -v nginx >/dev/null || [[ ! -f /usr/lib/nginx/modules/ngx_http_lua_module.so ]]; then
  echo "SKIP: nginx with libnginx-mod-http-lua is not installed"
  exit 77
fi
if [[ "$mode" == shared && -z "${PLANGATE_TEST_REDIS_PORT:-}" ]]; then
  echo "SKIP: PLANGATE_TEST_REDIS_PORT is not set"
  exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/plangate-nginx.XXXXXX")
chmod 755 "$tmp"
# call, header, jget, expect_*, start_gateway, the cleanup trap.
# shellcheck source=../../tests/gateway/lib.sh
source "$root/tests/gateway/lib.sh"
# shellcheck source=lib.sh
source "$here/lib.sh"

# nginx masters started here; lib.sh's cleanup would KILL a master and
# leave its workers running, so they are stopped here first.
nginx_pids=()
nginx_cleanup() {
  local pid workers
  for pid in "${nginx_pids[@]}"; do
    workers=$(pgrep -P "$pid" || true)
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    # shellcheck disable=SC2086
    kill -KILL "$pid" $workers 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  nginx_pids=()
  cleanup
}
trap nginx_cleanup EXIT

nginx_fail() {
  local log
  for log in "$tmp"/*/error.log; do
    [[ -f "$log" ]] || continue
    echo "--- $log:" >&2
    grep -v '\[info\]\|\[notice\]' "$log" | tail -n 30 >&2 || true
  done
  fail "$@"
}

# A graceful stop (QUIT: workers finish, exit_worker drains and destroys);
# nginx must exit 0 within 30 s and no worker may have crashed. A master
# still running then is a failure that shows its processes and log, not a
# silent wait until ctest's timeout (once, under load, this test hung
# with no output).
stop_nginx() {
  local pid=$1 dir=$2 rc=0 watchdog
  kill -QUIT "$pid"
  (
    # (The sleep holds no output pipe: ctest waits for every holder.)
    sleep 30 >/dev/null 2>&1
    echo "--- nginx $pid still running 30 s after QUIT; its processes:" >&2
    ps -o pid,ppid,stat,wchan:24,etime,cmd -p "$pid" --ppid "$pid" >&2 || true
    tail -n 30 "$dir/error.log" >&2 || true
    kill -KILL "$pid" 2>/dev/null || true
  ) &
  watchdog=$!
  wait "$pid" || rc=$?
  pkill -P "$watchdog" sleep 2>/dev/null || true
  kill "$watchdog" 2>/dev/null || true
  wait "$watchdog" 2>/dev/null || true
  local left=() p
  for p in "${nginx_pids[@]}"; do [[ "$p" == "$pid" ]] || left+=("$p"); done
  nginx_pids=("${left[@]}")
  ((rc == 0)) || nginx_fail "nginx exited with status $rc"
  if grep -E '\[(alert|emerg|crit)\]|exited on signal' "$dir/error.log"; then
    nginx_fail "nginx logged a crash or alert"
  fi
}

chat() {  # chat URL KEY [MODEL] [MAX_TOKENS] [CONTENT]
  local model=${3:-mock-small} max=${4:-} content=${5:-hello}
  local body="{\"model\":\"$model\",\"messages\":[{\"role\":\"user\",\"content\":\"$content\"}]"
  [[ -n "$max" ]] && body+=",\"max_tokens\":$max"
  call POST "$1/v1/chat/completions" "$2" "$body}"
}

start_gateway mock --serve-mock 127.0.0.1:0
# shellcheck disable=SC2154  # set by start_gateway
upstream=$mock_port

# The FFI declarations of plangate.lua against c.h: every struct's size and
# field offsets as LuaJIT lays them out (from a bare nginx running
# plangate.layout()) and as the C compiler does.
check_layout() {
  local dir=$tmp/layout port layout_pid
  mkdir -p "$dir"
  # A port taken between the probe and the bind is retried on another.
  for _ in $(seq 1 5); do
  port=$(free_port)
  cat >"$dir/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
user root;
events {}
http {
  access_log off;
  client_body_temp_path $dir/body; proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi; uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  lua_package_path "$here/?.lua;;";
  server {
    listen 127.0.0.1:$port;
    location = /healthz { return 200; }
    location = /layout { content_by_lua_block { ngx.print(require("plangate").layout()) } }
  }
}
CONF
  : >"$dir/error.log"
  nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" &
  nginx_pids+=("$!")
  layout_pid=$!
  for _ in $(seq 1 300); do
    curl -sS -o "$dir/lua.txt" --max-time 1 "http://127.0.0.1:$port/layout" 2>/dev/null && break
    kill -0 "$layout_pid" 2>/dev/null || break
    sleep 0.1
  done
  [[ -s "$dir/lua.txt" ]] && break
  grep -q "Address already in use" "$dir/error.log" || break
  done
  [[ -s "$dir/lua.txt" ]] || nginx_fail "no layout from nginx"
  stop_nginx "$layout_pid" "$dir"
  {
    echo '#include <stddef.h>'
    echo '#include <stdio.h>'
    echo '#include "plangate/c.h"'
    echo 'int main(void) {'
    local what rest
    while read -r what rest; do
      if [[ "$rest" == size* ]]; then
        printf '  printf("%s size %%zu\\n", sizeof(%s));\n' "$what" "$what"
      else
        printf '  printf("%s %%zu\\n", offsetof(%s, %s));\n' "$what" "${what%%.*}" "${what#*.}"
      fi
    done <"$dir/lua.txt"
    echo '  return 0;'
    echo '}'
  } >"$dir/layout.c"
  cc -std=c11 -I "$root/include" "$dir/layout.c" -o "$dir/layout" ||
    nginx_fail "layout.c does not compile (a field plangate.lua declares is not in c.h)"
  "$dir/layout" >"$dir/c.txt"
  diff "$dir/c.txt" "$dir/lua.txt" >&2 ||
    nginx_fail "plangate.lua's FFI layouts differ from c.h (< C, > LuaJIT)"
  checks=$((checks + $(wc -l <"$dir/c.txt")))
}

if [[ "$mode" == single ]]; then
  check_layout
  start_nginx gw "$tmp/gw" "$upstream" 1 on "" || nginx_fail "nginx did not start"
  # shellcheck disable=SC2154
  nginx_pids+=("$gw_pid")
  port=$gw_port
  url=http://127.0.0.1:$port

  # 200 three times, then 429 with plangate's headers and body, all in one
  # minute of the fixed per-minute window: not in a minute's last seconds.
  second=$(date +%S)
  if ((10#$second >= 45)); then sleep $((61 - 10#$second)); fi
  for i in 1 2 3; do
    chat "$url" sk-rate
    expect_status 200 "sk-rate request $i"
    expect_eq "reply object" chat.completion "$(jget .object)"
  done
  chat "$url" sk-rate
  expect_status 429 "sk-rate request 4"
  expect_eq "X-RateLimit-Limit" 3 "$(header X-RateLimit-Limit)"
  expect_eq "X-RateLimit-Remaining" 0 "$(header X-RateLimit-Remaining)"
  expect_match "Retry-After" '^[0-9]+$' "$(header Retry-After)"
  expect_match "RateLimit-Policy" '^"per_minute";q=3;w=60$' "$(header RateLimit-Policy)"
  expect_eq "429 content type" application/json "$(header Content-Type)"
  expect_eq "429 code" rate_limited "$(jget .error.code)"
  expect_eq "429 type" rate_limit_exceeded "$(jget .error.type)"
  # Test and internal keys of the same account are free.
  chat "$url" sk-rate-test
  expect_status 200 "test key"
  chat "$url" sk-rate-internal
  expect_status 200 "internal key"

  # 402 and 403 from the account and plan gates; 401 for no key.
  chat "$url" sk-blocked
  expect_status 402 "blocked account"
  expect_eq "blocked code" payment_required "$(jget .error.code)"
  chat "$url" sk-broke
  expect_status 402 "empty prepaid wallet"
  expect_eq "wallet code" insufficient_credit "$(jget .error.code)"
  chat "$url" sk-free-live
  expect_status 403 "live key on a sandbox-only plan"
  expect_eq "403 code" production_access_disabled "$(jget .error.code)"
  chat "$url" sk-free-test
  expect_status 200 "test key on a sandbox-only plan"
  chat "$url" sk-basic gpt-4o
  expect_status 403 "model outside the allowlist"
  chat "$url" sk-nope
  expect_status 401 "unknown key"

  # Tokens: committed from the reply's usage; a failed upstream refunds.
  # "hello" is 2 prompt tokens, max_tokens 4 completes 4: 6 in all.
  chat "$url" sk-tokens mock-small 4
  expect_status 200 "tokens request"
  call GET "$url/v1/usage" sk-tokens
  expect_status 200 "usage"
  expect_eq "tokens used after one call" 6 "$(jget .usage.monthly_tokens.used)"
  expect_eq "requests used after one call" 1 "$(jget .usage.monthly_requests.used)"
  chat "$url" sk-tokens mock-error 4
  expect_status 500 "failing upstream"
  call GET "$url/v1/usage" sk-tokens
  expect_eq "tokens used after a failed call (refunded)" 6 "$(jget .usage.monthly_tokens.used)"
  expect_eq "requests used after a failed call (refunded)" 1 "$(jget .usage.monthly_requests.used)"
  # Past the soft nudge (50 of 100): admitted with a warning header.
  chat "$url" sk-tokens mock-small 8 "$(printf 'x%.0s' $(seq 1 200))"
  expect_status 200 "nudged request"
  expect_match "X-Plangate-Warning" soft_nudge "$(header X-Plangate-Warning)"
  expect_match "admitted RateLimit" '^"monthly_tokens";r=[0-9]+;t=[0-9]+$' "$(header RateLimit)"

  call GET "$url/metrics" ""
  expect_status 200 "metrics"
  expect_match "metrics" 'plangate_reservations_pending 0' "$(cat "$tmp/body")"

  # An upstream that does not answer at all (stopped): 502, refunded.
  call GET "$url/v1/usage" sk-tokens
  tokens_before=$(jget .usage.monthly_tokens.used)
  kill -TERM "$mock_pid"
  wait "$mock_pid" || true
  chat "$url" sk-tokens mock-small 4
  expect_status 502 "upstream down"
  call GET "$url/v1/usage" sk-tokens
  expect_eq "tokens after an unreachable upstream (refunded)" "$tokens_before" \
    "$(jget .usage.monthly_tokens.used)"
  call GET "$url/metrics" ""
  expect_match "metrics after the refund" 'plangate_reservations_pending 0' "$(cat "$tmp/body")"

  stop_nginx "$gw_pid" "$tmp/gw"
  grep -q 'commit=applied' "$tmp/gw/access.log" || nginx_fail "no commit=applied in the access log"
  grep -q 'commit=refunded' "$tmp/gw/access.log" || nginx_fail "no commit=refunded in the access log"
else
  export REDIS_PREFIX="nginx$$-$RANDOM"
  redis=redis://127.0.0.1:$PLANGATE_TEST_REDIS_PORT
  start_nginx a "$tmp/a" "$upstream" 2 on "$redis" || nginx_fail "nginx a did not start"
  # shellcheck disable=SC2154
  nginx_pids+=("$a_pid")
  port_a=$a_port
  start_nginx b "$tmp/b" "$upstream" 1 on "$redis" || nginx_fail "nginx b did not start"
  # shellcheck disable=SC2154
  nginx_pids+=("$b_pid")
  port_b=$b_port
  urls=("http://127.0.0.1:$port_a" "http://127.0.0.1:$port_b")

  # acct-shared: 10 requests a month across everything. New connections
  # alternate between the servers (and, by reuseport, a's two workers).
  # Near the cap each worker admits only within a lease from Redis; one it
  # has not got yet is 429 quota_syncing (after sync_wait_ms), so clients
  # retry, as with plangate_gateway. Exactly 10 are ever admitted.
  admitted=0 codes=()
  for i in $(seq 1 200); do
    chat "${urls[$((i % 2))]}" sk-shared
    codes+=("$status")
    case "$status" in
      200) admitted=$((admitted + 1)) ;;
      402 | 429) ;;
      *) nginx_fail "request $i: unexpected HTTP $status: $(cat "$tmp/body")" ;;
    esac
    ((admitted <= 10)) || nginx_fail "the cap of 10 did not hold: $admitted admitted"
    ((admitted == 10)) && break
    [[ "$status" == 200 ]] || sleep 0.05
  done
  echo "codes: $(printf '%s\n' "${codes[@]}" | sort | uniq -c | tr '\n' ' ')"
  expect_eq "admitted across 3 workers on 2 servers" 10 "$admitted"
  # At the cap: only denials, from every worker of both servers, and both
  # servers report the cluster's total.
  for i in $(seq 1 12); do
    chat "${urls[$((i % 2))]}" sk-shared
    [[ "$status" == 402 || "$status" == 429 ]] || nginx_fail "past the cap: HTTP $status"
  done
  for url in "${urls[@]}"; do
    got=
    for _ in $(seq 1 50); do
      call GET "$url/v1/usage" sk-shared
      got=$(jget .usage.monthly_requests.used)
      [[ "$got" == 10 ]] && break
      sleep 0.1
    done
    expect_eq "$url usage" 10 "$got"
  done
  grep -q 'chat/completions' "$tmp/a/access.log" || nginx_fail "server a served nothing"
  grep -q 'chat/completions' "$tmp/b/access.log" || nginx_fail "server b served nothing"
  stop_nginx "$a_pid" "$tmp/a"
  stop_nginx "$b_pid" "$tmp/b"
fi

stop_all
echo "PASS: nginx $mode, $checks checks"
