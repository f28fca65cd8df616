import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { bytesMessage } from '../../src/core/schema.ts';
import { ConveyorError } from '../../src/core/errors.ts';
import { app } from '../../src/runtime/app.ts';
import { diskBackend, restoreTopology } from '../../src/engine/disk/index.ts';
import { type Broker, startBroker } from '../../src/server/index.ts';
import { spawnChild } from '../helpers/child.ts';
import { uniqueName, waitFor } from '../helpers/index.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Cleanups run last-registered first (node:test runs t.after hooks in registration order), so a
 * temp dir is removed only after the apps and brokers writing into it are closed.
 */
function cleanups(t: TestContext): { later: (fn: () => unknown) => void; dir: () => string } {
  const fns: Array<() => unknown> = [];
  t.after(async () => {
    for (const fn of fns.reverse()) await fn();
  });
  return {
    later: (fn) => void fns.push(fn),
    dir: () => {
      const dir = mkdtempSync(join(tmpdir(), 'spool-'));
      fns.push(() => rmSync(dir, { recursive: true, force: true }));
      return dir;
    },
  };
}

/** A port free right now, for a broker that must come back on the same address. */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Forwards to `port`; while stalled, bytes both ways are held (a hung broker), not dropped. */
async function stallProxy(port: number) {
  let stalled = false;
  const held: Array<[Socket, Buffer]> = [];
  const sockets = new Set<Socket>();
  const server = createServer((c) => {
    const up = netConnect({ host: '127.0.0.1', port });
    sockets.add(c).add(up);
    const forward = (to: Socket) => (chunk: Buffer) => (stalled ? held.push([to, chunk]) : to.write(chunk));
    c.on('data', forward(up));
    up.on('data', forward(c));
    const close = () => {
      c.destroy();
      up.destroy();
    };
    c.on('error', close).on('close', close);
    up.on('error', close).on('close', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as { port: number }).port,
    stall(on: boolean) {
      stalled = on;
      if (!on) for (const [to, chunk] of held.splice(0)) to.write(chunk);
    },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A durable broker on a fixed port over `dir`, so what it confirmed survives its restart. */
async function durableBroker(port: number, dir: string): Promise<Broker> {
  const broker = await startBroker({
    tcp: `127.0.0.1:${port}`,
    http: '127.0.0.1:0',
    backend: diskBackend({ dir, durable: true }),
    memQueueSize: 0,
  });
  restoreTopology(broker.engine, dir);
  return broker;
}

/** Reads every message of `topic` on `channel` until `expected` distinct ids came; returns per-id counts in arrival order. */
async function drain(later: (fn: () => unknown) => void, url: string, topic: string, channel: string, expected: number, timeoutMs = 60_000) {
  const counts = new Map<string, number>();
  const order: string[] = [];
  const reader = app({ url, deadLetterLog: false });
  later(() => reader.close({ force: true }));
  await reader.consume(bytesMessage(topic), { channel, maxInFlight: 200 }, (_body, ctx) => {
    const id = ctx.id;
    if (!counts.has(id)) order.push(id);
    counts.set(id, (counts.get(id) ?? 0) + 1);
  });
  await waitFor(() => counts.size >= expected, `${expected} distinct messages on ${topic}`, timeoutMs);
  await sleep(200);
  await reader.close();
  return { counts, order };
}

function publishDeadline(started: number): number {
  return Date.now() - started;
}

describe('producer spool', () => {
  test('a broker that is down: publishes are spooled, then re-published in order once it is up', async (t) => {
    const { later, dir: tempDir } = cleanups(t);
    const port = await freePort();
    const dir = tempDir();
    const topic = uniqueName('spool');
    const Raw = bytesMessage(topic);
    const producer = app({ url: `nsq://127.0.0.1:${port}`, spool: { dir: join(dir, 'spool'), retryMs: 50 }, publishTimeoutMs: 1000, deadLetterLog: false });
    later(() => producer.close({ force: true }));
    const spooledEvents: string[] = [];
    producer.on('spooled', (e) => spooledEvents.push(e.error.message));

    const receipts = [];
    for (let i = 0; i < 50; i++) receipts.push(await producer.publishReceipt(Raw, Buffer.from(`m${i}`)));
    assert.deepEqual(new Set(receipts.map((r) => r.status)), new Set(['spooled']));
    assert.ok(spooledEvents.length > 0, 'the app said why it spooled');
    assert.equal(producer.spoolStats()?.depth, 50);

    const broker = await durableBroker(port, join(dir, 'broker'));
    later(() => broker.close());
    broker.engine.topic(topic).channel('c');
    await waitFor(() => producer.spoolStats()?.depth === 0, 'the spool drained', 20_000);
    // Publishes after the drain go straight to the broker again.
    assert.equal((await producer.publishReceipt(Raw, Buffer.from('after'))).status, 'confirmed');

    const { counts, order } = await drain(later, `nsq://127.0.0.1:${port}`, topic, 'c', 51);
    assert.deepEqual(order, [...receipts.map((r) => r.id), order[50]], 'the spool kept the publish order');
    assert.equal([...counts.values()].filter((n) => n > 1).length, 0, 'nothing twice');
  });

  test('a stalled broker: publishes past publishTimeoutMs are spooled; once it moves, all arrive, late confirms counted as duplicates', async (t) => {
    const { later, dir: tempDir } = cleanups(t);
    const dir = tempDir();
    const port = await freePort();
    const broker = await durableBroker(port, join(dir, 'broker'));
    later(() => broker.close());
    const proxy = await stallProxy(port);
    later(() => proxy.close());
    const topic = uniqueName('stall');
    const Raw = bytesMessage(topic);
    broker.engine.topic(topic).channel('c');
    const producer = app({ url: `nsq://127.0.0.1:${proxy.port}`, spool: { dir: join(dir, 'spool'), retryMs: 50 }, publishTimeoutMs: 300, deadLetterLog: false });
    later(() => producer.close({ force: true }));
    assert.equal((await producer.publishReceipt(Raw, Buffer.from('before'))).status, 'confirmed');
    proxy.stall(true);
    const started = Date.now();
    const stalled = await Promise.all(Array.from({ length: 20 }, (_, i) => producer.publishReceipt(Raw, Buffer.from(`s${i}`))));
    assert.deepEqual(new Set(stalled.map((r) => r.status)), new Set(['spooled']));
    assert.ok(Date.now() - started < 3000, 'spooled within about one deadline, not the heartbeat timeout');
    await sleep(500);
    proxy.stall(false);
    await waitFor(() => producer.spoolStats()?.depth === 0, 'the spool drained', 20_000);
    const { counts } = await drain(later, `nsq://127.0.0.1:${port}`, topic, 'c', 21);
    const duplicates = [...counts.values()].reduce((sum, c) => sum + c - 1, 0);
    console.log(`stalled broker: 20 spooled after ${publishDeadline(started)} ms, 21 distinct delivered, ${duplicates} duplicates (late confirms of the timed-out sends)`);
    for (const r of stalled) assert.ok(counts.has(r.id), `${r.id} arrived`);
  });

  test('a full spool rejects with ERR_BACKPRESSURE and spools none of that batch', async (t) => {
    const { later, dir: tempDir } = cleanups(t);
    const port = await freePort();
    const dir = tempDir();
    const Raw = bytesMessage(uniqueName('full'));
    const producer = app({ url: `nsq://127.0.0.1:${port}`, spool: { dir, maxBytes: 4096, retryMs: 50 }, publishTimeoutMs: 500, deadLetterLog: false });
    later(() => producer.close({ force: true }));
    assert.equal((await producer.publishReceipt(Raw, Buffer.alloc(1000))).status, 'spooled');
    assert.equal((await producer.publishReceipt(Raw, Buffer.alloc(1000))).status, 'spooled');
    const before = producer.spoolStats()!;
    await assert.rejects(producer.publishMany(Raw, [Buffer.alloc(1000), Buffer.alloc(1000), Buffer.alloc(1000)]), (err: unknown) => {
      assert.ok(err instanceof ConveyorError);
      assert.equal(err.code, 'ERR_BACKPRESSURE');
      assert.match(err.message, /spool .* is full/);
      return true;
    });
    assert.deepEqual(producer.spoolStats(), before, 'the refused batch left the spool as it was');
  });

  test('a bad publish is the caller’s error, not spooled', async (t) => {
    const { later, dir: tempDir } = cleanups(t);
    const port = await freePort();
    const dir = tempDir();
    const producer = app({ url: `nsq://127.0.0.1:${port}`, spool: { dir }, publishTimeoutMs: 500, deadLetterLog: false });
    later(() => producer.close({ force: true }));
    await assert.rejects(producer.publish(bytesMessage('bad name!'), Buffer.from('x')), (err: unknown) => {
      assert.ok(err instanceof ConveyorError);
      assert.equal(err.retryable, false);
      return true;
    });
    assert.equal(producer.spoolStats()?.depth, 0);
  });

  test('a second app on the same spool directory is refused', async (t) => {
    const { later, dir: tempDir } = cleanups(t);
    const dir = tempDir();
    const first = app({ url: 'memory://', spool: { dir } });
    later(() => first.close());
    assert.throws(() => app({ url: 'memory://', spool: { dir } }), /in use/);
  });

  test('the broker stopped for 30 s under load: every accepted message arrives; duplicates counted', { timeout: 150_000 }, async (t) => {
    const { later, dir: tempDir } = cleanups(t);
    const port = await freePort();
    const dir = tempDir();
    const topic = uniqueName('outage');
    const Raw = bytesMessage(topic);
    let broker = await durableBroker(port, join(dir, 'broker'));
    broker.engine.topic(topic).channel('c');
    later(() => broker.close());
    const producer = app({ url: `nsq://127.0.0.1:${port}`, spool: { dir: join(dir, 'spool'), retryMs: 100 }, publishTimeoutMs: 1000, deadLetterLog: false });
    later(() => producer.close({ force: true }));

    const accepted = new Map<string, 'confirmed' | 'spooled'>();
    const refused: unknown[] = [];
    let load = true;
    let n = 0;
    // 20 publishes every 10 ms (about 1,500/s here) from start to end, each awaited by its own caller.
    const producing = (async () => {
      const waiting = new Set<Promise<void>>();
      while (load) {
        for (let i = 0; i < 20; i++) {
          const p = producer.publishReceipt(Raw, Buffer.from(`m${n++}`)).then(
            (r) => void accepted.set(r.id, r.status),
            (err) => void refused.push(err),
          );
          waiting.add(p);
          p.finally(() => waiting.delete(p));
        }
        await sleep(10);
      }
      await Promise.all(waiting);
    })();

    await sleep(3000);
    const beforeStop = accepted.size;
    await broker.close();
    const stoppedAt = Date.now();
    await sleep(30_000);
    const duringOutage = [...accepted.values()].filter((s) => s === 'spooled').length;
    broker = await durableBroker(port, join(dir, 'broker'));
    const backAt = Date.now();
    await sleep(3000);
    load = false;
    await producing;
    await waitFor(() => producer.spoolStats()?.depth === 0, 'the spool drained', 60_000);
    const drainedMs = Date.now() - backAt;

    assert.deepEqual(refused, [], 'no publish was refused');
    const { counts } = await drain(later, `nsq://127.0.0.1:${port}`, topic, 'c', accepted.size, 90_000);
    const missing = [...accepted.keys()].filter((id) => !counts.has(id));
    const duplicates = [...counts.values()].reduce((sum, c) => sum + c - 1, 0);
    const spooled = [...accepted.values()].filter((s) => s === 'spooled').length;
    console.log(
      `outage ${Math.round((backAt - stoppedAt) / 1000)} s: ${accepted.size} accepted (${beforeStop} before the stop, ${spooled} spooled, ${duringOutage} of them during the outage), ` +
        `${counts.size} distinct delivered, ${missing.length} missing, ${duplicates} duplicates, spool drained ${drainedMs} ms after the broker was back`,
    );
    assert.deepEqual(missing, [], 'every accepted message arrived');
    assert.ok(duringOutage > 1000, `load went on during the outage (${duringOutage} spooled)`);
  });

  test('a producer kill -9ed while draining its spool: the next start re-publishes the rest; duplicates counted', { timeout: 120_000 }, async (t) => {
    const { later, dir: tempDir } = cleanups(t);
    const port = await freePort();
    const dir = tempDir();
    const spoolDir = join(dir, 'spool');
    const topic = uniqueName('killdrain');
    const url = `nsq://127.0.0.1:${port}`;
    const fixture = join(ROOT, 'test/runtime/fixtures/spool-producer.ts');
    const node = (count: number) => spawnChild(process.execPath, ['--import', 'tsx', fixture, url, spoolDir, topic, String(count)], { cwd: ROOT });
    const COUNT = 20_000;
    const first = node(COUNT);
    later(() => first.child.kill('SIGKILL'));
    await waitFor(() => first.out().includes('spooled') || first.exited(), 'the first producer spooled', 60_000);
    assert.match(first.out(), new RegExp(`spooled ${COUNT}`), first.err());
    first.child.kill('SIGKILL');
    await first.done;

    const broker = await durableBroker(port, join(dir, 'broker'));
    later(() => broker.close());
    broker.engine.topic(topic).channel('c');
    const second = node(0);
    later(() => second.child.kill('SIGKILL'));
    await waitFor(() => /replayed \d+/.test(second.out()) || second.exited(), 'the second producer started draining', 30_000);
    second.child.kill('SIGKILL');
    await second.done;
    const partly = Number(/replayed (\d+)\n(?![\s\S]*replayed)/.exec(second.out())?.[1] ?? 0);
    assert.ok(partly < COUNT, `killed mid-drain (${partly} of ${COUNT} replayed)`);

    const third = node(0);
    later(() => third.child.kill('SIGKILL'));
    assert.equal(await third.done, 0, third.err());
    const { counts } = await drain(later, url, topic, 'c', COUNT, 90_000);
    const duplicates = [...counts.values()].reduce((s, c) => s + c - 1, 0);
    console.log(`kill -9 mid-drain after ${partly} of ${COUNT} replayed: ${counts.size} distinct delivered, ${duplicates} duplicates`);
    assert.equal(counts.size, COUNT);
  });

  test('a producer kill -9ed with a non-empty spool re-publishes it at the next start', { timeout: 90_000 }, async (t) => {
    const { later, dir: tempDir } = cleanups(t);
    const port = await freePort();
    const dir = tempDir();
    const spoolDir = join(dir, 'spool');
    const topic = uniqueName('kill');
    const url = `nsq://127.0.0.1:${port}`;
    const fixture = join(ROOT, 'test/runtime/fixtures/spool-producer.ts');
    const first = spawnChild(process.execPath, ['--import', 'tsx', fixture, url, spoolDir, topic, '200'], { cwd: ROOT });
    later(() => first.child.kill('SIGKILL'));
    await waitFor(() => first.out().includes('spooled') || first.exited(), 'the first producer spooled', 30_000);
    assert.match(first.out(), /spooled 200/, first.err());
    first.child.kill('SIGKILL');
    assert.equal(await first.done, 'SIGKILL');
    assert.ok(existsSync(join(spoolDir, 'spool.lock')), 'the killed producer left its lock behind');

    const broker = await durableBroker(port, join(dir, 'broker'));
    later(() => broker.close());
    broker.engine.topic(topic).channel('c');
    const second = spawnChild(process.execPath, ['--import', 'tsx', fixture, url, spoolDir, topic, '0'], { cwd: ROOT });
    later(() => second.child.kill('SIGKILL'));
    assert.equal(await second.done, 0, second.err());
    assert.match(second.out(), /drained/);

    const { counts, order } = await drain(later, url, topic, 'c', 200);
    assert.deepEqual(order, Array.from({ length: 200 }, (_, i) => `kill${String(i).padStart(12, '0')}`));
    console.log(`kill -9 with 200 spooled: ${counts.size} re-published at the next start, ${[...counts.values()].reduce((s, c) => s + c - 1, 0)} duplicates`);
  });
});
