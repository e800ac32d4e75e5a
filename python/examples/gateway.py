# Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
"""gateway.py: an OpenAI-compatible gateway on http.server that enforces plans.

The Python counterpart of examples/gateway (plangate_gateway), small enough
to read in one go: one Enforcer.check before the upstream call, one commit
after it with the tokens the upstream reported (a failed call refunds), and
plangate's own HTTP rendering for denials and warnings. It reads the same
keys and accounts files as plangate_gateway (tests/gateway/data).

    python3 python/examples/gateway.py --catalog tests/gateway/data/catalog.json \\
        --keys tests/gateway/data/keys.json \\
        --accounts tests/gateway/data/accounts.json \\
        --upstream http://127.0.0.1:9000 [--listen 127.0.0.1:8080] [--redis URL]

Routes: POST /v1/chat/completions (forwarded), GET /v1/usage (the key's
account's usage report), GET /metrics (Prometheus text), GET /healthz.
Requests authenticate with "Authorization: Bearer <key>".
"""

import argparse
import datetime
import json
import math
import os
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import plangate  # noqa: E402


def parse_time_ms(text):
    """RFC 3339 (UTC "Z" allowed) to Unix ms."""
    t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(t.timestamp() * 1000)


def load_accounts(enforcer, path):
    with open(path) as f:
        accounts = json.load(f)
    for i, a in enumerate(accounts):
        try:
            enforcer.upsert_account(
                a["id"], a["plan"],
                anchor_ms=parse_time_ms(a["anchor"]) if "anchor" in a else 0,
                state=a.get("state", "active"),
                past_due_deadline_ms=(parse_time_ms(a["past_due_until"])
                                      if "past_due_until" in a else 0),
                scheduled_plan_id=a.get("scheduled_plan", ""),
                default_model=a.get("default_model", ""),
                overrides=a.get("overrides", ()))
            if a.get("wallet_micros"):
                enforcer.update_wallet(
                    a["id"], a["wallet_micros"],
                    credit_id="accounts-file:%s:%d" % (a["id"],
                                                       a["wallet_micros"]))
        except (KeyError, TypeError, ValueError, plangate.Error) as e:
            raise SystemExit("gateway.py: %s: accounts[%d]: %s" % (path, i, e))
    return len(accounts)


def load_keys(path):
    with open(path) as f:
        keys = json.load(f)
    out = {}
    for i, k in enumerate(keys):
        kind = k.get("kind", "live")
        if kind not in ("live", "test", "internal"):
            raise SystemExit("gateway.py: %s: [%d].kind: must be live, test "
                             "or internal" % (path, i))
        out[k["key"]] = k
    return out


class Gateway:
    """The state the handlers share: enforcer, keys, upstream."""

    def __init__(self, enforcer, keys, upstream, default_max_tokens=256):
        self.enforcer = enforcer
        self.keys = keys
        self.upstream = upstream.rstrip("/")
        self.default_max_tokens = default_max_tokens
        self.metered_tokens = enforcer.meter_id("tokens") >= 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    gateway = None  # set on the subclass the server is made with

    def log_message(self, fmt, *args):  # quiet by default
        if os.environ.get("PLANGATE_GATEWAY_LOG"):
            super().log_message(fmt, *args)

    def _send(self, status, body, headers=(), content_type=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status, message, code):
        body = json.dumps({"error": {"message": message,
                                     "type": plangate.http_error_type(status),
                                     "code": code, "param": None}})
        self._send(status, body, content_type="application/json")

    def _key(self):
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return None
        return self.gateway.keys.get(auth[len("Bearer "):].strip())

    def do_GET(self):
        g = self.gateway
        if self.path == "/healthz":
            return self._send(200, "ok\n", content_type="text/plain")
        if self.path == "/metrics":
            return self._send(200, g.enforcer.prometheus_text(),
                              content_type="text/plain; version=0.0.4")
        if self.path == "/v1/usage":
            key = self._key()
            if key is None:
                return self._error(401, "invalid API key", "invalid_api_key")
            try:
                return self._send(200, g.enforcer.usage_json(key["account"]),
                                  content_type="application/json")
            except plangate.Error as e:
                return self._error(404, str(e), "unknown_account")
        return self._error(404, "no such route", "not_found")

    def do_POST(self):
        g = self.gateway
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path != "/v1/chat/completions":
            return self._error(404, "no such route", "not_found")
        key = self._key()
        if key is None:
            return self._error(401, "invalid API key", "invalid_api_key")
        try:
            body = json.loads(raw or b"{}")
            messages = body.get("messages", [])
            prompt_bytes = sum(len(str(m.get("content", "")).encode())
                               for m in messages)
        except (ValueError, AttributeError):
            return self._error(400, "the body is not a chat request",
                               "invalid_request")
        max_tokens = body.get("max_tokens") or g.default_max_tokens
        amounts = None
        if g.metered_tokens:
            amounts = {"tokens": math.ceil(prompt_bytes / 4) + max_tokens}
        d = g.enforcer.check(
            key["account"], project_id=key.get("project", ""),
            key_id=key.get("id", ""), user_id=key.get("user", ""),
            key_kind=key.get("kind", "live"), byok=key.get("byok", False),
            model=body.get("model", ""), amounts=amounts)
        http = d.http()
        if not d.admitted:
            return self._send(http.status, http.body, http.headers)

        # Admitted: forward, then settle with what the upstream reported.
        req = urllib.request.Request(
            g.upstream + self.path, data=raw, method="POST",
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                reply = resp.read()
                status = resp.status
        except urllib.error.HTTPError as e:
            reply, status = e.read(), e.code
        except OSError as e:
            g.enforcer.commit(d, success=False)
            return self._error(502, "upstream unreachable: %s" % e,
                               "upstream_error")
        if status >= 500:
            g.enforcer.commit(d, success=False)  # refund
            return self._send(502, reply, content_type="application/json")
        actual = None
        if g.metered_tokens:
            try:
                actual = {"tokens": int(json.loads(reply)["usage"]
                                        ["total_tokens"])}
            except (ValueError, KeyError, TypeError):
                actual = None  # keep the estimate
        g.enforcer.commit(d, success=status < 400, actual=actual)
        # Admitted responses carry the rate-limit and warning headers.
        headers = [h for h in http.headers if h[0] != "Content-Type"]
        self._send(status, reply, headers, content_type="application/json")


def make_server(gateway, host="127.0.0.1", port=0):
    handler = type("BoundHandler", (Handler,), {"gateway": gateway})
    return ThreadingHTTPServer((host, port), handler)


def start_maintenance(enforcer, stop):
    def loop():
        while not stop.wait(1.0):
            enforcer.maintain()
    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--catalog", required=True)
    p.add_argument("--keys", required=True)
    p.add_argument("--accounts")
    p.add_argument("--upstream", required=True)
    p.add_argument("--listen", default="127.0.0.1:8080")
    p.add_argument("--redis", help="redis://host:port to share counts")
    p.add_argument("--redis-prefix", default="pg")
    args = p.parse_args(argv)
    try:
        catalog = plangate.Catalog.load_file(args.catalog)
    except plangate.CatalogError as e:
        raise SystemExit("gateway.py: %s" % e)
    enforcer = plangate.Enforcer(catalog)
    sync = None
    if args.redis:
        sync = enforcer.start_sync(args.redis, key_prefix=args.redis_prefix)
    n_accounts = load_accounts(enforcer, args.accounts) if args.accounts else 0
    keys = load_keys(args.keys)
    host, _, port = args.listen.rpartition(":")
    server = make_server(Gateway(enforcer, keys, args.upstream), host,
                         int(port))
    stop = threading.Event()
    start_maintenance(enforcer, stop)
    print("gateway.py: listening on http://%s:%d (%d keys, %d accounts)" %
          (server.server_address[0], server.server_address[1], len(keys),
           n_accounts), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()
        if sync is not None:
            try:
                sync.drain(5000)
            except plangate.Error as e:
                print("gateway.py: drain: %s" % e, file=sys.stderr)
            sync.close()
        enforcer.close()


if __name__ == "__main__":
    main()
