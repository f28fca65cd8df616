/**
 * issue 9, "Done means": the packed tarball installed into an empty project, used as a new user
 * would from the README: the worker example (with its own `zod`) and `conveyor start` (with PGlite).
 * No repo file is reachable from the project: only what `npm pack` ships and the registry.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir, waitFor } from '../helpers/index.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function child(cmd: string, args: string[], cwd: string): { proc: ChildProcess; out: () => string; done: Promise<number | string | null> } {
  const proc = spawn(cmd, args, { cwd, env: { ...process.env, CI: '' } });
  let out = '';
  proc.stdout!.on('data', (b) => (out += b));
  proc.stderr!.on('data', (b) => (out += b));
  const done = new Promise<number | string | null>((resolve) => proc.on('close', (code, signal) => resolve(code ?? signal)));
  return { proc, out: () => out, done };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

describe('the packed tarball in an empty project', { timeout: 300_000 }, () => {
  test('installs without engine warnings; the README worker and `conveyor start` run from it', async (t) => {
    const dir = tempDir(t, 'conveyor-pack-');
    const packed = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' })
      .trim()
      .split('\n')
      .pop()!;
    const project = join(dir, 'project');
    execFileSync('mkdir', ['-p', project]);
    writeFileSync(join(project, 'package.json'), '{ "name": "new-user", "private": true, "type": "module" }\n');
    // What the README's install section tells a user: the package, plus zod for the example's schema
    // and PGlite for `conveyor start`'s embedded archive.
    const install = execFileSync('npm', ['install', '--no-audit', '--no-fund', join(dir, packed), 'zod', '@electric-sql/pglite'], {
      cwd: project,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, npm_config_loglevel: 'warn' },
    });
    assert.doesNotMatch(install, /EBADENGINE/);

    // The README's worker, as written but for a handler that prints.
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const code = /```ts\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf('## A worker in a few lines')))?.[1];
    assert.ok(code, 'the README has the worker example');
    const comment = '  // throw to retry with backoff; throw PermanentError to dead-letter at once\n';
    assert.ok(code.includes(comment));
    writeFileSync(join(project, 'worker.ts'), code.replace(comment, "  console.log('handled', frame.camera);\n"));
    const worker = child(process.execPath, ['--import', 'tsx', 'worker.ts'], project);
    t.after(() => worker.proc.kill('SIGKILL'));
    await waitFor(() => worker.out().includes('handled c1'), `the worker handled its message: ${worker.out()}`, 30_000);
    worker.proc.kill('SIGINT');
    assert.equal(await worker.done, 0, worker.out());

    // `conveyor start` from the installed bin, on free ports, PGlite in the project.
    const [gw, tcp, http] = [await freePort(), await freePort(), await freePort()];
    const bin = join(project, 'node_modules', '.bin', 'conveyor');
    const start = child(
      bin,
      ['start', '--gateway', `127.0.0.1:${gw}`, '--tcp', `127.0.0.1:${tcp}`, '--http', `127.0.0.1:${http}`, '--every', '1'],
      project,
    );
    t.after(() => start.proc.kill('SIGKILL'));
    await waitFor(() => start.out().includes('drive it with'), `conveyor start came up: ${start.out()}`, 120_000, 100);
    const res = await fetch(`http://127.0.0.1:${gw}/v1/topics/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'click', user: 1, at: Date.now() }),
    });
    assert.equal(res.status, 201, await res.text());
    start.proc.kill('SIGINT');
    assert.equal(await start.done, 0, start.out());
    assert.match(start.out(), /stopped; archived [1-9]\d* events/);
  });
});
