/**
 * Conveyor's kafka:// against raw kafkajs doing the same work, side by side in one run: publish
 * N records of 200 B with two headers in batches of 100 (acks = all, one request per batch, each
 * awaited), then consume them in a consumer group that reads the headers and commits offsets
 * every second.
 *
 * The consume clock follows one rule on both sides (kafka-clients/work.ts): it runs from the first
 * record delivered once all N are in the topic and the group is assigned, to the last, over the
 * records after that first one. Conveyor's channel must exist before publishing (a channel sees
 * what is published after its first subscribe), so it is subscribed and left first, then joined
 * again after publishing, as raw kafkajs joins after publishing. So neither side's group join
 * (3 s on the mock) is timed — the old 7.3× compared Conveyor's consume against the raw client's
 * join plus consume (issue 15, finding 5) — and neither fetches while publishing (a paused member
 * used to, which flattered Conveyor's consume and burdened its publish).
 * Each phase is also given per second of the process' CPU (Conveyor's cost per record against the
 * raw client's, which neighbours on a shared machine disturb far less than wall-clock rates).
 * After each run both groups' committed offsets are checked to add up to N.
 *
 * Against KAFKA_URL when set, otherwise librdkafka's mock cluster (kcat).
 */
import { connect } from '../src/connect.ts';
import type { OutgoingMessage } from '../src/core/message.ts';
import { groupId, kafkaTopic, retryTopic } from '../src/transports/kafka/options.ts';
import { runKafkajs } from './kafka-clients/kafkajs.ts';
import { ConsumeClock, cpuSeconds, ID_HEADER, recordId, TYPE_HEADER, TYPE_VALUE } from './kafka-clients/work.ts';
import { bookkeeper, startKafkaPeer } from './kafka-peer.ts';
import { save, sideBySide } from './lib.ts';

const N = Number(process.env.KAFKA_BENCH_MESSAGES ?? 20_000);
const RUNS = Number(process.env.KAFKA_BENCH_RUNS ?? 3);
const BATCH = 100;
const CHANNEL = 'c';
const body = Buffer.alloc(200, 7);

const peer = await startKafkaPeer();
const book = await bookkeeper(peer.brokers);
let seq = 0;

async function checkCommitted(who: string, group: string, topic: string): Promise<void> {
  const committed = await book.committed(group, topic);
  if (committed !== N) throw new Error(`${who}: group ${group} committed ${committed} of ${N} records`);
}

async function conveyor(): Promise<number[]> {
  const t = await connect(peer.url);
  const topic = `bench_kafka_${process.pid}_${seq++}`;
  // The channel is made first and left (its start is fixed at the topic's end, as for any new
  // channel), then the records are published, then it is joined again: like raw kafkajs, the
  // consumer joins after publishing, and nothing is fetched while publishing.
  await (await t.subscribe(topic, CHANNEL, { maxInFlight: 1000 }, (d) => d.nack())).close();
  let start = performance.now();
  const cpu = cpuSeconds();
  for (let from = 0; from < N; from += BATCH) {
    const batch: OutgoingMessage[] = Array.from({ length: BATCH }, (_, i) => ({
      body,
      id: recordId(topic, from + i),
      headers: { [TYPE_HEADER]: TYPE_VALUE },
    }));
    await t.publish(topic, batch);
  }
  const pub = N / ((performance.now() - start) / 1000);
  const pubCpu = N / (cpuSeconds() - cpu);
  const clock = new ConsumeClock(N);
  await t.subscribe(topic, CHANNEL, { maxInFlight: 1000 }, (d) => {
    d.ack();
    clock.seen(d.headers[TYPE_HEADER] === TYPE_VALUE ? d.id : undefined);
  });
  await clock.done;
  const con = clock.perSecond();
  const conCpu = clock.perCpuSecond();
  await t.close(); // commits the last acked offsets, then leaves the group
  await checkCommitted('kafka:// conveyor', groupId(topic, CHANNEL), kafkaTopic(topic));
  await Promise.all([book.dropTopic(kafkaTopic(topic)), book.dropTopic(retryTopic(topic, CHANNEL))]);
  return [pub, con, pubCpu, conCpu];
}

async function raw(): Promise<number[]> {
  const topic = `bench_kafka_raw_${process.pid}_${seq++}`;
  const group = `${topic}-c`;
  await book.makeTopic(topic);
  try {
    // One request of 100 records at a time, each awaited: what Conveyor's publish loop above does.
    const f = await runKafkajs({ brokers: peer.brokers, topic, group, count: N, batch: BATCH, window: 1, body, commitIntervalMs: 1000 });
    await checkCommitted('kafkajs raw', group, topic);
    return [f.publishPerSecond, f.consumePerSecond, f.publishPerCpuSecond, f.consumePerCpuSecond];
  } finally {
    await book.dropTopic(topic);
  }
}

try {
  await sideBySide({
    runs: RUNS,
    phases: [
      `publish (batches of 100 with ${ID_HEADER} + 1 header, acks all)`,
      'consume (consumer group, headers read, offsets committed every 1 s; first record → last, no group join)',
      'publish, per second of client CPU',
      'consume, per second of client CPU',
    ],
    raw: { label: 'kafkajs raw', run: raw },
    ours: { label: 'kafka:// conveyor', run: conveyor },
    targetRatio: 0.9,
  });
  save('kafka', `Kafka on ${peer.label}: Conveyor's kafka:// against raw kafkajs, same records and batches, ${N} messages of 200 B per run.`);
} finally {
  await book.close();
  peer.stop();
}
