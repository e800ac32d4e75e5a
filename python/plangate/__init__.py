# Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
"""plangate for Python: plan and quota enforcement over the C API.

A thin ctypes layer over libplangate_c (include/plangate/c.h); nothing to
compile. The library is found at $PLANGATE_C_LIBRARY, else on the loader's
path (after `cmake --install`).

    import plangate

    catalog = plangate.Catalog.load_file("plans.json")
    enforcer = plangate.Enforcer(catalog)
    enforcer.upsert_account("acme", "pro", anchor_ms=renewal_ms)

    d = enforcer.check("acme", key_id="key-1", model="gpt-4o-mini",
                       amounts={"tokens": 500})
    if not d.admitted:
        http = d.http()        # status, headers, OpenAI-style body
        return reply(http.status, http.headers, http.body)
    ok = call_upstream()
    enforcer.commit(d, success=ok, actual={"tokens": used_tokens})

Errors: CatalogError (a catalog that does not parse or validate, a reload
the running accounts cannot take; its message lists every problem as
"<path>: <reason>") and Error for the rest, both carrying the library's
message. Being denied is not an error: it is a Decision with admitted
False.

Thread safety: an Enforcer may be used from many threads at once (ctypes
releases the GIL during each call); Decision and the other result objects
are plain values. A Sync's methods may be called from any thread.
"""

import ctypes
import json
import time

from . import _lib
from ._lib import lib

__all__ = [
    "Catalog", "CatalogError", "Decision", "Enforcer", "Error",
    "HttpResponse", "LimitOverride", "Sync", "ThresholdEvent",
    "http_error_type", "version",
]

KEY_KINDS = {"live": 0, "test": 1, "sandbox": 1, "internal": 2}
STATES = {"active": 0, "past_due": 1, "blocked": 2}
SCOPES = ("account", "project", "key", "user")
WINDOWS = ("billing_period", "annual", "day", "hour", "minute", "second",
           "concurrent")
MODES = ("fixed", "sliding")
DENY_KINDS = ("none", "limit", "unknown_account", "unknown_plan",
              "invalid_request", "capacity", "payment_required",
              "feature_not_in_plan", "model_not_allowed",
              "key_kind_not_allowed", "insufficient_credit",
              "resource_limit", "syncing", "subject_limit")
WARNINGS = (("soft_nudge", 1), ("grace", 2), ("shadow_denied", 4),
            ("past_due", 8))
COMMIT_RESULTS = ("applied", "refunded", "duplicate", "expired", "invalid",
                  "empty")
HTTP_OMIT = {"ietf": 1, "x_ratelimit": 2, "warning": 4, "content_type": 8}
_NO_WARNINGS = frozenset()


class Error(Exception):
    """An error the library reported; str(e) is its message."""


class CatalogError(Error):
    """A catalog that does not parse or validate, or cannot be reloaded.

    `errors` lists the problems, one "<path>: <reason>" each.
    """

    @property
    def errors(self):
        return [line for line in str(self).splitlines() if line]


def http_error_type(status):
    """The OpenAI-style error type of a status ("rate_limit_exceeded"...)."""
    return lib.pg_http_error_type(status).decode()


def version():
    """The loaded library's version, e.g. "0.1.0"."""
    return lib.pg_version().decode()


def _b(s):
    """str or bytes (or None) to bytes for a pointer-and-length field."""
    if s is None:
        return b""
    if isinstance(s, bytes):
        return s
    return s.encode("utf-8")


def _raise(err, cls=Error):
    if err.value:
        raise cls(_lib.take_string(err.value))


class Catalog:
    """A validated, immutable plan catalog (docs/catalog.md)."""

    def __init__(self, handle):
        self._h = handle

    @classmethod
    def parse(cls, text):
        """Parses a JSON catalog (str or bytes); CatalogError if invalid."""
        data = _b(text)
        err = ctypes.c_void_p()
        h = lib.pg_catalog_parse(data, len(data), ctypes.byref(err))
        _raise(err, CatalogError)
        return cls(h)

    @classmethod
    def load_file(cls, path):
        """Reads and parses a file; CatalogError names the path."""
        err = ctypes.c_void_p()
        h = lib.pg_catalog_load_file(_b(str(path)), ctypes.byref(err))
        _raise(err, CatalogError)
        return cls(h)

    @property
    def plans(self):
        return [lib.pg_catalog_plan_id(self._h, i).decode()
                for i in range(lib.pg_catalog_num_plans(self._h))]

    @property
    def meters(self):
        return [lib.pg_catalog_meter(self._h, i).decode()
                for i in range(lib.pg_catalog_num_meters(self._h))]

    @property
    def default_plan(self):
        return lib.pg_catalog_default_plan(self._h).decode()

    def __del__(self):
        h, self._h = getattr(self, "_h", None), None
        if h:
            lib.pg_catalog_destroy(h)


class LimitOverride:
    """An account's own number for one limit of its plan (or a user's)."""

    __slots__ = ("limit_id", "limit", "unlimited", "grace", "user_id")

    def __init__(self, limit_id, limit=0, unlimited=False, grace=None,
                 user_id=""):
        self.limit_id = limit_id
        self.limit = limit
        self.unlimited = unlimited
        self.grace = grace
        self.user_id = user_id


class HttpResponse:
    """A decision as HTTP: status, [(name, value)] headers and body."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        """The named header's value (case-insensitive), or None."""
        low = name.lower()
        for k, v in self.headers:
            if k.lower() == low:
                return v
        return None

    def __repr__(self):
        return "HttpResponse(%d, %r, %r)" % (self.status, self.headers,
                                             self.body)


class Decision:
    """What a check decided. Being denied is a normal decision.

    Attributes: admitted, status, deny (a DENY_KINDS name), reason,
    message, warnings (a frozenset of "soft_nudge", "grace",
    "shadow_denied", "past_due"), shadow, and for the deciding limit
    (when has_limit): limit_id, limit_scope, limit_meter, limit_window,
    limit_mode, limit_value, hard_limit, used, remaining, window_start_ms,
    reset_ms, retry_after_ms; upgrade_plan; now_ms (the request's instant,
    for http()).
    """

    __slots__ = ("_raw", "_owner", "now_ms", "status", "admitted")

    def __init__(self, raw, owner, now_ms):
        self._raw = raw  # the C struct, for commit and http()
        self._owner = owner  # the Enforcer, whose memory the strings are
        self.now_ms = now_ms
        self.status = raw.status
        self.admitted = raw.status < 300

    # The rest is read from the C struct on access (most callers look at
    # admitted and little else).
    @property
    def deny(self):
        k = self._raw.deny
        return DENY_KINDS[k] if 0 <= k < len(DENY_KINDS) else str(k)

    @property
    def reason(self):
        return _lib.view(self._raw.reason, self._raw.reason_len)

    @property
    def message(self):
        return _lib.view(self._raw.message, self._raw.message_len)

    @property
    def warnings(self):
        w = self._raw.warnings
        if not w:
            return _NO_WARNINGS
        return frozenset(n for n, bit in WARNINGS if w & bit)

    @property
    def shadow(self):
        return bool(self._raw.shadow)

    @property
    def has_limit(self):
        return bool(self._raw.has_limit)

    @property
    def limit_id(self):
        return _lib.view(self._raw.limit_id, self._raw.limit_id_len)

    @property
    def limit_scope(self):
        return SCOPES[self._raw.limit_scope]

    @property
    def limit_meter(self):
        return _lib.view(self._raw.limit_meter, self._raw.limit_meter_len)

    @property
    def limit_window(self):
        return WINDOWS[self._raw.limit_window]

    @property
    def limit_window_count(self):
        """Whole units per window: 15 for a "15m" window, else 1."""
        return self._raw.limit_window_count

    @property
    def limit_mode(self):
        return MODES[self._raw.limit_mode]

    @property
    def limit_value(self):
        return self._raw.limit_value

    @property
    def hard_limit(self):
        return self._raw.hard_limit

    @property
    def used(self):
        return self._raw.used

    @property
    def remaining(self):
        return self._raw.remaining

    @property
    def window_start_ms(self):
        return self._raw.window_start_ms

    @property
    def reset_ms(self):
        return self._raw.reset_ms

    @property
    def retry_after_ms(self):
        return self._raw.retry_after_ms

    @property
    def upgrade_plan(self):
        return _lib.view(self._raw.upgrade_plan, self._raw.upgrade_plan_len)

    @property
    def reservation(self):
        """(slot, generation); generation 0 is the empty reservation."""
        r = self._raw.reservation
        return (r.slot, r.generation)

    def http(self, now_ms=None, omit=()):
        """Renders the decision as HTTP (plangate/http.h).

        now_ms: the instant Retry-After and the reset count from (default:
        the check's now_ms, or the system clock when the check had none).
        omit: header families to leave out, any of "ietf", "x_ratelimit",
        "warning", "content_type".
        """
        if not self._owner._h:
            raise Error("enforcer is closed")  # the strings were its memory
        if now_ms is None:
            now_ms = self.now_ms or int(time.time() * 1000)
        flags = 0
        for name in omit:
            if name not in HTTP_OMIT:
                raise ValueError("omit: unknown header family %r" % name)
            flags |= HTTP_OMIT[name]
        headers = ctypes.create_string_buffer(_lib.HTTP_HEADERS_SIZE)
        body = ctypes.create_string_buffer(_lib.HTTP_BODY_SIZE)
        hlen = ctypes.c_size_t()
        blen = ctypes.c_size_t()
        err = ctypes.c_void_p()
        status = lib.pg_http_render(
            ctypes.byref(self._raw), now_ms, flags, headers,
            _lib.HTTP_HEADERS_SIZE, ctypes.byref(hlen), body,
            _lib.HTTP_BODY_SIZE, ctypes.byref(blen), ctypes.byref(err))
        _raise(err)
        lines = headers.raw[:hlen.value].decode("latin-1").split("\r\n")
        pairs = []
        for line in lines:
            if line:
                name, _, value = line.partition(": ")
                pairs.append((name, value))
        return HttpResponse(status, pairs,
                            body.raw[:blen.value].decode("utf-8"))

    def __repr__(self):
        if self.admitted:
            return "Decision(admitted, warnings=%s)" % sorted(self.warnings)
        return "Decision(%d %s, limit=%r)" % (self.status, self.reason,
                                               self.limit_id)


class ThresholdEvent:
    """A limit's usage crossed its soft-nudge share or 100%."""

    __slots__ = ("kind", "account_id", "scope", "subject_id", "limit_id",
                 "window_start_ms", "window_end_ms", "used", "limit")

    def __init__(self, e):
        v = _lib.view
        self.kind = "soft_nudge" if e.kind == 0 else "hard_cap"
        self.account_id = v(e.account_id, e.account_id_len)
        self.scope = SCOPES[e.scope]
        self.subject_id = v(e.subject_id, e.subject_id_len)
        self.limit_id = v(e.limit_id, e.limit_id_len)
        self.window_start_ms = e.window_start_ms
        self.window_end_ms = e.window_end_ms
        self.used = e.used
        self.limit = e.limit

    def __repr__(self):
        return "ThresholdEvent(%s %s %s used=%d)" % (
            self.kind, self.account_id, self.limit_id, self.used)


def _set_str(struct, field, value):
    data = _b(value)
    setattr(struct, field, data)
    setattr(struct, field + "_len", len(data))
    return data


class Enforcer:
    """Admits or denies requests against an account's plan.

    Options (plangate::EnforcerOptions): reservation_ttl_ms,
    idle_subject_ttl_ms, max_subjects, max_reservations,
    event_queue_capacity; clock, a callable returning Unix ms, read when a
    request has no now_ms; on_threshold, called with a ThresholdEvent from
    maintain() / deliver_events().
    """

    def __init__(self, catalog, reservation_ttl_ms=None,
                 idle_subject_ttl_ms=None, max_subjects=None,
                 max_reservations=None, event_queue_capacity=None,
                 clock=None, on_threshold=None):
        self._h = None
        self._meters = {}
        self._callbacks = []
        opts = lib.pg_enforcer_options_create()
        if not opts:
            raise MemoryError()
        try:
            for name, value in (
                    ("reservation_ttl_ms", reservation_ttl_ms),
                    ("idle_subject_ttl_ms", idle_subject_ttl_ms),
                    ("max_subjects", max_subjects),
                    ("max_reservations", max_reservations),
                    ("event_queue_capacity", event_queue_capacity)):
                if value is not None:
                    if value < 0 and name.startswith("max"):
                        raise ValueError("%s: must not be negative" % name)
                    getattr(lib, "pg_enforcer_options_set_" + name)(opts,
                                                                   value)
            if clock is not None:
                fn = _lib.CLOCK_FN(lambda _state: int(clock()))
                self._callbacks.append(fn)
                lib.pg_enforcer_options_set_clock(opts, fn, None)
            if on_threshold is not None:
                def deliver(_state, event):
                    on_threshold(ThresholdEvent(event.contents))
                fn = _lib.EVENT_FN(deliver)
                self._callbacks.append(fn)
                lib.pg_enforcer_options_set_event_sink(opts, fn, None)
            err = ctypes.c_void_p()
            h = lib.pg_enforcer_create(catalog._h, opts, ctypes.byref(err))
            _raise(err)
            self._h = h
        finally:
            lib.pg_enforcer_options_destroy(opts)
        self._load_meters(catalog)

    def _load_meters(self, catalog):
        self._meters = {m: i for i, m in enumerate(catalog.meters)}

    def close(self):
        """Destroys the enforcer now (an attached Sync stops)."""
        h, self._h = self._h, None
        if h:
            lib.pg_enforcer_destroy(h)

    def __del__(self):
        if getattr(self, "_h", None):
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _handle(self):
        if not self._h:
            raise Error("enforcer is closed")
        return self._h

    def reload_catalog(self, catalog):
        """Replaces the catalog; CatalogError keeps the running one."""
        err = ctypes.c_void_p()
        lib.pg_enforcer_reload_catalog(self._handle(), catalog._h,
                                       ctypes.byref(err))
        _raise(err, CatalogError)
        self._load_meters(catalog)

    def upsert_account(self, account_id, plan_id, anchor_ms=0,
                       state="active", past_due_deadline_ms=0,
                       scheduled_plan_id="", default_model="",
                       overrides=()):
        """Registers an account or changes its plan, anchor or state.

        state: "active", "past_due" or "blocked". overrides: LimitOverride
        objects or dicts of its fields.
        """
        if state not in STATES:
            raise ValueError("state: must be one of %s" % ", ".join(STATES))
        a = _lib.Account()
        keep = [_set_str(a, "account_id", account_id),
                _set_str(a, "plan_id", plan_id),
                _set_str(a, "scheduled_plan_id", scheduled_plan_id),
                _set_str(a, "default_model", default_model)]
        a.anchor_ms = anchor_ms
        a.state = STATES[state]
        a.past_due_deadline_ms = past_due_deadline_ms
        overrides = [o if isinstance(o, LimitOverride) else LimitOverride(**o)
                     for o in overrides]
        if overrides:
            arr = (_lib.LimitOverride * len(overrides))()
            for c, o in zip(arr, overrides):
                keep.append(_set_str(c, "limit_id", o.limit_id))
                keep.append(_set_str(c, "user_id", o.user_id))
                c.unlimited = 1 if o.unlimited else 0
                c.limit = o.limit
                if o.grace is not None:
                    c.set_grace = 1
                    c.grace = o.grace
            a.overrides = arr
            a.num_overrides = len(overrides)
        err = ctypes.c_void_p()
        lib.pg_enforcer_upsert_account(self._handle(), ctypes.byref(a),
                                       ctypes.byref(err))
        _raise(err)

    def update_wallet(self, account_id, credit_micros, credit_id=None):
        """Adds credit (may be negative); returns the new balance.

        With wallets shared through Redis, credit_id is required and the
        credit counts once per id (the balance returned is an estimate).
        """
        data = _b(account_id)
        err = ctypes.c_void_p()
        if credit_id is None:
            balance = lib.pg_enforcer_update_wallet(
                self._handle(), data, len(data), credit_micros,
                ctypes.byref(err))
        else:
            cid = _b(credit_id)
            balance = lib.pg_enforcer_credit_wallet(
                self._handle(), data, len(data), credit_micros, cid,
                len(cid), ctypes.byref(err))
        _raise(err)
        return balance

    def meter_id(self, name):
        """A meter's index, or -1."""
        data = _b(name)
        return lib.pg_enforcer_meter_id(self._handle(), data, len(data))

    def _amounts(self, amounts, what):
        arr = (_lib.MeterAmount * len(amounts))()
        for c, (meter, amount) in zip(arr, amounts.items()):
            idx = self._meters.get(meter) if isinstance(meter, str) else meter
            if idx is None:
                raise ValueError("%s: unknown meter %r" % (what, meter))
            c.meter = idx
            c.amount = amount
        return arr

    def _request(self, account_id, project_id, key_id, user_id, key_kind,
                 byok, model, features, wallet_micros, amounts, now_ms,
                 request_id):
        r = _lib.CheckRequest()
        a = account_id.encode() if isinstance(account_id, str) else _b(
            account_id)
        r.account_id = a
        r.account_id_len = len(a)
        keep = [a]
        if project_id:
            keep.append(_set_str(r, "project_id", project_id))
        if key_id:
            keep.append(_set_str(r, "key_id", key_id))
        if user_id:
            keep.append(_set_str(r, "user_id", user_id))
        if model:
            keep.append(_set_str(r, "model", model))
        if key_kind != "live":
            kind = KEY_KINDS.get(key_kind)
            if kind is None:
                raise ValueError(
                    "key_kind: must be one of live, test, internal")
            r.key_kind = kind
        if byok:
            r.byok = 1
        if features:
            encoded = [_b(f) for f in features]
            ptrs = (ctypes.c_char_p * len(encoded))(*encoded)
            lens = (ctypes.c_size_t * len(encoded))(*map(len, encoded))
            keep += [encoded, ptrs, lens]
            r.features = ptrs
            r.features_lens = lens
            r.num_features = len(encoded)
        if wallet_micros:
            r.wallet_micros = wallet_micros
        if amounts:
            arr = self._amounts(amounts, "amounts")
            keep.append(arr)
            r.amounts = arr
            r.num_amounts = len(arr)
        if now_ms:
            r.now_ms = now_ms
        if request_id:
            r.request_id = request_id
        return r, keep

    def check(self, account_id, *, project_id="", key_id="", user_id="",
              key_kind="live", byok=False, model="", features=(),
              wallet_micros=0, amounts=None, now_ms=0, request_id=0):
        """Decides a request and, when admitted, counts it.

        amounts: {meter name: amount}; "requests" is 1 unless given.
        Returns a Decision; commit() it once the upstream answered.
        """
        r, _keep = self._request(account_id, project_id, key_id, user_id,
                                 key_kind, byok, model, features,
                                 wallet_micros, amounts, now_ms, request_id)
        raw = _lib.DecisionStruct()
        lib.pg_enforcer_check(self._handle(), ctypes.byref(r),
                              ctypes.byref(raw))
        return Decision(raw, self, now_ms)

    def peek(self, account_id, **kwargs):
        """What check() would decide now, counting nothing."""
        now_ms = kwargs.get("now_ms", 0)
        args = dict(project_id="", key_id="", user_id="", key_kind="live",
                    byok=False, model="", features=(), wallet_micros=0,
                    amounts=None, now_ms=0, request_id=0)
        unknown = set(kwargs) - set(args)
        if unknown:
            raise TypeError("peek() got unexpected keyword arguments: %s" %
                            ", ".join(sorted(unknown)))
        args.update(kwargs)
        r, _keep = self._request(account_id, **args)
        raw = _lib.DecisionStruct()
        lib.pg_enforcer_peek(self._handle(), ctypes.byref(r),
                             ctypes.byref(raw))
        return Decision(raw, self, now_ms)

    def commit(self, decision, *, success=True, actual=None,
               wallet_micros=None, request_id=0):
        """Settles what a check reserved; returns "applied", "refunded",
        "duplicate", "expired", "invalid" or "empty".

        success=False refunds everything. actual: {meter: amount} for
        meters that had estimates. wallet_micros: the actual debit.
        """
        c = _lib.CommitRequest()
        if isinstance(decision, Decision):
            if decision._owner is not self:
                return "invalid"
            c.reservation = decision._raw.reservation
        else:
            c.reservation.slot, c.reservation.generation = decision
        if not success:
            c.failed = 1
        keep = None
        if actual:
            keep = self._amounts(actual, "actual")
            c.actual = keep
            c.num_actual = len(keep)
        if wallet_micros is not None:
            c.set_wallet = 1
            c.wallet_micros = wallet_micros
        if request_id:
            c.request_id = request_id
        return COMMIT_RESULTS[lib.pg_enforcer_commit(self._handle(),
                                                     ctypes.byref(c))]

    def check_create(self, account_id, gauge, current):
        """May the account create one more `gauge` when it has `current`?"""
        a, g = _b(account_id), _b(gauge)
        raw = _lib.DecisionStruct()
        lib.pg_enforcer_check_create(self._handle(), a, len(a), g, len(g),
                                     current, ctypes.byref(raw))
        return Decision(raw, self, 0)

    def usage_json(self, account_id, now_ms=0):
        """The account's usage report as a JSON string; Error if unknown."""
        data = _b(account_id)
        n = ctypes.c_size_t()
        err = ctypes.c_void_p()
        ptr = lib.pg_enforcer_usage_json(self._handle(), data, len(data),
                                         now_ms, ctypes.byref(n),
                                         ctypes.byref(err))
        _raise(err)
        return _lib.take_string(ptr, n.value)

    def usage(self, account_id, now_ms=0):
        """The usage report as a dict (see UsageReportJson)."""
        return json.loads(self.usage_json(account_id, now_ms))

    def maintain(self, now_ms=0):
        """Housekeeping: refunds expired reservations, delivers events."""
        lib.pg_enforcer_maintain(self._handle(), now_ms)

    def deliver_events(self, now_ms=0):
        """Hands buffered threshold events to on_threshold; how many."""
        return lib.pg_enforcer_deliver_events(self._handle(), now_ms)

    def stats(self):
        s = _lib.EnforcerStats()
        lib.pg_enforcer_stats(self._handle(), ctypes.byref(s))
        return {name: getattr(s, name) for name, _ in s._fields_}

    def prometheus_text(self):
        n = ctypes.c_size_t()
        return _lib.take_string(
            lib.pg_enforcer_prometheus_text(self._handle(), ctypes.byref(n)),
            n.value)

    def start_sync(self, redis_url, **options):
        """Shares counts with other instances through Redis; see Sync."""
        return Sync(self, redis_url, **options)


_SYNC_OPTIONS = {
    "key_prefix": "str", "instance_id": "str", "flush_interval_ms": "int",
    "refresh_interval_ms": "int", "max_batch": "int", "leases": "bool",
    "expected_instances": "int", "min_round_units": "int",
    "cold_start_share": "float", "lease_ttl_ms": "int",
    "unavailable_after_ms": "int", "connect_timeout_ms": "int",
    "command_timeout_ms": "int", "redis_tls_ca_file": "str",
    "redis_tls_ca_dir": "str", "redis_tls_cert_file": "str",
    "redis_tls_key_file": "str", "redis_tls_server_name": "str",
    "redis_tls_verify": "bool", "redis_sentinel_password": "str",
}


class Sync:
    """Cluster sync of one Enforcer through Redis (plangate/sync.h).

    redis_url: redis://[[user]:password@]host[:port][/db], rediss://...
    (TLS), ...?cluster=1, unix:///path?db=N or
    redis-sentinel://host:port[,host:port...]/master[/db]. Options as
    plangate::SyncOptions, in ms: key_prefix, instance_id,
    flush_interval_ms, refresh_interval_ms, max_batch, leases,
    expected_instances, min_round_units, cold_start_share, lease_ttl_ms,
    unavailable_after_ms, connect_timeout_ms, command_timeout_ms; for
    rediss:// redis_tls_ca_file, redis_tls_ca_dir, redis_tls_cert_file,
    redis_tls_key_file, redis_tls_server_name, redis_tls_verify; for
    redis-sentinel:// redis_sentinel_password.
    """

    def __init__(self, enforcer, redis_url, **options):
        self._h = None
        self._enforcer = enforcer  # kept alive while the sync runs
        opts = lib.pg_sync_options_create()
        if not opts:
            raise MemoryError()
        try:
            for name, value in options.items():
                kind = _SYNC_OPTIONS.get(name)
                if kind is None:
                    raise TypeError("unknown sync option %r" % name)
                setter = getattr(lib, "pg_sync_options_set_" + name)
                if kind == "str":
                    data = _b(value)
                    setter(opts, data, len(data))
                elif kind == "bool":
                    setter(opts, 1 if value else 0)
                else:
                    setter(opts, value)
            err = ctypes.c_void_p()
            h = lib.pg_sync_start(enforcer._handle(), _b(redis_url), opts,
                                  ctypes.byref(err))
            _raise(err)
            self._h = h
        finally:
            lib.pg_sync_options_destroy(opts)

    def close(self):
        """Stops without draining (call drain() first to hand over)."""
        h, self._h = self._h, None
        if h:
            lib.pg_sync_destroy(h)

    def __del__(self):
        if getattr(self, "_h", None):
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _handle(self):
        if not self._h:
            raise Error("sync is closed")
        return self._h

    def flush(self, timeout_ms=5000):
        """Barrier: every pending usage acknowledged; Error on timeout."""
        err = ctypes.c_void_p()
        lib.pg_sync_flush(self._handle(), timeout_ms, ctypes.byref(err))
        _raise(err)

    def drain(self, timeout_ms=5000):
        """For shutdown: flush and return every lease."""
        err = ctypes.c_void_p()
        lib.pg_sync_drain(self._handle(), timeout_ms, ctypes.byref(err))
        _raise(err)

    def stats(self):
        s = _lib.SyncStats()
        lib.pg_sync_stats(self._handle(), ctypes.byref(s))
        out = {name: getattr(s, name) for name, _ in s._fields_}
        out["connected"] = bool(out["connected"])
        out["redis_up"] = bool(out["redis_up"])
        return out

    def prometheus_text(self):
        n = ctypes.c_size_t()
        return _lib.take_string(
            lib.pg_sync_prometheus_text(self._handle(), ctypes.byref(n)),
            n.value)

    @property
    def instance_id(self):
        return lib.pg_sync_instance_id(self._handle()).decode()

    @property
    def last_error(self):
        return _lib.take_string(lib.pg_sync_last_error(self._handle()))
