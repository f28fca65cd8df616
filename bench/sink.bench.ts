/**
 * The PostgreSQL sink into this machine's PostgreSQL, 200-byte rows, side by side with the
 * seeds' original approach (one INSERT and one commit per message). Both write the same rows
 * to their own table; the sink drains a published backlog through consumeBatch (batches of
 * 1000) over memory://, so the figure includes decoding, batching and acking.
 */
import pg from 'pg';
import { z } from 'zod';
import { defineMessage } from '../src/core/schema.ts';
import { app } from '../src/runtime/app.ts';
import { postgresSink } from '../src/sinks/postgres/index.ts';
import { median, record, repeat, save } from './lib.ts';

const URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const ROWS = Number(process.env.SINK_BENCH_ROWS ?? 200_000);
const SLOW_ROWS = Number(process.env.SINK_BENCH_SLOW_ROWS ?? 3000);
const RUNS = Number(process.env.SINK_BENCH_RUNS ?? 3);
const payload = 'x'.repeat(160); // + ts, n and id: ~200 bytes per row
const Row = defineMessage({ name: 'row', topic: 'rows', schema: z.object({ n: z.number(), ts: z.number(), data: z.string() }) });

async function viaSink(): Promise<number> {
  const table = `bench_sink_${process.pid}`;
  const sink = postgresSink<{ n: number; ts: number; data: string }>({
    url: URL,
    table,
    columns: { n: { type: 'int8', value: (r) => r.n }, ts: { type: 'int8', value: (r) => r.ts }, data: { type: 'text', value: (r) => r.data } },
  });
  await sink.exec(`DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} (id text PRIMARY KEY, n int8, ts int8, data text)`);
  const a = app({ url: 'memory://' });
  // The backlog is published first (the topic holds it until the channel exists), so the figure
  // is the sink draining it: decode, batch, INSERT, commit, ack.
  const now = Date.now();
  for (let i = 0; i < ROWS; i += 1000) await a.publishMany(Row, Array.from({ length: 1000 }, (_, j) => ({ n: i + j, ts: now, data: payload })));
  let stored = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const start = performance.now();
  await a.consumeBatch(Row, { channel: 'archive', maxInFlight: 2500, batch: { maxSize: 1000, maxWaitMs: 50, concurrency: 2 } }, async (values, ctx) => {
    await sink.handler(values, ctx);
    stored += values.length;
    if (stored >= ROWS) done();
  });
  await finished;
  const rate = ROWS / ((performance.now() - start) / 1000);
  await a.close();
  await sink.exec(`DROP TABLE ${table}`);
  await sink.close();
  return rate;
}

/** The seeds' code: for each message, INSERT then COMMIT. */
async function perMessage(): Promise<number> {
  const client = new pg.Client({ connectionString: URL });
  await client.connect();
  const table = `bench_slow_${process.pid}`;
  await client.query(`DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} (id text PRIMARY KEY, n int8, ts int8, data text)`);
  const now = Date.now();
  const start = performance.now();
  for (let i = 0; i < SLOW_ROWS; i++) {
    await client.query('BEGIN');
    await client.query(`INSERT INTO ${table} (id, n, ts, data) VALUES ($1, $2, $3, $4)`, [String(i), i, now, payload]);
    await client.query('COMMIT');
  }
  const rate = SLOW_ROWS / ((performance.now() - start) / 1000);
  await client.query(`DROP TABLE ${table}`);
  await client.end();
  return rate;
}

const fast = await repeat(RUNS, viaSink);
const slow = await repeat(RUNS, perMessage);
record({ name: 'postgresSink via consumeBatch (1000 per batch, 2 at once, unnest INSERT, ON CONFLICT)', perSecond: median(fast), runs: fast, target: 150_000, notes: `${ROWS.toLocaleString('en-US')} rows of ~200 B per run; ${(median(fast) / median(slow)).toFixed(0)}× the per-message approach (target ≥ 30×)` });
record({ name: "the seeds' approach: one INSERT and COMMIT per message", perSecond: median(slow), runs: slow, notes: `${SLOW_ROWS} rows per run` });
save('sink', `PostgreSQL at ${URL}: the batch sink against one INSERT + COMMIT per message, same rows.`);
