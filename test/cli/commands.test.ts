import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Broker, startBroker } from '../../src/server/index.ts';
import { tempDir, waitFor } from '../helpers/index.ts';

let broker: Broker;
before(async () => {
  broker = await startBroker({ tcp: '127.0.0.1:0', http: '127.0.0.1:0' });
});
after(() => broker.close());

function cli(args: string[]): { child: ChildProcess; out: () => string; err: () => string; done: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { timeout: 20_000 });
  let out = '';
  let err = '';
  child.stdout!.on('data', (b) => (out += b));
  child.stderr!.on('data', (b) => (err += b));
  const done = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, out: () => out, err: () => err, done };
}

describe('conveyor pub / tail / stats', () => {
  test('tail prints what pub publishes; stats shows the topic', async () => {
    const url = `nsq://${broker.tcpAddress}`;
    const tail = cli(['tail', url, 'cli_events', '--count', '1']);
    await waitFor(async () => {
      const stats = (await (await fetch(`http://${broker.httpAddress}/stats?format=json&topic=cli_events`)).json()) as { topics: Array<{ channels: unknown[] }> };
      return stats.topics[0]?.channels.length === 1;
    }, 'tail subscribed', 10_000);
    const pub = cli(['pub', url, 'cli_events', '{"hello":"world"}']);
    assert.equal(await pub.done, 0, pub.err());
    const id = pub.out().trim();
    assert.match(id, /^[0-9a-f]{16}$/);
    assert.equal(await tail.done, 0, tail.err());
    const line = JSON.parse(tail.out().trim());
    assert.deepEqual(line.value, { hello: 'world' });
    assert.equal(line.id, id);
    const stats = cli(['stats', `http://${broker.httpAddress}`]);
    assert.equal(await stats.done, 0, stats.err());
    assert.match(stats.out(), /cli_events/);
  });

  test('bad input is a clear error with a non-zero exit', async () => {
    const badUrl = cli(['pub', 'nope://x', 't', '{}']);
    assert.notEqual(await badUrl.done, 0);
    assert.match(badUrl.err(), /ERR_BAD_URL/);
    const badJson = cli(['pub', `nsq://${broker.tcpAddress}`, 't', '{oops']);
    assert.notEqual(await badJson.done, 0);
    assert.match(badJson.err(), /ERR_DECODE: the data is not JSON/);
  });
});

describe('conveyor run', () => {
  test('runs workers/<topic>/<channel>.ts against a URL, until signalled', async (t) => {
    const dir = tempDir(t);
    const out = join(dir, 'seen.txt');
    mkdirSync(join(dir, 'workers', 'jobs'), { recursive: true });
    writeFileSync(
      join(dir, 'workers', 'jobs', 'printer.mjs'),
      `import { appendFileSync } from 'node:fs';\nexport default (body) => { appendFileSync(${JSON.stringify(out)}, Buffer.from(body).toString() + '\\n'); };\n`,
    );
    const runner = cli(['run', dir, '--url', `nsq://${broker.tcpAddress}`]);
    await waitFor(() => runner.out().includes('worker jobs/printer'), 'the worker started', 15_000);
    const pub = cli(['pub', `nsq://${broker.tcpAddress}`, 'jobs', 'job-1', '--raw']);
    assert.equal(await pub.done, 0, pub.err());
    await waitFor(() => {
      try {
        return readFileSync(out, 'utf8').includes('job-1');
      } catch {
        return false;
      }
    }, 'the worker handled job-1', 10_000);
    runner.child.kill('SIGTERM');
    assert.equal(await runner.done, 0, runner.err());
  });
});
