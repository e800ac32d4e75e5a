#!/usr/bin/env bash
# Installs what plangate needs to build, test and benchmark on Debian 12
# (bookworm): the toolchain, the libraries, redis-server for the sync tests
# and the load tools. Idempotent: when every package is already installed it
# does nothing, so tools/test.sh and tools/demo.sh can call it every time.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libabsl-dev libboost-dev libhiredis-dev libfmt-dev nlohmann-json3-dev
  # The Redis client's TLS; the openssl CLI makes the TLS tests' certificates.
  libssl-dev openssl
  catch2 libbenchmark-dev
  redis-server
  clang-14 libclang-rt-14-dev
  wrk curl jq valgrind
  # The C API's Python package tests, and nginx with plangate.lua
  # (examples/nginx).
  python3-pytest
  nginx libnginx-mod-http-lua lua-cjson
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
  [[ "$status" == ii* ]] || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends "${missing[@]}"
