/**
 * `npm run bench [-- --record] [name...]`: runs every bench/<name>.bench.ts (or the named ones),
 * each in its own process one after another, so no two benchmarks share the two cores or a heap.
 * Results are written to bench/results/ only with --record.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const record = process.argv.includes('--record');
const wanted = process.argv.slice(2).filter((a) => a !== '--record' && !a.startsWith('--'));
const all = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.slice(0, -'.bench.ts'.length))
  .sort();
const names = wanted.length ? all.filter((n) => wanted.includes(n)) : all;
if (names.length === 0) {
  console.error(`no benchmark matches ${wanted.join(' ')}; have: ${all.join(', ')}`);
  process.exit(1);
}
let failed = 0;
for (const name of names) {
  console.log(`\n=== ${name}`);
  const run = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(here, `${name}.bench.ts`), ...process.argv.slice(2).filter((a) => a.startsWith('--') && a !== '--record')], {
    stdio: 'inherit',
    env: { ...process.env, CONVEYOR_BENCH_RECORD: record ? '1' : '0' },
  });
  if (run.status !== 0) {
    failed++;
    console.error(`benchmark ${name} failed (exit ${run.status ?? run.signal})`);
  }
}
process.exit(failed ? 1 : 0);
