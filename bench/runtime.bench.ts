/**
 * The worker runtime end to end over memory://: app.publishMany (batches of 1000) → decode →
 * zod schema check → async handler → ack, 100-byte-ish CBOR records. One channel and four.
 * Side by side, in the same process: the raw transport loop doing the same decode and ack
 * without the runtime, so the ratio shows what the runtime costs. Latency is publish→handler
 * of the first message of each batch.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { z } from 'zod';
import { connect } from '../src/connect.ts';
import { defineMessage } from '../src/core/schema.ts';
import { app } from '../src/runtime/app.ts';
import { median, percentile, record, repeat, save } from './lib.ts';

const TOTAL = Number(process.env.RUNTIME_BENCH_MESSAGES ?? 500_000);
const RUNS = Number(process.env.RUNTIME_BENCH_RUNS ?? 5);
const BATCH = 1000;
const WINDOW = 5_000;

const Frame = defineMessage({
  name: 'frame',
  topic: 'frames',
  schema: z.object({ id: z.number(), camera: z.string(), ts: z.date(), score: z.number(), box: z.array(z.number()).length(4), label: z.string() }),
});
const sample = (id: number) => ({ id, camera: 'cam-01', ts: new Date(1_700_000_000_000), score: 0.5, box: [1, 2, 3, 4], label: 'person-with-a-hat' });
const encodedSize = Frame.encode(sample(123456)).body.length;

async function viaRuntime(channels: number): Promise<{ perSecond: number; lat: Float64Array }> {
  const a = app({ url: 'memory://' });
  const batches = TOTAL / BATCH;
  const sentAt = new Float64Array(batches);
  const lat = new Float64Array(batches);
  const handled = new Array<number>(channels).fill(0);
  let doneChannels = 0;
  let finish!: () => void;
  const finished = new Promise<void>((r) => {
    finish = r;
  });
  for (let c = 0; c < channels; c++) {
    await a.consume(Frame, { channel: `c${c}`, concurrency: 256, maxInFlight: 2500 }, async (value) => {
      const n = handled[c]!;
      if (c === 0 && n % BATCH === 0) lat[n / BATCH] = performance.now() - sentAt[value.id / BATCH]!;
      handled[c] = n + 1;
      if (n + 1 === TOTAL && ++doneChannels === channels) finish();
    });
  }
  const values = Array.from({ length: BATCH }, (_, i) => sample(i));
  const start = performance.now();
  for (let b = 0; b < batches; b++) {
    while (b * BATCH - handled[0]! > WINDOW) await yieldToLoop();
    for (let i = 0; i < BATCH; i++) values[i]!.id = b * BATCH + i;
    sentAt[b] = performance.now();
    await a.publishMany(Frame, values);
  }
  await finished;
  const seconds = (performance.now() - start) / 1000;
  await a.close();
  return { perSecond: TOTAL / seconds, lat };
}

/**
 * The runtime's own work, like nsq's bench_reader consuming a backlog: TOTAL messages are
 * published first (the topic holds them), then one consumer decodes, validates, runs the
 * handler and acks them all. Returns [publish/s, consume/s].
 */
async function backlog(): Promise<[number, number]> {
  const a = app({ url: 'memory://' });
  const values = Array.from({ length: BATCH }, (_, i) => sample(i));
  let t = performance.now();
  for (let b = 0; b < TOTAL / BATCH; b++) await a.publishMany(Frame, values);
  const publish = TOTAL / ((performance.now() - t) / 1000);
  let handled = 0;
  let finish!: () => void;
  const finished = new Promise<void>((r) => {
    finish = r;
  });
  t = performance.now();
  await a.consume(Frame, { channel: 'backlog', concurrency: 256, maxInFlight: 2500 }, async () => {
    if (++handled === TOTAL) finish();
  });
  await finished;
  const consume = TOTAL / ((performance.now() - t) / 1000);
  await a.close();
  return [publish, consume];
}

/** The same backlog consumed without the runtime: transport.subscribe, decode + validate, ack. */
async function rawBacklog(): Promise<number> {
  const transport = await connect('memory://');
  const encoded = Array.from({ length: BATCH }, (_, i) => Frame.encode(sample(i)));
  for (let b = 0; b < TOTAL / BATCH; b++) await transport.publish('frames', encoded);
  let handled = 0;
  let finish!: () => void;
  const finished = new Promise<void>((r) => {
    finish = r;
  });
  const t = performance.now();
  await transport.subscribe('frames', 'raw', { maxInFlight: 2500 }, (d) => {
    Frame.decode(d.body, d.headers);
    d.ack();
    if (++handled === TOTAL) finish();
  });
  await finished;
  const perSecond = TOTAL / ((performance.now() - t) / 1000);
  await transport.close();
  return perSecond;
}

const pubs: number[] = [];
const consumed = await repeat(RUNS, async () => {
  const [p, c] = await backlog();
  pubs.push(p);
  return c;
});
record({
  name: 'runtime: consume a backlog (decode→schema→handler→ack), 1 channel',
  perSecond: median(consumed),
  runs: consumed,
  target: 300_000,
  notes: `${TOTAL.toLocaleString('en-US')} msgs/run, ${encodedSize} B CBOR, zod schema, concurrency 256, maxInFlight 2500`,
});
const rawConsumed = await repeat(RUNS, rawBacklog);
record({
  name: 'raw transport: consume the same backlog (decode+validate+ack, no runtime)',
  perSecond: median(rawConsumed),
  runs: rawConsumed,
  notes: `runtime/raw = ${(median(consumed) / median(rawConsumed)).toFixed(2)}`,
});
record({
  name: 'runtime: publish (validate→encode→confirm), batches of 1000',
  perSecond: median(pubs.slice(-RUNS)),
  runs: pubs.slice(-RUNS),
  notes: 'app.publishMany into a topic with no channel yet',
});

for (const channels of [1, 4]) {
  const lats: Float64Array[] = [];
  const runs = await repeat(RUNS, async () => {
    const r = await viaRuntime(channels);
    lats.push(r.lat);
    return r.perSecond;
  });
  const lat = lats.slice(-RUNS).flatMap((l) => [...l]);
  record({
    name: `runtime: publish and consume at once in one thread, ${channels} channel${channels > 1 ? 's' : ''}`,
    perSecond: median(runs),
    runs,
    p50Ms: percentile(lat, 50),
    p99Ms: percentile(lat, 99),
    notes: `${TOTAL.toLocaleString('en-US')} msgs/run, ${encodedSize} B CBOR, zod schema, concurrency 256, maxInFlight 2500${channels > 1 ? '; published msgs/s, each handled on every channel' : ''}`,
  });
}
save('runtime', 'The worker runtime over memory:// against the same work done directly on the transport.');
