/**
 * Issue 14's broker kill -9 loop: `conveyor broker --durable` in a child process, a producer
 * recording every confirmed message, kill -9 at random moments 10 times, each time restarted on
 * the same data dir and port. Then a consumer drains: every confirmed message arrives at least
 * once; duplicates (a publish lost with its OK, then retried, or redelivered) are counted.
 *
 * Sizes: 10 lives of 400–1500 ms of publishing (MPUB of 50, up to 4 in flight), so some tens of
 * thousands of messages, about 30–40 s on a quiet 2-core machine (the restarts dominate).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect } from '../../src/connect.ts';
import type { Transport } from '../../src/core/transport.ts';
import type { Child } from '../helpers/child.ts';
import { tempDir, uniqueName, waitFor } from '../helpers/index.ts';
import { between, freePort, kill9, report, sleep, startCli } from './helpers.ts';

const KILLS = 10;

test('durable broker kill -9 ×10: every confirmed message is delivered at least once', { timeout: 240_000 }, async (t) => {
  const dir = tempDir(t, 'conveyor-kill-');
  const port = await freePort();
  const args = ['broker', '--durable', '--data-dir', dir, '--tcp', `127.0.0.1:${port}`, '--http', '127.0.0.1:0'];
  let broker: Child = await startCli(args, /^tcp /m);
  t.after(() => kill9(broker));
  const topic = uniqueName('kill');
  const encoder = new TextEncoder();
  const confirmed = new Set<number>();
  let sent = 0;
  let failed = 0;

  // One producer for every life: a publish to a dead broker fails (not confirmed, not counted),
  // and the producer redials on the next one.
  const producer: Transport = await connect(`nsq://127.0.0.1:${port}?reconnectMinMs=20&reconnectMaxMs=200`);
  t.after(() => producer.close().catch(() => undefined));
  let producing = true;
  const lane = async () => {
    while (producing) {
      const seqs = Array.from({ length: 50 }, () => sent++);
      try {
        await producer.publish(topic, seqs.map((n) => ({ body: encoder.encode(String(n)) })));
        for (const n of seqs) confirmed.add(n);
      } catch {
        failed += seqs.length;
        await sleep(20);
      }
    }
  };
  const lanes = Array.from({ length: 4 }, lane);

  const lives: number[] = [];
  for (let kill = 0; kill < KILLS; kill++) {
    const before = confirmed.size;
    await waitFor(() => confirmed.size > before, 'confirms from this life of the broker', 30_000, 10);
    await sleep(between(400, 1500));
    await kill9(broker);
    lives.push(confirmed.size - before);
    broker = await startCli(args, /^tcp /m);
  }
  producing = false;
  await Promise.all(lanes);

  const seen = new Map<number, number>();
  const consumer = await connect(`nsq://127.0.0.1:${port}`);
  t.after(() => consumer.close());
  const decoder = new TextDecoder();
  await consumer.subscribe(topic, 'drain', { maxInFlight: 500 }, (d) => {
    const n = Number(decoder.decode(d.body));
    seen.set(n, (seen.get(n) ?? 0) + 1);
    d.ack();
  });
  let lastSize = -1;
  // Drained: every confirmed one is in and nothing new arrived for a second.
  await waitFor(
    async () => {
      const done = [...confirmed].every((n) => seen.has(n)) && seen.size === lastSize;
      lastSize = seen.size;
      if (!done) await sleep(1000);
      return done;
    },
    'every confirmed message',
    60_000,
    0,
  );
  const lost = [...confirmed].filter((n) => !seen.has(n));
  const duplicates = [...seen.values()].reduce((sum, c) => sum + c - 1, 0);
  const unconfirmedArrived = [...seen.keys()].filter((n) => !confirmed.has(n)).length;
  report('broker kill -9', {
    kills: KILLS,
    sent,
    confirmed: confirmed.size,
    notConfirmed: failed,
    delivered: seen.size,
    lost: lost.length,
    duplicates,
    unconfirmedArrived,
    confirmedPerLifeMin: Math.min(...lives),
  });
  assert.equal(lost.length, 0, `lost confirmed messages, e.g. ${lost.slice(0, 5).join(', ')}`);
});
