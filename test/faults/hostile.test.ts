/**
 * Issue 14's hostile input, what test/gateway/hostile.test.ts and test/server/tcp-*.test.ts do
 * not already drive (deep nesting, 100 MB bodies, slowloris, garbage, 4 GB lengths and frames
 * split into single bytes are there): `__proto__` keys, one malformed NDJSON line among 1,000,
 * CBOR declaring 2^32 bytes or items in a tiny body, 2,000 idle connections on the gateway's and
 * the broker's ports with valid traffic flowing, 1,030 clients trickling bodies, idle clients
 * timed out, and connection counts bounded by an option.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect as tcp, type Socket } from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import { z } from 'zod';
import { run as runBroker } from '../../src/cli/commands/broker.ts';
import { connect } from '../../src/connect.ts';
import type { Delivery } from '../../src/core/message.ts';
import type { Transport } from '../../src/core/transport.ts';
import { defineMessage } from '../../src/core/schema.ts';
import { type GatewayOptions, gateway } from '../../src/gateway/index.ts';
import { type BrokerOptions, startBroker } from '../../src/server/index.ts';
import { uniqueName, waitFor } from '../helpers/index.ts';
import { report, sampleRss, sleep } from './helpers.ts';

const Event = defineMessage({ name: 'event', topic: 'events', schema: z.object({ kind: z.string(), n: z.number() }) });

async function gw(t: TestContext, extra: Partial<GatewayOptions> = {}) {
  const transport = await connect(`memory://${uniqueName('hostile')}`);
  const got: Delivery[] = [];
  for (const topic of ['events', 'raw']) {
    await transport.subscribe(topic, 'check', { maxInFlight: 2500 }, (d) => {
      got.push(d);
      d.ack();
    });
  }
  const g = await gateway({ transport, topics: { events: Event, raw: null }, ...extra });
  t.after(async () => {
    await g.close();
    await transport.close();
  });
  return { url: g.url, got, port: Number(new URL(g.url).port), stats: () => g.stats() };
}

function post(url: string, body: string | Uint8Array, type = 'application/json'): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': type }, agent: false }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * `count` sockets to `port` that send `first` (or nothing) and then nothing more; closes counted.
 * Opened in waves of 200, each connected before the next: past the listen backlog (511) the
 * kernel completes handshakes it then drops, and those clients would wait for a close that no
 * server ever had to send.
 */
async function idleSockets(t: TestContext, port: number, count: number, first?: string | Buffer) {
  const sockets: Socket[] = [];
  let closed = 0;
  const open = () =>
    new Promise<void>((resolve) => {
      const s = tcp(port, '127.0.0.1', () => {
        if (first !== undefined) s.write(first);
        resolve();
      });
      s.on('error', () => resolve());
      s.on('close', () => {
        closed++;
        resolve();
      });
      s.on('data', () => {});
      sockets.push(s);
    });
  t.after(() => {
    for (const s of sockets) s.destroy();
  });
  for (let opened = 0; opened < count; opened += 200) await Promise.all(Array.from({ length: Math.min(200, count - opened) }, open));
  return {
    closed: () => closed,
    destroy: () => {
      for (const s of sockets) s.destroy();
    },
  };
}

const polluted = () => ({}) as Record<string, unknown>;

describe('gateway: hostile bodies', () => {
  test('__proto__ and constructor.prototype keys: no prototype pollution (JSON carries them as data, CBOR refuses them)', async (t) => {
    const { url, got } = await gw(t);
    const json = '{"kind":"a","n":1,"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}}}';
    // {"kind":"a","n":1,"__proto__":{"polluted":"yes"}} in CBOR, written by hand so no encoder drops the key.
    const text = (s: string) => [0x60 + s.length, ...Buffer.from(s)];
    const cbor = Uint8Array.from([0xa3, ...text('kind'), ...text('a'), ...text('n'), 0x01, ...text('__proto__'), 0xa1, ...text('polluted'), ...text('yes')]);
    const answers = [
      await post(`${url}/v1/topics/events`, json),
      await post(`${url}/v1/topics/raw`, json),
      await post(`${url}/v1/topics/events`, `${json}\n${json}\n`, 'application/x-ndjson'),
      await post(`${url}/v1/topics/raw`, `${json}\n`, 'application/x-ndjson'),
      await post(`${url}/v1/topics/events`, cbor, 'application/cbor'),
      await post(`${url}/v1/topics/raw`, cbor, 'application/cbor'),
    ];
    assert.deepEqual(
      answers.map((a) => a.status),
      [201, 201, 201, 201, 400, 400],
    );
    // The CBOR decoder refuses the key outright (src/core/codecs/cbor-scan.ts), with the reason.
    assert.match(answers[4]!.body.error, /"__proto__" is not allowed/);
    await waitFor(() => got.length === 5, 'five messages');
    assert.equal(polluted().polluted, undefined, 'Object.prototype untouched');
    assert.equal(Object.getPrototypeOf({}), Object.prototype);
    // What a consumer decodes is data: the typed topic strips the unknown keys, the raw one carries them as own keys.
    const typed = got.filter((d) => d.topic === 'events').map((d) => Event.decode(d.body, d.headers) as Record<string, unknown>);
    for (const v of typed) {
      assert.deepEqual({ ...v }, { kind: 'a', n: 1 });
      assert.equal(Object.getPrototypeOf(v), Object.prototype);
    }
    const raw = got.filter((d) => d.topic === 'raw').map((d) => JSON.parse(Buffer.from(d.body).toString()));
    assert.ok(raw.every((v) => Object.hasOwn(v, '__proto__') && v.polluted === undefined), 'carried as own keys');
  });

  test('one malformed line among 1,000 NDJSON lines on an untyped topic: 400 naming it, nothing published', async (t) => {
    const { url, got } = await gw(t);
    const lines = Array.from({ length: 1000 }, (_, i) => (i === 499 ? '{"n": 499,' : JSON.stringify({ n: i })));
    const answer = await post(`${url}/v1/topics/raw`, `${lines.join('\n')}\n`, 'application/x-ndjson');
    assert.equal(answer.status, 400);
    assert.match(answer.body.error, /line 500/);
    await sleep(50);
    assert.equal(got.length, 0);
    assert.equal((await post(`${url}/v1/topics/raw`, lines.filter((_, i) => i !== 499).join('\n'), 'application/x-ndjson')).status, 201);
    await waitFor(() => got.length === 999, 'the 999 good lines');
  });

  test('CBOR declaring 2^32 bytes, characters, items or pairs in a 9-byte body: 400, memory flat', async (t) => {
    const { url, got } = await gw(t);
    const rss = sampleRss(20);
    const declared = (major: number) => Uint8Array.from([(major << 5) | 27, 0, 0, 0, 1, 0, 0, 0, 0, 0x61]);
    for (const topic of ['events', 'raw']) {
      for (const [what, major] of [['bytes', 2], ['text', 3], ['array', 4], ['map', 5]] as const) {
        const answer = await post(`${url}/v1/topics/${topic}`, declared(major), 'application/cbor');
        assert.equal(answer.status, 400, `${topic} ${what}: ${JSON.stringify(answer.body)}`);
      }
    }
    const memory = rss.stop();
    report('gateway CBOR 2^32', { requests: 8, rssGrowthMb: memory.peakMb - memory.firstMb });
    assert.ok(memory.peakMb - memory.firstMb < 64, `RSS grew ${(memory.peakMb - memory.firstMb).toFixed(0)} MB`);
    assert.equal(got.length, 0);
  });
});

describe('gateway: many slow or idle clients', () => {
  test('2,000 idle connections: valid requests still get 201, memory bounded, the idle ones dropped after headersTimeoutMs', async (t) => {
    const { url, port, got } = await gw(t, { headersTimeoutMs: 2000 });
    const rss = sampleRss();
    const started = performance.now();
    const idle = await idleSockets(t, port, 2000);
    const statuses = await Promise.all(Array.from({ length: 200 }, (_, n) => post(`${url}/v1/topics/events`, JSON.stringify({ kind: 'ok', n })).then((a) => a.status)));
    assert.deepEqual(new Set(statuses), new Set([201]));
    await waitFor(() => idle.closed() === 2000, 'the server dropping every idle connection', 15_000, 50).catch((e) => {
      throw new Error(`${e.message}: ${idle.closed()} of 2000 closed`);
    });
    const droppedAfter = performance.now() - started;
    const memory = rss.stop();
    report('gateway 2,000 idle', { idle: 2000, valid201: statuses.length, droppedAfterMs: droppedAfter, rssGrowthMb: memory.peakMb - memory.firstMb });
    assert.equal(got.length, 200);
    assert.ok(memory.peakMb - memory.firstMb < 200, `RSS grew ${(memory.peakMb - memory.firstMb).toFixed(0)} MB`);
  });

  test('1,030 clients trickling bodies do not lock anyone out: a complete request gets 201', async (t) => {
    const { url, port, stats } = await gw(t, { bodyTimeoutMs: 20_000 });
    const head = 'POST /v1/topics/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"kind":';
    const trickling = await idleSockets(t, port, 1030, head);
    await sleep(200);
    const started = performance.now();
    const answer = await post(`${url}/v1/topics/events`, '{"kind":"a","n":1}');
    const ms = performance.now() - started;
    report('gateway 1,030 trickling', { trickling: 1030, status: answer.status, answeredMs: ms, concurrentAfter: stats().concurrent });
    assert.equal(answer.status, 201);
    assert.equal(trickling.closed(), 0, 'the trickling clients are still connected (their body timeout has not passed)');
    trickling.destroy(); // before the gateway's close, which waits for open requests
  });

  test('maxConnections bounds open connections: past it a connection is closed at accept; freed, it serves again', async (t) => {
    const { url, port } = await gw(t, { maxConnections: 100 });
    await assert.rejects(gateway({ transport: await connect('memory://'), topics: {}, maxConnections: 0 }), { code: 'ERR_BAD_OPTIONS' });
    const held = await idleSockets(t, port, 100);
    await sleep(100);
    const over = await idleSockets(t, port, 20);
    await waitFor(() => over.closed() === 20, 'the 20 over the limit closed', 5000);
    assert.equal(held.closed(), 0);
    held.destroy();
    await sleep(100);
    assert.equal((await post(`${url}/v1/topics/events`, '{"kind":"a","n":1}')).status, 201);
  });
});

describe("broker TCP port: idle clients and connection bounds", () => {
  async function broker(t: TestContext, options: BrokerOptions, query = '') {
    const b = await startBroker({ tcp: '127.0.0.1:0', http: '127.0.0.1:0', ...options });
    const port = Number(b.tcpAddress.split(':').at(-1));
    const transport: Transport = await connect(`nsq://${b.tcpAddress}${query}`);
    t.after(async () => {
      await transport.close();
      await b.close();
    });
    return { port, transport };
  }

  test('2,000 idle connections (silent, or magic only): traffic flows, memory bounded, all dropped after clientTimeoutMs', async (t) => {
    const clientTimeoutMs = 3000;
    const { port, transport } = await broker(t, { clientTimeoutMs }, `?heartbeatIntervalMs=1000`);
    const rss = sampleRss();
    const started = performance.now();
    const silent = await idleSockets(t, port, 1000);
    const magicOnly = await idleSockets(t, port, 1000, '  V2');
    const topic = uniqueName('idle');
    const seen = new Set<string>();
    await transport.subscribe(topic, 'c', { maxInFlight: 200 }, (d) => {
      seen.add(Buffer.from(d.body).toString());
      d.ack();
    });
    for (let i = 0; i < 20; i++) await transport.publish(topic, Array.from({ length: 50 }, (_, j) => ({ body: Buffer.from(String(i * 50 + j)) })));
    await waitFor(() => seen.size === 1000, 'a thousand messages through the busy port', 10_000);
    await waitFor(() => silent.closed() + magicOnly.closed() === 2000, 'every idle client dropped', 20_000, 50);
    const droppedAfter = performance.now() - started;
    const memory = rss.stop();
    report('broker 2,000 idle', { idle: 2000, delivered: seen.size, clientTimeoutMs, droppedAfterMs: droppedAfter, rssGrowthMb: memory.peakMb - memory.firstMb });
    assert.ok(droppedAfter >= clientTimeoutMs - 100, `dropped after ${droppedAfter.toFixed(0)} ms, before the timeout`);
    assert.ok(memory.peakMb - memory.firstMb < 200, `RSS grew ${(memory.peakMb - memory.firstMb).toFixed(0)} MB`);
    // The working consumer and producer were not idle: they are still served.
    await transport.publish(topic, [{ body: Buffer.from('after') }]);
    await waitFor(() => seen.has('after'), 'a message after the idle ones were dropped');
  });

  test('maxConnections bounds open connections: past it closed at accept, the ones in stay served', async (t) => {
    const lines: string[] = [];
    assert.equal(await runBroker(['--max-connections', 'many'], { out: () => {}, err: (l) => lines.push(l) }), 2);
    assert.match(lines.join('\n'), /--max-connections N/, 'the flag is in the usage');
    await assert.rejects(startBroker({ tcp: '127.0.0.1:0', http: '127.0.0.1:0', maxConnections: 0 }), { code: 'ERR_BAD_OPTIONS' });
    const { port, transport } = await broker(t, { maxConnections: 50 });
    const topic = uniqueName('limit');
    await transport.publish(topic, [{ body: Buffer.from('one') }]); // the producer's connection is in
    const idle = await idleSockets(t, port, 49 + 10);
    await waitFor(() => idle.closed() >= 10, 'the connections over the limit closed', 5000);
    await sleep(100);
    assert.equal(idle.closed(), 10 - 1 + 1, 'exactly those over 50 (the producer holds one)');
    await transport.publish(topic, [{ body: Buffer.from('two') }]);
  });
});
