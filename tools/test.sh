#!/usr/bin/env bash
# plangate's whole check, as CI runs it (.ci/run) on a fresh Debian 12
# machine (as root). Stages, in order:
#
#   release  `release` preset: build, ctest
#   asan     `asan` preset (ASan + UBSan): build, ctest
#   tsan     `tsan` preset (TSan, no benchmarks): build, ctest (the tests
#            that run threads: label single_threaded is left out)
#   bench    every benchmark of build/release/bench, briefly; JSON results in
#            build/bench-results/
#   install  tools/demo.sh: install into build/stage, build
#            examples/quickstart against it and run it
#   fuzz     the libFuzzer targets of tests/fuzz (clang-14, ASan + UBSan) in
#            build/fuzz, each for 60 s from its seed corpus; a crash fails
#
# While a stage's tests run, the next stage's tree (asan, tsan, fuzz) is
# built in the background at nice 19; see prebuild_after.
#
# A private redis-server runs on a free loopback port for the whole run; tests
# find it through PLANGATE_TEST_REDIS_PORT, and tests that start servers of
# their own find the binary through PLANGATE_TEST_REDIS_SERVER. The sanitizer
# options (suppression files in tools/sanitizers/) come from the test presets
# in CMakePresets.json.
#
# Environment:
#   PLANGATE_TEST_STAGES  stages to run (default "release asan tsan bench install fuzz")
#   PLANGATE_JOBS         build parallelism (default: nproc)
#
# Prints PASS/FAIL per stage with its time, exits non-zero if any stage
# failed, and ends with one line "N passed, M failed" counting the ctest
# tests of all configurations (a stage that failed outside ctest counts as
# one failure).
# The stage functions and cleanup run indirectly ("stage_$stage", trap).
# shellcheck disable=SC2317
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
stages=${PLANGATE_TEST_STAGES:-"release asan tsan bench install fuzz"}
jobs=${PLANGATE_JOBS:-$(nproc)}
for stage in $stages; do
  case "$stage" in
    release | asan | tsan | bench | install | fuzz) ;;
    *)
      echo "test.sh: unknown stage '$stage' (known: release asan tsan bench install fuzz)" >&2
      exit 2
      ;;
  esac
done

tools/install-deps.sh

declare -A prebuild_pids=()  # background builds (prebuild_after), by stage
tmp=$(mktemp -d "${TMPDIR:-/tmp}/plangate-test.XXXXXX")
redis_pid=
# kill_tree PID: PID and everything it started.
kill_tree() {
  local child
  for child in $(pgrep -P "$1" || true); do kill_tree "$child"; done
  kill "$1" 2>/dev/null || true
}
cleanup() {
  local pid
  for pid in "${prebuild_pids[@]}"; do
    if [[ -n "$pid" ]]; then kill_tree "$pid"; fi
  done
  if [[ -n "$redis_pid" ]]; then
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A private redis-server on a free loopback port, in a temp dir, no
# persistence.
start_redis() {
  local port
  for _ in $(seq 1 20); do
    port=$((20000 + RANDOM % 20000))
    # Skip a port something already listens on.
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
      --dir "$tmp" --daemonize no >"$tmp/redis.log" 2>&1 &
    redis_pid=$!
    for _ in $(seq 1 50); do
      if [[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" == PONG ]]; then
        export PLANGATE_TEST_REDIS_PORT=$port
        PLANGATE_TEST_REDIS_SERVER=$(command -v redis-server)
        export PLANGATE_TEST_REDIS_SERVER
        echo "test.sh: redis-server $(redis-server --version | awk '{print $3}') on 127.0.0.1:$port (pid $redis_pid)"
        return 0
      fi
      kill -0 "$redis_pid" 2>/dev/null || break  # died: port taken, retry
      sleep 0.1
    done
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=
  done
  echo "test.sh: could not start redis-server; its log:" >&2
  cat "$tmp/redis.log" >&2 || true
  return 1
}
start_redis

# TSan's runtime in GCC 12 cannot map its shadow memory when the kernel's
# mmap randomization exceeds 28 bits ("FATAL: ThreadSanitizer: unexpected
# memory mapping"); run the sanitized tests without ASLR there.
norandom=()
if [[ -r /proc/sys/vm/mmap_rnd_bits ]] &&
  (($(cat /proc/sys/vm/mmap_rnd_bits) > 28)) &&
  setarch "$(uname -m)" -R true 2>/dev/null; then
  norandom=(setarch "$(uname -m)" -R)
fi

total_passed=0
total_failed=0
summary=()
failures=()  # "preset test" for every ctest test that failed

# build PRESET: configure and build a preset's tree. When a background
# build of it was started (prebuild), wait for it and show its output
# first; the build that follows then only checks that it is up to date
# (or repeats its errors).
build() {
  await_prebuild "$1"
  build_tree "$1"
}
build_tree() {
  cmake --preset "$1" && cmake --build --preset "$1" --parallel "$jobs"
}

# The builds overlap the tests: while a stage's tests run (they mostly
# wait on redis-servers, proxies and timeouts), the next stage's tree is
# built in the background at the lowest CPU priority (nice 19), so a test
# that needs the CPU still gets it first. The benchmarks never run beside a
# build: stage_bench waits for every background build first.
prebuild_order=(asan tsan fuzz)

# prebuild_after STAGE: start the background build of the first later
# stage (asan, tsan or fuzz, as chosen) that builds a tree of its own.
prebuild_after() {
  local seen=0 s next=
  for s in $stages; do
    if ((seen)) && [[ " ${prebuild_order[*]} " == *" $s "* ]]; then
      next=$s
      break
    fi
    [[ "$s" == "$1" ]] && seen=1
  done
  [[ -n "$next" && -z "${prebuild_pids[$next]:-}" ]] || return 0
  echo "test.sh: building $next in the background (nice 19) beside the $1 tests"
  (
    renice -n 19 -p "$BASHPID" >/dev/null
    if [[ "$next" == fuzz ]]; then build_fuzz; else build_tree "$next"; fi
  ) >"$tmp/prebuild-$next.log" 2>&1 &
  prebuild_pids[$next]=$!
}

# await_prebuild NAME: wait for NAME's background build, if one was
# started, and print its output. Its result is not trusted: the caller
# builds again in the foreground, which is a no-op when it succeeded.
await_prebuild() {
  local pid=${prebuild_pids[$1]:-}
  [[ -n "$pid" ]] || return 0
  local start=$SECONDS
  wait "$pid" || true
  echo "test.sh: background build of $1 done (waited $((SECONDS - start))s); its output:"
  tail -n 30 "$tmp/prebuild-$1.log"
  prebuild_pids[$1]=
}

await_all_prebuilds() {
  local name
  for name in "${!prebuild_pids[@]}"; do await_prebuild "$name"; done
}

# ctest_preset PRESET [CTEST ARGS...]: run the preset's tests and add them
# to the totals.
ctest_preset() {
  local log="$tmp/ctest-$1.log" rc=0 line passed failed
  "${norandom[@]}" ctest --preset "$1" "${@:2}" 2>&1 | tee "$log" || rc=$?
  line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
  if [[ -z "$line" ]]; then
    echo "test.sh: ctest --preset $1 printed no summary" >&2
    return 1
  fi
  failed=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
  passed=$(($(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line") - failed))
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed))
  stage_note="$passed/$((passed + failed)) tests passed"
  # ctest lists failures as "  12 - name (Failed)" after "The following
  # tests FAILED:"; keep the names for the report at the end.
  local name
  while read -r name; do
    [[ -n "$name" ]] && failures+=("$1 $name")
  done < <(sed -n '/The following tests FAILED:/,$p' "$log" |
    sed -n -E 's/^[[:space:]]*[0-9]+ - ([^ ]+) .*/\1/p')
  if ((${#failures[@]} > 0)); then
    stage_note+="; failed: $(printf '%s\n' "${failures[@]}" | awk -v p="$1" '$1 == p {printf "%s%s", sep, $2; sep = ", "}')"
  fi
  return "$rc"
}

# failure_tail PRESET TEST: the last lines the failed test printed, from
# ctest's full log of the run.
failure_tail() {
  local last="$root/build/$1/Testing/Temporary/LastTest.log"
  [[ -r "$last" ]] || return 0
  awk -v t="$2" '
    $0 ~ "^[0-9]+/[0-9]+ Test: " t "$" {on = 1; n = 0; next}
    on && /^<end of output>/ {on = 0}
    on {buf[n++ % 60] = $0}
    END {s = n > 60 ? n - 60 : 0; for (i = s; i < n; i++) print buf[i % 60]}
  ' "$last"
}

# Release tests run two at a time: most of their time is spent waiting
# on redis-servers, proxies and timeouts (each test picks its own free
# ports). The sanitizer stages stay serial: their tests are CPU-bound.
stage_release() {
  build release || return 1
  prebuild_after release
  ctest_preset release --parallel 2
}
stage_asan() {
  build asan || return 1
  prebuild_after asan
  ctest_preset asan
}
stage_tsan() {
  build tsan || return 1
  prebuild_after tsan
  ctest_preset tsan
}

stage_bench() {
  await_all_prebuilds
  build release || return 1
  local out="$root/build/bench-results" n=0 failed=0 bin
  rm -rf "$out"
  mkdir -p "$out"
  for bin in build/release/bench/*; do
    [[ -f "$bin" && -x "$bin" ]] || continue
    n=$((n + 1))
    echo "--- $bin"
    # The wallet fault check runs N = 2 here (about 40 s); its full grid
    # (N = 2, 4, 8, about 100 s) is run for docs/BENCHMARKS.md.
    local extra=()
    if [[ $(basename "$bin") == wallet_fault_benchmark ]]; then extra=(--quick); fi
    if ! "$bin" "${extra[@]}" --benchmark_min_time=0.05 \
      --benchmark_out="$out/$(basename "$bin").json" \
      --benchmark_out_format=json; then
      echo "test.sh: $bin failed" >&2
      failed=$((failed + 1))
    fi
  done
  # Instructions per check + commit under callgrind (deterministic, unlike
  # times on this machine), beside the mutex + hash map baseline.
  local ins=""
  if command -v valgrind >/dev/null && [[ -x build/release/bench/check_instructions ]]; then
    local checks=20000 f total per
    for f in MeasuredPlangate MeasuredBaseline; do
      total=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        --collect-atstart=no --toggle-collect="*$f*" \
        build/release/bench/check_instructions --checks "$checks" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
      if [[ -z "$total" ]]; then
        echo "test.sh: callgrind printed no instruction count for $f" >&2
        failed=$((failed + 1))
        continue
      fi
      per=$((total / checks))
      echo "instructions per check + commit, ${f#Measured}: $per"
      ins+="${f#Measured} $per, "
    done
    echo "instructions per check + commit (hot account, 3 limits): ${ins%, } (target: plangate <= 300)"
    ins="; ins/check ${ins%, } (target <= 300)"
    # The same checks at the Enforcer's clock, before and with a RedisSync
    # attached (this run's redis-server): what the sync adds to a check.
    local synced=""
    for f in MeasuredPlangateClocked MeasuredPlangateSynced; do
      total=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        --collect-atstart=no --toggle-collect="*$f*" \
        build/release/bench/check_instructions --checks "$checks" \
        --synced "$PLANGATE_TEST_REDIS_PORT" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
      if [[ -z "$total" ]]; then
        echo "test.sh: callgrind printed no instruction count for $f" >&2
        failed=$((failed + 1))
        continue
      fi
      synced+="${f#MeasuredPlangate} $((total / checks)), "
    done
    echo "instructions per check + commit at the clock, local and synced: ${synced%, }"
    ins+="; clocked/synced ${synced%, }"
    # Cache lines brought in from memory per check, 100k accounts in a
    # fixed random order, under callgrind's cache simulation (32 KiB L1d,
    # 8 MiB last level): deterministic for a given binary.
    local misses="" reads
    checks=20000
    for f in MeasuredPlangateMany MeasuredBaselineMany; do
      reads=$(valgrind --tool=callgrind --cache-sim=yes --D1=32768,8,64 \
        --LL=8388608,16,64 --callgrind-out-file=/dev/null \
        --collect-atstart=no --toggle-collect="*$f*" \
        build/release/bench/check_instructions --checks "$checks" \
        --accounts 100000 2>&1 |
        sed -n 's/.*LLd misses: *\([0-9,]*\).*/\1/p' | tr -d ,)
      if [[ -z "$reads" ]]; then
        echo "test.sh: callgrind printed no cache misses for $f" >&2
        failed=$((failed + 1))
        continue
      fi
      f=${f#Measured}
      misses+="${f%Many} $(awk -v m="$reads" -v n="$checks" 'BEGIN {printf "%.2f", m / n}'), "
    done
    echo "last-level misses per check + commit (100k accounts): ${misses%, }"
    ins+="; LL misses/check ${misses%, }"
  fi
  stage_note="$((n - failed))/$n benchmarks ran, results in build/bench-results/$ins"
  ((n > 0 && failed == 0))
}

stage_install() { tools/demo.sh; }

# Builds the fuzzers with clang-14 in build/fuzz and runs each for 60 s,
# growing build/fuzz/corpus/<name> from tests/fuzz/corpus/<name>; crash
# inputs land in build/fuzz/artifacts/.
# (-gline-tables-only: a crash's stack names files and lines; full debug
# information only slows the build.)
build_fuzz() {
  CC=clang-14 CXX=clang++-14 cmake -S . -B build/fuzz -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPLANGATE_BUILD_FUZZERS=ON \
    -DPLANGATE_BUILD_TESTS=OFF -DPLANGATE_BUILD_BENCHMARKS=OFF \
    -DPLANGATE_BUILD_EXAMPLES=OFF \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -gline-tables-only -DNDEBUG" \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -gline-tables-only -DNDEBUG" \
    -DPLANGATE_INSTALL=OFF &&
    cmake --build build/fuzz --parallel "$jobs" \
      --target catalog_fuzzer trace_fuzzer resp_fuzzer redis_url_fuzzer
}
stage_fuzz() {
  await_prebuild fuzz
  build_fuzz || return 1
  local name n=0 failed=0
  mkdir -p build/fuzz/artifacts
  # $jobs at a time (one per core), each into its own log, printed after.
  local -a names=(catalog trace resp redis_url) batch=()
  local pid rc
  run_batch() {
    local -a pids=()
    for name in "${batch[@]}"; do
      mkdir -p "build/fuzz/corpus/$name"
      "build/fuzz/tests/fuzz/${name}_fuzzer" -max_total_time=60 \
        -print_final_stats=1 -artifact_prefix="build/fuzz/artifacts/$name-" \
        "build/fuzz/corpus/$name" "tests/fuzz/corpus/$name" \
        >"$tmp/fuzz-$name.log" 2>&1 &
      pids+=($!)
    done
    local i
    for i in "${!batch[@]}"; do
      name=${batch[$i]}
      n=$((n + 1))
      rc=0
      wait "${pids[$i]}" || rc=$?
      echo "--- ${name}_fuzzer"
      tail -n 40 "$tmp/fuzz-$name.log"
      if ((rc != 0)); then
        echo "test.sh: ${name}_fuzzer failed; inputs in build/fuzz/artifacts/" >&2
        failed=$((failed + 1))
      fi
    done
    batch=()
  }
  for name in "${names[@]}"; do
    batch+=("$name")
    if ((${#batch[@]} >= jobs)); then run_batch; fi
  done
  if ((${#batch[@]} > 0)); then run_batch; fi
  stage_note="$((n - failed))/$n fuzzers ran 60 s without a crash"
  ((failed == 0))
}

any_failed=0
for stage in $stages; do
  echo
  echo "=== stage $stage"
  stage_note=
  failed_before=$total_failed
  start=$SECONDS
  if "stage_$stage"; then
    result=PASS
  else
    result=FAIL
    any_failed=1
    # A failure outside ctest (configure, build, a benchmark) counts as one.
    ((total_failed > failed_before)) || total_failed=$((total_failed + 1))
  fi
  elapsed=$((SECONDS - start))
  summary+=("$(printf '%-4s %-8s %5ds  %s' "$result" "$stage" "$elapsed" "$stage_note")")
  echo "=== stage $stage: $result (${elapsed}s)"
done

# CI shows only the end of this output: repeat each failed test's last
# lines here, just above the summary.
for f in "${failures[@]}"; do
  echo
  echo "=== failed: ${f#* } (${f%% *}), its last lines"
  failure_tail "${f%% *}" "${f#* }" | cut -c1-300
done

echo
echo "=== summary"
printf '%s\n' "${summary[@]}"
echo "$total_passed passed, $total_failed failed"
exit "$any_failed"
