/**
 * amqp:// per-subscription binding (SubscribeOptions.bind / consume's `bind`): a queue or exchange
 * that exists, named by one consumer, with no `bind.` in the URL, or overriding it.
 */
import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import { bytesMessage } from '../../src/core/schema.ts';
import { parseTransportUrl } from '../../src/core/url.ts';
import { app } from '../../src/runtime/app.ts';
import { AmqpTransport } from '../../src/transports/amqp/index.ts';
import { subscriptionSource } from '../../src/transports/amqp/bind.ts';
import { parseAmqpOptions } from '../../src/transports/amqp/options.ts';
import { requireService, uniqueName, waitFor } from '../helpers/index.ts';

type Channel = import('amqplib').Channel;
type Err = Error & { code?: string };

/** An admin channel; `queues` made through it are deleted when the test ends. */
async function admin(t: TestContext, base: string): Promise<{ ch: Channel; queues: string[] }> {
  const owner = await AmqpTransport.connect(parseTransportUrl(base));
  const ch = await owner.connection!.createChannel();
  const queues: string[] = [];
  t.after(async () => {
    const clean = await owner.connection!.createChannel();
    for (const q of queues) await clean.deleteQueue(q);
    await clean.close();
    await owner.close();
  });
  return { ch, queues };
}

describe('amqp:// bind per subscription', () => {
  test('subscriptionSource: bind.channel, then bind.topic, then the URL; bad values reported together', () => {
    const o = parseAmqpOptions(parseTransportUrl('amqp://h?bind.mailbox=/from-url'));
    assert.deepEqual(subscriptionSource(o, 'mailbox', 'c', undefined), { queue: 'from-url', declare: false });
    assert.deepEqual(subscriptionSource(o, 'mailbox', 'c', { channel: 'mine' }), { queue: 'mine', declare: false });
    assert.deepEqual(subscriptionSource(o, 'mailbox', 'c', { topic: '/other' }), { queue: 'other', declare: false });
    assert.deepEqual(subscriptionSource(o, 'logs', 'c', { topic: 'amq.topic/app.#' }), {
      queue: 'logs:c',
      declare: true,
      exchange: { exchange: 'amq.topic', routingKey: 'app.#' },
    });
    assert.throws(
      () => subscriptionSource(o, 't', 'c', { topic: 'noslash', channel: '' }),
      (e: Err) => e.code === 'ERR_BAD_OPTIONS' && e.message.includes('bind.topic') && e.message.includes('bind.channel'),
    );
  });

  test("consume(..., { bind: { channel } }) reads a pika-style queue as is, with no bind. in the URL; the URL's binding is overridden", async (t) => {
    const base = await requireService(t, 'rabbitmq');
    if (!base) return;
    const { ch, queues } = await admin(t, base);
    const mine = uniqueName('mailbox');
    const theirs = uniqueName('other');
    await ch.assertQueue(mine, { durable: false }); // as pika's queue_declare(q) makes it
    await ch.assertQueue(theirs, { durable: false });
    queues.push(mine, theirs);
    const topic = uniqueName('mail');
    const a = app({ url: `${base}?bind.${topic}=/${theirs}` });
    t.after(() => a.close());
    const got: string[] = [];
    await a.consume(bytesMessage('mail', { topic }), { channel: 'inbox', maxInFlight: 20, bind: { channel: mine } }, (body) => {
      got.push(Buffer.from(body).toString());
    });
    for (let n = 0; n < 50; n++) ch.sendToQueue(mine, Buffer.from(`m${n}`));
    ch.sendToQueue(theirs, Buffer.from('not mine'));
    await waitFor(() => got.length >= 50, '50 messages from the bound queue', 10_000);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(got, Array.from({ length: 50 }, (_, n) => `m${n}`));
    assert.equal((await ch.checkQueue(theirs)).messageCount, 1, "the URL's queue was not read by this consumer");
  });

  test('consumeBatch(..., { bind }) reads the bound queue too, and acks a batch only after the handler', async (t) => {
    const base = await requireService(t, 'rabbitmq');
    if (!base) return;
    const { ch, queues } = await admin(t, base);
    const queue = uniqueName('batchq');
    await ch.assertQueue(queue, { durable: false });
    queues.push(queue);
    const a = app({ url: base });
    t.after(() => a.close());
    const batches: string[][] = [];
    await a.consumeBatch(
      bytesMessage('row', { topic: uniqueName('rows') }),
      { channel: 'sink', bind: { topic: `/${queue}` }, batch: { maxSize: 10, maxWaitMs: 50 } },
      async (items) => {
        batches.push(items.map((v) => Buffer.from(v).toString()));
      },
    );
    for (let n = 0; n < 25; n++) ch.sendToQueue(queue, Buffer.from(`r${n}`));
    await waitFor(() => batches.flat().length >= 25, '25 rows in batches', 10_000);
    assert.deepEqual(batches.flat(), Array.from({ length: 25 }, (_, n) => `r${n}`));
    await waitFor(async () => (await ch.checkQueue(queue)).messageCount === 0, 'the queue drained (acked)');
  });

  test('the runtime and the transport refuse a malformed bind before subscribing', async (t) => {
    const base = await requireService(t, 'rabbitmq');
    if (!base) return;
    const a = app({ url: base });
    t.after(() => a.close());
    await assert.rejects(
      a.consume(bytesMessage('x', { topic: uniqueName('t') }), { channel: 'c', bind: { channel: '' } }, () => {}),
      (e: Err) => e.code === 'ERR_BAD_OPTIONS' && e.message.includes('bind.channel'),
    );
    await assert.rejects(
      a.consume(bytesMessage('x', { topic: uniqueName('t') }), { channel: 'c', bind: { topic: 'no-slash' } }, () => {}),
      (e: Err) => e.code === 'ERR_BAD_OPTIONS' && e.message.includes('bind.topic'),
    );
    await assert.rejects(
      a.consume(bytesMessage('x', { topic: uniqueName('t') }), { channel: 'c', bind: { channel: uniqueName('absent') } }, () => {}),
      (e: Err) => e.code === 'ERR_NOT_FOUND' && e.message.includes('absent'),
    );
  });
});
