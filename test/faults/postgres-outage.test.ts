/**
 * Issue 14's database outage: the PostgreSQL sink behind src/testing/proxy.ts, publishing going
 * on the whole time; the database cut for 20 s mid-run (live connections dropped, new ones
 * refused), then restored. 0 lost, 0 duplicate rows, the consumer holding no more than its
 * maxInFlight, RSS bounded; the time from restore to the first commit is printed.
 * (test/sinks/postgres-recovery.test.ts asserts the < 1 s recovery on a quiet 8 s cut.)
 *
 * Sizes: 100 messages every 50 ms for ~26 s (about 50,000), batches of up to 200.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { z } from 'zod';
import { defineMessage } from '../../src/core/schema.ts';
import { app } from '../../src/runtime/app.ts';
import { postgresSink } from '../../src/sinks/postgres/index.ts';
import { TcpProxy } from '../../src/testing/proxy.ts';
import { requireService, uniqueName, waitFor } from '../helpers/index.ts';
import { report, sampleRss, sleep } from './helpers.ts';

const OUTAGE_MS = 20_000;
const MAX_IN_FLIGHT = 400;

test('PostgreSQL cut for 20 s under load: 0 lost, 0 duplicates, memory bounded', { timeout: 120_000 }, async (t) => {
  const url = await requireService(t, 'postgres');
  if (!url) return;
  const direct = new pg.Client({ connectionString: url });
  await direct.connect();
  const cleanup: Array<() => Promise<unknown>> = [() => direct.end()];
  t.after(async () => {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
  });
  const proxy = await TcpProxy.start('127.0.0.1', 5432);
  cleanup.push(() => proxy.close());
  const table = uniqueName('outage').toLowerCase();
  await direct.query(`CREATE TABLE ${table} (id text PRIMARY KEY, seq int8 NOT NULL)`);
  cleanup.push(() => direct.query(`DROP TABLE IF EXISTS ${table}`));
  const sink = postgresSink<{ seq: number }>({
    url: `postgres://postgres@127.0.0.1:${proxy.port}/test`,
    table,
    columns: { seq: { type: 'int8', value: (r) => r.seq } },
  });
  cleanup.push(() => sink.close());
  const topic = uniqueName('outage');
  const Msg = defineMessage({ name: 'row', topic, schema: z.object({ seq: z.number() }) });
  const a = app({ url: `memory://${uniqueName('outage')}?scanIntervalMs=10` });
  cleanup.push(() => a.close({ force: true }));
  await a.consumeBatch(Msg, { channel: 'archive', maxInFlight: MAX_IN_FLIGHT, timeoutMs: 5000, batch: { maxSize: 200, maxWaitMs: 20 } }, sink.handler);
  const rows = async () => Number((await direct.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);

  let sent = 0;
  let producing = true;
  const producer = (async () => {
    while (producing) {
      await a.publishMany(Msg, Array.from({ length: 100 }, () => ({ seq: sent++ })));
      await sleep(50);
    }
  })();
  await waitFor(async () => (await rows()) > 1000, 'rows flowing', 20_000, 20);
  const rss = sampleRss();
  proxy.refuse(true);
  proxy.dropAll();
  const atCut = await rows();
  let peakHeld = 0;
  const holding = setInterval(() => {
    for (const s of a.stats()) peakHeld = Math.max(peakHeld, s.waiting); // held = delivered, not yet acked (the running batch included)
  }, 50);
  await sleep(OUTAGE_MS);
  const committedDuringCut = (await rows()) - atCut;
  const restored = performance.now();
  proxy.refuse(false);
  await waitFor(async () => (await rows()) > atCut + committedDuringCut, 'the first commit after the outage', 20_000, 5);
  const recoveryMs = performance.now() - restored;
  await sleep(2000);
  producing = false;
  await producer;
  await waitFor(async () => (await rows()) >= sent, `all ${sent} rows`, 60_000, 50);
  clearInterval(holding);
  const memory = rss.stop();
  const r = (await direct.query(`SELECT count(*)::int AS n, count(DISTINCT seq)::int AS d FROM ${table}`)).rows[0];
  report('postgres outage', {
    outageMs: OUTAGE_MS,
    published: sent,
    rows: r.n,
    distinct: r.d,
    committedDuringCut,
    peakHeld,
    recoveryMs,
    rssBeforeMb: memory.firstMb,
    rssPeakMb: memory.peakMb,
  });
  assert.equal(committedDuringCut, 0, 'nothing commits while the database is cut');
  assert.deepEqual({ rows: r.n, distinct: r.d }, { rows: sent, distinct: sent }, '0 lost, 0 duplicates');
  assert.ok(peakHeld <= MAX_IN_FLIGHT, `held ${peakHeld} > maxInFlight ${MAX_IN_FLIGHT}`);
  assert.ok(memory.peakMb - memory.firstMb < 150, `RSS grew ${(memory.peakMb - memory.firstMb).toFixed(0)} MB during the outage`);
  assert.ok(recoveryMs < 5000, `first commit ${recoveryMs.toFixed(0)} ms after the database came back`);
});
