import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { connect } from '../../src/connect.ts';
import { type CorruptionReport, DiskQueue, diskBackend, restoreTopology } from '../../src/engine/disk/index.ts';
import { Engine } from '../../src/engine/index.ts';
import type { EngineMessage } from '../../src/engine/types.ts';
import { MemoryTransport } from '../../src/transports/memory/index.ts';
import { tempDir, waitFor } from '../helpers/index.ts';

const msg = (n: number, extra: Partial<EngineMessage> = {}): EngineMessage => ({
  id: n.toString(16).padStart(16, '0'),
  body: new TextEncoder().encode(`m${n}`),
  headers: n % 2 ? { h: `v${n}` } : undefined,
  key: n % 3 ? `k${n}` : undefined,
  timestamp: 1_700_000_000_000 + n,
  attempts: 1,
  ...extra,
});
const text = (m: EngineMessage | undefined) => (m ? new TextDecoder().decode(m.body) : undefined);

function open(dir: string, extra: { maxBytesPerFile?: number; onCorrupt?: (r: CorruptionReport) => void } = {}) {
  return new DiskQueue({ dir, name: 't', maxBytesPerFile: extra.maxBytesPerFile ?? 1 << 20, maxMsgSize: 1 << 20, onCorrupt: extra.onCorrupt });
}

describe('DiskQueue', () => {
  test('messages come back in order with every field; segments rotate and are deleted once released', async (t) => {
    const dir = tempDir(t);
    const q = open(dir, { maxBytesPerFile: 2000 });
    for (let n = 0; n < 300; n++) q.put(msg(n));
    assert.equal(q.depth, 300);
    assert.ok(readdirSync(dir).filter((f) => f.endsWith('.dat')).length > 5, 'rotated');
    for (let n = 0; n < 300; n++) {
      const m = q.read()!;
      const { id, body, headers, key, timestamp, attempts, deferUntil } = m;
      assert.deepEqual({ id, body: Buffer.from(body), headers, key, timestamp, attempts, deferUntil }, { ...msg(n), body: Buffer.from(msg(n).body), deferUntil: 0 });
      q.release(m);
    }
    assert.equal(q.read(), undefined);
    assert.equal(q.depth, 0);
    // Unlinked off the event loop.
    await waitFor(() => readdirSync(dir).filter((f) => f.endsWith('.dat')).length <= 1, 'consumed segments deleted');
    await q.close();
  });

  test('records written in place: bodies larger than the write buffer, records across flushes, short and long ids', async (t) => {
    const dir = tempDir(t);
    const q = open(dir, { maxBytesPerFile: 1 << 19 });
    const big = new Uint8Array(200_000).map((_, i) => i % 251);
    const sizes = [10, 200_000, 70_000, 0, 65_000, 300, 90_000, 1];
    const put: EngineMessage[] = [];
    for (let n = 0; n < 2000; n++) {
      const size = sizes[n % sizes.length]!;
      const id = n === 7 ? 'short' : n === 11 ? 'x'.repeat(20) : n.toString(16).padStart(16, '0');
      const m = msg(n, { id, body: big.subarray(n % 7, (n % 7) + Math.min(size, 200_000 - 7)) });
      put.push(m);
      q.put(m);
    }
    await q.close();
    const again = open(dir, { maxBytesPerFile: 1 << 19 });
    assert.equal(again.depth, 2000);
    for (const [n, m] of put.entries()) {
      const r = again.read()!;
      // The id is stored in 16 bytes: a short one padded (and trimmed on read), a long one cut.
      assert.equal(r.id, n === 11 ? 'x'.repeat(16) : m.id);
      assert.ok(Buffer.from(r.body).equals(Buffer.from(m.body)), `body of ${n}`);
      assert.deepEqual([r.headers, r.key, r.timestamp], [m.headers, m.key, m.timestamp]);
      again.release(r);
    }
    assert.equal(again.read(), undefined);
    await again.close();
  });

  test('durable: false rotates without fsync on the event loop: segments fsynced and closed in the background, all read back', async (t) => {
    const dir = tempDir(t);
    // The process' open files inside `dir` (a count of all fds would see other work open or close its own).
    const real = realpathSync(dir);
    const open = () =>
      readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`).startsWith(`${real}/`);
        } catch {
          return false; // closed between the listing and the read
        }
      });
    const q = new DiskQueue({ dir, name: 't', maxBytesPerFile: 4000, maxMsgSize: 1 << 20, durable: false });
    for (let n = 0; n < 2000; n++) q.put(msg(n));
    assert.ok(readdirSync(dir).filter((f) => f.endsWith('.dat')).length > 20, 'rotated');
    assert.ok(open().length >= 1, 'the write segment is open (the check sees the queue files)');
    q.checkpoint();
    await q.close();
    assert.deepEqual(open(), [], 'every rotated segment closed');
    const again = new DiskQueue({ dir, name: 't', maxBytesPerFile: 4000, maxMsgSize: 1 << 20, durable: false });
    assert.equal(again.depth, 2000);
    assert.deepEqual(
      Array.from({ length: 2000 }, () => text(again.read())),
      Array.from({ length: 2000 }, (_, n) => `m${n}`),
    );
    await again.close();
  });

  test('a restart keeps unread messages, and read-but-unreleased ones come back first', async (t) => {
    const dir = tempDir(t);
    const q = open(dir, { maxBytesPerFile: 1500 });
    for (let n = 0; n < 100; n++) q.put(msg(n));
    const read = Array.from({ length: 30 }, () => q.read()!);
    for (const m of read.slice(0, 20)) q.release(m); // 20..29 stay in flight
    await q.close();
    const again = open(dir, { maxBytesPerFile: 1500 });
    assert.equal(again.depth, 80);
    const order = Array.from({ length: 80 }, () => text(again.read()));
    assert.deepEqual(order, Array.from({ length: 80 }, (_, i) => `m${i + 20}`));
    await again.close();
  });

  test('a crash after writes but before a metadata save: the write segment is scanned for whole records', async (t) => {
    const dir = tempDir(t);
    const metaPath = join(dir, 't.diskqueue.meta.json');
    const q = open(dir);
    q.put(msg(1));
    await q.sync();
    const stale = readFileSync(metaPath);
    for (let n = 2; n <= 5; n++) q.put(msg(n));
    await q.sync();
    await q.close();
    writeFileSync(metaPath, stale); // as if the process died before saving metadata again
    const reopened = open(dir);
    assert.equal(reopened.depth, 5);
    assert.deepEqual(Array.from({ length: 5 }, () => text(reopened.read())), ['m1', 'm2', 'm3', 'm4', 'm5']);
    await reopened.close();
  });

  test('a torn record at the end of the write segment is cut off, so later writes read back', async (t) => {
    const dir = tempDir(t);
    const q = open(dir);
    for (let n = 0; n < 3; n++) q.put(msg(n));
    await q.close();
    const seg = join(dir, readdirSync(dir).find((f) => f.endsWith('.dat'))!);
    const whole = readFileSync(seg);
    // As a crash mid-write leaves it: the first bytes of a fourth record, then nothing.
    writeFileSync(seg, Buffer.concat([whole, whole.subarray(0, 20)]));
    const reports: CorruptionReport[] = [];
    const again = open(dir, { onCorrupt: (r) => reports.push(r) });
    assert.equal(reports.length, 1);
    assert.match(reports[0]!.reason, /torn write: 20 bytes/);
    for (let n = 3; n < 6; n++) again.put(msg(n));
    const got: string[] = [];
    for (let m = again.read(); m; m = again.read()) got.push(text(m)!);
    assert.deepEqual(got, ['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
    await again.close();
  });

  test('a corrupt segment is reported, kept as .bad, and reading goes on with the next', async (t) => {
    const dir = tempDir(t);
    const q = open(dir, { maxBytesPerFile: 400 });
    for (let n = 0; n < 40; n++) q.put(msg(n));
    await q.close();
    const segs = readdirSync(dir).filter((f) => f.endsWith('.dat')).sort();
    const first = join(dir, segs[0]!);
    const bytes = readFileSync(first);
    bytes[bytes.length - 5] = bytes[bytes.length - 5]! ^ 0xff; // damage the last record of segment 0
    writeFileSync(first, bytes);
    const reports: CorruptionReport[] = [];
    const again = open(dir, { maxBytesPerFile: 400, onCorrupt: (r) => reports.push(r) });
    const got: string[] = [];
    for (let m = again.read(); m; m = again.read()) got.push(text(m)!);
    assert.equal(reports.length, 1);
    assert.match(reports[0]!.reason, /checksum/);
    assert.ok(existsSync(`${first}.bad`));
    assert.ok(got.length >= 35 && got.length < 40, `kept ${got.length} of 40`);
    assert.equal(got.at(-1), 'm39', 'later segments read on');
    await again.close();
  });

  test('garbage metadata is reported and the segments are read from the oldest', async (t) => {
    const dir = tempDir(t);
    const q = open(dir);
    for (let n = 0; n < 10; n++) q.put(msg(n));
    await q.close();
    writeFileSync(join(dir, 't.diskqueue.meta.json'), '{"depth": -3');
    const reports: CorruptionReport[] = [];
    const again = open(dir, { onCorrupt: (r) => reports.push(r) });
    assert.equal(reports.length, 1);
    assert.equal(again.depth, 10);
    assert.equal(text(again.read()), 'm0');
    await again.close();
  });
});

describe('disk backend in the engine', () => {
  test('spill past the memory high-water mark to disk and back, in order, through memory:// API', async (t) => {
    const dir = tempDir(t);
    const engine = new Engine({ memQueueSize: 10, backend: diskBackend({ dir }) });
    const transport = new MemoryTransport(engine, { onClose: () => engine.close() });
    t.after(() => transport.close());
    const got: string[] = [];
    await transport.subscribe('spill', 'c', { maxInFlight: 50 }, (d) => {
      got.push(new TextDecoder().decode(d.body));
      d.ack();
    });
    const sub = await transport.subscribe('spill', 'slow', { maxInFlight: 1 }, () => {});
    await sub.pause();
    await transport.publish('spill', Array.from({ length: 2000 }, (_, n) => ({ body: new TextEncoder().encode(String(n)), headers: { n: String(n) } })));
    await waitFor(() => got.length === 2000, 'all 2000');
    assert.deepEqual(got, Array.from({ length: 2000 }, (_, n) => String(n)));
    assert.ok(readdirSync(dir).some((f) => f.startsWith('spill:slow')), 'the paused channel spilled to disk');
    await transport.close();
  });

  test('embedded:// keeps messages across a restart, channels included', async (t) => {
    const dir = tempDir(t);
    const url = `embedded://${dir}`;
    const first = await connect(url);
    await first.subscribe('jobs', 'workers', { maxInFlight: 1 }, () => {});
    await first.publish('jobs', Array.from({ length: 5 }, (_, n) => ({ body: new TextEncoder().encode(`j${n}`) })));
    await first.close();
    const second = await connect(url);
    t.after(() => second.close());
    const got: string[] = [];
    await second.subscribe('jobs', 'workers', { maxInFlight: 10 }, (d) => {
      got.push(new TextDecoder().decode(d.body));
      d.ack();
    });
    await waitFor(() => got.length === 5, 'five jobs after the restart');
    assert.deepEqual(got.sort(), ['j0', 'j1', 'j2', 'j3', 'j4']);
    await second.close();
  });

  test('durable: kill -9 mid-stream loses no confirmed message', async (t) => {
    const dir = tempDir(t);
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/disk/fixtures/durable-publisher.ts', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    let confirmed = -1;
    let buffer = '';
    child.stdout.on('data', (b: Buffer) => {
      buffer += b.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop()!;
      for (const line of lines) confirmed = Number(line);
    });
    await waitFor(() => confirmed >= 2000, 'the child confirms 2000 messages', 20_000);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const engine = new Engine({ memQueueSize: 0, backend: diskBackend({ dir, durable: true }) });
    restoreTopology(engine, dir);
    const transport = new MemoryTransport(engine, { onClose: () => engine.close() });
    t.after(() => transport.close());
    const seen = new Set<number>();
    await transport.subscribe('orders', 'billing', { maxInFlight: 2500 }, (d) => {
      seen.add(Number(new TextDecoder().decode(d.body)));
      d.ack();
    });
    await waitFor(() => seen.size > confirmed, `every confirmed message up to ${confirmed}`, 20_000);
    for (let n = 0; n <= confirmed; n++) assert.ok(seen.has(n), `confirmed message ${n} lost`);
    await transport.close();
  });
});
