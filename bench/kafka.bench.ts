/**
 * Conveyor's kafka:// against raw kafkajs doing the same work, side by side: publish batches
 * of 100 × 200 B (acks = all, one send per batch), then consume them through a consumer group
 * committing offsets. Needs a broker: KAFKA_URL=kafka://host:9092. None runs on the
 * development machine, so without it this benchmark says so and records nothing.
 */
import { Kafka } from 'kafkajs';
import { connect } from '../src/connect.ts';
import type { OutgoingMessage } from '../src/core/message.ts';
import { save, sideBySide } from './lib.ts';

const KAFKA_URL = process.env.KAFKA_URL;
const N = Number(process.env.KAFKA_BENCH_MESSAGES ?? 20_000);
const RUNS = Number(process.env.KAFKA_BENCH_RUNS ?? 3);
const BATCH = 100;
const body = Buffer.alloc(200, 7);
let seq = 0;

async function conveyor(): Promise<number[]> {
  const t = await connect(KAFKA_URL!);
  const topic = `bench_kafka_${process.pid}_${seq++}`;
  let got = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const sub = await t.subscribe(topic, 'c', { maxInFlight: 1000 }, (d) => {
    d.ack();
    if (++got === N) done();
  });
  sub.pause();
  const batch: OutgoingMessage[] = Array.from({ length: BATCH }, () => ({ body }));
  let start = performance.now();
  for (let i = 0; i < N; i += BATCH) await t.publish(topic, batch);
  const pub = N / ((performance.now() - start) / 1000);
  start = performance.now();
  sub.resume();
  await finished;
  const con = N / ((performance.now() - start) / 1000);
  await t.close();
  return [pub, con];
}

async function raw(): Promise<number[]> {
  const kafka = new Kafka({ clientId: 'bench-raw', brokers: [new URL(KAFKA_URL!).host] });
  const producer = kafka.producer();
  await producer.connect();
  const topic = `bench_kafka_raw_${process.pid}_${seq++}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic }] });
  let start = performance.now();
  for (let i = 0; i < N; i += BATCH) await producer.send({ topic, acks: -1, messages: Array.from({ length: BATCH }, () => ({ value: body })) });
  const pub = N / ((performance.now() - start) / 1000);
  const consumer = kafka.consumer({ groupId: `${topic}-c` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let got = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  start = performance.now();
  await consumer.run({
    eachMessage: async () => {
      if (++got === N) done();
    },
  });
  await finished;
  const con = N / ((performance.now() - start) / 1000);
  await consumer.disconnect();
  await admin.deleteTopics({ topics: [topic] });
  await admin.disconnect();
  await producer.disconnect();
  return [pub, con];
}

if (!KAFKA_URL) {
  console.log('kafka: no broker (set KAFKA_URL=kafka://host:9092 to run this benchmark); nothing recorded');
} else {
  await sideBySide({
    runs: RUNS,
    phases: ['publish (batches of 100, acks all)', 'consume (consumer group, offsets committed)'],
    raw: { label: 'kafkajs raw', run: raw },
    ours: { label: 'kafka:// conveyor', run: conveyor },
    targetRatio: 0.9,
  });
  save('kafka', `Kafka at ${KAFKA_URL}: Conveyor's kafka:// against raw kafkajs, same batches, ${N} messages of 200 B per run.`);
}
