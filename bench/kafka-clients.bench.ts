/**
 * The Kafka client candidates for kafka:// doing the same work in one run (issue 15, "the client,
 * chosen by measurement"): kafkajs, @platformatic/kafka and @confluentinc/kafka-javascript. Each
 * publishes N records of 200 B with two headers (acks=all, batches of KAFKA_CLIENTS_BATCH with
 * KAFKA_CLIENTS_WINDOW in flight) and a new consumer group reads them with their headers and
 * commits offsets; see kafka-clients/work.ts for the clocks (consume is timed from the first
 * record to the last, so no client's group join is in its figure). Each phase is also given per
 * second of the process' CPU, the figure a loaded shared machine disturbs least. After every run
 * the group's committed offsets are checked to add up to N.
 *
 * kafkajs and confluent run twice per round: consuming record by record (`eachMessage`, the shape
 * Conveyor's adapter has today) and batch by batch (`eachBatch`, each one's fastest path); their
 * publish is the same in both, so those publish rows are extra samples of one code path. A third
 * kafkajs row runs eachBatch under a prototype of kafka://'s consume loop
 * (kafka-clients/batch-subscription.ts): what the adapter would keep of eachBatch's gain.
 *
 * One warm-up run per candidate, then KAFKA_BENCH_RUNS rounds (≥ 3), every candidate once per
 * round in a rotating order. A candidate that cannot run here is reported with the reason.
 * Against KAFKA_URL when set, otherwise librdkafka's mock cluster (kcat). KAFKA_CLIENTS narrows
 * the candidates (label substrings, comma-separated).
 */
import { confluent, confluentEachBatch } from './kafka-clients/confluent.ts';
import { kafkajs, kafkajsDeliveries, kafkajsEachBatch } from './kafka-clients/kafkajs.ts';
import { platformatic } from './kafka-clients/platformatic.ts';
import type { ClientFigures, KafkaCandidate } from './kafka-clients/work.ts';
import { bookkeeper, startKafkaPeer } from './kafka-peer.ts';
import { median, record, save } from './lib.ts';

const N = Number(process.env.KAFKA_BENCH_MESSAGES ?? 20_000);
const ROUNDS = Math.max(3, Number(process.env.KAFKA_BENCH_RUNS ?? 3));
const BATCH = Number(process.env.KAFKA_CLIENTS_BATCH ?? 1000);
const WINDOW = Number(process.env.KAFKA_CLIENTS_WINDOW ?? 4);
const COMMIT_INTERVAL_MS = 1000;
/** KAFKA_CLIENTS=kafkajs,confluent: only the candidates whose label contains one of these. */
const ONLY = (process.env.KAFKA_CLIENTS ?? '').split(',').filter(Boolean);
const body = Buffer.alloc(200, 7);

const peer = await startKafkaPeer();
const book = await bookkeeper(peer.brokers);
let seq = 0;

async function once(candidate: KafkaCandidate): Promise<ClientFigures> {
  const topic = `bench_clients_${process.pid}_${seq++}`;
  const group = `${topic}-g`;
  await book.makeTopic(topic);
  try {
    const figures = await candidate.run({ brokers: peer.brokers, topic, group, count: N, batch: BATCH, window: WINDOW, body, commitIntervalMs: COMMIT_INTERVAL_MS });
    const committed = await book.committed(group, topic);
    if (committed !== N) throw new Error(`${candidate.label}: the group committed ${committed} of ${N} records`);
    return figures;
  } finally {
    await book.dropTopic(topic);
  }
}

function spread(values: number[]): string {
  const m = median(values);
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return `spread ${Math.round(lo).toLocaleString('en-US')}–${Math.round(hi).toLocaleString('en-US')} (−${(((m - lo) / m) * 100).toFixed(0)}%/+${(((hi - m) / m) * 100).toFixed(0)}%)`;
}

try {
  const ready: KafkaCandidate[] = [];
  const notMeasured: string[] = [];
  const all = [kafkajs, kafkajsEachBatch, kafkajsDeliveries, platformatic, confluent, confluentEachBatch];
  for (const c of all.filter((c) => ONLY.length === 0 || ONLY.some((o) => c.label.includes(o)))) {
    const why = await c.unavailable(peer.brokers);
    if (why) {
      notMeasured.push(`${c.label}: ${why}`);
      console.log(`${c.label}: not measured — ${why}`);
    } else ready.push(c);
  }
  const runs = new Map<KafkaCandidate, ClientFigures[]>(ready.map((c) => [c, []]));
  for (const c of ready) await once(c); // warm-up, discarded
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < ready.length; i++) {
      const c = ready[(i + r) % ready.length]!;
      runs.get(c)!.push(await once(c));
    }
  }
  const base = runs.get(kafkajs);
  for (const [phase, pick] of [
    [`publish ${N} × 200 B + 2 headers, acks all, batches of ${BATCH}, ${WINDOW} in flight`, (f: ClientFigures) => f.publishPerSecond],
    ['consume in a new group, headers read, offsets committed every 1 s (first record → last)', (f: ClientFigures) => f.consumePerSecond],
    ['publish, per second of client CPU', (f: ClientFigures) => f.publishPerCpuSecond],
    ['consume, per second of client CPU', (f: ClientFigures) => f.consumePerCpuSecond],
  ] as const) {
    for (const c of ready) {
      const values = runs.get(c)!.map(pick);
      const ratio = base && c !== kafkajs ? `, ${(median(values) / median(base.map(pick))).toFixed(2)}× kafkajs` : '';
      record({ name: `${c.label}: ${phase}`, perSecond: median(values), runs: values, notes: `${spread(values)}${ratio}` });
    }
  }
  save(
    'kafka-clients',
    [
      `Kafka client candidates on ${peer.label}, the same work in one run, interleaved: ${N} records per run, ${ROUNDS} rounds after one warm-up each.`,
      ...(notMeasured.length ? ['', 'Not measured here:', ...notMeasured.map((m) => `- ${m}`)] : []),
    ].join('\n'),
  );
} finally {
  await book.close();
  peer.stop();
}
