/**
 * Issue 14's consumer kill -9 loop: 20,000 messages on the embedded broker, a batch consumer
 * into the idempotent PostgreSQL sink (test/faults/fixtures/pg-consumer.ts, a child process)
 * kill -9'd 10 times mid-stream and restarted: exactly 20,000 distinct rows in the end — what a
 * killed consumer had in flight comes back (its connection closes) and lands once (ON CONFLICT).
 *
 * Sizes: batches of 50, 100 in flight, the sink slowed to ≥ 20 ms a batch so that every kill lands
 * mid-stream however fast the machine; about 30 s (the children's start-up dominates).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { z } from 'zod';
import { defineMessage } from '../../src/core/schema.ts';
import { app } from '../../src/runtime/app.ts';
import { startBroker } from '../../src/server/index.ts';
import type { Child } from '../helpers/child.ts';
import { requireService, uniqueName, waitFor } from '../helpers/index.ts';
import { between, kill9, report, sleep, startScript } from './helpers.ts';

const TOTAL = 20_000;
const KILLS = 10;
const FIXTURE = 'test/faults/fixtures/pg-consumer.ts';

test('batch consumer kill -9 ×10 into PostgreSQL: exactly 20,000 distinct rows', { timeout: 240_000 }, async (t) => {
  const url = await requireService(t, 'postgres');
  if (!url) return;
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  const cleanup: Array<() => Promise<unknown>> = [() => db.end()];
  t.after(async () => {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
  });
  const table = uniqueName('killed').toLowerCase();
  await db.query(`CREATE TABLE ${table} (id text PRIMARY KEY, seq int8 NOT NULL)`);
  cleanup.push(() => db.query(`DROP TABLE IF EXISTS ${table}`));
  const broker = await startBroker({ tcp: '127.0.0.1:0', http: '127.0.0.1:0' });
  cleanup.push(() => broker.close());
  const topic = uniqueName('killed');
  const Msg = defineMessage({ name: 'row', topic, schema: z.object({ seq: z.number() }) });
  const producer = app({ url: `nsq://${broker.tcpAddress}` });
  cleanup.push(() => producer.close());
  for (let from = 0; from < TOTAL; from += 1000) {
    await producer.publishMany(Msg, Array.from({ length: 1000 }, (_, i) => ({ seq: from + i })));
  }
  const rows = async () => Number((await db.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);

  let consumer: Child | undefined;
  cleanup.push(() => (consumer ? kill9(consumer) : Promise.resolve()));
  const atKill: number[] = [];
  for (let kill = 0; kill < KILLS; kill++) {
    const before = await rows();
    consumer = await startScript(FIXTURE, [broker.tcpAddress, topic, table], /^ready$/m);
    await waitFor(async () => (await rows()) > before || consumer!.exited(), 'rows from this life of the consumer', 30_000, 10).catch((e: Error) => {
      throw new Error(`${e.message} (life ${kill + 1}, ${before} rows; consumer stderr: ${consumer!.err().slice(-2000)})`);
    });
    assert.ok(!consumer.exited(), `the consumer exited by itself: ${consumer.err().slice(-2000)}`);
    await sleep(between(0, 500));
    await kill9(consumer);
    atKill.push(await rows());
  }
  consumer = await startScript(FIXTURE, [broker.tcpAddress, topic, table], /^ready$/m);
  await waitFor(async () => (await rows()) >= TOTAL, `all ${TOTAL} rows`, 60_000, 50);
  await sleep(500); // anything still redelivered would show now as a row too many (it cannot: id is the key)
  const { n, distinct, lo, hi } = (await db.query(`SELECT count(*)::int AS n, count(DISTINCT seq)::int AS distinct, min(seq)::int AS lo, max(seq)::int AS hi FROM ${table}`)).rows[0];
  const midStream = atKill.filter((r) => r < TOTAL).length;
  report('consumer kill -9', { kills: KILLS, killedMidStream: midStream, rowsAtKills: atKill.join('/'), rows: n, distinct });
  assert.deepEqual({ n, distinct, lo, hi }, { n: TOTAL, distinct: TOTAL, lo: 0, hi: TOTAL - 1 });
  assert.equal(midStream, KILLS, 'every kill came before the last row');
});
