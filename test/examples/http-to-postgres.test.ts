import assert from 'node:assert/strict';
import { before, describe, type TestContext, test } from 'node:test';
import { postgresSink } from '../../src/sinks/postgres/index.ts';
import { requireService, uniqueName, waitFor } from '../helpers/index.ts';
import { kafkaSkipReason, kafkaUrl } from '../helpers/kafka-mock.ts';
import { buildDist, exitOf, printed, runExample } from './run-example.ts';

/** Runs the example on `broker` into a table of its own, posts records, and checks the rows. */
async function roundTrip(t: TestContext, broker: string | undefined): Promise<void> {
  const pg = (await requireService(t, 'postgres'))!;
  const table = uniqueName('store').toLowerCase();
  const db = postgresSink<unknown>({ url: pg, table, columns: {} });
  t.after(async () => {
    await db.exec(`DROP TABLE IF EXISTS ${table}`);
    await db.close();
  });
  const run = runExample('examples/http-to-postgres/main.ts', [...(broker ? ['--broker', broker] : []), '--pg', pg, '--port', '0', '--table', table]);
  t.after(async () => {
    if (!run.exited()) run.child.kill('SIGKILL');
    await run.done;
  });
  const [, url] = await printed(run, /POST (http:\/\/[0-9.:]+)\/v1\/topics\/store/, 30_000);
  const ndjson = Array.from({ length: 250 }, (_, i) => JSON.stringify({ n: i, note: `r${i}` })).join('\n');
  const bulk = await fetch(`${url}/v1/topics/store`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: ndjson });
  assert.equal(bulk.status, 201, await bulk.text());
  const one = await fetch(`${url}/v1/topics/store`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":250,"nested":{"ok":true}}' });
  assert.equal(one.status, 201);
  const [id] = ((await one.json()) as { ids: string[] }).ids;
  const bad = await fetch(`${url}/v1/topics/store`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[1,2]' });
  assert.equal(bad.status, 400, 'an array is not a record: refused, nothing published');
  const count = async () => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`))[0]!.n);
  await waitFor(async () => (await count()) === 251, '251 rows committed', 20_000, 100);
  const [row] = await db.query<{ data: unknown; received: Date }>(`SELECT data, received FROM ${table} WHERE id = $1`, [id]);
  assert.deepEqual(row!.data, { n: 250, nested: { ok: true } });
  assert.ok(Math.abs(row!.received.getTime() - Date.now()) < 60_000);
  const distinct = await db.query<{ d: string }>(`SELECT count(DISTINCT data->>'n') AS d FROM ${table}`);
  assert.equal(Number(distinct[0]!.d), 251, 'every record exactly once');
  run.child.kill('SIGINT');
  assert.equal(await exitOf(run, 15_000), 0, run.err());
}

describe('examples/http-to-postgres', { timeout: 90_000 }, () => {
  before(buildDist);

  test('gateway → embedded broker → batched PostgreSQL: every record stored once, after commit', (t) => roundTrip(t, undefined));

  test('the same over kafka://, as in the talk', { skip: kafkaSkipReason() }, async (t) => roundTrip(t, await kafkaUrl()));
});
