/** Found by examples/nsqworker: two copies of one id in flight at once were both handled. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setup, sleep, waitFor } from './helpers.ts';

test('dedup: a copy arriving while the first is still being handled waits, and is then skipped', async (t) => {
  const { Msg, make } = await setup(t);
  const a = make();
  const seen: number[] = [];
  await a.consume(Msg, { channel: 'c', dedup: true, concurrency: 4 }, async (v) => {
    seen.push(v.n);
    await sleep(50);
  });
  const id = 'bbbbbbbbbbbbbbbb';
  // One tick, one batch: the three copies are in flight together.
  await Promise.all([a.publish(Msg, { n: 1 }, { id }), a.publish(Msg, { n: 2 }, { id }), a.publish(Msg, { n: 3 }, { id })]);
  await a.publish(Msg, { n: 4 });
  await waitFor(() => a.stats()[0]!.processed + a.stats()[0]!.duplicates >= 3, 'all settled', 5000);
  await sleep(100);
  assert.deepEqual(seen.sort(), [1, 4]);
  assert.equal(a.stats()[0]!.duplicates, 2);
});

test('dedup: if the first copy fails, the waiting copy is handled', async (t) => {
  const { Msg, make } = await setup(t);
  const a = make();
  const runs: number[] = [];
  await a.consume(Msg, { channel: 'c', dedup: true, concurrency: 4, retry: { attempts: 1 }, deadLetter: false }, async (v) => {
    runs.push(v.n);
    await sleep(30);
    if (v.n === 1) throw new Error('first copy fails');
  });
  const id = 'cccccccccccccccc';
  await Promise.all([a.publish(Msg, { n: 1 }, { id }), a.publish(Msg, { n: 2 }, { id })]);
  await waitFor(() => runs.length === 2 && a.stats()[0]!.processed === 1, 'second copy handled', 5000);
  assert.deepEqual(runs, [1, 2]);
});
