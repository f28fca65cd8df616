import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bodies, collect, firstBytes, makeEngine, recordingFactory, settle } from './helpers.ts';

describe('engine backends', () => {
  test('past the high-water mark a channel spills to its backend and reads back in order', async (t) => {
    const { made, factory } = recordingFactory();
    const engine = makeEngine(t, { memQueueSize: 3, backend: factory });
    const topic = engine.topic('spill');
    const ch = topic.channel('c');
    const values = Array.from({ length: 10 }, (_, i) => i);
    topic.publish(bodies(...values));
    const backend = made.get('spill/c')!;
    assert.equal(ch.stats().depth, 10);
    assert.equal(ch.stats().backend_depth, 7);
    assert.equal(backend.depth, 7);
    const c = collect(ch, 100, { autoFinish: true });
    await settle();
    assert.deepEqual(firstBytes(c.got), values);
    // Only the seven that came out of the backend are released, each exactly once.
    assert.equal(backend.released.length, 7);
    assert.deepEqual(
      backend.released.map((m) => m.body[0]),
      [3, 4, 5, 6, 7, 8, 9],
    );
    assert.equal(backend.handedOut.size, 0);
  });

  test('a topic without channels spills past its high-water mark and hands everything over in order', async (t) => {
    const { made, factory } = recordingFactory();
    const engine = makeEngine(t, { memQueueSize: 3, backend: factory });
    const topic = engine.topic('tspill');
    const values = Array.from({ length: 10 }, (_, i) => i);
    topic.publish(bodies(...values));
    assert.deepEqual([topic.stats().depth, topic.stats().backend_depth], [10, 7]);
    const ch = topic.channel('c');
    assert.equal(topic.stats().depth, 0);
    assert.equal(made.get('tspill')!.released.length, 0, 'kept until the channel has synced its copies');
    await topic.sync();
    assert.equal(made.get('tspill')!.released.length, 7, 'released once the channel synced its copies');
    assert.equal(made.get('tspill')!.handedOut.size, 0);
    const c = collect(ch, 100, { autoFinish: true });
    await settle();
    assert.deepEqual(firstBytes(c.got), values);
  });

  test('while the backend holds messages new ones go behind them (FIFO across the spill)', async (t) => {
    const { made, factory } = recordingFactory();
    const engine = makeEngine(t, { memQueueSize: 2, backend: factory });
    const topic = engine.topic('fifo');
    const ch = topic.channel('c');
    const c = collect(ch, 1);
    topic.publish(bodies(1, 2, 3, 4));
    await settle();
    c.consumer.finish(c.got[0]!.id);
    topic.publish(bodies(5));
    assert.equal(made.get('fifo/c')!.depth, 3, '5 went to the backend behind 3 and 4');
    for (let i = 0; i < 10 && c.got.length < 5; i++) {
      await settle();
      c.consumer.finish(c.got.at(-1)!.id);
    }
    assert.deepEqual(firstBytes(c.got), [1, 2, 3, 4, 5]);
  });

  test('memQueueSize 0 sends everything through the backend', async (t) => {
    const { made, factory } = recordingFactory();
    const engine = makeEngine(t, { memQueueSize: 0, backend: factory });
    const topic = engine.topic('direct');
    topic.publish(bodies(1, 2));
    assert.equal(made.get('direct')!.depth, 2, 'the topic queue is the backend');
    const ch = topic.channel('c');
    await topic.sync();
    assert.equal(made.get('direct')!.released.length, 2, 'pumped to every channel, synced there, then released');
    assert.equal(made.get('direct/c')!.depth, 2);
    const c = collect(ch, 10, { autoFinish: true });
    await settle();
    assert.deepEqual(firstBytes(c.got), [1, 2]);
    assert.equal(made.get('direct/c')!.released.length, 2);
  });

  test('a requeued backend message is released once: on FIN, not on REQ', async (t) => {
    const { made, factory } = recordingFactory();
    const engine = makeEngine(t, { memQueueSize: 0, backend: factory });
    const topic = engine.topic('reqrel');
    const ch = topic.channel('c');
    const c = collect(ch, 1);
    topic.publish(bodies(1));
    await settle();
    const backend = made.get('reqrel/c')!;
    // memQueueSize 0: the REQ puts a fresh copy into the backend and releases the old position.
    c.consumer.requeue(c.got[0]!.id, 0);
    assert.equal(backend.released.length, 1);
    await settle();
    assert.equal(c.got.length, 2);
    assert.equal(c.got[1]!.attempts, 2, 'attempts survive the backend');
    c.consumer.finish(c.got[1]!.id);
    assert.equal(backend.released.length, 2);
    assert.equal(backend.handedOut.size, 0);
  });

  test('empty and delete release what came from the backend; delete removes its data', async (t) => {
    const { made, factory } = recordingFactory();
    const engine = makeEngine(t, { memQueueSize: 0, backend: factory });
    const topic = engine.topic('drop');
    const ch = topic.channel('c');
    const c = collect(ch, 1);
    topic.publish(bodies(1, 2, 3));
    await settle();
    const backend = made.get('drop/c')!;
    ch.empty();
    assert.equal(ch.stats().depth, 0);
    await topic.deleteChannel('c');
    assert.equal(backend.deleted, true);
    assert.equal(backend.handedOut.size, 0, 'the in-flight one was released by delete');
    assert.equal(c.got.length, 1);
  });

  test('close flushes memory, in-flight and deferred messages into the backend and closes it', async (t) => {
    const { made, factory } = recordingFactory();
    const engine = makeEngine(t, { backend: factory });
    const topic = engine.topic('flush');
    const ch = topic.channel('c');
    const c = collect(ch, 1);
    topic.publish([...bodies(1, 2), { body: Uint8Array.of(3), delayMs: 60_000 }]);
    await settle();
    engine.topic('held').publish(bodies(9));
    await engine.close();
    const backend = made.get('flush/c')!;
    assert.equal(backend.closed, true);
    assert.deepEqual(backend.stored.map((m) => m.body[0]).sort(), [1, 2, 3]);
    assert.ok((backend.stored.find((m) => m.body[0] === 3)!.deferUntil ?? 0) > Date.now(), 'DPUB time kept');
    assert.equal(c.got.length, 1);
    assert.deepEqual(
      made.get('held')!.stored.map((m) => m.body[0]),
      [9],
    );
    assert.equal(made.get('held')!.closed, true);
  });

  test('topic.sync waits for the topic and every channel backend', async (t) => {
    const { made, factory } = recordingFactory();
    const engine = makeEngine(t, { backend: factory });
    const topic = engine.topic('sync');
    topic.channel('a');
    topic.channel('b');
    await topic.sync();
    assert.deepEqual(
      [made.get('sync')!.syncs, made.get('sync/a')!.syncs, made.get('sync/b')!.syncs],
      [1, 1, 1],
    );
  });

  test('#ephemeral channels never get a backend from the factory', (t) => {
    const { made, factory } = recordingFactory();
    const engine = makeEngine(t, { backend: factory });
    engine.topic('eph').channel('x#ephemeral');
    assert.deepEqual([...made.keys()], ['eph']);
  });
});
