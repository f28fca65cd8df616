/**
 * The RabbitMQ → Riak talk's point, measured (issue 13): one amqp:// consumer storing the same
 * N messages into the same store three ways, in one run —
 *   1. a synchronous client called on the event loop (pg-native's querySync: libpq, blocking),
 *      one write per message, as the talk's callback calls riak's store();
 *   2. the same synchronous client in Conveyor's WorkerPool (the talk's run_in_executor with
 *      ThreadPoolExecutor(max_workers=8)): one write per message on a thread;
 *   3. the async client through keyValueSink (node-postgres, consumeBatch, one statement per batch).
 * Every write is the same datatype update (counter + set + register on one of 10,000 keys),
 * applied by the same SQL function the sink installs, so idempotence and type checks are the same
 * in all three. After each run the counters are summed: every message stored exactly once.
 * For reference a fourth row: the same sink on Redis (no sync client to compare there).
 * Reported per way: msg/s, p99 handler latency (per message for 1–2, per batch for 3), and the
 * event loop's delay (perf_hooks.monitorEventLoopDelay) while it ran.
 */
import { createRequire } from 'node:module';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';
import pg from 'pg';
import { z } from 'zod';
import { connect } from '../src/connect.ts';
import { defineMessage } from '../src/core/schema.ts';
import { app } from '../src/runtime/app.ts';
import { WorkerPool } from '../src/runtime/pool/index.ts';
import { counter, keyValueSink, register, set } from '../src/sinks/kv/index.ts';
import { median, percentile, record, save } from './lib.ts';

const AMQP = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const PG = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const N = Number(process.env.KV_BENCH_MESSAGES ?? 100_000);
const RUNS = Number(process.env.KV_BENCH_RUNS ?? 3);
const THREADS = Number(process.env.KV_BENCH_THREADS ?? 8);
const KEYS = 10_000;
const table = `bench_kv_${process.pid}`;
const Visit = z.object({ user: z.string(), page: z.string(), n: z.number() });
type Visit = z.infer<typeof Visit>;
let seq = 0;

/** The one-item batch the sync client sends per message: the same write the sink batches. */
function oneWrite(v: Visit, id: string, ts: number): unknown[] {
  const ops = [
    { p: 'visits', t: 'counter', a: 'increment', v: 1 },
    { p: 'pages', t: 'set', a: 'add', v: [v.page] },
    { p: 'last', t: 'register', a: 'assign', v: v.page },
  ];
  return [JSON.stringify([{ t: 'maps', b: 'visits', key: v.user, id, k: 'u', ts, ops }]), 1024];
}
const SQL = `SELECT ${table}_apply($1::jsonb, $2::int) AS r`;

interface Outcome {
  rate: number;
  p99: number;
  loopP99: number;
  loopMax: number;
}

/** Publishes the backlog to a durable queue first, then times one consumer draining it. */
type Way = 'loop' | 'pool' | 'sink' | 'redis';
const prefix = `bench_kv_${process.pid}`;

async function run(way: Way, pool?: WorkerPool): Promise<Outcome> {
  const topic = `bench_kv_${process.pid}_${seq++}`;
  const Msg = defineMessage({ name: 'visit', topic, schema: Visit });
  const t = await connect(AMQP);
  const holder = await t.subscribe(topic, 'kv', { maxInFlight: 1 }, (d) => d.nack());
  holder.pause();
  await holder.close(); // the queue stays, bound to the exchange: the backlog waits in it
  const producer = app({ url: AMQP });
  for (let i = 0; i < N; i += 1000) {
    await producer.publishMany(Msg, Array.from({ length: Math.min(1000, N - i) }, (_, j) => ({ user: `u${(i + j) % KEYS}`, page: `/p${(i + j) % 50}`, n: i + j })));
  }
  await producer.close();

  const latencies: number[] = [];
  let stored = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const count = (k: number) => {
    stored += k;
    if (stored >= N) done();
  };
  const a = app({ url: AMQP });
  const loop = monitorEventLoopDelay({ resolution: 5 });
  let native: { querySync(sql: string, params: unknown[]): unknown; end(): void } | undefined;
  let sink: ReturnType<typeof keyValueSink> | undefined;
  if (way === 'loop') {
    const Client = createRequire(import.meta.url)('pg-native');
    native = new Client();
    (native as unknown as { connectSync(url: string): void }).connectSync(PG);
  }
  if (way === 'sink' || way === 'redis') {
    sink = way === 'sink' ? keyValueSink({ url: PG, table, poolSize: 2 }) : keyValueSink({ url: REDIS, prefix });
    await sink.start();
  }
  const start = performance.now();
  loop.enable();
  if (sink) {
    const visits = sink!.bucket('maps', 'visits');
    const handler = sink!.handler<Visit>((v) => visits.update(v.user, [counter('visits').increment(), set('pages').add(v.page), register('last').assign(v.page)]));
    await a.consumeBatch(Msg, { channel: 'kv', maxInFlight: 2000, batch: { maxSize: 1000, maxWaitMs: 20, concurrency: 2 } }, Object.assign(async (values: Visit[], ctx: Parameters<typeof handler>[1]) => {
      const t0 = performance.now();
      await handler(values, ctx);
      latencies.push(performance.now() - t0);
      count(values.length);
    }, { probe: handler.probe }));
  } else {
    await a.consume(Msg, { channel: 'kv', concurrency: way === 'pool' ? THREADS * 2 : 1, maxInFlight: 200 }, async (v, ctx) => {
      const t0 = performance.now();
      const params = oneWrite(v, ctx.id, ctx.timestamp);
      if (way === 'loop') native!.querySync(SQL, params);
      else await pool!.run({ url: PG, sql: SQL, params });
      latencies.push(performance.now() - t0);
      count(1);
    });
  }
  await finished;
  const elapsed = performance.now() - start;
  loop.disable();
  await a.close();
  native?.end();
  await sink?.close();
  const ch = await (t as unknown as { connection: { createChannel(): Promise<{ deleteQueue(q: string): Promise<unknown>; deleteExchange(e: string): Promise<unknown>; close(): Promise<void> }> } }).connection.createChannel();
  await ch.deleteQueue(`${topic}:kv`);
  await ch.deleteExchange(topic);
  await t.close();
  return { rate: N / (elapsed / 1000), p99: percentile(latencies, 99), loopP99: loop.percentile(99) / 1e6, loopMax: loop.max / 1e6 };
}

async function main(): Promise<void> {
  const setup = keyValueSink({ url: PG, table });
  await setup.start(); // creates the table and its apply function
  const db = new pg.Client({ connectionString: PG });
  await db.connect();
  const pool = new WorkerPool({ module: new URL('./fixtures/kv-sync-task.mjs', import.meta.url), size: THREADS, maxQueue: 10_000 });
  const redis = keyValueSink({ url: REDIS, prefix });
  const results: Record<Way, Outcome[]> = { loop: [], pool: [], sink: [], redis: [] };
  // KV_BENCH_WAYS=sink,redis runs a subset (for profiling); the recorded run has all four.
  const ways = (['loop', 'pool', 'sink', 'redis'] as const).filter((w) => !process.env.KV_BENCH_WAYS || process.env.KV_BENCH_WAYS.split(',').includes(w));
  for (let r = 0; r < RUNS; r++) {
    // Rotate which way goes first, so none always runs on a freshly vacuumed table.
    for (let w = 0; w < ways.length; w++) {
      const way = ways[(w + r) % ways.length]!;
      await db.query(`TRUNCATE ${table}`);
      results[way].push(await run(way, pool));
      let visits = 0;
      if (way === 'redis') {
        for (let k = 0; k < KEYS; k += 1000) {
          const read = await redis.read(Array.from({ length: Math.min(1000, KEYS - k) }, (_, j) => ({ type: 'maps', bucket: 'visits', key: `u${k + j}` })));
          for (const r of read) visits += (r.stored?.value as { visits?: number } | undefined)?.visits ?? 0;
        }
        await redis.dropAll();
      } else {
        const { rows } = await db.query(`SELECT coalesce(sum((doc->>'visits')::int8), 0) AS n FROM ${table}`);
        visits = Number(rows[0].n);
      }
      if (visits !== N) throw new Error(`${way}: stored ${visits} visits, want ${N}`);
    }
  }
  await pool.close();
  await db.end();
  await setup.dropAll();
  await setup.close();
  await redis.close();
  const med = (way: Way, f: keyof Outcome) => median(results[way].map((o) => o[f]));
  const loopRate = ways.includes('loop') ? med('loop', 'rate') : Number.NaN;
  const poolRate = ways.includes('pool') ? med('pool', 'rate') : Number.NaN;
  const labels = {
    loop: 'sync client (pg-native querySync) on the event loop, one write per message',
    pool: `sync client in WorkerPool (${THREADS} threads, run_in_executor), one write per message`,
    sink: 'async keyValueSink (node-postgres, consumeBatch 1000, 2 at once), one statement per batch',
    redis: 'for reference: the same keyValueSink on Redis (ioredis, one Lua script per batch)',
  };
  for (const way of ways) {
    const rate = med(way, 'rate');
    record({
      name: labels[way],
      perSecond: rate,
      runs: results[way].map((o) => o.rate),
      p99Ms: med(way, 'p99'),
      notes: [
        `event-loop delay p99 ${med(way, 'loopP99').toFixed(1)} ms, max ${med(way, 'loopMax').toFixed(1)} ms`,
        way === 'redis' ? `p99 is per batch; ${(rate / loopRate).toFixed(1)}× the sync client on PostgreSQL` : '',
        way === 'sink' ? `p99 is per batch; ${(rate / loopRate).toFixed(1)}× sync-on-loop (target ≥ 5), ${(rate / poolRate).toFixed(1)}× pool (target ≥ 2)` : '',
        way === 'pool' ? `${(rate / loopRate).toFixed(2)}× sync-on-loop` : '',
      ]
        .filter(Boolean)
        .join('; '),
    });
  }
  save('kv', `amqp:// → PostgreSQL at ${PG} (and Redis at ${REDIS} for reference), ${N.toLocaleString('en-US')} messages per run, ${KEYS} keys, each message a counter + set + register update.`);
}

if (isMainThread) await main();
