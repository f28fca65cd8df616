/**
 * The worker runtime end to end over memory://: app.publishMany (batches of 1000) → decode →
 * zod schema check → async handler → ack, 100-byte-ish CBOR records. One channel and four.
 * Side by side, in the same process: the raw transport loop doing the same decode and ack
 * without the runtime, so the ratio shows what the runtime costs.
 *
 * Latency is measured at a fixed publish rate below saturation (RUNTIME_BENCH_RATE, 20,000 msg/s by
 * default: batches of 100 every 5 ms, on 1 and 4 channels), publish→handler of every message, as
 * users of this field quote latency (at a stated load). The throughput cases publish as fast as
 * they can, up to WINDOW messages ahead of the consumer: their latency is only how long a message
 * waits behind WINDOW others, so it is in their notes as "saturated p99", not their p99.
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
const RATE = Number(process.env.RUNTIME_BENCH_RATE ?? 20_000);
const RATE_SECONDS = Number(process.env.RUNTIME_BENCH_RATE_SECONDS ?? 5);
const RATE_BATCH = 100;

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
 * Publish→handler latency of every message on channel 0 while `rate` msg/s are published in
 * batches of RATE_BATCH at fixed times (a late tick does not shift the later ones).
 */
async function atRate(channels: number, rate: number): Promise<{ lat: Float64Array; perSecond: number }> {
  const a = app({ url: 'memory://' });
  const total = Math.round((rate * RATE_SECONDS) / RATE_BATCH) * RATE_BATCH;
  const lat = new Float64Array(total);
  const sentAt = new Float64Array(total / RATE_BATCH);
  const handled = new Array<number>(channels).fill(0);
  let doneChannels = 0;
  let finish!: () => void;
  const finished = new Promise<void>((r) => {
    finish = r;
  });
  for (let c = 0; c < channels; c++) {
    await a.consume(Frame, { channel: `r${c}`, concurrency: 256, maxInFlight: 2500 }, async (value) => {
      if (c === 0) lat[value.id] = performance.now() - sentAt[Math.floor(value.id / RATE_BATCH)]!;
      if (++handled[c]! === total && ++doneChannels === channels) finish();
    });
  }
  const values = Array.from({ length: RATE_BATCH }, (_, i) => sample(i));
  const everyMs = (RATE_BATCH / rate) * 1000;
  const start = performance.now();
  for (let b = 0; b < total / RATE_BATCH; b++) {
    const due = start + b * everyMs;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    for (let i = 0; i < RATE_BATCH; i++) values[i]!.id = b * RATE_BATCH + i;
    sentAt[b] = performance.now();
    await a.publishMany(Frame, values);
  }
  await finished;
  const perSecond = total / ((performance.now() - start) / 1000);
  await a.close();
  return { lat, perSecond };
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

const deliveries: Record<number, number> = {};
for (const channels of [1, 4]) {
  const lats: Float64Array[] = [];
  const runs = await repeat(RUNS, async () => {
    const r = await viaRuntime(channels);
    lats.push(r.lat);
    return r.perSecond;
  });
  const lat = lats.slice(-RUNS).flatMap((l) => [...l]);
  deliveries[channels] = median(runs) * channels;
  const vsOne = channels > 1 ? `; deliveries/s ${Math.round(deliveries[channels]!)} = ${(deliveries[channels]! / deliveries[1]!).toFixed(2)}× 1 channel's` : '';
  record({
    name: `runtime: publish and consume at once in one thread, ${channels} channel${channels > 1 ? 's' : ''}`,
    perSecond: median(runs),
    runs,
    notes: `${TOTAL.toLocaleString('en-US')} msgs/run, ${encodedSize} B CBOR, zod schema, concurrency 256, maxInFlight 2500${channels > 1 ? '; published msgs/s, each handled on every channel' : ''}${vsOne}; saturated p99 ${percentile(lat, 99).toFixed(1)} ms (${WINDOW} msgs ahead)`,
  });
}

for (const channels of [1, 4]) {
  const lats: Float64Array[] = [];
  const runs = await repeat(RUNS, async () => {
    const r = await atRate(channels, RATE);
    lats.push(r.lat);
    return r.perSecond;
  });
  const lat = lats.slice(-RUNS).flatMap((l) => [...l]);
  record({
    name: `runtime: latency at ${RATE.toLocaleString('en-US')} msg/s, ${channels} channel${channels > 1 ? 's' : ''}`,
    perSecond: median(runs),
    runs,
    p50Ms: percentile(lat, 50),
    p99Ms: percentile(lat, 99),
    notes: `publish→handler of every message on one channel, batches of ${RATE_BATCH} every ${((RATE_BATCH / RATE) * 1000).toFixed(1)} ms, ${RATE_SECONDS} s/run; target p99 < 50 ms`,
  });
}
save('runtime', 'The worker runtime over memory:// against the same work done directly on the transport.');
