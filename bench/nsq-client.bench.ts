/**
 * Conveyor's nsq:// client against nsqjs, both talking to the embedded broker (in its own
 * process, so that it has a core of its own), side by side in one run. Same work for both:
 * 200-byte bodies without headers, published in batches of 200 with each confirm awaited
 * (MPUB), consumed from a backlog with max in flight 2500 and one FIN per message.
 * The figure that matters is the ratio conveyor / nsqjs (target ≥ 0.9).
 *
 * BENCH_MESSAGES (default 50000) and BENCH_RUNS (default 3) keep it short on a shared machine.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { median, record, repeat, save } from './lib.ts';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 50_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const BODY = new Uint8Array(200).fill(0x61);
const BATCH = 200;
const IN_FLIGHT = 2500;

if (process.argv.includes('--broker')) {
  const { startBroker } = await import('../src/server/index.ts');
  const broker = await startBroker({ tcp: '127.0.0.1:0', http: '127.0.0.1:0' });
  process.stdout.write(`${JSON.stringify({ tcp: broker.tcpAddress, http: broker.httpAddress })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => void broker.close().then(() => process.exit(0)));
} else {
  await main();
}

interface Side {
  publish(topic: string): Promise<number>;
  consume(topic: string): Promise<number>;
}

async function main(): Promise<void> {
  const { child, tcp, http } = await spawnBroker();
  const { parseTransportUrl } = await import('../src/core/url.ts');
  const { NsqTransport } = await import('../src/transports/nsq/index.ts');
  const nsq = createRequire(import.meta.url)('nsqjs');
  const [host, port] = tcp.split(':') as [string, string];
  let seq = 0;
  const topic = () => `bench_${process.pid}_${seq++}`;
  const bodies = Array.from({ length: BATCH }, () => BODY);

  const conveyor: Side = {
    async publish(t) {
      const tr = new NsqTransport(parseTransportUrl(`nsq://${tcp}`));
      const batch = bodies.map((body) => ({ body }));
      const start = performance.now();
      for (let sent = 0; sent < MESSAGES; sent += BATCH) await tr.publish(t, batch);
      const rate = MESSAGES / ((performance.now() - start) / 1000);
      await tr.close();
      return rate;
    },
    async consume(t) {
      const tr = new NsqTransport(parseTransportUrl(`nsq://${tcp}`));
      let n = 0;
      let start = 0;
      const rate = await new Promise<number>((resolve) => {
        void tr.subscribe(t, 'ch', { maxInFlight: IN_FLIGHT }, (d) => {
          if (n === 0) start = performance.now();
          d.ack();
          if (++n === MESSAGES) resolve(MESSAGES / ((performance.now() - start) / 1000));
        });
      });
      await tr.close();
      return rate;
    },
  };

  const nsqjs: Side = {
    async publish(t) {
      const w = new nsq.Writer(host, Number(port));
      await new Promise((r) => {
        w.on('ready', r);
        w.connect();
      });
      const batch = bodies.map((b) => Buffer.from(b));
      const start = performance.now();
      for (let sent = 0; sent < MESSAGES; sent += BATCH) {
        await new Promise<void>((resolve, reject) => w.publish(t, batch, (err: unknown) => (err ? reject(err) : resolve())));
      }
      const rate = MESSAGES / ((performance.now() - start) / 1000);
      w.close();
      return rate;
    },
    async consume(t) {
      const r = new nsq.Reader(t, 'ch', { nsqdTCPAddresses: [tcp], maxInFlight: IN_FLIGHT });
      let n = 0;
      let start = 0;
      const rate = await new Promise<number>((resolve) => {
        r.on('message', (msg: { finish(): void }) => {
          if (n === 0) start = performance.now();
          msg.finish();
          if (++n === MESSAGES) resolve(MESSAGES / ((performance.now() - start) / 1000));
        });
        r.connect();
      });
      r.close();
      return rate;
    },
  };

  try {
    const sides = { conveyor, nsqjs } as const;
    const pub: Record<string, number[]> = {};
    const sub: Record<string, number[]> = {};
    let warm = false;
    await repeat(RUNS + 1, async () => {
      // Alternate the sides within a run so that machine noise hits both alike; the first
      // round warms both up and is not counted.
      for (const [name, side] of Object.entries(sides)) {
        const t = topic();
        await createChannel(http, t, 'ch');
        const p = await side.publish(t);
        const c = await side.consume(t);
        if (warm) {
          (pub[name] ??= []).push(p);
          (sub[name] ??= []).push(c);
        }
        await fetch(`http://${http}/topic/delete?topic=${t}`, { method: 'POST' });
      }
      warm = true;
      return 0;
    }, 0);
    for (const [label, runs] of [
      ['publish, MPUB ×200 awaited', pub],
      ['consume a backlog, in flight 2500, FIN each', sub],
    ] as const) {
      const c = median(runs.conveyor!);
      const j = median(runs.nsqjs!);
      record({ name: `${label}: conveyor nsq://`, perSecond: c, runs: runs.conveyor!, notes: `ratio to nsqjs ${(c / j).toFixed(2)}` });
      record({ name: `${label}: nsqjs`, perSecond: j, runs: runs.nsqjs! });
    }
    save('nsq-client', `Conveyor's nsq:// client vs nsqjs 0.13 against the embedded broker; ${MESSAGES} messages of ${BODY.length} B per run.`);
  } finally {
    child.stdin!.end();
  }
}

async function spawnBroker(): Promise<{ child: ChildProcess; tcp: string; http: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--broker'], {
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
  const { tcp, http } = JSON.parse(line) as { tcp: string; http: string };
  return { child, tcp, http };
}

async function createChannel(http: string, topic: string, channel: string): Promise<void> {
  await fetch(`http://${http}/topic/create?topic=${topic}`, { method: 'POST' });
  await fetch(`http://${http}/channel/create?topic=${topic}&channel=${channel}`, { method: 'POST' });
}
