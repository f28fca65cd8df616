/**
 * Shared harness for `npm run bench`. Each `bench/<name>.bench.ts` runs in its own process
 * (so peak RSS is its own), calls `record()` for each case, and ends with `save(name)`, which
 * writes `bench/results/<name>.json` (every run's raw figures) and `bench/results/<name>.md`
 * (the table quoted in docs). Machines are noisy: every figure is the median of several runs,
 * and comparisons are ratios measured side by side in the same process.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface CaseResult {
  /** Case name, e.g. "publish→consume→ack, 1 channel". */
  name: string;
  /** Median messages (or rows, requests) per second over the runs. */
  perSecond: number;
  /** Every run's figure, for the record. */
  runs: number[];
  /** Latency percentiles in ms when measured. */
  p50Ms?: number;
  p99Ms?: number;
  /** Peak resident set size of the bench process, MB. */
  peakRssMb?: number;
  /** The target from the issue, per second, when there is one. */
  target?: number;
  /** Free-form facts: the peer compared against, ratios, sizes. */
  notes?: string;
}

const results: CaseResult[] = [];
let peakRss = 0;
const rssTimer = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
}, 50);
rssTimer.unref();

export function sampleRss(): number {
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
  return peakRss / 1e6;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Percentile (0..100) of an unsorted sample. */
export function percentile(values: number[] | Float64Array, p: number): number {
  const sorted = Float64Array.from(values).sort();
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Runs `fn` `runs` times (after `warmup` discarded runs); `fn` returns items per second. */
export async function repeat(
  runs: number,
  fn: () => Promise<number> | number,
  warmup = 1,
): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < runs; i++) out.push(await fn());
  return out;
}

export function record(result: CaseResult): void {
  result.peakRssMb ??= Math.round(sampleRss());
  results.push(result);
  const extra = [
    result.p50Ms !== undefined ? `p50 ${result.p50Ms.toFixed(3)} ms` : '',
    result.p99Ms !== undefined ? `p99 ${result.p99Ms.toFixed(3)} ms` : '',
    result.target !== undefined ? `target ${fmt(result.target)}/s` : '',
    result.notes ?? '',
  ]
    .filter(Boolean)
    .join(', ');
  console.log(`${result.name}: ${fmt(result.perSecond)}/s (median of ${result.runs.length})${extra ? `; ${extra}` : ''}`);
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/**
 * Writes the results to bench/results/<name>.{json,md} when the run was asked to record them
 * (`npm run bench -- --record`, which sets CONVEYOR_BENCH_RECORD=1): an exploratory run must not
 * overwrite the committed figures.
 */
export function save(name: string, intro = ''): void {
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'results');
  // bench/compare.ts reads every run's figures from here, whatever --record says.
  if (process.env.CONVEYOR_BENCH_JSON) writeFileSync(process.env.CONVEYOR_BENCH_JSON, JSON.stringify(results));
  if (process.env.CONVEYOR_BENCH_RECORD !== '1') {
    console.log(`${name}: results not recorded (run with --record to write ${join('bench', 'results', `${name}.md`)})`);
    return;
  }
  mkdirSync(dir, { recursive: true });
  const meta = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: availableParallelism(),
  };
  writeFileSync(join(dir, `${name}.json`), `${JSON.stringify({ ...meta, results }, null, 2)}\n`);
  const rows = results.map(
    (r) =>
      `| ${r.name} | ${fmt(r.perSecond)} | ${r.target !== undefined ? `${fmt(r.target)} ${r.perSecond >= r.target ? '✓' : '✗'}` : ''} | ${r.p50Ms?.toFixed(3) ?? ''} | ${r.p99Ms?.toFixed(3) ?? ''} | ${r.peakRssMb ?? ''} | ${r.notes ?? ''} |`,
  );
  const md = [
    `# ${name} benchmark`,
    '',
    intro,
    '',
    `Measured ${meta.date} on Node ${meta.node}, ${meta.cpus ?? '?'} cores. Figures are medians of the runs listed in ${name}.json.`,
    '',
    '| case | per second | target | p50 ms | p99 ms | peak RSS MB | notes |',
    '|---|---:|---:|---:|---:|---:|---|',
    ...rows,
    '',
  ].join('\n');
  writeFileSync(join(dir, `${name}.md`), md);
}

/**
 * Runs `raw` and `ours` `runs` times each (after one warm-up of both), alternating which goes
 * first so neither always runs while a broker digests the other's work. Each returns one figure
 * per phase (e.g. [publish/s, consume/s]); every phase is recorded as a raw row and our row
 * with the ratio against the target.
 */
export async function sideBySide(options: {
  runs: number;
  phases: string[];
  raw: { label: string; run: () => Promise<number[]> };
  ours: { label: string; run: () => Promise<number[]> };
  targetRatio?: number;
}): Promise<void> {
  const { runs, phases, raw, ours } = options;
  await raw.run();
  await ours.run();
  const rawRuns: number[][] = [];
  const ourRuns: number[][] = [];
  for (let i = 0; i < runs; i++) {
    if (i % 2) {
      ourRuns.push(await ours.run());
      rawRuns.push(await raw.run());
    } else {
      rawRuns.push(await raw.run());
      ourRuns.push(await ours.run());
    }
  }
  for (const [p, what] of phases.entries()) {
    const r = rawRuns.map((x) => x[p]!);
    const c = ourRuns.map((x) => x[p]!);
    const ratio = median(c) / median(r);
    record({ name: `${raw.label}: ${what}`, perSecond: median(r), runs: r });
    record({
      name: `${ours.label}: ${what}`,
      perSecond: median(c),
      runs: c,
      notes: `${ours.label}/${raw.label} = ${ratio.toFixed(2)}${options.targetRatio ? ` (target ≥ ${options.targetRatio})` : ''}`,
    });
  }
}
