import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConveyorError } from '../../src/core/errors.ts';
import { bodies, collect, firstBytes, makeEngine, settle } from './helpers.ts';

describe('engine topic', () => {
  test('fan-out: every channel gets every message, as its own object sharing the body', async (t) => {
    const engine = makeEngine(t);
    const topic = engine.topic('fan');
    const a = collect(topic.channel('a'), 10);
    const b = collect(topic.channel('b'), 10);
    topic.publish(bodies(1, 2, 3));
    await settle();
    assert.deepEqual(firstBytes(a.got), [1, 2, 3]);
    assert.deepEqual(firstBytes(b.got), [1, 2, 3]);
    for (let i = 0; i < 3; i++) {
      assert.notEqual(a.got[i], b.got[i]);
      assert.equal(a.got[i]!.id, b.got[i]!.id);
      assert.equal(a.got[i]!.body, b.got[i]!.body);
    }
  });

  test('a topic with no channels keeps its messages for the first channel', async (t) => {
    const engine = makeEngine(t);
    const topic = engine.topic('buffer');
    topic.publish(bodies(1, 2));
    assert.equal(topic.stats().depth, 2);
    const first = topic.channel('first');
    assert.equal(topic.stats().depth, 0);
    assert.equal(first.stats().depth, 2);
    const later = topic.channel('later');
    topic.publish(bodies(3));
    const c1 = collect(first, 10);
    const c2 = collect(later, 10);
    await settle();
    assert.deepEqual(firstBytes(c1.got), [1, 2, 3]);
    assert.deepEqual(firstBytes(c2.got), [3], 'a channel added to a topic with channels sees only new messages');
  });

  test('paused topic accepts publishes and pumps nothing until unpaused, in order', async (t) => {
    const engine = makeEngine(t);
    const topic = engine.topic('paused');
    const c = collect(topic.channel('c'), 100);
    topic.pause();
    topic.publish(bodies(1, 2));
    await settle();
    assert.equal(c.got.length, 0);
    assert.equal(topic.stats().depth, 2);
    assert.equal(topic.stats().paused, true);
    topic.unpause();
    topic.publish(bodies(3));
    await settle();
    assert.deepEqual(firstBytes(c.got), [1, 2, 3]);
  });

  test('topic empty drops what the topic holds', (t) => {
    const engine = makeEngine(t);
    const topic = engine.topic('emptied');
    topic.publish(bodies(1, 2, 3));
    topic.empty();
    assert.equal(topic.stats().depth, 0);
    assert.equal(topic.channel('c').stats().depth, 0);
  });

  test('publish is all or nothing: an oversize message rejects the whole batch', (t) => {
    const engine = makeEngine(t, { maxMsgSize: 4 });
    const topic = engine.topic('big');
    const ch = topic.channel('c');
    assert.throws(
      () => topic.publish([{ body: new Uint8Array(4) }, { body: new Uint8Array(5) }]),
      (err: unknown) => err instanceof ConveyorError && err.code === 'ERR_TOO_LARGE' && /maxMsgSize 4/.test(err.message),
    );
    assert.equal(ch.stats().depth, 0);
    assert.equal(topic.stats().message_count, 0);
    assert.throws(() => topic.publish([{ body: 'text' as never }]), { code: 'ERR_BAD_OPTIONS' });
    assert.throws(() => topic.publish([{ body: new Uint8Array(1), delayMs: -1 }]), { code: 'ERR_BAD_OPTIONS' });
    assert.throws(() => topic.publish([{ body: new Uint8Array(1), delayMs: engine.options.maxReqTimeoutMs + 1 }]), {
      code: 'ERR_BAD_OPTIONS',
    });
  });

  test('stats: message_count, message_bytes, depth and per-channel figures', async (t) => {
    const engine = makeEngine(t);
    const topic = engine.topic('stats');
    topic.publish([{ body: new Uint8Array(10) }, { body: new Uint8Array(5) }]);
    const ch = topic.channel('c');
    topic.publish([{ body: new Uint8Array(1) }]);
    const c = collect(ch, 2);
    await settle();
    const [stats] = engine.stats();
    assert.equal(stats!.topic_name, 'stats');
    assert.equal(stats!.message_count, 3);
    assert.equal(stats!.message_bytes, 16);
    assert.equal(stats!.depth, 0);
    assert.equal(stats!.backend_depth, 0);
    assert.equal(stats!.paused, false);
    assert.deepEqual(stats!.channels, [
      {
        channel_name: 'c',
        depth: 1,
        backend_depth: 0,
        in_flight_count: 2,
        deferred_count: 0,
        message_count: 3,
        requeue_count: 0,
        timeout_count: 0,
        client_count: 1,
        paused: false,
        dropped_count: 0,
      },
    ]);
    assert.equal(c.got.length, 2);
  });

  test('DPUB: a deferred publish arrives after its delay', async (t) => {
    const engine = makeEngine(t);
    const topic = engine.topic('dpub');
    const c = collect(topic.channel('c'), 10);
    const start = Date.now();
    topic.publish([{ body: Uint8Array.of(1), delayMs: 60 }, { body: Uint8Array.of(2) }]);
    await settle();
    assert.deepEqual(firstBytes(c.got), [2]);
    assert.equal(topic.channel('c').stats().deferred_count, 1);
    while (c.got.length < 2) await new Promise((r) => setTimeout(r, 5));
    assert.ok(Date.now() - start >= 60);
    assert.deepEqual(firstBytes(c.got), [2, 1]);
  });

  test('DPUB held by a topic without channels keeps its delay', async (t) => {
    const engine = makeEngine(t);
    const topic = engine.topic('dpub_held');
    topic.publish([{ body: Uint8Array.of(1), delayMs: 50 }]);
    const ch = topic.channel('c');
    const c = collect(ch, 10);
    await settle();
    assert.equal(c.got.length, 0);
    assert.equal(ch.stats().deferred_count, 1);
    while (c.got.length < 1) await new Promise((r) => setTimeout(r, 5));
  });

  test('deleteTopic drops its channels and detaches consumers; ops after are refused', async (t) => {
    const engine = makeEngine(t);
    const topic = engine.topic('gone');
    const c = collect(topic.channel('c'), 1);
    topic.publish(bodies(1));
    await settle();
    assert.equal(await engine.deleteTopic('gone'), true);
    assert.equal(await engine.deleteTopic('gone'), false);
    assert.equal(engine.getTopic('gone'), undefined);
    assert.equal(c.detached, true);
    assert.equal(c.consumer.finish(c.got[0]!.id), false);
    assert.throws(() => topic.publish(bodies(2)), { code: 'ERR_CLOSED' });
    assert.equal(engine.topic('gone').stats().message_count, 0, 'the name can be used again');
  });

  test('deleteChannel removes one channel; the topic keeps fanning out to the rest', async (t) => {
    const engine = makeEngine(t);
    const topic = engine.topic('delch');
    topic.channel('a');
    const b = collect(topic.channel('b'), 10);
    assert.equal(await topic.deleteChannel('a'), true);
    assert.equal(await topic.deleteChannel('a'), false);
    topic.publish(bodies(1));
    await settle();
    assert.deepEqual(firstBytes(b.got), [1]);
    assert.deepEqual(
      topic.stats().channels.map((c) => c.channel_name),
      ['b'],
    );
  });

  test('#ephemeral topic is deleted when its last channel goes', async (t) => {
    const engine = makeEngine(t);
    const topic = engine.topic('eph#ephemeral');
    const c = collect(topic.channel('c#ephemeral'), 1);
    c.consumer.close();
    await settle();
    assert.equal(topic.getChannel('c#ephemeral'), undefined);
    assert.equal(engine.getTopic('eph#ephemeral'), undefined);
  });

  test('#ephemeral topic drops what overflows its memory queue', (t) => {
    const engine = makeEngine(t, { memQueueSize: 2 });
    const topic = engine.topic('ephq#ephemeral');
    topic.publish(bodies(1, 2, 3, 4));
    assert.equal(topic.stats().depth, 2);
    assert.equal(topic.stats().message_count, 4);
  });

  test('engine close refuses new topics and publishes', async (t) => {
    const engine = makeEngine(t);
    const topic = engine.topic('closing');
    await engine.close();
    await engine.close();
    assert.throws(() => engine.topic('other'), { code: 'ERR_CLOSED' });
    assert.throws(() => topic.publish(bodies(1)), { code: 'ERR_CLOSED' });
  });
});
