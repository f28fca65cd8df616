import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { codecs } from '../../src/core/codecs/index.ts';
import { PermanentError } from '../../src/core/errors.ts';
import { HEADER } from '../../src/core/message.ts';
import { defineMessage } from '../../src/core/schema.ts';
import type { Transport } from '../../src/core/transport.ts';
import { app } from '../../src/runtime/app.ts';
import { collect, setup, sleep, waitFor } from './helpers.ts';

const fast = { retry: { attempts: 3, backoff: { initialMs: 5, maxMs: 20, factor: 2, jitter: 0 } } };

describe('consume', () => {
  test('typed values arrive with their context and are acked', async (t) => {
    const { Msg, make, topic } = await setup(t);
    const a = make();
    const seen: unknown[] = [];
    await a.consume(Msg, { channel: 'c' }, (value, ctx) => {
      seen.push({ value, topic: ctx.topic, channel: ctx.channel, attempts: ctx.attempts, type: ctx.headers[HEADER.type] });
      assert.match(ctx.id, /^[0-9a-f]{16}$/);
    });
    const id = await a.publish(Msg, { n: 1, note: 'x' });
    assert.match(id, /^[0-9a-f]{16}$/);
    await waitFor(() => seen.length === 1, 'delivery');
    assert.deepEqual(seen[0], { value: { n: 1, note: 'x' }, topic, channel: 'c', attempts: 1, type: 'job' });
    await waitFor(() => a.stats()[0]!.processed === 1, 'ack');
  });

  test('publishes in one tick go out as one transport call; each resolves with its id', async (t) => {
    const { transport, Msg, topic } = await setup(t);
    let calls = 0;
    const counting: Transport = {
      kind: transport.kind,
      features: transport.features,
      publish: (tp, m) => {
        calls++;
        return transport.publish(tp, m);
      },
      subscribe: transport.subscribe.bind(transport),
      close: async () => {},
    };
    const a = app({ transport: counting });
    t.after(() => a.close());
    const got = await collect(transport, topic);
    const ids = await Promise.all(Array.from({ length: 10 }, (_, n) => a.publish(Msg, { n })));
    assert.equal(calls, 1);
    assert.equal(new Set(ids).size, 10);
    await waitFor(() => got.length === 10, 'all 10');
    assert.deepEqual(got.map((d) => d.id), ids);
    await a.publishMany(Msg, [{ n: 11 }, { n: 12 }]);
    assert.equal(calls, 2);
  });

  test('an invalid value is refused at publish and nothing is sent', async (t) => {
    const { Msg, make } = await setup(t);
    const a = make();
    await assert.rejects(a.publish(Msg, { n: 'one' } as never), { code: 'ERR_SCHEMA' });
  });

  test('bad bytes, wrong schema and a newer version go to <topic>.dead with the reason; the worker goes on', async (t) => {
    const { transport, Msg, make, topic } = await setup(t);
    const a = make();
    const ok: number[] = [];
    const dead: string[] = [];
    a.on('dead', (e) => dead.push((e.error as { code?: string }).code ?? ''));
    await a.consume(Msg, { channel: 'c', ...fast }, (v) => {
      ok.push(v.n);
    });
    const deadLetters = await collect(transport, `${topic}.dead`);
    await transport.publish(topic, [
      { body: Uint8Array.from([0xff, 0xff]), headers: { [HEADER.contentType]: 'application/cbor' } },
      { body: codecs.cbor.encode({ n: 'x' }), headers: {} },
      { body: codecs.cbor.encode({ n: 2 }), headers: { [HEADER.version]: '9' } },
    ]);
    await a.publish(Msg, { n: 1 });
    await waitFor(() => deadLetters.length === 3 && ok.length === 1, 'three dead, one ok');
    assert.deepEqual(ok, [1]);
    assert.deepEqual(deadLetters.map((d) => d.headers[HEADER.deadCode]), ['ERR_DECODE', 'ERR_SCHEMA', 'ERR_VERSION']);
    for (const d of deadLetters) {
      assert.equal(d.headers[HEADER.deadTopic], topic);
      assert.equal(d.headers[HEADER.deadChannel], 'c');
      assert.equal(d.headers[HEADER.deadAttempts], '1', 'permanent errors are not retried');
      assert.ok(d.headers[HEADER.deadReason]!.length > 0);
    }
    assert.deepEqual([...deadLetters[0]!.body], [0xff, 0xff], 'the original body is kept');
    assert.equal(dead.length, 3);
  });

  test('a throwing handler is retried with backoff, then dead-lettered after the last attempt', async (t) => {
    const { transport, Msg, make, topic } = await setup(t);
    const a = make();
    const attempts: number[] = [];
    const retries: number[] = [];
    a.on('retry', (e) => retries.push(e.delayMs));
    await a.consume(Msg, { channel: 'c', ...fast }, (_v, ctx) => {
      attempts.push(ctx.attempts);
      throw new Error('db said no');
    });
    const deadLetters = await collect(transport, `${topic}.dead`);
    await a.publish(Msg, { n: 1 });
    await waitFor(() => deadLetters.length === 1, 'dead letter');
    assert.deepEqual(attempts, [1, 2, 3]);
    assert.deepEqual(retries, [5, 10]);
    assert.equal(deadLetters[0]!.headers[HEADER.deadCode], 'ERR_HANDLER');
    assert.equal(deadLetters[0]!.headers[HEADER.deadReason], 'db said no');
    assert.equal(deadLetters[0]!.headers[HEADER.deadAttempts], '3');
  });

  test('a PermanentError skips retries', async (t) => {
    const { transport, Msg, make, topic } = await setup(t);
    const a = make();
    let calls = 0;
    await a.consume(Msg, { channel: 'c', ...fast }, () => {
      calls++;
      throw new PermanentError('bad order');
    });
    const deadLetters = await collect(transport, `${topic}.dead`);
    await a.publish(Msg, { n: 1 });
    await waitFor(() => deadLetters.length === 1, 'dead letter');
    assert.equal(calls, 1);
    assert.equal(deadLetters[0]!.headers[HEADER.deadCode], 'ERR_PERMANENT');
  });

  test('deadLetter: false acks and reports a message out of attempts', async (t) => {
    const { Msg, make } = await setup(t);
    const a = make();
    const discarded: string[] = [];
    a.on('discarded', (e) => discarded.push(e.error.message));
    await a.consume(Msg, { channel: 'c', ...fast, deadLetter: false }, () => {
      throw new Error('nope');
    });
    await a.publish(Msg, { n: 1 });
    await waitFor(() => discarded.length === 1, 'discard');
    assert.equal(a.stats()[0]!.discarded, 1);
  });

  test('a handler that hangs past its deadline is aborted and retried', async (t) => {
    const { Msg, make } = await setup(t);
    const a = make();
    const aborted: unknown[] = [];
    const done: number[] = [];
    await a.consume(Msg, { channel: 'c', ...fast, timeoutMs: 1000, handlerTimeoutMs: 60 }, async (_v, ctx) => {
      if (ctx.attempts === 1) {
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
        aborted.push((ctx.signal.reason as { code?: string }).code);
        await sleep(5000); // ignores the abort; its late result must not count
        return;
      }
      done.push(ctx.attempts);
    });
    await a.publish(Msg, { n: 1 });
    await waitFor(() => done.length === 1, 'second attempt succeeds');
    assert.deepEqual(aborted, ['ERR_TIMEOUT']);
    assert.deepEqual(done, [2]);
  });

  test('slow handlers are touched so the broker does not redeliver under them', async (t) => {
    const { Msg, make } = await setup(t);
    const a = make();
    const attempts: number[] = [];
    await a.consume(Msg, { channel: 'c', timeoutMs: 80 }, async (_v, ctx) => {
      attempts.push(ctx.attempts);
      await sleep(350);
    });
    await a.publish(Msg, { n: 1 });
    await waitFor(() => a.stats()[0]!.processed === 1, 'processed', 3000);
    await sleep(100);
    assert.deepEqual(attempts, [1]);
  });

  test('concurrency and maxInFlight are never exceeded', async (t) => {
    const { Msg, make } = await setup(t);
    const a = make();
    let running = 0;
    let peakRunning = 0;
    let peakHeld = 0;
    const consumer = await a.consume(Msg, { channel: 'c', concurrency: 3, maxInFlight: 7 }, async () => {
      running++;
      peakRunning = Math.max(peakRunning, running);
      peakHeld = Math.max(peakHeld, consumer.stats.running + consumer.stats.waiting);
      await sleep(2);
      running--;
    });
    await a.publishMany(Msg, Array.from({ length: 100 }, (_, n) => ({ n })));
    await waitFor(() => a.stats()[0]!.processed === 100, '100 processed');
    assert.equal(peakRunning, 3);
    assert.ok(peakHeld <= 7, `held ${peakHeld}`);
  });

  test('dedup skips an id already processed', async (t) => {
    const { Msg, make } = await setup(t);
    const a = make();
    const seen: number[] = [];
    await a.consume(Msg, { channel: 'c', dedup: true }, (v) => {
      seen.push(v.n);
    });
    await a.publish(Msg, { n: 1 }, { id: 'aaaaaaaaaaaaaaaa' });
    await waitFor(() => seen.length === 1, 'first');
    await a.publish(Msg, { n: 2 }, { id: 'aaaaaaaaaaaaaaaa' });
    await a.publish(Msg, { n: 3 });
    await waitFor(() => seen.length === 2, 'third');
    assert.deepEqual(seen, [1, 3]);
    assert.equal(a.stats()[0]!.duplicates, 1);
  });

  test('bad options are reported together', async (t) => {
    const { Msg, make } = await setup(t);
    const a = make();
    await assert.rejects(
      a.consume(Msg, { channel: '', concurrency: 0, maxInFlight: -1 }, () => {}),
      (e: Error) => /channel/.test(e.message) && /concurrency/.test(e.message) && /maxInFlight/.test(e.message),
    );
  });

  test('ctx.publish sends follow-ups', async (t) => {
    const { transport, Msg, make } = await setup(t);
    const Out = defineMessage({ name: 'out', topic: `${Msg.topic}_out`, schema: z.object({ doubled: z.number() }) });
    const a = make();
    const out = await collect(transport, Out.topic);
    await a.consume(Msg, { channel: 'c' }, async (v, ctx) => {
      await ctx.publish(Out, { doubled: v.n * 2 });
    });
    await a.publish(Msg, { n: 21 });
    await waitFor(() => out.length === 1, 'follow-up');
    assert.deepEqual(Out.decode(out[0]!.body, out[0]!.headers), { doubled: 42 });
  });
});
