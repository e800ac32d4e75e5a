# Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
"""Tests of the plangate Python package (python/plangate) over libplangate_c.

Run by ctest (python_test) with PLANGATE_C_LIBRARY pointing at the built
library; the sync tests need PLANGATE_TEST_REDIS_PORT and are skipped
without it.
"""

import ctypes
import os
import re
import shutil
import subprocess
import threading
import time

import pytest

import plangate

T0 = 1767225600000  # 2026-01-01T00:00:00Z
NOW = T0 + 3600000
FEB1 = T0 + 31 * 86400000

CATALOG = """{
  "version": 1,
  "meters": ["requests", "tokens"],
  "upgrade_order": ["free", "pro"],
  "plans": [
    {"id": "free",
     "limits": [
       {"id": "monthly", "limit": 10, "grace": 0.2, "soft_nudge": 0.5},
       {"id": "burst", "window": "minute", "limit": 100}],
     "gauges": {"projects": 2}},
    {"id": "pro",
     "limits": [
       {"id": "tokens", "meter": "tokens", "window": "day", "limit": 1000},
       {"id": "per_key", "scope": "key", "window": "minute", "limit": 3,
        "message": "Three a minute per key."}],
     "features": ["tools"],
     "models": ["gpt-*"]}
  ]
}"""


@pytest.fixture
def catalog():
    return plangate.Catalog.parse(CATALOG)


@pytest.fixture
def enforcer(catalog):
    e = plangate.Enforcer(catalog, max_subjects=4096, reservation_ttl_ms=1000)
    e.upsert_account("acme", "free", anchor_ms=T0)
    e.upsert_account("beta", "pro", anchor_ms=T0, default_model="gpt-small")
    yield e
    e.close()


def test_version_is_the_library_version():
    assert re.fullmatch(r"\d+\.\d+\.\d+", plangate.version())
    major, minor, patch = map(int, plangate.version().split("."))
    assert plangate._lib.lib.pg_version_number() == (
        major * 10000 + minor * 100 + patch)


def test_catalog_errors_carry_every_problem_with_its_path():
    with pytest.raises(plangate.CatalogError) as info:
        plangate.Catalog.parse('{"version": 2, "plans": [{"id": "a", '
                               '"limits": [{"limit": 5, "grace": 3}]}]}')
    assert "version: must be 1" in info.value.errors
    assert "plans[0].limits[0].grace: must be in [0, 1]" in info.value.errors
    with pytest.raises(plangate.CatalogError, match="/nonexistent/x.json"):
        plangate.Catalog.load_file("/nonexistent/x.json")
    with pytest.raises(plangate.CatalogError):
        plangate.Catalog.parse(b"{")


def test_catalog_from_file_and_accessors(tmp_path, catalog):
    path = tmp_path / "plans.json"
    path.write_text(CATALOG)
    from_file = plangate.Catalog.load_file(path)
    assert from_file.plans == ["free", "pro"]
    assert catalog.meters == ["requests", "tokens"]
    assert catalog.default_plan == ""


def test_check_admits_with_warnings_then_denies_with_the_limit(enforcer):
    for i in range(1, 13):
        d = enforcer.check("acme", now_ms=NOW)
        assert d.admitted and d.status == 200
        if i < 5:
            assert d.warnings == frozenset()
        elif i <= 10:
            assert "soft_nudge" in d.warnings and "grace" not in d.warnings
        else:
            assert "grace" in d.warnings
        assert enforcer.commit(d) == "applied"
    d = enforcer.check("acme", now_ms=NOW)
    assert not d.admitted
    assert (d.status, d.deny, d.reason) == (402, "limit",
                                            "billing_limit_reached")
    assert d.has_limit and d.limit_id == "monthly"
    assert (d.limit_scope, d.limit_meter, d.limit_window, d.limit_mode) == (
        "account", "requests", "billing_period", "fixed")
    assert (d.limit_value, d.hard_limit, d.used, d.remaining) == (10, 12, 12,
                                                                   0)
    assert (d.window_start_ms, d.reset_ms) == (T0, FEB1)
    assert d.retry_after_ms == FEB1 - NOW
    assert d.upgrade_plan == "pro"
    assert d.reservation == (d.reservation[0], 0)
    assert enforcer.commit(d) == "empty"
    assert enforcer.usage("acme", now_ms=NOW)["usage"]["monthly"]["used"] == 12


def test_arguments_are_keywords_and_checked(enforcer):
    with pytest.raises(TypeError):
        enforcer.check("acme", "project")  # noqa
    with pytest.raises(TypeError):
        enforcer.peek("acme", colour="red")
    with pytest.raises(ValueError, match="key_kind"):
        enforcer.check("acme", key_kind="gold")
    with pytest.raises(ValueError, match="unknown meter 'tokns'"):
        enforcer.check("beta", amounts={"tokns": 5})
    with pytest.raises(ValueError, match="state"):
        enforcer.upsert_account("x", "free", state="sleeping")
    d = enforcer.check("acme", amounts={"requests": -1}, now_ms=NOW)
    assert (d.status, d.deny, d.reason) == (400, "invalid_request",
                                            "invalid_request")


def test_peek_counts_nothing_and_commit_results(enforcer):
    for _ in range(3):
        assert enforcer.peek("acme", now_ms=NOW).admitted
    assert enforcer.usage("acme", now_ms=NOW)["usage"]["monthly"]["used"] == 0
    d = enforcer.check("acme", now_ms=NOW, request_id=7)
    assert enforcer.usage("acme", now_ms=NOW)["usage"]["monthly"]["used"] == 1
    assert enforcer.commit(d, request_id=8) == "invalid"
    assert enforcer.commit(d, success=False, request_id=7) == "refunded"
    assert enforcer.usage("acme", now_ms=NOW)["usage"]["monthly"]["used"] == 0
    assert enforcer.commit(d) == "duplicate"
    assert enforcer.commit((1 << 30, 5)) == "invalid"
    assert enforcer.commit((0, 0)) == "empty"


def test_meters_models_features_keys(enforcer):
    d = enforcer.check("beta", amounts={"tokens": 600}, now_ms=NOW)
    assert d.admitted
    assert enforcer.commit(d, actual={"tokens": 100}) == "applied"
    assert enforcer.usage("beta", now_ms=NOW)["usage"]["tokens"]["used"] == 100
    d = enforcer.check("beta", amounts={"tokens": 901}, now_ms=NOW)
    assert (d.status, d.reason, d.limit_id, d.used) == (429, "rate_limited",
                                                         "tokens", 100)
    assert enforcer.meter_id("tokens") == 1
    assert enforcer.meter_id("nope") == -1
    assert enforcer.peek("beta", model="gpt-4o", now_ms=NOW).admitted
    d = enforcer.peek("beta", model="claude", now_ms=NOW)
    assert (d.status, d.deny) == (403, "model_not_allowed")
    assert enforcer.peek("beta", model="claude", byok=True,
                         now_ms=NOW).admitted
    d = enforcer.check("acme", features=["tools"], now_ms=NOW)
    assert (d.status, d.deny, d.upgrade_plan) == (402, "feature_not_in_plan",
                                                  "pro")
    assert enforcer.peek("beta", features=["tools"], now_ms=NOW).admitted
    # Test keys are checked, never counted.
    d = enforcer.check("acme", key_kind="test", now_ms=NOW)
    assert d.admitted and d.reservation[1] == 0
    assert enforcer.usage("acme", now_ms=NOW)["usage"]["monthly"]["used"] == 0
    # A key-scope limit with its own message.
    for _ in range(3):
        assert enforcer.commit(enforcer.check("beta", key_id="k1",
                                              now_ms=NOW)) == "applied"
    d = enforcer.check("beta", key_id="k1", now_ms=NOW)
    assert (d.status, d.limit_scope, d.limit_id, d.message) == (
        429, "key", "per_key", "Three a minute per key.")
    assert enforcer.check("beta", key_id="k2", now_ms=NOW).admitted
    d = enforcer.check("nobody", now_ms=NOW)
    assert (d.status, d.deny, d.reason) == (403, "unknown_account",
                                            "unknown_account")


def test_accounts_states_overrides_wallet_gauges(enforcer):
    with pytest.raises(plangate.Error, match="gold"):
        enforcer.upsert_account("x", "gold")
    with pytest.raises(plangate.Error, match="nope"):
        enforcer.upsert_account("x", "free", overrides=[
            {"limit_id": "nope", "limit": 3}])
    enforcer.upsert_account("big", "free", anchor_ms=T0, overrides=[
        plangate.LimitOverride("monthly", limit=2, grace=0.5)])
    for _ in range(3):
        assert enforcer.commit(enforcer.check("big", now_ms=NOW)) == "applied"
    d = enforcer.check("big", now_ms=NOW)
    assert (d.status, d.hard_limit, d.limit_value) == (402, 3, 2)
    enforcer.upsert_account("blocked", "free", state="blocked")
    assert enforcer.check("blocked", now_ms=NOW).deny == "payment_required"
    enforcer.upsert_account("late", "free", anchor_ms=T0, state="past_due",
                            past_due_deadline_ms=NOW + 1000)
    d = enforcer.check("late", now_ms=NOW)
    assert d.admitted and "past_due" in d.warnings
    enforcer.upsert_account("leaving", "pro", anchor_ms=T0,
                            scheduled_plan_id="free")
    assert enforcer.usage("leaving", now_ms=NOW)["scheduled_plan"] == "free"

    assert enforcer.update_wallet("beta", 5000) == 5000
    # Local mode ignores the credit id.
    assert enforcer.update_wallet("beta", 100, credit_id="c-1") == 5100
    assert enforcer.update_wallet("beta", -100, credit_id="c-2") == 5000
    d = enforcer.check("beta", wallet_micros=3000, now_ms=NOW)
    assert d.admitted
    assert enforcer.commit(d, wallet_micros=1000) == "applied"
    assert enforcer.usage("beta", now_ms=NOW)["wallet_micros"] == 4000
    d = enforcer.check("beta", wallet_micros=10000, now_ms=NOW)
    assert (d.status, d.deny) == (402, "insufficient_credit")
    with pytest.raises(plangate.Error):
        enforcer.update_wallet("beta", -10000)
    with pytest.raises(plangate.Error, match="nobody"):
        enforcer.update_wallet("nobody", 1)

    assert enforcer.check_create("acme", "projects", 1).admitted
    d = enforcer.check_create("acme", "projects", 2)
    assert (d.status, d.deny, d.reason) == (402, "resource_limit",
                                            "resource_limit_reached")


def test_http_rendering(enforcer):
    enforcer.upsert_account("tiny", "free", anchor_ms=T0, overrides=[
        {"limit_id": "monthly", "limit": 1}])
    assert enforcer.commit(enforcer.check("tiny", now_ms=NOW)) == "applied"
    d = enforcer.check("tiny", now_ms=NOW)
    http = d.http()
    assert http.status == 402
    assert http.headers[0] == ("Retry-After", str((FEB1 - NOW) // 1000))
    assert http.header("x-ratelimit-limit") == "1"
    assert http.header("X-RateLimit-Remaining") == "0"
    assert http.header("Content-Type") == "application/json"
    assert '"code":"billing_limit_reached"' in http.body
    assert '"type":"insufficient_quota"' in http.body
    bare = d.http(omit=("ietf", "x_ratelimit", "content_type", "warning"))
    assert [name for name, _ in bare.headers] == ["Retry-After"]
    with pytest.raises(ValueError):
        d.http(omit=("colour",))
    ok = enforcer.check("acme", now_ms=NOW).http()
    assert (ok.status, ok.body) == (200, "")
    assert plangate.http_error_type(429) == "rate_limit_exceeded"
    enforcer.close()
    with pytest.raises(plangate.Error, match="closed"):
        d.http()
    with pytest.raises(plangate.Error, match="closed"):
        enforcer.check("acme")


def test_reload_stats_maintain_prometheus(enforcer):
    with pytest.raises(plangate.CatalogError, match="free"):
        enforcer.reload_catalog(plangate.Catalog.parse(
            '{"version": 1, "plans": [{"id": "pro", "limits": []}]}'))
    bigger = plangate.Catalog.parse(CATALOG.replace('"limit": 10,',
                                                    '"limit": 20,'))
    enforcer.reload_catalog(bigger)
    d = enforcer.check("acme", now_ms=NOW)
    assert d.admitted
    s = enforcer.stats()
    assert s["reservations_pending"] == 1
    assert s["subject_capacity"] >= 4096
    enforcer.maintain(NOW + 5000)  # past the 1 s reservation TTL
    s = enforcer.stats()
    assert (s["reservations_pending"], s["reservations_expired"]) == (0, 1)
    assert enforcer.commit(d) == "expired"
    text = enforcer.prometheus_text()
    assert "plangate_reservations_expired_total 1\n" in text
    assert "# TYPE plangate_subjects gauge" in text
    with pytest.raises(plangate.Error, match="nobody"):
        enforcer.usage("nobody")


def test_clock_and_events_callbacks(catalog):
    now = [NOW + 30500]
    events = []
    e = plangate.Enforcer(catalog, clock=lambda: now[0],
                          on_threshold=events.append)
    e.upsert_account("acme", "free", anchor_ms=T0)
    for _ in range(10):
        assert e.commit(e.check("acme")) == "applied"
    d = e.check("acme")
    # Read at the callback's instant (January), not the system clock's.
    usage = e.usage("acme")
    assert usage["period_start"] == "2026-01-01T00:00:00Z"
    assert usage["usage"]["monthly"]["used"] == 11
    assert e.deliver_events() == 2
    assert [(x.kind, x.account_id, x.limit_id, x.used) for x in events] == [
        ("soft_nudge", "acme", "monthly", 5), ("hard_cap", "acme", "monthly",
                                               10)]
    assert events[0].window_start_ms == T0 and events[0].scope == "account"
    e.commit(d)
    e.close()


def test_concurrent_checks_count_exactly(catalog):
    e = plangate.Enforcer(catalog)
    big = plangate.Catalog.parse(CATALOG.replace('"limit": 10,',
                                                 '"limit": 100000,'))
    e.reload_catalog(big)
    e.upsert_account("acme", "free", anchor_ms=T0)
    admitted = []

    def work():
        n = 0
        for i in range(500):
            d = e.check("acme", key_id="k%d" % (i % 7), now_ms=NOW + i)
            n += d.admitted
            e.commit(d)
        admitted.append(n)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 2000 checks in one minute: exactly the burst limit's 100 admitted.
    assert sum(admitted) == 100
    assert e.usage("acme", now_ms=NOW)["usage"]["monthly"]["used"] == 100


redis_port = os.environ.get("PLANGATE_TEST_REDIS_PORT")
needs_redis = pytest.mark.skipif(not redis_port,
                                 reason="PLANGATE_TEST_REDIS_PORT is not set")


def test_sync_bad_url_and_unreachable_redis(catalog):
    e = plangate.Enforcer(catalog)
    with pytest.raises(plangate.Error, match="redis://"):
        e.start_sync("http://x")
    with pytest.raises(TypeError):
        e.start_sync("redis://127.0.0.1:1", colour="red")
    with pytest.raises(plangate.Error, match="the URL must be rediss://"):
        e.start_sync("redis://127.0.0.1:1", redis_tls_ca_file="/x/ca.pem")
    with pytest.raises(plangate.Error, match="go together"):
        e.start_sync("rediss://127.0.0.1:1", redis_tls_cert_file="c.pem")
    with pytest.raises(plangate.Error, match="redis-sentinel://"):
        e.start_sync("rediss://127.0.0.1:1", redis_tls_verify=False,
                     redis_sentinel_password="pw")
    # Accepted with a rediss:// URL; the CA that cannot be loaded is the
    # reason every connection attempt fails.
    s = e.start_sync("rediss://127.0.0.1:1", connect_timeout_ms=100,
                     redis_tls_ca_file="/nonexistent/ca.pem",
                     redis_tls_ca_dir="/nonexistent",
                     redis_tls_cert_file="c.pem", redis_tls_key_file="k.pem",
                     redis_tls_server_name="redis.example",
                     redis_tls_verify=True)
    deadline = time.time() + 10
    while "cannot load the CA" not in s.last_error:
        assert time.time() < deadline, s.last_error
        time.sleep(0.02)
    assert "/nonexistent/ca.pem" in s.last_error
    s.close()
    s = e.start_sync("redis://127.0.0.1:1", connect_timeout_ms=100,
                     command_timeout_ms=100, instance_id="py-down",
                     cold_start_share=1.0)
    assert s.instance_id == "py-down"
    with pytest.raises(plangate.Error, match="already attached"):
        e.start_sync("redis://127.0.0.1:1")
    e.upsert_account("acme", "free", anchor_ms=T0)
    assert e.check("acme").admitted
    with pytest.raises(plangate.Error):
        s.flush(200)
    assert s.stats()["connected"] is False
    e.close()  # stops the sync first
    with pytest.raises(plangate.Error, match="sync stopped"):
        s.flush(10)
    s.close()


@needs_redis
def test_sync_two_enforcers_share_counts():
    catalog = plangate.Catalog.parse(
        '{"version": 1, "plans": [{"id": "free", "limits": '
        '[{"id": "monthly", "limit": 1000000}]}]}')
    url = "redis://127.0.0.1:%s" % redis_port
    prefix = "pytest%d-%d" % (os.getpid(), time.time_ns())
    a, b = plangate.Enforcer(catalog), plangate.Enforcer(catalog)
    sa = a.start_sync(url, key_prefix=prefix, instance_id="py-a",
                      flush_interval_ms=5, refresh_interval_ms=20,
                      leases=True, expected_instances=2, min_round_units=1,
                      max_batch=512, lease_ttl_ms=5000,
                      unavailable_after_ms=2000)
    sb = b.start_sync(url, key_prefix=prefix, instance_id="py-b",
                      flush_interval_ms=5, refresh_interval_ms=20)
    for x in (a, b):
        x.upsert_account("acme", "free", anchor_ms=T0)
    sa.flush()
    sb.flush()
    for _ in range(4):
        assert a.commit(a.check("acme")) == "applied"
    sa.flush()
    deadline = time.time() + 5
    while b.usage("acme")["usage"]["monthly"]["used"] != 4:
        assert time.time() < deadline, "b never saw a's usage"
        sb.flush()
        time.sleep(0.01)
    st = sa.stats()
    assert st["connected"] and st["redis_up"]
    assert st["units_flushed"] >= 4 and st["pending"] == 0
    assert "plangate_sync_connected 1\n" in sa.prometheus_text()
    assert sa.last_error is not None
    sa.drain()
    sb.drain()
    sa.close()
    sb.close()
    a.close()
    b.close()


def test_ctypes_layouts_match_c_h(tmp_path):
    """Every ctypes structure has c.h's size and field offsets (the C
    compiler's answer, from a program generated here)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    structs = {
        "pg_meter_amount_t": plangate._lib.MeterAmount,
        "pg_reservation_t": plangate._lib.Reservation,
        "pg_check_request_t": plangate._lib.CheckRequest,
        "pg_commit_request_t": plangate._lib.CommitRequest,
        "pg_decision_t": plangate._lib.DecisionStruct,
        "pg_limit_override_t": plangate._lib.LimitOverride,
        "pg_account_t": plangate._lib.Account,
        "pg_enforcer_stats_t": plangate._lib.EnforcerStats,
        "pg_threshold_event_t": plangate._lib.ThresholdEventStruct,
        "pg_sync_stats_t": plangate._lib.SyncStats,
    }
    lines = ['#include <stddef.h>', '#include <stdio.h>',
             '#include "plangate/c.h"', 'int main(void) {']
    want = []
    for cname, py in structs.items():
        lines.append('printf("%s %%zu\\n", sizeof(%s));' % (cname, cname))
        want.append("%s %d" % (cname, ctypes.sizeof(py)))
        for field, _ in py._fields_:
            lines.append('printf("%s.%s %%zu\\n", offsetof(%s, %s));' %
                         (cname, field, cname, field))
            want.append("%s.%s %d" % (cname, field,
                                      getattr(py, field).offset))
    lines.append("return 0; }")
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    include = os.path.join(os.path.dirname(__file__), "..", "..", "include")
    exe = tmp_path / "layout"
    subprocess.run([cc, "-std=c11", "-I", include, str(src), "-o", str(exe)],
                   check=True)
    got = subprocess.run([str(exe)], check=True, capture_output=True,
                         text=True).stdout.split("\n")
    assert [line for line in got if line] == want
