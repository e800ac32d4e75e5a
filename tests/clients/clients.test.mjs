// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// examples/gateway driven by the official SDKs, as an application would:
// the `openai` npm package for chat completions (plain and streamed), the
// model list and every denial class, and `@modelcontextprotocol/sdk` for
// MCP (initialize, tools/list, tools/call, a denial in both of the
// gateway's --mcp-denial forms). Run by clients_test.sh, which installs
// the pinned SDKs with `npm ci` and starts the gateways:
//
//   PLANGATE_GATEWAY_URL        a gateway with --mcp-denial error
//   PLANGATE_GATEWAY_AGENT_URL  the same configuration, --mcp-denial tool_result
//
// Accounts and keys: tests/clients/data. Each test uses its own account, so
// their counts do not interfere.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import OpenAI from 'openai';

const base = process.env.PLANGATE_GATEWAY_URL;
const agentBase = process.env.PLANGATE_GATEWAY_AGENT_URL;
assert.ok(base && agentBase, 'PLANGATE_GATEWAY_URL and PLANGATE_GATEWAY_AGENT_URL must be set');

// 40 bytes of text: 10 prompt tokens at the mock upstream and the gateway.
const text = 'abcdefghijklmnopqrstuvwxyzabcdefghijklmn';
const messages = [{ role: 'user', content: text }];

function openai(apiKey, options = {}) {
  return new OpenAI({ apiKey, baseURL: `${base}/v1`, maxRetries: 0, ...options });
}

async function usage(apiKey) {
  const res = await fetch(`${base}/v1/billing/usage`, {
    headers: { Authorization: `Bearer ${apiKey}` },
  });
  assert.equal(res.status, 200);
  return (await res.json()).usage;
}

// The gateway commits a stream's usage after its last chunk, so a client
// can read usage before the commit lands. The count before a test: once two
// reads 100 ms apart agree (an earlier test's commit has landed).
async function settledTokens(apiKey) {
  let last = (await usage(apiKey)).monthly_tokens.used;
  for (let i = 0; i < 50; ++i) {
    await new Promise((r) => setTimeout(r, 100));
    const now = (await usage(apiKey)).monthly_tokens.used;
    if (now === last) return now;
    last = now;
  }
  return last;
}

// The count after a test: read until it equals `target` (or 5 s pass).
// A count past the target may be a reservation whose commit has not landed
// yet: a stream reserves its estimate at the check and commits what it
// produced after its last write, which the client can see first (a broken
// stream: 20 reserved, 15 committed). A wrong charge stays wrong and is
// returned after 5 s.
async function tokensReaching(apiKey, target) {
  let now = (await usage(apiKey)).monthly_tokens.used;
  for (let i = 0; i < 100 && now !== target; ++i) {
    await new Promise((r) => setTimeout(r, 50));
    now = (await usage(apiKey)).monthly_tokens.used;
  }
  return now;
}

async function metric(name) {
  const body = await (await fetch(`${base}/metrics`)).text();
  const line = body.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

// Calls `fn`, which must reject with an error of class `type`; returns it.
async function rejection(fn, type) {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof type, `expected ${type.name}, got ${err?.constructor?.name}: ${err}`);
    return err;
  }
  assert.fail(`expected ${type.name}, the call succeeded`);
}

test('chat completion: the SDK parses the reply and its usage', async () => {
  const before = await settledTokens('sk-app');
  const { data: reply, response } = await openai('sk-app')
    .chat.completions.create({ model: 'mock-small', messages, max_tokens: 5 })
    .withResponse();
  assert.equal(reply.object, 'chat.completion');
  assert.equal(reply.choices[0].message.role, 'assistant');
  assert.equal(reply.usage.prompt_tokens, 10);
  assert.equal(reply.usage.completion_tokens, 5);
  assert.match(response.headers.get('ratelimit-policy'), /^"monthly_tokens";q=1000000/);
  assert.equal(await tokensReaching('sk-app', before + 15), before + 15);
});

test('cached and reasoning tokens: the SDK sees the details, the cost prices them once', async () => {
  // mock-reasoner: 10 prompt tokens, 5 cached; 5 completion tokens, 2
  // reasoning. Per token (tests/clients/data): 2 input, 0.5 cached, 4
  // output, 8 reasoning: 5 x 2 + 5 x 0.5 + 3 x 4 + 2 x 8 = 40.5 -> 41.
  const client = openai('sk-reasoner');
  const reply = await client.chat.completions.create({
    model: 'mock-reasoner',
    messages,
    max_tokens: 5,
  });
  assert.equal(reply.usage.prompt_tokens_details.cached_tokens, 5);
  assert.equal(reply.usage.completion_tokens_details.reasoning_tokens, 2);
  const stream = await client.chat.completions.create({
    model: 'mock-reasoner',
    messages,
    max_tokens: 5,
    stream: true,
    stream_options: { include_usage: true },
  });
  let reported = null;
  for await (const chunk of stream) {
    if (chunk.usage) reported = chunk.usage;
  }
  assert.equal(reported.prompt_tokens_details.cached_tokens, 5);
  assert.equal(await tokensReaching('sk-reasoner', 30), 30);
  const res = await fetch(`${base}/v1/billing/usage`, {
    headers: { Authorization: 'Bearer sk-reasoner' },
  });
  const report = await res.json();
  assert.equal(report.usage.monthly_cost.used, 2 * 41);
  assert.deepEqual(report.models, {
    'mock-reasoner': { requests: 2, tokens: 30, cost_micros: 2 * 41 },
  });
  assert.equal(report.other_models, null);
});

test('streaming with include_usage: chunks as they come, then the usage chunk', async () => {
  const before = await settledTokens('sk-app');
  const stream = await openai('sk-app').chat.completions.create({
    model: 'mock-stream-slow',
    messages,
    max_tokens: 6,
    stream: true,
    stream_options: { include_usage: true },
  });
  const started = Date.now();
  const arrivals = [];
  let content = '';
  let reported = null;
  for await (const chunk of stream) {
    arrivals.push(Date.now() - started);
    if (chunk.usage) reported = chunk.usage;
    if (chunk.choices.length > 0) content += chunk.choices[0].delta.content ?? '';
  }
  assert.equal(content, 'tok '.repeat(6));
  assert.deepEqual(reported, { prompt_tokens: 10, completion_tokens: 6, total_tokens: 16 });
  // role, 6 content, finish, usage: 9 chunks, one every 100 ms upstream.
  assert.equal(arrivals.length, 9);
  assert.ok(arrivals[8] - arrivals[0] >= 600, `chunks arrived together: ${arrivals}`);
  assert.equal(await tokensReaching('sk-app', before + 16), before + 16);
});

test('streaming without include_usage: no usage chunk, usage still committed', async () => {
  const before = await settledTokens('sk-app');
  const stream = await openai('sk-app').chat.completions.create({
    model: 'mock-small',
    messages,
    max_tokens: 4,
    stream: true,
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.equal(chunks.length, 6); // role, 4 content, finish
  assert.ok(chunks.every((c) => c.usage == null && c.choices.length === 1));
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'length');
  assert.equal(await tokensReaching('sk-app', before + 14), before + 14);
});

test('a stream the upstream breaks ends with an APIError; what was streamed counts', async () => {
  const before = await settledTokens('sk-app');
  const stream = await openai('sk-app').chat.completions.create({
    model: 'mock-stream-break',
    messages,
    max_tokens: 10,
    stream: true,
  });
  let content = '';
  const err = await rejection(async () => {
    for await (const chunk of stream) content += chunk.choices[0]?.delta?.content ?? '';
  }, OpenAI.APIError);
  assert.equal(err.code, 'upstream_error');
  assert.equal(content, 'tok '.repeat(5));
  assert.equal(await tokensReaching('sk-app', before + 15), before + 15);
});

test('a client that leaves a stream is charged for what was streamed', async () => {
  const before = await settledTokens('sk-app');
  const stream = await openai('sk-app').chat.completions.create({
    model: 'mock-stream-slow',
    messages,
    max_tokens: 10,
    stream: true,
  });
  let received = 0;
  // Leaving the loop cancels the SDK's request (its connection closes).
  for await (const chunk of stream) {
    if (chunk.choices[0]?.delta?.content && ++received === 3) break;
  }
  // The gateway notices at its next write (100 ms later) and commits.
  await new Promise((r) => setTimeout(r, 1000));
  const charged = (await usage('sk-app')).monthly_tokens.used - before;
  assert.ok(charged > 10 + 2 && charged < 10 + 10, `charged ${charged}`);
});

test('models.list: the plan allowlist for managed keys, everything for BYOK', async () => {
  const ids = async (key) => {
    const out = [];
    for await (const m of openai(key).models.list()) {
      assert.equal(m.object, 'model');
      out.push(m.id);
    }
    return out;
  };
  const managed = await ids('sk-app');
  assert.ok(managed.length > 0 && managed.every((id) => id.startsWith('mock-')), `${managed}`);
  assert.ok((await ids('sk-app-byok')).includes('gpt-4o'));
  const one = await openai('sk-app').models.retrieve('mock-large');
  assert.equal(one.id, 'mock-large');
  const hidden = await rejection(() => openai('sk-app').models.retrieve('gpt-4o'), OpenAI.NotFoundError);
  assert.equal(hidden.code, 'model_not_found');
});

test('each denial class arrives as the SDK error with its headers', async () => {
  const call = (key, model = 'mock-small') => () =>
    openai(key).chat.completions.create({ model, messages, max_tokens: 5 });

  const auth = await rejection(call('sk-nobody'), OpenAI.AuthenticationError);
  assert.equal(auth.status, 401);
  assert.equal(auth.code, 'invalid_api_key');

  const model = await rejection(call('sk-app', 'gpt-4o'), OpenAI.PermissionDeniedError);
  assert.equal(model.code, 'plan_limit_error');
  const kind = await rejection(call('sk-sandbox-live'), OpenAI.PermissionDeniedError);
  assert.equal(kind.code, 'production_access_disabled');

  const byok = await rejection(call('sk-app-byok'), OpenAI.APIError);
  assert.equal(byok.status, 402);
  assert.equal(byok.code, 'feature_not_in_plan');
  assert.match(byok.message, /scale/);
  const blocked = await rejection(call('sk-blocked'), OpenAI.APIError);
  assert.equal(blocked.status, 402);
  assert.equal(blocked.code, 'payment_required');
  const broke = await rejection(call('sk-broke'), OpenAI.APIError);
  assert.equal(broke.status, 402);
  assert.equal(broke.code, 'insufficient_credit');

  // 30 tokens a month: two calls of 15, then 402 with the limit headers.
  await call('sk-tiny')();
  await call('sk-tiny')();
  const quota = await rejection(call('sk-tiny'), OpenAI.APIError);
  assert.equal(quota.status, 402);
  assert.equal(quota.code, 'billing_limit_reached');
  assert.equal(quota.type, 'insufficient_quota');
  assert.equal(quota.headers.get('x-ratelimit-limit'), '30');
  assert.equal(quota.headers.get('x-ratelimit-remaining'), '0');
  assert.match(quota.headers.get('ratelimit'), /^"monthly_tokens";r=0;t=\d+$/);
  assert.match(quota.headers.get('retry-after'), /^\d+$/);

  // A denied stream is an error before any chunk, not an empty stream.
  const stream = await rejection(
    () => openai('sk-blocked').chat.completions.create({ model: 'mock-small', messages, stream: true }),
    OpenAI.APIError,
  );
  assert.equal(stream.code, 'payment_required');
});

test('429 rate_limited: RateLimitError with Retry-After, which the SDK honours', async () => {
  const call = (maxRetries) =>
    openai('sk-burst', { maxRetries }).chat.completions.create({ model: 'mock-small', messages, max_tokens: 1 });
  // One request a second: align to the start of a second, then use it up.
  await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 20));
  await call(0);
  const limited = await rejection(() => call(0), OpenAI.RateLimitError);
  assert.equal(limited.code, 'rate_limited');
  assert.equal(limited.type, 'rate_limit_exceeded');
  assert.equal(limited.headers.get('retry-after'), '1');
  assert.equal(limited.headers.get('ratelimit-policy'), '"per_second";q=1;w=1');

  // With retries the SDK waits the Retry-After second and gets through.
  await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 20));
  await call(0);
  const denials = await metric('plangate_gateway_denials_total');
  const started = Date.now();
  const reply = await call(1);
  const waited = Date.now() - started;
  assert.equal(reply.object, 'chat.completion');
  assert.equal(await metric('plangate_gateway_denials_total'), denials + 1);
  assert.ok(waited >= 900, `the retry came after ${waited} ms, before Retry-After`);
});

async function mcpClient(url, apiKey) {
  const transport = new StreamableHTTPClientTransport(new URL(`${url}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${apiKey}` } },
  });
  const client = new Client({ name: 'plangate-client-test', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

test('MCP: initialize, tools/list, tools/call; a denial is an McpError with data', async () => {
  const client = await mcpClient(base, 'sk-mcp');
  try {
    assert.equal(client.getServerVersion().name, 'plangate-mock');
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name), ['echo', 'add', 'fail']);
    const echo = await client.callTool({ name: 'echo', arguments: { text: 'hi' } });
    assert.deepEqual(echo.content, [{ type: 'text', text: 'hi' }]);
    const sum = await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } });
    assert.equal(sum.content[0].text, '5');
    const err = await rejection(
      () => client.callTool({ name: 'echo', arguments: { text: 'again' } }),
      McpError,
    );
    assert.equal(err.code, -32000);
    assert.equal(err.data.status, 402);
    assert.equal(err.data.code, 'billing_limit_reached');
    assert.equal(err.data.upgrade_plan, 'prepaid');
    assert.ok(Number.isInteger(err.data.retry_after) && err.data.retry_after > 0);
    // Listing is never metered: the session goes on.
    assert.equal((await client.listTools()).tools.length, 3);
    assert.equal((await usage('sk-mcp')).monthly_tool_calls.used, 2);
  } finally {
    await client.close();
  }
});

test('MCP with --mcp-denial tool_result: the model reads why the tool did not run', async () => {
  const client = await mcpClient(agentBase, 'sk-mcp');
  try {
    await client.callTool({ name: 'echo', arguments: { text: '1' } });
    await client.callTool({ name: 'echo', arguments: { text: '2' } });
    const denied = await client.callTool({ name: 'echo', arguments: { text: '3' } });
    assert.equal(denied.isError, true);
    assert.equal(denied.content[0].type, 'text');
    assert.match(denied.content[0].text, /^The tool "echo" was not run: Monthly limit of 2 tool_calls/);
    assert.equal(denied._meta['plangate/denial'].code, 'billing_limit_reached');
  } finally {
    await client.close();
  }
});
