/**
 * The default in-memory backend (src/engine/compact-backend.ts): objects first, packed slabs past
 * them, one FIFO across both, and every field of a message back as it went in.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CompactMemoryBackend } from '../../src/engine/compact-backend.ts';
import { Msg } from '../../src/engine/message.ts';
import type { EngineMessage } from '../../src/engine/types.ts';

function msg(i: number, headers?: Record<string, string>, key?: string, body = Buffer.from(`body-${i}`)): Msg {
  return new Msg(i.toString(16).padStart(16, '0'), body, headers, key, 1_700_000_000_000 + i, i % 7, i % 3 === 0 ? 0 : 1_700_000_000_500 + i);
}

function fields(m: EngineMessage) {
  return { id: m.id, body: Buffer.from(m.body).toString('latin1'), headers: m.headers, key: m.key, timestamp: m.timestamp, attempts: m.attempts, deferUntil: m.deferUntil ?? 0 };
}

test('one FIFO across the object part and the packed part, every field kept', () => {
  const b = new CompactMemoryBackend({ objects: 3 });
  const input: Msg[] = [];
  for (let i = 0; i < 10; i++) {
    const id = `k${i}`;
    input.push(msg(i, { 'content-type': 'application/cbor', 'conveyor-type': 'frame', 'conveyor-id': id }, id));
  }
  for (const m of input.slice(0, 5)) b.put(m);
  assert.equal(b.depth, 5);
  // Reading frees object room; a put now must still land behind the packed ones.
  const first = b.read()!;
  assert.equal(first, input[0], 'the object part hands back the same object');
  for (const m of input.slice(5)) b.put(m);
  const out: EngineMessage[] = [first];
  for (let m = b.read(); m; m = b.read()) out.push(m);
  assert.equal(b.depth, 0);
  assert.deepEqual(out.map(fields), input.map(fields));
});

test('headers: a template with the id as key, a template without, JSON when no template fits, none', () => {
  const b = new CompactMemoryBackend({ objects: 0 });
  const cases: Msg[] = [
    msg(1, { a: '1', 'conveyor-id': 'x1' }, 'x1'),
    msg(2, { a: '1', 'conveyor-id': 'not-the-key' }, 'x2'),
    msg(3, { a: '1' }),
    msg(4, undefined, 'ключ-ü'),
    msg(5, undefined, undefined, Buffer.alloc(0)),
  ];
  // 300 distinct header sets: past 256 templates the rest travel as JSON.
  for (let i = 0; i < 300; i++) cases.push(msg(100 + i, { traceparent: `00-${i}`, 'conveyor-id': `id${i}` }, `id${i}`));
  for (const m of cases) b.put(m);
  const out: EngineMessage[] = [];
  for (let m = b.read(); m; m = b.read()) out.push(m);
  assert.deepEqual(out.map(fields), cases.map(fields));
});

test('records larger than a slab, and slabs reused once everything is read', () => {
  const b = new CompactMemoryBackend({ objects: 0 });
  const big = Buffer.alloc(600 * 1024, 7);
  b.put(msg(1, undefined, undefined, big));
  b.put(msg(2));
  assert.equal(Buffer.compare(Buffer.from(b.read()!.body), big), 0);
  assert.equal(Buffer.from(b.read()!.body).toString(), 'body-2');
  assert.equal(b.read(), undefined);
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 5000; i++) b.put(msg(i));
    let n = 0;
    for (let m = b.read(); m; m = b.read()) assert.equal(Buffer.from(m.body).toString(), `body-${n++}`);
    assert.equal(n, 5000);
  }
});

test('empty() and close() drop both parts', async () => {
  const b = new CompactMemoryBackend({ objects: 2 });
  for (let i = 0; i < 6; i++) b.put(msg(i));
  b.empty();
  assert.equal(b.depth, 0);
  assert.equal(b.read(), undefined);
  b.put(msg(9));
  assert.equal(b.read()!.id, msg(9).id);
  await b.close();
  b.put(msg(10));
  assert.equal(b.depth, 0, 'closed: puts are ignored, as the object backend did');
});
