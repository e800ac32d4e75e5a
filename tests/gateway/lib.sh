# shellcheck shell=bash
# Helpers shared by the gateway's end-to-end tests (sourced, not run).
#
# A test sets `tmp` (a scratch directory) and calls:
#   start_gateway NAME ARGS...   start plangate_gateway ($GATEWAY) with
#                                --listen 127.0.0.1:0, wait until it answers
#                                /healthz; sets NAME_port and NAME_pid
#   call METHOD URL KEY [BODY]   one curl request; sets `status`, and leaves
#                                the headers in $tmp/headers, the body in
#                                $tmp/body
#   header NAME                  a response header's value ("" if absent)
#   jget PATH [FILE]             a JSON value by a jq path (.a.b[0]); strings
#                                raw, like `jq -r` (jq if installed, else
#                                python3)
#   expect_status N, expect_eq WHAT EXPECTED ACTUAL, expect_match WHAT REGEX
#   ACTUAL, fail MESSAGE         checks; a failure prints the gateway logs
#                                and exits 1
#   stop_all                     SIGTERM every process started, wait, and
#                                fail unless each exited with status 0
# and sets an EXIT trap that kills whatever is still running.

pids=()
checks=0

stop_all() {
  local pid rc failed=()
  local -A what=()
  for pid in "${pids[@]}"; do
    # What it is, for the message (gone from /proc once reaped).
    what[$pid]=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-80 || true)
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    rc=0
    wait "$pid" 2>/dev/null || rc=$?
    # 127: already reaped by the test itself.
    ((rc == 0 || rc == 127)) ||
      failed+=("pid $pid (${what[$pid]:-gone}) exited with status $rc")
  done
  pids=()
  # A sanitizer report (a leak at exit, a race) shows up as a bad status.
  ((${#failed[@]} == 0)) || fail "after SIGTERM: ${failed[*]}"
}

cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  [[ -n "${tmp:-}" && -d "$tmp" ]] && rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  echo "FAIL: $*" >&2
  if [[ -f "$tmp/headers" ]]; then
    echo "--- last response:" >&2
    cat "$tmp/headers" "$tmp/body" >&2 2>/dev/null || true
    echo >&2
  fi
  local log
  for log in "$tmp"/*.log; do
    [[ -f "$log" ]] || continue
    echo "--- $(basename "$log"):" >&2
    tail -n 40 "$log" >&2
  done
  exit 1
}

# start_gateway NAME ARGS...: also accepts --serve-mock in ARGS (then no
# /healthz auth is needed either way).
start_gateway() {
  local name=$1
  shift
  local log="$tmp/$name.log" line="" port pid
  "$GATEWAY" --listen 127.0.0.1:0 "$@" >"$log" 2>&1 &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 1 200); do
    line=$(grep -m1 -o 'listening on http://[0-9.]*:[0-9]*' "$log" || true)
    [[ -n "$line" ]] && break
    kill -0 "$pid" 2>/dev/null || fail "gateway $name exited at start"
    sleep 0.05
  done
  [[ -n "$line" ]] || fail "gateway $name did not print its address in 10 s"
  port=${line##*:}
  for _ in $(seq 1 100); do
    if curl -sS -o /dev/null --max-time 1 "http://127.0.0.1:$port/healthz" \
      2>/dev/null; then
      printf -v "${name}_port" '%s' "$port"
      printf -v "${name}_pid" '%s' "$pid"
      return 0
    fi
    sleep 0.05
  done
  fail "gateway $name does not answer /healthz on port $port"
}

call() {
  local method=$1 url=$2 key=$3 body=${4:-}
  local args=(-sS --max-time 20 -o "$tmp/body" -D "$tmp/headers"
    -w '%{http_code}' -X "$method")
  [[ -n "$key" ]] && args+=(-H "Authorization: Bearer $key")
  [[ -n "$body" ]] && args+=(-H 'Content-Type: application/json' \
    --data-binary "$body")
  status=$(curl "${args[@]}" "$url") || fail "curl $method $url failed"
}

header() {
  # Case-insensitive name; the value without its trailing CR.
  awk -v name="$(tr '[:upper:]' '[:lower:]' <<<"$1")" '
    BEGIN { FS = ": " }
    { sub(/\r$/, "") }
    tolower($1) == name { sub(/^[^:]*: /, ""); print; exit }
  ' "$tmp/headers"
}

if command -v jq >/dev/null 2>&1; then
  jget() { jq -r "$1" "${2:-$tmp/body}" || fail "not JSON: $(cat "${2:-$tmp/body}")"; }
else
  jget() {
    python3 - "$1" "${2:-$tmp/body}" <<'PY' || fail "not JSON: $(cat "${2:-$tmp/body}")"
import json, re, sys
value = json.load(open(sys.argv[2]))
for name, index in re.findall(r'\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]', sys.argv[1]):
    if value is None:
        break
    value = value.get(name) if name else (
        value[int(index)] if int(index) < len(value) else None)
if isinstance(value, str):
    print(value)
elif isinstance(value, (dict, list)) or value is None or isinstance(value, bool):
    print(json.dumps(value))
else:
    print(value)
PY
  }
fi

expect_status() {
  checks=$((checks + 1))
  [[ "$status" == "$1" ]] || fail "${2:-request}: expected HTTP $1, got $status"
}

expect_eq() {
  checks=$((checks + 1))
  [[ "$3" == "$2" ]] || fail "$1: expected '$2', got '$3'"
}

expect_match() {
  checks=$((checks + 1))
  [[ "$3" =~ $2 ]] || fail "$1: expected to match /$2/, got '$3'"
}
