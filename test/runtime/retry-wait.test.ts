import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { describe, test } from 'node:test';
import { ConveyorError } from '../../src/core/errors.ts';
import { backoffDelay, DEFAULT_BACKOFF, type OutageProbe, waitForRetry } from '../../src/runtime/backoff.ts';
import type { BatchHandler } from '../../src/runtime/batch-consumer.ts';
import { setup, waitFor } from './helpers.ts';

function probe(upAfterCalls: number, intervalMs = 20): OutageProbe & { calls: number; inFlight: number; maxInFlight: number } {
  const p = {
    intervalMs,
    calls: 0,
    inFlight: 0,
    maxInFlight: 0,
    async ready() {
      p.calls++;
      p.inFlight++;
      p.maxInFlight = Math.max(p.maxInFlight, p.inFlight);
      await new Promise((r) => setTimeout(r, 5));
      p.inFlight--;
      if (p.calls === 1) throw new Error('connection refused'); // a rejecting probe counts as "still down"
      return p.calls > upAfterCalls;
    },
  };
  return p;
}

describe('waitForRetry', () => {
  test('returns as soon as the probe succeeds, long before the backoff', async () => {
    const p = probe(3);
    const started = Date.now();
    const how = await waitForRetry(10_000, new AbortController().signal, p);
    const took = Date.now() - started;
    assert.equal(how, 'probe');
    assert.equal(p.calls, 4);
    assert.equal(p.maxInFlight, 1, 'one probe at a time');
    assert.ok(took >= 4 * 20 && took < 1000, `took ${took} ms`);
  });

  test('without a probe, or with one that never succeeds, waits out the delay', async () => {
    let started = Date.now();
    assert.equal(await waitForRetry(60, new AbortController().signal), 'elapsed');
    assert.ok(Date.now() - started >= 55);
    const p = probe(Number.POSITIVE_INFINITY, 10);
    started = Date.now();
    assert.equal(await waitForRetry(120, new AbortController().signal, p), 'elapsed');
    assert.ok(Date.now() - started >= 115 && p.calls >= 3, `${p.calls} probes`);
  });

  test('abort ends the wait; no listener is left on the signal after many waits', async () => {
    const controller = new AbortController();
    for (let i = 0; i < 50; i++) await waitForRetry(2, controller.signal, probe(Number.POSITIVE_INFINITY, 1));
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
    setTimeout(() => controller.abort(), 30);
    const started = Date.now();
    assert.equal(await waitForRetry(10_000, controller.signal, probe(Number.POSITIVE_INFINITY)), 'aborted');
    assert.ok(Date.now() - started < 1000);
  });

  test('consumeBatch: an outage is retried when the handler\'s probe succeeds; other errors wait out the backoff', async (t) => {
    const { Msg, make } = await setup(t);
    const a = make();
    const slow = { attempts: 5, backoff: { initialMs: 5000, maxMs: 5000, factor: 1, jitter: 0 } };
    let failures = 2;
    let code: 'ERR_SINK' | 'ERR_HANDLER' = 'ERR_SINK';
    const committed: number[] = [];
    let probes = 0;
    const handler: BatchHandler<{ n: number }> = Object.assign(
      (values: { n: number }[]) => {
        if (failures-- > 0) throw new ConveyorError(code, 'down', { retryable: true });
        committed.push(...values.map((v) => v.n));
      },
      { probe: { intervalMs: 10, ready: async () => ++probes >= 3 } },
    );
    await a.consumeBatch(Msg, { channel: 'c', retry: slow, batch: { maxSize: 10, maxWaitMs: 5 } }, handler);
    const started = Date.now();
    await a.publish(Msg, { n: 1 });
    await waitFor(() => committed.length === 1, 'the commit after two outage failures', 3000);
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms against a 5 s backoff`);
    assert.ok(probes >= 3);
    // A retryable non-outage error is not an outage: the probe does not cut its backoff short.
    failures = 1;
    code = 'ERR_HANDLER';
    probes = 0;
    await a.publish(Msg, { n: 2 });
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(committed, [1], 'still waiting out the backoff');
    assert.equal(probes, 0);
  });

  test('the backoff itself still grows to its cap (the probe only shortens the wait)', () => {
    assert.equal(backoffDelay(DEFAULT_BACKOFF, 30, () => 1), 30_000);
  });
});
