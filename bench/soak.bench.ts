/**
 * Soak (issue 14): publish + consume through the embedded broker (TCP, nsq://) and the runtime
 * for 10 minutes at a steady rate, RSS sampled after a forced GC every 5 s; the slope of RSS over
 * time after the first minute (least squares) must stay under 1 MB/min. Not in CI: the run is long.
 *
 * `npm run bench -- soak` (10 min), `npm run bench -- soak --minutes=1` for a short dry run.
 */
import { z } from 'zod';
import { defineMessage } from '../src/core/schema.ts';
import { app } from '../src/runtime/app.ts';
import { startBroker } from '../src/server/index.ts';
import { record, save } from './lib.ts';

const minutesArg = process.argv.find((a) => a.startsWith('--minutes='));
const MINUTES = minutesArg ? Number(minutesArg.slice('--minutes='.length)) : 10;
if (!(MINUTES > 0)) throw new Error(`--minutes must be a positive number, got ${minutesArg}`);
const RATE = 2000; // messages per second, in batches of 100 every 50 ms
const SAMPLE_MS = 5000;
const WARMUP_MS = Math.min(60_000, (MINUTES * 60_000) / 5);

const broker = await startBroker({ tcp: '127.0.0.1:0', http: '127.0.0.1:0', memQueueSize: 10_000 });
const Msg = defineMessage({ name: 'soak', topic: 'soak', schema: z.object({ n: z.number(), at: z.number(), pad: z.string() }) });
const producer = app({ url: `nsq://${broker.tcpAddress}` });
const worker = app({ url: `nsq://${broker.tcpAddress}` });
let consumed = 0;
await worker.consume(Msg, { channel: 'work', concurrency: 50, maxInFlight: 500 }, async () => {
  consumed++;
});

const gc = (globalThis as { gc?: () => void }).gc;
const rssMb = () => {
  gc?.();
  return process.memoryUsage.rss() / 2 ** 20;
};
const samples: Array<[minutes: number, mb: number]> = [];
/** The JS heap beside RSS: a heap slope points at our objects, an RSS-only one at buffers or the allocator. */
const heap: Array<[minutes: number, mb: number]> = [];
const started = performance.now();
const end = started + MINUTES * 60_000;
let published = 0;
let nextSample = started + SAMPLE_MS;
const pad = 'x'.repeat(200);
while (performance.now() < end) {
  const tick = performance.now();
  await producer.publishMany(Msg, Array.from({ length: RATE / 20 }, () => ({ n: published++, at: Date.now(), pad })));
  if (tick >= nextSample) {
    const elapsed = tick - started;
    if (elapsed >= WARMUP_MS) {
      samples.push([elapsed / 60_000, rssMb()]);
      heap.push([elapsed / 60_000, process.memoryUsage().heapUsed / 2 ** 20]);
    }
    nextSample += SAMPLE_MS;
  }
  const wait = 50 - (performance.now() - tick);
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}
const deadline = performance.now() + 30_000;
while (consumed < published && performance.now() < deadline) await new Promise((r) => setTimeout(r, 100));
await producer.close();
await worker.close();
await broker.close();

/** Least-squares slope of mb over minutes. */
function slope(points: Array<[number, number]>): number {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxy = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return sxx === 0 ? Number.NaN : sxy / sxx;
}
const mbPerMin = slope(samples);
const heapPerMin = slope(heap);
const rss = samples.map(([, mb]) => mb);
const ok = mbPerMin < 1 && consumed >= published;
console.log(
  `soak: ${MINUTES} min, published ${published}, consumed ${consumed}, RSS after GC ${Math.min(...rss).toFixed(1)}–${Math.max(...rss).toFixed(1)} MB over ${samples.length} samples, slope ${mbPerMin.toFixed(3)} MB/min (limit 1; JS heap ${heapPerMin.toFixed(3)} MB/min) ${ok ? 'OK' : 'FAIL'}`,
);
record({
  name: `soak ${MINUTES} min, publish+consume over nsq:// at ${RATE}/s`,
  perSecond: (consumed / (MINUTES * 60_000)) * 1000,
  runs: [],
  peakRssMb: Math.max(...rss),
  notes: `RSS slope after the first ${(WARMUP_MS / 60_000).toFixed(1)} min: ${mbPerMin.toFixed(3)} MB/min (limit 1), JS heap ${heapPerMin.toFixed(3)} MB/min; ${samples.length} samples after GC; published ${published}, consumed ${consumed}`,
});
save('soak', 'Issue 14: a steady publish+consume load through the embedded broker and the runtime; memory must not grow.');
if (!ok) process.exit(1);
