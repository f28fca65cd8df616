import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConveyorError } from '../../src/core/errors.ts';
import { HEADER } from '../../src/core/message.ts';
import { collect, setup, sleep, waitFor } from './helpers.ts';

const fast = { retry: { attempts: 2, backoff: { initialMs: 5, maxMs: 20, factor: 2, jitter: 0 } } };

describe('consumeBatch', () => {
  test('flushes on size, with ids aligned to values, and acks after the handler', async (t) => {
    const { Msg, make } = await setup(t);
    const a = make();
    const batches: number[][] = [];
    await a.consumeBatch(Msg, { channel: 'c', batch: { maxSize: 10, maxWaitMs: 60_000 } }, (values, ctx) => {
      assert.equal(ctx.messages.length, values.length);
      batches.push(values.map((v) => v.n));
    });
    const ids = await a.publishMany(Msg, Array.from({ length: 25 }, (_, n) => ({ n })));
    await waitFor(() => batches.length === 2, 'two full batches');
    assert.deepEqual(batches.map((b) => b.length), [10, 10]);
    assert.ok(ids.length === 25);
    await sleep(30);
    assert.equal(batches.length, 2, 'the partial batch waits for age or size');
  });

  test('flushes on age and on bytes', async (t) => {
    const { Msg, make } = await setup(t);
    const a = make();
    const sizes: number[] = [];
    await a.consumeBatch(Msg, { channel: 'c', batch: { maxSize: 1000, maxWaitMs: 40, maxBytes: 200 } }, (values) => {
      sizes.push(values.length);
    });
    const started = Date.now();
    await a.publish(Msg, { n: 1 });
    await waitFor(() => sizes.length === 1, 'age flush');
    assert.ok(Date.now() - started >= 35);
    await a.publishMany(Msg, Array.from({ length: 10 }, (_, n) => ({ n, note: 'x'.repeat(40) })));
    await waitFor(() => sizes.reduce((x, y) => x + y, 0) === 11, 'byte flushes');
    assert.ok(sizes.length >= 3, `byte limit splits batches: ${sizes}`);
  });

  test('a failing batch is retried with its messages kept in flight, not redelivered', async (t) => {
    const { Msg, make } = await setup(t);
    const a = make();
    let tries = 0;
    const attemptsSeen: number[][] = [];
    await a.consumeBatch(Msg, { channel: 'c', timeoutMs: 60, batch: { maxSize: 5, maxWaitMs: 10 } }, async (_values, ctx) => {
      attemptsSeen.push(ctx.messages.map((m) => m.attempts));
      tries++;
      if (tries < 4) throw new ConveyorError('ERR_SINK', 'database down'); // an outage: unlimited retries
    });
    await a.publishMany(Msg, Array.from({ length: 5 }, (_, n) => ({ n })));
    await waitFor(() => a.stats()[0]!.processed === 5, 'committed after the outage', 10_000);
    assert.equal(tries, 4);
    // Longer than the 60 ms in-flight timeout passed while retrying: touches kept them ours.
    assert.ok(attemptsSeen.every((b) => b.every((n) => n === 1)), JSON.stringify(attemptsSeen));
  });

  test('a poison message is isolated by splitting and dead-lettered; the rest go through', async (t) => {
    const { transport, Msg, make, topic } = await setup(t);
    const a = make();
    const committed: number[] = [];
    await a.consumeBatch(Msg, { channel: 'c', ...fast, batch: { maxSize: 8, maxWaitMs: 10 } }, (values) => {
      if (values.some((v) => v.n === 5)) throw new Error('row 5 violates a constraint');
      committed.push(...values.map((v) => v.n));
    });
    const dead = await collect(transport, `${topic}.dead`);
    await a.publishMany(Msg, Array.from({ length: 8 }, (_, n) => ({ n })));
    await waitFor(() => dead.length === 1 && committed.length === 7, 'seven committed, one dead', 5000);
    assert.deepEqual(committed.sort(), [0, 1, 2, 3, 4, 6, 7]);
    assert.equal(dead[0]!.headers[HEADER.deadReason], 'row 5 violates a constraint');
    assert.equal(Msg.decode(dead[0]!.body, dead[0]!.headers).n, 5);
  });

  test('undecodable messages never enter a batch', async (t) => {
    const { transport, Msg, make, topic } = await setup(t);
    const a = make();
    const got: number[] = [];
    await a.consumeBatch(Msg, { channel: 'c', batch: { maxSize: 2, maxWaitMs: 10 } }, (values) => {
      got.push(...values.map((v) => v.n));
    });
    const dead = await collect(transport, `${topic}.dead`);
    await transport.publish(topic, [{ body: Uint8Array.from([0x1c]), headers: {} }]);
    await a.publish(Msg, { n: 1 });
    await waitFor(() => dead.length === 1 && got.length === 1, 'one dead, one batched');
    assert.equal(dead[0]!.headers[HEADER.deadCode], 'ERR_DECODE');
  });

  test('batch.concurrency hands several batches to the handler at once', async (t) => {
    const { Msg, make } = await setup(t);
    const a = make();
    let running = 0;
    let peak = 0;
    await a.consumeBatch(Msg, { channel: 'c', batch: { maxSize: 5, maxWaitMs: 10, concurrency: 2 } }, async () => {
      running++;
      peak = Math.max(peak, running);
      await sleep(30);
      running--;
    });
    await a.publishMany(Msg, Array.from({ length: 20 }, (_, n) => ({ n })));
    await waitFor(() => a.stats()[0]!.processed === 20, 'all 20');
    assert.equal(peak, 2);
  });

  test('close flushes the last partial batch before leaving', async (t) => {
    const { Msg, make } = await setup(t);
    const a = make();
    const got: number[] = [];
    await a.consumeBatch(Msg, { channel: 'c', batch: { maxSize: 100, maxWaitMs: 60_000 } }, async (values) => {
      await sleep(20);
      got.push(...values.map((v) => v.n));
    });
    await a.publishMany(Msg, [{ n: 1 }, { n: 2 }, { n: 3 }]);
    await waitFor(() => a.stats()[0]!.waiting === 3, 'held');
    await a.close();
    assert.deepEqual(got, [1, 2, 3]);
  });
});
