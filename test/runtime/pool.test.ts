import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConveyorError } from '../../src/core/errors.ts';
import { WorkerPool } from '../../src/runtime/pool/index.ts';
import { setup, waitFor } from './helpers.ts';

const fixture = new URL('./fixtures/cpu.ts', import.meta.url);

describe('WorkerPool', () => {
  test('CPU-bound work runs off the event loop', async (t) => {
    const pool = new WorkerPool({ module: fixture, size: 2 });
    t.after(() => pool.close());
    await pool.run({ ms: 1, n: 0 }); // threads up
    let worstLag = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      worstLag = Math.max(worstLag, now - last - 10);
      last = now;
    }, 10);
    const results = await Promise.all([pool.run({ ms: 300, n: 1 }), pool.run({ ms: 300, n: 2 })]);
    clearInterval(ticker);
    assert.deepEqual(results, [2, 4]);
    assert.ok(worstLag < 150, `event loop stalled ${worstLag.toFixed(0)} ms while 600 ms of CPU work ran`);
  });

  test('errors come back typed; a crashed thread is replaced and its task fails retryably', async (t) => {
    const permanent = new WorkerPool({ module: fixture, export: 'permanent', size: 1 });
    t.after(() => permanent.close());
    await assert.rejects(permanent.run({}), (e: unknown) => e instanceof ConveyorError && e.code === 'ERR_PERMANENT' && !e.retryable);
    const crashing = new WorkerPool({ module: fixture, export: 'crash', size: 1 });
    t.after(() => crashing.close());
    await assert.rejects(crashing.run({}), (e: unknown) => e instanceof ConveyorError && e.retryable && /died/.test(e.message));
    await assert.rejects(crashing.run({}), /died/, 'the replacement thread serves the next task');
  });

  test('a full queue refuses with ERR_BACKPRESSURE; close fails queued tasks with ERR_CLOSED', async () => {
    const pool = new WorkerPool({ module: fixture, size: 1, maxQueue: 1 });
    await pool.run({ ms: 1, n: 0 }); // the thread is up
    const running = pool.run({ ms: 200, n: 1 });
    await waitFor(() => pool.pending === 1, 'one running');
    const queued = pool.run({ ms: 1, n: 2 });
    await assert.rejects(pool.run({ ms: 1, n: 3 }), { code: 'ERR_BACKPRESSURE' });
    const closing = pool.close();
    await assert.rejects(queued, { code: 'ERR_CLOSED' });
    assert.equal(await running, 2, 'running work finishes');
    await closing;
    await assert.rejects(pool.run({}), { code: 'ERR_CLOSED' });
  });

  test('pool.handler serves as a consume handler', async (t) => {
    const { Msg, make } = await setup(t);
    const pool = new WorkerPool({ module: fixture, size: 1 });
    t.after(() => pool.close());
    const a = make();
    await a.consume(Msg, { channel: 'cpu', concurrency: 1 }, (v) => pool.handler({ ms: 5, n: v.n }));
    await a.publishMany(Msg, [{ n: 1 }, { n: 2 }]);
    await waitFor(() => a.stats()[0]!.processed === 2, 'both handled on the pool');
  });
});
