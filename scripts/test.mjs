#!/usr/bin/env node
// Runs every test/**/*.test.ts with node's built-in runner (Node 20 does not glob .ts itself),
// then again under each extra Node line (scripts/node-binaries.mjs: 22 and 24 in CI).
// Extra arguments narrow the run: `npm run test:unit -- test/engine` or a file path.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { extraVersions, nodeBinary } from './node-binaries.mjs';

function collect(path, out) {
  if (statSync(path).isDirectory()) {
    for (const entry of readdirSync(path).sort()) collect(join(path, entry), out);
  } else if (path.endsWith('.test.ts')) out.push(path);
  return out;
}

const roots = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const flags = process.argv.slice(2).filter((a) => a.startsWith('-'));
const files = (roots.length ? roots : ['test']).flatMap((r) => collect(r, []));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
// Suites talk to shared real services and our own brokers on port 0: run files one at a time
// by default so that a slow machine does not turn timing-sensitive cases flaky.
const concurrency = process.env.TEST_CONCURRENCY ?? '1';
// --test-force-exit: a file whose tests are done exits even if a child it started (Chromium, a
// broker) is still alive, instead of holding the whole run (once: 11 minutes, until killed).
const args = ['--import', 'tsx', '--test', '--test-force-exit', `--test-concurrency=${concurrency}`, ...flags, ...files];

function run(node) {
  const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
  console.log(`\n# tests on Node ${version}`);
  const r = spawnSync(node, args, { stdio: 'inherit' });
  return r.status ?? 1;
}

let status = run(process.execPath);
for (const major of extraVersions()) {
  if (status !== 0) break;
  status = run(nodeBinary(major));
}
process.exit(status);
