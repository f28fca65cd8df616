/**
 * kafkajs (Conveyor's client today): `producer.send` per batch with acks=-1; a group consumer
 * with `eachMessage` (record by record, as Conveyor's adapter uses it) or `eachBatch` (its faster
 * path: one call per fetched batch), autoCommit off and `commitOffsets` on the interval; or
 * `eachBatch` under the prototype of kafka://'s consume loop (batch-subscription.ts: a delivery
 * per record, acked, watermark commits), to show what the adapter would keep of eachBatch's gain.
 */
import { Kafka, logLevel } from 'kafkajs';
import { BatchSubscription } from './batch-subscription.ts';
import { type ClientFigures, ConsumeClock, ID_HEADER, IntervalCommitter, type KafkaCandidate, type KafkaWork, recordId, TYPE_HEADER, TYPE_VALUE, packageVersion, publishPipelined } from './work.ts';

const version = packageVersion('kafkajs');

export const kafkajs: KafkaCandidate = {
  label: `kafkajs ${version}`,
  async unavailable() {
    return undefined;
  },
  run: (work) => runKafkajs(work),
};

export const kafkajsEachBatch: KafkaCandidate = {
  label: `kafkajs ${version} (eachBatch)`,
  async unavailable() {
    return undefined;
  },
  run: (work) => runKafkajs(work, 'batch'),
};

export const kafkajsDeliveries: KafkaCandidate = {
  label: `kafkajs ${version} (eachBatch → kafka:// deliveries, prototype)`,
  async unavailable() {
    return undefined;
  },
  run: (work) => runKafkajs(work, 'deliveries'),
};

export async function runKafkajs(work: KafkaWork, consume: 'message' | 'batch' | 'deliveries' = 'message'): Promise<ClientFigures> {
  const kafka = new Kafka({ clientId: 'bench-kafkajs', brokers: work.brokers, logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  let published: { perSecond: number; perCpuSecond: number };
  try {
    published = await publishPipelined(work, (from, n) =>
      producer.send({
        topic: work.topic,
        acks: -1,
        messages: Array.from({ length: n }, (_, i) => ({
          value: work.body,
          headers: { [ID_HEADER]: recordId(work.topic, from + i), [TYPE_HEADER]: TYPE_VALUE },
        })),
      }),
    );
  } finally {
    await producer.disconnect();
  }

  const consumer = kafka.consumer({ groupId: work.group, maxWaitTimeInMs: 500 });
  const clock = new ConsumeClock(work.count);
  const committer = new IntervalCommitter<{ topic: string; partition: number; offset: string }>(work.commitIntervalMs, (offsets) =>
    consumer.commitOffsets(offsets),
  );
  let stopSubscription: (() => Promise<void>) | undefined;
  let failure: unknown;
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [work.topic], fromBeginning: true });
    if (consume === 'message') {
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ topic, partition, message }) => {
          clock.seen(message.headers?.[ID_HEADER]?.toString());
          committer.mark(topic, partition, { topic, partition, offset: String(Number(message.offset) + 1) });
        },
      });
    } else if (consume === 'batch') {
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          for (const message of batch.messages) clock.seen(message.headers?.[ID_HEADER]?.toString());
          const { topic, partition } = batch;
          committer.mark(topic, partition, { topic, partition, offset: String(Number(batch.lastOffset()) + 1) });
        },
      });
    } else {
      const sub = new BatchSubscription(
        consumer,
        1000,
        work.commitIntervalMs,
        (d) => {
          d.ack();
          clock.seen(d.headers[TYPE_HEADER] === TYPE_VALUE ? d.id : undefined);
        },
        (err) => (failure ??= err),
      );
      stopSubscription = () => sub.stop();
      await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: sub.eachBatch });
    }
    await clock.done;
    const consumePerSecond = clock.perSecond();
    const consumePerCpuSecond = clock.perCpuSecond();
    await committer.stop();
    await stopSubscription?.();
    if (failure) throw failure;
    return { publishPerSecond: published.perSecond, publishPerCpuSecond: published.perCpuSecond, consumePerSecond, consumePerCpuSecond };
  } finally {
    await consumer.disconnect();
  }
}
