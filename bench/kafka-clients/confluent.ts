/**
 * @confluentinc/kafka-javascript (librdkafka bindings) through its KafkaJS-compatible API, the one
 * its docs recommend for new code: `producer.send` per batch with acks=-1 (librdkafka batches
 * underneath); a group consumer with `eachMessage` or `eachBatch` (which its docs recommend for
 * throughput), autoCommit off and `commitOffsets` on the interval.
 *
 * It is not a devDependency: its install script downloads a prebuilt binary from GitHub and,
 * failing that, builds librdkafka after downloading zlib, OpenSSL, zstd and curl sources, so on a
 * machine that reaches only the npm registry `npm install` fails, and with it the whole project's
 * install. It is measured when it can be loaded: from node_modules, or from the package folder
 * named by CONFLUENT_KAFKA_JAVASCRIPT (a copy built by hand; docs/decisions.md says how).
 */
import { createRequire } from 'node:module';
import { type ClientFigures, ConsumeClock, ID_HEADER, IntervalCommitter, type KafkaCandidate, type KafkaWork, packageVersion, publishPipelined, reason, recordId, TYPE_HEADER, TYPE_VALUE } from './work.ts';

const NAME = '@confluentinc/kafka-javascript';

/** The part of its KafkaJS-compatible API used here (its types are not installed). */
interface Client {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
}
interface Received {
  offset: string;
  headers?: Record<string, unknown>;
}
interface ConfluentModule {
  KafkaJS: {
    Kafka: new (config: { kafkaJS: { brokers: string[]; clientId: string; logLevel?: number } }) => {
      producer(config: { kafkaJS: { acks: number; allowAutoTopicCreation: boolean } }): Client & {
        send(record: { topic: string; messages: Array<{ value: Buffer; headers: Record<string, string> }> }): Promise<unknown>;
      };
      consumer(config: { kafkaJS: { groupId: string; fromBeginning: boolean; autoCommit: boolean; maxWaitTimeInMs: number } }): Client & {
        subscribe(s: { topics: string[] }): Promise<void>;
        run(r: {
          eachMessage?(p: { topic: string; partition: number; message: Received }): Promise<void>;
          eachBatch?(p: { batch: { topic: string; partition: number; messages: Received[]; lastOffset(): string } }): Promise<void>;
        }): Promise<void>;
        commitOffsets(offsets: Array<{ topic: string; partition: number; offset: string }>): Promise<void>;
      };
    };
    logLevel: { NOTHING: number };
  };
}

let loaded: { mod: ConfluentModule; version: string } | undefined;
let loadError: string | undefined;
try {
  const require = createRequire(import.meta.url);
  const where = process.env.CONFLUENT_KAFKA_JAVASCRIPT ?? NAME;
  loaded = { mod: require(where) as ConfluentModule, version: packageVersion(where) };
} catch (err) {
  loadError = `not installed (npm install fails here: its install script downloads a binary from GitHub; see docs/decisions.md): ${reason(err)}`;
}

const label = [NAME, loaded?.version].filter(Boolean).join(' ');

export const confluent: KafkaCandidate = {
  label,
  async unavailable() {
    return loadError;
  },
  run: (work) => runConfluent(work, 'message'),
};

export const confluentEachBatch: KafkaCandidate = {
  label: `${label} (eachBatch)`,
  async unavailable() {
    return loadError;
  },
  run: (work) => runConfluent(work, 'batch'),
};

function idOf(message: Received): string | undefined {
  const id = message.headers?.[ID_HEADER];
  return id === undefined ? undefined : String(id);
}

async function runConfluent(work: KafkaWork, consume: 'message' | 'batch'): Promise<ClientFigures> {
  const { KafkaJS } = loaded!.mod;
  const kafka = new KafkaJS.Kafka({ kafkaJS: { brokers: work.brokers, clientId: 'bench-confluent', logLevel: KafkaJS.logLevel.NOTHING } });
  const producer = kafka.producer({ kafkaJS: { acks: -1, allowAutoTopicCreation: false } });
  await producer.connect();
  let published: { perSecond: number; perCpuSecond: number };
  try {
    published = await publishPipelined(work, (from, n) =>
      producer.send({
        topic: work.topic,
        messages: Array.from({ length: n }, (_, i) => ({
          value: work.body,
          headers: { [ID_HEADER]: recordId(work.topic, from + i), [TYPE_HEADER]: TYPE_VALUE },
        })),
      }),
    );
  } finally {
    await producer.disconnect();
  }

  const consumer = kafka.consumer({ kafkaJS: { groupId: work.group, fromBeginning: true, autoCommit: false, maxWaitTimeInMs: 500 } });
  const clock = new ConsumeClock(work.count);
  const committer = new IntervalCommitter<{ topic: string; partition: number; offset: string }>(work.commitIntervalMs, (offsets) =>
    consumer.commitOffsets(offsets),
  );
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [work.topic] });
    await consumer.run(
      consume === 'message'
        ? {
            eachMessage: async ({ topic, partition, message }) => {
              clock.seen(idOf(message));
              committer.mark(topic, partition, { topic, partition, offset: String(Number(message.offset) + 1) });
            },
          }
        : {
            eachBatch: async ({ batch }) => {
              for (const message of batch.messages) clock.seen(idOf(message));
              const { topic, partition } = batch;
              committer.mark(topic, partition, { topic, partition, offset: String(Number(batch.lastOffset()) + 1) });
            },
          },
    );
    await clock.done;
    const consumePerSecond = clock.perSecond();
    const consumePerCpuSecond = clock.perCpuSecond();
    await committer.stop();
    return { publishPerSecond: published.perSecond, publishPerCpuSecond: published.perCpuSecond, consumePerSecond, consumePerCpuSecond };
  } finally {
    await consumer.disconnect();
  }
}
