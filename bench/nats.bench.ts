/**
 * Conveyor's nats:// transport against the raw @nats-io/jetstream client doing the same work,
 * side by side in one run against the NATS server on 127.0.0.1:4222:
 * - publish: batches of 100 messages of 200 B, each batch's PubAcks awaited together;
 * - consume: a backlog read by a durable pull consumer (explicit ack, max_ack_pending 1000),
 *   one ack per message.
 * The figure that matters is the ratio conveyor / raw (target ≥ 0.9). For scale: Watermill
 * reports 50k/s publish and 35k/s consume for JetStream on 16 cores.
 *
 * BENCH_MESSAGES (default 20000) and BENCH_RUNS (default 3) keep it short on a shared machine.
 */
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { parseTransportUrl } from '../src/core/url.ts';
import { NatsTransport } from '../src/transports/nats/index.ts';
import { streamName } from '../src/transports/nats/options.ts';
import { median, record, repeat, save } from './lib.ts';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 20_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const BATCH = 100;
const IN_FLIGHT = 1000;
const BODY = new Uint8Array(200).fill(0x61);
const URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

const nc = await connect({ servers: URL.replace('nats://', '') });
const jsm = await jetstreamManager(nc);
let seq = 0;
const topic = () => `bench_${process.pid}_${seq++}`;

interface Side {
  publish(topic: string): Promise<number>;
  consume(topic: string): Promise<number>;
}

const conveyor: Side = {
  async publish(t) {
    const tr = await NatsTransport.connect(parseTransportUrl(URL));
    // The channel exists before publishing (interest retention keeps messages only for it).
    const sub = await tr.subscribe(t, 'ch', { maxInFlight: IN_FLIGHT }, () => {});
    await sub.close();
    const start = performance.now();
    for (let sent = 0; sent < MESSAGES; sent += BATCH) {
      const batch = [];
      for (let i = 0; i < BATCH; i++) batch.push({ body: BODY, id: `${t}-${sent + i}` });
      await tr.publish(t, batch);
    }
    const rate = MESSAGES / ((performance.now() - start) / 1000);
    await tr.close();
    return rate;
  },
  async consume(t) {
    const tr = await NatsTransport.connect(parseTransportUrl(URL));
    let n = 0;
    let start = 0;
    let done!: (rate: number) => void;
    const finished = new Promise<number>((r) => (done = r));
    const sub = await tr.subscribe(t, 'ch', { maxInFlight: IN_FLIGHT }, (d) => {
      if (n === 0) start = performance.now();
      d.ack();
      if (++n === MESSAGES) done(MESSAGES / ((performance.now() - start) / 1000));
    });
    const rate = await finished;
    await sub.close();
    await tr.close();
    return rate;
  },
};

/** The same work with the client alone: stream and consumer made as the transport makes them. */
const raw: Side = {
  async publish(t) {
    const name = `RAW_${t}`;
    await jsm.streams.add({ name, subjects: [`raw.${t}`], storage: StorageType.File, retention: RetentionPolicy.Interest });
    await jsm.consumers.add(name, {
      durable_name: 'ch',
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.New,
      max_ack_pending: IN_FLIGHT,
    });
    const js = jetstream(nc);
    const start = performance.now();
    for (let sent = 0; sent < MESSAGES; sent += BATCH) {
      const acks = [];
      for (let i = 0; i < BATCH; i++) acks.push(js.publish(`raw.${t}`, BODY, { msgID: `${t}-${sent + i}` }));
      await Promise.all(acks);
    }
    return MESSAGES / ((performance.now() - start) / 1000);
  },
  async consume(t) {
    const consumer = await jetstream(nc).consumers.get(`RAW_${t}`, 'ch');
    let n = 0;
    let start = 0;
    let done!: (rate: number) => void;
    const finished = new Promise<number>((r) => (done = r));
    const messages = await consumer.consume({
      max_messages: IN_FLIGHT,
      callback: (m) => {
        if (n === 0) start = performance.now();
        m.ack();
        if (++n === MESSAGES) done(MESSAGES / ((performance.now() - start) / 1000));
      },
    });
    const rate = await finished;
    messages.stop();
    return rate;
  },
};

const pub: Record<string, number[]> = {};
const sub: Record<string, number[]> = {};
let warm = false;
try {
  await repeat(
    RUNS + 1,
    async () => {
      for (const [name, side] of Object.entries({ conveyor, raw })) {
        const t = topic();
        const p = await side.publish(t);
        const c = await side.consume(t);
        if (warm) {
          (pub[name] ??= []).push(p);
          (sub[name] ??= []).push(c);
        }
        await jsm.streams.delete(name === 'raw' ? `RAW_${t}` : streamName({ streamPrefix: 'CONVEYOR_' }, t)).catch(() => undefined);
      }
      warm = true;
      return 0;
    },
    0,
  );
  for (const [label, runs] of [
    [`publish, ${BATCH} per batch, PubAcks awaited`, pub],
    [`consume a backlog, max_ack_pending ${IN_FLIGHT}, ack each`, sub],
  ] as const) {
    const c = median(runs.conveyor!);
    const r = median(runs.raw!);
    record({ name: `${label}: conveyor nats://`, perSecond: c, runs: runs.conveyor!, notes: `ratio to raw ${(c / r).toFixed(2)}` });
    record({ name: `${label}: raw @nats-io/jetstream`, perSecond: r, runs: runs.raw! });
  }
  save('nats', `Conveyor's nats:// vs the raw JetStream client, ${MESSAGES} messages of ${BODY.length} B per run, file storage.`);
} finally {
  await nc.close();
}
