/**
 * Randomised run of the channel state machine: several consumers with different RDY, random FIN,
 * REQ (with and without delay), TOUCH, timeouts, consumers leaving and joining, and a memory queue
 * small enough to spill into a disk-like backend. Invariants: RDY is never exceeded, every message
 * is finished exactly once, nothing is lost, every backend read is released, and the stats add up.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ChannelConsumer, EngineMessage } from '../../src/engine/types.ts';
import { makeEngine, recordingFactory, sleep } from './helpers.ts';

/** mulberry32: a small seeded PRNG, so a failure can be replayed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('random FIN/REQ/TOUCH/timeouts/leaves keep every invariant', async (t) => {
  const seed = Number(process.env.ENGINE_STRESS_SEED ?? 20261124);
  const random = prng(seed);
  const { made, factory } = recordingFactory();
  const engine = makeEngine(t, { memQueueSize: 5, scanIntervalMs: 2, backend: factory });
  const topic = engine.topic('stress');
  const channel = topic.channel('c');
  const TOTAL = 1500;
  const finished = new Set<number>();
  const held: { consumer: ChannelConsumer; message: EngineMessage }[] = [];
  let violations = 0;
  let deliveries = 0;

  const join = (): ChannelConsumer => {
    const ready = 1 + Math.floor(random() * 6);
    const consumer: ChannelConsumer = channel.subscribe(
      {
        deliver(message) {
          deliveries++;
          if (consumer.inFlight > ready) violations++;
          const roll = random();
          if (roll < 0.35) {
            const value = new DataView(message.body.buffer, message.body.byteOffset).getUint32(0);
            assert.equal(consumer.finish(message.id), true);
            assert.equal(finished.has(value), false, `message ${value} finished twice`);
            finished.add(value);
          } else if (roll < 0.45) {
            assert.equal(consumer.requeue(message.id, roll < 0.4 ? 0 : Math.floor(random() * 10)), true);
          } else if (roll < 0.5) {
            // Left to time out.
          } else {
            held.push({ consumer, message });
          }
        },
      },
      { msgTimeoutMs: 15 },
    );
    consumer.setReady(ready);
    return consumer;
  };
  const consumers = [join(), join(), join()];

  let published = 0;
  const deadline = Date.now() + 15_000;
  while (finished.size < TOTAL) {
    assert.ok(Date.now() < deadline, `stuck: ${finished.size}/${TOTAL} finished, seed ${seed}`);
    if (published < TOTAL) {
      const n = Math.min(TOTAL - published, 1 + Math.floor(random() * 50));
      topic.publish(
        Array.from({ length: n }, (_, i) => {
          const body = new Uint8Array(4);
          new DataView(body.buffer).setUint32(0, published + i);
          return { body };
        }),
      );
      published += n;
    }
    // Settle some held messages: FIN (may fail if they timed out meanwhile), TOUCH, or REQ.
    for (let i = held.length - 1; i >= 0; i--) {
      if (random() < 0.5) continue;
      const { consumer, message } = held[i]!;
      held.splice(i, 1);
      const value = new DataView(message.body.buffer, message.body.byteOffset).getUint32(0);
      const roll = random();
      if (roll < 0.8) {
        if (consumer.finish(message.id)) {
          assert.equal(finished.has(value), false, `message ${value} finished twice`);
          finished.add(value);
        }
      } else if (roll < 0.9) {
        if (consumer.touch(message.id)) held.push({ consumer, message });
      } else consumer.requeue(message.id, 0);
    }
    if (random() < 0.05) {
      const i = Math.floor(random() * consumers.length);
      consumers[i]!.close();
      consumers[i] = join();
    }
    await sleep(random() < 0.5 ? 0 : 3);
  }

  assert.equal(violations, 0, 'a consumer held more than its RDY');
  assert.equal(finished.size, TOTAL);
  const stats = channel.stats();
  assert.equal(stats.message_count, TOTAL);
  assert.equal(stats.depth, 0);
  assert.equal(stats.deferred_count, 0);
  assert.ok(stats.timeout_count > 0 && stats.requeue_count > 0, JSON.stringify(stats));
  assert.ok(deliveries >= TOTAL);
  const backend = made.get('stress/c')!;
  assert.ok(backend.released.length > 0, 'the backend was used');
  assert.equal(backend.handedOut.size, 0, 'every message read from the backend was released');
  // Whatever is still in flight is a message already finished through an earlier delivery: none.
  assert.equal(stats.in_flight_count, 0);
});
