import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'node:test';
import { PermanentError } from '../../src/core/errors.ts';
import { bytesMessage, defineMessage } from '../../src/core/schema.ts';
import { dashboard, HandlerTimings } from '../../src/dashboard/index.ts';
import { diskBackend } from '../../src/engine/disk/index.ts';
import { Engine } from '../../src/engine/engine.ts';
import { app } from '../../src/runtime/app.ts';
import { MemoryTransport } from '../../src/transports/memory/transport.ts';
import { tempDir, uniqueName, waitFor } from '../helpers/index.ts';
import { serve, snapshots } from './helpers.ts';

const anything = { '~standard': { version: 1 as const, vendor: 'test', validate: (value: unknown) => ({ value }) } };

function pipelineOn(t: test.TestContext, engine: Engine) {
  const pipeline = app({ transport: new MemoryTransport(engine), deadLetterLog: false });
  t.after(() => pipeline.close());
  return pipeline;
}

test('the snapshot shows topics, channels, consumers with RDY, and the runtime consumers with p50/p99', async (t) => {
  const engine = new Engine();
  t.after(() => engine.close());
  const pipeline = pipelineOn(t, engine);
  const timings = new HandlerTimings();
  const topic = uniqueName('orders');
  const Order = defineMessage({ name: topic, schema: anything });
  let handled = 0;
  await pipeline.consume(Order, { channel: 'work', maxInFlight: 7, middleware: [timings.middleware()] }, async () => {
    handled++;
  });
  for (let i = 0; i < 20; i++) await pipeline.publish(Order, { n: i });
  await waitFor(() => handled === 20, 'handled');
  engine.topic(topic).channel('idle'); // a channel without consumers keeps what it gets
  await pipeline.publish(Order, { n: 20 });
  await waitFor(() => handled === 21, 'handled');
  const { api } = await serve(t, { engine, apps: [pipeline], timings });
  const { status, body } = await api('snapshot');
  assert.equal(status, 200);
  assert.equal(body.kind, 'embedded');
  const shown = body.topics.find((x: any) => x.name === topic);
  assert.equal(shown.messages, 21);
  const work = shown.channels.find((c: any) => c.name === 'work');
  const idle = shown.channels.find((c: any) => c.name === 'idle');
  assert.equal(work.messages, 21);
  assert.equal(work.depth, 0);
  assert.equal(idle.depth, 1);
  assert.equal(work.clients.length, 1);
  assert.equal(work.clients[0].ready, 7);
  assert.match(work.clients[0].id, /^in-process #\d+$/);
  const consumer = body.consumers.find((c: any) => c.topic === topic);
  assert.equal(consumer.processed, 21);
  assert.ok(typeof consumer.p50 === 'number' && consumer.p99 >= consumer.p50, JSON.stringify(consumer));
  assert.equal(body.totals.depth, 1);
  // Without timings the runtime's own handler-time histogram gives p50/p99.
  const plain = (await (await serve(t, { engine, apps: [pipeline] })).api('snapshot')).body.consumers.find((c: any) => c.topic === topic);
  assert.ok(typeof plain.p50 === 'number' && plain.p50 > 0 && plain.p99 >= plain.p50, JSON.stringify(plain));
});

test('a batch consumer timed per batch: p50/p99 of its batches, the outage probe kept', async (t) => {
  const engine = new Engine();
  t.after(() => engine.close());
  const pipeline = pipelineOn(t, engine);
  const timings = new HandlerTimings();
  const topic = uniqueName('rows');
  const Row = defineMessage({ name: topic, schema: anything });
  let rows = 0;
  const sink = Object.assign(
    async (values: unknown[]) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      rows += values.length;
    },
    { probe: { intervalMs: 100, ready: async () => true } },
  );
  const timed = timings.batch(topic, 'archive', sink);
  assert.equal(timed.probe, sink.probe);
  await pipeline.consumeBatch(Row, { channel: 'archive', batch: { maxSize: 10, maxWaitMs: 20 } }, timed);
  await pipeline.publishMany(Row, Array.from({ length: 30 }, (_, i) => ({ i })));
  await waitFor(() => rows === 30, 'the rows');
  const { api } = await serve(t, { engine, apps: [pipeline], timings });
  const c = (await api('snapshot')).body.consumers.find((x: any) => x.topic === topic);
  assert.equal(c.per, 'batch');
  assert.ok(c.p50 >= 4, `a batch takes its 5 ms sleep: ${c.p50}`);
  const runtime = (await (await serve(t, { engine, apps: [pipeline] })).api('snapshot')).body.consumers.find((x: any) => x.topic === topic);
  assert.equal(runtime.per, 'batch');
  assert.ok(runtime.p50 >= 2.5, `from the runtime's buckets: ${runtime.p50}`);
});

test('one SSE stream carries a fresh snapshot every interval, with the rate of the last second', async (t) => {
  const { engine, url } = await serve(t, { intervalMs: 150 });
  const topic = uniqueName('rates');
  engine.topic(topic).channel('c');
  const feeding = setInterval(() => engine.topic(topic).publish(Array.from({ length: 10 }, () => ({ body: new Uint8Array([1]) }))), 20);
  t.after(() => clearInterval(feeding));
  const got = await snapshots(`${url}/api/events`, 5);
  const counts = got.map((s) => s.topics.find((x: any) => x.name === topic)?.messages ?? 0);
  for (let i = 1; i < counts.length; i++) assert.ok(counts[i] >= counts[i - 1], `counts grow: ${counts}`);
  assert.ok(counts[counts.length - 1] > counts[0], `counts grow: ${counts}`);
  const last = got[got.length - 1].topics.find((x: any) => x.name === topic);
  assert.ok(last.rate > 0 && last.series.length >= 2, JSON.stringify(last));
});

test('actions: pause, unpause, empty and delete topics and channels; bad requests are typed errors', async (t) => {
  const { engine, post } = await serve(t, {});
  const topic = uniqueName('act');
  const ch = engine.topic(topic).channel('c');
  engine.topic(topic).publish([{ body: new Uint8Array([1]) }, { body: new Uint8Array([2]) }]);
  assert.equal((await post('action', { action: 'pause', topic, channel: 'c' })).status, 200);
  assert.equal(ch.paused, true);
  await post('action', { action: 'unpause', topic, channel: 'c' });
  assert.equal(ch.paused, false);
  await post('action', { action: 'pause', topic });
  assert.equal(engine.topic(topic).paused, true);
  await post('action', { action: 'unpause', topic });
  await waitFor(() => ch.stats().depth === 2, 'the messages in the channel');
  await post('action', { action: 'empty', topic, channel: 'c' });
  assert.equal(ch.stats().depth, 0);
  await post('action', { action: 'delete', topic, channel: 'c' });
  assert.equal(engine.getTopic(topic)!.getChannel('c'), undefined);
  await post('action', { action: 'delete', topic });
  assert.equal(engine.getTopic(topic), undefined);

  assert.equal((await post('action', { action: 'explode', topic })).status, 400);
  assert.equal((await post('action', { action: 'pause', topic: 'no_such_topic_x' })).status, 404);
  assert.equal((await post('action', { action: 'pause', topic: 'bad name!' })).status, 400);
  const other = (await serve(t, { engine })).url;
  const garbage = await fetch(`${other}/api/action`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' });
  assert.equal(garbage.status, 400);
  // Another site cannot act: no JSON content type (a "simple" cross-site POST), or a foreign Origin.
  const plain = await fetch(`${other}/api/action`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ action: 'pause', topic }) });
  assert.equal(plain.status, 415);
  const foreign = await post('action', { action: 'pause', topic }, { origin: 'http://evil.example' });
  assert.equal(foreign.status, 403);
  assert.equal((await post('nope', {})).status, 404);
});

test('publish from the page as JSON, CBOR or raw; peek shows them decoded and takes none', async (t) => {
  const { engine, post, api } = await serve(t, {});
  const topic = uniqueName('pub');
  engine.topic(topic).channel('c');
  assert.equal((await post('publish', { topic, format: 'json', body: '{"a":1}' })).status, 200);
  assert.equal((await post('publish', { topic, format: 'cbor', body: '{"b":[1,2]}' })).status, 200);
  assert.equal((await post('publish', { topic, format: 'raw', body: 'hi' })).status, 200);
  assert.equal((await post('publish', { topic, format: 'json', body: '{broken' })).status, 400);
  assert.equal((await post('publish', { topic, format: 'yaml', body: 'a: 1' })).status, 400);
  assert.equal((await post('publish', { topic: 'bad topic', format: 'raw', body: 'x' })).status, 400);
  const peek = await api(`peek?topic=${topic}&channel=c&n=10`);
  assert.equal(peek.status, 200);
  assert.deepEqual(
    peek.body.messages.map((m: any) => [m.body.format, m.body.json ?? m.body.hex]),
    [
      ['json', { a: 1 }],
      ['cbor', { b: [1, 2] }],
      ['raw', '6869'],
    ],
  );
  assert.equal(peek.body.partial, false);
  assert.equal(engine.topic(topic).channel('c').stats().depth, 3, 'peek took nothing');
  const two = await api(`peek?topic=${topic}&channel=c&n=2`);
  assert.equal(two.body.messages.length, 2);
  assert.equal(two.body.partial, true);
  // A CBOR body that is not CBOR is shown as hex with the reason.
  engine.topic(topic).publish([{ body: new Uint8Array([0xff, 0xfe]), headers: { 'content-type': 'application/cbor' } }]);
  const bad = (await api(`peek?topic=${topic}&channel=c&n=10`)).body.messages[3];
  assert.equal(bad.body.hex, 'fffe');
  assert.ok(bad.body.error);
  assert.equal((await api(`peek?topic=${topic}&channel=nope`)).status, 404);
  assert.equal((await api(`peek?topic=${topic}&channel=c&n=0`)).status, 400);
});

test('dead letters: listed with error, origin, attempts and decoded body; replay one, discard one, replay all', async (t) => {
  const engine = new Engine();
  t.after(() => engine.close());
  const pipeline = pipelineOn(t, engine);
  const topic = uniqueName('jobs');
  const Job = defineMessage({ name: topic, schema: anything });
  const healed = new Set<number>();
  const done: number[] = [];
  await pipeline.consume(Job, { channel: 'work', retry: { attempts: 1 } }, async (v: any) => {
    if (!healed.has(v.n)) throw new PermanentError(`job ${v.n} is poison`);
    done.push(v.n);
  });
  const ids: string[] = [];
  for (let n = 0; n < 4; n++) ids.push(await pipeline.publish(Job, { n }));
  await waitFor(() => pipeline.stats()[0]!.dead === 4, 'four dead letters');
  const { api, post } = await serve(t, { engine, apps: [pipeline] });

  const listed = await api(`dead?topic=${topic}`);
  assert.equal(listed.status, 200);
  assert.equal(listed.body.letters.length, 4);
  const first = listed.body.letters[0];
  assert.equal(first.id, ids[0]);
  assert.equal(first.code, 'ERR_PERMANENT');
  assert.equal(first.reason, 'job 0 is poison');
  assert.equal(first.topic, topic);
  assert.equal(first.channel, 'work');
  assert.equal(first.attempts, 1);
  assert.deepEqual(first.body.json, { n: 0 });
  assert.equal((await api('snapshot')).body.dead.find((d: any) => d.topic === topic).depth, 4);
  // Listing took nothing: still four.
  assert.equal((await api(`dead?topic=${topic}`)).body.letters.length, 4);

  healed.add(0);
  const one = await post('replay', { topic, ids: [ids[0]] });
  assert.equal(one.status, 200);
  assert.deepEqual(one.body.done, [ids[0]]);
  await waitFor(() => done.includes(0), 'job 0 handled after its replay');
  assert.equal((await post('discard', { topic, ids: [ids[1]] })).body.done.length, 1);
  const left = (await api(`dead?topic=${topic}`)).body.letters.map((l: any) => l.id).sort();
  assert.deepEqual(left, [ids[2], ids[3]].sort());

  healed.add(2);
  // 3 is still poison: replayed, dead again, and the run stops at it instead of looping.
  const all = await post('replay', { topic, ids: 'all' });
  assert.equal(all.status, 200);
  assert.deepEqual([...all.body.done].sort(), [ids[2], ids[3]].sort());
  await waitFor(() => done.includes(2), 'job 2 handled');
  await waitFor(async () => (await api(`dead?topic=${topic}`)).body.letters.length === 1, 'job 3 dead again');
  assert.equal((await api(`dead?topic=${topic}`)).body.letters[0].id, ids[3]);
  const missing = await post('replay', { topic, ids: ['nope'] });
  assert.deepEqual(missing.body.missing, ['nope']);
  assert.equal((await post('replay', { topic, ids: [] })).status, 400);
});

test('dead letters on a durable disk engine (nothing in memory to peek at) are listed and replayed', async (t) => {
  const dir = tempDir(t);
  const engine = new Engine({ memQueueSize: 0, backend: diskBackend({ dir, durable: true }) });
  const pipeline = pipelineOn(t, engine);
  const topic = uniqueName('durable');
  const Job = defineMessage({ name: topic, schema: anything });
  const healed = new Set<number>();
  const done: number[] = [];
  await pipeline.consume(Job, { channel: 'w', retry: { attempts: 1 } }, async (v: any) => {
    if (!healed.has(v.n)) throw new PermanentError(`job ${v.n} failed`);
    done.push(v.n);
  });
  const ids = [await pipeline.publish(Job, { n: 1 }), await pipeline.publish(Job, { n: 2 })];
  await waitFor(() => pipeline.stats()[0]!.dead === 2, 'two dead letters');
  const { api, post } = await serve(t, { engine });
  const listed = (await api(`dead?topic=${topic}`)).body.letters;
  assert.deepEqual(listed.map((l: any) => l.id).sort(), [...ids].sort());
  assert.equal(listed[0].reason.startsWith('job '), true);
  healed.add(1);
  healed.add(2);
  const replayed = await post('replay', { topic, ids: 'all' });
  assert.equal(replayed.body.done.length, 2);
  await waitFor(() => done.length === 2, 'both handled after the replay');
  await pipeline.close();
  await engine.close();
});

test('a raw dead letter shows as hex; a body the codec refuses shows as hex with the reason', async (t) => {
  const engine = new Engine();
  t.after(() => engine.close());
  const pipeline = pipelineOn(t, engine);
  const topic = uniqueName('raw');
  const Typed = defineMessage({ name: topic, schema: anything });
  await pipeline.consume(Typed, { channel: 'w' }, async () => {});
  // Garbage claiming to be CBOR: the consumer dead-letters it (ERR_DECODE) and keeps running.
  await (await pipeline.transport()).publish(topic, [{ id: 'garbage1', body: new Uint8Array([0x1c, 0x00]), headers: { 'content-type': 'application/cbor' } }]);
  const Raw = bytesMessage(`${topic}.raw`);
  await pipeline.consume(Raw, { channel: 'w', retry: { attempts: 1 } }, async () => {
    throw new PermanentError('nope');
  });
  await pipeline.publish(Raw, new Uint8Array([1, 2, 3]));
  await waitFor(() => pipeline.stats().reduce((n, c) => n + c.dead, 0) === 2, 'two dead letters');
  const { api } = await serve(t, { engine });
  const garbage = (await api(`dead?topic=${topic}`)).body.letters[0];
  assert.equal(garbage.code, 'ERR_DECODE');
  assert.equal(garbage.body.hex, '1c00');
  assert.ok(garbage.body.error);
  const raw = (await api(`dead?topic=${topic}.raw`)).body.letters[0];
  assert.equal(raw.body.format, 'raw');
  assert.equal(raw.body.hex, '010203');
});

test('an oversized publish is a 413 and publishes nothing', async (t) => {
  const { engine, post } = await serve(t, { maxPublishBytes: 16 });
  const topic = uniqueName('big');
  engine.topic(topic).channel('c');
  const big = await post('publish', { topic, format: 'raw', body: 'x'.repeat(17) });
  assert.equal(big.status, 413);
  assert.match(big.body.error, /17 bytes is over the 16-byte limit/);
  const huge = await post('publish', { topic, format: 'raw', body: 'x'.repeat(200) });
  assert.equal(huge.status, 413);
  assert.equal(engine.topic(topic).channel('c').stats().message_count, 0);
  assert.equal((await post('publish', { topic, format: 'raw', body: 'x'.repeat(16) })).status, 200);
});

test('bearer token on the API (the page itself is static), and read-only mode', async (t) => {
  const { api, url } = await serve(t, { auth: { token: 's3cret' } });
  assert.equal((await api('snapshot')).status, 401);
  assert.equal((await api('snapshot', { headers: { authorization: 'Bearer wrong' } })).status, 401);
  assert.equal((await api('snapshot', { headers: { authorization: 'Bearer s3cret' } })).status, 200);
  assert.equal((await fetch(`${url}/api/events`)).status, 401);
  assert.equal((await fetch(`${url}/`)).status, 200);

  const ro = await serve(t, { readOnly: true });
  const topic = uniqueName('ro');
  ro.engine.topic(topic);
  assert.equal((await ro.post('action', { action: 'delete', topic })).status, 403);
  assert.equal((await ro.post('publish', { topic, body: '{}' })).status, 403);
  assert.equal((await ro.post('replay', { topic, ids: 'all' })).status, 403);
  assert.ok(ro.engine.getTopic(topic), 'nothing deleted');
  assert.equal((await ro.api('snapshot')).body.readOnly, true);
});

test('1,000 topics: one page of 50 per snapshot, filtered and paged, totals over all of them', async (t) => {
  const { engine, api } = await serve(t, {});
  const prefix = uniqueName('many');
  for (let i = 0; i < 1000; i++) {
    const topic = engine.topic(`${prefix}_${String(i).padStart(4, '0')}`);
    topic.channel('c');
    topic.publish([{ body: new Uint8Array([i & 255]) }]);
  }
  const started = performance.now();
  const first = (await api(`snapshot?q=${prefix}`)).body;
  const firstMs = performance.now() - started;
  assert.equal(first.totals.topics, 1000);
  assert.equal(first.view.matching, 1000);
  assert.equal(first.view.pages, 20);
  assert.equal(first.topics.length, 50);
  assert.equal(first.topics[0].name, `${prefix}_0000`);
  const last = (await api(`snapshot?q=${prefix}&page=20`)).body;
  assert.equal(last.topics[49].name, `${prefix}_0999`);
  const one = (await api(`snapshot?q=${prefix}_0421`)).body;
  assert.deepEqual(one.topics.map((x: any) => x.name), [`${prefix}_0421`]);
  const bytes = JSON.stringify(first).length;
  assert.ok(bytes < 100_000, `a page is ${bytes} bytes`);
  t.diagnostic(`1,000 topics: first snapshot (sample + page) ${firstMs.toFixed(1)} ms, ${bytes} bytes`);
});

test('mounted on a prefix: its own paths only, the rest goes to next()', async (t) => {
  const engine = new Engine();
  t.after(() => engine.close());
  const board = dashboard({ engine, prefix: '/ops/dashboard/' });
  t.after(() => board.close());
  const server = createServer((req, res) =>
    board(req, res, () => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('the app');
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  assert.equal(await (await fetch(`${base}/other`)).text(), 'the app');
  assert.equal(await (await fetch(`${base}/ops/dashboardx`)).text(), 'the app');
  const page = await (await fetch(`${base}/ops/dashboard/`)).text();
  assert.match(page, /<script src="\/ops\/dashboard\/app\.js">/);
  const js = await fetch(`${base}/ops/dashboard/app.js`);
  assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
  assert.equal((await fetch(`${base}/ops/dashboard/api/snapshot`)).status, 200);
  assert.throws(() => dashboard({}), /either engine or source/);
});
