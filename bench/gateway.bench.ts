/**
 * The HTTP ingestion gateway on loopback, driven by autocannon from another process: (1) single
 * JSON messages per POST, each answered after the broker's confirm; (2) NDJSON batches of 1000
 * messages per POST. The gateway runs in a child process with memory:// and a consumer acking
 * everything, so the figures include validation, encoding, publishing and confirms.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { median, record, save } from './lib.ts';

const SECONDS = Number(process.env.GATEWAY_BENCH_SECONDS ?? 5);
const RUNS = Number(process.env.GATEWAY_BENCH_RUNS ?? 3);
const NDJSON_BATCH = 1000;

if (process.argv.includes('--server')) {
  const { z } = await import('zod');
  const { defineMessage } = await import('../src/core/schema.ts');
  const { connect } = await import('../src/connect.ts');
  const { gateway } = await import('../src/gateway/index.ts');
  const Event = defineMessage({ name: 'event', topic: 'events', schema: z.object({ kind: z.string(), user: z.number(), at: z.number() }) });
  const transport = await connect('memory://');
  await transport.subscribe('events', 'sink', { maxInFlight: 2500 }, (d) => d.ack());
  const gw = await gateway({ transport, topics: { events: Event }, maxBodyBytes: 4 * 1024 * 1024 });
  process.stdout.write(`${gw.url}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => void gw.close().then(() => process.exit(0)));
} else {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--server'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve) => {
    let text = '';
    child.stdout!.on('data', (c) => {
      text += c;
      if (text.includes('\n')) resolve(text.trim());
    });
  });
  const one = JSON.stringify({ kind: 'click', user: 42, at: 1_700_000_000_000 });
  const many = `${Array.from({ length: NDJSON_BATCH }, () => one).join('\n')}\n`;
  const run = (body: string, contentType: string, connections: number) =>
    autocannon({
      url: `${url}/v1/topics/events`,
      method: 'POST',
      headers: { 'content-type': contentType },
      body,
      connections,
      duration: SECONDS,
    });
  const single: number[] = [];
  const batched: number[] = [];
  const p50: number[] = [];
  const p99: number[] = [];
  await run(one, 'application/json', 50); // warm-up
  for (let i = 0; i < RUNS; i++) {
    const r = await run(one, 'application/json', 50);
    if (r.non2xx > 0) throw new Error(`${r.non2xx} non-2xx answers`);
    single.push(r.requests.average);
    p50.push(r.latency.p50);
    p99.push(r.latency.p99);
    const b = await run(many, 'application/x-ndjson', 8);
    if (b.non2xx > 0) throw new Error(`${b.non2xx} non-2xx answers`);
    batched.push(b.requests.average * NDJSON_BATCH);
  }
  record({ name: 'single-message JSON POSTs, answered after confirm (50 connections)', perSecond: median(single), runs: single, target: 15_000, p50Ms: median(p50), p99Ms: median(p99), notes: 'requests/s' });
  record({ name: `NDJSON POSTs of ${NDJSON_BATCH} messages (8 connections)`, perSecond: median(batched), runs: batched, target: 250_000, notes: 'messages/s' });
  child.stdin!.end();
  await new Promise((r) => child.once('exit', r));
  save('gateway', 'The HTTP gateway (node:http) in its own process over memory://, autocannon in another, on loopback.');
}
