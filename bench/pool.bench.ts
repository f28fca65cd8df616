/**
 * Conveyor's hand-written WorkerPool against piscina and tinypool on the same work (issue 13:
 * keep ours only if it wins). Each pool runs the same tasks with the same number of threads and
 * the same number in flight (64), one pool at a time, the order rotated per run:
 *   - no work (returns n * 2): what a pool costs per task — dispatch, structured clone, wake-ups;
 *   - 1 ms of CPU per task on 2 threads: throughput when the threads are the bottleneck;
 *   - one pg-native querySync write per task on 8 threads: the kv benchmark's run_in_executor.
 * Reported: tasks/s (median of runs) and p99 task latency; ratios ours / theirs.
 */
import { availableParallelism } from 'node:os';
import pg from 'pg';
import { Piscina } from 'piscina';
import Tinypool from 'tinypool';
import { WorkerPool } from '../src/runtime/pool/index.ts';
import { keyValueSink } from '../src/sinks/kv/index.ts';
import { median, percentile, record, save } from './lib.ts';

const RUNS = Number(process.env.POOL_BENCH_RUNS ?? 5);
const SCALE = Number(process.env.POOL_BENCH_SCALE ?? 1);
const IN_FLIGHT = 64;
const PG = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const cpuTask = new URL('./fixtures/pool-task.mjs', import.meta.url);
const pgTask = new URL('./fixtures/kv-sync-task.mjs', import.meta.url);

interface Runner {
  run(task: unknown): Promise<unknown>;
  close(): Promise<void>;
}
type Make = (module: URL, threads: number) => Runner;

const pools: Record<string, Make> = {
  'conveyor WorkerPool': (module, threads) => {
    const p = new WorkerPool({ module, size: threads, maxQueue: 10_000 });
    return { run: (t) => p.run(t), close: () => p.close() };
  },
  piscina: (module, threads) => {
    const p = new Piscina({ filename: module.href, minThreads: threads, maxThreads: threads, idleTimeout: 60_000 });
    return { run: (t) => p.run(t), close: () => p.destroy() };
  },
  tinypool: (module, threads) => {
    const p = new Tinypool({ filename: module.href, minThreads: threads, maxThreads: threads, idleTimeout: 60_000 });
    return { run: (t) => p.run(t), close: () => p.destroy() };
  },
};

/** Runs `count` tasks with IN_FLIGHT outstanding; returns tasks/s and every task's latency. */
async function drive(pool: Runner, count: number, task: (i: number) => unknown): Promise<{ rate: number; latencies: number[] }> {
  const latencies: number[] = [];
  let next = 0;
  const start = performance.now();
  const lane = async () => {
    while (next < count) {
      const i = next++;
      const t0 = performance.now();
      await pool.run(task(i));
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  return { rate: count / ((performance.now() - start) / 1000), latencies };
}

interface Workload {
  name: string;
  module: URL;
  threads: number;
  count: number;
  task: (i: number) => unknown;
}

async function measure(w: Workload): Promise<void> {
  const names = Object.keys(pools);
  const made = Object.fromEntries(names.map((n) => [n, pools[n]!(w.module, w.threads)])) as Record<string, Runner>;
  // Warm-up: every thread up and its module loaded (and, for pg, connected).
  for (const n of names) await drive(made[n]!, w.threads * 20, w.task);
  const rates: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  const p99s: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < RUNS; r++) {
    for (let k = 0; k < names.length; k++) {
      const n = names[(k + r) % names.length]!;
      const { rate, latencies } = await drive(made[n]!, w.count, w.task);
      rates[n]!.push(rate);
      p99s[n]!.push(percentile(latencies, 99));
    }
  }
  for (const n of names) await made[n]!.close();
  const ours = median(rates['conveyor WorkerPool']!);
  for (const n of names) {
    const rate = median(rates[n]!);
    record({
      name: `${w.name}: ${n}`,
      perSecond: rate,
      runs: rates[n]!,
      p99Ms: median(p99s[n]!),
      notes: n === 'conveyor WorkerPool' ? `${w.threads} threads, ${w.count} tasks, ${IN_FLIGHT} in flight` : `ours/${n} = ${(ours / rate).toFixed(2)}`,
    });
  }
}

const setup = keyValueSink({ url: PG, table: `bench_pool_${process.pid}` });
await setup.start(); // the table and apply function the pg task writes through
const db = new pg.Client({ connectionString: PG });
await db.connect();
const table = `bench_pool_${process.pid}`;
const pgSql = `SELECT ${table}_apply($1::jsonb, $2::int) AS r`;
let id = 0;
const workloads: Workload[] = [
  { name: 'no work', module: cpuTask, threads: 2, count: Math.round(20_000 * SCALE), task: (i) => ({ spinMs: 0, n: i }) },
  { name: '1 ms CPU', module: cpuTask, threads: Math.min(2, availableParallelism()), count: Math.round(2000 * SCALE), task: (i) => ({ spinMs: 1, n: i }) },
  {
    name: 'pg-native write',
    module: pgTask,
    threads: 8,
    count: Math.round(2000 * SCALE),
    task: (i) => ({
      url: PG,
      sql: pgSql,
      params: [JSON.stringify([{ t: 'maps', b: 'pool', key: `k${i % 1000}`, id: `w${id++}`, k: 'u', ts: 0, ops: [{ p: 'n', t: 'counter', a: 'increment', v: 1 }] }]), 1024],
    }),
  },
];
for (const w of workloads) await measure(w);
await db.end();
await setup.dropAll();
await setup.close();
save('pool', 'Conveyor WorkerPool vs piscina vs tinypool: same task module, same threads, 64 tasks in flight, one pool at a time.');
