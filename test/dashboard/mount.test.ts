/**
 * Where the dashboard is served: `conveyor broker` (on its HTTP listener, beside nsqd's API, with
 * its token and read-only flags), and over an nsqd-compatible HTTP API from another process
 * (`nsqSource`), here our broker's.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { run as broker } from '../../src/cli/commands/broker.ts';
import { connect } from '../../src/connect.ts';
import { encodeWithId } from '../../src/core/envelope.ts';
import { dashboard, nsqSource } from '../../src/dashboard/index.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { startBroker } from '../../src/server/index.ts';
import { uniqueName, waitFor } from '../helpers/index.ts';
import { snapshots } from './helpers.ts';

async function started(t: test.TestContext, args: string[]) {
  const lines: string[] = [];
  const errors: string[] = [];
  const stop = new AbortController();
  const exit = broker(['--tcp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--memory', ...args], { out: (l) => lines.push(l), err: (l) => errors.push(l), stop: stop.signal });
  t.after(async () => {
    stop.abort();
    await exit;
  });
  // stderr carries the broker's JSON log lines; only an error line is a failure here.
  const failed = () => errors.filter((l) => !l.includes('"level":"info"'));
  await waitFor(() => lines.length >= 2 || failed().length > 0, 'the broker');
  assert.deepEqual(failed(), []);
  return lines;
}

test('conveyor broker serves the dashboard at /dashboard/ and prints its URL; nsqd routes still answer', async (t) => {
  const lines = await started(t, ['--dashboard-token', 'tok']);
  await waitFor(() => lines.some((l) => l.startsWith('dashboard ')), 'the dashboard line');
  const url = lines.find((l) => l.startsWith('dashboard '))!.slice('dashboard '.length);
  const http = lines.find((l) => l.startsWith('http '))!.slice(5);
  assert.equal(url, `http://${http}/dashboard/`);
  assert.match(await (await fetch(url)).text(), /<title>Conveyor dashboard<\/title>/);
  assert.equal((await fetch(`${url}api/snapshot`)).status, 401);
  const ok = await fetch(`${url}api/snapshot`, { headers: { authorization: 'Bearer tok' } });
  assert.equal(ok.status, 200);
  assert.equal(((await ok.json()) as any).kind, 'embedded');
  assert.equal(await (await fetch(`http://${http}/ping`)).text(), 'OK');
  const snaps = await snapshots(`${url}api/events`, 1, { authorization: 'Bearer tok' });
  assert.equal(snaps.length, 1);
});

test('conveyor broker --dashboard-read-only refuses actions; --no-dashboard serves none', async (t) => {
  const lines = await started(t, ['--dashboard-read-only']);
  await waitFor(() => lines.some((l) => l.startsWith('dashboard ')), 'the dashboard line');
  const url = lines.find((l) => l.startsWith('dashboard '))!.slice('dashboard '.length);
  const refused = await fetch(`${url}api/action`, { method: 'POST', body: JSON.stringify({ action: 'delete', topic: 'x' }) });
  assert.equal(refused.status, 403);
  const none = await started(t, ['--no-dashboard']);
  const http = none.find((l) => l.startsWith('http '))!.slice(5);
  assert.ok(!none.some((l) => l.startsWith('dashboard ')));
  assert.equal((await fetch(`http://${http}/dashboard/`)).status, 404);
});

test('nsqSource: the figures, clients and actions of an nsqd-compatible broker over HTTP; no peek', async (t) => {
  const remote = await startBroker({ tcp: '127.0.0.1:0', http: '127.0.0.1:0' });
  t.after(() => remote.close());
  const topic = uniqueName('remote');
  const transport = await connect(`nsq://${remote.tcpAddress}`, { clientId: 'worker-7' });
  t.after(() => transport.close());
  const got: string[] = [];
  await transport.subscribe(topic, 'c', { maxInFlight: 3 }, (d) => {
    got.push(new TextDecoder().decode(d.body));
  });
  const board = dashboard({ source: nsqSource({ http: `http://${remote.httpAddress}` }) });
  t.after(() => board.close());
  const { createServer } = await import('node:http');
  const server = createServer((req, res) => board(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}/api`;
  const post = (path: string, body: unknown) => fetch(`${base}/${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  assert.equal((await post('publish', { topic, format: 'raw', body: 'hello' })).status, 200);
  await waitFor(() => got.length === 1, 'the message through nsqd');
  assert.deepEqual(got, ['hello']);
  const snap = (await (await fetch(`${base}/snapshot`)).json()) as any;
  assert.equal(snap.kind, 'nsq');
  const c = snap.topics.find((x: any) => x.name === topic).channels[0];
  assert.equal(c.inFlight, 1);
  assert.equal(c.clients[0].id, 'worker-7');
  assert.equal(c.clients[0].ready, 3);
  assert.equal((await post('action', { action: 'pause', topic, channel: 'c' })).status, 200);
  assert.equal((remote.engine as Engine).getTopic(topic)!.getChannel('c')!.paused, true);
  assert.equal((await post('action', { action: 'pause', topic: 'no_such_topic_here' })).status, 404);
  const peek = await fetch(`${base}/peek?topic=${topic}&channel=c`);
  assert.equal(peek.status, 400);
  assert.match(((await peek.json()) as any).error, /nsqd cannot peek/);
  // Dead letters through nsq:// at the HTTP port − 1 would be wrong here (port 0): the source
  // takes the URL it is given; listing goes through the transport.
  const dead = `${topic}.dead`;
  const e = remote.engine.topic(dead);
  e.publish([{ body: encodeWithId(new TextEncoder().encode('{"x":1}'), { 'content-type': 'application/json', 'conveyor-dead-code': 'ERR_SCHEMA', 'conveyor-dead-topic': topic }, 'abc') }]);
  const listing = dashboard({ source: nsqSource({ http: `http://${remote.httpAddress}`, url: `nsq://${remote.tcpAddress}` }) });
  t.after(() => listing.close());
  const server2 = createServer((req, res) => listing(req, res));
  await new Promise<void>((resolve) => server2.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server2.close(resolve)));
  const letters = (await (await fetch(`http://127.0.0.1:${(server2.address() as { port: number }).port}/api/dead?topic=${topic}`)).json()) as any;
  assert.equal(letters.letters.length, 1);
  assert.equal(letters.letters[0].id, 'abc');
  assert.equal(letters.letters[0].code, 'ERR_SCHEMA');
  assert.deepEqual(letters.letters[0].body.json, { x: 1 });
});
