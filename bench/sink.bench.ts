/**
 * The PostgreSQL sink into this machine's PostgreSQL, 200-byte rows, side by side with the
 * seeds' original approach (one INSERT and one commit per message). Both write the same rows
 * to their own table; the sink drains a published backlog through consumeBatch (batches of
 * 1000) over memory://, so the figure includes decoding, batching and acking.
 */
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
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
  await a.consumeBatch(Row, { channel: 'archive', maxInFlight: 2500, batch: { maxSize: 1250, maxWaitMs: 50, concurrency: 2 } }, async (values, ctx) => {
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

/**
 * The alternative the issue names: COPY. Idempotency needs a staging table (COPY cannot skip
 * duplicates), so per batch: COPY into a temp table, INSERT … SELECT … ON CONFLICT DO NOTHING,
 * in one transaction — the same guarantees as the unnest statement. Same rows, batches of 1000,
 * prebuilt in memory (no runtime), so it is the database-side ceiling of each approach.
 */
async function copyVsUnnest(): Promise<[number, number]> {
  const client = new pg.Client({ connectionString: URL });
  await client.connect();
  const table = `bench_copy_${process.pid}`;
  await client.query(`DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} (id text PRIMARY KEY, n int8, ts int8, data text)`);
  const now = Date.now();
  const batches = ROWS / 1000;
  let start = performance.now();
  for (let b = 0; b < batches; b++) {
    await client.query('BEGIN');
    await client.query(`CREATE TEMP TABLE IF NOT EXISTS stage (id text, n int8, ts int8, data text) ON COMMIT DELETE ROWS`);
    const stream = client.query(copyFrom('COPY stage (id, n, ts, data) FROM STDIN'));
    let text = '';
    for (let j = 0; j < 1000; j++) text += `c${b * 1000 + j}\t${b * 1000 + j}\t${now}\t${payload}\n`;
    await new Promise<void>((resolve, reject) => {
      stream.on('finish', resolve);
      stream.on('error', reject);
      stream.end(text);
    });
    await client.query(`INSERT INTO ${table} SELECT * FROM stage ON CONFLICT (id) DO NOTHING`);
    await client.query('COMMIT');
  }
  const copy = ROWS / ((performance.now() - start) / 1000);
  start = performance.now();
  for (let b = 0; b < batches; b++) {
    const ids: string[] = [];
    const ns: number[] = [];
    const tss: number[] = [];
    const datas: string[] = [];
    for (let j = 0; j < 1000; j++) {
      ids.push(`u${b * 1000 + j}`);
      ns.push(b * 1000 + j);
      tss.push(now);
      datas.push(payload);
    }
    await client.query(`INSERT INTO ${table} (id, n, ts, data) SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::text[]) ON CONFLICT (id) DO NOTHING`, [ids, ns, tss, datas]);
  }
  const unnest = ROWS / ((performance.now() - start) / 1000);
  await client.query(`DROP TABLE ${table}`);
  await client.end();
  return [copy, unnest];
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

const copies: number[] = [];
const unnests = await repeat(RUNS, async () => {
  const [c, u] = await copyVsUnnest();
  copies.push(c);
  return u;
});
const fast = await repeat(RUNS, viaSink);
const slow = await repeat(RUNS, perMessage);
record({ name: 'postgresSink via consumeBatch (1250 per batch, 2 at once, unnest INSERT, ON CONFLICT)', perSecond: median(fast), runs: fast, target: 150_000, notes: `${ROWS.toLocaleString('en-US')} rows of ~200 B per run; ${(median(fast) / median(slow)).toFixed(0)}× the per-message approach (target ≥ 30×)` });
record({ name: "the seeds' approach: one INSERT and COMMIT per message", perSecond: median(slow), runs: slow, notes: `${SLOW_ROWS} rows per run` });
const copyRuns = copies.slice(-RUNS);
record({ name: 'database ceiling: unnest INSERT … ON CONFLICT, batches of 1000, no runtime', perSecond: median(unnests), runs: unnests });
record({
  name: 'database ceiling: COPY into a temp table + INSERT … ON CONFLICT, batches of 1000, no runtime',
  perSecond: median(copyRuns),
  runs: copyRuns,
  notes: `COPY/unnest = ${(median(copyRuns) / median(unnests)).toFixed(2)}`,
});
save('sink', `PostgreSQL at ${URL}: the batch sink against one INSERT + COMMIT per message, same rows.`);
