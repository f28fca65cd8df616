/**
 * The seeds' RabbitMQ snippets (test/interop/seeds/rabbitmq_*.py: pika, queue `mailbox`, the
 * default exchange) run as written against the real RabbitMQ, both ways, with a Conveyor app
 * bound to that queue by `?bind.<topic>=/<queue>`. Only the queue's name is substituted, so that
 * runs do not share a queue.
 */
import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import { bytesMessage } from '../../src/core/schema.ts';
import { parseTransportUrl } from '../../src/core/url.ts';
import { app } from '../../src/runtime/app.ts';
import { AmqpTransport } from '../../src/transports/amqp/index.ts';
import { requireService, uniqueName, waitFor } from '../helpers/index.ts';
import { requirePython } from './python.ts';
import { runSeed, text } from './seeds.ts';

const COUNT = 200;

/** An admin connection; the queue is deleted when the test ends (registered first: runs first). */
async function adminFor(t: TestContext, base: string, queue: string) {
  const admin = await AmqpTransport.connect(parseTransportUrl(base));
  const ch = await admin.connection!.createChannel();
  t.after(async () => {
    await ch.deleteQueue(queue).catch(() => undefined);
    await ch.deleteQueue(`${queue}.retry.64`).catch(() => undefined);
    await admin.close();
  });
  return { ch, connection: admin.connection! };
}

describe('seeds: RabbitMQ (pika, queue mailbox through the default exchange)', () => {
  test(`pika's producer.py as written → a Conveyor consumer bound to the queue: ${COUNT}/${COUNT}`, async (t) => {
    const base = await requireService(t, 'rabbitmq');
    if (!base || !requirePython(t)) return;
    const queue = uniqueName('mailbox');
    const { ch } = await adminFor(t, base, queue);
    const producer = runSeed(t, 'rabbitmq_producer.py', 'QUEUE_NAME = "mailbox"', `QUEUE_NAME = ${JSON.stringify(queue)}`);
    for (let n = 0; n < COUNT; n++) producer.child.stdin!.write(`${text(n)}\n`);
    producer.child.stdin!.end();
    // The snippet loops on input() forever: end of input is its only way out (EOFError).
    const { stderr } = await producer.exit;
    assert.match(stderr, /EOFError/);
    assert.doesNotMatch(stderr, /pika\.exceptions/);
    assert.equal((await ch.checkQueue(queue)).messageCount, COUNT, 'pika declared the queue and published into it');

    const topic = uniqueName('mailbox');
    const a = app({ url: `${base}?bind.${topic}=/${queue}` });
    t.after(() => a.close());
    const got: string[] = [];
    await a.consume(bytesMessage('mail', { topic }), { channel: 'seeds', maxInFlight: 50 }, (body) => {
      got.push(Buffer.from(body).toString('utf8'));
    });
    await waitFor(() => got.length >= COUNT, `${COUNT} messages from pika`, 20_000);
    assert.deepEqual(got, Array.from({ length: COUNT }, (_, n) => text(n)));
    await waitFor(async () => (await ch.checkQueue(queue)).messageCount === 0, 'every message acked');
  });

  test(`a Conveyor producer (envelope=false) → pika's consumer.py as written: ${COUNT}/${COUNT}`, async (t) => {
    const base = await requireService(t, 'rabbitmq');
    if (!base || !requirePython(t)) return;
    const queue = uniqueName('mailbox');
    const { connection } = await adminFor(t, base, queue);
    const consumer = runSeed(t, 'rabbitmq_consumer.py', 'QUEUE_NAME = "mailbox"', `QUEUE_NAME = ${JSON.stringify(queue)}`);
    // consumer.py declares the queue itself (durable false) and prints nothing until messages come.
    await waitFor(async () => {
      const probe = await connection.createChannel();
      probe.on('error', () => {});
      const ok = await probe.checkQueue(queue).then((q) => q.consumerCount === 1, () => false);
      await probe.close().catch(() => undefined);
      return ok || consumer.child.exitCode !== null;
    }, 'consumer.py consuming', 20_000);
    assert.equal(consumer.child.exitCode, null, 'consumer.py is running');

    const topic = uniqueName('mailbox');
    const a = app({ url: `${base}?bind.${topic}=/${queue}&envelope=false` });
    t.after(() => a.close());
    const Mail = bytesMessage('mail', { topic });
    for (let n = 0; n < COUNT; n++) await a.publish(Mail, new TextEncoder().encode(text(n)));
    await waitFor(() => consumer.lines.length >= COUNT, `${COUNT} lines from consumer.py`, 20_000);
    assert.deepEqual(consumer.lines, Array.from({ length: COUNT }, (_, n) => `Got message: ${text(n)}`));
  });
});
