import assert from 'node:assert/strict';
import { before, describe, type TestContext, test } from 'node:test';
import amqplib from 'amqplib';
import { requireService, uniqueName, waitFor } from '../helpers/index.ts';
import { kafkaSkipReason, kafkaUrl } from '../helpers/kafka-mock.ts';
import { buildDist, exitOf, printed, runExample } from './run-example.ts';

const LINES = ['hello', 'Hello 世界', 'a third line'];

/** The consumer half waits; the producer half reads lines from stdin, as `input()` did; both as the README says. */
async function produceAndConsume(t: TestContext, file: string, [consume, produce]: [string, string], url: string, name: string, ready: RegExp) {
  const consumer = runExample(file, [consume, url, name]);
  t.after(async () => {
    if (!consumer.exited()) consumer.child.kill('SIGKILL');
    await consumer.done;
  });
  await printed(consumer, ready, 20_000);
  const producer = runExample(file, [produce, url, name]);
  producer.child.stdin!.end(`${LINES.join('\n')}\n`);
  assert.equal(await exitOf(producer, 20_000), 0, producer.err());
  await waitFor(() => (consumer.out().match(/Got message: /g)?.length ?? 0) >= LINES.length, 'every line arrived', 15_000, 20);
  for (const line of LINES) assert.ok(consumer.out().includes(`Got message: ${line}\n`), consumer.out());
  consumer.child.kill('SIGINT');
  assert.equal(await exitOf(consumer, 10_000), 0, consumer.err());
  assert.equal(consumer.out().match(/Got message: /g)!.length, LINES.length, 'each line once');
}

describe('examples/basics', { timeout: 90_000 }, () => {
  before(buildDist);

  test('rabbitmq-mailbox.ts: the pika producer and consumer', async (t) => {
    const url = (await requireService(t, 'rabbitmq'))!;
    const queue = uniqueName('mailbox');
    t.after(async () => {
      const conn = await amqplib.connect(url);
      const ch = await conn.createChannel();
      await ch.deleteQueue(`${queue}:mailbox`);
      await ch.deleteExchange(queue);
      await conn.close();
    });
    await produceAndConsume(t, 'examples/basics/rabbitmq-mailbox.ts', ['consume', 'produce'], url, queue, /Waiting for messages/);
  });

  test('redis-chatroom.ts: the redis-py publisher and subscriber (Pub/Sub: nothing left behind)', async (t) => {
    const url = (await requireService(t, 'redis'))!;
    await produceAndConsume(t, 'examples/basics/redis-chatroom.ts', ['subscribe', 'publish'], url, uniqueName('chatroom'), /Listening on/);
  });

  test('kafka-datascience.ts: the kafka-python3 producer and consumer', { skip: kafkaSkipReason() }, async (t) => {
    await produceAndConsume(t, 'examples/basics/kafka-datascience.ts', ['consume', 'produce'], await kafkaUrl(), uniqueName('datascience'), /Consuming/);
  });
});
