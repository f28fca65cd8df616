import assert from 'node:assert/strict';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import { connect } from '../../src/connect.ts';
import type { ConveyorError } from '../../src/core/errors.ts';
import type { Delivery } from '../../src/core/message.ts';
import { parseTransportUrl } from '../../src/core/url.ts';
import { MqttTransport } from '../../src/transports/mqtt/index.ts';
import type { MqttSubscription } from '../../src/transports/mqtt/subscription.ts';
import { mqttTopic, parseMqttOptions, retryTopic, sharedFilter } from '../../src/transports/mqtt/options.ts';
import { requireService, uniqueName, waitFor } from '../helpers/index.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function open(t: TestContext, clientId?: string, url?: string): Promise<MqttTransport | undefined> {
  const base = await requireService(t, 'mqtt');
  if (!base) return undefined;
  const transport = await MqttTransport.connect(parseTransportUrl(url ?? `${base}?sessionExpirySec=5`), clientId ? { clientId } : {});
  t.after(() => transport.close());
  return transport;
}

describe('mqtt:// options and names', () => {
  test('defaults, query, every bad option at once', () => {
    const o = parseMqttOptions(parseTransportUrl('mqtts://u:p@h?sessionExpirySec=60&topicPrefix=plant/'));
    assert.equal(o.brokerUrl, 'mqtts://h:8883');
    assert.equal(o.user, 'u');
    assert.equal(o.sessionExpirySec, 60);
    assert.equal(mqttTopic(o, 'frames'), 'plant/frames');
    assert.equal(mqttTopic(o, 'tail#ephemeral'), 'plant/tail~ephemeral');
    assert.equal(retryTopic(o, 'frames', 'det'), 'plant/conveyor-retry/det/frames');
    assert.equal(sharedFilter('det', 'plant/frames'), '$share/det/plant/frames');
    assert.throws(
      () => parseMqttOptions(parseTransportUrl('mqtt://h?keepaliveSec=-1&topicPrefix=a/%23&nope=1')),
      (err: ConveyorError) => err.code === 'ERR_BAD_OPTIONS' && /keepaliveSec/.test(err.message) && /topicPrefix/.test(err.message) && /nope/.test(err.message),
    );
  });
});

describe('mqtt:// against Mosquitto', () => {
  test('publish → subscribe: body, user-property headers, id, timestamp; fan-out and sharing', async (t) => {
    const tr = await open(t);
    if (!tr) return;
    const topic = uniqueName('mqtt');
    const got: Record<string, Delivery[]> = { a1: [], a2: [], b: [] };
    const on = (k: string) => (d: Delivery) => {
      got[k]!.push(d);
      d.ack();
    };
    const subs = [
      await tr.subscribe(topic, 'a', { maxInFlight: 5 }, on('a1')),
      await tr.subscribe(topic, 'a', { maxInFlight: 5 }, on('a2')),
      await tr.subscribe(topic, 'b', { maxInFlight: 5 }, on('b')),
    ];
    t.after(() => Promise.all(subs.map((s) => s.close())));
    const before = Date.now();
    await tr.publish(topic, [{ id: 'first', body: enc('hello'), headers: { 'content-type': 'application/json', 'x-k': 'v' } }]);
    await tr.publish(topic, Array.from({ length: 39 }, (_, i) => ({ id: `m${i}`, body: enc(String(i)) })));
    await waitFor(() => got.a1!.length + got.a2!.length === 40 && got.b!.length === 40, 'fan-out and sharing');
    assert.ok(got.a1!.length > 0 && got.a2!.length > 0, `shared: ${got.a1!.length}/${got.a2!.length}`);
    const first = got.b!.find((d) => d.id === 'first')!;
    assert.equal(dec(first.body), 'hello');
    assert.deepEqual({ ...first.headers }, { 'content-type': 'application/json', 'x-k': 'v' });
    assert.equal(first.attempts, 1);
    assert.ok(first.timestamp >= before - 1000 && first.timestamp <= Date.now() + 1000);
  });

  test('nack(delay) redelivers to the same channel only, after the delay, attempts + 1', async (t) => {
    const tr = await open(t);
    if (!tr) return;
    const topic = uniqueName('mqtt');
    const a: Array<[Delivery, number]> = [];
    const b: Delivery[] = [];
    const subA = await tr.subscribe(topic, 'a', { maxInFlight: 5 }, (d) => {
      a.push([d, Date.now()]);
      if (d.attempts < 3) d.nack(d.attempts === 1 ? 200 : 0);
      else d.ack();
    });
    const subB = await tr.subscribe(topic, 'b', { maxInFlight: 5 }, (d) => {
      b.push(d);
      d.ack();
    });
    t.after(() => Promise.all([subA.close(), subB.close()]));
    await tr.publish(topic, [{ id: 'r', body: enc('x'), headers: { h: '1' } }]);
    await waitFor(() => a.length === 3, 'three attempts on channel a');
    assert.deepEqual(
      a.map(([d]) => [d.id, d.attempts, d.headers.h]),
      [
        ['r', 1, '1'],
        ['r', 2, '1'],
        ['r', 3, '1'],
      ],
    );
    assert.ok(a[1]![1] - a[0]![1] >= 180, `delay honoured: ${a[1]![1] - a[0]![1]} ms`);
    await sleep(100);
    assert.equal(b.length, 1, 'channel b saw the message once');
  });

  test('receive maximum bounds unacked; pause holds; resume delivers', async (t) => {
    const tr = await open(t);
    if (!tr) return;
    const topic = uniqueName('mqtt');
    const held: Delivery[] = [];
    let peak = 0;
    const sub = await tr.subscribe(topic, 'c', { maxInFlight: 3 }, (d) => {
      held.push(d);
      peak = Math.max(peak, held.length);
    });
    t.after(() => sub.close());
    await tr.publish(topic, Array.from({ length: 9 }, (_, i) => ({ body: enc(String(i)) })));
    await waitFor(() => held.length === 3, 'three');
    await sleep(150);
    assert.equal(held.length, 3);
    assert.throws(() => sub.setMaxInFlight(-1), { code: 'ERR_BAD_OPTIONS' });
    sub.pause();
    for (const d of held.splice(0)) d.ack();
    await sleep(150);
    assert.equal(held.length, 0, 'paused');
    sub.resume();
    let acked = 3;
    while (acked < 9) {
      await waitFor(() => held.length > 0, 'more');
      for (const d of held.splice(0)) {
        d.ack();
        acked++;
      }
    }
    assert.equal(peak, 3);
  });

  test('a stable clientId resumes the channel session after a crash: messages published while away, and unacked ones (DUP → attempts 2)', async (t) => {
    const base = await requireService(t, 'mqtt');
    if (!base) return;
    const clientId = uniqueName('cid');
    const topic = uniqueName('mqtt');
    const first = await MqttTransport.connect(parseTransportUrl(`${base}?sessionExpirySec=30`), { clientId });
    t.after(() => first.close());
    const seen: Delivery[] = [];
    const sub = await first.subscribe(topic, 'durable', { maxInFlight: 5 }, (d) => seen.push(d));
    await first.publish(topic, [{ id: 'unacked', body: enc('1') }]);
    await waitFor(() => seen.length === 1, 'first delivery');
    // A crash: the socket goes without DISCONNECT or any PUBACK; the broker keeps the session.
    (sub as MqttSubscription).client.end(true);
    const publisher = await open(t);
    if (!publisher) return;
    await publisher.publish(topic, [{ id: 'while-away', body: enc('2') }]);
    const second = await open(t, clientId, `${base}?sessionExpirySec=30`);
    if (!second) return;
    const again: Delivery[] = [];
    const sub2 = await second.subscribe(topic, 'durable', { maxInFlight: 5 }, (d) => {
      again.push(d);
      d.ack();
    });
    // End the session when done, so that the broker forgets it.
    t.after(async () => {
      await sub2.close();
      const ender = await MqttTransport.connect(parseTransportUrl(`${base}?sessionExpirySec=0`), { clientId });
      await (await ender.subscribe(topic, 'durable', { maxInFlight: 1 }, (d) => d.ack())).close();
      await ender.close();
    });
    await waitFor(() => again.length === 2, 'both from the resumed session', 5000);
    const byId = Object.fromEntries(again.map((d) => [d.id, d.attempts]));
    assert.deepEqual(byId, { unacked: 2, 'while-away': 1 });
  });

  test('the next subscriber of a channel resumes a closed one\'s session: unacked and held come back', async (t) => {
    const tr = await open(t);
    if (!tr) return;
    const topic = uniqueName('mqtt');
    const held: Delivery[] = [];
    const first = await tr.subscribe(topic, 'c', { maxInFlight: 2 }, (d) => held.push(d));
    await tr.publish(topic, [{ id: 'x1', body: enc('1') }, { id: 'x2', body: enc('2') }, { id: 'x3', body: enc('3') }]);
    await waitFor(() => held.length === 2, 'two in flight (the third waits in the session)');
    await first.close();
    held[0]!.ack(); // ignored: the session keeps it
    const next: Delivery[] = [];
    const second = await tr.subscribe(topic, 'c', { maxInFlight: 5 }, (d) => {
      next.push(d);
      d.ack();
    });
    t.after(() => second.close());
    await waitFor(() => next.length === 3, 'all three to the next subscriber');
    const byId = Object.fromEntries(next.map((d) => [d.id, d.attempts]));
    assert.equal(byId.x1, 2);
    assert.equal(byId.x2, 2);
    assert.ok(byId.x3 === 1 || byId.x3 === 2, `x3 attempts ${byId.x3}`);
  });

  test('the subscriber reconnects and its session goes on after a dropped connection', async (t) => {
    const base = await requireService(t, 'mqtt');
    if (!base) return;
    const proxy = await tcpProxy(t, '127.0.0.1:1883');
    const tr = await open(t, uniqueName('cid'), `mqtt://${proxy.address}?reconnectMs=50&sessionExpirySec=30`);
    if (!tr) return;
    const topic = uniqueName('mqtt');
    const got: string[] = [];
    const sub = await tr.subscribe(topic, 'c', { maxInFlight: 5 }, (d) => {
      got.push(dec(d.body));
      d.ack();
    });
    t.after(async () => {
      await sub.close();
    });
    await tr.publish(topic, [{ body: enc('before') }]);
    await waitFor(() => got.length === 1, 'first');
    proxy.dropAll();
    await tr.publish(topic, [{ body: enc('after') }]);
    await waitFor(() => got.includes('after'), 'delivery after reconnect', 5000);
  });

  test('connect() picks this adapter for mqtt://', async (t) => {
    const url = await requireService(t, 'mqtt');
    if (!url) return;
    const transport = await connect(url);
    t.after(() => transport.close());
    assert.ok(transport instanceof MqttTransport);
    assert.equal(transport.kind, 'mqtt');
  });

  test('bad input is a typed error', async (t) => {
    const tr = await open(t);
    if (!tr) return;
    await assert.rejects(tr.publish('a/b', [{ body: enc('x') }]), { code: 'ERR_BAD_NAME' });
    await assert.rejects(tr.subscribe('ok', '+', { maxInFlight: 1 }, () => {}), { code: 'ERR_BAD_NAME' });
    await assert.rejects(tr.subscribe('ok', 'c', { maxInFlight: 70_000 }, () => {}), { code: 'ERR_BAD_OPTIONS' });
    await assert.rejects(tr.publish('ok', [{ body: enc('x'), delayMs: 5 }]), { code: 'ERR_BAD_OPTIONS' });
    await tr.close();
    await tr.close();
    await assert.rejects(tr.publish('ok', [{ body: enc('x') }]), { code: 'ERR_CLOSED' });
    await assert.rejects(MqttTransport.connect(parseTransportUrl('mqtt://127.0.0.1:1?connectTimeoutMs=500')), { code: 'ERR_TRANSPORT' });
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
