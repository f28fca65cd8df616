/**
 * The reference pipeline over Kafka (issue 15): `conveyor start --broker kafka://…` — gateway →
 * Kafka topic `events` → channel `archive` batching into PostgreSQL, channel `counts` — against the
 * run's Kafka peer (librdkafka's mock cluster, or KAFKA_URL) and the real PostgreSQL, in a database
 * of its own; `conveyor load` drives it and must report every accepted event archived.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import pg from 'pg';
import { cli, spawnChild } from '../helpers/child.ts';
import { requireService, uniqueName, waitFor } from '../helpers/index.ts';
import { kafkaSkipReason, kafkaUrl, withOptions } from '../helpers/kafka-mock.ts';

const SKIP = kafkaSkipReason();

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('conveyor start --broker kafka://', { skip: SKIP ?? false }, () => {
  test('gateway → Kafka → batched PostgreSQL: conveyor load reports every accepted event archived', async (t) => {
    const pgUrl = await requireService(t, 'postgres');
    if (!pgUrl) return;
    // A database of its own: the pipeline's table is `events`, a name other tests may use.
    const db = uniqueName('start_kafka').toLowerCase();
    const admin = new pg.Pool({ connectionString: pgUrl, max: 1 });
    await admin.query(`CREATE DATABASE ${db}`);
    const dbUrl = pgUrl.replace(/\/[^/]+$/, `/${db}`);
    const rows = new pg.Pool({ connectionString: dbUrl, max: 1 });
    // DROP DATABASE ... WITH (FORCE) ends sessions still open on it: not this test's failure.
    rows.on('error', () => undefined);
    admin.on('error', () => undefined);
    let start: ReturnType<typeof spawnChild> | undefined;
    // One hook, in order: the pipeline and our pool go before the database does.
    t.after(async () => {
      if (start && !start.exited()) {
        start.child.kill('SIGKILL');
        await start.done;
      }
      await rows.end();
      await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      await admin.end();
    });
    const broker = withOptions(await kafkaUrl(), 'sessionTimeoutMs=3000&heartbeatIntervalMs=500&commitIntervalMs=100');
    const port = await freePort();
    start = spawnChild(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'start', '--broker', broker, '--gateway', `127.0.0.1:${port}`, '--pg', dbUrl, '--every', '1']);
    await waitFor(() => /archiving into/.test(start.out()) || start.exited(), 'conveyor start ready', 60_000, 50);
    assert.equal(start.exited(), false, `conveyor start runs; stderr: ${start.err()}`);
    assert.match(start.out(), /conveyor: broker kafka:\/\/127\.0\.0\.1:\d+/);
    assert.match(start.out(), /conveyor tail kafka:\/\/\S+ events\.dead/);

    const load = await cli(['load', '--url', `http://127.0.0.1:${port}`, '--seconds', '3', '--connections', '4', '--batch', '50'], 60_000);
    assert.equal(load.code, 0, load.err);
    const accepted = Number(/load: (\d+) events accepted/.exec(load.out)?.[1]);
    assert.ok(accepted > 0, load.out);
    t.diagnostic(load.out.split('\n')[0]!);
    const arrived = JSON.parse(/arrived: (.*)/.exec(load.out)![1]!);
    assert.equal(arrived.pipeline.archived, accepted, `load reports every event archived: ${load.out}`);
    assert.equal(arrived.pipeline.dead, 0);

    // And the database says the same, one row per event.
    const { rows: counted } = await rows.query<{ n: string; ids: string }>('SELECT count(*) AS n, count(DISTINCT id) AS ids FROM events');
    assert.equal(Number(counted[0]!.n), accepted);
    assert.equal(Number(counted[0]!.ids), accepted);
    await waitFor(() => new RegExp(`counted ${accepted}\\b`).test(start.out()), `the counts channel at ${accepted}`, 10_000, 50);

    start.child.kill('SIGTERM');
    assert.equal(await start.done, 0, start.err());
    assert.match(start.out(), new RegExp(`stopped; archived ${accepted} events`));
  });
});
