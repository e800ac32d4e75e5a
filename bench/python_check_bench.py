#!/usr/bin/env python3
# Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
"""python_check_bench.py: the per-check cost of plangate from Python.

The loop of bench/c_api_benchmark.cc (one check + commit per iteration, 1000
accounts, three applicable limits) through the plangate package, and
through bare ctypes calls on prebuilt structs, to split the package's own
cost from the FFI's. Compare with BM_CheckCommitCpp / BM_CheckCommitC of
build/release/bench/c_api_benchmark from the same run.

    PLANGATE_C_LIBRARY=build/release/libplangate_c.so.0 \\
        PYTHONPATH=python python3 bench/python_check_bench.py [--seconds 1]
"""

import argparse
import ctypes
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
import plangate  # noqa: E402
from plangate import _lib  # noqa: E402

ANCHOR = 1767225600000
NOW = ANCHOR + 3600000
CATALOG = """{"version": 1, "plans": [{"id": "p", "limits": [
  {"id": "monthly", "limit": 1000000000000, "grace": 0.1},
  {"id": "daily", "window": "day", "limit": 1000000000000},
  {"id": "rpm", "window": "minute", "mode": "sliding", "limit": 1000000000000}
]}]}"""


def measure(name, fn, seconds):
    fn(1000)  # warm
    n, elapsed = 1000, 0.0
    while elapsed < seconds:
        n *= 2
        t0 = time.perf_counter()
        fn(n)
        elapsed = time.perf_counter() - t0
    ns = elapsed / n * 1e9
    print("%-36s %8.0f ns/op  (%d ops)" % (name, ns, n))
    return ns


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=1.0)
    args = p.parse_args()
    enforcer = plangate.Enforcer(plangate.Catalog.parse(CATALOG))
    ids = ["acct-%d" % i for i in range(1000)]
    for a in ids:
        enforcer.upsert_account(a, "p", anchor_ms=ANCHOR)

    def package(n):
        check, commit = enforcer.check, enforcer.commit
        for i in range(n):
            commit(check(ids[i % 1000], now_ms=NOW))

    def package_check_only(n):
        check = enforcer.check
        for i in range(n):
            check(ids[i % 1000], key_kind="internal", now_ms=NOW)

    # Bare ctypes: prebuilt requests, one decision struct, no objects.
    lib, h = _lib.lib, enforcer._h
    reqs = []
    keep = []
    for a in ids:
        r = _lib.CheckRequest()
        data = a.encode()
        keep.append(data)
        r.account_id, r.account_id_len, r.now_ms = data, len(data), NOW
        reqs.append(ctypes.byref(r))
        keep.append(r)
    d = _lib.DecisionStruct()
    c = _lib.CommitRequest()
    dref, cref = ctypes.byref(d), ctypes.byref(c)

    def bare(n):
        chk, cmt = lib.pg_enforcer_check, lib.pg_enforcer_commit
        for i in range(n):
            chk(h, reqs[i % 1000], dref)
            c.reservation = d.reservation
            cmt(h, cref)

    print("plangate %s, Python %s" % (plangate.version(),
                                     sys.version.split()[0]))
    measure("check+commit (plangate package)", package, args.seconds)
    measure("check (package, internal key)", package_check_only,
            args.seconds)
    measure("check+commit (bare ctypes)", bare, args.seconds)
    st = enforcer.stats()
    assert st["reservations_pending"] == 0, st


if __name__ == "__main__":
    main()
