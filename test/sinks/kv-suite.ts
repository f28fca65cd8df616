/**
 * One suite for every key-value backend (as src/testing/conformance.ts is for transports): the
 * same cases, through a real pipeline (memory:// broker → consumeBatch → keyValueSink), on each
 * store. `kv-redis.test.ts` and `kv-postgres.test.ts` run it.
 */
import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import { z } from 'zod';
import { ConveyorError } from '../../src/core/errors.ts';
import { defineMessage } from '../../src/core/schema.ts';
import { app } from '../../src/runtime/app.ts';
import { counter, flag, type KeyValueSink, type KeyValueSinkOptions, keyValueSink, map, register, set } from '../../src/sinks/kv/index.ts';
import { TcpProxy } from '../../src/testing/proxy.ts';
import { type ServiceName, requireService, uniqueName, waitFor } from '../helpers/index.ts';

export interface KvSuiteOptions {
  name: string;
  service: ServiceName;
  port: number;
  /** The store's URL, on another port (for the proxy) when given. */
  url: (port?: number) => string;
  /** Per-sink options that keep one test's data apart (prefix, table). */
  isolate: () => Partial<KeyValueSinkOptions>;
  /** Drops what `isolate()` made (e.g. the table). */
  drop?: (sink: KeyValueSink) => Promise<void>;
}

const Visit = z.object({ user: z.string(), page: z.string(), n: z.number() });
type Visit = z.infer<typeof Visit>;

export function kvSuite(o: KvSuiteOptions): void {
  async function makeSink(t: TestContext, extra: Partial<KeyValueSinkOptions> = {}, port?: number) {
    const sink = keyValueSink({ url: o.url(port), connectTimeoutMs: 10_000, ...o.isolate(), ...extra });
    await sink.start();
    t.after(async () => {
      await o.drop?.(sink).catch(() => undefined);
      await sink.close();
    });
    return sink;
  }

  function pipeline(t: TestContext, maxSize = 50) {
    const topic = uniqueName('kv');
    const Msg = defineMessage({ name: 'visit', topic, schema: Visit });
    const a = app({ url: `memory://${uniqueName('kv')}?scanIntervalMs=10` });
    t.after(() => a.close({ force: true }));
    const dead: string[] = [];
    a.on('dead', (e) => dead.push(e.error.message));
    const consume = (handler: Parameters<typeof a.consumeBatch<Visit>>[2], timeoutMs = 2000) =>
      a.consumeBatch(Msg, { channel: 'kv', timeoutMs, retry: { attempts: 2, backoff: { initialMs: 20, maxMs: 200, factor: 2, jitter: 0 } }, batch: { maxSize, maxWaitMs: 20 } }, handler);
    return { a, Msg, dead, consume };
  }

  describe(`keyValueSink on ${o.name}`, () => {
    test('datatypes: registers, counters, sets, flags and nested maps read back as plain JSON', async (t) => {
      if (!(await requireService(t, o.service))) return;
      const sink = await makeSink(t);
      const users = sink.bucket('maps', uniqueName('users'));
      const { a, Msg, consume } = pipeline(t);
      await consume(
        sink.handler<Visit>((v) =>
          users.update(v.user, [
            counter('visits').increment(),
            counter('score').increment(v.n),
            set('pages').add(v.page),
            register('last').assign(v.page),
            flag('active').enable(),
            map('stats').update([counter('clicks').increment(2), map('deep').update([register('by').assign(v.user)])]),
          ]),
        ),
      );
      await a.publishMany(Msg, [
        { user: 'ann', page: '/a', n: 1 },
        { user: 'ann', page: '/b', n: 2 },
        { user: 'bob', page: '/a', n: 5 },
        { user: 'ann', page: '/a', n: -1 },
      ]);
      await waitFor(async () => ((await users.get('ann')) as { visits?: number })?.visits === 3 && (await users.get('bob')) !== undefined, 'ann and bob');
      assert.deepEqual(await users.get('ann'), {
        visits: 3,
        score: 2,
        pages: ['/a', '/b'],
        last: '/a',
        active: true,
        stats: { clicks: 6, deep: { by: 'ann' } },
      });
      assert.deepEqual(await users.get('bob'), { visits: 1, score: 5, pages: ['/a'], last: '/a', active: true, stats: { clicks: 2, deep: { by: 'bob' } } });
      assert.equal(await users.get('nobody'), undefined);
      // Removing and disabling, on the same map.
      await sink.write([{ write: users.update('ann', [set('pages').remove('/a', '/zzz'), flag('active').disable()]), id: 'rm-1' }]);
      const ann = (await users.get('ann')) as Record<string, unknown>;
      assert.deepEqual([ann.pages, ann.active], [['/b'], false]);
      await users.delete('ann');
      assert.equal(await users.get('ann'), undefined);
    });

    test('idempotent on the message id: a redelivery adds nothing and re-adds no removed member', async (t) => {
      if (!(await requireService(t, o.service))) return;
      const sink = await makeSink(t);
      const b = sink.bucket('maps', uniqueName('idem'));
      const { a, Msg, consume } = pipeline(t);
      const writes: string[] = [];
      await consume(
        sink.handler<Visit>((v, m) => {
          writes.push(m.id);
          return v.n > 0 ? b.update(v.user, [counter('c').increment(v.n), set('s').add(v.page)]) : b.update(v.user, [set('s').remove(v.page)]);
        }),
      );
      const [first] = await a.publishMany(Msg, [{ user: 'u', page: 'x', n: 10 }]);
      await waitFor(async () => ((await b.get('u')) as { c?: number })?.c === 10, 'first add');
      await a.publish(Msg, { user: 'u', page: 'x', n: -1 }); // removes x
      await waitFor(async () => ((await b.get('u')) as { s?: string[] })?.s?.length === 0, 'x removed');
      await a.publish(Msg, { user: 'u', page: 'x', n: 10 }, { id: first }); // the add again, same id
      await a.publish(Msg, { user: 'u', page: 'y', n: 1 });
      await waitFor(async () => ((await b.get('u')) as { c?: number })?.c === 11, 'the new message only');
      assert.deepEqual(await b.get('u'), { c: 11, s: ['y'] });
      assert.equal(writes.filter((id) => id === first).length, 2, 'the redelivery did reach the sink');
      // One message writing one key twice: two writes, both applied (ids `<id>` and `<id>#2`).
      assert.deepEqual(await sink.write([{ write: b.update('v', [counter('c').increment()]), id: 'm' }, { write: b.update('v', [counter('c').increment()]), id: 'm' }]), ['ok', 'dup']);
    });

    test('the idempotence window is appliedIdsPerKey ids per key (bounded), documented not hidden', async (t) => {
      if (!(await requireService(t, o.service))) return;
      const sink = await makeSink(t, { appliedIdsPerKey: 2 });
      const b = sink.bucket('maps', uniqueName('win'));
      const inc = (id: string) => sink.write([{ write: b.update('k', [counter('c').increment()]), id }]);
      assert.deepEqual(await inc('a'), ['ok']);
      assert.deepEqual(await inc('b'), ['ok']);
      assert.deepEqual(await inc('b'), ['dup']);
      assert.deepEqual(await inc('a'), ['dup']);
      assert.deepEqual(await inc('c'), ['ok']); // 'a' leaves the window
      assert.deepEqual(await inc('a'), ['ok'], 'past the window an id counts again');
      assert.deepEqual(await b.get('k'), { c: 4 });
    });

    test('put: last write wins by message timestamp (ties: larger id), whatever the arrival order', async (t) => {
      if (!(await requireService(t, o.service))) return;
      const sink = await makeSink(t);
      const b = sink.bucket('default', uniqueName('plain'));
      assert.deepEqual(await sink.write([{ write: b.put('k', { v: 'new' }), id: 'id2', timestamp: 2000 }]), ['ok']);
      assert.deepEqual(await sink.write([{ write: b.put('k', { v: 'old' }), id: 'id1', timestamp: 1000 }]), ['stale']);
      assert.deepEqual(await b.get('k'), { v: 'new' });
      assert.deepEqual(await sink.write([{ write: b.put('k', { v: 'tie' }), id: 'id3', timestamp: 2000 }]), ['ok']);
      assert.deepEqual(await b.get('k'), { v: 'tie' });
      // Ties compare ids in byte order on every backend ('a' > 'B' in bytes, not in most locales).
      assert.deepEqual(await sink.write([{ write: b.put('t', 'B'), id: 'B', timestamp: 3000 }]), ['ok']);
      assert.deepEqual(await sink.write([{ write: b.put('t', 'a'), id: 'a', timestamp: 3000 }]), ['ok']);
      assert.deepEqual(await sink.write([{ write: b.put('t', 'A'), id: 'A', timestamp: 3000 }]), ['stale']);
      assert.equal(await b.get('t'), 'a');
      // Through a pipeline: every message to one key, in order; the last (newest) one stays.
      const { a, Msg, consume } = pipeline(t);
      await consume(sink.handler<Visit>((v) => b.put('p', v)));
      for (let n = 0; n < 5; n++) {
        await a.publish(Msg, { user: 'p', page: `/${n}`, n });
        await new Promise((r) => setTimeout(r, 3)); // distinct timestamps
      }
      await waitFor(async () => ((await b.get('p')) as Visit | undefined)?.n === 4, 'the newest value');
    });

    test('put with a resolver: concurrent writers from two sinks merge, none lost', async (t) => {
      if (!(await requireService(t, o.service))) return;
      const isolate = o.isolate();
      const union = (s: { value: string[] }, i: { value: string[] }) => [...new Set([...s.value, ...i.value])].sort();
      const sinks = [await makeSink(t, isolate), await makeSink(t, isolate)];
      const name = uniqueName('merge');
      const buckets = sinks.map((s) => s.bucket<string[]>('sets', name, { resolve: union }));
      const expected = new Set<string>();
      await Promise.all(
        sinks.map(async (s, w) => {
          for (let round = 0; round < 20; round++) {
            const writes = [0, 1, 2].map((k) => {
              const tag = `w${w}-r${round}-k${k}`;
              if (k === 0) expected.add(tag);
              return { write: buckets[w]!.put(k === 0 ? 'shared' : `own${w}-${k}`, [tag]), id: tag };
            });
            const results = await s.write(writes);
            assert.ok(results.every((r) => r === 'ok'), results.join());
          }
        }),
      );
      const merged = (await buckets[0]!.get('shared')) as string[];
      assert.deepEqual(merged, [...expected].sort(), 'both writers landed every member on the shared key');
      // A redelivered write is not merged twice (the resolver would not notice with a union; count calls).
      let calls = 0;
      const counting = sinks[0]!.bucket<string[]>('sets', name, { resolve: (s, i) => {
        calls++;
        return union(s, i);
      } });
      assert.deepEqual(await sinks[0]!.write([{ write: counting.put('shared', ['w0-r0-k0']), id: 'w0-r0-k0' }]), ['dup']);
      assert.equal(calls, 0);
    });

    test('concurrent batches on the same keys from two sinks: no lost update, no deadlock', async (t) => {
      if (!(await requireService(t, o.service))) return;
      const isolate = o.isolate();
      const sinks = [await makeSink(t, isolate), await makeSink(t, isolate)];
      const name = uniqueName('hot');
      let id = 0;
      // Each batch touches the same 50 keys, in opposite orders per sink: only a fixed lock order survives that.
      await Promise.all(
        sinks.map(async (s, w) => {
          const b = s.bucket('maps', name);
          for (let round = 0; round < 10; round++) {
            const keys = Array.from({ length: 50 }, (_, k) => `k${w ? 49 - k : k}`);
            const results = await s.write(keys.map((k) => ({ write: b.update(k, [counter('n').increment(), set('by').add(`w${w}`)]), id: `w${w}-${id++}` })));
            assert.ok(results.every((r) => r === 'ok'), results.join());
          }
        }),
      );
      const b = sinks[0]!.bucket('maps', name);
      for (let k = 0; k < 50; k++) assert.deepEqual(await b.get(`k${k}`), { n: 20, by: ['w0', 'w1'] }, `k${k}`);
    });

    test('a batch past one call\'s payload (16 MiB) goes in several, every write stored once', { timeout: 60_000 }, async (t) => {
      if (!(await requireService(t, o.service))) return;
      const sink = await makeSink(t);
      const b = sink.bucket('maps', uniqueName('big'));
      const big = 'x'.repeat(1 << 20);
      const writes = Array.from({ length: 24 }, (_, i) => ({ write: b.update(`k${i % 4}`, [register(`r${i}`).assign(big), counter('n').increment()]), id: `big-${i}` }));
      assert.deepEqual(await sink.write(writes), writes.map(() => 'ok'));
      assert.deepEqual(await sink.write(writes.slice(0, 2)), ['dup', 'dup']);
      const k0 = (await b.get('k0')) as Record<string, unknown>;
      assert.equal(k0.n, 6);
      assert.equal((k0.r20 as string).length, 1 << 20);
    });

    test('bad input dead-letters that message alone; the rest of its batch is stored once', async (t) => {
      if (!(await requireService(t, o.service))) return;
      const sink = await makeSink(t);
      const b = sink.bucket('maps', uniqueName('bad'));
      const plain = sink.bucket('default', `${b.name}-plain`);
      await sink.write([{ write: b.update('typed', [register('name').assign('x')]), id: 'seed1' }]);
      await sink.write([{ write: b.update('big', [counter('n').increment(Number.MAX_SAFE_INTEGER - 1)]), id: 'seed2' }]);
      await sink.write([{ write: plain.put('value', 1), id: 'seed3' }]);
      const { a, Msg, dead, consume } = pipeline(t, 20);
      await consume(
        sink.handler<Visit>((v) => {
          if (v.page === 'wrong-type') return b.update('typed', [counter('name').increment()]); // a register used as a counter
          if (v.page === 'nested') return b.update('typed', [map('name').update([flag('f').enable()])]); // a register used as a map
          if (v.page === 'overflow') return b.update('big', [counter('n').increment(5)]); // past 2^53
          if (v.page === 'nul') return b.update('x', [register('r').assign('a\u0000b')]); // jsonb cannot hold U+0000
          if (v.page === 'map-on-value') return plain.update('value', [flag('f').enable()]);
          if (v.page === 'value-on-map') return plain.put(`${v.user}`, 1) && sink.bucket('maps', b.name).put('typed', 2);
          return b.update('good', [counter('n').increment(), set('pages').add(v.page)]);
        }),
      );
      const bad = ['wrong-type', 'nested', 'overflow', 'nul', 'map-on-value', 'value-on-map'];
      const pages = Array.from({ length: 20 }, (_, i) => (i % 3 === 1 && bad.length ? bad.shift()! : `p${i}`));
      await a.publishMany(Msg, pages.map((page, n) => ({ user: 'u', page, n })));
      await waitFor(() => dead.length === 6, 'six dead letters', 10_000);
      const good = pages.filter((p) => p.startsWith('p'));
      await waitFor(async () => ((await b.get('good')) as { n?: number })?.n === good.length, 'every good message stored');
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(await b.get('good'), { n: good.length, pages: [...good].sort() }, 'each good message once, though the split retried them');
      assert.deepEqual(await b.get('typed'), { name: 'x' });
      assert.deepEqual(await b.get('big'), { n: Number.MAX_SAFE_INTEGER - 1 });
      assert.equal(await plain.get('value'), 1);
      const reasons = dead.join('\n');
      for (const re of [/name is a register, not a counter/, /name is a register, not a map/, /safe integer/, /U\+0000/, /plain value, not a map/, /a map, not a plain value/]) assert.match(reasons, re);
      assert.equal(a.stats()[0]!.dead, 6);
    });

    test('the store goes away mid-run (proxy cut, twice): 0 lost, 0 applied twice, memory bounded', { timeout: 60_000 }, async (t) => {
      if (!(await requireService(t, o.service))) return;
      const proxy = await TcpProxy.start('127.0.0.1', o.port);
      t.after(() => proxy.close());
      const isolate = o.isolate();
      const sink = await makeSink(t, isolate, proxy.port);
      const check = await makeSink(t, isolate);
      const b = sink.bucket('maps', uniqueName('outage'));
      const direct = check.bucket('maps', b.name);
      const { a, Msg, dead, consume } = pipeline(t, 50);
      await consume(sink.handler<Visit>((v) => b.update(v.user, [counter('n').increment(), set('seen').add(String(v.n))])));
      let retries = 0;
      a.on('retry', () => retries++);
      let sent = 0;
      const publishSome = (k: number) => a.publishMany(Msg, Array.from({ length: k }, () => ({ user: `u${sent % 10}`, page: '', n: sent++ })));
      const total = async () => {
        let n = 0;
        for (let u = 0; u < 10; u++) n += ((await direct.get(`u${u}`)) as { n?: number } | undefined)?.n ?? 0;
        return n;
      };
      await publishSome(300);
      await waitFor(async () => (await total()) === 300, 'the first 300');
      // Cut while batches are on the wire (replies lost after the store applied them), then refuse.
      const publishing = publishSome(300);
      await new Promise((r) => setTimeout(r, 5));
      proxy.dropAll();
      await publishing;
      proxy.refuse(true);
      proxy.dropAll();
      await publishSome(300);
      let peakHeld = 0;
      for (let i = 0; i < 20; i++) {
        await new Promise((r) => setTimeout(r, 50));
        peakHeld = Math.max(peakHeld, a.stats()[0]!.waiting);
      }
      assert.ok(peakHeld > 0 && peakHeld <= 100, `held ${peakHeld} (≤ maxInFlight 100) during the outage`);
      proxy.refuse(false);
      await publishSome(100);
      await waitFor(async () => (await total()) >= 1000, 'all 1000 after the outage', 20_000);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(await total(), 1000, 'every increment exactly once');
      let members = 0;
      for (let u = 0; u < 10; u++) members += ((await direct.get(`u${u}`)) as { seen: string[] }).seen.length;
      assert.equal(members, 1000, 'every message in its set');
      assert.equal(dead.length, 0);
      assert.ok(retries > 0, 'the outage was felt: batches were retried');
    });

    test('bad options and bad input are typed errors at once', async () => {
      assert.throws(() => keyValueSink({ url: 'riak://127.0.0.1:8087' }), (e: unknown) => e instanceof ConveyorError && e.code === 'ERR_BAD_URL');
      assert.throws(
        () => keyValueSink({ url: o.url(), appliedIdsPerKey: 0, table: 'x; drop', probeIntervalMs: 1 }),
        (e: unknown) => e instanceof ConveyorError && e.code === 'ERR_BAD_OPTIONS' && /appliedIdsPerKey/.test(e.message) && /table/.test(e.message) && /probeIntervalMs/.test(e.message),
      );
      const sink = keyValueSink({ url: o.url() });
      assert.throws(() => sink.bucket('a:b', 'c'), { code: 'ERR_BAD_OPTIONS' });
      const b = sink.bucket('maps', 'm');
      const bad = (f: () => unknown, re: RegExp) => assert.throws(f, (e: unknown) => e instanceof ConveyorError && e.code === 'ERR_SINK' && !e.retryable && re.test(e.message));
      bad(() => b.update('k', [counter('c').increment(1.5)]), /safe integer/);
      bad(() => b.update('k', [register('a.b').assign('x')]), /contains '\.'/);
      bad(() => b.update('k', [register('r').assign(7 as unknown as string)]), /must be a string/);
      bad(() => b.put('k', { when: new Date() }), /not JSON/);
      bad(() => b.put('k', Number.NaN), /JSON cannot hold/);
      bad(() => b.update('', []), /non-empty/);
      await sink.close();
    });
  });
}
