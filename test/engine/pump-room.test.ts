import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Channel } from '../../src/engine/channel.ts';
import type { EngineMessage } from '../../src/engine/types.ts';
import { makeEngine, recordingFactory, settle } from './helpers.ts';

/** Past the first pump (8,192 messages) the topic moves a backlog only as far as its channels' memory. */
const FIRST_PUMP = 8192;
const MEM = 100;

function numbered(from: number, n: number): { body: Uint8Array }[] {
  return Array.from({ length: n }, (_, i) => {
    const body = new Uint8Array(4);
    new DataView(body.buffer).setUint32(0, from + i);
    return { body };
  });
}
const numberOf = (m: EngineMessage): number => new DataView(m.body.buffer, m.body.byteOffset, 4).getUint32(0);

/** Finishes each message a microtask later, as the runtime's async handlers do. */
function asyncConsumer(channel: Channel, ready: number): { got: number[] } {
  const got: number[] = [];
  const consumer = channel.subscribe({
    deliver(m) {
      got.push(numberOf(m));
      queueMicrotask(() => consumer.finish(m.id));
    },
  });
  consumer.setReady(ready);
  return { got };
}

function countPuts(backend: { put(m: EngineMessage): void }): { puts: number } {
  const counter = { puts: 0 };
  const put = backend.put.bind(backend);
  backend.put = (m) => {
    counter.puts++;
    put(m);
  };
  return counter;
}

describe('engine topic pump and channel room', () => {
  test('a backlog larger than the first pump reaches a slow consumer in order without being spilled into its channel backend', async (t) => {
    const { made, factory } = recordingFactory();
    const engine = makeEngine(t, { memQueueSize: MEM, backend: factory });
    const topic = engine.topic('room');
    const total = 30_000;
    topic.publish(numbered(0, total));
    const ch = topic.channel('c');
    const spilled = countPuts(made.get('room/c')!);
    // The first batch moves at once, as before; the rest is held for the channel, counted as its depth.
    assert.equal(topic.stats().depth, 0);
    assert.equal(ch.stats().depth, total);
    const c = asyncConsumer(ch, 50);
    while (c.got.length < total) await settle(1);
    assert.deepEqual(c.got, Array.from({ length: total }, (_, i) => i));
    // Only what the first pump moved past the memory queue went to the backend; nothing after it.
    assert.equal(spilled.puts, 0, 'puts counted after the first pump');
    assert.equal(made.get('room/c')!.stored.length, 0);
    await settle();
    assert.equal(ch.stats().depth, 0);
    assert.equal(topic.stats().depth, 0);
  });

  test('a channel peeks into what the topic holds back for it, in order', async (t) => {
    const engine = makeEngine(t, { memQueueSize: MEM });
    const topic = engine.topic('peeked');
    topic.publish(numbered(0, FIRST_PUMP + 500));
    const ch = topic.channel('c');
    const c = asyncConsumer(ch, 10);
    // Drain the channel's own queue past the first pump so that what follows is held by the topic.
    while (c.got.length < FIRST_PUMP) await settle(1);
    ch.pause();
    await settle();
    const peeked = ch.peek(1000).messages.map(numberOf);
    const next = c.got.length;
    assert.deepEqual(peeked, Array.from({ length: FIRST_PUMP + 500 - next }, (_, i) => next + i).slice(0, 1000));
    assert.equal(ch.stats().depth, FIRST_PUMP + 500 - next);
  });

  test('emptying the only channel also drops what the topic held back for it; emptying the topic does not', async (t) => {
    const engine = makeEngine(t, { memQueueSize: MEM });
    const topic = engine.topic('emptied');
    topic.publish(numbered(0, 3 * FIRST_PUMP));
    const ch = topic.channel('c');
    topic.empty();
    assert.equal(ch.stats().depth, 3 * FIRST_PUMP, 'topic empty keeps what belongs to its channels');
    ch.empty();
    assert.equal(ch.stats().depth, 0);
    assert.equal(topic.stats().depth, 0);
    const c = asyncConsumer(ch, 10);
    await settle(5);
    assert.deepEqual(c.got, []);
    topic.publish(numbered(7, 1));
    await settle(5);
    assert.deepEqual(c.got, [7]);
  });

  test('a channel created while the topic holds a backlog for the others gets none of it', async (t) => {
    const engine = makeEngine(t, { memQueueSize: MEM });
    const topic = engine.topic('later');
    const total = 3 * FIRST_PUMP;
    topic.publish(numbered(0, total));
    const first = topic.channel('first');
    const second = topic.channel('second');
    assert.equal(second.stats().depth, 0);
    assert.equal(first.stats().depth, total);
    topic.publish(numbered(total, 5));
    const a = asyncConsumer(first, 100);
    const b = asyncConsumer(second, 100);
    while (a.got.length < total + 5) await settle(1);
    await settle();
    assert.deepEqual(a.got, Array.from({ length: total + 5 }, (_, i) => i));
    assert.deepEqual(b.got, [total, total + 1, total + 2, total + 3, total + 4]);
  });

  test('a paused channel does not hold back a consuming one; it takes its share into its backend', async (t) => {
    const engine = makeEngine(t, { memQueueSize: MEM });
    const topic = engine.topic('fair');
    const consuming = topic.channel('consuming');
    const paused = topic.channel('paused');
    paused.pause();
    const total = 3 * FIRST_PUMP;
    // A paused topic keeps the backlog; unpaused, its pump moves it as the channels make room.
    topic.pause();
    topic.publish(numbered(0, total));
    topic.unpause();
    const a = asyncConsumer(consuming, 100);
    asyncConsumer(paused, 100);
    while (a.got.length < total) await settle(1);
    assert.deepEqual(a.got, Array.from({ length: total }, (_, i) => i));
    assert.equal(paused.stats().depth, total);
    assert.equal(topic.stats().depth, 0);
  });
});
