#!/usr/bin/env bash
# End-to-end test of examples/gateway: a running plangate_gateway (with its
# built-in mock upstream) driven with curl, checking exact statuses, headers
# and JSON bodies.
#
#   e2e_test.sh PLANGATE_GATEWAY DATA_DIR [WITH_SYNC(0|1)]
#
# DATA_DIR holds catalog.json, keys.json and accounts.json (tests/gateway/
# data). Every account there serves one case below, so the cases do not
# depend on each other's counts. Exits 0 when every check passed.
# NAME_port and NAME_pid are set by start_gateway (lib.sh).
# shellcheck disable=SC2154
set -euo pipefail

GATEWAY=${1:?usage: e2e_test.sh PLANGATE_GATEWAY DATA_DIR [WITH_SYNC]}
data=${2:?usage: e2e_test.sh PLANGATE_GATEWAY DATA_DIR [WITH_SYNC]}
with_sync=${3:-0}
[[ -x "$GATEWAY" ]] || {
  echo "FAIL: $GATEWAY is not an executable" >&2
  exit 1
}
command -v curl >/dev/null || {
  echo "FAIL: curl is not installed" >&2
  exit 1
}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/plangate-gateway-e2e.XXXXXX")
# shellcheck source=tests/gateway/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

files=(--catalog "$data/catalog.json" --keys "$data/keys.json"
  --accounts "$data/accounts.json")
start_gateway gw "${files[@]}" --threads 2
base="http://127.0.0.1:$gw_port"

# 40 bytes of text: prompt_tokens = 10 at the mock upstream.
text=abcdefghijklmnopqrstuvwxyzabcdefghijklmn
chat_body() { # MODEL MAX_TOKENS
  printf '{"model":"%s","messages":[{"role":"user","content":"%s"}],"max_tokens":%s}' \
    "$1" "$text" "$2"
}
chat() { # KEY [MODEL] [MAX_TOKENS]
  call POST "$base/v1/chat/completions" "$1" "$(chat_body "${2:-mock-small}" "${3:-100}")"
}
usage() { # KEY: the usage report into $tmp/usage.json
  call GET "$base/v1/billing/usage" "$1"
  expect_status 200 "usage report"
  cp "$tmp/body" "$tmp/usage.json"
}
used() { jget ".usage.$1.used" "$tmp/usage.json"; }
mcp() { # KEY ID METHOD [PARAMS]
  call POST "$base/mcp" "$1" \
    "{\"jsonrpc\":\"2.0\",\"id\":$2,\"method\":\"$3\",\"params\":${4:-{\}}}"
}

echo "--- 401: missing and unknown API keys"
call POST "$base/v1/chat/completions" "" "$(chat_body mock-small 10)"
expect_status 401 "no Authorization header"
expect_eq "401 error.code" invalid_api_key "$(jget .error.code)"
expect_eq "401 error.type" invalid_request_error "$(jget .error.type)"
expect_eq "WWW-Authenticate" Bearer "$(header WWW-Authenticate)"
chat sk-nobody
expect_status 401 "unknown key"
expect_eq "unknown key message" "Invalid API key" "$(jget .error.message)"

echo "--- 400: malformed bodies"
call POST "$base/v1/chat/completions" sk-basic '{"model": "mock-small", '
expect_status 400 "truncated JSON"
expect_eq "400 error.type" invalid_request_error "$(jget .error.type)"
expect_eq "400 message" "request body is not valid JSON" "$(jget .error.message)"
call POST "$base/v1/chat/completions" sk-basic '{"model":"mock-small"}'
expect_status 400 "no messages"
expect_eq "400 message" "messages: must be an array" "$(jget .error.message)"
call POST "$base/v1/chat/completions" sk-basic \
  '{"messages":[],"max_tokens":-1}'
expect_status 400 "negative max_tokens"
call POST "$base/mcp" sk-mcp 'not json'
expect_status 400 "MCP parse error"
expect_eq "JSON-RPC parse error code" -32700 "$(jget .error.code)"

echo "--- 404, 405"
call GET "$base/v1/nothing" sk-basic
expect_status 404 "unknown route"
call GET "$base/v1/chat/completions" sk-basic
expect_status 405 "GET on chat completions"
expect_eq "Allow" POST "$(header Allow)"

echo "--- 200: chat completions forwarded, usage committed from the upstream"
for i in 1 2 3; do
  chat sk-basic mock-small 100
  expect_status 200 "chat #$i"
  expect_eq "chat #$i object" chat.completion "$(jget .object)"
  expect_eq "chat #$i prompt_tokens" 10 "$(jget .usage.prompt_tokens)"
  expect_eq "chat #$i completion_tokens" 16 "$(jget .usage.completion_tokens)"
  expect_match "chat #$i RateLimit-Policy" '^"monthly_' "$(header RateLimit-Policy)"
done
usage sk-basic
expect_eq "acct-basic account" acct-basic "$(jget .account "$tmp/usage.json")"
expect_eq "acct-basic requests" 3 "$(used monthly_requests)"
# Reserved 10 + 100 per request at check, committed 10 + 16 = 26.
expect_eq "acct-basic tokens (3 x 26)" 78 "$(used monthly_tokens)"
expect_eq "acct-basic cost (1 micro per token)" 78 "$(used monthly_cost)"
expect_eq "acct-basic tool calls" 0 "$(used monthly_tool_calls)"

echo "--- failed upstream calls are refunded"
chat sk-basic mock-error 100
expect_status 502 "upstream 500"
expect_eq "502 error.code" upstream_error "$(jget .error.code)"
expect_eq "502 error.type" server_error "$(jget .error.type)"
usage sk-basic
expect_eq "requests after a failed call" 3 "$(used monthly_requests)"
expect_eq "tokens after a failed call" 78 "$(used monthly_tokens)"

echo "--- 402 billing_limit_reached after soft nudge and grace (monthly tokens)"
# Plan pro: 100 tokens a month, soft nudge at 50%, 50% grace (hard 150).
# Each request reserves and uses 10 + 10 = 20 tokens.
expected_warnings=("" "" soft_nudge soft_nudge soft_nudge grace grace)
for i in "${!expected_warnings[@]}"; do
  chat sk-tokens mock-small 10
  expect_status 200 "token request #$((i + 1))"
  expect_eq "token request #$((i + 1)) X-Plangate-Warning" \
    "${expected_warnings[$i]}" "$(header X-Plangate-Warning)"
done
chat sk-tokens mock-small 10
expect_status 402 "token request #8 (140 + 20 > 150)"
expect_eq "402 error.code" billing_limit_reached "$(jget .error.code)"
expect_eq "402 error.type" insufficient_quota "$(jget .error.type)"
expect_eq "402 X-RateLimit-Limit" 150 "$(header X-RateLimit-Limit)"
# A denial reports what is left (10 tokens), which this request (20) exceeds.
expect_eq "402 X-RateLimit-Remaining" 10 "$(header X-RateLimit-Remaining)"
expect_match "402 RateLimit" '^"monthly_tokens";r=10;t=[0-9]+$' "$(header RateLimit)"
expect_match "402 RateLimit-Policy" '^"monthly_tokens";q=150;w=[0-9]+$' \
  "$(header RateLimit-Policy)"
expect_match "402 Retry-After" '^[0-9]+$' "$(header Retry-After)"
expect_eq "402 Content-Type" application/json "$(header Content-Type)"
usage sk-tokens
expect_eq "acct-tokens tokens" 140 "$(used monthly_tokens)"
expect_eq "acct-tokens state" grace "$(jget .usage.monthly_tokens.state "$tmp/usage.json")"
expect_eq "acct-tokens requests (the denial not counted)" 7 "$(used monthly_requests)"

echo "--- 402 feature_not_in_plan (BYOK), payment_required, insufficient_credit"
chat sk-basic-byok mock-small 10
expect_status 402 "BYOK key on a plan without byok"
expect_eq "BYOK error.code" feature_not_in_plan "$(jget .error.code)"
expect_match "BYOK message names the upgrade" scale "$(jget .error.message)"
chat sk-blocked mock-small 10
expect_status 402 "blocked account"
expect_eq "blocked error.code" payment_required "$(jget .error.code)"
chat sk-pastdue mock-small 10
expect_status 200 "past-due account inside its grace"
expect_eq "past-due warning" past_due "$(header X-Plangate-Warning)"
chat sk-broke mock-small 10
expect_status 402 "prepaid account with an empty wallet"
expect_eq "wallet error.code" insufficient_credit "$(jget .error.code)"
chat sk-wallet mock-small 100
expect_status 200 "prepaid account with credit"
usage sk-wallet
# 1,000,000 micros credited; 110 reserved at check, 26 debited at commit.
expect_eq "wallet after one call" 999974 "$(jget .wallet_micros "$tmp/usage.json")"

echo "--- 403: model allowlist, key kind, unknown account"
chat sk-basic gpt-4o 10
expect_status 403 "model outside the allowlist"
expect_eq "model error.code" plan_limit_error "$(jget .error.code)"
expect_eq "model error.type" permission_denied "$(jget .error.type)"
chat sk-free-live mock-small 10
expect_status 403 "live key on a test-only plan"
expect_eq "key kind error.code" production_access_disabled "$(jget .error.code)"
chat sk-ghost mock-small 10
expect_status 403 "account not registered"
expect_eq "unknown account error.code" unknown_account "$(jget .error.code)"

echo "--- test keys are never counted"
for i in 1 2 3 4 5; do
  chat sk-free-test mock-small 10
  expect_status 200 "test key #$i"
done
usage sk-free-test
expect_eq "acct-free requests after 5 test calls" 0 "$(used monthly_requests)"

echo "--- 429 per-minute limit; internal keys unlimited, test keys free"
# The limit is 3 in a fixed UTC minute: stay clear of a minute boundary.
second=$((10#$(date -u +%S)))
if ((second > 45)); then
  echo "(waiting $((61 - second)) s for the next minute)"
  sleep $((61 - second))
fi
for i in 1 2 3 4 5; do
  chat sk-rate-internal mock-small 10
  expect_status 200 "internal key #$i"
  chat sk-rate-test mock-small 10
  expect_status 200 "test key #$i"
done
for i in 1 2 3; do
  chat sk-rate mock-small 10
  expect_status 200 "live key #$i"
  expect_eq "live key #$i X-RateLimit-Remaining" $((3 - i)) \
    "$(header X-RateLimit-Remaining)"
done
chat sk-rate mock-small 10
expect_status 429 "live key #4"
expect_eq "429 error.code" rate_limited "$(jget .error.code)"
expect_eq "429 error.type" rate_limit_exceeded "$(jget .error.type)"
retry_after=$(header Retry-After)
expect_match "429 Retry-After" '^[0-9]+$' "$retry_after"
((retry_after >= 1 && retry_after <= 60)) ||
  fail "429 Retry-After $retry_after not in [1, 60]"
expect_eq "429 RateLimit-Policy" '"per_minute";q=3;w=60' "$(header RateLimit-Policy)"
expect_match "429 RateLimit" '^"per_minute";r=0;t=[0-9]+$' "$(header RateLimit)"
expect_eq "429 X-RateLimit-Limit" 3 "$(header X-RateLimit-Limit)"
chat sk-rate-internal mock-small 10
expect_status 200 "internal key past the cap"
chat sk-rate-test mock-small 10
expect_status 200 "test key past the cap"
usage sk-rate
expect_eq "acct-rate per-minute count (live only)" 3 "$(used per_minute)"

echo "--- MCP: tools/call metered as tool_calls, only when it succeeds"
mcp sk-mcp 1 initialize '{"protocolVersion":"2025-03-26"}'
expect_status 200 "initialize"
expect_eq "initialize server" plangate-mock "$(jget .result.serverInfo.name)"
mcp sk-mcp 2 tools/list
expect_status 200 "tools/list"
expect_eq "tools/list first tool" echo "$(jget '.result.tools[0].name')"
usage sk-mcp
expect_eq "tool calls after initialize + tools/list" 0 "$(used monthly_tool_calls)"
expect_eq "requests after initialize + tools/list" 0 "$(used monthly_requests)"
mcp sk-mcp 3 tools/call '{"name":"echo","arguments":{"text":"hello"}}'
expect_status 200 "tools/call echo"
expect_eq "echo result" hello "$(jget '.result.content[0].text')"
expect_eq "echo X-RateLimit-Remaining" 1 "$(header X-RateLimit-Remaining)"
mcp sk-mcp 4 tools/call '{"name":"fail"}'
expect_status 200 "tools/call fail"
expect_eq "fail isError" true "$(jget .result.isError)"
mcp sk-mcp 5 tools/call '{"name":"no-such-tool"}'
expect_status 200 "tools/call of an unknown tool"
expect_eq "unknown tool JSON-RPC error" -32602 "$(jget .error.code)"
usage sk-mcp
expect_eq "tool calls after 1 success + 2 failures" 1 "$(used monthly_tool_calls)"
mcp sk-mcp 6 tools/call '{"name":"add","arguments":{"a":2,"b":3}}'
expect_status 200 "tools/call add"
mcp sk-mcp '"seven"' tools/call '{"name":"echo","arguments":{"text":"x"}}'
# An answer to the request (HTTP 200), not a transport failure.
expect_status 200 "tools/call past the monthly cap"
expect_eq "denied JSON-RPC id" seven "$(jget .id)"
expect_eq "denied JSON-RPC code" -32000 "$(jget .error.code)"
expect_eq "denied has no result" null "$(jget .result)"
expect_eq "denied data.code" billing_limit_reached "$(jget .error.data.code)"
expect_eq "denied data.status" 402 "$(jget .error.data.status)"
expect_eq "denied data.upgrade_plan" prepaid "$(jget .error.data.upgrade_plan)"
expect_eq "denied data.retry_after = Retry-After" "$(header Retry-After)" \
  "$(jget .error.data.retry_after)"
expect_match "denied message" '^Monthly limit of 2 tool_calls' "$(jget .error.message)"
expect_eq "denied X-RateLimit-Remaining" 0 "$(header X-RateLimit-Remaining)"
usage sk-mcp
expect_eq "tool calls at the end" 2 "$(used monthly_tool_calls)"
call POST "$base/mcp" sk-mcp '{"jsonrpc":"2.0","method":"notifications/initialized"}'
expect_status 202 "notification"
mcp sk-mcp 8 tools/list
expect_status 200 "tools/list past the tool call cap (never metered)"
expect_eq "tools/list past the cap" echo "$(jget '.result.tools[0].name')"
call POST "$base/mcp" sk-mcp '{"jsonrpc":"2.0","method":"tools/call","params":{"name":"echo"}}'
expect_status 400 "tools/call as a notification"
expect_eq "tools/call notification error" -32600 "$(jget .error.code)"
usage sk-mcp
expect_eq "tool calls after the denial" 2 "$(used monthly_tool_calls)"

echo "--- MCP: a limit on one tool's own meter (tool_calls.add) caps it alone"
mcp sk-tools 1 tools/call '{"name":"add","arguments":{"a":1,"b":1}}'
expect_status 200 "add #1"
expect_eq "add #1 result" 2 "$(jget '.result.content[0].text')"
mcp sk-tools 2 tools/call '{"name":"add","arguments":{"a":1,"b":2}}'
expect_status 200 "add #2"
expect_eq "add #2 denied" -32000 "$(jget .error.code)"
expect_match "add #2 names the tool's limit" 'monthly_add_calls' "$(jget .error.message)"
mcp sk-tools 3 tools/call '{"name":"echo","arguments":{"text":"still"}}'
expect_status 200 "echo after add is capped"
expect_eq "echo still runs" still "$(jget '.result.content[0].text')"
usage sk-tools
expect_eq "all tool calls" 2 "$(used monthly_tool_calls)"
expect_eq "add calls" 1 "$(used monthly_add_calls)"

echo "--- GET /v1/models: what the key's plan allows"
call GET "$base/v1/models" sk-basic
expect_status 200 "models (pro: mock-*)"
expect_eq "models object" list "$(jget .object)"
expect_eq "pro models" \
  '["mock-small","mock-large","mock-slow","mock-error","mock-stream-slow","mock-stream-break","mock-reasoner"]' \
  "$(jq -c '[.data[].id]' "$tmp/body")"
expect_eq "model object" model "$(jget '.data[0].object')"
expect_eq "model owned_by" plangate-mock "$(jget '.data[0].owned_by')"
call GET "$base/v1/models" sk-basic-byok
expect_status 200 "models (BYOK: the upstream's list)"
expect_eq "BYOK models include gpt-4o" gpt-4o "$(jget '.data[7].id')"
call GET "$base/v1/models" sk-rate
expect_status 200 "models (a plan without an allowlist)"
expect_eq "unrestricted model count" 8 "$(jget '.data | length')"
call GET "$base/v1/models/mock-large" sk-basic
expect_status 200 "one allowed model"
expect_eq "one model id" mock-large "$(jget .id)"
expect_eq "one model object" model "$(jget .object)"
call GET "$base/v1/models/gpt-4o" sk-basic
expect_status 404 "a model the plan does not allow"
expect_eq "not allowed model error.code" model_not_found "$(jget .error.code)"
call GET "$base/v1/models/gpt%2D4o" sk-basic-byok
expect_status 200 "a percent-encoded model id (BYOK)"
expect_eq "decoded model id" gpt-4o "$(jget .id)"
call GET "$base/v1/models/bad%2" sk-basic
expect_status 400 "a malformed percent escape"
call GET "$base/v1/models" sk-nobody
expect_status 401 "models with an unknown key"
call POST "$base/v1/models" sk-basic '{}'
expect_status 405 "POST /v1/models"

echo "--- streaming: SSE relayed event by event, committed from its usage"
stream_body() { # MODEL MAX_TOKENS [STREAM_OPTIONS]
  printf '{"model":"%s","messages":[{"role":"user","content":"%s"}],"max_tokens":%s,"stream":true%s}' \
    "$1" "$text" "$2" "${3:+,\"stream_options\":$3}"
}
stream() { # KEY BODY: the events into $tmp/body, headers into $tmp/headers
  call POST "$base/v1/chat/completions" "$1" "$2"
}
tokens_used() { usage sk-stream; used monthly_tokens; }
before=$(tokens_used)
stream sk-stream "$(stream_body mock-small 5 '{"include_usage":true}')"
expect_status 200 "stream with include_usage"
expect_eq "stream Content-Type" text/event-stream "$(header Content-Type)"
expect_eq "stream Transfer-Encoding" chunked "$(header Transfer-Encoding)"
expect_match "stream RateLimit-Policy" '^"monthly_' "$(header RateLimit-Policy)"
grep '^data: ' "$tmp/body" | sed 's/^data: //' >"$tmp/events"
expect_eq "events (role, 5 content, finish, usage, [DONE])" 9 "$(wc -l <"$tmp/events")"
expect_eq "last event" '[DONE]' "$(tail -n 1 "$tmp/events")"
sed -n 8p "$tmp/events" >"$tmp/usage_chunk"
expect_eq "usage chunk choices" '[]' "$(jq -c .choices "$tmp/usage_chunk")"
expect_eq "usage chunk total_tokens" 15 "$(jget .usage.total_tokens "$tmp/usage_chunk")"
expect_eq "content" "tok tok tok tok tok " \
  "$(head -n 7 "$tmp/events" | jq -j '.choices[0].delta.content // ""')"
expect_eq "tokens committed from the usage chunk" $((before + 15)) "$(tokens_used)"

before=$(tokens_used)
stream sk-stream "$(stream_body mock-small 4)"
expect_status 200 "stream without include_usage"
grep '^data: ' "$tmp/body" | sed 's/^data: //' >"$tmp/events"
expect_eq "events (role, 4 content, finish, [DONE]): no usage chunk" 7 \
  "$(wc -l <"$tmp/events")"
expect_eq "no event carries usage" 0 \
  "$(grep -v DONE "$tmp/events" | jq -s '[.[] | select(.usage != null)] | length')"
expect_eq "tokens committed from the usage the gateway asked for" \
  $((before + 14)) "$(tokens_used)"

# HTTP/1.0 has no chunked encoding: the stream runs to the connection's end.
status=$(curl -sS --http1.0 --max-time 20 -o "$tmp/body" -D "$tmp/headers" \
  -w '%{http_code}' -H 'Authorization: Bearer sk-stream' \
  -H 'Content-Type: application/json' --data-binary "$(stream_body mock-small 2)" \
  "$base/v1/chat/completions") || fail "HTTP/1.0 stream failed"
expect_status 200 "HTTP/1.0 stream"
expect_eq "HTTP/1.0 stream Transfer-Encoding" "" "$(header Transfer-Encoding)"
expect_eq "HTTP/1.0 stream events" 5 "$(grep -c '^data: ' "$tmp/body")"
expect_eq "HTTP/1.0 stream last event" 'data: [DONE]' "$(grep '^data: ' "$tmp/body" | tail -n 1)"

# Incremental: the slow model sends an event every 100 ms (13 events for
# max_tokens 10); the first must reach the client long before the last.
t0=$(date +%s%N)
curl -sSN --max-time 20 -H 'Authorization: Bearer sk-stream' \
  -H 'Content-Type: application/json' \
  --data-binary "$(stream_body mock-stream-slow 10)" \
  "$base/v1/chat/completions" | while IFS= read -r line; do
  if [[ "$line" == data:* ]]; then
    echo "$((($(date +%s%N) - t0) / 1000000)) ${line:6:20}"
  fi
done >"$tmp/timed"
first_ms=$(head -n 1 "$tmp/timed" | cut -d' ' -f1)
last_ms=$(tail -n 1 "$tmp/timed" | cut -d' ' -f1)
expect_eq "slow stream events" 13 "$(wc -l <"$tmp/timed")"
((first_ms < 700)) || fail "first event after $first_ms ms: the stream was buffered"
((last_ms - first_ms >= 900)) ||
  fail "events $first_ms..$last_ms ms apart: not relayed as they came"

echo "--- streaming: a broken upstream, a client that leaves, nothing produced"
before=$(tokens_used)
stream sk-stream "$(stream_body mock-stream-break 10)"
expect_status 200 "stream that breaks"
grep '^data: ' "$tmp/body" | sed 's/^data: //' >"$tmp/events"
# role + 5 content events, then the gateway's error event; no [DONE].
expect_eq "events before the break + error" 7 "$(wc -l <"$tmp/events")"
expect_eq "final error event code" upstream_error \
  "$(tail -n 1 "$tmp/events" | jq -r .error.code)"
expect_eq "broken stream commits what was streamed (10 + 5)" \
  $((before + 15)) "$(tokens_used)"

before=$(tokens_used)
call GET "$base/metrics" ""
refunds_before=$(grep '^plangate_gateway_refunds_total ' "$tmp/body" | cut -d' ' -f2)
stream sk-stream "$(stream_body mock-stream-break 0)"
expect_status 200 "stream that breaks before any content"
expect_eq "nothing produced: refunded" "$before" "$(tokens_used)"
call GET "$base/metrics" ""
expect_eq "refunds after an empty broken stream" $((refunds_before + 1)) \
  "$(grep '^plangate_gateway_refunds_total ' "$tmp/body" | cut -d' ' -f2)"

before=$(tokens_used)
curl -sSN --max-time 0.45 -o /dev/null -H 'Authorization: Bearer sk-stream' \
  -H 'Content-Type: application/json' \
  --data-binary "$(stream_body mock-stream-slow 10)" \
  "$base/v1/chat/completions" 2>/dev/null || true
sleep 1.5 # the gateway notices at its next write, 100 ms later
after=$(tokens_used)
# 10 prompt tokens + what was streamed before the client left (> 0 and
# < the 10 a whole stream has).
((after - before > 10 && after - before < 20)) ||
  fail "client disconnect: committed $((after - before)) tokens, want 11..19"
checks=$((checks + 1))

stream sk-blocked "$(stream_body mock-small 5)"
expect_status 402 "denied stream: a JSON error, not a stream"
expect_eq "denied stream Content-Type" application/json "$(header Content-Type)"
expect_eq "denied stream error.code" payment_required "$(jget .error.code)"
before=$(tokens_used)
stream sk-stream "$(stream_body mock-error 5)"
expect_status 502 "stream request to a failing model"
expect_eq "failing stream error.code" upstream_error "$(jget .error.code)"
expect_eq "failing stream refunded" "$before" "$(tokens_used)"
# The connection pool still works after the broken and abandoned streams.
chat sk-stream mock-small 3
expect_status 200 "plain chat after the streams"

echo "--- billing plans, metrics"
call GET "$base/v1/billing/plans" ""
expect_status 200 "plans"
expect_eq "first plan" free "$(jget '.plans[0].id')"
expect_eq "sixth plan" scale "$(jget '.plans[5].id')"
expect_eq "last plan" agent "$(jget '.plans[6].id')"
expect_eq "pro token hard limit" 150 "$(jget '.plans[3].limits[1].hard_limit')"
call GET "$base/metrics" ""
expect_status 200 "metrics"
metrics=$(cat "$tmp/body")
expect_match "metrics: checks" 'plangate_gateway_checks_total [1-9][0-9]*' "$metrics"
expect_match "metrics: refunds" 'plangate_gateway_refunds_total [1-9]' "$metrics"
expect_match "metrics: 429s" 'plangate_gateway_responses_total\{code="429"\} 1' "$metrics"
expect_match "metrics: enforcer" 'plangate_subjects [1-9]' "$metrics"
# Streams above: 2, HTTP/1.0, the slow one, 2 broken, 1 abandoned (the 402
# and the 502 never became streams).
expect_match "metrics: streams" 'plangate_gateway_streams_total 7' "$metrics"
expect_match "metrics: broken streams" 'plangate_gateway_streams_broken_total 2' "$metrics"
expect_match "metrics: abandoned streams" 'plangate_gateway_streams_abandoned_total 1' "$metrics"

echo "--- a stream past its estimate extends its reservation, cut at the cap"
# Estimates of 10 prompt + 2 completion tokens, extended 4 at a time; the
# mock streams 16 tokens when no max_tokens is set. The account's monthly
# tokens: 45, no grace.
start_gateway capped "${files[@]}" --threads 1 --default-max-tokens 2 \
  --stream-extend-tokens 4
capped_base="http://127.0.0.1:$capped_port"
open_body=$(printf '{"model":"mock-small","messages":[{"role":"user","content":"%s"}],"stream":true}' "$text")
capped_used() {
  call GET "$capped_base/v1/billing/usage" sk-streamcap
  jget .usage.monthly_tokens.used
}
call POST "$capped_base/v1/chat/completions" sk-streamcap "$open_body"
expect_status 200 "a stream past its estimate"
expect_eq "extended stream: role, 16 content, finish, [DONE]" 19 \
  "$(grep -c '^data: ' "$tmp/body")"
expect_eq "extended stream committed from its usage (10 + 16)" 26 "$(capped_used)"
# The second: 26 + 12 at check, + 4 when it passes 12 tokens (42), and the
# next 4 would pass 45: cut after 6 content events, with the denial.
call POST "$capped_base/v1/chat/completions" sk-streamcap "$open_body"
expect_status 200 "a stream cut at the cap"
grep '^data: ' "$tmp/body" | sed 's/^data: //' >"$tmp/events"
expect_eq "cut stream: role, 6 content, the denial" 8 "$(wc -l <"$tmp/events")"
expect_eq "cut stream content" "tok tok tok tok tok tok " \
  "$(head -n 7 "$tmp/events" | jq -j '.choices[0].delta.content // ""')"
cut_code=$(tail -n 1 "$tmp/events" | jq -r .error.code)
expect_eq "cut stream: no [DONE]" 0 "$(grep -c DONE "$tmp/events" || true)"
expect_eq "cut stream commits what went out (26 + 10 + 6), inside the cap" 42 \
  "$(capped_used)"
# A plain request now is denied by the same limit, with the same code.
call POST "$capped_base/v1/chat/completions" sk-streamcap "$(chat_body mock-small 10)"
expect_eq "the cut stream's code is the limit's" "$(jget .error.code)" "$cut_code"
[[ "$cut_code" != null && -n "$cut_code" ]] || fail "cut stream: no error code"
call GET "$capped_base/metrics" ""
expect_match "metrics: cut streams" 'plangate_gateway_streams_cut_total 1' \
  "$(cat "$tmp/body")"

echo "--- an unreachable upstream: 502, nothing counted"
start_gateway down "${files[@]}" --threads 1 --upstream http://127.0.0.1:1
call POST "http://127.0.0.1:$down_port/v1/chat/completions" sk-basic \
  "$(chat_body mock-small 10)"
expect_status 502 "connection refused upstream"
expect_eq "unreachable error.code" upstream_unavailable "$(jget .error.code)"
call GET "http://127.0.0.1:$down_port/v1/models" sk-basic
expect_status 200 "models, upstream down, plan allowlist of patterns only"
expect_eq "models with the upstream down" '[]' "$(jq -c .data "$tmp/body")"
call GET "http://127.0.0.1:$down_port/v1/models" sk-basic-byok
expect_status 502 "models for BYOK with the upstream down"
expect_eq "BYOK models error.code" upstream_error "$(jget .error.code)"
call GET "http://127.0.0.1:$down_port/v1/billing/usage" sk-basic
expect_eq "requests counted with the upstream down" 0 \
  "$(jget .usage.monthly_requests.used)"

echo "--- --no-enforce relays streams too"
start_gateway plain "${files[@]}" --threads 1 --no-enforce
call POST "http://127.0.0.1:$plain_port/v1/chat/completions" sk-blocked \
  "$(stream_body mock-small 3)"
expect_status 200 "stream without enforcement (a blocked account's key)"
expect_eq "unenforced stream events" 6 "$(grep -c '^data: ' "$tmp/body")"
expect_eq "unenforced stream: no plangate headers" "" "$(header RateLimit-Policy)"

echo "--- --mcp-denial tool_result: a denied tools/call is a tool result"
start_gateway agent "${files[@]}" --threads 1 --mcp-denial tool_result
agent_base="http://127.0.0.1:$agent_port"
for i in 1 2; do
  call POST "$agent_base/mcp" sk-mcp \
    "{\"jsonrpc\":\"2.0\",\"id\":$i,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"text\":\"a\"}}}"
  expect_status 200 "agent tools/call #$i"
done
call POST "$agent_base/mcp" sk-mcp \
  '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"a"}}}'
expect_status 200 "agent tools/call past the cap"
expect_eq "tool result isError" true "$(jget .result.isError)"
expect_eq "no JSON-RPC error" null "$(jget .error)"
expect_match "text for the model" \
  '^The tool "echo" was not run: Monthly limit of 2 tool_calls .* \(HTTP 402, billing_limit_reached\)\.$' \
  "$(jget '.result.content[0].text')"
expect_eq "_meta denial code" billing_limit_reached \
  "$(jget '.result._meta["plangate/denial"].code')"
expect_eq "_meta denial status" 402 "$(jget '.result._meta["plangate/denial"].status')"
rc=0
out=$("$GATEWAY" "${files[@]}" --mcp-denial http402 2>&1) || rc=$?
expect_eq "bad --mcp-denial exit status" 2 "$rc"
expect_match "bad --mcp-denial message" \
  '^plangate_gateway: --mcp-denial: must be error or tool_result \(got "http402"\)' "$out"

echo "--- bad configuration is reported by file and field"
printf '[{"key":"k1","account":"a"},{"key":"k2","account":"a","kind":"prod"}]' \
  >"$tmp/bad_keys.json"
rc=0
out=$("$GATEWAY" --catalog "$data/catalog.json" --keys "$tmp/bad_keys.json" 2>&1) || rc=$?
expect_eq "bad keys file exit status" 1 "$rc"
expect_eq "bad keys file message" \
  "plangate_gateway: $tmp/bad_keys.json: [1].kind: must be live, test or internal" "$out"
rc=0
out=$("$GATEWAY" --catalog "$data/catalog.json" 2>&1) || rc=$?
expect_eq "missing --keys exit status" 2 "$rc"
expect_match "missing --keys message" '^plangate_gateway: --keys: required' "$out"
if [[ "$with_sync" != 1 ]]; then
  rc=0
  out=$("$GATEWAY" "${files[@]}" --redis redis://127.0.0.1:6379 2>&1) || rc=$?
  expect_eq "--redis without sync exit status" 1 "$rc"
  expect_match "--redis without sync message" \
    '^plangate_gateway: --redis: this plangate_gateway was built without cluster sync' "$out"
fi

echo "--- cached and reasoning tokens priced at their own rates"
# mock-reasoner reports 10 prompt tokens, 5 of them cached, and 16
# completion tokens, 8 of them reasoning. Its price (catalog.json), per
# token: 2 input, 0.5 cached, 4 output, 8 reasoning: 5 x 2 + 5 x 0.5 +
# 8 x 4 + 8 x 8 = 108.5, rounded up to 109 (not 84, which ignores the
# details, nor more, which counts them twice).
chat sk-reasoner mock-reasoner 100
expect_status 200 "chat mock-reasoner"
expect_eq "cached_tokens relayed" 5 \
  "$(jget .usage.prompt_tokens_details.cached_tokens)"
expect_eq "reasoning_tokens relayed" 8 \
  "$(jget .usage.completion_tokens_details.reasoning_tokens)"
usage sk-reasoner
expect_eq "cost of cached and reasoning tokens" 109 "$(used monthly_cost)"
expect_eq "tokens: the total, every kind included" 26 "$(used monthly_tokens)"
call POST "$base/v1/chat/completions" sk-reasoner \
  "$(stream_body mock-reasoner 100 '{"include_usage":true}')"
expect_status 200 "stream mock-reasoner"
grep '^data: ' "$tmp/body" | sed 's/^data: //' | grep '"usage":{' >"$tmp/usage_chunk"
expect_eq "stream usage chunk cached_tokens" 5 \
  "$(jget .usage.prompt_tokens_details.cached_tokens "$tmp/usage_chunk")"
usage sk-reasoner
expect_eq "stream cost from its usage chunk" 218 "$(used monthly_cost)"

echo "--- per-model usage in the usage report (pro: usage_by_model)"
chat sk-reasoner mock-small 100
expect_status 200 "chat mock-small"
usage sk-reasoner
expect_eq "mock-reasoner requests" 2 \
  "$(jget '.models["mock-reasoner"].requests' "$tmp/usage.json")"
expect_eq "mock-reasoner tokens" 52 \
  "$(jget '.models["mock-reasoner"].tokens' "$tmp/usage.json")"
expect_eq "mock-reasoner cost" 218 \
  "$(jget '.models["mock-reasoner"].cost_micros' "$tmp/usage.json")"
expect_eq "mock-small cost" 26 \
  "$(jget '.models["mock-small"].cost_micros' "$tmp/usage.json")"
expect_eq "no other models" null "$(jget .other_models "$tmp/usage.json")"
expect_eq "the plan's total" 244 "$(used monthly_cost)"

echo "--- graceful shutdown finishes the request in flight"
curl -sS --max-time 10 -o "$tmp/slow.body" -w '%{http_code}' \
  -H 'Authorization: Bearer sk-basic' -H 'Content-Type: application/json' \
  --data-binary '{"model":"mock-slow","messages":[]}' \
  "$base/v1/chat/completions" >"$tmp/slow.status" &
slow=$!
sleep 0.3 # the request is at the mock upstream now (it answers after 1 s)
kill -TERM "$gw_pid"
for _ in $(seq 1 100); do
  kill -0 "$gw_pid" 2>/dev/null || break
  sleep 0.05
done
wait "$slow" || fail "the in-flight request failed during shutdown"
expect_eq "in-flight request status" 200 "$(cat "$tmp/slow.status")"
rc=0
wait "$gw_pid" || rc=$?
expect_eq "gateway exit status after SIGTERM" 0 "$rc"
grep -q 'plangate_gateway: stopped' "$tmp/gw.log" || fail "no 'stopped' in the log"
if curl -sS -o /dev/null --max-time 1 "$base/healthz" 2>/dev/null; then
  fail "the gateway still accepts connections after SIGTERM"
fi

stop_all
echo "PASS: $checks checks"
