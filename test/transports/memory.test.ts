import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { connect } from '../../src/connect.ts';
import { encodeEnvelope } from '../../src/core/envelope.ts';
import type { Delivery } from '../../src/core/message.ts';
import type { Transport } from '../../src/core/transport.ts';
import { Engine } from '../../src/engine/index.ts';
import { MemoryTransport } from '../../src/transports/memory/index.ts';
import { uniqueName, waitFor } from '../helpers/index.ts';

async function open(t: import('node:test').TestContext, url = 'memory://?scanIntervalMs=5'): Promise<Transport> {
  const transport = await connect(url);
  t.after(() => transport.close());
  return transport;
}

const b = (...v: number[]) => Uint8Array.from(v);

describe('memory:// transport', () => {
  test('publish → deliver with id, headers, attempts, timestamp; ack finishes', async (t) => {
    const transport = await open(t);
    const topic = uniqueName();
    const got: Delivery[] = [];
    await transport.subscribe(topic, 'c', { maxInFlight: 10 }, (d) => got.push(d));
    const before = Date.now();
    await transport.publish(topic, [
      { id: 'a1b2c3d4e5f60718', body: b(1), headers: { 'content-type': 'application/cbor' } },
      { body: b(2) },
    ]);
    await waitFor(() => got.length === 2, 'two deliveries');
    const [first, second] = got as [Delivery, Delivery];
    assert.equal(first.id, 'a1b2c3d4e5f60718');
    assert.match(second.id, /^[0-9a-f]{16}$/);
    assert.equal(first.topic, topic);
    assert.equal(first.channel, 'c');
    assert.deepEqual(first.headers, { 'content-type': 'application/cbor' });
    assert.deepEqual(second.headers, {});
    assert.equal(first.attempts, 1);
    assert.ok(first.timestamp >= before && first.timestamp <= Date.now());
    first.ack();
    second.ack();
    const engine = (transport as MemoryTransport).engine;
    await waitFor(() => engine.getTopic(topic)!.getChannel('c')!.stats().in_flight_count === 0, 'acks');
  });

  test('features and kind', async (t) => {
    const transport = await open(t, 'memory://?maxMsgSize=2048');
    assert.equal(transport.kind, 'memory');
    assert.deepEqual(transport.features, {
      delayedNack: true,
      delayedPublish: true,
      timeoutRedelivery: true,
      touch: true,
      persistent: false,
      guaranteedOrder: true,
      attemptsCounted: true,
      maxMessageBytes: 2048,
    });
  });

  test('a body in the envelope (published over NSQ by a Conveyor client) reads with its headers', async (t) => {
    const transport = await open(t);
    const topic = uniqueName();
    const got: Delivery[] = [];
    await transport.subscribe(topic, 'c', { maxInFlight: 10 }, (d) => got.push(d));
    const wrapped = encodeEnvelope(b(9, 8), { 'conveyor-type': 'frame' });
    const fake = Uint8Array.from([0x43, 0x56, 0x59, 0x01, 0xff, 0xff, 1]); // magic, lying count
    await transport.publish(topic, [{ body: wrapped }, { body: fake }]);
    await waitFor(() => got.length === 2, 'deliveries');
    assert.deepEqual(got[0]!.headers, { 'conveyor-type': 'frame' });
    assert.deepEqual([...got[0]!.body], [9, 8]);
    assert.deepEqual(got[1]!.headers, {}, 'a bad envelope is delivered as a plain body');
    assert.deepEqual([...got[1]!.body], [...fake]);
  });

  test('nack redelivers with attempts + 1; nack(delay) waits; double settle is ignored', async (t) => {
    const transport = await open(t);
    const topic = uniqueName();
    const got: Delivery[] = [];
    await transport.subscribe(topic, 'c', { maxInFlight: 10 }, (d) => {
      got.push(d);
      if (d.attempts === 1) d.nack();
      else if (d.attempts === 2) d.nack(40);
      else d.ack();
      d.ack(); // ignored: already settled
      d.nack(); // ignored
    });
    const start = Date.now();
    await transport.publish(topic, [{ body: b(1) }]);
    await waitFor(() => got.length === 3, 'third delivery');
    assert.deepEqual(
      got.map((d) => d.attempts),
      [1, 2, 3],
    );
    assert.ok(Date.now() - start >= 40);
    const stats = (transport as MemoryTransport).engine.getTopic(topic)!.getChannel('c')!.stats();
    assert.equal(stats.requeue_count, 2);
    assert.equal(stats.in_flight_count, 0);
  });

  test('timeoutMs redelivers an unacked delivery; touch keeps it', async (t) => {
    const transport = await open(t);
    const topic = uniqueName();
    const got: Delivery[] = [];
    await transport.subscribe(topic, 'c', { maxInFlight: 10, timeoutMs: 40 }, (d) => got.push(d));
    await transport.publish(topic, [{ body: b(1) }, { body: b(2) }]);
    await waitFor(() => got.length === 2, 'first deliveries');
    const keep = got[0]!;
    const timer = setInterval(() => keep.touch(), 10);
    t.after(() => clearInterval(timer));
    await waitFor(() => got.length === 3, 'a redelivery');
    assert.equal(got[2]!.body[0], 2);
    assert.equal(got[2]!.attempts, 2);
    keep.ack();
    got[2]!.ack();
    clearInterval(timer);
  });

  test('maxInFlight bounds unacked deliveries; pause, resume and setMaxInFlight', async (t) => {
    const transport = await open(t);
    const topic = uniqueName();
    const got: Delivery[] = [];
    const sub = await transport.subscribe(topic, 'c', { maxInFlight: 2 }, (d) => got.push(d));
    await transport.publish(
      topic,
      Array.from({ length: 10 }, (_, i) => ({ body: b(i) })),
    );
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(got.length, 2);
    sub.pause();
    got[0]!.ack();
    got[1]!.ack();
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(got.length, 2, 'paused: nothing new');
    sub.resume();
    await waitFor(() => got.length === 4, 'two more after resume');
    sub.setMaxInFlight(5);
    await waitFor(() => got.length === 7, 'three more after raising the bound');
    assert.deepEqual(
      got.map((d) => d.body[0]),
      [0, 1, 2, 3, 4, 5, 6],
    );
    assert.throws(() => sub.setMaxInFlight(-1), { code: 'ERR_BAD_OPTIONS' });
    await assert.rejects(transport.subscribe(topic, 'd', { maxInFlight: 1e6 }, () => {}), { code: 'ERR_BAD_OPTIONS' });
    await assert.rejects(transport.subscribe(topic, 'd', { maxInFlight: 1, timeoutMs: 0 }, () => {}), { code: 'ERR_BAD_OPTIONS' });
    assert.equal((transport as MemoryTransport).engine.getTopic(topic)!.getChannel('d'), undefined, 'no channel made by a refused subscribe');
  });

  test('closing a subscription returns its unacked deliveries to the channel', async (t) => {
    const transport = await open(t);
    const topic = uniqueName();
    const first: Delivery[] = [];
    const sub = await transport.subscribe(topic, 'c', { maxInFlight: 5 }, (d) => first.push(d));
    await transport.publish(topic, [{ body: b(1) }, { body: b(2) }]);
    await waitFor(() => first.length === 2, 'deliveries');
    await sub.close();
    first[0]!.ack(); // ignored by the engine: no longer in flight for this consumer
    const second: Delivery[] = [];
    await transport.subscribe(topic, 'c', { maxInFlight: 5 }, (d) => {
      second.push(d);
      d.ack();
    });
    await waitFor(() => second.length === 2, 'redeliveries');
    assert.deepEqual(
      second.map((d) => [d.body[0], d.attempts]),
      [
        [1, 2],
        [2, 2],
      ],
    );
  });

  test('every channel gets every message; consumers of one channel share them', async (t) => {
    const transport = await open(t);
    const topic = uniqueName();
    const counts = { a1: 0, a2: 0, b: 0 };
    const on = (k: keyof typeof counts) => (d: Delivery) => {
      counts[k]++;
      d.ack();
    };
    await transport.subscribe(topic, 'a', { maxInFlight: 10 }, on('a1'));
    await transport.subscribe(topic, 'a', { maxInFlight: 10 }, on('a2'));
    await transport.subscribe(topic, 'b', { maxInFlight: 10 }, on('b'));
    await transport.publish(
      topic,
      Array.from({ length: 20 }, (_, i) => ({ body: b(i) })),
    );
    await waitFor(() => counts.a1 + counts.a2 === 20 && counts.b === 20, 'all deliveries');
    assert.ok(counts.a1 > 0 && counts.a2 > 0);
  });

  test('delayed publish', async (t) => {
    const transport = await open(t);
    const topic = uniqueName();
    const got: number[] = [];
    await transport.subscribe(topic, 'c', { maxInFlight: 10 }, (d) => {
      got.push(d.body[0]!);
      d.ack();
    });
    await transport.publish(topic, [{ body: b(1), delayMs: 40 }, { body: b(2) }]);
    await waitFor(() => got.length === 2, 'both');
    assert.deepEqual(got, [2, 1]);
  });

  test('bad input is rejected: oversize, bad names, closed', async (t) => {
    const transport = await connect('memory://?maxMsgSize=4');
    t.after(() => transport.close());
    await assert.rejects(transport.publish('t', [{ body: new Uint8Array(5) }]), { code: 'ERR_TOO_LARGE' });
    await assert.rejects(transport.publish('bad name', [{ body: b(1) }]), { code: 'ERR_BAD_NAME' });
    await assert.rejects(transport.subscribe('t', 'bad/chan', { maxInFlight: 1 }, () => {}), { code: 'ERR_BAD_NAME' });
    await transport.close();
    await transport.close();
    await assert.rejects(transport.publish('t', [{ body: b(1) }]), { code: 'ERR_CLOSED' });
    await assert.rejects(transport.subscribe('t', 'c', { maxInFlight: 1 }, () => {}), { code: 'ERR_CLOSED' });
    await assert.rejects(connect('memory://?nonsense=1'), { code: 'ERR_BAD_OPTIONS' });
    await assert.rejects(connect('memory://?memQueueSize=abc'), { code: 'ERR_BAD_OPTIONS' });
    await assert.rejects(connect('memory://x/path'), { code: 'ERR_BAD_URL' });
    await assert.rejects(connect('memory://%zz'), { code: 'ERR_BAD_URL' });
  });

  test('memory://<name> shares one engine in the process; memory:// is private', async (t) => {
    const name = uniqueName('broker');
    const producer = await open(t, `memory://${name}`);
    const worker = await open(t, `memory://${name}`);
    const loner = await open(t, 'memory://');
    assert.equal((producer as MemoryTransport).engine, (worker as MemoryTransport).engine);
    assert.notEqual((loner as MemoryTransport).engine, (worker as MemoryTransport).engine);
    const got: number[] = [];
    await worker.subscribe('shared', 'c', { maxInFlight: 10 }, (d) => {
      got.push(d.body[0]!);
      d.ack();
    });
    await producer.publish('shared', [{ body: b(7) }]);
    await waitFor(() => got.length === 1, 'delivery across transports');
    await assert.rejects(connect(`memory://${name}?memQueueSize=5`), { code: 'ERR_BAD_OPTIONS' });
    // The engine lives until its last transport closes.
    const engine = (worker as MemoryTransport).engine;
    await producer.close();
    assert.equal(engine.closed, false);
    await worker.close();
    assert.equal(engine.closed, true);
    const again = await open(t, `memory://${name}`);
    assert.notEqual((again as MemoryTransport).engine, engine, 'a fresh engine after the last close');
  });

  test('MemoryTransport over a caller-owned engine leaves the engine open', async (t) => {
    const engine = new Engine({ scanIntervalMs: 5 });
    t.after(() => engine.close());
    const transport = new MemoryTransport(engine);
    await transport.publish('owned', [{ body: b(1) }]);
    await transport.close();
    assert.equal(engine.closed, false);
    assert.equal(engine.getTopic('owned')!.stats().depth, 1);
  });

  test('a throwing onMessage leaves the message in flight for timeout redelivery', async (t) => {
    const transport = await open(t);
    const topic = uniqueName();
    let calls = 0;
    const warned = new Promise((resolve) => process.once('warning', resolve));
    await transport.subscribe(topic, 'c', { maxInFlight: 1, timeoutMs: 20 }, (d) => {
      calls++;
      if (calls === 1) throw new Error('handler bug');
      d.ack();
    });
    await transport.publish(topic, [{ body: b(1) }]);
    await waitFor(() => calls === 2, 'redelivery after timeout');
    await warned;
  });
});
