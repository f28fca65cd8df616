/**
 * The CLI explains a mistake in one line (issue 9, item 5): each case here failed before, with a
 * stack trace, "fetch failed", a silent exit 0, or a wrong count.
 */
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { statsBase } from '../../src/cli/commands/stats.ts';
import { connect } from '../../src/connect.ts';
import { isConveyorError } from '../../src/core/errors.ts';
import { type Broker, startBroker } from '../../src/server/index.ts';
import { uniqueName, waitFor } from '../helpers/index.ts';
import { cli } from '../helpers/child.ts';

/** A clear error: non-zero, no stack frames, and the first line says what to do. */
function assertOneLine(r: { code: number | null; err: string }, pattern: RegExp): void {
  assert.notEqual(r.code, 0, r.err);
  assert.notEqual(r.code, null, `killed by the timeout: ${r.err}`);
  assert.doesNotMatch(r.err, /^\s+at /m, r.err);
  assert.match(r.err.split('\n')[0]!, pattern);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** A broker at nsqd's layout, HTTP on the TCP port + 1 (retried: the pair may be taken). */
async function brokerAtConvention(): Promise<Broker> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    try {
      return await startBroker({ tcp: `127.0.0.1:${port}`, http: `127.0.0.1:${port + 1}` });
    } catch (error) {
      if (attempt >= 5) throw error;
    }
  }
}

let broker: Broker;
before(async () => {
  broker = await brokerAtConvention();
});
after(() => broker.close());

describe('conveyor stats', { concurrency: true }, () => {
  test('takes the nsq:// URL tail takes (HTTP at the TCP port + 1) and counts clients as --json does', async (t) => {
    const topic = uniqueName('cli_stats');
    const transport = await connect(`nsq://${broker.tcpAddress}`);
    t.after(() => transport.close());
    await transport.subscribe(topic, 'watchers', { maxInFlight: 1 }, (d) => d.ack());
    await waitFor(async () => {
      const s = (await (await fetch(`http://${broker.httpAddress}/stats?format=json&topic=${topic}`)).json()) as { topics: Array<{ channels: Array<{ client_count: number }> }> };
      return s.topics[0]?.channels[0]?.client_count === 1;
    }, 'the subscriber is registered', 10_000);
    // By the TCP URL, and by the HTTP one (which worked before, but showed clients 0).
    for (const r of await Promise.all([cli(['stats', `nsq://${broker.tcpAddress}`]), cli(['stats', `http://${broker.httpAddress}`])])) {
      assert.equal(r.code, 0, r.err);
      assert.ok(r.out.includes(topic), r.out);
      const row = r.out.split('\n').find((line) => /^\s+watchers\s/.test(line));
      assert.ok(row, r.out);
      assert.equal(row.trim().split(/\s+/).at(-1), '1', `clients column: ${row}`);
    }
  });

  test('nsqlookup:// shows every nsqd that nsqlookupd lists, found by the http_port /nodes gives', async (t) => {
    // nsqlookupd's /nodes answer (nsqlookupd >= 1.0 shape), naming our broker; no nsqlookupd runs here.
    const [host, httpPort] = broker.httpAddress.split(':') as [string, string];
    const tcpPort = Number(broker.tcpAddress.split(':')[1]);
    const lookupd = createHttpServer((req, res) => {
      if (req.url !== '/nodes') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ producers: [{ broadcast_address: host, hostname: 'h', tcp_port: tcpPort, http_port: Number(httpPort), version: '1.3.0', topics: [] }] }));
    });
    await new Promise<void>((resolve) => lookupd.listen(0, '127.0.0.1', resolve));
    t.after(() => lookupd.close());
    const topic = uniqueName('cli_lookup');
    await fetch(`http://${broker.httpAddress}/topic/create?topic=${topic}`, { method: 'POST' });
    const r = await cli(['stats', `nsqlookup://127.0.0.1:${(lookupd.address() as { port: number }).port}`]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`^nsqd http://${broker.httpAddress}\n`));
    assert.match(r.out, new RegExp(`^${topic}\\s`, 'm'));
  });

  test('a broker that is not there names the HTTP address it tried and how to give another', async () => {
    const port = await freePort();
    const r = await cli(['stats', `nsq://127.0.0.1:${port - 1}`]);
    assertOneLine(r, new RegExp(`ERR_TRANSPORT: cannot reach http://127\\.0\\.0\\.1:${port}/stats .*--http HOST:PORT`));
  });

  test('amqp:// without channels says in one line how to name them (AMQP cannot list queues)', async () => {
    const r = await cli(['stats', 'amqp://guest:guest@127.0.0.1:5672']);
    assertOneLine(r, /ERR_BAD_OPTIONS: amqp:\/\/ cannot list queues over AMQP: name each channel as topic:channel/);
  });

  test('an unknown option is one line and the usage, not a stack trace', async () => {
    const r = await cli(['stats', '--bogus']);
    assert.equal(r.code, 2, r.err);
    assertOneLine(r, /^conveyor stats: Unknown option '--bogus'/);
    assert.match(r.err.split('\n')[1]!, /^usage: conveyor stats /);
  });
});

describe('conveyor pub / tail mistakes', { concurrency: true }, () => {
  test('pub with data that is not JSON points at --raw', async () => {
    const r = await cli(['pub', `nsq://${broker.tcpAddress}`, uniqueName('cli_pub'), 'hello']);
    assertOneLine(r, /ERR_DECODE: the data is not JSON .*add --raw/);
  });

  test('tail memory:// says memory:// is per-process and exits non-zero', async () => {
    const r = await cli(['tail', 'memory://', 't'], 10_000);
    assertOneLine(r, /ERR_BAD_URL: memory:\/\/ is per-process/);
  });

  test('pub memory:// says the same instead of publishing into a process that exits', async () => {
    const r = await cli(['pub', 'memory://', 't', '{}']);
    assertOneLine(r, /ERR_BAD_URL: memory:\/\/ is per-process/);
  });

  test('tail given the HTTP API URL names the transport URL instead', async () => {
    const r = await cli(['tail', `http://${broker.httpAddress}`, 't'], 10_000);
    assertOneLine(r, /ERR_BAD_URL: `conveyor tail` connects by a transport URL such as nsq:\/\/127\.0\.0\.1:4150/);
  });

  test('tail --count that is not a positive integer is refused instead of tailing forever', async () => {
    const r = await cli(['tail', `nsq://${broker.tcpAddress}`, uniqueName('cli_tail'), '--count', 'ten'], 10_000);
    assertOneLine(r, /ERR_BAD_OPTIONS: --count wants a positive integer/);
  });

  test('tail with a missing option value is one line and the usage', async () => {
    const r = await cli(['tail', `nsq://${broker.tcpAddress}`, 't', '--channel']);
    assert.equal(r.code, 2, r.err);
    assertOneLine(r, /^conveyor tail: Option '--channel <value>' argument missing/);
  });
});

test('statsBase: where each URL is read from, or why it cannot be', () => {
  assert.deepEqual(statsBase('nsq://10.0.0.5:4150', undefined).base, 'http://10.0.0.5:4151');
  assert.equal(statsBase('nsq://10.0.0.5', undefined).base, 'http://10.0.0.5:4151');
  assert.equal(statsBase('nsq://10.0.0.5:4150', '10.0.0.5:9000').base, 'http://10.0.0.5:9000');
  assert.equal(statsBase('http://127.0.0.1:4151/', undefined).base, 'http://127.0.0.1:4151');
  assert.deepEqual(statsBase('nsqlookup://10.0.0.6', undefined), { base: 'http://10.0.0.6:4161', why: 'nsqlookupd', lookup: true });
  for (const [url, pattern] of [
    ['embedded:///tmp/x', /per-process.*--data-dir/],
    ['kafka://127.0.0.1:9092', /kafka:\/\/ has no nsqd-style \/stats/],
    ['nope://x', /unknown transport scheme/],
  ] as const) {
    assert.throws(() => statsBase(url, undefined), (e: unknown) => isConveyorError(e) && e.code === 'ERR_BAD_URL' && pattern.test(e.message));
  }
  assert.throws(() => statsBase('nsq://h:4150', 'h'), (e: unknown) => isConveyorError(e) && e.code === 'ERR_BAD_OPTIONS');
});
