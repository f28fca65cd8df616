/**
 * `conveyor broker` (src/cli/commands/broker.ts): flags, the printed addresses, serving until
 * stopped, and a graceful close.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { run } from '../../src/cli/commands/broker.ts';
import { tempDir, uniqueName, waitFor } from '../helpers/index.ts';
import { cmd, WireClient } from './wire.ts';

function start(args: string[]) {
  const lines: string[] = [];
  const errors: string[] = [];
  const stop = new AbortController();
  const exit = run(args, { out: (l) => lines.push(l), err: (l) => errors.push(l), stop: stop.signal });
  return { lines, errors, stop, exit };
}

/** stderr without the structured info lines (listening, stopping, stopped): what went wrong. */
function problems(b: { errors: string[] }): string[] {
  return b.errors.filter((l) => !(l.startsWith('{') && JSON.parse(l).level === 'info'));
}

test('serves TCP and HTTP on the given addresses until stopped, then exits 0', async (t) => {
  const b = start(['--tcp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--memory', '--mem-queue-size', '100', '--max-msg-size', '64']);
  t.after(() => b.stop.abort());
  await waitFor(() => b.lines.length >= 2 || problems(b).length > 0, 'the addresses');
  assert.deepEqual(problems(b), []);
  await waitFor(() => b.errors.length > 0, 'the listening log line');
  const listening = JSON.parse(b.errors[0]!);
  assert.equal(listening.component, 'broker');
  assert.equal(listening.msg, 'listening');
  assert.equal(listening.tcp, b.lines.find((l) => l.startsWith('tcp '))!.slice(4));
  const tcp = b.lines.find((l) => l.startsWith('tcp '))!.slice(4);
  const http = b.lines.find((l) => l.startsWith('http '))!.slice(5);
  assert.equal(await (await fetch(`http://${http}/ping`)).text(), 'OK');
  const c = await WireClient.open(tcp);
  t.after(() => c.close());
  c.write(cmd(`PUB ${uniqueName()}`, 'x'.repeat(64)));
  assert.equal(await c.response(), 'OK');
  c.write(cmd(`PUB ${uniqueName()}`, 'x'.repeat(65)));
  assert.match(await c.error(), /^E_BAD_MESSAGE .*65 > 64/, '--max-msg-size reached the protocol');
  b.stop.abort();
  assert.equal(await b.exit, 0);
});

test('bad flags exit 2 with the usage', async () => {
  for (const args of [['--bogus'], ['--mem-queue-size', 'lots'], ['--durable', '--memory'], ['--memory', '--data-dir', 'x'], ['positional']]) {
    const b = start(args);
    assert.equal(await b.exit, 2, args.join(' '));
    assert.match(b.errors.join('\n'), /usage: conveyor broker/);
  }
  const help = start(['--help']);
  assert.equal(await help.exit, 0);
  assert.match(help.lines.join('\n'), /--data-dir DIR/);
});

test('an address already in use exits 1 with the reason', async (t) => {
  const first = start(['--tcp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--memory']);
  t.after(() => first.stop.abort());
  await waitFor(() => first.lines.length >= 2, 'the first broker');
  const taken = first.lines.find((l) => l.startsWith('tcp '))!.slice(4);
  const second = start(['--tcp', taken, '--http', '127.0.0.1:0', '--memory']);
  assert.equal(await second.exit, 1);
  assert.match(second.errors.join('\n'), /could not listen/);
  first.stop.abort();
  assert.equal(await first.exit, 0);
});

test('--data-dir uses the disk queue when this build has it, and says so when it does not', async (t) => {
  const dir = tempDir(t);
  const b = start(['--tcp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--data-dir', dir, '--mem-queue-size', '0']);
  t.after(() => b.stop.abort());
  const hasDisk = existsSync(new URL('../../src/engine/disk/index.ts', import.meta.url));
  if (!hasDisk) {
    assert.equal(await b.exit, 1);
    assert.match(b.errors.join('\n'), /disk queue/);
    return;
  }
  await waitFor(() => b.lines.length >= 3 || problems(b).length > 0, 'the addresses');
  assert.deepEqual(problems(b), []);
  assert.ok(b.lines.some((l) => l.startsWith(`data ${dir}`)));
  const topic = uniqueName();
  const http = b.lines.find((l) => l.startsWith('http '))!.slice(5);
  await fetch(`http://${http}/channel/create?topic=${topic}&channel=keep`, { method: 'POST' }).then(async (r) => {
    if (r.status === 404) {
      await fetch(`http://${http}/topic/create?topic=${topic}`, { method: 'POST' });
      await fetch(`http://${http}/channel/create?topic=${topic}&channel=keep`, { method: 'POST' });
    }
  });
  const pub = await fetch(`http://${http}/mpub?topic=${topic}`, { method: 'POST', body: 'a\nb\nc' });
  assert.equal(pub.status, 200);
  b.stop.abort();
  assert.equal(await b.exit, 0);

  // A second broker on the same directory serves what the first one kept.
  const again = start(['--tcp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--data-dir', dir, '--mem-queue-size', '0']);
  t.after(() => again.stop.abort());
  await waitFor(() => again.lines.length >= 3 || problems(again).length > 0, 'the second broker');
  assert.deepEqual(problems(again), []);
  const c = await WireClient.open(again.lines.find((l) => l.startsWith('tcp '))!.slice(4));
  t.after(() => c.close());
  c.write(cmd(`SUB ${topic} keep`));
  assert.equal(await c.response(), 'OK');
  c.write(cmd('RDY 10'));
  const bodies = [];
  for (let i = 0; i < 3; i++) bodies.push((await c.message()).body.toString());
  assert.deepEqual(bodies, ['a', 'b', 'c']);
  again.stop.abort();
  assert.equal(await again.exit, 0);
});

test('without --data-dir the disk queue lives in ./.conveyor/broker, as nsqd uses its working directory', async (t) => {
  const cwd = process.cwd();
  const dir = tempDir(t);
  process.chdir(dir);
  t.after(() => process.chdir(cwd));
  const b = start(['--tcp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--mem-queue-size', '0']);
  t.after(() => b.stop.abort());
  await waitFor(() => b.lines.length >= 3 || problems(b).length > 0, 'the addresses');
  assert.deepEqual(problems(b), []);
  assert.ok(b.lines.includes('data ./.conveyor/broker'), b.lines.join('\n'));
  const tcp = b.lines.find((l) => l.startsWith('tcp '))!.slice(4);
  const c = await WireClient.open(tcp);
  t.after(() => c.close());
  const topic = uniqueName();
  c.write(cmd(`PUB ${topic}`, 'kept'));
  assert.equal(await c.response(), 'OK');
  b.stop.abort();
  assert.equal(await b.exit, 0);
  assert.ok(readdirSync(join(dir, '.conveyor', 'broker')).some((f) => f.startsWith(`${topic}.diskqueue`)));
});
