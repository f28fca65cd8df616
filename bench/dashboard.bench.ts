/**
 * What a watched dashboard costs the engine's hot path: publish (batches of 1000) → deliver → ack
 * on memory://, with no dashboard, side by side with the same engine carrying 1,000 more topics
 * and a dashboard whose SSE stream a viewer reads (one sample of every topic per second, the
 * viewer's page of 50 sent each second). Target ≥ 0.97× (issue 11).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Delivery } from '../src/core/message.ts';
import { dashboard } from '../src/dashboard/index.ts';
import { Engine } from '../src/engine/index.ts';
import { MemoryTransport } from '../src/transports/memory/transport.ts';
import { save, sideBySide } from './lib.ts';

const TOTAL = Number(process.env.DASHBOARD_BENCH_MESSAGES ?? 10_000_000);
const RUNS = Number(process.env.DASHBOARD_BENCH_RUNS ?? 5);
const BATCH = 1000;
const WINDOW = 8000;
const body = new Uint8Array(100).fill(7);

async function pump(engine: Engine): Promise<number> {
  const transport = new MemoryTransport(engine);
  const topic = `bench_${Math.random().toString(36).slice(2)}`;
  let acked = 0;
  let wake: (() => void) | undefined;
  const sub = await transport.subscribe(topic, 'c', { maxInFlight: 2500 }, (d: Delivery) => {
    d.ack();
    acked++;
    if (wake && acked % BATCH === 0) wake();
  });
  const batch = Array.from({ length: BATCH }, () => ({ body }));
  const started = performance.now();
  let published = 0;
  while (published < TOTAL) {
    if (published - acked > WINDOW) await new Promise<void>((resolve) => (wake = resolve));
    await transport.publish(topic, batch);
    published += BATCH;
  }
  while (acked < TOTAL) await new Promise<void>((resolve) => (wake = resolve));
  const seconds = (performance.now() - started) / 1000;
  await sub.close();
  await engine.deleteTopic(topic);
  return TOTAL / seconds;
}

async function watched(): Promise<{ engine: Engine; close: () => Promise<void> }> {
  const engine = new Engine();
  for (let i = 0; i < 1000; i++) engine.topic(`idle_${i}`).channel('c');
  const board = dashboard({ engine });
  const server = createServer((req, res) => board(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const viewer = new AbortController();
  const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/api/events`, { signal: viewer.signal });
  const reading = (async () => {
    for await (const _ of res.body as unknown as AsyncIterable<Uint8Array>);
  })().catch(() => {});
  return {
    engine,
    close: async () => {
      viewer.abort();
      await reading;
      await board.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await engine.close();
    },
  };
}

await sideBySide({
  runs: RUNS,
  phases: ['publish→deliver→ack msg/s'],
  raw: {
    label: 'no dashboard',
    run: async () => {
      const engine = new Engine();
      const rate = await pump(engine);
      await engine.close();
      return [rate];
    },
  },
  ours: {
    label: 'dashboard watched, 1,000 topics',
    run: async () => {
      const w = await watched();
      const rate = await pump(w.engine);
      await w.close();
      return [rate];
    },
  },
  targetRatio: 0.97,
});
save('dashboard', `Issue 11: the engine's publish→deliver→ack loop (memory://, ${TOTAL} 100-byte messages per run) without a dashboard and with one watched over SSE on an engine carrying 1,000 more topics.`);
