/**
 * The gateway over an app with a spool: 202 Accepted (status "spooled") while the broker is down,
 * 201 once it is back, and every accepted body reaches the topic.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { z } from 'zod';
import { defineMessage } from '../../src/core/schema.ts';
import { gateway } from '../../src/gateway/index.ts';
import { app } from '../../src/runtime/app.ts';
import { startBroker } from '../../src/server/index.ts';
import { uniqueName, waitFor } from '../helpers/index.ts';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

test('gateway + spool: 202 spooled while the broker is down, 201 after; every accepted body arrives', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'spool-gw-'));
  const port = await freePort();
  const topic = uniqueName('gw');
  const Reading = defineMessage({ name: 'reading', topic, schema: z.object({ n: z.number() }) });
  const pipeline = app({ url: `nsq://127.0.0.1:${port}`, spool: { dir, retryMs: 50 }, publishTimeoutMs: 1000, deadLetterLog: false });
  const gw = await gateway({ transport: pipeline, topics: { [topic]: Reading }, publish: (tp, messages) => pipeline.publishEncoded(tp, messages) });
  let broker: Awaited<ReturnType<typeof startBroker>> | undefined;
  t.after(async () => {
    await gw.close();
    await pipeline.close({ force: true });
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const post = (n: number) =>
    fetch(`${gw.url}/v1/topics/${topic}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ n }) });

  const down = await post(1);
  assert.equal(down.status, 202);
  const body = (await down.json()) as { ids: string[]; status: string };
  assert.equal(body.status, 'spooled');
  assert.equal(body.ids.length, 1);

  broker = await startBroker({ tcp: `127.0.0.1:${port}`, http: '127.0.0.1:0' });
  broker.engine.topic(topic).channel('c');
  await waitFor(() => pipeline.spoolStats()?.depth === 0, 'the spool drained', 20_000);
  const up = await post(2);
  assert.equal(up.status, 201);

  const got: number[] = [];
  const reader = app({ url: `nsq://127.0.0.1:${port}`, deadLetterLog: false });
  t.after(() => reader.close({ force: true }));
  await reader.consume(Reading, { channel: 'c' }, (r) => void got.push(r.n));
  await waitFor(() => got.length === 2, 'both readings');
  assert.deepEqual(got, [1, 2]);
});
