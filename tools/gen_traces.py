#!/usr/bin/env python3
# Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
"""Writes the seed replay examples: examples/traces/<seed>/{accounts.json,
trace.jsonl}, one per catalog of examples/catalogs/.

Each trace states, with "expect", what the seed's billing page promises at
the requests that matter (the first soft nudge, the grace zone, the first
denial...). The long runs (Aerostack's 55,001 requests, ProxyLLM's 10,001)
are generated here rather than written by hand; the expectations on them
follow DESIGN.md section 2. Output is deterministic: run it again and git
sees no change.

  tools/gen_traces.py [--out examples/traces]

python3 standard library only.
"""

import argparse
import calendar
import json
import os
import sys
from datetime import datetime, timezone

MINUTE = 60_000
HOUR = 3_600_000
DAY = 86_400_000


def ms(text):
    """RFC 3339 UTC ("2026-03-01T00:00:00Z", optional .fff) to Unix ms."""
    base, _, frac = text.rstrip("Z").partition(".")
    dt = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S")
    millis = int((frac + "000")[:3]) if frac else 0
    return calendar.timegm(dt.timetuple()) * 1000 + millis


def iso(t):
    dt = datetime.fromtimestamp(t // 1000, tz=timezone.utc)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if t % 1000:
        text += ".%03d" % (t % 1000)
    return text + "Z"


def expect(status=200, warnings=None, **fields):
    """An "expect" object: status first, then the rest in a fixed order."""
    e = {"status": status}
    for key in ("reason", "limit", "upgrade_plan", "used", "remaining",
                "retry_after_ms", "wallet_balance"):
        if key in fields:
            e[key] = fields.pop(key)
    if warnings is not None:
        e["warnings"] = warnings
    assert not fields, fields
    return e


class Trace:
    """Collects events (and the comments before them), sorted by time."""

    def __init__(self, title):
        self.header = title
        self.events = []
        self.pending = []

    def note(self, *lines):
        self.pending.extend(lines)

    def add(self, t, bulk=False, **fields):
        """One event at t (ms). bulk: compact, with t as integer ms."""
        event = {"t": t if bulk else iso(t)}
        event.update(fields)
        sep = (",", ":") if bulk else (", ", ": ")
        text = json.dumps(event, separators=sep)
        self.events.append((t, len(self.events), self.pending, text))
        self.pending = []

    def write(self, path):
        assert not self.pending, "a note without an event"
        self.events.sort(key=lambda e: (e[0], e[1]))
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            for line in self.header:
                f.write("# " + line + "\n" if line else "#\n")
            for _, _, notes, text in self.events:
                if notes:
                    f.write("\n")
                for note in notes:
                    f.write("# " + note + "\n")
                f.write(text + "\n")


def write_accounts(path, accounts):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("[\n")
        for i, a in enumerate(accounts):
            f.write("  " + json.dumps(a, separators=(", ", ": ")))
            f.write(",\n" if i + 1 < len(accounts) else "\n")
        f.write("]\n")


def nudge(after, limit, soft=0.8):
    """True when DESIGN's soft-nudge rule warns at this count."""
    return after >= soft * limit and after <= limit


# --------------------------------------------------------------------------
# modelux: 402 on limits and features, hard cap, renewal-day reset,
# internal traffic excluded, plan changes immediate, point-in-time gauges.

def modelux():
    anchor = "2026-01-15T09:30:00Z"
    accounts = [
        {"id": "mx-free", "plan": "free", "anchor": anchor},
        {"id": "mx-pro", "plan": "pro", "anchor": anchor},
        {"id": "mx-enterprise", "plan": "enterprise", "anchor": anchor},
    ]
    tr = Trace([
        "modelux (examples/catalogs/modelux.json): Free hard-caps at its",
        "monthly request limit (10,000, an assumption) with 402, warns from",
        "80%, never counts internal-auth traffic, and resets on the renewal",
        "day (the 15th, 09:30 UTC here). Features answer 402 naming the plan",
        "that unlocks them; plan changes take effect immediately.",
    ])
    t0 = ms("2026-02-01T00:00:00Z")
    tr.note("Free: 10,000 live requests a minute apart; internal-auth",
            "traffic (dashboard, management API, MCP) every 1,000 requests",
            "is admitted and never counted.")
    for n in range(1, 10_002):
        t = t0 + (n - 1) * MINUTE
        if n % 1000 == 500:
            tr.add(t, bulk=True, account="mx-free", kind="internal")
        fields = {"account": "mx-free"}
        if n in (1, 7_999):
            fields["expect"] = expect(200, [])
        elif n in (8_000, 10_000):
            fields["expect"] = expect(200, ["soft_nudge"],
                                      limit="monthly_requests")
        elif n == 10_001:
            tr.note("Request 10,001: the hard cap, 402 pointing at Pro.")
            fields["expect"] = expect(
                402, reason="billing_limit_reached", limit="monthly_requests",
                upgrade_plan="pro", used=10_000, remaining=0)
        tr.add(t, bulk=n not in (1, 7_999, 8_000, 10_000, 10_001), **fields)
    t = t0 + 10_001 * MINUTE
    tr.note("Internal-auth traffic still works at the cap.")
    tr.add(t, account="mx-free", kind="internal", expect=expect(200, []))
    tr.note("The counter resets on the renewal day, to the millisecond.")
    tr.add(ms("2026-02-15T09:29:59.999Z"), account="mx-free",
           expect=expect(402, reason="billing_limit_reached"))
    tr.add(ms("2026-02-15T09:30:00Z"), account="mx-free",
           expect=expect(200, [], used=0))

    t = ms("2026-02-16T10:00:00Z")
    tr.note("Features: a gated capability answers 402 with the cheapest plan",
            "that has it.")
    for feature, plan in (("ensembles", "pro"), ("audit_log", "team"),
                          ("sso", "enterprise")):
        tr.add(t, account="mx-free", features=[feature],
               expect=expect(402, reason="feature_not_in_plan",
                             upgrade_plan=plan))
        t += MINUTE
    tr.add(t, account="mx-pro", features=["ensembles", "custom_routing"],
           expect=expect(200, []))
    t += MINUTE
    tr.add(t, account="mx-pro", features=["warehouse_export"],
           expect=expect(402, reason="feature_not_in_plan",
                         upgrade_plan="team"))
    t += MINUTE
    tr.note("A downgrade takes features away right away; re-upgrading",
            "restores them.")
    tr.add(t, type="plan_change", account="mx-pro", plan="free")
    t += MINUTE
    tr.add(t, account="mx-pro", features=["ensembles"],
           expect=expect(402, reason="feature_not_in_plan",
                         upgrade_plan="pro"))
    t += MINUTE
    tr.add(t, type="plan_change", account="mx-pro", plan="team")
    t += MINUTE
    tr.add(t, account="mx-pro", features=["ensembles", "audit_log"],
           expect=expect(200, []))
    t += MINUTE

    tr.note("Resource counters are point-in-time gauges, checked on create.")
    for gauge, current, status in (("projects", 0, 200), ("projects", 1, 402),
                                   ("api_keys", 1, 200), ("api_keys", 2, 402),
                                   ("provider_credentials", 2, 402)):
        e = (expect(200, []) if status == 200 else
             expect(402, reason="resource_limit_reached", upgrade_plan="pro"))
        tr.add(t, type="create", account="mx-free", gauge=gauge,
               current=current, expect=e)
        t += MINUTE
    tr.add(t, type="create", account="mx-enterprise", gauge="projects",
           current=1000, expect=expect(200, []))
    t += MINUTE
    tr.note("Enterprise: true unlimited.")
    tr.add(t, account="mx-enterprise", amounts={"requests": 1_000_000_000},
           expect=expect(200, []))
    return accounts, tr


# --------------------------------------------------------------------------
# Aerostack: per-plan quotas (API requests, AI tokens) with 10/15/20/20%
# grace and 403 past the hard limit; gauges from the table; wallet debits,
# zero platform cost on BYOK; cancel = Free at the end of the period.

def aerostack():
    anchor = "2026-03-01T00:00:00Z"
    accounts = [
        {"id": "ws-free", "plan": "free", "anchor": anchor},
        {"id": "ws-tokens", "plan": "free", "anchor": anchor},
        {"id": "ws-starter", "plan": "starter", "anchor": anchor},
        {"id": "ws-pro", "plan": "pro", "anchor": anchor},
        {"id": "ws-business", "plan": "business", "anchor": anchor},
        {"id": "ws-enterprise", "plan": "enterprise", "anchor": anchor},
        {"id": "ws-wallet", "plan": "starter", "anchor": anchor,
         "wallet_micros": 1_000_000},
        {"id": "ws-cancel", "plan": "pro", "anchor": "2026-03-10T00:00:00Z"},
        {"id": "ws-gauges", "plan": "free", "anchor": anchor},
    ]
    tr = Trace([
        "Aerostack (examples/catalogs/aerostack.json). The page's own",
        "example: Free has 50,000 API requests a month and 10% grace, so",
        "requests 50,001-55,000 succeed with a warning and request 55,001",
        "gets 403. Also: AI-token quotas with each plan's grace (10/15/20/",
        "20%), the resource table as gauges, the wallet (BYOK costs",
        "nothing) and cancellation at the end of the billing period.",
    ])
    t0 = ms(anchor)
    tr.note("ws-free: 55,001 API requests, one every 30 s.")
    marks = {1, 39_999, 40_000, 50_000, 50_001, 55_000, 55_001}
    for n in range(1, 55_002):
        t = t0 + (n - 1) * 30_000
        fields = {"account": "ws-free"}
        if n in marks:
            if n == 55_001:
                tr.note("Request 55,001: past the hard limit, 403.")
                fields["expect"] = expect(
                    403, reason="billing_limit_reached", limit="api_requests",
                    upgrade_plan="starter", used=55_000, remaining=0)
            else:
                if n == 50_001:
                    tr.note("Request 50,001: the grace zone begins.")
                w = (["grace"] if n > 50_000 else
                     ["soft_nudge"] if nudge(n, 50_000) else [])
                fields["expect"] = expect(200, w)
        tr.add(t, bulk=n not in marks, **fields)
    t = t0 + 55_001 * 30_000 + HOUR
    tr.note("Upgrading lifts the block immediately (usage carries over).")
    tr.add(t, type="plan_change", account="ws-free", plan="starter")
    tr.add(t + MINUTE, account="ws-free", expect=expect(200, []))

    t = ms("2026-03-21T00:00:00Z")
    tr.note("ws-tokens: AI tokens, 100,000 a month on Free (hard 110,000).",
            "An estimate of 5,000 settled at 2,000, a failed call refunded.")
    steps = [
        (dict(amounts={"ai_tokens": 5_000}, actual={"ai_tokens": 2_000}),
         expect(200, [])),
        (dict(amounts={"ai_tokens": 50_000}, outcome="failure"),
         expect(200, [])),
        (dict(amounts={"ai_tokens": 58_000}),
         expect(200, [], limit="ai_tokens", used=2_000)),
        (dict(amounts={"ai_tokens": 40_000}),
         expect(200, ["soft_nudge"], limit="ai_tokens", used=60_000)),
        (dict(amounts={"ai_tokens": 10_000}),
         expect(200, ["grace"], limit="ai_tokens", used=100_000)),
        (dict(amounts={"ai_tokens": 1}),
         expect(403, reason="billing_limit_reached", limit="ai_tokens",
                upgrade_plan="starter", used=110_000)),
        (dict(), expect(200, ["grace"])),
    ]
    for fields, e in steps:
        tr.add(t, account="ws-tokens", expect=e, **fields)
        t += MINUTE

    t = ms("2026-03-22T00:00:00Z")
    tr.note("Each paid plan's grace on AI tokens: Starter 15%, Pro 20%,",
            "Business 20%; Enterprise is unlimited.")
    for account, hard, up in (("ws-starter", 1_150_000, "pro"),
                              ("ws-pro", 12_000_000, "business"),
                              ("ws-business", 120_000_000, "enterprise")):
        tr.add(t, account=account, amounts={"ai_tokens": hard},
               expect=expect(200, ["grace"], limit="ai_tokens"))
        tr.add(t + MINUTE, account=account, amounts={"ai_tokens": 1},
               expect=expect(403, reason="billing_limit_reached",
                             limit="ai_tokens", upgrade_plan=up))
        t += HOUR
    tr.add(t, account="ws-enterprise", amounts={"ai_tokens": 1_000_000_000},
           expect=expect(200, []))

    t = ms("2026-03-23T00:00:00Z")
    tr.note("ws-wallet: bot conversations debit the wallet; on the",
            "customer's own LLM key (BYOK) they cost nothing; a failed agent",
            "run is refunded.")
    steps = [
        (dict(wallet_micros=25_000), expect(200, wallet_balance=975_000)),
        (dict(byok=True, wallet_micros=25_000),
         expect(200, wallet_balance=975_000)),
        (dict(wallet_micros=40_000, outcome="failure"),
         expect(200, wallet_balance=975_000)),
    ]
    for fields, e in steps:
        tr.add(t, account="ws-wallet", expect=e, **fields)
        t += MINUTE
    tr.note("An empty wallet stops paid managed operations only.")
    tr.add(t, type="wallet_credit", account="ws-wallet", micros=-975_000)
    t += MINUTE
    tr.add(t, account="ws-wallet", wallet_micros=25_000,
           expect=expect(402, reason="insufficient_credit"))
    t += MINUTE
    tr.add(t, account="ws-wallet", byok=True, wallet_micros=25_000,
           expect=expect(200, wallet_balance=0))
    t += MINUTE
    tr.add(t, account="ws-wallet", expect=expect(200, []))
    t += MINUTE
    tr.add(t, type="wallet_credit", account="ws-wallet", micros=5_000_000)
    t += MINUTE
    tr.add(t, account="ws-wallet", wallet_micros=25_000,
           expect=expect(200, wallet_balance=4_975_000))

    t = ms("2026-03-24T00:00:00Z")
    tr.note("Gauges from the resource table (Starter has 5 projects, fewer",
            "than Free's 10: as the page states).")
    for account, gauge, current, status in (
            ("ws-gauges", "mcp_workspaces", 2, 200),
            ("ws-gauges", "mcp_workspaces", 3, 402),
            ("ws-gauges", "team_members", 1, 402),
            ("ws-gauges", "projects", 9, 200),
            ("ws-gauges", "storage_mb", 2559, 200),
            ("ws-starter", "projects", 5, 402),
            ("ws-pro", "projects", 500, 200)):
        e = (expect(200, []) if status == 200 else
             expect(402, reason="resource_limit_reached"))
        tr.add(t, type="create", account=account, gauge=gauge,
               current=current, expect=e)
        t += MINUTE

    t = ms("2026-03-25T00:00:00Z")
    tr.note("ws-cancel (Pro, renews on the 10th) cancels: it keeps Pro until",
            "the period ends, then it is on Free.")
    tr.add(t, type="create", account="ws-cancel", gauge="projects",
           current=20, expect=expect(200, []))
    tr.add(t + MINUTE, type="plan_change", account="ws-cancel",
           scheduled_plan="free")
    tr.add(ms("2026-04-09T23:59:59Z"), type="create", account="ws-cancel",
           gauge="projects", current=20, expect=expect(200, []))
    tr.add(ms("2026-04-10T00:00:00Z"), type="create", account="ws-cancel",
           gauge="projects", current=20,
           expect=expect(402, reason="resource_limit_reached"))
    tr.add(ms("2026-04-10T00:01:00Z"), account="ws-cancel",
           amounts={"ai_tokens": 200_000},
           expect=expect(403, reason="billing_limit_reached",
                         limit="ai_tokens", upgrade_plan="starter"))
    return accounts, tr


# --------------------------------------------------------------------------
# Agent Handler: tool calls per month (1,000 / 10,000 / 100,000), only
# successful calls count, test keys are free, billing_limit_reached until
# the next cycle or an upgrade, per-user custom limits, cancel at cycle end.

def agenthandler():
    anchor = "2026-02-01T00:00:00Z"
    accounts = [
        {"id": "ah-free", "plan": "free", "anchor": anchor},
        {"id": "ah-upgrade", "plan": "free", "anchor": anchor},
        {"id": "ah-business", "plan": "business", "anchor": anchor,
         "overrides": [{"limit_id": "user_daily_tool_calls",
                        "user": "runaway-bot", "limit": 200}]},
        {"id": "ah-enterprise", "plan": "enterprise", "anchor": anchor,
         "overrides": [{"limit_id": "monthly_tool_calls", "limit": 250}]},
        {"id": "ah-cancel", "plan": "starter", "anchor": anchor},
    ]
    tr = Trace([
        "Agent Handler (examples/catalogs/agenthandler.json): every",
        "successful tool call counts, failed calls don't, calls on test keys",
        "are free. Free has 1,000 tool calls a month; past it, calls return",
        "billing_limit_reached until the next cycle or an upgrade, while the",
        "dashboard stays accessible. Business caps single users through",
        "per-user custom limits (account overrides).",
    ])
    call = {"tool_calls": 1}

    t = ms("2026-02-02T00:00:00Z")
    tr.note("ah-free: 1,000 successful calls, 300 test-key calls and 40",
            "failed calls in between; only the successful ones count.")
    used = 0
    n = 0
    while used < 1_000:
        n += 1
        t += 2 * MINUTE
        if n % 4 == 0 and n <= 1_200:
            e = expect(200, []) if n in (4, 1_200) else None
            fields = {"account": "ah-free", "kind": "test", "amounts": call}
            if e:
                fields["expect"] = e
            tr.add(t, bulk=e is None, **fields)
            continue
        if n % 25 == 1 and used < 999 and n < 1_010:
            # A failed call: checked (and warned) like any, then refunded.
            tr.add(t, bulk=True, account="ah-free", amounts=call,
                   outcome="failure")
            continue
        used += 1
        fields = {"account": "ah-free", "amounts": call}
        bulk = used not in (1, 799, 800, 1_000)
        if not bulk:
            fields["expect"] = expect(
                200, ["soft_nudge"] if nudge(used, 1_000) else [],
                limit="monthly_tool_calls", used=used - 1)
        tr.add(t, bulk=bulk, **fields)
    t += 2 * MINUTE
    tr.note("Call 1,001: billing_limit_reached (402 by default), pointing",
            "at Starter.")
    tr.add(t, account="ah-free", amounts=call,
           expect=expect(402, reason="billing_limit_reached",
                         limit="monthly_tool_calls", upgrade_plan="starter",
                         used=1_000))
    tr.note("Test keys and the dashboard keep working.")
    tr.add(t + MINUTE, account="ah-free", kind="test", amounts=call,
           expect=expect(200, []))
    tr.add(t + 2 * MINUTE, account="ah-free", kind="internal",
           expect=expect(200, []))

    t = ms("2026-02-06T00:00:00Z")
    tr.note("ah-upgrade reaches the cap and upgrades: the quota lifts at",
            "once.")
    for k in range(1, 1_002):
        fields = {"account": "ah-upgrade", "amounts": call}
        if k == 1_001:
            fields["expect"] = expect(402, reason="billing_limit_reached")
        tr.add(t, bulk=k != 1_001, **fields)
        t += MINUTE
    tr.add(t, type="plan_change", account="ah-upgrade", plan="starter")
    tr.add(t + MINUTE, account="ah-upgrade", amounts=call,
           expect=expect(200, [], used=1_000))

    t = ms("2026-02-10T03:00:00Z")
    tr.note("ah-business: the workspace capped runaway-bot at 200 tool",
            "calls a day (429 rate_limited past it); other users are not",
            "affected; the cap resets at midnight UTC.")
    for k in range(1, 202):
        fields = {"account": "ah-business", "user": "runaway-bot",
                  "amounts": call}
        if k in (1, 159, 160, 200):
            fields["expect"] = expect(200, ["soft_nudge"] if k >= 160 else [],
                                      limit="user_daily_tool_calls")
        elif k == 201:
            fields["expect"] = expect(
                429, reason="rate_limited", limit="user_daily_tool_calls",
                retry_after_ms=ms("2026-02-11T00:00:00Z") - t)
        tr.add(t, bulk="expect" not in fields, **fields)
        t += 15_000
    tr.add(t, account="ah-business", user="alice", amounts=call,
           expect=expect(200, []))
    tr.add(ms("2026-02-11T00:00:00Z"), account="ah-business",
           user="runaway-bot", amounts=call, expect=expect(200, []))
    tr.add(ms("2026-02-11T00:01:00Z"), account="ah-business",
           features=["sso"], expect=expect(200, []))
    tr.add(ms("2026-02-11T00:02:00Z"), account="ah-business",
           features=["scim"],
           expect=expect(402, reason="feature_not_in_plan",
                         upgrade_plan="enterprise"))

    t = ms("2026-02-12T00:00:00Z")
    tr.note("ah-enterprise: a custom contract quota of 250 tool calls a",
            "month (an account override of the unlimited limit).")
    for k in range(1, 252):
        fields = {"account": "ah-enterprise", "amounts": call}
        if k == 200:
            fields["expect"] = expect(200, ["soft_nudge"])
        elif k == 251:
            fields["expect"] = expect(402, reason="billing_limit_reached",
                                      limit="monthly_tool_calls",
                                      upgrade_plan="")
        tr.add(t, bulk="expect" not in fields, **fields)
        t += MINUTE

    t = ms("2026-02-13T00:00:00Z")
    tr.note("Free has a single production key.")
    tr.add(t, type="create", account="ah-free", gauge="production_keys",
           current=1, expect=expect(402, reason="resource_limit_reached"))
    tr.add(t + MINUTE, type="create", account="ah-upgrade",
           gauge="production_keys", current=1, expect=expect(200, []))

    t = ms("2026-02-14T00:00:00Z")
    tr.note("ah-cancel cancels Starter: it keeps Starter's quota until the",
            "cycle ends (1,200 calls pass), then it is on Free.")
    tr.add(t, type="plan_change", account="ah-cancel", scheduled_plan="free")
    for k in range(1, 1_201):
        t += MINUTE
        fields = {"account": "ah-cancel", "amounts": call}
        if k == 1_200:
            fields["expect"] = expect(200, [])
        tr.add(t, bulk=k != 1_200, **fields)
    t = ms("2026-03-01T00:00:00Z")
    tr.note("A new cycle: ah-free's calls resume, and ah-cancel is on",
            "Free's 1,000.")
    tr.add(t, account="ah-free", amounts=call, expect=expect(200, [], used=0))
    for k in range(1, 1_002):
        t += MINUTE
        fields = {"account": "ah-cancel", "amounts": call}
        if k == 1_000:
            fields["expect"] = expect(200, ["soft_nudge"])
        elif k == 1_001:
            fields["expect"] = expect(402, reason="billing_limit_reached",
                                      upgrade_plan="starter")
        tr.add(t, bulk="expect" not in fields, **fields)
    return accounts, tr


# --------------------------------------------------------------------------
# ProxyLLM: monthly requests + per-minute and per-day bursts, a cost budget
# ("whichever you reach first"), 429 for all of them; managed allowlist
# gpt-4o-mini (403 plan_limit_error, also for a default model); BYOK
# bypasses the allowlist and the managed allowance, on Pro and Scale.

def proxyllm():
    anchor = "2026-01-01T00:00:00Z"
    accounts = [
        {"id": "pl-burst", "plan": "free", "anchor": anchor},
        {"id": "pl-free", "plan": "free", "anchor": anchor},
        {"id": "pl-pro", "plan": "pro", "anchor": anchor,
         "default_model": "gpt-4o"},
        {"id": "pl-scale", "plan": "scale", "anchor": anchor},
    ]
    tr = Trace([
        "ProxyLLM (examples/catalogs/proxyllm.json): Free allows 10,000",
        "managed requests a month, 10 a minute and 500 a day; the monthly",
        "allowance is also bounded by a cost budget, whichever comes first;",
        "every one of these answers 429. Managed mode forwards gpt-4o-mini",
        "only (403 plan_limit_error otherwise, also for a non-whitelisted",
        "default model); BYOK, on Pro and Scale, bypasses both.",
    ])
    mini = "gpt-4o-mini"

    t = ms("2026-01-01T00:00:00Z")
    tr.note("pl-burst: 11 requests in one minute; the 11th waits for the",
            "next minute.")
    for k in range(1, 12):
        if k < 11:
            e = expect(200, ["soft_nudge"] if k >= 8 else [])
        else:
            e = expect(429, reason="rate_limited", limit="minute_burst",
                       retry_after_ms=50_000)
        tr.add(t + (k - 1) * 1000, account="pl-burst", model=mini, expect=e)
    tr.add(t + MINUTE, account="pl-burst", model=mini, expect=expect(200, []))

    tr.note("pl-free: 500 requests a day (10 a minute) for 20 days uses up",
            "the 10,000 a month; the 501st of a day is a 429 until midnight.")
    total = 0
    for day in range(20):
        start = ms("2026-01-02T08:00:00Z") + day * DAY
        for k in range(500):
            t = start + (k // 10) * MINUTE + (k % 10) * 6_000
            total += 1
            fields = {"account": "pl-free", "model": mini}
            per_minute = k % 10 + 1
            per_day = k + 1
            warn = (nudge(per_minute, 10) or nudge(per_day, 500) or
                    nudge(total, 10_000))
            if total in (1, 8_000, 10_000) or (day == 0 and k in (0, 399,
                                                                  499)):
                fields["expect"] = expect(200,
                                          ["soft_nudge"] if warn else [])
            tr.add(t, bulk="expect" not in fields, **fields)
        if day == 0:
            t = start + HOUR
            tr.add(t, account="pl-free", model=mini,
                   expect=expect(429, reason="rate_limited",
                                 limit="daily_burst",
                                 retry_after_ms=ms("2026-01-03T00:00:00Z") -
                                 t))
    t = ms("2026-01-22T08:00:00Z")
    tr.note("Request 10,001 of the month: the managed allowance is used up.")
    tr.add(t, account="pl-free", model=mini,
           expect=expect(429, reason="billing_limit_reached",
                         limit="monthly_requests", upgrade_plan="pro",
                         used=10_000))
    tr.note("BYOK is a Pro/Scale feature; the allowlist is checked first.")
    tr.add(t + MINUTE, account="pl-free", byok=True, features=["byok"],
           model="claude-3-5-sonnet",
           expect=expect(402, reason="feature_not_in_plan",
                         upgrade_plan="pro"))
    tr.add(t + 2 * MINUTE, account="pl-free", model="gpt-4o",
           expect=expect(403, reason="plan_limit_error"))

    t = ms("2026-01-23T10:00:00Z")
    tr.note("pl-pro (default model gpt-4o): omitting the model is a 403 too.")
    tr.add(t, account="pl-pro", expect=expect(403, reason="plan_limit_error"))
    t += MINUTE
    tr.note("The cost budget ($20 a month on Pro, an assumption): an",
            "estimate of $8 settled at $2, then $8 at a time until 429.")
    steps = [
        (dict(amounts={"cost_micros": 8_000_000},
              actual={"cost_micros": 2_000_000}), expect(200, [])),
        (dict(amounts={"cost_micros": 8_000_000}),
         expect(200, [], limit="monthly_cost_budget", used=2_000_000)),
        (dict(amounts={"cost_micros": 8_000_000}),
         expect(200, ["soft_nudge"], limit="monthly_cost_budget")),
        (dict(amounts={"cost_micros": 8_000_000}),
         expect(429, reason="billing_limit_reached",
                limit="monthly_cost_budget", upgrade_plan="scale",
                used=18_000_000, remaining=2_000_000)),
    ]
    for fields, e in steps:
        tr.add(t, account="pl-pro", model=mini, expect=e, **fields)
        t += MINUTE
    tr.note("BYOK has no cost budget and no allowlist.")
    tr.add(t, account="pl-pro", byok=True, features=["byok"],
           model="claude-3-5-sonnet", amounts={"cost_micros": 8_000_000},
           expect=expect(200, []))
    t += MINUTE
    tr.add(t, account="pl-pro", byok=True, features=["byok"],
           model="o1-preview", expect=expect(200, []))
    t += MINUTE
    tr.add(t, account="pl-pro", model=mini,
           amounts={"cost_micros": 1_000_000},
           expect=expect(200, ["soft_nudge"], used=18_000_000))
    t += MINUTE
    tr.add(t, account="pl-pro", model="gpt-4o",
           expect=expect(403, reason="plan_limit_error"))
    t += MINUTE
    tr.note("Features: analytics on Pro, webhooks and custom routing rules",
            "on Scale.")
    # pl-pro is at 19 of its $20 cost budget: admitted with a soft nudge.
    for account, feature, plan in (("pl-free", "advanced_analytics", "pro"),
                                   ("pl-pro", "advanced_analytics", None),
                                   ("pl-pro", "webhook_alerts", "scale"),
                                   ("pl-pro", "custom_routing_rules", "scale"),
                                   ("pl-scale", "custom_routing_rules", None)):
        e = (expect(200, ["soft_nudge"] if account == "pl-pro" else [])
             if plan is None else
             expect(402, reason="feature_not_in_plan", upgrade_plan=plan))
        tr.add(t, account=account, model=mini, features=[feature], expect=e)
        t += MINUTE
    tr.note("API keys: 1 (primary) on Free, 5 on Pro, unlimited on Scale.")
    for account, current, plan in (("pl-free", 1, "pro"),
                                   ("pl-pro", 4, None),
                                   ("pl-pro", 5, "scale"),
                                   ("pl-scale", 100, None)):
        e = (expect(200, []) if plan is None else
             expect(402, reason="resource_limit_reached", upgrade_plan=plan))
        tr.add(t, type="create", account=account, gauge="api_keys",
               current=current, expect=e)
        t += MINUTE
    return accounts, tr


# --------------------------------------------------------------------------
# Cosantoir: Essential = sandbox/test only (live: 403
# production_access_disabled); production needs a wallet above a minimum
# (402 insufficient_credit); sandbox and console traffic are free; past_due
# has a bounded grace window, then hard-blocks; scheduled plan changes.

def cosantoir():
    anchor = "2026-03-01T00:00:00Z"
    accounts = [
        {"id": "co-essential", "plan": "essential", "anchor": anchor},
        {"id": "co-plus", "plan": "plus", "anchor": anchor},
        {"id": "co-pastdue", "plan": "plus", "anchor": anchor,
         "wallet_micros": 50_000_000},
        {"id": "co-family", "plan": "family", "anchor": anchor,
         "wallet_micros": 50_000_000},
        {"id": "co-business", "plan": "business", "anchor": anchor,
         "wallet_micros": 50_000_000},
        {"id": "co-enterprise", "plan": "enterprise", "anchor": anchor},
        {"id": "co-blocked", "plan": "plus", "anchor": anchor,
         "wallet_micros": 50_000_000},
    ]
    tr = Trace([
        "Cosantoir (examples/catalogs/cosantoir.json): Essential is sandbox",
        "keys and test-mode traffic only; production API-key traffic needs a",
        "production-capable plan and a wallet holding the minimum runtime",
        "balance ($10, an assumption); sandbox and console traffic stay",
        "free; past_due keeps production open for a bounded grace window.",
    ])
    t = ms("2026-03-02T00:00:00Z")
    tr.note("co-essential: sandbox, test and console traffic only.")
    for kind, e in (("sandbox", expect(200, [])), ("test", expect(200, [])),
                    ("internal", expect(200, [])),
                    ("live", expect(403,
                                    reason="production_access_disabled"))):
        tr.add(t, account="co-essential", kind=kind, expect=e)
        t += MINUTE
    tr.note("Upgrading to Plus enables production keys, once the wallet",
            "holds the minimum.")
    tr.add(t, type="plan_change", account="co-essential", plan="plus")
    t += MINUTE
    tr.add(t, account="co-essential",
           expect=expect(402, reason="insufficient_credit"))
    t += MINUTE
    tr.add(t, type="wallet_credit", account="co-essential",
           micros=20_000_000)
    t += MINUTE
    tr.add(t, account="co-essential", wallet_micros=1_500,
           expect=expect(200, [], wallet_balance=19_998_500))
    t += MINUTE

    t = ms("2026-03-03T00:00:00Z")
    tr.note("co-plus: an empty wallet blocks production, not sandbox.")
    tr.add(t, account="co-plus", wallet_micros=2_500,
           expect=expect(402, reason="insufficient_credit"))
    tr.add(t + MINUTE, account="co-plus", kind="sandbox",
           expect=expect(200, []))
    tr.add(t + 2 * MINUTE, type="wallet_credit", account="co-plus",
           micros=12_000_000)
    tr.add(t + 3 * MINUTE, account="co-plus", wallet_micros=2_500,
           expect=expect(200, [], wallet_balance=11_997_500))
    tr.note("Sandbox traffic is free: no debit.")
    tr.add(t + 4 * MINUTE, account="co-plus", kind="sandbox",
           wallet_micros=2_500, expect=expect(200, [],
                                              wallet_balance=11_997_500))
    tr.note("Below the $10 minimum, production stops again.")
    tr.add(t + 5 * MINUTE, type="wallet_credit", account="co-plus",
           micros=-2_000_000)
    tr.add(t + 6 * MINUTE, account="co-plus", wallet_micros=2_500,
           expect=expect(402, reason="insufficient_credit",
                         wallet_balance=9_997_500))
    tr.add(t + 7 * MINUTE, account="co-plus", kind="sandbox",
           expect=expect(200, []))

    t = ms("2026-03-05T12:00:00Z")
    tr.note("co-pastdue: a failed payment opens a grace window of 3 days;",
            "then production hard-blocks until the payment succeeds.")
    tr.add(t, type="payment_failed", account="co-pastdue",
           grace_until="2026-03-08T12:00:00Z")
    tr.add(t + MINUTE, account="co-pastdue",
           expect=expect(200, ["past_due"]))
    tr.add(ms("2026-03-08T11:59:59.999Z"), account="co-pastdue",
           expect=expect(200, ["past_due"]))
    tr.add(ms("2026-03-08T12:00:00Z"), account="co-pastdue",
           expect=expect(402, reason="payment_required"))
    tr.note("Sandbox traffic stays admitted, and free, past the deadline.")
    tr.add(ms("2026-03-08T12:00:01Z"), account="co-pastdue", kind="sandbox",
           expect=expect(200, ["past_due"]))
    tr.add(ms("2026-03-09T09:00:00Z"), type="payment_succeeded",
           account="co-pastdue")
    tr.add(ms("2026-03-09T09:01:00Z"), account="co-pastdue",
           expect=expect(200, []))
    tr.add(ms("2026-03-09T10:00:00Z"), type="block", account="co-blocked")
    tr.add(ms("2026-03-09T10:01:00Z"), account="co-blocked",
           expect=expect(402, reason="payment_required"))
    tr.add(ms("2026-03-09T10:02:00Z"), account="co-blocked", kind="sandbox",
           expect=expect(200, ["past_due"]))

    t = ms("2026-03-10T00:00:00Z")
    tr.note("co-family schedules a move to Plus: shared projects keep",
            "working until the period ends.")
    tr.add(t, type="plan_change", account="co-family", scheduled_plan="plus")
    tr.add(t + MINUTE, account="co-family", features=["shared_projects"],
           expect=expect(200, []))
    tr.add(ms("2026-03-31T23:59:59Z"), account="co-family",
           features=["shared_projects"], expect=expect(200, []))
    tr.add(ms("2026-04-01T00:00:00Z"), account="co-family",
           features=["shared_projects"],
           expect=expect(402, reason="feature_not_in_plan",
                         upgrade_plan="family"))
    tr.add(ms("2026-04-01T00:01:00Z"), account="co-family",
           expect=expect(200, []))

    t = ms("2026-03-11T00:00:00Z")
    tr.note("Business spend controls; Enterprise is invoiced (no wallet).")
    tr.add(t, account="co-business", features=["spend_controls"],
           expect=expect(200, []))
    tr.add(t + MINUTE, account="co-business", features=["custom_credits"],
           expect=expect(402, reason="feature_not_in_plan",
                         upgrade_plan="enterprise"))
    tr.add(t + 2 * MINUTE, account="co-enterprise",
           features=["invoicing"], expect=expect(200, []))
    return accounts, tr


SEEDS = {
    "modelux": modelux,
    "aerostack": aerostack,
    "agenthandler": agenthandler,
    "proxyllm": proxyllm,
    "cosantoir": cosantoir,
}


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join(root, "examples",
                                                      "traces"))
    parser.add_argument("seeds", nargs="*", default=sorted(SEEDS))
    args = parser.parse_args()
    for seed in args.seeds:
        if seed not in SEEDS:
            sys.exit("gen_traces.py: unknown seed %r (known: %s)" %
                     (seed, ", ".join(sorted(SEEDS))))
        accounts, trace = SEEDS[seed]()
        out = os.path.join(args.out, seed)
        os.makedirs(out, exist_ok=True)
        write_accounts(os.path.join(out, "accounts.json"), accounts)
        trace.write(os.path.join(out, "trace.jsonl"))
        print("%s: %d events" % (out, len(trace.events)))


if __name__ == "__main__":
    main()
