/**
 * kafkajs (Conveyor's client today): `producer.send` per batch with acks=-1; a group consumer
 * with `eachMessage` (record by record, as Conveyor's adapter uses it) or `eachBatch` (its faster
 * path: one call per fetched batch), autoCommit off and `commitOffsets` on the interval.
 */
import { Kafka, logLevel } from 'kafkajs';
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

export async function runKafkajs(work: KafkaWork, consume: 'message' | 'batch' = 'message'): Promise<ClientFigures> {
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
    } else {
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          for (const message of batch.messages) clock.seen(message.headers?.[ID_HEADER]?.toString());
          const { topic, partition } = batch;
          committer.mark(topic, partition, { topic, partition, offset: String(Number(batch.lastOffset()) + 1) });
        },
      });
    }
    await clock.done;
    const consumePerSecond = clock.perSecond();
    const consumePerCpuSecond = clock.perCpuSecond();
    await committer.stop();
    return { publishPerSecond: published.perSecond, publishPerCpuSecond: published.perCpuSecond, consumePerSecond, consumePerCpuSecond };
  } finally {
    await consumer.disconnect();
  }
}
