/**
 * The embedded broker's disk queue. (1) A backlog of 2,000,000 200-byte messages held with the
 * default memory queue (10,000 per topic and channel; the rest spills to disk): publish rate,
 * consume rate, and peak RSS — target under 300 MB. (2) Durable mode (memQueueSize 0, fsync
 * before confirm) next to the default mode on the same workload: batches of 200, each confirmed
 * before the next, like nsq's bench_writer.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { OutgoingMessage } from '../src/core/message.ts';
import { diskBackend } from '../src/engine/disk/index.ts';
import { Engine } from '../src/engine/index.ts';
import { MemoryTransport } from '../src/transports/memory/index.ts';
import { median, record, repeat, sampleRss, save } from './lib.ts';

const BACKLOG = Number(process.env.DISK_BENCH_BACKLOG ?? 2_000_000);
const DURABLE_N = Number(process.env.DISK_BENCH_DURABLE ?? 100_000);
const BATCH = 200;
const body = new Uint8Array(200).fill(7);
const batch: OutgoingMessage[] = Array.from({ length: BATCH }, () => ({ body }));

async function backlog(): Promise<{ publish: number; consume: number; rssMb: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-disk-bench-'));
  const engine = new Engine({ backend: diskBackend({ dir }) });
  const t = new MemoryTransport(engine, { onClose: () => engine.close() });
  let got = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const sub = await t.subscribe('backlog', 'c', { maxInFlight: 2500 }, (d) => {
    d.ack();
    if (++got === BACKLOG) done();
  });
  sub.pause();
  let start = performance.now();
  for (let i = 0; i < BACKLOG; i += BATCH) {
    await t.publish('backlog', batch);
    if (i % 100_000 === 0) await yieldToLoop(); // let the topic pump into the channel
  }
  while ((engine.getTopic('backlog')?.stats().depth ?? 0) > 0) await yieldToLoop();
  const publish = BACKLOG / ((performance.now() - start) / 1000);
  const rssHeld = sampleRss();
  start = performance.now();
  sub.resume();
  await finished;
  const consume = BACKLOG / ((performance.now() - start) / 1000);
  await t.close();
  rmSync(dir, { recursive: true, force: true });
  return { publish, consume, rssMb: Math.max(rssHeld, sampleRss()) };
}

async function confirmedPublish(durable: boolean): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-disk-bench-'));
  const engine = new Engine({ ...(durable ? { memQueueSize: 0 } : {}), backend: diskBackend({ dir, durable }) });
  const t = new MemoryTransport(engine, { onClose: () => engine.close() });
  await t.subscribe('d', 'c', { maxInFlight: 2500 }, (d) => d.ack());
  const start = performance.now();
  for (let i = 0; i < DURABLE_N; i += BATCH) await t.publish('d', batch);
  const rate = DURABLE_N / ((performance.now() - start) / 1000);
  await t.close();
  rmSync(dir, { recursive: true, force: true });
  return rate;
}

const b = await backlog();
record({
  name: `backlog of ${BACKLOG.toLocaleString('en-US')} × 200 B, default memory queue: publish`,
  perSecond: b.publish,
  runs: [b.publish],
  peakRssMb: Math.round(b.rssMb),
  notes: `peak RSS ${Math.round(b.rssMb)} MB with the backlog held (target < 300 MB)`,
});
record({ name: `backlog of ${BACKLOG.toLocaleString('en-US')}: consume it back (maxInFlight 2500, ack each)`, perSecond: b.consume, runs: [b.consume], peakRssMb: Math.round(b.rssMb) });
const plain = await repeat(3, () => confirmedPublish(false));
const durable = await repeat(3, () => confirmedPublish(true));
record({ name: 'publish, batches of 200 confirmed one by one, default mode (disk past the memory queue)', perSecond: median(plain), runs: plain });
record({
  name: 'publish, batches of 200 confirmed one by one, durable (fsync before confirm)',
  perSecond: median(durable),
  runs: durable,
  notes: `durable/default = ${(median(durable) / median(plain)).toFixed(2)}`,
});
save('disk', 'The embedded broker with its disk queue (in process, through the Transport interface).');
