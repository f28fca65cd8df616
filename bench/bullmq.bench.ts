/**
 * Conveyor against BullMQ, the job queue users of Redis pick, on this machine's Redis, in one run
 * (issue 12): JOBS jobs of 200 bytes, concurrency 64, at-least-once both sides.
 *   BullMQ:   Queue.addBulk (chunks of 1000)  → Worker(concurrency 64), each job completed.
 *   Conveyor: app.publishMany (chunks of 1000) → app.consume(concurrency 64) on redis:// (a stream
 *             per topic, a consumer group per channel, XACK after the handler).
 * Phases, each run alternating which side goes first: publish a backlog; process that backlog;
 * and publish while processing, whose enqueue→handler latency gives p50/p99.
 */
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { defineMessage } from '../src/core/schema.ts';
import { app } from '../src/runtime/app.ts';
import { median, percentile, record, save } from './lib.ts';

const URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const JOBS = Number(process.env.BULLMQ_BENCH_JOBS ?? 100_000);
const RUNS = Number(process.env.BULLMQ_BENCH_RUNS ?? 3);
const CONCURRENCY = 64;
const CHUNK = 1000;
const payload = { p: 'x'.repeat(192) };
const JobSchema = z.object({ p: z.string() });
let seq = 0;

interface Figures {
  publish: number;
  process: number;
  mixed: number;
  latencies: number[];
}

function waiter(total: number): { tick: (latencyMs?: number) => void; done: Promise<void>; latencies: number[] } {
  let n = 0;
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  const latencies: number[] = [];
  return {
    latencies,
    done,
    tick(latencyMs) {
      if (latencyMs !== undefined) latencies.push(latencyMs);
      if (++n === total) resolve();
    },
  };
}

async function bullmq(): Promise<Figures> {
  const connection = { url: URL, maxRetriesPerRequest: null };
  const name = `bench-bull-${process.pid}-${seq++}`;
  const queue = new Queue(name, { connection });
  const publish = async () => {
    for (let i = 0; i < JOBS; i += CHUNK) await queue.addBulk(Array.from({ length: CHUNK }, () => ({ name: 'job', data: payload, opts: { removeOnComplete: true } })));
  };
  let t = performance.now();
  await publish();
  const pub = JOBS / ((performance.now() - t) / 1000);

  let w = waiter(JOBS);
  t = performance.now();
  const worker = new Worker(name, async () => w.tick(), { connection, concurrency: CONCURRENCY, autorun: true });
  await w.done;
  const proc = JOBS / ((performance.now() - t) / 1000);

  w = waiter(JOBS);
  await worker.close();
  const timed = new Worker(name, async (job) => w.tick(Date.now() - job.timestamp), { connection, concurrency: CONCURRENCY });
  t = performance.now();
  await publish();
  await w.done;
  const mixed = JOBS / ((performance.now() - t) / 1000);
  await timed.close();
  await queue.obliterate({ force: true });
  await queue.close();
  return { publish: pub, process: proc, mixed, latencies: w.latencies };
}

async function conveyor(): Promise<Figures> {
  const topic = `bench-conv-${process.pid}-${seq++}`;
  const T = defineMessage({ name: 'job', topic, schema: JobSchema });
  const values = Array.from({ length: CHUNK }, () => payload);
  const producer = app({ url: `${URL}?prefix=bench:` });
  const publish = async () => {
    for (let i = 0; i < JOBS; i += CHUNK) await producer.publishMany(T, values);
  };
  // The channel's consumer group must exist before the backlog, as BullMQ's queue does.
  const setup = app({ url: `${URL}?prefix=bench:` });
  const first = await setup.consume(T, { channel: 'work', concurrency: 1 }, async () => {});
  await first.close();
  await setup.close();

  let t = performance.now();
  await publish();
  const pub = JOBS / ((performance.now() - t) / 1000);

  let w = waiter(JOBS);
  const worker = app({ url: `${URL}?prefix=bench:` });
  t = performance.now();
  await worker.consume(T, { channel: 'work', concurrency: CONCURRENCY }, async () => w.tick());
  await w.done;
  const proc = JOBS / ((performance.now() - t) / 1000);
  await worker.close();

  w = waiter(JOBS);
  const timed = app({ url: `${URL}?prefix=bench:` });
  await timed.consume(T, { channel: 'work', concurrency: CONCURRENCY }, async (_v, ctx) => w.tick(Date.now() - ctx.timestamp));
  t = performance.now();
  await publish();
  await w.done;
  const mixed = JOBS / ((performance.now() - t) / 1000);
  await timed.close();
  await producer.close();
  const r = new Redis(URL);
  const keys = await r.keys(`bench:${topic}*`);
  if (keys.length > 0) await r.del(...keys);
  await r.quit();
  return { publish: pub, process: proc, mixed, latencies: w.latencies };
}

const sides = { bullmq: [] as Figures[], conveyor: [] as Figures[] };
await bullmq(); // warm-up, both
await conveyor();
for (let i = 0; i < RUNS; i++) {
  const order: Array<keyof typeof sides> = i % 2 ? ['conveyor', 'bullmq'] : ['bullmq', 'conveyor'];
  for (const side of order) sides[side].push(await (side === 'bullmq' ? bullmq() : conveyor()));
}

const phases = [
  ['publish', 'publish a backlog (addBulk / publishMany, chunks of 1000)'],
  ['process', 'process the backlog, concurrency 64'],
  ['mixed', 'publish and process at once'],
] as const;
for (const [key, what] of phases) {
  const b = sides.bullmq.map((f) => f[key]);
  const c = sides.conveyor.map((f) => f[key]);
  const lat = (side: Figures[]) => side.flatMap((f) => f.latencies);
  const latency = key === 'mixed' ? (s: Figures[]) => ({ p50Ms: percentile(lat(s), 50), p99Ms: percentile(lat(s), 99) }) : () => ({});
  record({ name: `BullMQ: ${what}`, perSecond: median(b), runs: b, ...latency(sides.bullmq) });
  record({
    name: `Conveyor redis://: ${what}`,
    perSecond: median(c),
    runs: c,
    ...latency(sides.conveyor),
    notes: `Conveyor/BullMQ = ${(median(c) / median(b)).toFixed(2)} (target ≥ 3)`,
  });
}
save(
  'bullmq',
  `${JOBS.toLocaleString('en-US')} jobs of 200 bytes, concurrency 64, at-least-once, on one local Redis; medians of ${RUNS} interleaved runs after a warm-up. Latency: enqueue → handler start, while publishing and processing at once.`,
);
