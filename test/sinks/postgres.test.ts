import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import { z } from 'zod';
import { defineMessage } from '../../src/core/schema.ts';
import { app } from '../../src/runtime/app.ts';
import { type Column, postgresSink } from '../../src/sinks/postgres/index.ts';
import { TcpProxy } from '../../src/testing/proxy.ts';
import { requireService, tempDir, uniqueName, waitFor } from '../helpers/index.ts';


type R = { sensor: string; value: number };
function columns(): Record<string, Column<R>> {
  return {
    sensor: { type: 'text', value: (r) => r.sensor },
    value: { type: 'float8', value: (r) => r.value },
    received_at: { type: 'timestamptz', value: (_r, m) => new Date(m.timestamp).toISOString() },
  };
}

/** Every table made on the real server, so that the last test can check none is left. */
const created: string[] = [];

/**
 * `directUrl`: the server itself, for a sink whose `url` goes through a fault proxy. The table is
 * dropped over it, since by then the proxy may be cut or closed (it left one table per run).
 */
async function pipeline(t: TestContext, url: string | undefined, dataDir?: string, maxSize = 50, directUrl = url) {
  const table = uniqueName('readings').toLowerCase();
  if (url) created.push(table);
  const sink = postgresSink({ url, dataDir, table, columns: columns(), connectTimeoutMs: 10_000 });
  await sink.exec(`CREATE TABLE ${table} (id text PRIMARY KEY, sensor text NOT NULL, value float8 NOT NULL CHECK (value >= 0), received_at timestamptz)`);
  const topic = uniqueName('r');
  const Msg = defineMessage({ name: 'reading', topic, schema: z.object({ sensor: z.string(), value: z.number() }) });
  const a = app({ url: `memory://${uniqueName('sink')}?scanIntervalMs=10` });
  t.after(async () => {
    await a.close({ force: true });
    // A PGlite table goes with its temporary data directory (removed by then).
    if (url && directUrl === url) await sink.exec(`DROP TABLE IF EXISTS ${table}`);
    else if (directUrl) await dropDirect(directUrl, table);
    await sink.close();
  });
  const retry = { attempts: 2, backoff: { initialMs: 20, maxMs: 200, factor: 2, jitter: 0 } };
  await a.consumeBatch(Msg, { channel: 'archive', retry, timeoutMs: 2000, batch: { maxSize, maxWaitMs: 20 } }, sink.handler);
  const count = async () => Number((await sink.query<{ n: string }>(`SELECT count(*) AS n, count(DISTINCT id) AS d FROM ${table}`))[0]!.n);
  return { a, sink, table, Msg, count };
}

async function dropDirect(url: string, table: string): Promise<void> {
  const direct = postgresSink<R>({ url, table, columns: {}, connectTimeoutMs: 10_000 });
  try {
    await direct.exec(`DROP TABLE IF EXISTS ${table}`);
  } finally {
    await direct.close();
  }
}

describe('postgresSink', () => {
  test('real PostgreSQL: batches land once each; a redelivered id makes no second row', async (t) => {
    const url = await requireService(t, 'postgres');
    if (!url) return;
    const { a, Msg, count, sink, table } = await pipeline(t, url);
    const ids = await a.publishMany(Msg, Array.from({ length: 500 }, (_, i) => ({ sensor: `s${i % 7}`, value: i })));
    await waitFor(async () => (await count()) === 500, '500 rows');
    await a.publish(Msg, { sensor: 's0', value: 1 }, { id: ids[0] }); // the same id again
    await a.publish(Msg, { sensor: 'new', value: 2 });
    await waitFor(async () => (await count()) === 501, 'one new row, not two');
    const row = (await sink.query<{ sensor: string }>(`SELECT sensor FROM ${table} WHERE id = $1`, [ids[0]]))[0]!;
    assert.equal(row.sensor, 's0');
  });

  test('embedded PostgreSQL (PGlite) in a data directory', async (t) => {
    const dir = tempDir(t);
    const { a, Msg, count } = await pipeline(t, undefined, dir);
    await a.publishMany(Msg, Array.from({ length: 120 }, (_, i) => ({ sensor: 'x', value: i })));
    await waitFor(async () => (await count()) === 120, '120 rows in PGlite', 20_000);
  });

  test('a poison row is isolated and dead-lettered; the rest of its batch is stored', async (t) => {
    const url = await requireService(t, 'postgres');
    if (!url) return;
    const { a, Msg, count } = await pipeline(t, url, undefined, 10);
    const dead: string[] = [];
    a.on('dead', (e) => dead.push(e.error.message));
    await a.publishMany(Msg, Array.from({ length: 10 }, (_, i) => ({ sensor: 'p', value: i === 4 ? -1 : i })));
    await waitFor(async () => (await count()) === 9 && dead.length === 1, 'nine rows, one dead');
    assert.match(dead[0]!, /check constraint/);
  });

  test('database unreachable in the middle of a run: nothing lost, no duplicate rows', async (t) => {
    const url = await requireService(t, 'postgres');
    if (!url) return;
    const proxy = await TcpProxy.start('127.0.0.1', 5432);
    t.after(() => proxy.close());
    const { a, Msg, count, sink, table } = await pipeline(t, `postgres://postgres@127.0.0.1:${proxy.port}/test`, undefined, 50, url);
    let sent = 0;
    const publishSome = async (n: number) => {
      await a.publishMany(Msg, Array.from({ length: n }, () => ({ sensor: 'o', value: sent++ })));
    };
    await publishSome(200);
    await waitFor(async () => (await count()) === 200, 'first 200');
    proxy.refuse(true);
    proxy.dropAll();
    await publishSome(300); // the database is down now: batches wait in flight
    let peakHeld = 0;
    for (let i = 0; i < 16; i++) {
      await new Promise((r) => setTimeout(r, 50));
      peakHeld = Math.max(peakHeld, a.stats()[0]!.waiting);
    }
    // Memory stays bounded: the consumer holds at most maxInFlight (2 × batch size) meanwhile.
    assert.ok(peakHeld > 0 && peakHeld <= 100, `held ${peakHeld} during the outage`);
    proxy.refuse(false);
    await publishSome(100);
    await waitFor(async () => (await count()) === 600, 'all 600 after the outage', 20_000);
    const rows = await sink.query<{ d: string }>(`SELECT count(DISTINCT value) AS d FROM ${table}`);
    assert.equal(Number(rows[0]!.d), 600, 'every value exactly once');
  });

  test('start() waits for a database that comes up late', async (t) => {
    await requireService(t, 'postgres');
    const proxy = await TcpProxy.start('127.0.0.1', 5432);
    t.after(() => proxy.close());
    proxy.refuse(true);
    const sink = postgresSink<R>({ url: `postgres://postgres@127.0.0.1:${proxy.port}/test`, table: 'unused', columns: {}, connectTimeoutMs: 10_000 });
    t.after(() => sink.close());
    setTimeout(() => proxy.refuse(false), 400);
    const started = Date.now();
    await sink.start();
    assert.ok(Date.now() - started >= 300);
  });

  test('leaves no table behind on the server (the outage case used to leave one per run)', async (t) => {
    const url = await requireService(t, 'postgres');
    if (!url) return;
    assert.ok(created.length >= 3, `the cases above made their tables (${created.length})`);
    const check = postgresSink<R>({ url, table: 'unused', columns: {}, connectTimeoutMs: 10_000 });
    t.after(() => check.close());
    const left = await check.query<{ tablename: string }>('SELECT tablename FROM pg_tables WHERE tablename = ANY($1)', [created]);
    assert.deepEqual(left.map((r) => r.tablename), []);
  });

  test('bad options are reported together', () => {
    assert.throws(
      () => postgresSink({ table: 'x; drop', columns: { 'bad-name': { type: 'text', value: () => 1 }, id: { type: 'text', value: () => 1 } } }),
      (e: Error) => /table/.test(e.message) && /bad-name/.test(e.message) && /columns\.id/.test(e.message),
    );
  });
});
