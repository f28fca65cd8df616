/**
 * redis:// against raw ioredis doing the same work, side by side in one run: publish N 100-byte
 * messages as pipelined XADD batches of 100 (each batch's replies awaited), then consume them
 * through a consumer group with XREADGROUP COUNT 100 and one XACK per message.
 */
import { Redis } from 'ioredis';
import { connect } from '../src/connect.ts';
import type { OutgoingMessage } from '../src/core/message.ts';
import { median, record, save, sideBySide } from './lib.ts';

const URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const N = Number(process.env.REDIS_BENCH_MESSAGES ?? 50_000);
const BATCH = 100;
const RUNS = Number(process.env.REDIS_BENCH_RUNS ?? 3);
const body = Buffer.alloc(100, 7);
let seq = 0;

async function conveyor(): Promise<number[]> {
  const t = await connect(`${URL}?prefix=bench:&blockMs=100`);
  const topic = `conv_${process.pid}_${seq++}`;
  let got = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const sub = await t.subscribe(topic, 'c', { maxInFlight: BATCH }, (d) => {
    d.ack();
    if (++got === N) done();
  });
  sub.pause();
  const batch: OutgoingMessage[] = Array.from({ length: BATCH }, () => ({ body }));
  let start = performance.now();
  for (let i = 0; i < N; i += BATCH) await t.publish(topic, batch);
  const pub = N / ((performance.now() - start) / 1000);
  start = performance.now();
  sub.resume();
  await finished;
  const con = N / ((performance.now() - start) / 1000);
  await sub.close();
  await t.close();
  return [pub, con];
}

async function raw(): Promise<number[]> {
  const r = new Redis(URL);
  const reader = new Redis(URL);
  const key = `bench:raw_${process.pid}_${seq++}`;
  await r.xgroup('CREATE', key, 'c', '$', 'MKSTREAM');
  let start = performance.now();
  for (let i = 0; i < N; i += BATCH) {
    const p = r.pipeline();
    for (let j = 0; j < BATCH; j++) p.xadd(key, 'MAXLEN', '~', 1_000_000, '*', 'b', body, 't', String(Date.now()), 'a', '1');
    await p.exec();
  }
  const pub = N / ((performance.now() - start) / 1000);
  let got = 0;
  start = performance.now();
  while (got < N) {
    const reply = (await reader.xreadgroupBuffer('GROUP', 'c', 'me', 'COUNT', BATCH, 'BLOCK', 100, 'STREAMS', key, '>')) as Array<[Buffer, Array<[Buffer, Buffer[]]>]> | null;
    for (const [, entries] of reply ?? []) {
      for (const [id] of entries) {
        r.xack(key, 'c', id);
        got++;
      }
    }
  }
  await r.ping();
  const con = N / ((performance.now() - start) / 1000);
  await r.del(key);
  reader.disconnect();
  await r.quit();
  return [pub, con];
}

/** The other client considered, node-redis, doing the same raw work (auto-pipelined commands). */
async function nodeRedis(): Promise<number[]> {
  const { createClient } = await import('redis');
  const r: any = createClient({ url: URL });
  const reader: any = createClient({ url: URL });
  await r.connect();
  await reader.connect();
  const key = `bench:noderedis_${process.pid}_${seq++}`;
  await r.xGroupCreate(key, 'c', '$', { MKSTREAM: true });
  let start = performance.now();
  for (let i = 0; i < N; i += BATCH) {
    await Promise.all(Array.from({ length: BATCH }, () => r.xAdd(key, '*', { b: body, t: String(Date.now()), a: '1' }, { TRIM: { strategy: 'MAXLEN', strategyModifier: '~', threshold: 1_000_000 } })));
  }
  const pub = N / ((performance.now() - start) / 1000);
  let got = 0;
  start = performance.now();
  while (got < N) {
    const reply = await reader.xReadGroup('c', 'me', { key, id: '>' }, { COUNT: BATCH, BLOCK: 100 });
    for (const stream of reply ?? []) {
      for (const m of stream.messages) {
        r.xAck(key, 'c', m.id);
        got++;
      }
    }
  }
  await r.ping();
  const con = N / ((performance.now() - start) / 1000);
  await r.del(key);
  await reader.quit();
  await r.quit();
  return [pub, con];
}

await sideBySide({
  runs: RUNS,
  phases: ['publish (pipelined XADD batches of 100)', 'consume (XREADGROUP COUNT 100, XACK each)'],
  raw: { label: 'ioredis raw', run: raw },
  ours: { label: 'redis:// conveyor', run: conveyor },
  targetRatio: 0.9,
});
const nr: number[][] = [];
for (let i = 0; i < RUNS; i++) nr.push(await nodeRedis());
record({ name: 'node-redis raw: publish (XADD batches of 100, auto-pipelined)', perSecond: median(nr.map((x) => x[0]!)), runs: nr.map((x) => x[0]!), notes: 'the other client considered' });
record({ name: 'node-redis raw: consume (XREADGROUP COUNT 100, XACK each)', perSecond: median(nr.map((x) => x[1]!)), runs: nr.map((x) => x[1]!), notes: 'the other client considered' });
// The conveyor runs' streams.
const cleanup = new Redis(URL);
const keys = await cleanup.keys('bench:*');
if (keys.length) await cleanup.del(...keys);
await cleanup.quit();
save('redis', `Redis Streams at ${URL}: Conveyor's redis:// against raw ioredis, same batches and ack mode, ${N} messages of 100 B per run.`);
