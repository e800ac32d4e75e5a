#!/usr/bin/env bash
# Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
#
# bench.sh LIBRARY GATEWAY [SECONDS]: plangate's cost per request inside
# nginx. Two nginx servers (one worker each) proxy to the same mock upstream
# (GATEWAY --serve-mock): one with plangate.lua (check with a token
# estimate, header filter, body filter, commit from the reply's usage), one
# the same configuration with ENFORCE off. wrk drives each in turn with the
# same POST; the difference of their per-request times is plangate's cost
# (Lua, FFI and the C++ check and commit together).
#
#   examples/nginx/bench.sh build/release/libplangate_c.so.0 \
#       build/release/examples/gateway/plangate_gateway 5
# shellcheck source-path=SCRIPTDIR
# Variables set by the sourced tests/gateway/lib.sh (mock_port, mock_pid,
# checks) and read by it (GATEWAY):
# shellcheck disable=SC2154,SC2034
set -euo pipefail
LIBRARY=$(realpath "$1")
GATEWAY=$(realpath "$2")
seconds=${3:-5}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
command -v wrk >/dev/null || { echo "bench.sh: needs wrk" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/plangate-nginx-bench.XXXXXX")
chmod 755 "$tmp"
# shellcheck source=../../tests/gateway/lib.sh
source "$root/tests/gateway/lib.sh"
# shellcheck source=lib.sh
source "$here/lib.sh"
masters=()
stop_masters() {
  local pid workers
  for pid in "${masters[@]}"; do
    workers=$(pgrep -P "$pid" || true)
    kill -QUIT "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    # shellcheck disable=SC2086
    kill -KILL $workers 2>/dev/null || true
  done
  masters=()
  cleanup
}
trap stop_masters EXIT

# Limits that apply to every request and are never reached.
cat >"$tmp/catalog.json" <<'JSON'
{"version": 1, "meters": ["requests", "tokens"], "plans": [{"id": "p", "limits": [
  {"id": "monthly", "limit": 1000000000000, "grace": 0.1},
  {"id": "daily", "window": "day", "limit": 1000000000000},
  {"id": "rpm", "window": "minute", "mode": "sliding", "limit": 1000000000000},
  {"id": "tokens", "meter": "tokens", "limit": 1000000000000}]}]}
JSON
echo '[{"key": "sk-bench", "id": "key-bench", "account": "acct-bench"}]' >"$tmp/keys.json"
echo '[{"id": "acct-bench", "plan": "p", "anchor": "2026-01-01T00:00:00Z"}]' >"$tmp/accounts.json"
CATALOG=$tmp/catalog.json KEYS=$tmp/keys.json ACCOUNTS=$tmp/accounts.json
export LIBRARY CATALOG KEYS ACCOUNTS

start_gateway mock --serve-mock 127.0.0.1:0 --threads 1
start_nginx on "$tmp/on" "$mock_port" 1 on ""
masters+=("$on_pid")
start_nginx off "$tmp/off" "$mock_port" 1 off ""
masters+=("$off_pid")

cat >"$tmp/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"model":"mock-small","messages":[{"role":"user","content":"hello there"}],"max_tokens":8}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
LUA

run() {  # run PORT: prints requests/s
  wrk -t1 -c8 -d"${seconds}s" --latency -s "$tmp/post.lua" \
    "http://127.0.0.1:$1/v1/chat/completions" >"$tmp/wrk-$1.txt"
  grep -q 'Non-2xx' "$tmp/wrk-$1.txt" && { cat "$tmp/wrk-$1.txt" >&2; echo "bench.sh: errors" >&2; exit 1; }
  awk '/Requests\/sec/ {print $2}' "$tmp/wrk-$1.txt"
}
# Warm both, then alternate twice and keep each side's best.
run "$on_port" >/dev/null
run "$off_port" >/dev/null
best_on=0 best_off=0
for _ in 1 2; do
  r=$(run "$off_port"); awk -v a="$r" -v b="$best_off" 'BEGIN{exit !(a>b)}' && best_off=$r
  r=$(run "$on_port"); awk -v a="$r" -v b="$best_on" 'BEGIN{exit !(a>b)}' && best_on=$r
done
p50_on=$(awk '/ 50%/ {print $2}' "$tmp/wrk-$on_port.txt")
p50_off=$(awk '/ 50%/ {print $2}' "$tmp/wrk-$off_port.txt")
call GET "http://127.0.0.1:$on_port/metrics" ""
pending=$(grep '^plangate_reservations_pending ' "$tmp/body" | awk '{print $2}')
echo "nginx without plangate: $best_off req/s (p50 $p50_off)"
echo "nginx with plangate:    $best_on req/s (p50 $p50_on)"
awk -v on="$best_on" -v off="$best_off" 'BEGIN {
  printf "plangate per request: %.1f us of one worker (1/%.0f - 1/%.0f s)\n",
    (1 / on - 1 / off) * 1e6, on, off }'
echo "reservations pending after the runs: $pending"
stop_masters
trap - EXIT
