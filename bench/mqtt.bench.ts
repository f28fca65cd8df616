/**
 * Conveyor's mqtt:// transport against raw mqtt.js doing the same work, side by side in one run
 * against Mosquitto on 127.0.0.1:1883, QoS 1 throughout:
 * - publish: batches of 100 messages of 200 B, each batch's PUBACKs awaited together;
 * - publish → consume: a shared subscription `$share/ch/<topic>` (receive maximum 100) reads
 *   what one publisher sends in such batches; every message PUBACKed once handled (mqtt.js does
 *   it after its handler, Conveyor when the handler acks). A shared subscription keeps no
 *   backlog, so this case measures the pipeline end to end.
 * The figure that matters is the ratio conveyor / raw (target ≥ 0.9).
 *
 * BENCH_MESSAGES (default 20000) and BENCH_RUNS (default 3) keep it short on a shared machine.
 */
import mqtt from 'mqtt';
import { parseTransportUrl } from '../src/core/url.ts';
import { MqttTransport } from '../src/transports/mqtt/index.ts';
import { median, record, repeat, save } from './lib.ts';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 20_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const BATCH = 100;
const IN_FLIGHT = 100;
const BODY = new Uint8Array(200).fill(0x61);
const URL = process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883';
let seq = 0;
const topic = () => `bench_${process.pid}_${seq++}`;

interface Side {
  publish(topic: string): Promise<number>;
  pipeline(topic: string): Promise<number>;
}

const conveyor: Side = {
  async publish(t) {
    const tr = await MqttTransport.connect(parseTransportUrl(`${URL}?sessionExpirySec=5`));
    const rate = await conveyorPublish(tr, t);
    await tr.close();
    return rate;
  },
  async pipeline(t) {
    const tr = await MqttTransport.connect(parseTransportUrl(`${URL}?sessionExpirySec=5`));
    let n = 0;
    let done!: () => void;
    const received = new Promise<void>((r) => (done = r));
    const sub = await tr.subscribe(t, 'ch', { maxInFlight: IN_FLIGHT }, (d) => {
      d.ack();
      if (++n === MESSAGES) done();
    });
    const start = performance.now();
    await conveyorPublish(tr, t);
    await received;
    const rate = MESSAGES / ((performance.now() - start) / 1000);
    await sub.close();
    await tr.close();
    return rate;
  },
};

async function conveyorPublish(tr: MqttTransport, t: string): Promise<number> {
  const start = performance.now();
  for (let sent = 0; sent < MESSAGES; sent += BATCH) {
    const batch = [];
    for (let i = 0; i < BATCH; i++) batch.push({ body: BODY, id: `${t}-${sent + i}` });
    await tr.publish(t, batch);
  }
  return MESSAGES / ((performance.now() - start) / 1000);
}

/** The same work with mqtt.js alone, the id carried as a user property as Conveyor does. */
const raw: Side = {
  async publish(t) {
    const client = await mqtt.connectAsync(URL, { protocolVersion: 5, clean: true });
    const rate = await rawPublish(client, t);
    await client.endAsync();
    return rate;
  },
  async pipeline(t) {
    const pub = await mqtt.connectAsync(URL, { protocolVersion: 5, clean: true });
    const consumer = await mqtt.connectAsync(URL, { protocolVersion: 5, clean: true, properties: { receiveMaximum: IN_FLIGHT } });
    let n = 0;
    let done!: () => void;
    const received = new Promise<void>((r) => (done = r));
    consumer.on('message', () => {
      if (++n === MESSAGES) done();
    });
    await consumer.subscribeAsync(`$share/ch/${t}`, { qos: 1 });
    const start = performance.now();
    await rawPublish(pub, t);
    await received;
    const rate = MESSAGES / ((performance.now() - start) / 1000);
    await Promise.all([pub.endAsync(), consumer.endAsync()]);
    return rate;
  },
};

async function rawPublish(client: mqtt.MqttClient, t: string): Promise<number> {
  const body = Buffer.from(BODY);
  const start = performance.now();
  for (let sent = 0; sent < MESSAGES; sent += BATCH) {
    const acks = [];
    for (let i = 0; i < BATCH; i++) {
      acks.push(client.publishAsync(t, body, { qos: 1, properties: { userProperties: { 'conveyor-id': `${t}-${sent + i}` } } }));
    }
    await Promise.all(acks);
  }
  return MESSAGES / ((performance.now() - start) / 1000);
}

const pub: Record<string, number[]> = {};
const pipe: Record<string, number[]> = {};
let warm = false;
await repeat(
  RUNS + 1,
  async () => {
    for (const [name, side] of Object.entries({ conveyor, raw })) {
      const p = await side.publish(topic());
      const c = await side.pipeline(topic());
      if (warm) {
        (pub[name] ??= []).push(p);
        (pipe[name] ??= []).push(c);
      }
    }
    warm = true;
    return 0;
  },
  0,
);
for (const [label, runs] of [
  [`publish QoS 1, ${BATCH} per batch, PUBACKs awaited`, pub],
  [`publish → shared-subscription consume, receive maximum ${IN_FLIGHT}`, pipe],
] as const) {
  const c = median(runs.conveyor!);
  const r = median(runs.raw!);
  record({ name: `${label}: conveyor mqtt://`, perSecond: c, runs: runs.conveyor!, notes: `ratio to raw ${(c / r).toFixed(2)}` });
  record({ name: `${label}: raw mqtt.js`, perSecond: r, runs: runs.raw! });
}
save('mqtt', `Conveyor's mqtt:// vs raw mqtt.js 5 against Mosquitto 2.0, ${MESSAGES} messages of ${BODY.length} B per run.`);
