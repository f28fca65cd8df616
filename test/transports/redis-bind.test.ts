/** redis:// per-subscription binding and bare stream entries (`?envelope=false`). */
import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import { z } from 'zod';
import { bytesMessage, defineMessage } from '../../src/core/schema.ts';
import { parseTransportUrl } from '../../src/core/url.ts';
import { app } from '../../src/runtime/app.ts';
import { RedisTransport } from '../../src/transports/redis/index.ts';
import { requireService, uniqueName, waitFor } from '../helpers/index.ts';

type Err = Error & { code?: string };

async function admin(t: TestContext, base: string, keys: string[]): Promise<RedisTransport> {
  const r = await RedisTransport.connect(parseTransportUrl(base));
  t.after(async () => {
    if (keys.length) await r.client.del(...keys);
    await r.close();
  });
  return r;
}

describe('redis:// bind per subscription', () => {
  test("consume(..., { bind: { topic } }) reads a foreign stream by its own key; retry keys stay Conveyor's", async (t) => {
    const base = await requireService(t, 'redis');
    if (!base) return;
    const key = `legacy:${uniqueName('orders')}`;
    const topic = uniqueName('orders');
    const keys = [key, `conveyor:${topic}:retry:billing`, `conveyor:${topic}:delayed:billing`];
    const r = await admin(t, base, keys);
    const a = app({ url: base });
    t.after(() => a.close());
    const got: string[] = [];
    let failedOnce = false;
    await a.consume(bytesMessage('order', { topic }), { channel: 'billing', bind: { topic: key }, retry: { backoff: { initialMs: 5, maxMs: 5 } } }, (body) => {
      const s = Buffer.from(body).toString();
      if (s === 'o7' && !failedOnce) {
        failedOnce = true;
        throw new Error('once');
      }
      got.push(s);
    });
    for (let n = 0; n < 20; n++) await r.client.xadd(key, '*', 'b', `o${n}`);
    await waitFor(() => got.length >= 20, '20 entries from the foreign stream', 10_000);
    assert.deepEqual([...got].sort(), Array.from({ length: 20 }, (_, n) => `o${n}`).sort());
    assert.equal(await r.client.exists(`conveyor:${topic}`), 0, "Conveyor's own stream was never made");
  });

  test('a channel binding is refused: a consumer group is its own name', async (t) => {
    const base = await requireService(t, 'redis');
    if (!base) return;
    const transport = await RedisTransport.connect(parseTransportUrl(base));
    t.after(() => transport.close());
    await assert.rejects(
      transport.subscribe(uniqueName('t'), 'c', { maxInFlight: 1, bind: { channel: 'g', topic: '' } }, () => {}),
      (e: Err) => e.code === 'ERR_BAD_OPTIONS' && e.message.includes('bind.channel') && e.message.includes('bind.topic'),
    );
  });

  test('envelope=false: a stream entry is the field b alone; a Conveyor consumer still reads it', async (t) => {
    const base = await requireService(t, 'redis');
    if (!base) return;
    const topic = uniqueName('bare');
    const r = await admin(t, base, [`conveyor:${topic}`, `conveyor:${topic}:retry:c`, `conveyor:${topic}:delayed:c`]);
    const a = app({ url: `${base}?envelope=false` });
    t.after(() => a.close());
    const got: Array<[string, Record<string, string>]> = [];
    const M = bytesMessage('m', { topic });
    await a.consume(M, { channel: 'c' }, (body, ctx) => {
      got.push([Buffer.from(body).toString(), { ...ctx.headers }]);
    });
    await a.publish(M, new TextEncoder().encode('plain'), { headers: { origin: 'test' } });
    await waitFor(() => got.length === 1, 'the bare entry', 5000);
    const entries = (await r.client.xrange(`conveyor:${topic}`, '-', '+')) as Array<[string, string[]]>;
    assert.deepEqual(entries.map(([, fields]) => fields), [['b', 'plain']]);
    assert.deepEqual(got, [['plain', {}]]);
  });
});

describe('redis:// entries a foreign producer wrote with its own fields', () => {
  test("redis-py's xadd(key, {'user': ..., 'msg': ...}) reads as one JSON object; a non-UTF-8 field goes to dead-letter with its bytes", async (t) => {
    const base = await requireService(t, 'redis');
    if (!base) return;
    const key = `legacy:${uniqueName('chat')}`;
    const topic = uniqueName('chat');
    const r = await admin(t, base, [key, `conveyor:${topic}.dead`, `conveyor:${topic}:retry:c`, `conveyor:${topic}:delayed:c`]);
    // envelope=false too: the dead letter must keep its reason all the same.
    const a = app({ url: `${base}?bind.${topic}=${encodeURIComponent(key)}&envelope=false`, deadLetterLog: false });
    t.after(() => a.close());
    const Chat = defineMessage({ name: 'chat', topic, schema: z.object({ user: z.string(), msg: z.string() }) });
    const got: Array<[unknown, number]> = [];
    await a.consume(Chat, { channel: 'c', retry: { attempts: 1 } }, (value, ctx) => {
      got.push([value, ctx.timestamp]);
    });
    const dead: string[] = [];
    await a.consume(bytesMessage('dead', { topic: `${topic}.dead` }), { channel: 'd' }, (body, ctx) => {
      dead.push(`${ctx.headers['conveyor-dead-code']}:${Buffer.from(body).toString('hex')}`);
    });
    const before = Date.now();
    const id = (await r.client.xadd(key, '*', 'user', 'ana', 'msg', 'hi ü')) as string;
    await r.client.xadd(key, '*', 'blob', Buffer.from([0xff, 0xfe]));
    await waitFor(() => got.length === 1 && dead.length === 1, 'one read, one dead-lettered', 10_000);
    assert.deepEqual(got[0]![0], { user: 'ana', msg: 'hi ü' });
    assert.equal(got[0]![1], Number(id.split('-')[0]), "the publish time is the entry id's");
    assert.ok(got[0]![1] >= before - 1000);
    assert.match(dead[0]!, /^ERR_[A-Z_]+:.*fffe$/, 'dead-lettered with the raw bytes');
  });
});
