#!/usr/bin/env bash
# Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
#
# install_test.sh BUILD_DIR SOURCE_DIR: the C API as a consumer sees it
# after `cmake --install`: libplangate_c.so.0 with its symlinks, c.h,
# plangate.pc and the CMake package plangate_c; c_test.c built with nothing
# but `pkg-config plangate`, and again with find_package(plangate_c), each
# run against the installed library.
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/plangate-c-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log"
pc=$(find "$tmp/prefix" -name plangate.pc | head -n 1)
[[ -n "$pc" ]] || { echo "plangate.pc not installed"; exit 1; }
libdir=$(dirname "$(dirname "$pc")")
for f in libplangate_c.so libplangate_c.so.0; do
  [[ -L "$libdir/$f" ]] || { echo "$libdir/$f: not installed (symlink)"; exit 1; }
done
[[ -f "$tmp/prefix/include/plangate/c.h" ]] || { echo "c.h not installed"; exit 1; }
PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_PATH
flags=$(pkg-config --cflags --libs plangate)
[[ "$flags" == *-lplangate_c* ]] || { echo "pkg-config flags: $flags"; exit 1; }
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -pedantic -Werror "$src/tests/c/c_test.c" $flags \
  -o "$tmp/c_test"
# It runs against the installed library, not the build tree's.
# (ldd's output captured first: grep -q would end it with SIGPIPE.)
resolved=$(LD_LIBRARY_PATH=$libdir ldd "$tmp/c_test")
grep -q "$libdir/libplangate_c.so.0" <<<"$resolved" ||
  { echo "c_test does not resolve the installed library:"; echo "$resolved"; exit 1; }
LD_LIBRARY_PATH=$libdir "$tmp/c_test" 2>"$tmp/c_test.log" ||
  { tail -n 20 "$tmp/c_test.log"; exit 1; }
# And from CMake: find_package(plangate_c), target plangate::plangate_c.
mkdir -p "$tmp/consumer"
cat >"$tmp/consumer/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.22)
project(consumer C)
find_package(plangate_c 0 REQUIRED)
add_executable(c_test "$src/tests/c/c_test.c")
set_target_properties(c_test PROPERTIES C_STANDARD 11)
target_link_libraries(c_test PRIVATE plangate::plangate_c)
CMAKE
if ! cmake -S "$tmp/consumer" -B "$tmp/consumer/build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$tmp/prefix" >"$tmp/consumer.log" 2>&1 ||
  ! cmake --build "$tmp/consumer/build" >>"$tmp/consumer.log" 2>&1; then
  tail -n 30 "$tmp/consumer.log"
  exit 1
fi
"$tmp/consumer/build/c_test" 2>"$tmp/c_test.log" ||
  { tail -n 20 "$tmp/c_test.log"; exit 1; }

echo "ok: installed in $libdir, pkg-config: $flags; find_package(plangate_c)"
