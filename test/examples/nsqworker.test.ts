import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { before, describe, test } from 'node:test';
import { connect } from '../../src/connect.ts';
import { HEADER, type Headers } from '../../src/core/message.ts';
import { startBroker } from '../../src/server/index.ts';
import { waitFor } from '../helpers/index.ts';
import { spawnChild } from '../helpers/child.ts';
import { buildDist, exitOf, printed, ROOT, runExample } from './run-example.ts';

describe('examples/nsqworker', { timeout: 60_000 }, () => {
  before(buildDist);

  test('main.ts: handled, retried, deduplicated and dead-lettered as the talk\'s worker would (never dropped)', async () => {
    const run = runExample('examples/nsqworker/main.ts');
    assert.equal(await exitOf(run), 0, `${run.out()}\n${run.err()}`);
    const outcome = JSON.parse(/nsqworker: (\{.*\})\n/.exec(run.out())![1]!);
    assert.deepEqual(outcome, { audit: { processed: 7, dead: 2 }, demo: { processed: 5, duplicate: 1, dead: 3 } });
    assert.match(run.out(), /demo: log\/demo, message: flaky: handled on its second delivery \(attempt 2\)\n/);
    assert.match(run.out(), /demo: log\/demo, message: Hello 世界 \(attempt 1\)\n/);
    assert.equal(run.out().match(/message: once, though published twice/g)?.length, 1, 'dedup: handled once');
    assert.match(run.err(), /not published: log: Too small/);
  });

  test('main.ts via nsqlookup://: nsqd found through nsqlookupd (a stand-in answering /nodes and /lookup)', async (t) => {
    const broker = await startBroker({ tcp: '127.0.0.1:0', http: '127.0.0.1:0' });
    t.after(() => broker.close());
    const [host, port] = broker.tcpAddress.split(':');
    const asked: string[] = [];
    // nsqlookupd ≥ 1.0's answers: every nsqd holds every topic here.
    const lookupd = createServer((req, res) => {
      asked.push(req.url!.replace(/\?.*/, ''));
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ channels: [], producers: [{ broadcast_address: host, hostname: host, tcp_port: Number(port), http_port: 0, version: '1.3.0' }] }));
    });
    await new Promise<void>((r) => lookupd.listen(0, '127.0.0.1', r));
    t.after(() => new Promise((r) => lookupd.close(r)));
    const run = runExample('examples/nsqworker/main.ts', [`nsqlookup://127.0.0.1:${(lookupd.address() as AddressInfo).port}`]);
    assert.equal(await exitOf(run), 0, `${run.out()}\n${run.err()}`);
    assert.deepEqual(JSON.parse(/nsqworker: (\{.*\})\n/.exec(run.out())![1]!), { audit: { processed: 7, dead: 2 }, demo: { processed: 5, duplicate: 1, dead: 3 } });
    assert.ok(asked.includes('/lookup') && asked.includes('/nodes'), `asked ${asked.join(' ')}`);
  });

  test('`npx conveyor run examples/nsqworker/workers` on nsq:// and publish.ts: the dead letters carry their reasons', async (t) => {
    const broker = await startBroker({ tcp: '127.0.0.1:0', http: '127.0.0.1:0' });
    t.after(() => broker.close());
    const url = `nsq://${broker.tcpAddress}`;
    const dead: Headers[] = [];
    const reader = await connect(url);
    t.after(() => reader.close());
    await reader.subscribe('log.dead', 'check', { maxInFlight: 10 }, (d) => {
      dead.push(d.headers);
      d.ack();
    });
    // What `npx conveyor` runs here (the package's bin, dist/cli/main.js): the same copy the workers
    // import. Started directly, so that a kill reaches it (npx does not pass SIGKILL on).
    const workers = spawnChild(process.execPath, ['dist/cli/main.js', 'run', 'examples/nsqworker/workers', '--url', url], { cwd: ROOT });
    t.after(async () => {
      if (!workers.exited()) workers.child.kill('SIGKILL');
      await workers.done;
    });
    await printed(workers, /conveyor: worker log\/demo\n/);
    await printed(workers, /conveyor: worker log\/audit\n/);
    const publisher = runExample('examples/nsqworker/publish.ts', [url]);
    assert.equal(await exitOf(publisher), 0, publisher.err());
    await waitFor(() => dead.length === 5, `5 dead letters on log.dead (${dead.length})`, 15_000);
    const reasons = dead.map((h) => `${h[HEADER.deadChannel]} ${h[HEADER.deadCode]} ${h[HEADER.deadAttempts]}`).sort();
    assert.deepEqual(reasons, ['audit ERR_SCHEMA 1', 'audit ERR_SCHEMA 1', 'demo ERR_HANDLER 3', 'demo ERR_PERMANENT 1', 'demo ERR_SCHEMA 1']);
    await printed(workers, /message: flaky: handled on its second delivery \(attempt 2\)\n/);
    // SIGTERM: the graceful stop the talk's tornado loop never had.
    workers.child.kill('SIGTERM');
    assert.equal(await exitOf(workers, 10_000), 0, workers.err());
    assert.equal(workers.out().match(/message: once, though published twice/g)?.length, 1);
  });
});
