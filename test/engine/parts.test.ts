import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConveyorError } from '../../src/core/errors.ts';
import { Consumer } from '../../src/engine/consumer.ts';
import { idKey } from '../../src/engine/in-flight.ts';
import { DeferredHeap } from '../../src/engine/heap.ts';
import { IdGenerator } from '../../src/engine/ids.ts';
import { DEFAULT_MEM_QUEUE_SIZE, Engine, isValidName, resolveEngineOptions } from '../../src/engine/index.ts';
import { Msg } from '../../src/engine/message.ts';
import { Ring } from '../../src/engine/ring.ts';
import { makeEngine } from './helpers.ts';

describe('engine names (nsqd IsValidTopicName)', () => {
  const good = ['a', 'A.b_c-9', 'x'.repeat(64), `${'x'.repeat(54)}#ephemeral`, 'q#ephemeral', '.'];
  const bad = ['', 'x'.repeat(65), `${'x'.repeat(55)}#ephemeral`, 'a b', 'a/b', 'a#b', '#ephemeral', 'é', 'a#ephemeral#ephemeral'];
  test('accepts what nsqd accepts', () => {
    for (const n of good) assert.equal(isValidName(n), true, n);
  });
  test('refuses what nsqd refuses, with ERR_BAD_NAME from the engine', (t) => {
    const engine = makeEngine(t);
    for (const n of bad) {
      assert.equal(isValidName(n), false, n);
      assert.throws(() => engine.topic(n), { code: 'ERR_BAD_NAME' }, `topic ${n}`);
      assert.throws(() => engine.topic('ok').channel(n), { code: 'ERR_BAD_NAME' }, `channel ${n}`);
    }
    assert.throws(() => engine.topic(42 as never), { code: 'ERR_BAD_NAME' });
  });
});

describe('engine options', () => {
  test('defaults are nsqd defaults', (t) => {
    const engine = new Engine();
    t.after(() => engine.close());
    const o = engine.options;
    assert.equal(o.memQueueSize, DEFAULT_MEM_QUEUE_SIZE);
    assert.equal(o.msgTimeoutMs, 60_000);
    assert.equal(o.maxMsgTimeoutMs, 15 * 60_000);
    assert.equal(o.maxReqTimeoutMs, 60 * 60_000);
    assert.equal(o.maxMsgSize, 1024 * 1024);
    assert.equal(o.maxRdyCount, 2500);
  });

  test('reports every bad option at once and never changes the caller object', () => {
    const input = { memQueueSize: -1, msgTimeoutMs: 'x', scanIntervalMs: 0.5, bogus: 1, backend: 3 } as never;
    const copy = structuredClone({ ...(input as object) });
    try {
      resolveEngineOptions(input);
      assert.fail('should throw');
    } catch (err) {
      assert.ok(err instanceof ConveyorError);
      assert.equal(err.code, 'ERR_BAD_OPTIONS');
      for (const path of ['memQueueSize', 'msgTimeoutMs', 'scanIntervalMs', 'bogus', 'backend']) {
        assert.match(err.message, new RegExp(path));
      }
    }
    assert.deepEqual(input, copy);
  });

  test('msgTimeoutMs may not exceed maxMsgTimeoutMs', () => {
    assert.throws(() => resolveEngineOptions({ msgTimeoutMs: 10, maxMsgTimeoutMs: 5 }), { code: 'ERR_BAD_OPTIONS' });
  });
});

describe('engine ids', () => {
  test('16 lower-case hex chars, unique and increasing', () => {
    const ids = new IdGenerator();
    const seen = new Set<string>();
    let prev = '';
    for (let i = 0; i < 10_000; i++) {
      const id = ids.next();
      assert.match(id, /^[0-9a-f]{16}$/);
      assert.ok(id > prev);
      prev = id;
      seen.add(id);
    }
    assert.equal(seen.size, 10_000);
  });

  test('a later generator starts past an earlier one, even in the same millisecond', () => {
    const now = Date.now();
    const a = new IdGenerator(now);
    const b = new IdGenerator(now);
    for (let i = 0; i < 100; i++) a.next();
    assert.ok(b.next() > a.next());
  });

  test('the sequence wraps into a new prefix without repeating', () => {
    const ids = new IdGenerator();
    let prev = ids.next();
    for (let i = 0; i < 2 ** 20 + 10; i++) {
      const id = ids.next();
      if (!(id > prev)) assert.fail(`${id} after ${prev}`);
      prev = id;
    }
    assert.match(prev, /^[0-9a-f]{16}$/);
  });
});

describe('ring and deferred heap', () => {
  test('ring keeps FIFO order across growth and wrap-around', () => {
    const ring = new Ring<number>(2);
    const out: number[] = [];
    let next = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 7; i++) ring.push(next++);
      for (let i = 0; i < 5; i++) out.push(ring.shift()!);
    }
    while (ring.length) out.push(ring.shift()!);
    assert.deepEqual(out, Array.from({ length: next }, (_, i) => i));
    assert.equal(ring.shift(), undefined);
  });

  test('heap pops only due messages, earliest first', () => {
    const heap = new DeferredHeap();
    const times = [50, 10, 40, 20, 30, 10, 60];
    for (const t of times) heap.push(new Msg(String(t), new Uint8Array(), undefined, undefined, 0, 0, t));
    const popped: number[] = [];
    let m = heap.popDue(35);
    while (m) {
      popped.push(m.deferUntil);
      m = heap.popDue(35);
    }
    assert.deepEqual(popped, [10, 10, 20, 30]);
    assert.equal(heap.size, 3);
    assert.equal(heap.popDue(1000)!.deferUntil, 40);
  });
});

describe('message bodies', () => {
  test('a deferred message stops pinning the large buffer its body was a view of', () => {
    const chunk = new Uint8Array(1 << 20).fill(7); // a disk queue's read chunk
    const view = new Uint8Array(chunk.buffer, 4096, 200);
    const deferred = new Msg('0000000000000001', view, undefined, undefined, 0, 0, 10);
    const small = new Uint8Array(200).fill(1);
    const owned = new Msg('0000000000000002', small, undefined, undefined, 0, 0, 20);
    const heap = new DeferredHeap();
    heap.push(deferred);
    heap.push(owned);
    assert.equal(deferred.body.buffer.byteLength, 200, 'copied out of the chunk');
    assert.deepEqual(Array.from(deferred.body), Array.from(view));
    assert.equal(owned.body, small, 'a body that is its own buffer is left alone');
  });
});

describe('Consumer in-flight index', () => {
  const host = {
    maxMsgTimeoutMs: 900_000,
    maxRdyCount: 2500,
    finished: () => {},
    requeued: () => {},
    readied: () => {},
    left: () => {},
  };
  const sink = { deliver: () => {}, detached: () => {} };
  const msg = (id: string) => new Msg(id, new Uint8Array(0), undefined, undefined, 0, 0, 0);

  test('idKey reads the last 7 hex digits of an engine id, -1 for anything else', () => {
    assert.equal(idKey('0000000000000001'), 1);
    assert.equal(idKey('fff00000000000ff'), 255);
    assert.equal(idKey('000000000fffffff'), 2 ** 28 - 1);
    for (const bad of ['', 'abc', '000000000000000G', '00000000000000000', '000000000000000A']) assert.equal(idKey(bad), -1, bad);
  });

  test('ids that share a key, and ids of another form, are each finished, requeued and timed out on their own', () => {
    const c = new Consumer(1, sink, 1000, host);
    const a = msg('0010000000000001');
    const b = msg('0020000000000001'); // same last 7 digits as a
    const odd = msg('not-an-engine-id');
    for (const m of [a, b, odd]) c.deliver(m, 0);
    assert.equal(c.count, 3);
    assert.equal(c.finish('0020000000000001'), true);
    assert.equal(c.finish('0020000000000001'), false, 'finished twice');
    assert.equal(c.finish('0030000000000001'), false, 'an id that only shares the key');
    assert.equal(c.touch('0010000000000001'), true);
    const expired = c.expired(Number.MAX_SAFE_INTEGER)!;
    assert.deepEqual(expired.map((m) => m.id).sort(), ['0010000000000001', 'not-an-engine-id']);
    assert.equal(c.count, 0);
  });
});
