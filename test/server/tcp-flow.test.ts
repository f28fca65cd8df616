/**
 * Delivery over TCP: RDY flow control, in-flight timeouts and TOUCH, fan-out and load sharing,
 * heartbeats and the two-interval read deadline, and in-process headers on the wire.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as net from 'node:net';
import { test } from 'node:test';
import { decodeEnvelope } from '../../src/core/envelope.ts';
import { Engine } from '../../src/engine/index.ts';
import { uniqueName } from '../helpers/index.ts';
import { client, identify, sleep, subscribe, testBroker } from './helpers.ts';
import { cmd, mpubBody } from './wire.ts';

test('never more in flight than RDY; FIN opens room; RDY 0 stops delivery', async (t) => {
  const broker = await testBroker(t);
  const topic = uniqueName();
  const p = await client(t, broker);
  p.write(cmd(`MPUB ${topic}`, mpubBody(Array.from({ length: 50 }, (_, i) => `m${i}`))));
  assert.equal(await p.response(), 'OK');
  const c = await client(t, broker);
  await subscribe(c, topic, 'ch', 5);
  const first = [];
  for (let i = 0; i < 5; i++) first.push(await c.message());
  assert.equal(await c.quiet(100), true, 'a sixth message arrived with RDY 5');
  c.write(Buffer.concat([cmd(`FIN ${first[0]!.id}`), cmd(`FIN ${first[1]!.id}`)]));
  await c.message();
  await c.message();
  assert.equal(await c.quiet(100), true, 'more than two arrived after two FINs');
  const stats: any = await (await fetch(`http://${broker.httpAddress}/stats?format=json&topic=${topic}`)).json();
  const channel = stats.topics[0].channels[0];
  assert.equal(channel.in_flight_count, 5);
  assert.equal(channel.clients[0].ready_count, 5);
  assert.equal(channel.clients[0].in_flight_count, 5);
  assert.equal(channel.clients[0].finish_count, 2);
  c.write(cmd('RDY 0'));
  for (const m of first.slice(2)) c.write(cmd(`FIN ${m.id}`));
  assert.equal(await c.quiet(150), true, 'delivered with RDY 0');
});

test('an unfinished message times out after msg_timeout and is redelivered; TOUCH postpones it', async (t) => {
  const broker = await testBroker(t);
  const topic = uniqueName();
  const c = await client(t, broker);
  await identify(c, { msg_timeout: 1000 });
  await subscribe(c, topic, 'ch', 2);
  const p = await client(t, broker);
  p.write(cmd(`MPUB ${topic}`, mpubBody(['touched', 'left'])));
  assert.equal(await p.response(), 'OK');
  const a = await c.message();
  const b = await c.message();
  const touched = a.body.toString() === 'touched' ? a : b;
  const left = touched === a ? b : a;
  const start = Date.now();
  await sleep(600);
  c.write(cmd(`TOUCH ${touched.id}`));
  const again = await c.message(2500);
  assert.equal(again.id, left.id, 'the untouched message times out first');
  assert.equal(again.attempts, 2);
  const elapsed = Date.now() - start;
  assert.ok(elapsed >= 900, `redelivered after ${elapsed} ms, before its 1000 ms timeout`);
  const later = await c.message(2500);
  assert.equal(later.id, touched.id, 'the touched one times out too, later');
  assert.ok(Date.now() - start >= 1500, 'TOUCH restarted the timeout');
  const stats: any = await (await fetch(`http://${broker.httpAddress}/stats?format=json&topic=${topic}`)).json();
  assert.ok(stats.topics[0].channels[0].timeout_count >= 2);
});

test('every channel gets every message; the clients of one channel share them', async (t) => {
  const broker = await testBroker(t);
  const topic = uniqueName();
  const shareA = await client(t, broker);
  const shareB = await client(t, broker);
  const other = await client(t, broker);
  await subscribe(shareA, topic, 'shared', 100);
  await subscribe(shareB, topic, 'shared', 100);
  await subscribe(other, topic, 'other', 100);
  const p = await client(t, broker);
  p.write(cmd(`MPUB ${topic}`, mpubBody(Array.from({ length: 20 }, (_, i) => `m${i}`))));
  assert.equal(await p.response(), 'OK');
  const seenOther = new Set<string>();
  for (let i = 0; i < 20; i++) seenOther.add((await other.message()).body.toString());
  assert.equal(seenOther.size, 20);
  await sleep(100);
  const shared = [...shareA.frames, ...shareB.frames].filter((f) => f.type === 2);
  assert.equal(shared.length, 20, 'each message went to exactly one client of the shared channel');
});

test('heartbeats at the negotiated interval; a client silent for two intervals is dropped', async (t) => {
  const broker = await testBroker(t);
  const polite = await client(t, broker);
  const silent = await client(t, broker);
  silent.answerHeartbeats = false;
  await identify(polite, { heartbeat_interval: 1000 });
  await identify(silent, { heartbeat_interval: 1000 });
  const start = Date.now();
  const beat = await polite.next(2500, { heartbeats: true });
  assert.equal(beat.data.toString(), '_heartbeat_');
  assert.ok(Date.now() - start >= 900, 'heartbeat came too early');
  assert.equal(await silent.waitClosed(3500), true, 'the silent client was not dropped');
  const dropped = Date.now() - start;
  assert.ok(dropped >= 1900, `dropped after ${dropped} ms, before two intervals`);
  assert.equal(polite.closed, false, 'a client that answers heartbeats stays');
});

test('messages published in-process with headers reach TCP clients in an envelope', async (t) => {
  const broker = await testBroker(t);
  const topic = uniqueName();
  const c = await client(t, broker);
  await subscribe(c, topic, 'ch', 2);
  broker.engine.topic(topic).publish([
    { body: Buffer.from('with'), headers: { 'content-type': 'application/json', trace: 'abc' } },
    { body: Buffer.from('plain') },
  ]);
  const first = await c.message();
  const decoded = decodeEnvelope(first.body);
  assert.deepEqual(decoded.headers, { 'content-type': 'application/json', trace: 'abc' });
  assert.equal(Buffer.from(decoded.body).toString(), 'with');
  const second = await c.message();
  assert.equal(second.body.toString(), 'plain', 'a body without headers goes out untouched');
});

test('closing a consumer connection requeues its in-flight messages at once', async (t) => {
  const broker = await testBroker(t);
  const topic = uniqueName();
  const first = await client(t, broker);
  await subscribe(first, topic, 'ch', 1);
  const p = await client(t, broker);
  p.write(cmd(`PUB ${topic}`, 'survivor'));
  assert.equal(await p.response(), 'OK');
  const m = await first.message();
  first.close();
  const second = await client(t, broker);
  await subscribe(second, topic, 'ch', 1);
  const again = await second.message(1000);
  assert.equal(again.id, m.id);
  assert.equal(again.attempts, 2);
});

test('deleting a channel closes its subscribed clients, as nsqd does', async (t) => {
  const broker = await testBroker(t);
  const topic = uniqueName();
  const c = await client(t, broker);
  await subscribe(c, topic, 'doomed', 1);
  const res = await fetch(`http://${broker.httpAddress}/channel/delete?topic=${topic}&channel=doomed`, { method: 'POST' });
  assert.equal(res.status, 200);
  assert.equal(await c.waitClosed(), true);
});

test('IDENTIFY sample_rate delivers about that percentage; the rest are gone for the channel', async (t) => {
  const broker = await testBroker(t);
  const topic = uniqueName();
  const c = await client(t, broker);
  assert.equal((await identify(c, { sample_rate: 20 })).sample_rate, 20);
  await subscribe(c, topic, 'ch', 2500);
  const p = await client(t, broker);
  p.write(cmd(`MPUB ${topic}`, mpubBody(Array.from({ length: 1000 }, (_, i) => `m${i}`))));
  assert.equal(await p.response(), 'OK');
  await sleep(300);
  const got = c.frames.filter((f) => f.type === 2).length;
  assert.ok(got > 100 && got < 350, `${got} of 1000 delivered at sample_rate 20`);
  const stats: any = await (await fetch(`http://${broker.httpAddress}/stats?format=json&topic=${topic}`)).json();
  const ch = stats.topics[0].channels[0];
  assert.equal(ch.depth, 0);
  assert.equal(ch.in_flight_count, got, 'only the sampled messages are in flight');
});

test('broker.close() flushes and closes connected clients and requeues their in-flight messages', async (t) => {
  const engine = new Engine();
  t.after(() => engine.close());
  const broker = await testBroker(t, { engine });
  const topic = uniqueName();
  const c = await client(t, broker);
  await subscribe(c, topic, 'ch', 1);
  const p = await client(t, broker);
  p.write(cmd(`PUB ${topic}`, 'held'));
  assert.equal(await p.response(), 'OK');
  await c.message();
  const start = Date.now();
  await broker.close();
  assert.ok(Date.now() - start < 1500, 'close took too long');
  assert.equal(await c.waitClosed(500), true);
  assert.equal(await p.waitClosed(500), true);
  const channel = engine.getTopic(topic)!.getChannel('ch')!;
  assert.equal(channel.stats().in_flight_count, 0);
  assert.equal(channel.stats().depth, 1, 'the in-flight message went back to the channel');
});

test('a consumer whose socket dies while deliveries stream in: the broker stays up and requeues', async (t) => {
  // Once the peer resets, the socket is destroyed before its 'close' event: deliveries that come
  // in between once wrote past the end of the output buffer and crashed the broker (found with
  // nsq's bench_reader, which closes its connections mid-stream).
  const broker = await testBroker(t);
  const topic = uniqueName();
  const body = 'x'.repeat(1000);
  const p = await client(t, broker);
  for (let i = 0; i < 10; i++) {
    p.write(cmd(`MPUB ${topic}`, mpubBody(Array.from({ length: 1000 }, () => body))));
    assert.equal(await p.response(), 'OK');
  }
  for (let round = 0; round < 5; round++) {
    // A consumer that FINs what it gets (so the broker keeps delivering), then resets mid-stream.
    const doomed = net.connect(Number(broker.tcpAddress.split(':')[1]), '127.0.0.1');
    await once(doomed, 'connect');
    doomed.write(Buffer.concat([Buffer.from('  V2'), cmd(`SUB ${topic} ch`), cmd('RDY 2500')]));
    let pending = Buffer.alloc(0);
    let frames = 0;
    await new Promise<void>((resolve) => {
      doomed.on('data', (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        const fins: Buffer[] = [];
        while (pending.length >= 8 && pending.length >= 4 + pending.readUInt32BE(0)) {
          const size = pending.readUInt32BE(0);
          if (pending.readUInt32BE(4) === 2) fins.push(cmd(`FIN ${pending.toString('latin1', 18, 34)}`));
          pending = pending.subarray(4 + size);
          frames++;
        }
        if (fins.length > 0 && !doomed.destroyed) doomed.write(Buffer.concat(fins));
        if (frames > 1500 && !doomed.destroyed) {
          doomed.resetAndDestroy();
          resolve();
        }
      });
    });
    await sleep(20);
  }
  const c = await client(t, broker);
  await subscribe(c, topic, 'ch', 2500);
  const stats: any = await (await fetch(`http://${broker.httpAddress}/stats?format=json&topic=${topic}`)).json();
  const left = stats.topics[0].channels[0].depth + stats.topics[0].channels[0].in_flight_count;
  assert.ok(left > 0 && left < 10_000, `${left} left after the doomed consumers`);
  const seen = new Set<string>();
  while (seen.size < left) {
    const m = await c.message(5000);
    seen.add(m.id);
    c.write(cmd(`FIN ${m.id}`));
  }
  assert.equal(seen.size, left);
});
