#!/usr/bin/env bash
# Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
#
# exports_test.sh LIB HEADER MAJOR TEST: libplangate_c's ABI surface. The
# shared library's SONAME is libplangate_c.so.MAJOR, it exports exactly the
# functions c.h declares (every pg_ function, nothing else but the version
# node), and the C test TEST (tests/c/c_test.c) calls every one of them.
set -euo pipefail
lib=$1 header=$2 major=$3 test_source=$4
fail=0

soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [[ "$soname" != "libplangate_c.so.$major" ]]; then
  echo "SONAME is '$soname', want libplangate_c.so.$major"
  fail=1
fi

# Defined dynamic symbols: name only, version suffix dropped.
exported=$(nm -D --defined-only "$lib" | awk '{print $3}' | sed 's/@.*//' | sort -u)
others=$(grep -v -e '^pg_' -e '^PLANGATE_C_[0-9]*$' <<<"$exported" || true)
if [[ -n "$others" ]]; then
  echo "exported symbols outside pg_*:"
  echo "$others" | head -20
  fail=1
fi

# Every function c.h declares: an identifier 'pg_...(' at the start of a
# declaration (after its return type).
declared=$(grep -oE '\bpg_[a-z0-9_]+\(' "$header" | tr -d '(' | sort -u)
missing=$(comm -23 <(echo "$declared") <(grep '^pg_' <<<"$exported"))
extra=$(comm -13 <(echo "$declared") <(grep '^pg_' <<<"$exported"))
if [[ -n "$missing" ]]; then
  echo "declared in c.h but not exported:"
  echo "$missing"
  fail=1
fi
if [[ -n "$extra" ]]; then
  echo "exported but not declared in c.h:"
  echo "$extra"
  fail=1
fi
n=$(grep -c . <<<"$declared")
if ((n < 50)); then
  echo "found only $n declarations in $header; the parser is broken"
  fail=1
fi

untested=$(for f in $declared; do grep -q "\b$f(" "$test_source" || echo "$f"; done)
if [[ -n "$untested" ]]; then
  echo "declared in c.h but never called by $(basename "$test_source"):"
  echo "$untested"
  fail=1
fi

if ((fail)); then exit 1; fi
echo "ok: $soname exports the $n pg_ functions of c.h and nothing else;" \
  "$(basename "$test_source") calls each"
