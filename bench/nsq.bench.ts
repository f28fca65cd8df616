/**
 * The embedded broker over NSQ TCP, measured as nsq's own bench tools do (bench/bench_writer,
 * bench_reader): 200-byte messages, published in MPUB batches of 200 with each OK awaited,
 * consumed with RDY 2500 and one FIN per message. Cases: publish alone, consume a backlog, and
 * both at once, each with one producer + one consumer connection and then two + two.
 *
 * The broker runs in its own process (this file with --broker), so it gets a core of its own;
 * the clients here are lean raw-TCP ones (no nsqjs: it would be the bottleneck, see the nsqjs
 * case at the end for its figure). Targets are real nsqd 1.3.0 on a machine like this one.
 *
 * BENCH_MESSAGES (default 200000) per case and BENCH_RUNS (default 3) keep it short on a shared
 * machine; the integrator re-runs it quietly with larger values.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { median, record, repeat, save } from './lib.ts';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 200_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const BODY_SIZE = 200;
const BATCH = 200;
const RDY = 2500;

if (process.argv.includes('--broker')) {
  const { startBroker } = await import('../src/server/index.ts');
  // `--durable DIR`: every message fsynced to the disk queue before its OK (memQueueSize 0).
  const durableDir = process.argv[process.argv.indexOf('--durable') + 1];
  const durable = process.argv.includes('--durable') && durableDir !== undefined;
  const { diskBackend } = await import('../src/engine/disk/index.ts');
  const broker = await startBroker({
    tcp: '127.0.0.1:0',
    http: '127.0.0.1:0',
    ...(durable ? { memQueueSize: 0, backend: diskBackend({ dir: durableDir, durable: true }) } : {}),
  });
  process.stdout.write(`${JSON.stringify({ tcp: broker.tcpAddress, http: broker.httpAddress })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => void broker.close().then(() => process.exit(0)));
} else {
  await main();
}

async function main(): Promise<void> {
  const { child, tcp, http } = await spawnBroker();
  try {
    let seq = 0;
    const topic = () => `bench_${process.pid}_${seq++}`;

    for (const pairs of [1, 2]) {
      const pub = await repeat(RUNS, async () => {
        const t = topic();
        await createChannel(http, t, 'ch');
        const result = await publishAll(tcp, t, pairs);
        await deleteTopic(http, t); // so no run pays for an earlier run's backlog
        return result.perSecond;
      });
      record({
        name: `publish alone, ${pairs} producer${pairs > 1 ? 's' : ''}`,
        perSecond: median(pub),
        runs: pub,
        notes: `MPUB ×${BATCH} of ${BODY_SIZE} B, OK awaited; ${MESSAGES} msgs per run`,
      });
    }

    for (const pairs of [1, 2]) {
      const runs = await repeat(RUNS, async () => {
        const t = topic();
        await createChannel(http, t, 'ch');
        await publishAll(tcp, t, 1);
        const result = await consumeAll(tcp, t, pairs);
        await deleteTopic(http, t);
        return result.perSecond;
      });
      record({
        name: `consume a backlog, ${pairs} consumer${pairs > 1 ? 's' : ''}`,
        perSecond: median(runs),
        runs,
        notes: `RDY ${RDY}, FIN per message; ${MESSAGES} msgs backlog`,
      });
    }

    for (const pairs of [1, 2]) {
      const pubRuns: number[] = [];
      const subRuns: number[] = [];
      await repeat(RUNS, async () => {
        const t = topic();
        await createChannel(http, t, 'ch');
        const consuming = consumeAll(tcp, t, pairs);
        const published = await publishAll(tcp, t, pairs);
        const consumed = await consuming;
        await deleteTopic(http, t);
        pubRuns.push(published.perSecond);
        subRuns.push(consumed.perSecond);
        return published.perSecond;
      });
      // repeat()'s warm-up run pushed too: keep the measured ones.
      const p = pubRuns.slice(-RUNS);
      const s = subRuns.slice(-RUNS);
      record({
        name: `both at once, ${pairs}+${pairs}: publish`,
        perSecond: median(p),
        runs: p,
      });
      record({
        name: `both at once, ${pairs}+${pairs}: consume`,
        perSecond: median(s),
        runs: s,
      });
    }

    // The same two cases through nsqjs, for scale: what a typical Node client gets.
    const jsMessages = Math.max(BATCH, Math.floor(MESSAGES / 4 / BATCH) * BATCH);
    const jsPub: number[] = [];
    const jsSub = await repeat(RUNS, async () => {
      const t = topic();
      await createChannel(http, t, 'ch');
      jsPub.push(await nsqjsPublish(tcp, t, jsMessages));
      const rate = await nsqjsConsume(tcp, t, jsMessages);
      await deleteTopic(http, t);
      return rate;
    });
    const jp = jsPub.slice(-RUNS);
    record({
      name: 'nsqjs Writer: publish',
      perSecond: median(jp),
      runs: jp,
      notes: `MPUB ×${BATCH}, callback awaited; ${jsMessages} msgs per run`,
    });
    record({
      name: 'nsqjs Reader: consume a backlog',
      perSecond: median(jsSub),
      runs: jsSub,
      notes: `maxInFlight ${RDY}, finish() per message`,
    });
  } finally {
    child.stdin?.end();
    await new Promise((r) => child.once('exit', r));
  }
  await durableCases();
  save(
    'nsq',
    'Embedded broker over NSQ TCP (src/server), broker in its own process (memory only, 200k-message runs), raw-TCP clients of ours in another. 200-byte messages; MPUB batches of 200 awaiting each OK; RDY 2500 with a FIN per message. No targets here: the nsqd figures come from nsq bench tools, and the comparison with them is bench/results/nsq-tools.md.',
  );
}

/** The durable broker (--durable): publishing alone and consuming its backlog, 1 connection each. */
async function durableCases(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-nsq-durable-'));
  const { child, tcp, http } = await spawnBroker(['--durable', dir]);
  try {
    let seq = 0;
    const pub: number[] = [];
    const sub = await repeat(RUNS, async () => {
      const t = `durable_${process.pid}_${seq++}`;
      await createChannel(http, t, 'ch');
      pub.push((await publishAll(tcp, t, 1)).perSecond);
      const consumed = await consumeAll(tcp, t, 1);
      await deleteTopic(http, t);
      return consumed.perSecond;
    });
    const p = pub.slice(-RUNS);
    record({ name: 'durable (--durable, fsync before OK): publish alone, 1 producer', perSecond: median(p), runs: p, notes: `MPUB ×${BATCH} of ${BODY_SIZE} B` });
    record({ name: 'durable: consume the backlog from disk, 1 consumer', perSecond: median(sub), runs: sub, notes: `RDY ${RDY}, FIN per message` });
  } finally {
    child.stdin?.end();
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
  save(
    'nsq',
    'Embedded broker over NSQ TCP (src/server), broker in its own process (memory only, 200k-message runs), raw-TCP clients of ours in another. 200-byte messages; MPUB batches of 200 awaiting each OK; RDY 2500 with a FIN per message. No targets here: the nsqd figures come from nsq bench tools, and the comparison with them is bench/results/nsq-tools.md. The durable rows run the broker with its disk queue and fsync before every OK.',
  );
}

async function spawnBroker(extra: string[] = []): Promise<{ child: ChildProcess; tcp: string; http: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--broker', ...extra], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (chunk) => {
      text += chunk;
      const nl = text.indexOf('\n');
      if (nl >= 0) resolve(text.slice(0, nl));
    });
    child.once('exit', (code) => reject(new Error(`broker exited with ${code}`)));
  });
  const { tcp, http } = JSON.parse(line);
  return { child, tcp, http };
}

async function createChannel(http: string, topic: string, channel: string): Promise<void> {
  const res = await fetch(`http://${http}/channel/create?topic=${topic}&channel=${channel}`, { method: 'POST' });
  if (res.status === 404) {
    await fetch(`http://${http}/topic/create?topic=${topic}`, { method: 'POST' });
    await fetch(`http://${http}/channel/create?topic=${topic}&channel=${channel}`, { method: 'POST' });
  }
}

async function deleteTopic(http: string, topic: string): Promise<void> {
  await fetch(`http://${http}/topic/delete?topic=${topic}`, { method: 'POST' });
}

function open(address: string): Promise<Socket> {
  const i = address.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address.slice(0, i), port: Number(address.slice(i + 1)), noDelay: true });
    socket.once('connect', () => {
      socket.write('  V2');
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** One MPUB command of BATCH messages, built once and sent again and again. */
function mpubCommand(topic: string): Buffer {
  const head = Buffer.from(`MPUB ${topic}\n`);
  const bodyLength = 4 + BATCH * (4 + BODY_SIZE);
  const out = Buffer.alloc(head.length + 4 + bodyLength, 97);
  head.copy(out, 0);
  let at = head.length;
  out.writeInt32BE(bodyLength, at);
  out.writeInt32BE(BATCH, at + 4);
  at += 8;
  for (let i = 0; i < BATCH; i++) {
    out.writeInt32BE(BODY_SIZE, at);
    at += 4 + BODY_SIZE;
  }
  return out;
}

/** `producers` connections each publish MESSAGES / producers, one batch in flight per connection. */
async function publishAll(address: string, topic: string, producers: number): Promise<{ perSecond: number }> {
  const command = mpubCommand(topic);
  const batches = Math.ceil(MESSAGES / producers / BATCH);
  const sockets = await Promise.all(Array.from({ length: producers }, () => open(address)));
  const start = performance.now();
  await Promise.all(
    sockets.map(
      (socket) =>
        new Promise<void>((resolve, reject) => {
          let sent = 0;
          let pending: Buffer = Buffer.alloc(0);
          socket.on('data', (chunk: Buffer) => {
            pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
            while (pending.length >= 8) {
              const size = pending.readUInt32BE(0);
              if (pending.length < 4 + size) break;
              const type = pending.readUInt32BE(4);
              const data = pending.toString('latin1', 8, 4 + size);
              pending = pending.subarray(4 + size);
              if (type === 1) return reject(new Error(data));
              if (data === '_heartbeat_') {
                socket.write('NOP\n');
                continue;
              }
              if (sent < batches) {
                sent++;
                socket.write(command);
              } else resolve();
            }
          });
          sent++;
          socket.write(command);
        }),
    ),
  );
  const seconds = (performance.now() - start) / 1000;
  for (const s of sockets) s.destroy();
  return { perSecond: (batches * BATCH * producers) / seconds };
}

/** `consumers` connections on one channel together take MESSAGES, FIN each, RDY 2500 each. */
async function consumeAll(address: string, topic: string, consumers: number): Promise<{ perSecond: number }> {
  const sockets = await Promise.all(Array.from({ length: consumers }, () => open(address)));
  let received = 0;
  let start = 0;
  const target = Math.ceil(MESSAGES / consumers / BATCH) * BATCH * consumers;
  await new Promise<void>((resolve, reject) => {
    for (const socket of sockets) {
      let pending: Buffer = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        if (start === 0) start = performance.now();
        pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
        // One write of all the FINs this chunk calls for.
        const fins = Buffer.allocUnsafe(Math.ceil(pending.length / 34) * 21);
        let finLength = 0;
        let at = 0;
        while (pending.length - at >= 8) {
          const size = pending.readUInt32BE(at);
          if (pending.length - at < 4 + size) break;
          const type = pending.readUInt32BE(at + 4);
          if (type === 2) {
            fins.write('FIN ', finLength, 'latin1');
            pending.copy(fins, finLength + 4, at + 18, at + 34);
            fins[finLength + 20] = 10;
            finLength += 21;
            received++;
          } else if (type === 1) {
            reject(new Error(pending.toString('latin1', at + 8, at + 4 + size)));
          } else if (pending.toString('latin1', at + 8, at + 4 + size) === '_heartbeat_') {
            socket.write('NOP\n');
          }
          at += 4 + size;
        }
        pending = pending.subarray(at);
        if (finLength > 0) socket.write(fins.subarray(0, finLength));
        if (received >= target) resolve();
      });
      socket.write(`SUB ${topic} ch\nRDY ${RDY}\n`);
    }
  });
  const seconds = (performance.now() - start) / 1000;
  for (const s of sockets) s.destroy();
  return { perSecond: received / seconds };
}

async function nsqjsPublish(address: string, topic: string, count: number): Promise<number> {
  // @ts-expect-error nsqjs ships no types
  const { default: nsq } = await import('nsqjs');
  const i = address.lastIndexOf(':');
  const writer = new nsq.Writer(address.slice(0, i), Number(address.slice(i + 1)));
  await new Promise<void>((resolve, reject) => {
    writer.once('ready', resolve);
    writer.once('error', reject);
    writer.connect();
  });
  const batch = Array.from({ length: BATCH }, () => Buffer.alloc(BODY_SIZE, 97));
  const start = performance.now();
  for (let sent = 0; sent < count; sent += BATCH) {
    await new Promise<void>((resolve, reject) =>
      writer.publish(topic, batch, (err: unknown) => (err ? reject(err) : resolve())),
    );
  }
  const seconds = (performance.now() - start) / 1000;
  writer.close();
  return count / seconds;
}

async function nsqjsConsume(address: string, topic: string, count: number): Promise<number> {
  // @ts-expect-error nsqjs ships no types
  const { default: nsq } = await import('nsqjs');
  const reader = new nsq.Reader(topic, 'ch', { nsqdTCPAddresses: [address], maxInFlight: RDY });
  let received = 0;
  let start = 0;
  await new Promise<void>((resolve) => {
    reader.on('message', (msg: any) => {
      if (start === 0) start = performance.now();
      msg.finish();
      if (++received === count) resolve();
    });
    reader.connect();
  });
  const seconds = (performance.now() - start) / 1000;
  reader.close();
  return received / seconds;
}
