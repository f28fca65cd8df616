/**
 * `?envelope=false` on every engine (kafka's is its own suite): a foreign consumer that knows
 * nothing of Conveyor gets the body byte for byte and no Conveyor header, property or envelope.
 * Each engine also runs with the default URL, which must show Conveyor's headers to the same
 * consumer — so a case fails both when an engine ignores the flag and when the probe sees nothing.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect as natsConnect } from '@nats-io/transport-node';
import mqtt from 'mqtt';
import { connect } from '../../src/connect.ts';
import { hasEnvelope } from '../../src/core/envelope.ts';
import type { OutgoingMessage } from '../../src/core/message.ts';
import { bytesMessage } from '../../src/core/schema.ts';
import type { Transport } from '../../src/core/transport.ts';
import { parseTransportUrl } from '../../src/core/url.ts';
import { app } from '../../src/runtime/app.ts';
import { startBroker } from '../../src/server/index.ts';
import { AmqpTransport } from '../../src/transports/amqp/index.ts';
import type { MemoryTransport } from '../../src/transports/memory/transport.ts';
import { parseNatsOptions, streamName } from '../../src/transports/nats/options.ts';
import { RedisTransport } from '../../src/transports/redis/index.ts';
import { requireService, uniqueName, waitFor } from '../helpers/index.ts';
import { cmd, decodeMessage, WireClient } from '../server/wire.ts';

const BODY = Buffer.from('bare body \u00fc');
const message = (): OutgoingMessage => ({
  id: 'feedfacefeedface',
  body: new Uint8Array(BODY),
  headers: { 'content-type': 'application/octet-stream', 'conveyor-type': 'probe', 'conveyor-version': '1', 'conveyor-id': 'feedfacefeedface', 'x-app': 'yes' },
});

/** What the foreign consumer saw: the raw bytes and every header/property/field name beside them. */
interface Seen {
  raw: Buffer;
  meta: string[];
}
/** Publishes `m` through `query` ('' or '?envelope=false'), returns what a foreign consumer got; undefined = service skipped. */
type Probe = (t: TestContext, query: string, m: OutgoingMessage) => Promise<Seen | undefined>;

async function open(t: TestContext, url: string): Promise<Transport> {
  const transport = await connect(url);
  t.after(() => transport.close());
  return transport;
}

/** An NSQ protocol client (as nsqjs, pynsq) on `address`: SUB, then the first message's body. */
async function nsqReader(t: TestContext, address: string, topic: string): Promise<() => Promise<Seen>> {
  const c = await WireClient.open(address);
  t.after(() => c.close());
  c.write(cmd(`SUB ${topic} foreign`));
  assert.equal((await c.next()).data.toString(), 'OK');
  c.write(cmd('RDY 1'));
  return async () => {
    const f = await c.next(5000);
    assert.equal(f.type, 2, 'a message frame');
    return { raw: decodeMessage(f.data).body, meta: [] };
  };
}

/** memory:// and embedded://: the transport's engine served over NSQ TCP to a foreign client. */
const engineProbe =
  (url: () => { url: string; cleanup?: () => void }): Probe =>
  async (t, query, m) => {
    const made = url();
    const transport = (await open(t, `${made.url}${query}`)) as MemoryTransport;
    // After the transport's close (after-hooks run in order): its disk queue is written at close.
    if (made.cleanup) t.after(made.cleanup);
    const broker = await startBroker({ engine: transport.engine as never, tcp: '127.0.0.1:0', http: '127.0.0.1:0' });
    t.after(() => broker.close());
    const topic = uniqueName('bare');
    const read = await nsqReader(t, broker.tcpAddress, topic);
    await transport.publish(topic, [m]);
    return read();
  };

const PROBES: Record<string, Probe> = {
  memory: engineProbe(() => ({ url: `memory://${uniqueName('m')}` })),
  embedded: engineProbe(() => {
    const dir = mkdtempSync(join(tmpdir(), 'conveyor-bare-'));
    return { url: `embedded://${dir}`, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  }),
  nsq: async (t, query, m) => {
    const broker = await startBroker({ tcp: '127.0.0.1:0', http: '127.0.0.1:0' });
    t.after(() => broker.close());
    const topic = uniqueName('bare');
    const read = await nsqReader(t, broker.tcpAddress, topic);
    const transport = await open(t, `nsq://${broker.tcpAddress}${query}`);
    await transport.publish(topic, [m]);
    return read();
  },
  'redis streams': async (t, query, m) => {
    const base = await requireService(t, 'redis');
    if (!base) return undefined;
    const topic = uniqueName('bare');
    const transport = await open(t, `${base}${query}`);
    const admin = await RedisTransport.connect(parseTransportUrl(base));
    t.after(async () => {
      await admin.client.del(`conveyor:${topic}`);
      await admin.close();
    });
    await transport.publish(topic, [m]);
    // redis-py's xread as a foreign reader would do it: every field of the entry.
    const entries = (await admin.client.xrangeBuffer(`conveyor:${topic}`, '-', '+')) as Array<[Buffer, Buffer[]]>;
    const fields = entries[0]![1];
    const names = fields.filter((_, i) => i % 2 === 0).map(String);
    return { raw: fields[names.indexOf('b') * 2 + 1]!, meta: names.filter((n) => n !== 'b') };
  },
  'redis pub/sub': async (t, query, m) => {
    const base = await requireService(t, 'redis');
    if (!base) return undefined;
    const topic = `${uniqueName('bare')}#ephemeral`;
    const transport = await open(t, `${base}${query}`);
    const admin = await RedisTransport.connect(parseTransportUrl(base));
    t.after(() => admin.close());
    const sub = await admin.duplicate();
    t.after(() => sub.disconnect());
    const got: Buffer[] = [];
    sub.on('messageBuffer', (_c: Buffer, payload: Buffer) => got.push(payload));
    await sub.subscribe(`conveyor:${topic}`);
    await transport.publish(topic, [m]);
    await waitFor(() => got.length === 1, 'the PUBLISH');
    return { raw: got[0]!, meta: [] };
  },
  amqp: async (t, query, m) => {
    const base = await requireService(t, 'rabbitmq');
    if (!base) return undefined;
    const topic = uniqueName('bare');
    const admin = await AmqpTransport.connect(parseTransportUrl(base));
    const ch = await admin.connection!.createChannel();
    t.after(async () => {
      await ch.deleteExchange(topic).catch(() => undefined);
      await admin.close();
    });
    // A pika consumer of Conveyor's topic: the same fanout exchange, a queue of its own.
    await ch.assertExchange(topic, 'fanout', { durable: true });
    const { queue } = await ch.assertQueue('', { exclusive: true });
    await ch.bindQueue(queue, topic, '');
    const transport = await open(t, `${base}${query}`);
    await transport.publish(topic, [m]);
    const got = await waitFor(() => ch.get(queue, { noAck: true }), 'the message');
    if (!got) throw new Error('unreachable');
    const p = got.properties;
    const meta = [...Object.keys(p.headers ?? {}), ...(p.contentType ? ['content_type'] : []), ...(p.messageId ? ['message_id'] : [])];
    return { raw: got.content, meta };
  },
  nats: async (t, query, m) => {
    const base = await requireService(t, 'nats');
    if (!base) return undefined;
    const topic = uniqueName('bare');
    // Limits retention: the probe's consumer comes after the publish.
    const url = `${base}?retention=limits${query.replace('?', '&')}`;
    const transport = await open(t, url);
    const stream = streamName(parseNatsOptions(parseTransportUrl(url)), topic);
    const nc = await natsConnect({ servers: '127.0.0.1:4222' });
    t.after(async () => {
      await (await jetstreamManager(nc)).streams.delete(stream).catch(() => undefined);
      await nc.close();
    });
    await transport.publish(topic, [m]);
    const consumer = await jetstream(nc).consumers.get(stream); // an ordered consumer, as `nats sub` makes
    const got = await consumer.next({ expires: 5000 });
    if (!got) throw new Error('no message in the stream');
    return { raw: Buffer.from(got.data), meta: [...(got.headers?.keys() ?? [])].filter((k) => k !== 'Nats-Msg-Id') };
  },
  mqtt: async (t, query, m) => {
    const base = await requireService(t, 'mqtt');
    if (!base) return undefined;
    const topic = uniqueName('bare');
    const raw = await mqtt.connectAsync('mqtt://127.0.0.1:1883', { clientId: uniqueName('raw'), protocolVersion: 5 });
    t.after(() => raw.endAsync());
    const got: mqtt.IPublishPacket[] = [];
    raw.on('message', (_topic, _payload, packet) => got.push(packet));
    await raw.subscribeAsync(topic, { qos: 1 });
    const transport = await open(t, `${base}${query}`);
    await transport.publish(topic, [m]);
    await waitFor(() => got.length === 1, 'the PUBLISH');
    const p = got[0]!.properties;
    return { raw: got[0]!.payload as Buffer, meta: [...Object.keys(p?.userProperties ?? {}), ...(p?.contentType ? ['content_type'] : [])] };
  },
};

/** Whether Conveyor's headers reached the foreign consumer: in an envelope, or as headers, properties or fields. */
const shows = (seen: Seen) => hasEnvelope(seen.raw) || seen.meta.some((k) => k.startsWith('conveyor-') || k === 'h' || k === 'content_type');

describe('bare publish (?envelope=false) on every engine', () => {
  for (const [engine, probe] of Object.entries(PROBES)) {
    test(`${engine}: the default shows Conveyor's headers; envelope=false the body alone`, async (t) => {
      const carried = await probe(t, '', message());
      if (!carried) return;
      assert.ok(shows(carried), `by default a foreign consumer sees Conveyor's headers (meta ${JSON.stringify(carried.meta)})`);
      const bare = await probe(t, '?envelope=false', message());
      if (!bare) return;
      assert.deepEqual(bare.raw, BODY, 'the body byte for byte, no envelope');
      assert.deepEqual(bare.meta, [], 'no header, property or field beside the body');
      // A dead letter keeps its reason even through a bare URL: it goes to Conveyor's own <topic>.dead.
      const dead = message();
      dead.headers = { ...dead.headers, 'conveyor-dead-code': 'ERR_DECODE', 'conveyor-dead-reason': 'probe' };
      const kept = await probe(t, '?envelope=false', dead);
      assert.ok(kept && shows(kept), `a dead letter keeps its headers (meta ${JSON.stringify(kept?.meta)})`);
    });
  }
});

describe('engines whose names are Conveyor names refuse a binding rather than ignore it', () => {
  test('memory:// and nsq:// subscribe with bind → ERR_BAD_OPTIONS; memory://?envelope=maybe → ERR_BAD_OPTIONS', async (t) => {
    const memory = await open(t, 'memory://');
    const broker = await startBroker({ tcp: '127.0.0.1:0', http: '127.0.0.1:0' });
    t.after(() => broker.close());
    const nsq = await open(t, `nsq://${broker.tcpAddress}`);
    for (const transport of [memory, nsq]) {
      await assert.rejects(
        transport.subscribe('t', 'c', { maxInFlight: 1, bind: { channel: 'q' } }, () => {}),
        (e: Error & { code?: string }) => e.code === 'ERR_BAD_OPTIONS' && e.message.includes('bind'),
      );
    }
    await assert.rejects(connect('memory://?envelope=maybe'), (e: Error & { code?: string }) => e.code === 'ERR_BAD_OPTIONS' && e.message.includes('envelope'));
  });

  test("the runtime refuses a consumer's bind on a transport without features.bind (kafka:// until it reads one)", async (t) => {
    const transport = await open(t, 'memory://');
    assert.equal(transport.features.bind, undefined);
    const a = app({ transport });
    t.after(() => a.close());
    await assert.rejects(
      a.consume(bytesMessage('x', { topic: uniqueName('t') }), { channel: 'c', bind: { topic: 'elsewhere' } }, () => {}),
      (e: Error & { code?: string }) => e.code === 'ERR_BAD_OPTIONS' && e.message.includes('features.bind'),
    );
  });
});
