import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import { ConveyorError } from '../../src/core/errors.ts';
import type { Delivery } from '../../src/core/message.ts';
import { parseTransportUrl } from '../../src/core/url.ts';
import { TcpProxy } from '../../src/testing/proxy.ts';
import { AmqpTransport } from '../../src/transports/amqp/index.ts';
import { parseAmqpOptions } from '../../src/transports/amqp/options.ts';
import { requireService, uniqueName, waitFor } from '../helpers/index.ts';

/** Deletes what a test declared, on a connection of its own (the test's transports are closed by then). */
function cleanup(t: TestContext, topic: string, queues: string[]): void {
  t.after(async () => {
    const admin = await AmqpTransport.connect(parseTransportUrl('amqp://guest:guest@127.0.0.1:5672'));
    const ch = await admin.connection!.createChannel();
    for (const queue of queues) await ch.deleteQueue(queue);
    await ch.deleteExchange(topic);
    await ch.close();
    await admin.close();
  });
}

async function open(t: TestContext, url: string): Promise<AmqpTransport> {
  const transport = await AmqpTransport.connect(parseTransportUrl(url));
  t.after(() => transport.close());
  return transport;
}

/** For each refused attempt, how many attempts (itself included) arrived within ±windowMs of it. */
function crowding(times: number[], windowMs: number): number[] {
  return times.map((at) => times.filter((other) => Math.abs(other - at) <= windowMs).length);
}

describe('amqp:// reconnect (amqplib recovery, with jitter)', () => {
  test('clients cut at once come back spread out, not in lock-step, and then publish and consume', async (t) => {
    if (!(await requireService(t, 'rabbitmq'))) return;
    const proxy = await TcpProxy.start('127.0.0.1', 5672);
    t.after(() => proxy.close());
    const clients = 6;
    const url = `amqp://guest:guest@127.0.0.1:${proxy.port}?reconnectMinMs=100&reconnectMaxMs=800`;
    const transports = await Promise.all(Array.from({ length: clients }, () => open(t, url)));
    const topic = uniqueName('amqprec');
    cleanup(t, topic, [`${topic}:c`]);
    const seen: string[] = [];
    await transports[0]!.subscribe(topic, 'c', { maxInFlight: 10 }, (d: Delivery) => {
      seen.push(d.id);
      d.ack();
    });

    proxy.refuse(true);
    proxy.dropAll();
    await new Promise((r) => setTimeout(r, 2500));
    const refused = [...proxy.refusedAt];
    proxy.refuse(false);
    // Backoff 100, 200, 400, 800 ms: some 4-5 attempts each. In lock-step (the hand-made
    // doubling before amqplib's recovery) every attempt lands with the other five.
    const crowd = crowding(refused, 15).sort((a, b) => a - b);
    const median = crowd[Math.floor(crowd.length / 2)]!;
    console.log(`# ${refused.length} refused reconnects from ${clients} clients; attempts within ±15 ms of each: median ${median}, max ${crowd.at(-1)}`);
    assert.ok(refused.length >= clients * 3, `only ${refused.length} reconnect attempts in 2.5 s`);
    assert.ok(median <= 3, `reconnects in lock-step: median ${median} of ${clients} within ±15 ms`);

    // Every client is back: each publishes (the publish waits for the reconnect), the subscription consumes again.
    await Promise.all(transports.map((tr, i) => tr.publish(topic, [{ id: `after-${i}`, body: new Uint8Array([i]) }])));
    await waitFor(() => seen.length >= clients, 'every client publishing after the reconnect', 10_000);
    assert.deepEqual(new Set(seen), new Set(transports.map((_, i) => `after-${i}`)));
  });

  test('reconnectJitter is validated with the other options', () => {
    assert.equal(parseAmqpOptions(parseTransportUrl('amqp://h')).reconnectJitter, 0.5);
    assert.equal(parseAmqpOptions(parseTransportUrl('amqp://h?reconnectJitter=0')).reconnectJitter, 0);
    assert.throws(
      () => parseAmqpOptions(parseTransportUrl('amqp://h?reconnectJitter=2&queueType=lazy')),
      (e: Error) => e instanceof ConveyorError && e.code === 'ERR_BAD_OPTIONS' && /reconnectJitter/.test(e.message) && /queueType/.test(e.message),
    );
    assert.equal(parseAmqpOptions(parseTransportUrl('amqp://h?reconnectJitter=0.3&queueType=quorum')).url, 'amqp://h', 'Conveyor keys leave the client URL');
  });
});

describe('amqp:// ?queueType=quorum', () => {
  test('channel queues are quorum queues; messages, delayed retries and ephemeral channels work', async (t) => {
    if (!(await requireService(t, 'rabbitmq'))) return;
    const topic = uniqueName('amqpq');
    cleanup(t, topic, [`${topic}:c`, `${topic}:c.retry.64`]);
    const transport = await open(t, 'amqp://guest:guest@127.0.0.1:5672?queueType=quorum');
    assert.equal(transport.options.queueType, 'quorum');
    const seen: Delivery[] = [];
    await transport.subscribe(topic, 'c', { maxInFlight: 5 }, (d) => {
      seen.push(d);
      if (d.attempts < 2) d.nack(10);
      else d.ack();
    });
    const ephemeral: Delivery[] = [];
    await transport.subscribe(topic, 'peek#ephemeral', { maxInFlight: 5 }, (d) => {
      ephemeral.push(d);
      d.ack();
    });

    // Asserting with the same x-queue-type succeeds only if the queue is a quorum queue: RabbitMQ
    // answers PRECONDITION_FAILED (inequivalent arg 'x-queue-type') for a classic one.
    const probe = await transport.connection!.createChannel();
    probe.on('error', () => {});
    await probe.assertQueue(`${topic}:c`, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await probe.close();

    await transport.publish(topic, [{ id: 'q1', body: new Uint8Array([1]) }]);
    await waitFor(() => seen.length === 2 && ephemeral.length === 1, 'a retried delivery and the ephemeral copy', 10_000);
    assert.deepEqual(seen.map((d) => [d.id, d.attempts]), [['q1', 1], ['q1', 2]]);
  });

  test('a channel whose queue exists as classic fails the subscribe, naming the mismatch', async (t) => {
    if (!(await requireService(t, 'rabbitmq'))) return;
    const topic = uniqueName('amqpq');
    cleanup(t, topic, [`${topic}:c`]);
    const classic = await open(t, 'amqp://guest:guest@127.0.0.1:5672');
    const sub = await classic.subscribe(topic, 'c', { maxInFlight: 1 }, (d) => d.ack());
    await sub.close();
    const quorum = await open(t, 'amqp://guest:guest@127.0.0.1:5672?queueType=quorum');
    await assert.rejects(quorum.subscribe(topic, 'c', { maxInFlight: 1 }, (d) => d.ack()), /x-queue-type|PRECONDITION/i);
  });
});
