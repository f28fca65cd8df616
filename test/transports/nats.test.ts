import assert from 'node:assert/strict';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '../../src/connect.ts';
import type { ConveyorError } from '../../src/core/errors.ts';
import type { Delivery } from '../../src/core/message.ts';
import { parseTransportUrl } from '../../src/core/url.ts';
import { NatsTransport } from '../../src/transports/nats/index.ts';
import { parseNatsOptions, streamName } from '../../src/transports/nats/options.ts';
import { requireService, uniqueName, waitFor } from '../helpers/index.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** A transport closed when the test ends, and every stream it made deleted. */
async function open(t: TestContext, query = ''): Promise<NatsTransport | undefined> {
  const url = await requireService(t, 'nats');
  if (!url) return undefined;
  const transport = await NatsTransport.connect(parseTransportUrl(`${url}${query}`));
  t.after(() => transport.close());
  return transport;
}

/** Deletes the topic's stream when the test ends (through a connection of its own). */
function cleanup(t: TestContext, transport: NatsTransport, topic: string): void {
  const name = streamName(transport.options, topic);
  t.after(async () => {
    const other = await NatsTransport.connect(parseTransportUrl('nats://127.0.0.1:4222'));
    try {
      const jsm = await jetstreamManager(other.connection);
      await jsm.streams.delete(name).catch(() => undefined);
    } finally {
      await other.close();
    }
  });
}

describe('nats:// options', () => {
  test('defaults and URL query', () => {
    const o = parseNatsOptions(parseTransportUrl('nats://u:p%40ss@h:4333?retention=limits&maxAgeMs=1000&streamPrefix=APP_'));
    assert.equal(o.server, 'h:4333');
    assert.equal(o.user, 'u');
    assert.equal(o.pass, 'p@ss');
    assert.equal(o.retention, 'limits');
    assert.equal(o.maxAgeMs, 1000);
    assert.equal(o.streamPrefix, 'APP_');
    assert.equal(o.duplicateWindowMs, 120_000);
    assert.equal(streamName(o, 'a.b'), 'APP_a~b');
  });

  test('every bad option is reported at once', () => {
    assert.throws(
      () => parseNatsOptions(parseTransportUrl('nats://h?retention=x&maxAgeMs=-4&bogus=1&streamPrefix=a.b')),
      (err: ConveyorError) =>
        err.code === 'ERR_BAD_OPTIONS' &&
        /retention/.test(err.message) &&
        /maxAgeMs/.test(err.message) &&
        /bogus/.test(err.message) &&
        /streamPrefix/.test(err.message),
    );
  });
});

describe('nats:// against JetStream', () => {
  test('publish → subscribe: body, headers, id, attempts, timestamp; nack(delay) redelivers', async (t) => {
    const transport = await open(t);
    if (!transport) return;
    const topic = uniqueName('nats');
    cleanup(t, transport, topic);
    const got: Delivery[] = [];
    const sub = await transport.subscribe(topic, 'work', { maxInFlight: 10, timeoutMs: 5000 }, (d) => {
      got.push(d);
      if (d.attempts === 1 && d.id === 'm1') d.nack(200);
      else d.ack();
    });
    t.after(() => sub.close());
    const before = Date.now();
    await transport.publish(topic, [
      { id: 'm1', body: enc('hello'), headers: { 'content-type': 'application/json', 'x-trace': 'abc' } },
      { id: 'm2', body: enc('world') },
    ]);
    await waitFor(() => got.length === 3, 'three deliveries');
    const [first, second, again] = got as [Delivery, Delivery, Delivery];
    assert.equal(first.id, 'm1');
    assert.equal(dec(first.body), 'hello');
    assert.deepEqual({ ...first.headers }, { 'content-type': 'application/json', 'x-trace': 'abc' });
    assert.equal(first.attempts, 1);
    assert.equal(first.topic, topic);
    assert.equal(first.channel, 'work');
    assert.ok(first.timestamp >= before - 1000 && first.timestamp <= Date.now() + 1000, `timestamp ${first.timestamp}`);
    assert.equal(second.id, 'm2');
    assert.deepEqual({ ...second.headers }, {});
    assert.equal(again.id, 'm1');
    assert.equal(again.attempts, 2);
  });

  test('channels fan out; subscribers of one channel share', async (t) => {
    const transport = await open(t);
    if (!transport) return;
    const topic = uniqueName('nats');
    cleanup(t, transport, topic);
    const counts = { a1: 0, a2: 0, b: 0 };
    const subscribe = (channel: string, key: keyof typeof counts) =>
      transport.subscribe(topic, channel, { maxInFlight: 5 }, (d) => {
        counts[key]++;
        d.ack();
      });
    const subs = [await subscribe('a', 'a1'), await subscribe('a', 'a2'), await subscribe('b', 'b')];
    t.after(() => Promise.all(subs.map((s) => s.close())));
    const n = 60;
    await transport.publish(
      topic,
      Array.from({ length: n }, (_, i) => ({ id: `id${i}`, body: enc(String(i)) })),
    );
    await waitFor(() => counts.a1 + counts.a2 === n && counts.b === n, 'fan-out and sharing');
    assert.ok(counts.a1 > 0 && counts.a2 > 0, `both subscribers of channel a got some: ${JSON.stringify(counts)}`);
    // The channel's max_ack_pending is the sum over its subscribers here, and follows them.
    const jsm = await jetstreamManager(transport.connection);
    const stream = streamName(transport.options, topic);
    assert.equal((await jsm.consumers.info(stream, 'a')).config.max_ack_pending, 10);
    await subs[1]!.close();
    assert.equal((await jsm.consumers.info(stream, 'a')).config.max_ack_pending, 5);
    subs[0]!.setMaxInFlight(7);
    await waitFor(async () => (await jsm.consumers.info(stream, 'a')).config.max_ack_pending === 7, 'update after setMaxInFlight');
  });

  test('never more than maxInFlight unacked; pause holds, resume delivers', async (t) => {
    const transport = await open(t);
    if (!transport) return;
    const topic = uniqueName('nats');
    cleanup(t, transport, topic);
    const held: Delivery[] = [];
    let peak = 0;
    const sub = await transport.subscribe(topic, 'slow', { maxInFlight: 3 }, (d) => {
      held.push(d);
      peak = Math.max(peak, held.length);
    });
    t.after(() => sub.close());
    await transport.publish(topic, Array.from({ length: 10 }, (_, i) => ({ id: `x${i}`, body: enc(String(i)) })));
    await waitFor(() => held.length === 3, 'three in flight');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(held.length, 3);
    sub.pause();
    for (const d of held.splice(0)) d.ack();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(held.length, 0, 'paused: nothing new');
    sub.resume();
    let acked = 3;
    while (acked < 10) {
      await waitFor(() => held.length > 0, 'more deliveries');
      for (const d of held.splice(0)) {
        d.ack();
        acked++;
      }
    }
    assert.equal(peak, 3);
  });

  test('an unacked delivery is redelivered after timeoutMs; touch() holds it', async (t) => {
    const transport = await open(t);
    if (!transport) return;
    const topic = uniqueName('nats');
    cleanup(t, transport, topic);
    const got: Delivery[] = [];
    const sub = await transport.subscribe(topic, 'c', { maxInFlight: 2, timeoutMs: 600 }, (d) => got.push(d));
    t.after(() => sub.close());
    await transport.publish(topic, [{ id: 'late', body: enc('x') }, { id: 'touched', body: enc('y') }]);
    await waitFor(() => got.length === 2, 'two deliveries');
    const touched = got.find((d) => d.id === 'touched')!;
    const timer = setInterval(() => touched.touch(), 200);
    t.after(() => clearInterval(timer));
    await waitFor(() => got.length === 3, 'redelivery of the untouched one', 5000);
    assert.equal(got[2]!.id, 'late');
    assert.equal(got[2]!.attempts, 2);
    clearInterval(timer);
    touched.ack();
    got[2]!.ack();
  });

  test('Nats-Msg-Id dedups a republished message within the duplicate window', async (t) => {
    const transport = await open(t);
    if (!transport) return;
    const topic = uniqueName('nats');
    cleanup(t, transport, topic);
    const got: string[] = [];
    const sub = await transport.subscribe(topic, 'c', { maxInFlight: 10 }, (d) => {
      got.push(d.id);
      d.ack();
    });
    t.after(() => sub.close());
    await transport.publish(topic, [{ id: 'same', body: enc('1') }]);
    await transport.publish(topic, [{ id: 'same', body: enc('1') }, { id: 'other', body: enc('2') }]);
    await waitFor(() => got.length === 2, 'two distinct');
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(got, ['same', 'other']);
  });

  test('closing a subscription returns its unacked deliveries at once', async (t) => {
    const transport = await open(t);
    if (!transport) return;
    const topic = uniqueName('nats');
    cleanup(t, transport, topic);
    const first: Delivery[] = [];
    const sub1 = await transport.subscribe(topic, 'c', { maxInFlight: 5, timeoutMs: 30_000 }, (d) => first.push(d));
    await transport.publish(topic, [{ id: 'k', body: enc('x') }]);
    await waitFor(() => first.length === 1, 'first delivery');
    await sub1.close();
    first[0]!.ack(); // ignored: the delivery went back with the close
    const second: Delivery[] = [];
    const sub2 = await transport.subscribe(topic, 'c', { maxInFlight: 5, timeoutMs: 30_000 }, (d) => {
      second.push(d);
      d.ack();
    });
    t.after(() => sub2.close());
    await waitFor(() => second.length === 1, 'redelivery well before ack_wait', 5000);
    assert.equal(second[0]!.id, 'k');
    // nats-server 2.9 reports deliveryCount 1 for a message nak'd while no pull request waits
    // (it counts it again only when a pull takes it); newer servers say 2. Both are redeliveries.
    assert.ok(second[0]!.attempts >= 1);
  });

  test('#ephemeral channel: its consumer goes with its last subscriber', async (t) => {
    const transport = await open(t);
    if (!transport) return;
    const topic = uniqueName('nats');
    cleanup(t, transport, topic);
    const got: string[] = [];
    const sub = await transport.subscribe(topic, 'tail#ephemeral', { maxInFlight: 5 }, (d) => {
      got.push(dec(d.body));
      d.ack();
    });
    await transport.publish(topic, [{ id: 'e1', body: enc('e') }]);
    await waitFor(() => got.length === 1, 'ephemeral delivery');
    const jsm = await jetstreamManager(transport.connection);
    const stream = streamName(transport.options, topic);
    assert.equal((await jsm.consumers.list(stream).next()).length, 1);
    await sub.close();
    assert.equal((await jsm.consumers.list(stream).next()).length, 0);
  });

  test('after a dropped connection the client reconnects and the consumer resumes', async (t) => {
    const url = await requireService(t, 'nats');
    if (!url) return;
    const proxy = await tcpProxy(t, '127.0.0.1:4222');
    const transport = await NatsTransport.connect(parseTransportUrl(`nats://${proxy.address}?reconnectWaitMs=50&publishTimeoutMs=500`));
    t.after(() => transport.close());
    const topic = uniqueName('nats');
    cleanup(t, transport, topic);
    const got: string[] = [];
    const sub = await transport.subscribe(topic, 'c', { maxInFlight: 5 }, (d) => {
      got.push(dec(d.body));
      d.ack();
    });
    t.after(() => sub.close());
    await transport.publish(topic, [{ id: 'before', body: enc('before') }]);
    await waitFor(() => got.length === 1, 'first');
    proxy.dropAll();
    await waitFor(
      () => transport.publish(topic, [{ id: 'after', body: enc('after') }]).then(() => true, () => false),
      'a confirmed publish after the drop',
      10_000,
      100,
    );
    await waitFor(() => got.includes('after'), 'delivery after reconnect', 10_000);
  });

  test('setMaxInFlight raises and lowers the bound', async (t) => {
    const transport = await open(t);
    if (!transport) return;
    const topic = uniqueName('nats');
    cleanup(t, transport, topic);
    const held: Delivery[] = [];
    const sub = await transport.subscribe(topic, 'c', { maxInFlight: 2 }, (d) => held.push(d));
    t.after(() => sub.close());
    await transport.publish(topic, Array.from({ length: 8 }, (_, i) => ({ id: `s${i}`, body: enc(String(i)) })));
    await waitFor(() => held.length === 2, 'two');
    sub.setMaxInFlight(5);
    await waitFor(() => held.length === 5, 'five after raising', 5000);
    sub.setMaxInFlight(1);
    assert.throws(() => sub.setMaxInFlight(0), { code: 'ERR_BAD_OPTIONS' });
    for (const d of held.splice(0)) d.ack();
    await waitFor(() => held.length === 1, 'one after lowering', 5000);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(held.length, 1);
    for (let i = 0; i < 2; i++) {
      held.splice(0)[0]!.ack();
      await waitFor(() => held.length === 1, 'next one');
    }
    held.splice(0)[0]!.ack();
  });

  test('connect() picks this adapter for nats://', async (t) => {
    const url = await requireService(t, 'nats');
    if (!url) return;
    const transport = await connect(url);
    t.after(() => transport.close());
    assert.ok(transport instanceof NatsTransport);
    assert.equal(transport.kind, 'nats');
  });

  test('bad input is a typed error, never sent', async (t) => {
    const transport = await open(t);
    if (!transport) return;
    await assert.rejects(transport.publish('bad topic', [{ body: enc('x') }]), { code: 'ERR_BAD_NAME' });
    await assert.rejects(transport.publish('a..b', [{ body: enc('x') }]), { code: 'ERR_BAD_NAME' });
    await assert.rejects(transport.subscribe('ok', 'bad*', { maxInFlight: 1 }, () => {}), { code: 'ERR_BAD_NAME' });
    await assert.rejects(transport.subscribe('ok', 'c', { maxInFlight: 0 }, () => {}), { code: 'ERR_BAD_OPTIONS' });
    await assert.rejects(transport.publish('ok', [{ body: enc('x'), delayMs: 100 }]), { code: 'ERR_BAD_OPTIONS' });
    const big = new Uint8Array(transport.features.maxMessageBytes + 1);
    await assert.rejects(transport.publish('ok', [{ body: big }]), { code: 'ERR_TOO_LARGE' });
    await transport.close();
    await assert.rejects(transport.publish('ok', [{ body: enc('x') }]), { code: 'ERR_CLOSED' });
    await transport.close(); // idempotent
  });
});

/** A TCP proxy to `target` whose `dropAll()` cuts every connection through it (a network drop). */
async function tcpProxy(t: TestContext, target: string): Promise<{ address: string; dropAll(): void }> {
  const [host, port] = target.split(':') as [string, string];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = netConnect({ host, port: Number(port) });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const dropAll = () => {
    for (const s of sockets) s.destroy();
  };
  t.after(() => {
    dropAll();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { address: `127.0.0.1:${(server.address() as { port: number }).port}`, dropAll };
}
