# Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
"""End to end: python/examples/gateway.py in front of a mock upstream.

The gateway and an OpenAI-shaped mock (the usage rule of
examples/gateway/mock_upstream.h; model "mock-error" answers 500) run on
free loopback ports in this process; requests go over real HTTP with the
configuration of the C++ gateway's end-to-end test (tests/gateway/data).
"""

import json
import math
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import plangate

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(ROOT, "tests", "gateway", "data")
sys.path.insert(0, os.path.join(ROOT, "python", "examples"))
import gateway  # noqa: E402


class MockUpstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    calls = 0

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls += 1
        if body.get("model") == "mock-error":
            data = b'{"error": {"message": "mock failure"}}'
            status = 500
        else:
            text = sum(len(m.get("content", "").encode())
                       for m in body.get("messages", []))
            prompt = math.ceil(text / 4)
            completion = min(body.get("max_tokens") or 16, 16)
            data = json.dumps({
                "object": "chat.completion",
                "choices": [{"message": {"role": "assistant",
                                         "content": "ok"}}],
                "usage": {"prompt_tokens": prompt,
                          "completion_tokens": completion,
                          "total_tokens": prompt + completion}}).encode()
            status = 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def serve(server):
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    return t


@pytest.fixture(scope="module")
def base_url():
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), MockUpstream)
    serve(upstream)
    enforcer = plangate.Enforcer(
        plangate.Catalog.load_file(os.path.join(DATA, "catalog.json")))
    gateway.load_accounts(enforcer, os.path.join(DATA, "accounts.json"))
    keys = gateway.load_keys(os.path.join(DATA, "keys.json"))
    server = gateway.make_server(gateway.Gateway(
        enforcer, keys, "http://127.0.0.1:%d" % upstream.server_address[1]))
    serve(server)
    yield "http://127.0.0.1:%d" % server.server_address[1], enforcer
    server.shutdown()
    upstream.shutdown()
    server.server_close()
    upstream.server_close()
    enforcer.close()


def call(base, key, model="mock-small", content="hello", max_tokens=None,
         path="/v1/chat/completions"):
    body = {"model": model, "messages": [{"role": "user",
                                          "content": content}]}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    req = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": "Bearer " + key,
                 "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def get(base, key, path):
    req = urllib.request.Request(base + path,
                                 headers={"Authorization": "Bearer " + key})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.read().decode()


def test_admitted_then_rate_limited_with_headers(base_url):
    base, _ = base_url
    # All four in one minute of the fixed per-minute window.
    second = time.gmtime().tm_sec
    if second >= 45:
        time.sleep(61 - second)
    for _ in range(3):
        status, headers, body = call(base, "sk-rate")
        assert status == 200, body
        assert json.loads(body)["object"] == "chat.completion"
    status, headers, body = call(base, "sk-rate")
    assert status == 429
    assert int(headers["Retry-After"]) >= 1
    assert headers["X-RateLimit-Limit"] == "3"
    assert headers["X-RateLimit-Remaining"] == "0"
    assert json.loads(body)["error"]["code"] == "rate_limited"
    # Test and internal keys of the same account are never counted.
    assert call(base, "sk-rate-test")[0] == 200
    assert call(base, "sk-rate-internal")[0] == 200


def test_denials_402_403_and_unknown_key(base_url):
    base, _ = base_url
    status, _, body = call(base, "sk-blocked")
    assert status == 402
    assert json.loads(body)["error"]["code"] == "payment_required"
    status, _, body = call(base, "sk-free-live")  # free: sandbox keys only
    assert status == 403
    assert json.loads(body)["error"]["code"] == "production_access_disabled"
    assert call(base, "sk-free-test")[0] == 200
    status, _, body = call(base, "sk-basic", model="gpt-4o")  # not mock-*
    assert status == 403
    assert call(base, "sk-nope")[0] == 401
    status, _, body = call(base, "sk-broke")  # prepaid, empty wallet
    assert status == 402
    assert json.loads(body)["error"]["code"] == "insufficient_credit"


def test_tokens_committed_from_usage_and_failed_upstream_refunded(base_url):
    base, enforcer = base_url
    # "hello" is 2 prompt tokens; max_tokens 4 completes 4: 6 in all.
    status, headers, _ = call(base, "sk-tokens", max_tokens=4)
    assert status == 200
    used = lambda: enforcer.usage("acct-tokens")["usage"]["monthly_tokens"][
        "used"]
    assert used() == 6
    before_calls = MockUpstream.calls
    status, _, _ = call(base, "sk-tokens", model="mock-error", max_tokens=4)
    assert status == 502
    assert MockUpstream.calls == before_calls + 1
    assert used() == 6  # refunded
    _, text = get(base, "sk-tokens", "/v1/usage")
    assert json.loads(text)["usage"]["monthly_tokens"]["used"] == 6
    # Past the soft nudge (50 of 100) the admitted reply warns.
    status, headers, _ = call(base, "sk-tokens", content="x" * 200,
                              max_tokens=8)
    assert status == 200
    assert "soft_nudge" in headers.get("X-Plangate-Warning", "")


def test_metrics_and_health(base_url):
    base, _ = base_url
    status, text = get(base, "sk-rate", "/metrics")
    assert status == 200 and "plangate_subjects " in text
    assert get(base, "sk-rate", "/healthz") == (200, "ok\n")
