/**
 * examples/rabbitmq-to-kv run as its user would: the consumer as a child process on the real
 * RabbitMQ, the producer as another, the results read back from the real Redis and PostgreSQL.
 * The example imports `conveyor-pipelines` by name (the package's self-reference, i.e. dist/,
 * which `npm install` builds).
 */
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { describe, type TestContext, test } from 'node:test';
import amqplib from 'amqplib';
import { keyValueSink } from '../../src/sinks/kv/index.ts';
import { spawnChild } from '../helpers/child.ts';
import { requireService, SERVICES, uniqueName, waitFor } from '../helpers/index.ts';

const dir = new URL('../../examples/rabbitmq-to-kv/', import.meta.url);
const N = 600;

/** The example runs the built package: say so plainly when dist/ is missing or older than src/. */
function assertBuilt(): void {
  const src = new URL('../../src/sinks/kv/', import.meta.url);
  const built = new URL('../../dist/sinks/kv/index.js', import.meta.url);
  let builtAt = 0;
  try {
    builtAt = statSync(built).mtimeMs;
  } catch {}
  const newest = Math.max(...readdirSync(src).map((f) => statSync(new URL(f, src)).mtimeMs));
  assert.ok(builtAt >= newest, 'examples import `conveyor-pipelines` as users do (dist/): run `npm run build` (npm install does) before this test');
}

async function runExample(t: TestContext, kvUrl: string, isolate: { prefix?: string; table?: string }) {
  assertBuilt();
  const topic = uniqueName('article-views');
  const env = {
    ...process.env,
    TOPIC: topic,
    AMQP_URL: SERVICES.rabbitmq.url,
    KV_URL: kvUrl,
    ...(isolate.prefix ? { KV_PREFIX: isolate.prefix } : {}),
    ...(isolate.table ? { KV_TABLE: isolate.table } : {}),
  };
  const check = keyValueSink({ url: kvUrl, ...isolate });
  const consumer = spawnChild(process.execPath, ['--import', 'tsx', 'consumer.ts'], { cwd: dir, env });
  t.after(async () => {
    if (!consumer.exited()) consumer.child.kill('SIGKILL');
    await check.dropAll().catch(() => undefined);
    await check.close();
    const conn = await amqplib.connect(SERVICES.rabbitmq.url);
    const ch = await conn.createChannel();
    await ch.deleteQueue(`${topic}:kv`);
    await ch.deleteExchange(topic);
    await conn.close();
  });
  await waitFor(() => consumer.out().includes('consuming') || consumer.exited(), 'the consumer to start', 20_000);
  assert.ok(!consumer.exited(), `consumer exited early: ${consumer.err()}`);

  const producer = spawnChild(process.execPath, ['--import', 'tsx', 'producer.ts', String(N)], { cwd: dir, env });
  assert.equal(await producer.done, 0, producer.err());
  assert.match(producer.out(), new RegExp(`published ${N}`));

  const articles = check.bucket('maps', 'articles');
  const total = async () => {
    let views = 0;
    for (let a = 0; a < 10; a++) views += ((await articles.get(`article-${a}`)) as { views?: number } | undefined)?.views ?? 0;
    return views;
  };
  await waitFor(async () => (await total()) === N, `${N} views stored`, 20_000, 50);

  // article-0 got views n = 0, 10, 20, …: 60 of them, sources n % 3, readers n % 37.
  const ns = Array.from({ length: N / 10 }, (_, k) => k * 10);
  const bySource = { web: 0, app: 0, feed: 0 };
  for (const n of ns) bySource[(['web', 'app', 'feed'] as const)[n % 3]!]++;
  const readers = [...new Set(ns.map((n) => `user-${n % 37}`))].sort();
  const a0 = (await articles.get('article-0')) as Record<string, unknown>;
  assert.deepEqual({ ...a0, lastSource: undefined }, { views: 60, readers, bySource, lastSource: undefined });
  assert.ok(['web', 'app', 'feed'].includes(a0.lastSource as string));
  const user = (await check.bucket('default', 'users').get('user-0')) as { articleId: string; at: number };
  assert.match(user.articleId, /^article-\d$/);

  consumer.child.kill('SIGTERM');
  assert.equal(await consumer.done, 0, consumer.err());
  assert.match(consumer.out(), /stopped/);
}

describe('examples/rabbitmq-to-kv', () => {
  test('RabbitMQ → Redis: every view stored once, the consumer stops cleanly on SIGTERM', { timeout: 90_000 }, async (t) => {
    if (!(await requireService(t, 'rabbitmq'))) return;
    const redis = await requireService(t, 'redis');
    if (!redis) return;
    await runExample(t, redis, { prefix: uniqueName('example') });
  });

  test('RabbitMQ → PostgreSQL: the same system on the other backend', { timeout: 90_000 }, async (t) => {
    if (!(await requireService(t, 'rabbitmq'))) return;
    const postgres = await requireService(t, 'postgres');
    if (!postgres) return;
    await runExample(t, postgres, { table: uniqueName('example').toLowerCase() });
  });
});
