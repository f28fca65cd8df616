/**
 * `npm run bench:compare -- [--record] [--rounds N] [--head REV] <git-rev> <bench...>`: the same
 * benchmarks on this checkout's sources (or REV's) and on <git-rev>'s, in one run, alternating which
 * goes first each round,
 * so that "no measurable cost" (issue 11: the dashboard and metrics, ≥ 0.97×) is a ratio measured
 * side by side and not two figures from different hours. Both trees run this checkout's bench/
 * harness (copied into a temporary worktree of <git-rev>), so only src/ differs.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from './lib.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const args = process.argv.slice(2);
const record = args.includes('--record');
const roundsAt = args.indexOf('--rounds');
const rounds = roundsAt >= 0 ? Number(args[roundsAt + 1]) : 3;
const headAt = args.indexOf('--head');
const headRev = headAt >= 0 ? args[headAt + 1] : undefined;
const positional = args.filter((a, i) => !a.startsWith('--') && i !== roundsAt + 1 && i !== headAt + 1);
const [rev, ...names] = positional;
if (!rev || names.length === 0 || !Number.isInteger(rounds) || rounds < 1) {
  console.error('usage: npm run bench:compare -- [--record] [--rounds N] [--head REV] <git-rev> <bench...>');
  process.exit(2);
}

const base = mkdtempSync(join(tmpdir(), 'conveyor-compare-'));
const git = (...a: string[]) => {
  const r = spawnSync('git', a, { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${a.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
};
const revision = git('rev-parse', '--short', rev);
const current = headRev
  ? git('rev-parse', '--short', headRev)
  : `${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', 'src').length > 0 ? '+changes' : ''}`;
const headTree = headRev ? mkdtempSync(join(tmpdir(), 'conveyor-compare-head-')) : undefined;
/** A worktree of `at` with this checkout's bench/ harness and node_modules. */
function prepare(dir: string, at: string): void {
  git('worktree', 'add', '--detach', dir, at);
  rmSync(join(dir, 'bench'), { recursive: true, force: true });
  cpSync(here, join(dir, 'bench'), { recursive: true });
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
}
prepare(base, rev);
if (headTree) prepare(headTree, headRev!);
try {
  const trees = { [current]: headTree ?? root, [revision]: base };
  const lines: string[] = [];
  for (const name of names) {
    const figures: Record<string, Map<string, number[]>> = { [current]: new Map(), [revision]: new Map() };
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? [current, revision] : [revision, current];
      for (const label of order) {
        const out = join(base, `${name}-${label}-${round}.json`);
        const run = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(trees[label]!, 'bench', `${name}.bench.ts`)], {
          cwd: trees[label],
          stdio: ['ignore', 'inherit', 'inherit'],
          env: { ...process.env, CONVEYOR_BENCH_RECORD: '0', CONVEYOR_BENCH_JSON: out },
        });
        if (run.status !== 0) throw new Error(`${name} on ${label} exited ${run.status ?? run.signal}`);
        for (const r of JSON.parse(readFileSync(out, 'utf8')) as Array<{ name: string; perSecond: number }>) {
          const list = figures[label]!.get(r.name) ?? [];
          list.push(r.perSecond);
          figures[label]!.set(r.name, list);
        }
      }
    }
    for (const [caseName, now] of figures[current]!) {
      const before = figures[revision]!.get(caseName);
      if (!before) continue;
      const ratio = median(now) / median(before);
      lines.push(`| ${name} | ${caseName} | ${Math.round(median(before)).toLocaleString('en-US')} | ${Math.round(median(now)).toLocaleString('en-US')} | ${ratio.toFixed(3)} |`);
      console.log(`${name}: ${caseName}: ${revision} ${Math.round(median(before))}/s, ${current} ${Math.round(median(now))}/s, ratio ${ratio.toFixed(3)}`);
    }
  }
  if (record) {
    const md = [
      `# ${current} against ${revision}`,
      '',
      `Measured ${new Date().toISOString()} on Node ${process.version}: medians of ${rounds} rounds per tree, alternating which tree runs first; both run this checkout's bench/ harness.`,
      '',
      '| bench | case | before /s | after /s | after/before |',
      '|---|---|---:|---:|---:|',
      ...lines,
      '',
    ].join('\n');
    const file = join(here, 'results', `compare-${revision}-${current}-${names.join('-')}.md`);
    writeFileSync(file, md);
    console.log(`written ${file}`);
  }
} finally {
  for (const dir of [base, headTree]) {
    if (dir === undefined) continue;
    git('worktree', 'remove', '--force', dir);
    rmSync(dir, { recursive: true, force: true });
  }
}
