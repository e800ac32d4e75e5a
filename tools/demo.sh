#!/usr/bin/env bash
# The quick look at plangate on a fresh Debian 12 machine (as root):
# installs the dependencies, builds the library with the `release` preset
# (the library only; tools/test.sh builds and runs the tests),
# installs it into build/stage, builds examples/quickstart against that
# installed package and runs it; then replays one seed's billing rules
# (examples/traces/proxyllm) with quotactl and prints the summary.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
jobs=${PLANGATE_JOBS:-$(nproc)}

tools/install-deps.sh
cmake --preset release
cmake --build --preset release --parallel "$jobs" --target plangate
rm -rf build/stage
cmake --install build/release --prefix build/stage
cmake -S examples/quickstart -B build/quickstart -G Ninja \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$PWD/build/stage"
cmake --build build/quickstart --parallel "$jobs"
echo
build/quickstart/quickstart

# quotactl replays the ProxyLLM seed on a simulated clock, checking every
# "expect" of the trace; decisions go to build/replay-proxyllm.jsonl, the
# summary to stderr.
cmake --build --preset release --parallel "$jobs" --target quotactl
echo
build/release/tools/quotactl/quotactl replay --check \
  --catalog examples/catalogs/proxyllm.json \
  --accounts examples/traces/proxyllm/accounts.json \
  --trace examples/traces/proxyllm/trace.jsonl \
  --out build/replay-proxyllm.jsonl
