import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setup, sleep, waitFor } from './helpers.ts';

describe('shutdown', () => {
  test('graceful close finishes in-flight work and acks it; nothing is acked early, nothing lost', async (t) => {
    const { Msg, make } = await setup(t);
    const first = make();
    const finished: number[] = [];
    await first.consume(Msg, { channel: 'c', concurrency: 2, maxInFlight: 4 }, async (v) => {
      await sleep(30);
      finished.push(v.n);
    });
    await first.publishMany(Msg, Array.from({ length: 20 }, (_, n) => ({ n })));
    await waitFor(() => finished.length >= 2, 'some work done');
    await first.close();
    const handedOut = finished.length;
    assert.equal(first.stats()[0]!.processed, handedOut, 'every handler that ran was acked');
    // The rest is still at the broker: a second worker gets exactly what the first did not finish.
    const second = make();
    const rest: number[] = [];
    await second.consume(Msg, { channel: 'c' }, (v) => {
      rest.push(v.n);
    });
    await waitFor(() => handedOut + rest.length === 20, 'the remainder');
    assert.deepEqual([...finished, ...rest].sort((x, y) => x - y), Array.from({ length: 20 }, (_, n) => n));
  });

  test('force close aborts handlers and returns their messages to the broker', async (t) => {
    const { Msg, make } = await setup(t);
    const first = make();
    let aborted = 0;
    await first.consume(Msg, { channel: 'c', concurrency: 2 }, (_v, ctx) => {
      return new Promise<void>((resolve) =>
        ctx.signal.addEventListener('abort', () => {
          aborted++;
          resolve();
        }),
      );
    });
    await first.publishMany(Msg, [{ n: 1 }, { n: 2 }, { n: 3 }]);
    await waitFor(() => first.stats()[0]!.running === 2, 'two running');
    await first.close({ force: true });
    assert.equal(aborted, 2);
    const second = make();
    const again: number[] = [];
    await second.consume(Msg, { channel: 'c' }, (v, ctx) => {
      again.push(v.n);
      assert.ok(ctx.attempts >= 1);
    });
    await waitFor(() => again.length === 3, 'all three again', 5000);
  });

  test('run(): the first signal closes gracefully, a second forces', async (t) => {
    const { Msg, make } = await setup(t);
    const a = make();
    let release!: () => void;
    const stuck = new Promise<void>((resolve) => {
      release = resolve;
    });
    let aborted = false;
    await a.consume(Msg, { channel: 'c' }, async (_v, ctx) => {
      ctx.signal.addEventListener('abort', () => {
        aborted = true;
        release();
      });
      await stuck;
    });
    await a.publish(Msg, { n: 1 });
    await waitFor(() => a.stats()[0]!.running === 1, 'running');
    const running = a.run();
    let closed = false;
    running.then(() => {
      closed = true;
    });
    process.emit('SIGTERM', 'SIGTERM');
    await sleep(50);
    assert.equal(closed, false, 'graceful close waits for the stuck handler');
    process.emit('SIGINT', 'SIGINT');
    await running;
    assert.equal(aborted, true);
    assert.equal(process.listenerCount('SIGTERM'), 0);
    await assert.rejects(a.publish(Msg, { n: 2 }), { code: 'ERR_CLOSED' });
  });
});
