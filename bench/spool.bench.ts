/**
 * What TLS and the producer spool cost, each against the same run's plain figure.
 * - TLS: Conveyor's nsq:// publishing (MPUB ×200, each confirm awaited) and consuming a backlog
 *   (in flight 2500), plain vs `?tls=true`, against the embedded broker in this process (both
 *   ends encrypt on the same thread, so the ratio is an upper bound on the cost).
 * - Spool: `app.publishMany` ×200 confirmed by the broker vs spooled (broker down: each batch is
 *   fsynced to the spool), then the rate at which the spool drains once the broker is up.
 *
 * BENCH_MESSAGES (default 50000) and BENCH_RUNS (default 3) keep it short on a shared machine.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesMessage } from '../src/core/schema.ts';
import { parseTransportUrl } from '../src/core/url.ts';
import { app } from '../src/runtime/app.ts';
import { startBroker } from '../src/server/index.ts';
import { NsqTransport } from '../src/transports/nsq/index.ts';
import { median, record, save, sideBySide } from './lib.ts';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 50_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const BATCH = 200;
const BODY = new Uint8Array(200).fill(0x61);

const dir = mkdtempSync(join(tmpdir(), 'conveyor-bench-spool-'));
try {
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  await tlsCase(certFile, keyFile);
  await spoolCase();
  save('spool', `TLS (nsq:// ?tls=true vs plain) and the producer spool (spooled vs confirmed); ${MESSAGES} messages of ${BODY.length} B per run.`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

async function tlsCase(certFile: string, keyFile: string): Promise<void> {
  const broker = await startBroker({ tcp: '127.0.0.1:0', http: '127.0.0.1:0', tls: { cert: readFileSync(certFile), key: readFileSync(keyFile) } });
  let seq = 0;
  const run = (query: string) => async (): Promise<number[]> => {
    const topic = `bench_tls_${process.pid}_${seq++}`;
    broker.engine.topic(topic).channel('ch');
    const url = `nsq://${broker.tcpAddress}${query}`;
    const pub = new NsqTransport(parseTransportUrl(url));
    const batch = Array.from({ length: BATCH }, () => ({ body: BODY }));
    let start = performance.now();
    for (let sent = 0; sent < MESSAGES; sent += BATCH) await pub.publish(topic, batch);
    const published = MESSAGES / ((performance.now() - start) / 1000);
    await pub.close();
    const sub = new NsqTransport(parseTransportUrl(url));
    let n = 0;
    const consumed = await new Promise<number>((resolve) => {
      void sub.subscribe(topic, 'ch', { maxInFlight: 2500 }, (d) => {
        if (n === 0) start = performance.now();
        d.ack();
        if (++n === MESSAGES) resolve(MESSAGES / ((performance.now() - start) / 1000));
      });
    });
    await sub.close();
    return [published, consumed];
  };
  try {
    await sideBySide({
      runs: RUNS,
      phases: ['publish, MPUB ×200 awaited', 'consume a backlog, in flight 2500'],
      raw: { label: 'nsq:// plain', run: run('') },
      ours: { label: 'nsq:// ?tls=true', run: run(`?tls=true&tlsCa=${encodeURIComponent(certFile)}`) },
    });
  } finally {
    await broker.close();
  }
}

async function spoolCase(): Promise<void> {
  const confirmed: number[] = [];
  const spooled: number[] = [];
  const drained: number[] = [];
  for (let i = 0; i <= RUNS; i++) {
    const port = await freePort();
    const topic = `bench_spool_${process.pid}_${i}`;
    const Raw = bytesMessage(topic);
    const values = Array.from({ length: BATCH }, () => BODY);
    // Confirmed: broker up.
    let broker = await startBroker({ tcp: `127.0.0.1:${port}`, http: '127.0.0.1:0' });
    broker.engine.topic(topic).channel('ch');
    const spoolDir = join(dir, `spool-${i}`);
    const producer = app({ url: `nsq://127.0.0.1:${port}`, spool: { dir: spoolDir, maxBytes: 1 << 30 }, publishTimeoutMs: 2000, deadLetterLog: false });
    let start = performance.now();
    for (let sent = 0; sent < MESSAGES; sent += BATCH) await producer.publishMany(Raw, values);
    const c = MESSAGES / ((performance.now() - start) / 1000);
    // Spooled: broker down; the first batch waits for the refused connection, the rest go behind it.
    await broker.close();
    start = performance.now();
    for (let sent = 0; sent < MESSAGES; sent += BATCH) await producer.publishMany(Raw, values);
    const s = MESSAGES / ((performance.now() - start) / 1000);
    // Drain: broker back, the spool re-publishes.
    broker = await startBroker({ tcp: `127.0.0.1:${port}`, http: '127.0.0.1:0' });
    start = performance.now();
    while ((producer.spoolStats()?.depth ?? 0) > 0) await new Promise((r) => setTimeout(r, 5));
    const d = MESSAGES / ((performance.now() - start) / 1000);
    await producer.close();
    await broker.close();
    if (i > 0) {
      confirmed.push(c);
      spooled.push(s);
      drained.push(d);
    }
  }
  const c = median(confirmed);
  record({ name: 'app.publishMany ×200, confirmed by the broker', perSecond: c, runs: confirmed });
  record({ name: 'app.publishMany ×200, spooled (broker down, fsync per batch)', perSecond: median(spooled), runs: spooled, notes: `spooled/confirmed = ${(median(spooled) / c).toFixed(2)}` });
  record({ name: 'spool drain once the broker is back (re-publish ×500)', perSecond: median(drained), runs: drained, notes: `drain/confirmed = ${(median(drained) / c).toFixed(2)}` });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
