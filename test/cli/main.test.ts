import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cli } from '../helpers/child.ts';

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
