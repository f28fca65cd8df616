/**
 * amqp:// against raw amqplib doing the same work, side by side in one run: publish N 100-byte
 * messages in batches of 100 with publisher confirms (every message of a batch confirmed before
 * the next), then consume them with prefetch 100 and one ack per message.
 */
import amqplib from 'amqplib';
import { connect } from '../src/connect.ts';
import type { OutgoingMessage } from '../src/core/message.ts';
import { median, record, repeat, save, sideBySide } from './lib.ts';

const URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const N = Number(process.env.AMQP_BENCH_MESSAGES ?? 20_000);
const BATCH = 100;
const RUNS = Number(process.env.AMQP_BENCH_RUNS ?? 7);
const body = Buffer.alloc(100, 7);
let seq = 0;

async function conveyor(): Promise<number[]> {
  const t = await connect(URL);
  const topic = `bench_amqp_${process.pid}_${seq++}`;
  let got = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const sub = await t.subscribe(topic, 'c', { maxInFlight: BATCH }, (d) => {
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
  const ch = await (t as unknown as { connection: amqplib.ChannelModel }).connection.createChannel();
  await sub.close();
  await ch.deleteQueue(`${topic}:c`);
  await ch.deleteExchange(topic);
  await t.close();
  return [pub, con];
}

async function raw(): Promise<number[]> {
  const conn = await amqplib.connect(URL);
  const pubCh = await conn.createConfirmChannel();
  const topic = `bench_amqp_raw_${process.pid}_${seq++}`;
  await pubCh.assertExchange(topic, 'fanout', { durable: true });
  const q = `${topic}:c`;
  await pubCh.assertQueue(q, { durable: true });
  await pubCh.bindQueue(q, topic, '');
  let start = performance.now();
  for (let i = 0; i < N; i += BATCH) {
    await Promise.all(
      Array.from({ length: BATCH }, () => new Promise<void>((resolve, reject) => {
        pubCh.publish(topic, '', body, { persistent: true, headers: { 'conveyor-attempts': 1 } }, (err) => (err ? reject(err) : resolve()));
      })),
    );
  }
  const pub = N / ((performance.now() - start) / 1000);
  const ch = await conn.createChannel();
  await ch.prefetch(BATCH);
  let got = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  start = performance.now();
  await ch.consume(q, (m) => {
    if (!m) return;
    ch.ack(m);
    if (++got === N) done();
  });
  await finished;
  const con = N / ((performance.now() - start) / 1000);
  await ch.close();
  await pubCh.deleteQueue(q);
  await pubCh.deleteExchange(topic);
  await conn.close();
  return [pub, con];
}

/**
 * The other client considered, @cloudamqp/amqp-client, doing the same raw work: recorded next
 * to amqplib so the choice of client stands on a measurement.
 */
async function cloudamqp(): Promise<number[]> {
  const { AMQPClient } = await import('@cloudamqp/amqp-client');
  const client = new AMQPClient(URL);
  const conn = await client.connect();
  const ch = await conn.channel();
  await ch.confirmSelect();
  const topic = `bench_amqp_cloud_${process.pid}_${seq++}`;
  await ch.exchangeDeclare(topic, 'fanout', { durable: true });
  const q = `${topic}:c`;
  await ch.queueDeclare(q, { durable: true });
  await ch.queueBind(q, topic, '');
  let start = performance.now();
  for (let i = 0; i < N; i += BATCH) {
    await Promise.all(Array.from({ length: BATCH }, () => ch.basicPublish(topic, '', body, { deliveryMode: 2, headers: { 'conveyor-attempts': 1 } })));
  }
  const pub = N / ((performance.now() - start) / 1000);
  const sub = await conn.channel();
  await sub.prefetch(BATCH);
  let got = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  start = performance.now();
  await sub.basicConsume(q, { noAck: false }, (msg) => {
    void msg.ack();
    if (++got === N) done();
  });
  await finished;
  const con = N / ((performance.now() - start) / 1000);
  await ch.queueDelete(q);
  await ch.exchangeDelete(topic);
  await conn.close();
  return [pub, con];
}

await sideBySide({
  runs: RUNS,
  phases: ['publish (confirmed batches of 100)', 'consume (prefetch 100, ack each)'],
  raw: { label: 'amqplib raw', run: raw },
  ours: { label: 'amqp:// conveyor', run: conveyor },
  targetRatio: 0.9,
});
const cloud = await repeat(RUNS, async () => (await cloudamqp())[1]!);
const cloudPub: number[] = [];
for (let i = 0; i < RUNS; i++) cloudPub.push((await cloudamqp())[0]!);
record({ name: '@cloudamqp/amqp-client raw: publish (confirmed batches of 100)', perSecond: median(cloudPub), runs: cloudPub, notes: 'the other client considered' });
record({ name: '@cloudamqp/amqp-client raw: consume (prefetch 100, ack each)', perSecond: median(cloud), runs: cloud, notes: 'the other client considered' });
save('amqp', `RabbitMQ at ${URL.replace(/\/\/.*@/, '//')}: Conveyor's amqp:// against raw amqplib, same batches and ack mode, ${N} messages of 100 B per run.`);
