/**
 * Conveyor and the seeds' Python services on the same engines, both ways: Python publishes with
 * cbor2 through nsqd's protocol and HTTP API, pika, redis-py and paho-mqtt, and a Conveyor app
 * consumes typed values; Conveyor publishes and plain Python consumers decode with cbor2.
 */
import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import { z } from 'zod';
import { connect } from '../../src/connect.ts';
import { cborCodec } from '../../src/core/codecs/cbor.ts';
import { HEADER } from '../../src/core/message.ts';
import { defineMessage } from '../../src/core/schema.ts';
import { parseTransportUrl } from '../../src/core/url.ts';
import { app } from '../../src/runtime/app.ts';
import { startBroker } from '../../src/server/index.ts';
import { AmqpTransport } from '../../src/transports/amqp/index.ts';
import { queueName } from '../../src/transports/amqp/options.ts';
import { RedisTransport } from '../../src/transports/redis/index.ts';
import { requireService, SERVICES, uniqueName, waitFor } from '../helpers/index.ts';
import { peer, requirePython } from './python.ts';

const COUNT = 4;

const pageView = (topic: string) =>
  defineMessage({
    name: 'page-view',
    topic,
    schema: z.object({
      n: z.number().int(),
      url: z.string(),
      at: z.date(),
      tags: z.array(z.string()),
      views: z.bigint(),
      raw: z.instanceof(Uint8Array),
      ratio: z.number(),
      nested: z.object({ k: z.array(z.unknown()), ok: z.boolean() }),
    }),
  });
type PageView = Record<string, unknown>;

/** The fixture of peer.py, built in TypeScript. */
function fixture(n: number) {
  return {
    n,
    url: `/articles/${n}`,
    at: new Date(Date.UTC(2026, 11, 1, 12, 0, n)),
    tags: ['py', 'con'],
    views: 2n ** 70n + BigInt(n),
    raw: new Uint8Array([0, 255, n]),
    ratio: 0.25,
    nested: { k: [1, { z: null }], ok: true },
  };
}

/** Buffers (what cbor-x hands out for byte strings) compared as plain bytes. */
const normal = (v: Record<string, unknown>) => ({ ...v, raw: new Uint8Array(v.raw as Uint8Array) });

/** Python's fixture(n) as plain() prints it, and as cbor2 encodes it with epoch dates. */
async function pythonFixtures(t: TestContext): Promise<{ values: unknown[]; hex: string[] }> {
  const [out] = await peer(t, 'fixture', { count: COUNT }).done;
  return { values: out!.values, hex: out!.hexEpoch };
}

/** Python decoded what Conveyor sent to the same values, from the very bytes cbor2 would write. */
function assertSame(received: Array<Record<string, any>>, want: { values: unknown[]; hex: string[] }): void {
  assert.deepEqual(
    received.map((m) => m.value),
    want.values,
  );
  assert.deepEqual(
    received.map((m) => m.hex),
    want.hex,
  );
}

/** Runs a Conveyor consumer of `url`, lets `publish` run, and returns the values it got, by n. */
async function conveyorReceives(t: TestContext, url: string, topic: string, publish: () => Promise<unknown>): Promise<unknown[]> {
  const a = app({ url });
  t.after(() => a.close());
  const got: PageView[] = [];
  await a.consume(pageView(topic), { channel: 'interop', maxInFlight: 10 }, (v) => {
    got.push(v as PageView);
  });
  await publish();
  await waitFor(() => got.length >= COUNT, `${COUNT} messages from Python`, 20_000);
  return got.sort((x, y) => (x.n as number) - (y.n as number)).map(normal);
}

/** Starts a Python consumer, publishes fixture(0..COUNT-1) with Conveyor, returns what Python decoded. */
async function pythonReceives(t: TestContext, mode: string, config: Record<string, unknown>, url: string, topic: string) {
  const sub = peer(t, mode, { ...config, count: COUNT });
  await sub.ready;
  const a = app({ url });
  t.after(() => a.close());
  const Msg = pageView(topic);
  for (let n = 0; n < COUNT; n++) await a.publish(Msg, fixture(n));
  return sub.done;
}

const expected = Array.from({ length: COUNT }, (_, n) => normal(fixture(n)));

describe('Python interop (cbor2, pika, redis-py, paho-mqtt)', () => {
  test('cbor2 and Conveyor read each other: the seed example byte for byte, every fixture by value', async (t) => {
    if (!requirePython(t)) return;
    const codec = cborCodec();
    // The seeds' own example: cbor2.dumps(['py', 'con']) == b'\x82bpyccon'.
    assert.equal(Buffer.from(codec.encode(['py', 'con'])).toString('hex'), '8262707963636f6e');
    const [out] = await peer(t, 'fixture', { count: COUNT }).done;
    const decoded = (out!.hex as string[]).map((h) => normal(codec.decode(Buffer.from(h, 'hex')) as Record<string, unknown>));
    assert.deepEqual(decoded, expected);
    // With dates as epoch (cbor2's datetime_as_timestamp), the two encoders agree to the byte.
    assert.deepEqual(
      Array.from({ length: COUNT }, (_, n) => Buffer.from(codec.encode(fixture(n))).toString('hex')),
      out!.hexEpoch,
    );
  });

  test('nsq: Python publishes over TCP (PUB, MPUB) and HTTP /pub; a Conveyor worker gets typed values; garbage goes to dead-letter', async (t) => {
    if (!requirePython(t)) return;
    const broker = await startBroker({ tcp: '127.0.0.1:0', http: '127.0.0.1:0' });
    t.after(() => broker.close());
    const [host, port] = broker.tcpAddress.split(':');
    const topic = uniqueName('pv');
    const url = `nsq://${broker.tcpAddress}`;
    const dead: Array<{ code: string | undefined; body: string }> = [];
    const watcher = await connect(url);
    t.after(() => watcher.close());
    await watcher.subscribe(`${topic}.dead`, 'check', { maxInFlight: 10 }, (d) => {
      dead.push({ code: d.headers[HEADER.deadCode], body: Buffer.from(d.body).toString('latin1') });
      d.ack();
    });
    const got = await conveyorReceives(t, url, topic, async () => {
      await peer(t, 'nsq-pub', { host, port: Number(port), http: `http://${broker.httpAddress}`, topic, count: COUNT }).done;
      // A body that is not CBOR, as a buggy producer would send it.
      const res = await fetch(`http://${broker.httpAddress}/pub?topic=${topic}`, { method: 'POST', body: 'not cbor \xff' });
      assert.equal(res.status, 200);
    });
    assert.deepEqual(got, expected);
    await waitFor(() => dead.length === 1, 'the garbage dead-lettered', 10_000);
    assert.deepEqual(dead, [{ code: 'ERR_DECODE', body: Buffer.from('not cbor \xff').toString('latin1') }]);
  });

  test('nsq: Conveyor publishes; a plain Python consumer reads bare bodies (envelope=false) or the envelope', async (t) => {
    if (!requirePython(t)) return;
    const broker = await startBroker({ tcp: '127.0.0.1:0', http: '127.0.0.1:0' });
    t.after(() => broker.close());
    const [host, port] = broker.tcpAddress.split(':');
    const want = await pythonFixtures(t);
    const bare = uniqueName('pv');
    const plain = await pythonReceives(t, 'nsq-sub', { host, port: Number(port), topic: bare, channel: 'py' }, `nsq://${broker.tcpAddress}?envelope=false`, bare);
    assertSame(plain, want);
    const wrapped = uniqueName('pv');
    const opened = await pythonReceives(t, 'nsq-sub', { host, port: Number(port), topic: wrapped, channel: 'py', envelope: true }, `nsq://${broker.tcpAddress}`, wrapped);
    assertSame(opened, want);
    for (const m of opened) {
      assert.equal(m.headers['content-type'], 'application/cbor');
      assert.equal(m.headers[HEADER.type], 'page-view');
      assert.equal(m.headers[HEADER.version], '1');
    }
  });

  test('amqp: pika publishes with confirms; Conveyor consumes. Conveyor publishes; pika consumes', async (t) => {
    const url = await requireService(t, 'rabbitmq');
    if (!url || !requirePython(t)) return;
    const topic = uniqueName('pv');
    t.after(async () => {
      // The channel's durable queue (and any retry queue) and the exchange outlive the test.
      const admin = await AmqpTransport.connect(parseTransportUrl(url));
      const ch = await admin.connection!.createChannel();
      const queue = queueName(admin.options, topic, 'interop');
      await ch.deleteQueue(queue).catch(() => undefined);
      await ch.deleteExchange(topic).catch(() => undefined);
      await ch.close().catch(() => undefined);
      await admin.close();
    });
    const got = await conveyorReceives(t, url, topic, () => peer(t, 'amqp-pub', { url, exchange: topic, count: COUNT }).done);
    assert.deepEqual(got, expected);
    const want = await pythonFixtures(t);
    const back = await pythonReceives(t, 'amqp-sub', { url, exchange: topic }, url, topic);
    assertSame(back, want);
    for (const m of back) {
      assert.equal(m.headers.content_type, 'application/cbor');
      assert.equal(m.headers[HEADER.type], 'page-view');
    }
  });

  test('redis: XADD from redis-py is consumed by a Conveyor group; Conveyor entries read by XREAD', async (t) => {
    const url = await requireService(t, 'redis');
    if (!url || !requirePython(t)) return;
    const topic = uniqueName('pv');
    const other = uniqueName('pv');
    t.after(async () => {
      const admin = await RedisTransport.connect(parseTransportUrl(url));
      const keys = [...(await admin.client.keys(`conveyor:${topic}*`)), ...(await admin.client.keys(`conveyor:${other}*`))];
      if (keys.length) await admin.client.del(...keys);
      await admin.close();
    });
    const got = await conveyorReceives(t, url, topic, () => peer(t, 'redis-pub', { url, stream: `conveyor:${topic}`, count: COUNT }).done);
    assert.deepEqual(got, expected);
    const want = await pythonFixtures(t);
    const back = await pythonReceives(t, 'redis-sub', { url, stream: `conveyor:${other}` }, url, other);
    assertSame(back, want);
    assert.equal(back[0]!.headers['content-type'], 'application/cbor');
  });

  test("redis: the seeds' Pub/Sub chatroom — raw PUBLISH reaches an #ephemeral consumer, and back with envelope=false", async (t) => {
    const url = await requireService(t, 'redis');
    if (!url || !requirePython(t)) return;
    const topic = `${uniqueName('chat')}#ephemeral`;
    const got = await conveyorReceives(t, url, topic, () => peer(t, 'redis-chat-pub', { url, channel: `conveyor:${topic}`, count: COUNT }).done);
    assert.deepEqual(got, expected);
    const want = await pythonFixtures(t);
    const back = await pythonReceives(t, 'redis-chat-sub', { url, channel: `conveyor:${topic}` }, `${url}?envelope=false`, topic);
    assertSame(back, want);
  });

  test('mqtt: paho (MQTT 5, QoS 1, Content Type) publishes to a shared subscription; Conveyor publishes to paho', async (t) => {
    const url = await requireService(t, 'mqtt');
    if (!url || !requirePython(t)) return;
    const { host, port } = SERVICES.mqtt;
    const topic = uniqueName('pv');
    const got = await conveyorReceives(t, url, topic, () => peer(t, 'mqtt-pub', { host, port, topic, clientId: uniqueName('py'), count: COUNT }).done);
    assert.deepEqual(got, expected);
    const want = await pythonFixtures(t);
    const back = await pythonReceives(t, 'mqtt-sub', { host, port, topic, clientId: uniqueName('py') }, url, topic);
    assertSame(back, want);
    for (const m of back) {
      assert.equal(m.headers.content_type, 'application/cbor', "content-type rides in MQTT 5's Content Type");
      assert.equal(m.headers[HEADER.type], 'page-view');
    }
  });
});
