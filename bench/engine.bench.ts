/**
 * The embedded engine end to end through the Transport interface (memory://), in one process:
 * publish (batches of 1000) → deliver → ack inside onMessage, 100-byte CBOR bodies, maxInFlight
 * 2500. One channel, then four channels (each gets every message; reported as deliveries per
 * second and per published message). Latency is publish→ack of one message per batch (the
 * first), using the engine's per-channel FIFO order to match deliveries to publishes.
 *
 * The producer keeps at most WINDOW messages unacked on channel 0 so the test measures the steady
 * state through the memory queue, not a backlog spilled to the overflow backend.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { encode } from 'cbor-x';
import { connect } from '../src/connect.ts';
import type { Delivery, OutgoingMessage } from '../src/core/message.ts';
import { Engine, type EngineInput } from '../src/engine/index.ts';
import { median, percentile, record, repeat, save } from './lib.ts';

const BATCH = 1000;
const WINDOW = 8000;
const MAX_IN_FLIGHT = 2500;
const TOTAL = Number(process.env.ENGINE_BENCH_MESSAGES ?? 2_000_000);
const RUNS = Number(process.env.ENGINE_BENCH_RUNS ?? 5);

/** A 100-byte CBOR body: a small record padded with a string to exactly 100 bytes. */
function body100(): Uint8Array {
  const base = { id: 123456, camera: 'cam-01', ts: 1_700_000_000_000, score: 0.5, label: '' };
  const size = encode(base).length;
  const body = encode({ ...base, label: 'x'.repeat(100 - size - 1) }) as Uint8Array;
  if (body.length !== 100) throw new Error(`body is ${body.length} bytes, want 100`);
  return body;
}

interface RunResult {
  perSecond: number;
  deliveredPerSecond: number;
  latenciesMs: Float64Array;
}

/**
 * `syncAck`: ack inside onMessage (the engine's fast path). Otherwise deliveries are acked in a
 * later turn of the event loop, in bulk, like handlers that await something before acking.
 */
async function run(channels: number, total: number, syncAck: boolean): Promise<RunResult> {
  const transport = await connect('memory://');
  const body = body100();
  const batch: OutgoingMessage[] = Array.from({ length: BATCH }, () => ({ body }));
  const batches = Math.ceil(total / BATCH);
  const publishedAt = new Float64Array(batches);
  const latencies = new Float64Array(batches);
  const received = new Array<number>(channels).fill(0);
  let delivered = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  let channelsDone = 0;
  let toAck: Delivery[] = [];
  let ackScheduled = false;
  const ackLater = () => {
    ackScheduled = false;
    const now = toAck;
    toAck = [];
    for (const d of now) d.ack();
  };
  for (let c = 0; c < channels; c++) {
    await transport.subscribe('bench', `c${c}`, { maxInFlight: MAX_IN_FLIGHT }, (d) => {
      if (syncAck) d.ack();
      else {
        toAck.push(d);
        if (!ackScheduled) {
          ackScheduled = true;
          setImmediate(ackLater);
        }
      }
      const n = received[c]!;
      if (c === 0 && n % BATCH === 0) latencies[n / BATCH] = performance.now() - publishedAt[n / BATCH]!;
      received[c] = n + 1;
      delivered++;
      if (n + 1 === batches * BATCH && ++channelsDone === channels) done();
    });
  }
  const start = performance.now();
  for (let b = 0; b < batches; b++) {
    while (b * BATCH - received[0]! > WINDOW) await yieldToLoop();
    publishedAt[b] = performance.now();
    await transport.publish('bench', batch);
  }
  await finished;
  const seconds = (performance.now() - start) / 1000;
  if (received.some((n) => n !== batches * BATCH)) throw new Error(`lost or extra deliveries: ${received.join(', ')}`);
  await transport.close();
  return { perSecond: (batches * BATCH) / seconds, deliveredPerSecond: delivered / seconds, latenciesMs: latencies };
}

async function measure(channels: number, syncAck = true): Promise<void> {
  const results: RunResult[] = [];
  const runs = await repeat(RUNS, async () => {
    const r = await run(channels, TOTAL, syncAck);
    results.push(r);
    return r.perSecond;
  });
  const measured = results.slice(-RUNS);
  const lat = measured.flatMap((r) => [...r.latenciesMs]);
  const delivered = median(measured.map((r) => r.deliveredPerSecond));
  record({
    name: `publish→consume→ack, ${channels} channel${channels > 1 ? 's' : ''}${syncAck ? '' : ', ack in a later tick'} (memory://)`,
    perSecond: median(runs),
    runs,
    p50Ms: percentile(lat, 50),
    p99Ms: percentile(lat, 99),
    ...(channels === 1 && syncAck ? { target: 1_000_000 } : {}),
    notes:
      channels === 1
        ? `${TOTAL.toLocaleString('en-US')} msgs/run, 100 B CBOR, batch ${BATCH}, maxInFlight ${MAX_IN_FLIGHT}`
        : `published msgs/s; ${Math.round(delivered).toLocaleString('en-US')} deliveries/s (${(delivered / median(runs)).toFixed(2)} per published message)`,
  });
}

/**
 * The same flow on the engine's own API (topic.publish, a ConsumerSink that FINs in deliver), no
 * Transport layer: the ratio to the memory:// case is what the transport costs.
 */
async function runEngineDirect(total: number): Promise<number> {
  const engine = new Engine();
  const topic = engine.topic('bench');
  const body = body100();
  const batch: EngineInput[] = Array.from({ length: BATCH }, () => ({ body }));
  const batches = Math.ceil(total / BATCH);
  let received = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  const consumer = topic.channel('c').subscribe({
    deliver(m) {
      consumer.finish(m.id);
      if (++received === batches * BATCH) done();
    },
  });
  consumer.setReady(MAX_IN_FLIGHT);
  const start = performance.now();
  for (let b = 0; b < batches; b++) {
    while (b * BATCH - received > WINDOW) await yieldToLoop();
    topic.publish(batch);
    await topic.sync();
  }
  await finished;
  const seconds = (performance.now() - start) / 1000;
  await engine.close();
  return (batches * BATCH) / seconds;
}

await measure(1);
const direct = await repeat(RUNS, () => runEngineDirect(TOTAL));
record({
  name: 'publish→consume→FIN, 1 channel, engine API without Transport',
  perSecond: median(direct),
  runs: direct,
  notes: 'the Transport layer (Delivery objects, EngineInput mapping) is the difference to the memory:// row',
});
await measure(4);
await measure(1, false);
save(
  'engine',
  'The embedded engine through the Transport interface (memory://), publish → consume → ack in one process.',
);
