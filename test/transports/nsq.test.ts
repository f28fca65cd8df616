import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, connect as netConnect, type Socket } from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import { connect } from '../../src/connect.ts';
import { encodeEnvelope } from '../../src/core/envelope.ts';
import type { ConveyorError } from '../../src/core/errors.ts';
import type { Delivery } from '../../src/core/message.ts';
import { parseTransportUrl } from '../../src/core/url.ts';
import { type Broker, startBroker } from '../../src/server/index.ts';
import { NsqTransport } from '../../src/transports/nsq/index.ts';
import { parseNsqOptions } from '../../src/transports/nsq/options.ts';
import { decodeMessage, FrameReader, mpubCommand } from '../../src/transports/nsq/wire.ts';
import { uniqueName, waitFor } from '../helpers/index.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

async function broker(t: TestContext): Promise<Broker> {
  const b = await startBroker({ tcp: '127.0.0.1:0', http: '127.0.0.1:0' });
  t.after(() => b.close());
  return b;
}

function transport(t: TestContext, url: string): NsqTransport {
  const tr = new NsqTransport(parseTransportUrl(url));
  t.after(() => tr.close());
  return tr;
}

describe('nsq wire codec', () => {
  test('MPUB layout: size counts what follows it', () => {
    const cmd = mpubCommand('t', [enc('ab'), enc('cde')]);
    const head = 'MPUB t\n';
    assert.equal(cmd.toString('latin1', 0, head.length), head);
    assert.equal(cmd.readUInt32BE(head.length), 4 + 4 + 2 + 4 + 3);
    assert.equal(cmd.readUInt32BE(head.length + 4), 2);
    assert.equal(cmd.readUInt32BE(head.length + 8), 2);
    assert.equal(cmd.toString('latin1', head.length + 12, head.length + 14), 'ab');
  });

  test('frames split across chunks, and many frames in one chunk', () => {
    const frame = (type: number, data: string) => {
      const b = Buffer.alloc(8 + data.length);
      b.writeUInt32BE(4 + data.length, 0);
      b.writeUInt32BE(type, 4);
      b.write(data, 8, 'latin1');
      return b;
    };
    const all = Buffer.concat([frame(0, 'OK'), frame(1, 'E_INVALID x'), frame(0, '_heartbeat_')]);
    for (let cut = 1; cut < all.length; cut++) {
      const seen: string[] = [];
      const r = new FrameReader(1024);
      r.push(all.subarray(0, cut), (type, d) => seen.push(`${type}:${d.toString('latin1')}`));
      r.push(all.subarray(cut), (type, d) => seen.push(`${type}:${d.toString('latin1')}`));
      assert.deepEqual(seen, ['0:OK', '1:E_INVALID x', '0:_heartbeat_'], `cut at ${cut}`);
    }
    assert.throws(() => new FrameReader(10).push(frame(0, 'x'.repeat(20)), () => {}), { code: 'ERR_PROTOCOL' });
  });

  test('message: ns timestamp → ms, attempts, 16-byte id', () => {
    const data = Buffer.alloc(26 + 3);
    const ns = 1_700_000_000_123n * 1_000_000n + 456_789n;
    data.writeBigInt64BE(ns, 0);
    data.writeUInt16BE(3, 8);
    data.write('0123456789abcdef', 10, 'latin1');
    data.write('xyz', 26, 'latin1');
    const m = decodeMessage(data);
    assert.equal(m.timestamp, 1_700_000_000_123);
    assert.equal(m.attempts, 3);
    assert.equal(m.id, '0123456789abcdef');
    assert.equal(dec(m.body), 'xyz');
  });

  test('options: defaults, lookupd list, every bad one reported', () => {
    const o = parseNsqOptions(parseTransportUrl('nsqlookup://a:4161?lookupd=b&nsqd=c:4150&lookupIntervalMs=50'));
    assert.deepEqual(o.lookupd, [
      { host: 'a', port: 4161 },
      { host: 'b', port: 4161 },
    ]);
    assert.deepEqual(o.nsqd, [{ host: 'c', port: 4150 }]);
    assert.equal(o.lookupIntervalMs, 50);
    assert.deepEqual(parseNsqOptions(parseTransportUrl('nsq://h')).nsqd, [{ host: 'h', port: 4150 }]);
    assert.equal(parseNsqOptions(parseTransportUrl('nsq://h')).envelope, true);
    assert.equal(parseNsqOptions(parseTransportUrl('nsq://h?envelope=false')).envelope, false);
    assert.throws(
      () => parseNsqOptions(parseTransportUrl('nsq://h?maxMsgSize=x&lookupd=z&nsqd=a:99999&envelope=no')),
      (err: ConveyorError) =>
        err.code === 'ERR_BAD_OPTIONS' && /maxMsgSize/.test(err.message) && /lookupd/.test(err.message) && /nsqd/.test(err.message) && /envelope/.test(err.message),
    );
  });
});

describe('nsq:// against the embedded broker', () => {
  test('publish → subscribe: headers and id through the envelope, attempts, timestamp, REQ with delay', async (t) => {
    const b = await broker(t);
    const tr = transport(t, `nsq://${b.tcpAddress}`);
    const topic = uniqueName('nsq');
    const got: Delivery[] = [];
    const sub = await tr.subscribe(topic, 'work', { maxInFlight: 10 }, (d) => {
      got.push(d);
      if (d.attempts === 1 && d.id === 'm1') d.nack(100);
      else d.ack();
    });
    t.after(() => sub.close());
    const before = Date.now();
    await tr.publish(topic, [
      { id: 'm1', body: enc('hello'), headers: { 'content-type': 'application/json' } },
      { id: 'm2', body: enc('world') },
    ]);
    await waitFor(() => got.length === 3, 'three deliveries');
    const first = got.find((d) => d.id === 'm1' && d.attempts === 1)!;
    assert.equal(dec(first.body), 'hello');
    assert.deepEqual({ ...first.headers }, { 'content-type': 'application/json' });
    assert.ok(first.timestamp >= before - 1000 && first.timestamp <= Date.now() + 1000);
    const again = got.find((d) => d.id === 'm1' && d.attempts === 2);
    assert.ok(again, 'REQ redelivered with attempts 2');
    assert.deepEqual({ ...got.find((d) => d.id === 'm2')!.headers }, {});
  });

  test('a plain body from a foreign producer reads as body without headers', async (t) => {
    const b = await broker(t);
    const tr = transport(t, `nsq://${b.tcpAddress}`);
    const topic = uniqueName('nsq');
    const got: Delivery[] = [];
    const sub = await tr.subscribe(topic, 'c', { maxInFlight: 5 }, (d) => {
      got.push(d);
      d.ack();
    });
    t.after(() => sub.close());
    // nsqd's HTTP /pub, as the seeds' Python services would publish.
    const res = await fetch(`http://${b.httpAddress}/pub?topic=${topic}`, { method: 'POST', body: '{"frame":1}' });
    assert.equal(res.status, 200);
    await waitFor(() => got.length === 1, 'delivery');
    assert.equal(dec(got[0]!.body), '{"frame":1}');
    assert.deepEqual({ ...got[0]!.headers }, {});
    assert.equal(got[0]!.id.length, 16, 'the nsqd message id');
  });

  test('publishes of one tick go out together; many calls all confirmed', async (t) => {
    const b = await broker(t);
    const tr = transport(t, `nsq://${b.tcpAddress}?maxBodySize=4096&maxMsgSize=1024`);
    const topic = uniqueName('nsq');
    const seen = new Set<string>();
    const sub = await tr.subscribe(topic, 'c', { maxInFlight: 100 }, (d) => {
      seen.add(dec(d.body));
      d.ack();
    });
    t.after(() => sub.close());
    // 300 calls in one tick, ~100-byte bodies: several MPUBs because of maxBodySize 4096.
    const calls = Array.from({ length: 300 }, (_, i) => tr.publish(topic, [{ body: enc(`${i}`.padEnd(100, '.')) }]));
    await Promise.all(calls);
    await waitFor(() => seen.size === 300, 'all 300 delivered');
    await assert.rejects(tr.publish(topic, [{ body: new Uint8Array(2000) }]), { code: 'ERR_TOO_LARGE' });
  });

  test('DPUB: a delayed publish arrives after its delay', async (t) => {
    const b = await broker(t);
    const tr = transport(t, `nsq://${b.tcpAddress}`);
    const topic = uniqueName('nsq');
    const got: Array<[string, number]> = [];
    const sub = await tr.subscribe(topic, 'c', { maxInFlight: 5 }, (d) => {
      got.push([dec(d.body), Date.now()]);
      d.ack();
    });
    t.after(() => sub.close());
    const start = Date.now();
    await tr.publish(topic, [{ body: enc('late'), delayMs: 300 }, { body: enc('now') }]);
    await waitFor(() => got.length === 2, 'both');
    assert.equal(got[0]![0], 'now');
    assert.ok(got[1]![1] - start >= 280, `delayed by ${got[1]![1] - start} ms`);
    await assert.rejects(tr.publish(topic, [{ body: enc('x'), delayMs: 2 * 3_600_000 }]), { code: 'ERR_BAD_OPTIONS' });
  });

  test('maxInFlight bounds unacked; pause stops, resume restarts; timeout redelivers; touch holds', async (t) => {
    const b = await broker(t);
    const tr = transport(t, `nsq://${b.tcpAddress}`);
    const topic = uniqueName('nsq');
    const held: Delivery[] = [];
    let peak = 0;
    const sub = await tr.subscribe(topic, 'c', { maxInFlight: 3, timeoutMs: 1000 }, (d) => {
      held.push(d);
      peak = Math.max(peak, held.length);
    });
    t.after(() => sub.close());
    await tr.publish(topic, Array.from({ length: 6 }, (_, i) => ({ body: enc(String(i)) })));
    await waitFor(() => held.length === 3, 'three in flight');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(held.length, 3);
    sub.pause();
    for (const d of held.splice(0)) d.ack();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(held.length, 0, 'paused');
    sub.resume();
    await waitFor(() => held.length === 3, 'three more');
    // Touch one for 1.5 × the timeout; the other two time out and come back with attempts 2.
    const touched = held[0]!;
    const timer = setInterval(() => touched.touch(), 300);
    t.after(() => clearInterval(timer));
    await new Promise((r) => setTimeout(r, 1500));
    clearInterval(timer);
    const redelivered = held.filter((d) => d.attempts === 2);
    assert.ok(redelivered.length >= 2, `timed-out ones came back: ${held.map((d) => d.attempts)}`);
    assert.ok(!redelivered.some((d) => dec(d.body) === dec(touched.body)), 'the touched one was not redelivered');
    for (const d of held.splice(0)) d.ack();
    assert.ok(peak <= 5, `peak ${peak}`); // 3 + the two stale ones whose timeouts freed their slots
  });

  test('setMaxInFlight sends a new RDY: raising lets more through, lowering holds back', async (t) => {
    const b = await broker(t);
    const tr = transport(t, `nsq://${b.tcpAddress}`);
    const topic = uniqueName('nsq');
    const held: Delivery[] = [];
    const sub = await tr.subscribe(topic, 'c', { maxInFlight: 2 }, (d) => held.push(d));
    t.after(() => sub.close());
    await tr.publish(topic, Array.from({ length: 8 }, (_, i) => ({ body: enc(String(i)) })));
    await waitFor(() => held.length === 2, 'two');
    sub.setMaxInFlight(5);
    await waitFor(() => held.length === 5, 'five after raising');
    sub.setMaxInFlight(1);
    for (const d of held.splice(0)) d.ack();
    await waitFor(() => held.length === 1, 'one after lowering');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(held.length, 1);
    assert.throws(() => sub.setMaxInFlight(0), { code: 'ERR_BAD_OPTIONS' });
    held.splice(0)[0]!.ack();
    await waitFor(() => held.length === 1, 'the next one');
    held.splice(0)[0]!.ack();
  });

  test('channels fan out; two subscribers share a channel; close returns in-flight', async (t) => {
    const b = await broker(t);
    const tr = transport(t, `nsq://${b.tcpAddress}`);
    const topic = uniqueName('nsq');
    const counts = { a1: 0, a2: 0, b: 0 };
    const on = (key: keyof typeof counts) => (d: Delivery) => {
      counts[key]++;
      d.ack();
    };
    const subs = [
      await tr.subscribe(topic, 'a', { maxInFlight: 2 }, on('a1')),
      await tr.subscribe(topic, 'a', { maxInFlight: 2 }, on('a2')),
      await tr.subscribe(topic, 'b', { maxInFlight: 10 }, on('b')),
    ];
    t.after(() => Promise.all(subs.map((s) => s.close())));
    await tr.publish(topic, Array.from({ length: 50 }, (_, i) => ({ body: enc(String(i)) })));
    await waitFor(() => counts.a1 + counts.a2 === 50 && counts.b === 50, 'fan-out');
    assert.ok(counts.a1 > 0 && counts.a2 > 0, JSON.stringify(counts));

    const kept: Delivery[] = [];
    const holder = await tr.subscribe(topic, 'h', { maxInFlight: 1 }, (d) => kept.push(d));
    await tr.publish(topic, [{ id: 'back', body: enc('x') }]);
    await waitFor(() => kept.length === 1, 'held');
    await holder.close();
    kept[0]!.ack(); // ignored: it went back with the close
    const again: Delivery[] = [];
    const next = await tr.subscribe(topic, 'h', { maxInFlight: 1 }, (d) => {
      again.push(d);
      d.ack();
    });
    t.after(() => next.close());
    await waitFor(() => again.length === 1, 'redelivered after close');
    assert.equal(again[0]!.id, 'back');
    assert.equal(again[0]!.attempts, 2);
  });

  test('a consumer reconnects after its connection drops', async (t) => {
    const b = await broker(t);
    const proxy = await tcpProxy(t, b.tcpAddress);
    const tr = transport(t, `nsq://${proxy.address}?reconnectMinMs=20&reconnectMaxMs=100`);
    const topic = uniqueName('nsq');
    const got: string[] = [];
    const sub = await tr.subscribe(topic, 'c', { maxInFlight: 5 }, (d) => {
      got.push(dec(d.body));
      d.ack();
    });
    t.after(() => sub.close());
    await tr.publish(topic, [{ body: enc('before') }]);
    await waitFor(() => got.length === 1, 'first');
    proxy.dropAll();
    // The publisher redials on its next publish; the consumer redials with backoff and SUBs again.
    await waitFor(
      () => tr.publish(topic, [{ body: enc('after') }]).then(() => true, () => false),
      'a publish after the drop',
      5000,
      50,
    );
    await waitFor(() => got.includes('after'), 'delivery after reconnect', 5000);
  });

  test('RDY over several nsqd: one slot rotates so no nsqd starves, never two in flight', async (t) => {
    const [b1, b2] = [await broker(t), await broker(t)];
    const both = transport(t, `nsq://${b1.tcpAddress}?nsqd=${b2.tcpAddress}&rdyRedistributeMs=50`);
    const topic = uniqueName('nsq');
    const held: Delivery[] = [];
    const seen: string[] = [];
    let peak = 0;
    const sub = await both.subscribe(topic, 'c', { maxInFlight: 1 }, (d) => {
      held.push(d);
      seen.push(dec(d.body));
      peak = Math.max(peak, held.length);
      setTimeout(() => {
        held.splice(held.indexOf(d), 1);
        d.ack();
      }, 5);
    });
    t.after(() => sub.close());
    await transport(t, `nsq://${b1.tcpAddress}`).publish(topic, [{ body: enc('one-a') }, { body: enc('one-b') }]);
    await transport(t, `nsq://${b2.tcpAddress}`).publish(topic, [{ body: enc('two-a') }, { body: enc('two-b') }]);
    await waitFor(() => seen.length === 4, 'all four from both nsqd', 5000);
    assert.deepEqual([...seen].sort(), ['one-a', 'one-b', 'two-a', 'two-b']);
    assert.equal(peak, 1);
  });

  test('nsqlookup:// finds the nsqd of a topic through /lookup and publishes via /nodes', async (t) => {
    const b = await broker(t);
    const [host, port] = b.tcpAddress.split(':') as [string, string];
    let lookups = 0;
    let listed = false;
    const lookupd: Server = createServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      const producer = { broadcast_address: host, hostname: 'embedded', tcp_port: Number(port), http_port: 0, version: '1.3.0' };
      if (url.pathname === '/lookup') {
        lookups++;
        if (!listed) {
          res.writeHead(404).end('{"message":"TOPIC_NOT_FOUND"}');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ channels: [], producers: [producer] }));
      } else if (url.pathname === '/nodes') {
        // The old wrapped shape, to check both are read.
        res.writeHead(200).end(JSON.stringify({ status_code: 200, status_txt: 'OK', data: { producers: [producer] } }));
      } else res.writeHead(404).end();
    });
    await new Promise<void>((r) => lookupd.listen(0, '127.0.0.1', r));
    t.after(() => new Promise<void>((r) => lookupd.close(() => r())));
    const address = lookupd.address() as { port: number };
    const tr = transport(t, `nsqlookup://127.0.0.1:${address.port}?lookupIntervalMs=50`);
    const topic = uniqueName('nsq');
    const got: string[] = [];
    const sub = await tr.subscribe(topic, 'c', { maxInFlight: 5 }, (d) => {
      got.push(dec(d.body));
      d.ack();
    });
    t.after(() => sub.close());
    await tr.publish(topic, [{ body: enc('via-nodes') }]);
    listed = true;
    await waitFor(() => got.length === 1, 'discovered and delivered', 5000);
    assert.equal(got[0], 'via-nodes');
    assert.ok(lookups >= 2);
  });

  test('connect() picks this adapter for nsq:// and nsqlookup://', async (t) => {
    const b = await broker(t);
    const direct = await connect(`nsq://${b.tcpAddress}`);
    t.after(() => direct.close());
    assert.ok(direct instanceof NsqTransport);
    assert.equal(direct.kind, 'nsq');
    const viaLookup = await connect('nsqlookup://127.0.0.1:4161');
    t.after(() => viaLookup.close());
    assert.equal(viaLookup.kind, 'nsqlookup');
  });

  test('bad input is a typed error; close is idempotent and final', async (t) => {
    const b = await broker(t);
    const tr = transport(t, `nsq://${b.tcpAddress}`);
    await assert.rejects(tr.publish('bad topic', [{ body: enc('x') }]), { code: 'ERR_BAD_NAME' });
    await assert.rejects(tr.subscribe('ok', 'bad/c', { maxInFlight: 1 }, () => {}), { code: 'ERR_BAD_NAME' });
    await assert.rejects(tr.subscribe('ok', 'c', { maxInFlight: 0 }, () => {}), { code: 'ERR_BAD_OPTIONS' });
    await assert.rejects(tr.subscribe('ok', 'c', { maxInFlight: 1, timeoutMs: 0.5 }, () => {}), { code: 'ERR_BAD_OPTIONS' });
    // Below nsqd's 1 s floor: clamped, not refused (nsqd would drop the connection).
    await (await tr.subscribe('ok', 'c', { maxInFlight: 1, timeoutMs: 10 }, () => {})).close();
    const unreachable = transport(t, 'nsq://127.0.0.1:1?connectTimeoutMs=500');
    await assert.rejects(unreachable.publish('ok', [{ body: enc('x') }]), { code: 'ERR_TRANSPORT' });
    await assert.rejects(unreachable.subscribe('ok', 'c', { maxInFlight: 1 }, () => {}), { code: 'ERR_TRANSPORT' });
    await tr.close();
    await tr.close();
    await assert.rejects(tr.publish('ok', [{ body: enc('x') }]), { code: 'ERR_CLOSED' });
    assert.ok(encodeEnvelope(enc('x'), { a: 'b' }).length > 1);
  });
});

/** A TCP proxy to `target` whose `dropAll()` cuts every connection through it (a network drop). */
async function tcpProxy(t: TestContext, target: string): Promise<{ address: string; dropAll(): void }> {
  const [host, port] = target.split(':') as [string, string];
  const sockets = new Set<Socket>();
  const server = createNetServer((client) => {
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

/** A real nsqd, when one is given (none runs on the development machine). */
const NSQD_URL = process.env.NSQD_URL;

describe('nsq:// against a real nsqd', { skip: NSQD_URL ? false : 'no nsqd: set NSQD_URL (nsq://host:4150)' }, () => {
  test('publish (PUB, MPUB, DPUB) → subscribe, envelope headers, REQ, FIN', async (t) => {
    const tr = transport(t, NSQD_URL!);
    const topic = uniqueName('nsq');
    const got: Delivery[] = [];
    const sub = await tr.subscribe(topic, 'c', { maxInFlight: 10, timeoutMs: 5000 }, (d) => {
      got.push(d);
      if (d.id === 'again' && d.attempts === 1) d.nack(50);
      else d.ack();
    });
    t.after(() => sub.close());
    await tr.publish(topic, [{ id: 'one', body: enc('1'), headers: { h: 'v' } }]);
    await tr.publish(topic, [
      { id: 'again', body: enc('2') },
      { id: 'late', body: enc('3'), delayMs: 100 },
    ]);
    await waitFor(() => got.length === 4, 'four deliveries', 10_000);
    assert.deepEqual({ ...got.find((d) => d.id === 'one')!.headers }, { h: 'v' });
    assert.equal(got.filter((d) => d.id === 'again').length, 2);
  });
});
