/**
 * `conveyor run` as a user runs it: the built CLI (dist/cli/main.js, plain `node`, no loader flag)
 * on a TypeScript app file and on a workers/ folder, each retrying and dead-lettering a message
 * before SIGINT stops it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { app, bytesMessage } from '../../src/index.ts';
import { type Broker, startBroker } from '../../src/server/index.ts';
import { type Child, spawnChild } from '../helpers/child.ts';
import { tempDir, uniqueName, waitFor } from '../helpers/index.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
let pkg: string;
let broker: Broker;

before(async () => {
  // The package as installed: its package.json, its dependencies, and a fresh build of src.
  pkg = mkdtempSync(join(tmpdir(), 'conveyor-pkg-'));
  copyFileSync(join(ROOT, 'package.json'), join(pkg, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(pkg, 'node_modules'), 'dir');
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  await promisify(execFile)(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(pkg, 'dist')], { cwd: ROOT });
  broker = await startBroker({ tcp: '127.0.0.1:0', http: '127.0.0.1:0' });
});
after(async () => {
  await broker?.close();
  if (pkg) rmSync(pkg, { recursive: true, force: true });
});

function conveyor(args: string[], cwd: string): Child {
  return spawnChild(process.execPath, [join(pkg, 'dist', 'cli', 'main.js'), ...args], { cwd, timeout: 30_000 });
}

describe('conveyor run on TypeScript, from the built CLI', () => {
  test('an app file on memory:// retries, dead-letters, and runs until SIGINT', async (t) => {
    const project = tempDir(t);
    writeFileSync(join(project, 'package.json'), '{ "type": "module" }\n');
    mkdirSync(join(project, 'node_modules'));
    symlinkSync(pkg, join(project, 'node_modules', 'conveyor-pipelines'), 'dir');
    // An enum: TypeScript that type stripping alone (Node 22) cannot run either.
    writeFileSync(
      join(project, 'app.ts'),
      `import { app, bytesMessage, HEADER } from 'conveyor-pipelines';
enum Outcome { Fail = 'fail' }
const Job = bytesMessage('jobs');
export const pipeline = app({ url: 'memory://' });
await pipeline.consume(Job, { channel: 'work', retry: { attempts: 3, backoff: { initialMs: 20 } } }, (_body: Uint8Array, ctx) => {
  console.log(\`attempt \${ctx.attempts}\`);
  throw new Error(Outcome.Fail);
});
await pipeline.consume(bytesMessage('jobs.dead'), { channel: 'watch' }, (body: Uint8Array, ctx) => {
  console.log(\`dead \${Buffer.from(body)}: \${ctx.headers[HEADER.deadReason]}\`);
});
await pipeline.publish(Job, new TextEncoder().encode('job-1'));
`,
    );
    const runner = conveyor(['run', 'app.ts'], project);
    t.after(() => runner.child.kill('SIGKILL'));
    await waitFor(() => runner.out().includes('dead job-1') || runner.exited(), 'the message was dead-lettered', 20_000);
    assert.equal(runner.exited(), false, `conveyor run exited early: ${runner.err()}`);
    assert.match(runner.out(), /attempt 1\nattempt 2\nattempt 3\ndead job-1: fail\n/);
    runner.child.kill('SIGINT');
    assert.equal(await runner.done, 0, runner.err());
  });

  test('a workers/<topic>/<channel>.ts folder (CommonJS scope) retries, dead-letters, and runs until SIGINT', async (t) => {
    const project = tempDir(t);
    const topic = uniqueName('jobs');
    mkdirSync(join(project, 'workers', topic), { recursive: true });
    mkdirSync(join(project, 'workers', `${topic}.dead`), { recursive: true });
    writeFileSync(
      join(project, 'workers', topic, 'flaky.ts'),
      `export const options: { retry: { attempts: number; backoff: { initialMs: number } } } = { retry: { attempts: 2, backoff: { initialMs: 20 } } };
export default (_body: Uint8Array, ctx: { attempts: number }): void => {
  console.log(\`attempt \${ctx.attempts}\`);
  throw new Error('flaky');
};
`,
    );
    writeFileSync(
      join(project, 'workers', `${topic}.dead`, 'watch.ts'),
      `export default (body: Uint8Array): void => {
  console.log(\`dead \${Buffer.from(body).toString()}\`);
};
`,
    );
    const url = `nsq://${broker.tcpAddress}`;
    const runner = conveyor(['run', '.', '--url', url], project);
    t.after(() => runner.child.kill('SIGKILL'));
    await waitFor(() => runner.out().includes(`worker ${topic}/flaky`) || runner.exited(), 'the workers started', 20_000);
    assert.equal(runner.exited(), false, `conveyor run exited early: ${runner.err()}`);
    await waitFor(() => runner.out().includes(`worker ${topic}.dead/watch`), 'the dead-letter watcher started', 5000);
    const publisher = app({ url });
    t.after(() => publisher.close());
    await publisher.publish(bytesMessage(topic), new TextEncoder().encode('job-2'));
    await waitFor(() => runner.out().includes('dead job-2') || runner.exited(), 'the message was dead-lettered', 20_000);
    assert.equal(runner.exited(), false, `conveyor run exited early: ${runner.err()}`);
    assert.match(runner.out(), /attempt 1\nattempt 2\ndead job-2\n/);
    runner.child.kill('SIGINT');
    assert.equal(await runner.done, 0, runner.err());
  });
});
