#!/usr/bin/env bash
# expect_output.sh RC EXPECTED_FILE COMMAND...
#
# Runs COMMAND and passes when it exits with status RC and prints, stdout
# and stderr together, exactly the contents of EXPECTED_FILE.
set -uo pipefail
want_rc=$1
expected=$2
shift 2
out=$("$@" 2>&1)
rc=$?
if [[ $rc -ne $want_rc ]]; then
  echo "expect_output.sh: exit status $rc, expected $want_rc; output:"
  printf '%s\n' "$out"
  exit 1
fi
if ! diff -u "$expected" <(printf '%s\n' "$out"); then
  echo "expect_output.sh: output differs from $expected (- expected, + got)"
  exit 1
fi
