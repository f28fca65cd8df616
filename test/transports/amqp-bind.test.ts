/**
 * amqp:// bound to a topology that exists (`?bind.`): queues consumed as is, publishes to an
 * existing exchange or the default one, bare bodies with `?envelope=false`.
 */
import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import type { Delivery } from '../../src/core/message.ts';
import { parseTransportUrl } from '../../src/core/url.ts';
import { TcpProxy } from '../../src/testing/proxy.ts';
import { AmqpTransport } from '../../src/transports/amqp/index.ts';
import { channelSource, parseAmqpOptions } from '../../src/transports/amqp/options.ts';
import { requireService, uniqueName, waitFor } from '../helpers/index.ts';

type Channel = import('amqplib').Channel;
type GetMessage = import('amqplib').GetMessage;

async function open(t: TestContext, url: string): Promise<AmqpTransport> {
  const transport = await AmqpTransport.connect(parseTransportUrl(url));
  t.after(() => transport.close());
  return transport;
}

/** An admin channel on its own connection; `made` queues and exchanges are deleted when the test ends. */
async function admin(t: TestContext, base: string): Promise<{ ch: Channel; made: { queues: string[]; exchanges: string[] } }> {
  const owner = await AmqpTransport.connect(parseTransportUrl(base));
  const ch = await owner.connection!.createChannel();
  const made = { queues: [] as string[], exchanges: [] as string[] };
  // Registered first, so it runs before the transports the test opens later are closed.
  t.after(async () => {
    const clean = await owner.connection!.createChannel();
    for (const q of made.queues) await clean.deleteQueue(q);
    for (const e of made.exchanges) await clean.deleteExchange(e);
    await clean.close();
    await owner.close();
  });
  return { ch, made };
}

describe('amqp:// bind to existing names', () => {
  test('options: bind.<topic> and bind.<topic>:<channel> leave the client URL; bad ones are reported together', () => {
    const o = parseAmqpOptions(parseTransportUrl('amqp://h?heartbeat=5&bind.mailbox=/mailbox&bind.logs=amq.topic/app.logs&bind.logs:audit=audit-q&envelope=false'));
    assert.equal(o.url, 'amqp://h?heartbeat=5');
    assert.equal(o.envelope, false);
    assert.deepEqual(channelSource(o, 'mailbox', 'any'), { queue: 'mailbox', declare: false });
    assert.deepEqual(channelSource(o, 'logs', 'audit'), { queue: 'audit-q', declare: false });
    assert.deepEqual(channelSource(o, 'logs', 'other'), { queue: 'logs:other', declare: true, exchange: { exchange: 'amq.topic', routingKey: 'app.logs' } });
    assert.deepEqual(channelSource(o, 'plain', 'c'), { queue: 'plain:c', declare: true });
    assert.throws(
      () => parseAmqpOptions(parseTransportUrl('amqp://h?bind.a=noslash&bind.b=/&bind.=x&bind.c:=q&bind.d:e=&envelope=maybe')),
      (e: Error & { code?: string }) =>
        e.code === 'ERR_BAD_OPTIONS' && ['bind.a', 'bind.b', 'bind.:', 'bind.c:', 'bind.d:e', 'envelope'].every((k) => e.message.includes(k)),
    );
  });

  test('a queue declared durable:false with arguments is consumed as is; nack retries go back to it', async (t) => {
    const base = await requireService(t, 'rabbitmq');
    if (!base) return;
    const { ch, made } = await admin(t, base);
    const queue = uniqueName('foreign');
    // As pika's queue_declare does (durable false), plus an argument Conveyor would not know.
    await ch.assertQueue(queue, { durable: false, arguments: { 'x-max-length': 1000 } });
    made.queues.push(queue, `${queue}.retry.64`);
    const topic = uniqueName('t');
    const transport = await open(t, `${base}?bind.${topic}:work=${queue}`);
    const seen: Delivery[] = [];
    await transport.subscribe(topic, 'work', { maxInFlight: 5 }, (d) => {
      seen.push(d);
      if (d.attempts < 2) d.nack(10);
      else d.ack();
    });
    ch.sendToQueue(queue, Buffer.from('hello')); // no properties at all
    await waitFor(() => seen.length === 2, 'the body, then its retry', 10_000);
    assert.deepEqual(
      seen.map((d) => [Buffer.from(d.body).toString(), d.attempts, d.headers['content-type']]),
      [
        ['hello', 1, undefined],
        ['hello', 2, undefined],
      ],
    );
    assert.equal(seen[1]!.id, seen[0]!.id, 'the retry keeps the id');
    await waitFor(async () => (await ch.checkQueue(queue)).messageCount === 0, 'the queue drained');
  });

  test('envelope=false publishes the bare body through the default exchange; a missing queue is ERR_NOT_FOUND', async (t) => {
    const base = await requireService(t, 'rabbitmq');
    if (!base) return;
    const { ch, made } = await admin(t, base);
    const queue = uniqueName('mailbox');
    await ch.assertQueue(queue, { durable: false });
    made.queues.push(queue);
    const topic = uniqueName('t');
    const missing = uniqueName('missing');
    const transport = await open(t, `${base}?bind.${topic}=/${queue}&bind.${missing}=/${missing}&envelope=false`);
    await transport.publish(topic, [{ id: 'abcdabcdabcdabcd', body: new TextEncoder().encode('bare'), headers: { 'content-type': 'text/plain', 'conveyor-version': '1' } }]);
    const got = (await waitFor(() => ch.get(queue, { noAck: true }), 'the message in the queue')) as GetMessage;
    assert.equal(got.content.toString(), 'bare');
    assert.deepEqual(got.properties.headers ?? {}, {}, 'no headers (amqplib may send an empty table)');
    assert.equal(got.properties.contentType, undefined);
    assert.equal(got.properties.messageId, undefined);
    await assert.rejects(transport.publish(missing, [{ body: new Uint8Array([1]) }]), (e: Error & { code?: string }) => e.code === 'ERR_NOT_FOUND' && e.message.includes(missing));
    await assert.rejects(
      transport.subscribe(missing, 'c', { maxInFlight: 1 }, () => {}),
      (e: Error & { code?: string }) => e.code === 'ERR_NOT_FOUND' && e.message.includes(missing),
    );
    // The publisher survived the failed checks.
    await transport.publish(topic, [{ body: new TextEncoder().encode('again') }]);
    const again = (await waitFor(() => ch.get(queue, { noAck: true }), 'the second message')) as GetMessage;
    assert.equal(again.content.toString(), 'again');
  });

  test('a topic bound to an existing direct exchange + routing key: each channel gets its own bound queue', async (t) => {
    const base = await requireService(t, 'rabbitmq');
    if (!base) return;
    const { ch, made } = await admin(t, base);
    const exchange = uniqueName('ex');
    await ch.assertExchange(exchange, 'direct', { durable: false, autoDelete: false });
    made.exchanges.push(exchange);
    const topic = uniqueName('t');
    made.queues.push(`${topic}:a`, `${topic}:b`);
    const transport = await open(t, `${base}?bind.${topic}=${exchange}/orders.eu`);
    const got: Record<string, string[]> = { a: [], b: [] };
    for (const c of ['a', 'b'] as const) {
      await transport.subscribe(topic, c, { maxInFlight: 5 }, (d) => {
        got[c]!.push(Buffer.from(d.body).toString());
        d.ack();
      });
    }
    await transport.publish(topic, [{ body: new TextEncoder().encode('one') }]);
    ch.publish(exchange, 'orders.us', Buffer.from('not ours')); // another routing key: not routed to us
    ch.publish(exchange, 'orders.eu', Buffer.from('two'));
    await waitFor(() => got.a!.length === 2 && got.b!.length === 2, 'both channels, both messages', 10_000);
    assert.deepEqual(got, { a: ['one', 'two'], b: ['one', 'two'] });
    const missing = await open(t, `${base}?bind.${topic}=${uniqueName('noex')}/k`);
    await assert.rejects(missing.publish(topic, [{ body: new Uint8Array([1]) }]), (e: Error & { code?: string }) => e.code === 'ERR_NOT_FOUND');
  });

  test('a bound queue is checked again after a reconnect; unacked messages come back, none lost', async (t) => {
    const base = await requireService(t, 'rabbitmq');
    if (!base) return;
    const { ch, made } = await admin(t, base);
    const queue = uniqueName('foreign');
    await ch.assertQueue(queue, { durable: false });
    made.queues.push(queue);
    const proxy = await TcpProxy.start('127.0.0.1', 5672);
    const topic = uniqueName('t');
    const transport = await open(t, `amqp://guest:guest@127.0.0.1:${proxy.port}?reconnectMinMs=50&bind.${topic}=/${queue}`);
    t.after(() => proxy.close()); // after the transport's close (hooks run in the order registered)
    const acked = new Set<string>();
    let held = 0;
    await transport.subscribe(topic, 'c', { maxInFlight: 10 }, (d) => {
      const body = Buffer.from(d.body).toString();
      // Hold the first five unacked across the drop: the broker must hand them out again.
      if (held < 5 && d.attempts === 1) {
        held++;
        return;
      }
      acked.add(body);
      d.ack();
    });
    const bodies = Array.from({ length: 20 }, (_, n) => `m${n}`);
    await transport.publish(topic, bodies.slice(0, 10).map((b) => ({ body: new TextEncoder().encode(b) })));
    await waitFor(() => held === 5 && acked.size === 5, 'five held, five acked', 10_000);
    proxy.dropAll();
    // A publish racing the drop may be rejected (retryable, per the Transport contract): send it again.
    for (;;) {
      const sent = await transport.publish(topic, bodies.slice(10).map((b) => ({ body: new TextEncoder().encode(b) }))).then(
        () => true,
        (e: Error & { retryable?: boolean }) => {
          if (!e.retryable) throw e;
          return false;
        },
      );
      if (sent) break;
    }
    await waitFor(() => acked.size === 20, 'all twenty after the reconnect', 15_000);
    assert.deepEqual([...acked].sort(), [...bodies].sort());
  });
});
