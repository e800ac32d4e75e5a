# shellcheck shell=bash
# Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
#
# lib.sh: start nginx with plangate.lua from nginx.conf.in (sourced by
# e2e_test.sh and bench.sh; also usable by hand, see README.md).
#
#   free_port                       prints a free loopback port
#   start_nginx NAME DIR UPSTREAM_PORT WORKERS ENFORCE REDIS_URL
#                                   renders nginx.conf.in into DIR, starts
#                                   nginx in the foreground (background
#                                   job) on a free loopback port, waits for
#                                   /healthz; sets NAME_pid and NAME_port.
#                                   A port taken between the probe and
#                                   nginx's bind (tests run in parallel) is
#                                   retried on another.
#                                   REDIS_URL "" for none. Needs LIBRARY,
#                                   CATALOG, KEYS, ACCOUNTS (files) and
#                                   optionally REDIS_PREFIX in the
#                                   environment.

nginx_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# A sanitized LIBRARY (the asan preset's) needs its runtime loaded first in
# the uninstrumented nginx, and libstdc++ with it (ASan binds its
# __cxa_throw interceptor at start); nginx's own allocations at exit are not
# the library's leaks. ldd's output is read whole before it is searched:
# `ldd | grep -q` under pipefail failed whenever grep, having found its
# line, exited while ldd was still writing (SIGPIPE). On a busy machine
# that happened now and then, nginx then started without the runtime, and
# every worker it forked died at once ("ASan runtime does not come first"),
# forever, while the test waited for an answer.
nginx_env=(env)
library_deps=
if [[ -n "${LIBRARY:-}" ]]; then library_deps=$(ldd "$LIBRARY" 2>/dev/null || true); fi
if [[ "$library_deps" == *libasan.so* ]]; then
  asan_rt=$(awk '/libasan\.so/ {print $3}' <<<"$library_deps")
  stdcxx=$(awk '/libstdc\+\+\.so/ {print $3}' <<<"$library_deps")
  nginx_env=(env "LD_PRELOAD=$asan_rt:$stdcxx"
    "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0")
fi

free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

start_nginx() {
  local name=$1 dir=$2 upstream=$3 workers=$4 enforce=$5 redis=$6 port rc
  for _ in $(seq 1 5); do
    port=$(free_port) || return 1
    rc=0
    start_nginx_on "$name" "$dir" "$port" "$upstream" "$workers" "$enforce" \
      "$redis" || rc=$?
    if ((rc == 0)); then
      printf -v "${name}_port" '%s' "$port"
      return 0
    fi
    ((rc == 75)) || return "$rc"
    echo "nginx $name: port $port was taken meanwhile; another" >&2
  done
  return 1
}

# start_nginx_on NAME DIR PORT ...: start_nginx on a given port; 75 when
# nginx could not bind it.
start_nginx_on() {
  local name=$1 dir=$2 port=$3 upstream=$4 workers=$5 enforce=$6 redis=$7
  local redis_lua=nil pid
  [[ -n "$redis" ]] && redis_lua="\"$redis\""
  mkdir -p "$dir"
  : >"$dir/error.log"
  sed -e "s|@PREFIX@|$dir|g" -e "s|@WORKERS@|$workers|g" \
    -e "s|@LISTEN@|127.0.0.1:$port|g" -e "s|@UPSTREAM@|127.0.0.1:$upstream|g" \
    -e "s|@LUA_DIR@|$nginx_dir|g" -e "s|@LIBRARY@|$LIBRARY|g" \
    -e "s|@CATALOG@|$CATALOG|g" -e "s|@KEYS@|$KEYS|g" \
    -e "s|@ACCOUNTS@|$ACCOUNTS|g" -e "s|@REDIS@|$redis_lua|g" \
    -e "s|@PREFIX_KEY@|${REDIS_PREFIX:-pg}|g" -e "s|@ENFORCE@|$enforce|g" \
    "$nginx_dir/nginx.conf.in" >"$dir/nginx.conf"
  nginx -t -q -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" ||
    { echo "nginx -t failed:" >&2; cat "$dir/error.log" >&2; return 1; }
  "${nginx_env[@]}" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" &
  pid=$!
  printf -v "${name}_pid" '%s' "$pid"
  # Generous waits (30 s each): the test machines are small and shared.
  for _ in $(seq 1 300); do
    if curl -sS -o /dev/null --max-time 1 "http://127.0.0.1:$port/healthz" 2>/dev/null; then
      # Every worker has run init_worker (or failed: error.log says why).
      for _ in $(seq 1 600); do
        local ready
        ready=$(grep -c "worker .* ready" "$dir/error.log" 2>/dev/null || true)
        if [[ "$enforce" != on ]] || ((ready >= workers)); then return 0; fi
        if grep -q "init_worker_by_lua.*error\|\[error\].*plangate" "$dir/error.log"; then break; fi
        sleep 0.05
      done
      echo "nginx $name: $workers workers not ready after 30 s; error.log:" >&2
      tail -n 30 "$dir/error.log" >&2
      return 1
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      # nginx exited: a lost race for the port is retried by the caller.
      wait "$pid" 2>/dev/null || true
      if grep -q "Address already in use" "$dir/error.log"; then return 75; fi
      break
    fi
    # A worker that died while starting is restarted by the master, and
    # dies again: say so now rather than after 300 unanswered requests.
    if grep -q "worker process [0-9]* exited" "$dir/error.log"; then
      echo "nginx $name: a worker died while starting; error.log:" >&2
      grep -v '\[info\]\|\[notice\]' "$dir/error.log" | head -n 20 >&2 || true
      return 1
    fi
    sleep 0.1
  done
  echo "nginx $name does not answer on port $port; error.log:" >&2
  tail -n 30 "$dir/error.log" >&2
  return 1
}
