/**
 * The "fully asynchronous queue with Kafka" talk's system: an HTTP endpoint whose traffic varies
 * 20×, a queue, and a consumer batching into a slow, unreliable PostgreSQL.
 *
 *   node --import tsx examples/http-to-postgres/main.ts [--broker URL] [--pg URL] [--port N]
 *
 * --broker  memory:// (the embedded broker, default), kafka://127.0.0.1:9092 as in the talk,
 *           or any other engine's URL
 * --pg      postgres://user@host/db; default: embedded PostgreSQL (PGlite) in ./.conveyor/http-to-postgres
 * --port    the HTTP port (default 8080; 0 picks a free one)
 *
 * POST records to /v1/topics/store as JSON (one) or NDJSON (one per line). Ctrl-C stops it
 * gracefully: the last batch is committed before the process exits.
 */
import { parseArgs } from 'node:util';
import { app, defineMessage } from 'conveyor-pipelines';
import { gateway } from 'conveyor-pipelines/gateway';
import { postgresSink } from 'conveyor-pipelines/postgres';
import { z } from 'zod';

const { values: opts } = parseArgs({
  options: {
    broker: { type: 'string', default: 'memory://' },
    pg: { type: 'string' },
    port: { type: 'string', default: '8080' },
    table: { type: 'string', default: 'store' },
  },
});

// The talk's message: the posted JSON. When it arrived is the broker's timestamp, not a field.
const record = z.record(z.string(), z.unknown());
const Record = defineMessage({ name: 'record', topic: 'store', codec: 'application/json', schema: record });

const sink = postgresSink<z.infer<typeof record>>({
  ...(opts.pg ? { url: opts.pg } : { dataDir: './.conveyor/http-to-postgres' }),
  table: opts.table,
  columns: {
    received: { type: 'timestamptz', value: (_record, message) => new Date(message.timestamp).toISOString() },
    data: { type: 'jsonb', value: (record) => JSON.stringify(record) },
  },
});
await sink.exec(`CREATE TABLE IF NOT EXISTS ${opts.table} (id text PRIMARY KEY, received timestamptz NOT NULL, data jsonb NOT NULL)`);

const pipeline = app({ url: opts.broker });
// The talk's asyncio.Queue + "flush when full enough or old enough" + reconnect loop, in one
// call: batches of up to 1000 or 500 ms, acked only after PostgreSQL committed them. While the
// database is down the batch stays in flight (NSQ/Kafka hold the rest) and is retried; a record
// the database refuses is dead-lettered to store.dead, the rest of its batch stored.
await pipeline.consumeBatch(Record, { channel: 'archive', batch: { maxSize: 1000, maxWaitMs: 500 } }, sink.handler);

// The talk's aiohttp handler: answers only once the broker confirmed (201), 503 if it did not.
const http = await gateway({ transport: pipeline, topics: { store: Record }, port: Number(opts.port) });
console.log(`http-to-postgres: POST ${http.url}/v1/topics/store → ${opts.broker} → PostgreSQL table ${opts.table}`);

// On Ctrl-C the gateway stops taking requests first; then run() drains the pipeline.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void http.close());
await pipeline.run(); // until SIGINT/SIGTERM
await http.close();
await sink.close();
