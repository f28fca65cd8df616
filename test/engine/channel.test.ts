import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bodies, collect, firstBytes, makeEngine, settle, sleep } from './helpers.ts';

describe('engine channel', () => {
  test('consumers of one channel share its messages round robin', async (t) => {
    const engine = makeEngine(t);
    const topic = engine.topic('lb');
    const ch = topic.channel('c');
    const a = collect(ch, 100, { autoFinish: true });
    const b = collect(ch, 100, { autoFinish: true });
    const c = collect(ch, 100, { autoFinish: true });
    topic.publish(bodies(...Array.from({ length: 30 }, (_, i) => i)));
    await settle();
    assert.equal(a.got.length + b.got.length + c.got.length, 30);
    assert.deepEqual([a.got.length, b.got.length, c.got.length], [10, 10, 10]);
    const all = [...a.got, ...b.got, ...c.got].map((m) => m.body[0]).sort((x, y) => x! - y!);
    assert.deepEqual(all, Array.from({ length: 30 }, (_, i) => i));
  });

  test('a consumer with no capacity is skipped', async (t) => {
    const engine = makeEngine(t);
    const topic = engine.topic('skip');
    const ch = topic.channel('c');
    const full = collect(ch, 1);
    const free = collect(ch, 100);
    topic.publish(bodies(1, 2, 3, 4));
    await settle();
    assert.equal(full.got.length, 1);
    assert.equal(free.got.length, 3);
  });

  test('RDY bounds in flight and is never exceeded; finishing lets more through in order', async (t) => {
    const engine = makeEngine(t);
    const topic = engine.topic('rdy');
    const ch = topic.channel('c');
    const c = collect(ch, 3);
    topic.publish(bodies(...Array.from({ length: 10 }, (_, i) => i)));
    await settle();
    assert.equal(c.got.length, 3);
    assert.equal(c.consumer.inFlight, 3);
    assert.equal(ch.stats().depth, 7);
    for (let round = 0; round < 10 && c.got.length < 10; round++) {
      for (const m of c.got.slice(-c.consumer.inFlight)) c.consumer.finish(m.id);
      await settle();
    }
    assert.deepEqual(firstBytes(c.got), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(c.maxInFlight, 3);
  });

  test('RDY 0 stops delivery; raising it resumes', async (t) => {
    const engine = makeEngine(t);
    const topic = engine.topic('rdy0');
    const ch = topic.channel('c');
    const c = collect(ch, 0, { autoFinish: true });
    topic.publish(bodies(1, 2));
    await settle();
    assert.equal(c.got.length, 0);
    c.consumer.setReady(5);
    await settle();
    assert.deepEqual(firstBytes(c.got), [1, 2]);
    c.consumer.setReady(0);
    topic.publish(bodies(3));
    await settle();
    assert.equal(c.got.length, 2);
    assert.throws(() => c.consumer.setReady(engine.options.maxRdyCount + 1), { code: 'ERR_BAD_OPTIONS' });
    assert.throws(() => c.consumer.setReady(-1), { code: 'ERR_BAD_OPTIONS' });
    assert.throws(() => c.consumer.setReady(1.5), { code: 'ERR_BAD_OPTIONS' });
  });

  test('FIN, REQ and TOUCH fail for a message the consumer does not hold', async (t) => {
    const engine = makeEngine(t);
    const topic = engine.topic('owner');
    const ch = topic.channel('c');
    const a = collect(ch, 1);
    const b = collect(ch, 0);
    topic.publish(bodies(1));
    await settle();
    const id = a.got[0]!.id;
    assert.equal(b.consumer.finish(id), false);
    assert.equal(b.consumer.requeue(id, 0), false);
    assert.equal(b.consumer.touch(id), false);
    assert.equal(a.consumer.finish('0000000000000000'), false);
    assert.equal(a.consumer.finish(id), true);
    assert.equal(a.consumer.finish(id), false, 'a second FIN fails');
    assert.equal(a.consumer.touch(id), false);
  });

  test('REQ 0 puts the message back at once with attempts + 1 and counts it', async (t) => {
    const engine = makeEngine(t);
    const topic = engine.topic('req0');
    const ch = topic.channel('c');
    const c = collect(ch, 1);
    topic.publish(bodies(1, 2));
    await settle();
    assert.equal(c.got[0]!.attempts, 1);
    assert.equal(c.consumer.requeue(c.got[0]!.id, 0), true);
    await settle();
    assert.deepEqual(firstBytes(c.got), [1, 2], 'requeued to the back of the queue');
    c.consumer.finish(c.got[1]!.id);
    await settle();
    assert.deepEqual(firstBytes(c.got), [1, 2, 1]);
    assert.equal(c.got[2]!.attempts, 2);
    assert.equal(ch.stats().requeue_count, 1);
  });

  test('REQ with a delay defers the message, capped by maxReqTimeoutMs', async (t) => {
    const engine = makeEngine(t, { maxReqTimeoutMs: 40 });
    const topic = engine.topic('reqd');
    const ch = topic.channel('c');
    const c = collect(ch, 1);
    topic.publish(bodies(1));
    await settle();
    const start = Date.now();
    c.consumer.requeue(c.got[0]!.id, 10 * 60_000);
    assert.equal(ch.stats().deferred_count, 1);
    await settle();
    assert.equal(c.got.length, 1);
    while (c.got.length < 2) await sleep(5);
    const waited = Date.now() - start;
    assert.ok(waited >= 40 && waited < 5_000, `redelivered after ${waited} ms`);
    assert.equal(c.got[1]!.attempts, 2);
    assert.equal(ch.stats().deferred_count, 0);
  });

  test('an unacked message times out and is redelivered with attempts + 1', async (t) => {
    const engine = makeEngine(t);
    const topic = engine.topic('timeout');
    const ch = topic.channel('c');
    const c = collect(ch, 1, { msgTimeoutMs: 30 });
    topic.publish(bodies(1));
    await settle();
    assert.equal(c.got.length, 1);
    while (c.got.length < 2) await sleep(5);
    assert.equal(c.got[1]!.id, c.got[0]!.id);
    assert.equal(c.got[1]!.attempts, 2);
    assert.equal(ch.stats().timeout_count, 1);
    assert.equal(c.consumer.finish(c.got[1]!.id), true);
  });

  test('touch restarts the timeout, so a touched message does not time out', async (t) => {
    const engine = makeEngine(t);
    const topic = engine.topic('touch');
    const ch = topic.channel('c');
    const c = collect(ch, 1, { msgTimeoutMs: 60 });
    topic.publish(bodies(1));
    await settle();
    const id = c.got[0]!.id;
    for (let i = 0; i < 6; i++) {
      await sleep(25);
      assert.equal(c.consumer.touch(id), true);
    }
    assert.equal(c.got.length, 1, 'still the first delivery after 150 ms with a 60 ms timeout');
    assert.equal(ch.stats().timeout_count, 0);
    while (c.got.length < 2) await sleep(5);
    assert.equal(ch.stats().timeout_count, 1);
  });

  test('touch with its own timeout, capped by maxMsgTimeoutMs from delivery', async (t) => {
    const engine = makeEngine(t, { maxMsgTimeoutMs: 80, msgTimeoutMs: 20 });
    const topic = engine.topic('touchx');
    const ch = topic.channel('c');
    const c = collect(ch, 2);
    topic.publish(bodies(1, 2));
    await settle();
    const start = Date.now();
    assert.equal(c.consumer.touch(c.got[0]!.id, 10_000), true);
    assert.throws(() => c.consumer.touch(c.got[0]!.id, Number.NaN), { code: 'ERR_BAD_OPTIONS' });
    // The untouched one times out at ~20 ms, the touched one at the 80 ms cap, not 10 s.
    while (c.got.length < 3) await sleep(5);
    assert.equal(c.got[2]!.body[0], 2);
    c.consumer.finish(c.got[2]!.id);
    while (c.got.length < 4) await sleep(5);
    assert.equal(c.got[3]!.body[0], 1);
    const waited = Date.now() - start;
    assert.ok(waited >= 70 && waited < 5_000, `capped touch timed out after ${waited} ms`);
  });

  test('consumer msgTimeoutMs is capped by maxMsgTimeoutMs and validated', (t) => {
    const engine = makeEngine(t, { maxMsgTimeoutMs: 100, msgTimeoutMs: 50 });
    const ch = engine.topic('capped').channel('c');
    assert.throws(() => ch.subscribe({ deliver() {} }, { msgTimeoutMs: 0 }), { code: 'ERR_BAD_OPTIONS' });
    assert.doesNotThrow(() => ch.subscribe({ deliver() {} }, { msgTimeoutMs: 10_000 }));
  });

  test('closing a consumer requeues its in-flight messages at once to the others', async (t) => {
    const engine = makeEngine(t);
    const topic = engine.topic('leave');
    const ch = topic.channel('c');
    const a = collect(ch, 2);
    topic.publish(bodies(1, 2));
    await settle();
    const b = collect(ch, 10);
    await settle();
    assert.equal(b.got.length, 0);
    a.consumer.close();
    a.consumer.close();
    await settle();
    assert.deepEqual(firstBytes(b.got), [1, 2]);
    assert.deepEqual(
      b.got.map((m) => m.attempts),
      [2, 2],
    );
    assert.equal(ch.stats().client_count, 1);
    assert.equal(a.consumer.finish(a.got[0]!.id), false);
  });

  test('pause holds delivery, in-flight can still be settled; unpause resumes', async (t) => {
    const engine = makeEngine(t);
    const topic = engine.topic('chpause');
    const ch = topic.channel('c');
    const c = collect(ch, 10);
    topic.publish(bodies(1));
    await settle();
    ch.pause();
    topic.publish(bodies(2));
    await settle();
    assert.equal(c.got.length, 1);
    assert.equal(ch.stats().paused, true);
    assert.equal(c.consumer.finish(c.got[0]!.id), true);
    ch.unpause();
    await settle();
    assert.deepEqual(firstBytes(c.got), [1, 2]);
  });

  test('empty drops queued and deferred messages, not in-flight ones', async (t) => {
    const engine = makeEngine(t);
    const topic = engine.topic('chempty');
    const ch = topic.channel('c');
    const c = collect(ch, 1);
    topic.publish([...bodies(1, 2, 3), { body: Uint8Array.of(4), delayMs: 10_000 }]);
    await settle();
    assert.equal(ch.stats().depth, 2);
    assert.equal(ch.stats().deferred_count, 1);
    ch.empty();
    const s = ch.stats();
    assert.equal(s.depth, 0);
    assert.equal(s.deferred_count, 0);
    assert.equal(s.in_flight_count, 1);
    assert.equal(c.consumer.finish(c.got[0]!.id), true);
    await settle();
    assert.equal(c.got.length, 1);
  });

  test('#ephemeral channel: bounded memory, overflow dropped and counted, deleted with its last consumer', async (t) => {
    const engine = makeEngine(t, { memQueueSize: 3 });
    const topic = engine.topic('ephch');
    const ch = topic.channel('live#ephemeral');
    topic.publish(bodies(1, 2, 3, 4, 5));
    const s = ch.stats();
    assert.equal(s.depth, 3);
    assert.equal(s.backend_depth, 0);
    assert.equal(s.dropped_count, 2);
    const a = collect(ch, 10);
    const b = collect(ch, 10);
    await settle();
    assert.equal(a.got.length + b.got.length, 3);
    a.consumer.close();
    assert.equal(topic.getChannel('live#ephemeral'), ch, 'one consumer left');
    b.consumer.close();
    await settle();
    assert.equal(topic.getChannel('live#ephemeral'), undefined);
    assert.equal(engine.getTopic('ephch'), topic, 'a normal topic stays');
    assert.throws(() => ch.subscribe({ deliver() {} }), { code: 'ERR_CLOSED' });
  });

  test('#ephemeral channel with memQueueSize 0 still keeps up to maxRdyCount', (t) => {
    const engine = makeEngine(t, { memQueueSize: 0, maxRdyCount: 2 });
    const topic = engine.topic('eph0');
    const ch = topic.channel('x#ephemeral');
    topic.publish(bodies(1, 2, 3));
    assert.equal(ch.stats().depth, 2);
    assert.equal(ch.stats().dropped_count, 1);
  });

  test('delete detaches consumers and drops everything', async (t) => {
    const engine = makeEngine(t);
    const topic = engine.topic('chdel');
    const ch = topic.channel('c');
    const c = collect(ch, 1);
    topic.publish(bodies(1, 2));
    await settle();
    await topic.deleteChannel('c');
    assert.equal(c.detached, true);
    assert.equal(c.consumer.finish(c.got[0]!.id), false);
    assert.equal(ch.closed, true);
    topic.publish(bodies(3));
    await settle();
    assert.equal(c.got.length, 1);
  });

  test('stats count requeues, timeouts, in flight and clients', async (t) => {
    const engine = makeEngine(t);
    const topic = engine.topic('chstats');
    const ch = topic.channel('c');
    const c = collect(ch, 3, { msgTimeoutMs: 20 });
    topic.publish(bodies(1, 2, 3, 4));
    await settle();
    c.consumer.requeue(c.got[0]!.id, 5_000);
    c.consumer.finish(c.got[1]!.id);
    await settle();
    let s = ch.stats();
    assert.equal(s.message_count, 4);
    assert.equal(s.requeue_count, 1);
    assert.equal(s.deferred_count, 1);
    assert.equal(s.in_flight_count, 2);
    assert.equal(s.depth, 0);
    assert.equal(s.client_count, 1);
    while (ch.stats().timeout_count < 2) await sleep(5);
    s = ch.stats();
    assert.equal(s.timeout_count, 2);
  });
});
