#!/usr/bin/env bash
# What plangate costs a real gateway per request: wrk against
# examples/gateway's plangate_gateway with enforcement on and off, in one run.
#
#   tools/gateway_load.sh [PLANGATE_GATEWAY]
#
# Starts one mock upstream process and two gateways on it, identical but for
# --no-enforce, each with one worker thread; then runs wrk (one thread, one
# connection pool) against them alternately, ROUNDS times each (the order
# flips every round, against drift on a noisy 2-core machine). Every run
# POSTs the same chat completion with a live key to an account whose plan
# has the benchmark's three request limits (monthly with 10% grace, daily,
# per-minute sliding) and a monthly token quota, none of which it reaches.
#
# Prints per run: requests/s, p50 and p99 latency, and the gateway's CPU time
# per request (from /proc/PID/stat); for enforcement on also the time the
# gateway spent in plangate per request (Check, HttpRendering, usage parsing
# and Commit, from its /metrics). Then the medians and their ratios.
#
# Environment: DURATION (seconds per run, default 10), ROUNDS (default 3),
# CONNECTIONS (default 32), PIN=1 to pin the gateways to CPU 0 and wrk and
# the mock upstream to CPU 1 (default: let the scheduler place them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

gateway=${1:-build/gw/examples/gateway/plangate_gateway}
duration=${DURATION:-10}
rounds=${ROUNDS:-3}
connections=${CONNECTIONS:-32}
pin=${PIN:-0}
[[ -x "$gateway" ]] || {
  echo "gateway_load: $gateway is not built (cmake --build ... --target plangate_gateway)" >&2
  exit 1
}
command -v wrk >/dev/null || {
  echo "gateway_load: wrk is not installed (apt install wrk)" >&2
  exit 1
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/plangate-gateway-load.XXXXXX")
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

cat >"$tmp/catalog.json" <<'EOF'
{
  "version": 1,
  "meters": ["requests", "tokens"],
  "plans": [{
    "id": "load",
    "limits": [
      {"id": "monthly", "limit": 1000000000000, "grace": 0.1},
      {"id": "daily", "window": "day", "limit": 1000000000000},
      {"id": "burst", "window": "minute", "mode": "sliding",
       "limit": 1000000000000},
      {"id": "monthly_tokens", "meter": "tokens", "limit": 1000000000000}
    ]
  }]
}
EOF
echo '[{"id": "acct-load", "plan": "load", "anchor": "2026-01-01T00:00:00Z"}]' \
  >"$tmp/accounts.json"
echo '[{"key": "sk-load", "id": "key-load", "account": "acct-load"}]' \
  >"$tmp/keys.json"
cat >"$tmp/post.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-load"
wrk.body = '{"model":"mock-small","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello to the load test, please."}],"max_tokens":16}'
EOF

gw_cpu=()
other_cpu=()
if [[ "$pin" == 1 ]]; then
  gw_cpu=(taskset -c 0)
  other_cpu=(taskset -c 1)
fi

# start NAME ARGS...: sets port_NAME and pid_NAME.
start() {
  local name=$1 line="" pid
  shift
  "$@" >"$tmp/$name.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 1 100); do
    line=$(grep -m1 -o 'listening on http://[0-9.]*:[0-9]*' "$tmp/$name.log" || true)
    [[ -n "$line" ]] && break
    sleep 0.05
  done
  [[ -n "$line" ]] || {
    echo "gateway_load: $name did not start:" >&2
    cat "$tmp/$name.log" >&2
    exit 1
  }
  printf -v "port_$name" '%s' "${line##*:}"
  printf -v "pid_$name" '%s' "$pid"
}

start mock "${other_cpu[@]}" "$gateway" --serve-mock 127.0.0.1:0 --threads 1
flags=(--catalog "$tmp/catalog.json" --keys "$tmp/keys.json"
  --accounts "$tmp/accounts.json" --listen 127.0.0.1:0 --threads 1
  --upstream "http://127.0.0.1:$port_mock")
start on "${gw_cpu[@]}" "$gateway" "${flags[@]}"
start off "${gw_cpu[@]}" "$gateway" "${flags[@]}" --no-enforce

# CPU seconds (user + system) the process has used so far.
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.4f", ($14 + $15) / hz }' \
    "/proc/$1/stat"
}
# A counter from the gateway's /metrics.
metric() {
  curl -sS "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m { print $2 }'
}
# wrk's latency figure ("1.23ms", "870.00us", "1.01s") in microseconds.
to_us() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000;
    else if (v ~ /s$/) print n * 1000000; else print n }'
}

results="$tmp/results"
: >"$results"
run() { # MODE ROUND
  local mode=$1 port pid cpu0 cpu1 enf0 enf1 chk0 chk1 out rps p50 p99 reqs
  port=port_$mode
  port=${!port}
  pid=pid_$mode
  pid=${!pid}
  # Warm up: connections, pools, first-sighting inserts.
  "${other_cpu[@]}" wrk -t1 -c"$connections" -d1s -s "$tmp/post.lua" \
    "http://127.0.0.1:$port/v1/chat/completions" >/dev/null
  cpu0=$(cpu_seconds "$pid")
  enf0=$(metric "$port" plangate_gateway_enforce_seconds_total)
  chk0=$(metric "$port" plangate_gateway_checks_total)
  out=$("${other_cpu[@]}" wrk -t1 -c"$connections" -d"${duration}s" --latency \
    -s "$tmp/post.lua" "http://127.0.0.1:$port/v1/chat/completions")
  cpu1=$(cpu_seconds "$pid")
  enf1=$(metric "$port" plangate_gateway_enforce_seconds_total)
  chk1=$(metric "$port" plangate_gateway_checks_total)
  if grep -q 'Non-2xx' <<<"$out"; then
    echo "gateway_load: $mode answered errors:" >&2
    echo "$out" >&2
    exit 1
  fi
  rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
  reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
  p50=$(to_us "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
  p99=$(to_us "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
  awk -v mode="$mode" -v round="$2" -v rps="$rps" -v p50="$p50" -v p99="$p99" \
    -v reqs="$reqs" -v cpu="$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { print b - a }')" \
    -v enf="$(awk -v a="$enf0" -v b="$enf1" 'BEGIN { print b - a }')" \
    -v chk="$(awk -v a="$chk0" -v b="$chk1" 'BEGIN { print b - a }')" 'BEGIN {
      cpu_us = cpu * 1e6 / reqs
      enf_us = chk > 0 ? enf * 1e6 / chk : 0
      printf "%-3s round %d: %9.0f req/s  p50 %7.0f us  p99 %7.0f us  gateway CPU %6.2f us/req  in plangate %5.3f us/req\n",
        mode, round, rps, p50, p99, cpu_us, enf_us
      printf "%s %s %s %s %s %s\n", mode, rps, p50, p99, cpu_us, enf_us >> "/dev/stderr"
    }' 2>>"$results"
}

echo "gateway_load: $rounds rounds of ${duration}s per mode, wrk -t1 -c$connections, gateway --threads 1$([[ "$pin" == 1 ]] && echo ', pinned')"
for round in $(seq 1 "$rounds"); do
  if ((round % 2)); then
    run on "$round"
    run off "$round"
  else
    run off "$round"
    run on "$round"
  fi
done

# Medians per mode and the comparison.
awk '
  function median(a, n,    i, j, t) {
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
      t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
    }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  { n[$1]++; k = n[$1]
    rps[$1, k] = $2; p50[$1, k] = $3; p99[$1, k] = $4; cpu[$1, k] = $5; enf[$1, k] = $6 }
  END {
    for (m in n) {
      for (i = 1; i <= n[m]; i++) {
        r[i] = rps[m, i]; a[i] = p50[m, i]; b[i] = p99[m, i]; c[i] = cpu[m, i]; e[i] = enf[m, i]
      }
      R[m] = median(r, n[m]); A[m] = median(a, n[m]); B[m] = median(b, n[m])
      C[m] = median(c, n[m]); E[m] = median(e, n[m])
    }
    printf "\nmedians            %9s %9s\n", "on", "off"
    printf "requests/s         %9.0f %9.0f   on/off %.3f\n", R["on"], R["off"], R["on"] / R["off"]
    printf "p50 latency (us)   %9.0f %9.0f   on/off %.3f\n", A["on"], A["off"], A["on"] / A["off"]
    printf "p99 latency (us)   %9.0f %9.0f   on/off %.3f\n", B["on"], B["off"], B["on"] / B["off"]
    printf "gateway CPU us/req %9.2f %9.2f   difference %+.2f us\n", C["on"], C["off"], C["on"] - C["off"]
    printf "wall us/req        %9.2f %9.2f   difference %+.2f us (1e6 / requests/s)\n", 1e6 / R["on"], 1e6 / R["off"], 1e6 / R["on"] - 1e6 / R["off"]
    printf "in plangate us/req %9.3f             = %.2f%% of the gateway CPU per request (on)\n", E["on"], 100 * E["on"] / C["on"]
  }' "$results"
