import assert from 'node:assert/strict';
import { request } from 'node:http';
import { describe, type TestContext, test } from 'node:test';
import { z } from 'zod';
import { connect } from '../../src/connect.ts';
import { codecs } from '../../src/core/codecs/index.ts';
import { ConveyorError } from '../../src/core/errors.ts';
import type { Delivery } from '../../src/core/message.ts';
import { defineMessage } from '../../src/core/schema.ts';
import type { Transport } from '../../src/core/transport.ts';
import { gateway } from '../../src/gateway/index.ts';
import { uniqueName, waitFor } from '../helpers/index.ts';

const Event = defineMessage({ name: 'event', topic: 'events', schema: z.object({ kind: z.string(), n: z.number() }) });

async function setup(t: TestContext, extra: Partial<Parameters<typeof gateway>[0]> = {}, wrap?: (tr: Transport) => Transport) {
  const transport = await connect(`memory://${uniqueName('gw')}`);
  const got: Delivery[] = [];
  await transport.subscribe('events', 'check', { maxInFlight: 1000 }, (d) => {
    got.push(d);
    d.ack();
  });
  const gw = await gateway({ transport: wrap ? wrap(transport) : transport, topics: { events: Event, raw: null }, ...extra });
  t.after(async () => {
    await gw.close();
    await transport.close();
  });
  return { gw, got };
}

function post(url: string, body: string | Uint8Array, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('gateway', () => {
  test('JSON, CBOR and NDJSON bodies are validated, published, and answered with ids after confirm', async (t) => {
    const { gw, got } = await setup(t);
    const one = await post(`${gw.url}/v1/topics/events`, JSON.stringify({ kind: 'click', n: 1 }));
    assert.equal(one.status, 201);
    assert.equal(one.body.ids.length, 1);
    const cbor = await post(`${gw.url}/v1/topics/events`, codecs.cbor.encode({ kind: 'view', n: 2 }), { 'content-type': 'application/cbor' });
    assert.equal(cbor.status, 201);
    const nd = await post(`${gw.url}/v1/topics/events`, '{"kind":"a","n":3}\n{"kind":"b","n":4}\n\n{"kind":"c","n":5}\n', { 'content-type': 'application/x-ndjson' });
    assert.equal(nd.status, 201);
    assert.equal(nd.body.ids.length, 3);
    await waitFor(() => got.length === 5, 'five messages');
    assert.deepEqual(got.map((d) => Event.decode(d.body, d.headers).n), [1, 2, 3, 4, 5]);
    assert.equal(got[0]!.id, one.body.ids[0]);
  });

  test('bad JSON, bad CBOR, a schema violation or one bad NDJSON line: 400 with the reason, nothing published', async (t) => {
    const { gw, got } = await setup(t);
    const bad = await post(`${gw.url}/v1/topics/events`, '{"kind":');
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /malformed JSON/);
    const badCbor = await post(`${gw.url}/v1/topics/events`, Uint8Array.from([0xff]), { 'content-type': 'application/cbor' });
    assert.equal(badCbor.status, 400);
    const schema = await post(`${gw.url}/v1/topics/events`, JSON.stringify({ kind: 'x', n: 'one' }));
    assert.equal(schema.status, 400);
    assert.match(schema.body.error, /"n"/);
    const nd = await post(`${gw.url}/v1/topics/events`, '{"kind":"a","n":1}\n{"kind":"b"}\n', { 'content-type': 'application/x-ndjson' });
    assert.equal(nd.status, 400);
    assert.match(nd.body.error, /line 2/);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(got.length, 0, 'nothing half-published');
  });

  test('413 before reading an oversized body; 404 for unknown topics; raw topics pass JSON through', async (t) => {
    const { gw } = await setup(t, { maxBodyBytes: 100 });
    const big = await post(`${gw.url}/v1/topics/events`, JSON.stringify({ kind: 'x'.repeat(200), n: 1 }));
    assert.equal(big.status, 413);
    // A chunked body (no Content-Length) is cut off while streaming.
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = request(`${gw.url}/v1/topics/events`, { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.write('x'.repeat(80));
      req.end('y'.repeat(80));
    });
    assert.equal(chunked, 413);
    assert.equal((await post(`${gw.url}/v1/topics/nope`, '{}')).status, 404);
    assert.equal((await post(`${gw.url}/v1/topics/raw`, '{"anything":true}')).status, 201);
  });

  test('bearer-token auth', async (t) => {
    const { gw } = await setup(t, { auth: { token: 's3cret' } });
    assert.equal((await post(`${gw.url}/v1/topics/events`, '{"kind":"a","n":1}')).status, 401);
    assert.equal((await post(`${gw.url}/v1/topics/events`, '{"kind":"a","n":1}', { authorization: 'Bearer s3cret' })).status, 201);
  });

  test('broker down: 503 with Retry-After; too many waiting: 429 with Retry-After', async (t) => {
    let fail = true;
    let release!: () => void;
    const blocked = new Promise<void>((r) => (release = r));
    let hold = false;
    const { gw } = await setup(t, { maxConcurrent: 1 }, (tr) => ({
      kind: tr.kind,
      features: tr.features,
      subscribe: tr.subscribe.bind(tr),
      close: tr.close.bind(tr),
      publish: async (topic, messages) => {
        if (hold) await blocked;
        if (fail) throw new ConveyorError('ERR_TRANSPORT', 'connection refused');
        return tr.publish(topic, messages);
      },
    }));
    const down = await post(`${gw.url}/v1/topics/events`, '{"kind":"a","n":1}');
    assert.equal(down.status, 503);
    assert.equal(down.headers['retry-after'], '1');
    fail = false;
    hold = true;
    const waiting = post(`${gw.url}/v1/topics/events`, '{"kind":"a","n":2}');
    await waitFor(() => (gw.stats().concurrent as number) === 1, 'one request waiting');
    const busy = await post(`${gw.url}/v1/topics/events`, '{"kind":"a","n":3}');
    assert.equal(busy.status, 429);
    assert.equal(busy.headers['retry-after'], '1');
    release();
    assert.equal((await waiting).status, 201);
  });

  test('/healthz, /stats and /metrics (Prometheus text format)', async (t) => {
    const { gw } = await setup(t);
    await post(`${gw.url}/v1/topics/events`, '{"kind":"a","n":1}');
    assert.equal((await fetch(`${gw.url}/healthz`)).status, 200);
    const stats = (await (await fetch(`${gw.url}/stats`)).json()) as { messages: Record<string, number> };
    assert.equal(stats.messages.events, 1);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    assert.match(metrics, /^# HELP conveyor_gateway_requests_total /m);
    assert.match(metrics, /^# TYPE conveyor_gateway_request_duration_seconds histogram$/m);
    assert.match(metrics, /^conveyor_gateway_messages_total\{topic="events"\} 1$/m);
    assert.match(metrics, /^conveyor_gateway_request_duration_seconds_bucket\{le="\+Inf"\} \d+$/m);
    for (const line of metrics.trim().split('\n').filter((l) => l !== '')) assert.match(line, /^(# (HELP|TYPE) \S+ .+|[a-z_]+(\{[^}]*\})? [0-9.e+-]+)$/, line);
  });
});

describe('gateway with an App as its source', () => {
  test('publishes through the app’s transport (an App has a typed publish of its own)', async (t) => {
    const { app } = await import('../../src/runtime/app.ts');
    const a = app({ url: `memory://${uniqueName('gwapp')}` });
    const got: unknown[] = [];
    await a.consume(Event, { channel: 'c' }, (v) => {
      got.push(v);
    });
    const gw = await gateway({ transport: a, topics: { events: Event } });
    t.after(async () => {
      await gw.close();
      await a.close();
    });
    assert.equal((await post(`${gw.url}/v1/topics/events`, '{"kind":"a","n":1}')).status, 201);
    await waitFor(() => got.length === 1, 'the event through the app');
  });
});
