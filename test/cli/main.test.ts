import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';

function cli(args: string[], timeoutMs = 10_000): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { timeout: timeoutMs });
    let out = '';
    let err = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (err += b));
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

test('conveyor --help lists the commands; an unknown command is a clear error', async () => {
  const help = await cli(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.out, /broker/);
  const bad = await cli(['frobnicate']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /unknown command "frobnicate"/);
});

test('conveyor broker --help describes its options', async () => {
  const r = await cli(['broker', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.out, /--tcp HOST:PORT/);
});
