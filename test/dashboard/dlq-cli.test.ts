/**
 * `conveyor dlq` on nsq:// against our broker (the app publishing its dead letters over NSQ TCP)
 * and on embedded:///dir (a data directory no broker has open), plus its mistakes.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { run } from '../../src/cli/commands/dlq.ts';
import { connect } from '../../src/connect.ts';
import { PermanentError } from '../../src/core/errors.ts';
import { defineMessage } from '../../src/core/schema.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { app } from '../../src/runtime/app.ts';
import { startBroker } from '../../src/server/index.ts';
import { cli } from '../helpers/child.ts';
import { tempDir, uniqueName, waitFor } from '../helpers/index.ts';

const anything = { '~standard': { version: 1 as const, vendor: 'test', validate: (value: unknown) => ({ value }) } };

async function dlq(args: string[]): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = [];
  const code = await run([...args, '--idle', '150'], { out: (l) => lines.push(l) });
  return { code, lines };
}

test('nsq://: list shows each dead letter; replay --id sends it back to its topic; purge --all empties', async (t) => {
  const broker = await startBroker({ tcp: '127.0.0.1:0', http: '127.0.0.1:0' });
  t.after(() => broker.close());
  const url = `nsq://${broker.tcpAddress}`;
  const pipeline = app({ url, deadLetterLog: false });
  t.after(() => pipeline.close());
  const topic = uniqueName('orders');
  const Order = defineMessage({ name: topic, schema: anything });
  const healed = new Set<number>();
  const done: number[] = [];
  await pipeline.consume(Order, { channel: 'billing', retry: { attempts: 1 } }, async (o: any) => {
    if (!healed.has(o.n)) throw new PermanentError(`order ${o.n} has no customer`);
    done.push(o.n);
  });
  const ids: string[] = [];
  for (let n = 0; n < 3; n++) ids.push(await pipeline.publish(Order, { n }));
  await waitFor(() => pipeline.stats()[0]!.dead === 3, 'three dead letters', 10_000);

  const listed = await dlq(['list', url, topic]);
  assert.equal(listed.code, 0);
  const text = listed.lines.join('\n');
  for (const id of ids) assert.match(text, new RegExp(`^${id}  ERR_PERMANENT  from ${topic}/billing  attempts 1`, 'm'));
  assert.match(text, /reason: order 0 has no customer/);
  assert.match(text, /body \(cbor\): \{"n":0\}/);
  assert.match(text, /3 dead letters in/);
  const json = await dlq(['list', url, topic, '--json']);
  assert.equal(json.lines.length, 3);
  assert.deepEqual(JSON.parse(json.lines[0]!).body.json, { n: 0 });

  healed.add(1);
  const replayed = await dlq(['replay', url, topic, '--id', ids[1]!]);
  assert.equal(replayed.code, 0, replayed.lines.join('\n'));
  assert.match(replayed.lines[0]!, /^replayed 1/);
  await waitFor(() => done.includes(1), 'order 1 handled after the replay', 10_000);
  const channel = () => (broker.engine as Engine).getTopic(`${topic}.dead`)!.getChannel('dlq')!.stats();
  await waitFor(() => channel().depth === 2 && channel().in_flight_count === 0, 'two left in dlq');

  const missing = await dlq(['replay', url, topic, '--id', 'no-such-id']);
  assert.equal(missing.code, 1);
  assert.match(missing.lines.join('\n'), /not found: no-such-id/);

  const purged = await dlq(['purge', url, `${topic}.dead`, '--all']);
  assert.equal(purged.code, 0);
  assert.match(purged.lines[0]!, /^purged 2/);
  await waitFor(() => channel().depth === 0 && channel().in_flight_count === 0, 'dlq empty');
  assert.deepEqual(done, [1], 'purged letters were not replayed');
});

test('embedded:///dir: dead letters kept on disk are listed and replayed by a later process', async (t) => {
  const dir = tempDir(t);
  const url = `embedded://${dir}`;
  const topic = uniqueName('jobs');
  const Job = defineMessage({ name: topic, schema: anything });
  const first = app({ url, deadLetterLog: false });
  await first.consume(Job, { channel: 'w', retry: { attempts: 1 } }, async () => {
    throw new PermanentError('broken job');
  });
  const id = await first.publish(Job, { job: 'resize' });
  await waitFor(() => first.stats()[0]!.dead === 1, 'a dead letter');
  await first.close();

  const listed = await dlq(['list', url, topic]);
  assert.match(listed.lines.join('\n'), new RegExp(`^${id}  ERR_PERMANENT  from ${topic}/w`, 'm'));
  const replayed = await dlq(['replay', url, topic, '--all']);
  assert.match(replayed.lines[0]!, /^replayed 1/);

  // The replayed job waits in its channel for the next worker.
  const transport = await connect(url);
  const got: string[] = [];
  await transport.subscribe(topic, 'w', { maxInFlight: 10 }, (d) => {
    got.push(d.id);
    d.ack();
  });
  await waitFor(() => got.length === 1, 'the replayed job');
  assert.deepEqual(got, [id]);
  await transport.close();
});

test('dlq mistakes are one clear line', async () => {
  await assert.rejects(run(['explode', 'nsq://127.0.0.1:1', 't']), /list, replay or purge/);
  await assert.rejects(run(['replay', 'nsq://127.0.0.1:1', 't']), /--id ID \(repeatable\) or --all/);
  await assert.rejects(run(['purge', 'nsq://127.0.0.1:1', 't', '--all', '--id', 'x']), /exclude each other/);
  await assert.rejects(run(['list', 'memory://', 't']), { code: 'ERR_BAD_URL' });
  await assert.rejects(run(['list', 'nsq://127.0.0.1:1']), /takes <url> <topic>/);
  await assert.rejects(run(['list', 'nsq://127.0.0.1:1', 't', '--limit', '0']), /--limit/);
  const r = await cli(['dlq', 'list', 'memory://', 'orders']);
  assert.equal(r.code, 1);
  assert.match(r.err, /^conveyor: ERR_BAD_URL: memory:\/\/ is per-process/);
  const help = await cli(['dlq', '--help']);
  assert.match(help.out, /conveyor dlq replay <url> <topic>/);
});
