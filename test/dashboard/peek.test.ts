/** The engine's peek (additive API for the dashboard): the next messages in delivery order, none taken. */
import assert from 'node:assert/strict';
import test from 'node:test';
import { diskBackend } from '../../src/engine/disk/index.ts';
import { Engine } from '../../src/engine/engine.ts';
import type { EngineMessage } from '../../src/engine/types.ts';
import { tempDir, uniqueName, waitFor } from '../helpers/index.ts';

const body = (n: number) => new Uint8Array([n]);
const ns = (messages: EngineMessage[]) => messages.map((m) => m.body[0]);

test('peek returns memory then backend in delivery order, takes nothing, and leaves deferred and in-flight out', async (t) => {
  const engine = new Engine({ memQueueSize: 3 });
  t.after(() => engine.close());
  const topic = engine.topic(uniqueName('peek'));
  const channel = topic.channel('c');
  topic.publish([0, 1, 2, 3, 4, 5].map((n) => ({ body: body(n) })));
  topic.publish([{ body: body(99), delayMs: 60_000 }]);
  assert.deepEqual(ns(channel.peek(10).messages), [0, 1, 2, 3, 4, 5], 'three in memory, three in the backend, no deferred');
  assert.equal(channel.peek(10).partial, false);
  assert.deepEqual(ns(channel.peek(4).messages), [0, 1, 2, 3]);
  assert.equal(channel.peek(4).partial, true);
  assert.equal(channel.stats().depth, 6, 'nothing taken');

  const got: number[] = [];
  const consumer = channel.subscribe({ deliver: (m) => got.push(m.body[0]!) });
  consumer.setReady(2);
  await waitFor(() => got.length === 2, 'two delivered');
  assert.deepEqual(got, [0, 1], 'peek showed what is delivered next');
  assert.deepEqual(ns(channel.peek(10).messages), [2, 3, 4, 5], 'in-flight ones are not queued');
  assert.deepEqual(channel.consumers(), [{ id: consumer.id, ready: 2, inFlight: 2 }]);
  assert.deepEqual(channel.peek(0).messages, []);
});

test('a topic with no channel yet peeks at what it keeps for its first one', async (t) => {
  const engine = new Engine();
  t.after(() => engine.close());
  const topic = engine.topic(uniqueName('kept'));
  topic.publish([{ body: body(7) }, { body: body(8) }]);
  assert.deepEqual(ns(topic.peek(5).messages), [7, 8]);
  assert.deepEqual(ns(topic.channel('first').peek(5).messages), [7, 8], 'and the first channel got them');
});

test('a disk backend cannot peek: memory only, marked partial', async (t) => {
  const dir = tempDir(t);
  const engine = new Engine({ memQueueSize: 2, backend: diskBackend({ dir, durable: false }) });
  const topic = engine.topic(uniqueName('disk'));
  const channel = topic.channel('c');
  topic.publish([1, 2, 3, 4].map((n) => ({ body: body(n) })));
  const peeked = channel.peek(10);
  assert.deepEqual(ns(peeked.messages), [1, 2]);
  assert.equal(peeked.partial, true);
  await engine.close();
});
