import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { app, bytesMessage } from '../../src/index.ts';
import { type Child, spawnChild } from '../helpers/child.ts';
import { tempDir, uniqueName, waitFor } from '../helpers/index.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function node(file: string): Child {
  return spawnChild(process.execPath, ['--import', 'tsx', file], { cwd: ROOT, timeout: 30_000 });
}

/** The README's "A worker in a few lines", verbatim but for a handler that prints and resolvable import specifiers. */
function readmeWorker(dir: string): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## A worker in a few lines'));
  const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(code, 'the README has the worker example');
  const comment = '  // throw to retry with backoff; throw PermanentError to dead-letter at once\n';
  assert.ok(code.includes(comment), 'the example handler still has its comment line');
  assert.ok(code.includes('await pipeline.run();'), 'the example ends in run()');
  const source = code
    .replace(comment, "  console.log('handled', frame.camera, frame.score);\n")
    .replace("from 'conveyor-pipelines'", `from ${JSON.stringify(pathToFileURL(join(ROOT, 'src/index.ts')).href)}`)
    .replace("from 'zod'", `from ${JSON.stringify(import.meta.resolve('zod'))}`);
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  const file = join(dir, 'worker.ts');
  writeFileSync(file, `${source}console.log('run resolved');\n`);
  return file;
}

describe('run()', () => {
  test("the README's worker stays alive, handles its message, and exits 0 after a graceful stop on SIGINT", async (t) => {
    const worker = node(readmeWorker(tempDir(t)));
    t.after(() => worker.child.kill('SIGKILL'));
    await waitFor(() => worker.out().includes('handled c1 0.9') || worker.exited(), 'the handler ran', 20_000);
    assert.equal(worker.exited(), false, `the worker exited early (${await Promise.race([worker.done, 'running'])}): ${worker.err()}`);
    // Idle now, on memory:// nothing but run() holds the event loop.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(worker.exited(), false, `the idle worker exited: ${worker.err()}`);
    worker.child.kill('SIGINT');
    assert.equal(await worker.done, 0, worker.err());
    assert.match(worker.out(), /handled c1 0\.9\nrun resolved\n$/);
  });

  test('a second signal forces: a handler that waits for its abort signal does not hold the stop', async (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'stuck.ts');
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
    writeFileSync(
      file,
      `import { app, bytesMessage } from ${JSON.stringify(pathToFileURL(join(ROOT, 'src/index.ts')).href)};
const pipeline = app({ url: 'memory://' });
const Job = bytesMessage('stuck');
await pipeline.consume(Job, { channel: 'c' }, (_body, ctx) => {
  console.log('started');
  return new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
});
await pipeline.publish(Job, new Uint8Array([1]));
await pipeline.run();
console.log('run resolved');
`,
    );
    const worker = node(file);
    t.after(() => worker.child.kill('SIGKILL'));
    await waitFor(() => worker.out().includes('started') || worker.exited(), 'the handler started', 20_000);
    worker.child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(worker.exited(), false, 'a graceful stop waits for the running handler');
    worker.child.kill('SIGINT');
    assert.equal(await worker.done, 0, worker.err());
    assert.match(worker.out(), /run resolved\n$/);
  });

  test('close() from code makes run() resolve and removes its signal handlers', async () => {
    const before = process.listenerCount('SIGINT');
    const pipeline = app({ url: `memory://${uniqueName('run')}` });
    await pipeline.consume(bytesMessage(uniqueName('topic')), { channel: 'c' }, () => {});
    const running = pipeline.run();
    assert.equal(process.listenerCount('SIGINT'), before + 1);
    await pipeline.close();
    const outcome = await Promise.race([running.then(() => 'resolved'), new Promise((r) => setTimeout(r, 2000, 'still running'))]);
    assert.equal(outcome, 'resolved');
    assert.equal(process.listenerCount('SIGINT'), before);
    // Once closed, run() does not wait for a signal that nothing will send.
    assert.equal(await Promise.race([pipeline.run().then(() => 'resolved'), new Promise((r) => setTimeout(r, 500, 'waiting'))]), 'resolved');
  });
});
