/**
 * @platformatic/kafka 1.x, the last line whose engines include Node 20 (>= 20.19.4; 2.x needs
 * >= 22.22): `producer.send` per batch with acks=-1; a group consumer's stream ('data' events,
 * record by record), autocommit off and each partition's latest `message.commit()` on the
 * interval. Its 1.x line speaks only the protocol versions of Kafka >= 3.5 (ApiVersions v3,
 * Fetch v12, JoinGroup v6, ...), so against an older broker it fails at its first request; that
 * failure is what `unavailable` reports.
 */
import type { Admin as AdminType, Message } from '@platformatic/kafka';
import { type ClientFigures, ConsumeClock, ID_HEADER, IntervalCommitter, type KafkaCandidate, type KafkaWork, packageVersion, publishPipelined, reason, recordId, TYPE_HEADER, TYPE_VALUE } from './work.ts';

type Module = typeof import('@platformatic/kafka');

const version = packageVersion('@platformatic/kafka');

export const platformatic: KafkaCandidate = {
  label: `@platformatic/kafka ${version}`,
  async unavailable(brokers) {
    const mod: Module = await import('@platformatic/kafka');
    const admin: AdminType = new mod.Admin({ clientId: 'bench-platformatic-probe', bootstrapBrokers: brokers, retries: 0 });
    try {
      await admin.metadata({ topics: [] });
      return undefined;
    } catch (err) {
      return `cannot talk to this broker: ${reason(err)}`;
    } finally {
      await admin.close().catch(() => undefined);
    }
  },
  run: runPlatformatic,
};

async function runPlatformatic(work: KafkaWork): Promise<ClientFigures> {
  const mod: Module = await import('@platformatic/kafka');
  const producer = new mod.Producer({
    clientId: 'bench-platformatic',
    bootstrapBrokers: work.brokers,
    acks: mod.ProduceAcks.ALL,
    autocreateTopics: false,
    // Header keys of a plain object are strings: its default serializers take only Buffers.
    serializers: { headerKey: mod.stringSerializer, headerValue: mod.stringSerializer },
  });
  let published: { perSecond: number; perCpuSecond: number };
  try {
    published = await publishPipelined(work, (from, n) =>
      producer.send({
        messages: Array.from({ length: n }, (_, i) => ({
          topic: work.topic,
          value: work.body,
          headers: { [ID_HEADER]: recordId(work.topic, from + i), [TYPE_HEADER]: TYPE_VALUE },
        })),
      }),
    );
  } finally {
    await producer.close();
  }

  const consumer = new mod.Consumer({
    clientId: 'bench-platformatic',
    groupId: work.group,
    bootstrapBrokers: work.brokers,
    maxWaitTime: 500,
    deserializers: { headerKey: mod.stringDeserializer, headerValue: mod.stringDeserializer },
  });
  const clock = new ConsumeClock(work.count);
  const committer = new IntervalCommitter<Message<Buffer, Buffer, string, string>>(work.commitIntervalMs, async (latest) => {
    await Promise.all(latest.map((m) => m.commit()));
  });
  try {
    const stream = await consumer.consume({
      topics: [work.topic],
      mode: mod.MessagesStreamModes.COMMITTED,
      fallbackMode: mod.MessagesStreamFallbackModes.EARLIEST,
      autocommit: false,
    });
    stream.on('data', (message: Message<Buffer, Buffer, string, string>) => {
      clock.seen(message.headers.get(ID_HEADER));
      committer.mark(message.topic, message.partition, message);
    });
    // A failing stream emits 'error' (unhandled, it would end the process): fail the run instead.
    await new Promise<void>((resolve, reject) => {
      stream.once('error', reject);
      clock.done.then(resolve);
    });
    const consumePerSecond = clock.perSecond();
    const consumePerCpuSecond = clock.perCpuSecond();
    await committer.stop();
    await stream.close();
    return { publishPerSecond: published.perSecond, publishPerCpuSecond: published.perCpuSecond, consumePerSecond, consumePerCpuSecond };
  } finally {
    await consumer.close(true);
  }
}
