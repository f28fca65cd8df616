/**
 * Issue 14, "slow recovery": with the database cut long enough for the default retry backoff
 * (100 ms doubling, capped at 30 s) to grow past several seconds, the sink must still commit
 * within 1 s of the database coming back — it probes while the database is down instead of
 * sleeping out the backoff. Rows are counted over a direct connection (not through the proxy),
 * so the check neither fails during the outage nor warms the sink's pool after it.
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

const OUTAGE_MS = 8000;

test('postgresSink: first commit within 1 s after an 8 s outage; 0 lost, 0 duplicate rows', { timeout: 60_000 }, async (t) => {
  const url = await requireService(t, 'postgres');
  if (!url) return;
  const direct = new pg.Client({ connectionString: url });
  await direct.connect();
  // node:test runs after-hooks in the order they were added: each closes what comes after it first.
  const cleanup: Array<() => Promise<unknown>> = [() => direct.end()];
  t.after(async () => {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
  });
  const proxy = await TcpProxy.start('127.0.0.1', 5432);
  cleanup.push(() => proxy.close());

  const table = uniqueName('recovery').toLowerCase();
  await direct.query(`CREATE TABLE ${table} (id text PRIMARY KEY, seq int8 NOT NULL)`);
  cleanup.push(() => direct.query(`DROP TABLE IF EXISTS ${table}`));
  const sink = postgresSink<{ seq: number }>({
    url: `postgres://postgres@127.0.0.1:${proxy.port}/test`,
    table,
    columns: { seq: { type: 'int8', value: (r) => r.seq } },
    connectTimeoutMs: 10_000,
  });
  cleanup.push(() => sink.close());
  const topic = uniqueName('rec');
  const Msg = defineMessage({ name: 'rec', topic, schema: z.object({ seq: z.number() }) });
  const a = app({ url: `memory://${uniqueName('rec')}?scanIntervalMs=10` });
  cleanup.push(() => a.close({ force: true }));
  // The default retry backoff: this is the schedule that grew to seconds before the fix.
  await a.consumeBatch(Msg, { channel: 'archive', timeoutMs: 2000, batch: { maxSize: 50, maxWaitMs: 20 } }, sink.handler);

  const count = async () => {
    const r = await direct.query<{ n: string; d: string }>(`SELECT count(*) AS n, count(DISTINCT seq) AS d FROM ${table}`);
    return { rows: Number(r.rows[0]!.n), distinct: Number(r.rows[0]!.d) };
  };
  let sent = 0;
  const publishSome = (n: number) => a.publishMany(Msg, Array.from({ length: n }, () => ({ seq: sent++ })));

  await publishSome(200);
  await waitFor(async () => (await count()).rows === 200, 'the first 200 rows');

  proxy.refuse(true);
  proxy.dropAll();
  await publishSome(300); // held in flight while the database is down
  await new Promise((r) => setTimeout(r, OUTAGE_MS));
  assert.equal((await count()).rows, 200, 'nothing committed while the database was cut');
  let peakHeld = 0;
  for (const s of a.stats()) peakHeld = Math.max(peakHeld, s.waiting);
  assert.ok(peakHeld > 0 && peakHeld <= 100, `held ${peakHeld} (≤ maxInFlight) during the outage`);

  const restored = Date.now();
  proxy.refuse(false);
  await waitFor(async () => (await count()).rows > 200, 'the first commit after the outage', 10_000, 5);
  const recoveryMs = Date.now() - restored;
  console.log(`# postgres sink: first commit ${recoveryMs} ms after an ${OUTAGE_MS} ms outage ended`);
  assert.ok(recoveryMs < 1000, `first commit ${recoveryMs} ms after the database came back (want < 1000)`);

  await publishSome(100);
  await waitFor(async () => (await count()).rows === 600, 'all 600 rows', 10_000);
  const final = await count();
  assert.deepEqual(final, { rows: 600, distinct: 600 }, '0 lost, 0 duplicates');
});
