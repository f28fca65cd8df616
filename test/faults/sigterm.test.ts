/**
 * Issue 14's SIGTERM with 1,000 messages in flight, with a real signal to a child process
 * (test/runtime/shutdown.test.ts drives close() and run() in-process): the worker has 1,000
 * handlers running when SIGTERM arrives; it finishes them, acks, and exits. A second worker then
 * drains the rest: every message was handled at least once, none lost; the exit time is printed.
 * app.run() has no drain deadline of its own (a second signal forces): the bound asserted here is
 * the handlers' longest run (1 s) plus closing, under 10 s.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { defineMessage } from '../../src/core/schema.ts';
import { app } from '../../src/runtime/app.ts';
import { startBroker } from '../../src/server/index.ts';
import type { Child } from '../helpers/child.ts';
import { uniqueName, waitFor } from '../helpers/index.ts';
import { kill9, report, startScript } from './helpers.ts';

const TOTAL = 3000;
const FIXTURE = 'test/faults/fixtures/slow-worker.ts';

test('SIGTERM with 1,000 in flight: all acked or redelivered, none lost, prompt exit', { timeout: 120_000 }, async (t) => {
  const broker = await startBroker({ tcp: '127.0.0.1:0', http: '127.0.0.1:0' });
  const workers: Child[] = [];
  t.after(async () => {
    for (const w of workers) await kill9(w);
    await broker.close();
  });
  const topic = uniqueName('sigterm');
  const Msg = defineMessage({ name: 'job', topic, schema: z.object({ n: z.number() }) });
  const producer = app({ url: `nsq://${broker.tcpAddress}` });
  t.after(() => producer.close());
  await producer.publishMany(Msg, Array.from({ length: TOTAL }, (_, n) => ({ n })));
  const inFlight = async () => {
    const stats = (await (await fetch(`http://${broker.httpAddress}/stats?format=json`)).json()) as { topics?: Array<{ topic_name: string; channels?: Array<{ in_flight_count: number; depth: number }> }> };
    const channel = stats.topics?.find((x) => x.topic_name === topic)?.channels?.[0];
    return { inFlight: Number(channel?.in_flight_count ?? 0), depth: Number(channel?.depth ?? 0) };
  };
  const done = (w: Child) => w.out().match(/^done \d+$/gm)?.map((l) => Number(l.slice(5))) ?? [];

  const first = await startScript(FIXTURE, [broker.tcpAddress, topic], /^ready$/m);
  workers.push(first);
  await waitFor(async () => (await inFlight()).inFlight === 1000, '1,000 in flight', 30_000, 20);
  const signalled = performance.now();
  first.child.kill('SIGTERM');
  const code = await first.done;
  const exitMs = performance.now() - signalled;
  const handledFirst = done(first);
  assert.equal(code, 0, first.err());
  assert.match(first.out(), /^exit$/m);
  const after = await inFlight();
  assert.equal(after.inFlight, 0, 'nothing left in flight: acked, or handed back');

  const second = await startScript(FIXTURE, [broker.tcpAddress, topic], /^ready$/m);
  workers.push(second);
  await waitFor(() => new Set([...handledFirst, ...done(second)]).size === TOTAL, `all ${TOTAL} handled`, 60_000, 50);
  const handled = [...handledFirst, ...done(second)];
  report('SIGTERM', {
    inFlightAtSignal: 1000,
    exitMs,
    handledBeforeExit: handledFirst.length,
    handedBack: after.depth,
    handledTotal: new Set(handled).size,
    twice: handled.length - new Set(handled).size,
  });
  assert.ok(handledFirst.length >= 1000, `the 1,000 in flight finished before exit (${handledFirst.length})`);
  assert.ok(exitMs < 10_000, `exit ${exitMs.toFixed(0)} ms after SIGTERM`);
});
