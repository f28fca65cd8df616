/**
 * The Kafka peer of the kafka benchmarks: KAFKA_URL when set (a real cluster), otherwise
 * librdkafka's mock cluster (3 brokers on 127.0.0.1) hosted by Debian's kcat, as the tests do
 * (test/helpers/kafka-mock.ts, which registers node:test hooks and so cannot be used from a
 * plain process). Also what every side of a kafka benchmark shares outside its timers: making
 * a topic, and checking afterwards that a group committed every record.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { type Kafka, logLevel } from 'kafkajs';
import { KafkaCluster } from '../src/transports/kafka/cluster.ts';
import { TopicMaker } from '../src/transports/kafka/topics.ts';

/** Kafka's API key of DeleteTopics. */
const API_DELETE_TOPICS = 20;
const KCAT = process.env.KCAT ?? '/usr/bin/kcat';

export interface KafkaPeer {
  /** `kafka://first?brokers=second,third`, for Conveyor. */
  url: string;
  /** `host:port` of every bootstrap broker, for the raw clients. */
  brokers: string[];
  /** What the figures were measured against, for the results' intro. */
  label: string;
  stop(): void;
}

export async function startKafkaPeer(): Promise<KafkaPeer> {
  const given = process.env.KAFKA_URL;
  if (given) {
    const u = new URL(given);
    const brokers = [u.host, ...(u.searchParams.get('brokers') ?? '').split(',').filter(Boolean)];
    return { url: given, brokers, label: `the Kafka cluster at ${given}`, stop() {} };
  }
  if (!existsSync(KCAT)) throw new Error(`no KAFKA_URL and no ${KCAT}: apt-get install kcat (librdkafka's mock cluster)`);
  const proc = spawn(KCAT, ['-b', '127.0.0.1:1', '-X', 'test.mock.num.brokers=3', '-q', '-C', '-t', 'keepalive', '-o', 'end'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stop = () => {
    if (proc.exitCode === null) proc.kill('SIGKILL');
  };
  process.once('exit', stop);
  const brokers = await new Promise<string[]>((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`kcat's mock cluster did not start in 10 s: ${err}`)), 10_000);
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (chunk: string) => {
      err += chunk;
      const m = /Mock cluster enabled:.*replaced with ([0-9.:,]+)/.exec(err);
      if (!m) return;
      clearTimeout(timer);
      resolve(m[1]!.split(','));
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`kcat exited (${code}) before its mock cluster started: ${err}`));
    });
  });
  const [first, ...rest] = brokers;
  return {
    url: `kafka://${first}${rest.length ? `?brokers=${rest.join(',')}` : ''}`,
    brokers,
    label: "librdkafka 2.0.2's mock cluster (3 brokers, Debian kcat)",
    stop,
  };
}

/** A kafkajs client for the benchmark's own bookkeeping (never timed). */
export async function bookkeeper(brokers: string[]): Promise<{
  makeTopic(topic: string): Promise<void>;
  committed(group: string, topic: string): Promise<number>;
  dropTopic(topic: string): Promise<void>;
  close(): Promise<void>;
}> {
  const { Kafka: KafkaClass } = await import('kafkajs');
  const kafka: Kafka = new KafkaClass({ clientId: 'bench-bookkeeper', brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  // Conveyor's own topic maker: CreateTopics where the brokers have it, a Metadata request that
  // auto-creates where they do not (the mock) — decided from their ApiVersions answer.
  const cluster = await KafkaCluster.connect(kafka);
  const topics = new TopicMaker(admin, cluster, { partitions: -1, replicationFactor: -1, requestTimeoutMs: 30_000 });
  return {
    makeTopic: (topic) => topics.ensure(topic),
    async committed(group, topic) {
      const [t] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
      return (t?.partitions ?? []).reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
    },
    async dropTopic(topic) {
      // The mock has no DeleteTopics (its topics go when it stops); a real cluster is cleaned up.
      if (!cluster.supports(API_DELETE_TOPICS)) return;
      await admin.deleteTopics({ topics: [topic] }).catch((err) => console.warn(`could not delete bench topic ${topic}: ${err.message}`));
    },
    async close() {
      await Promise.allSettled([admin.disconnect(), cluster.disconnect()]);
    },
  };
}
