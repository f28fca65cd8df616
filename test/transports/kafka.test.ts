import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import { connect } from '../../src/connect.ts';
import type { ConveyorError } from '../../src/core/errors.ts';
import type { Delivery } from '../../src/core/message.ts';
import { parseTransportUrl } from '../../src/core/url.ts';
import { KafkaTransport } from '../../src/transports/kafka/index.ts';
import { kafkaTopic, parseKafkaOptions, retryTopic } from '../../src/transports/kafka/options.ts';
import { uniqueName, waitFor } from '../helpers/index.ts';

/** No Kafka broker runs on the development machine: broker cases need KAFKA_URL (kafka://host:9092). */
const KAFKA_URL = process.env.KAFKA_URL;
const NO_KAFKA = 'no Kafka broker: set KAFKA_URL';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

describe('kafka:// options', () => {
  test('brokers, SASL, TLS, defaults', () => {
    const o = parseKafkaOptions(parseTransportUrl('kafka://u:p%2F@b1?brokers=b2:9093,b3&sasl=scram-sha-512&ssl=true&partitions=6'));
    assert.deepEqual(o.brokers, ['b1:9092', 'b2:9093', 'b3:9092']);
    assert.deepEqual(o.sasl, { mechanism: 'scram-sha-512', username: 'u', password: 'p/' });
    assert.equal(o.ssl, true);
    assert.equal(o.partitions, 6);
    assert.equal(o.replicationFactor, -1);
    assert.equal(o.commitIntervalMs, 1000);
  });

  test('every bad option is reported at once', () => {
    assert.throws(
      () => parseKafkaOptions(parseTransportUrl('kafka://b1?partitions=0&sasl=gssapi&ssl=yes&x=1&heartbeatIntervalMs=40000')),
      (err: ConveyorError) =>
        err.code === 'ERR_BAD_OPTIONS' &&
        ['partitions', 'sasl', 'ssl', 'x:', 'heartbeatIntervalMs'].every((k) => err.message.includes(k)),
    );
    assert.throws(() => parseKafkaOptions(parseTransportUrl('kafka://b1?sasl=plain')), /needs a user/);
  });

  test('topic names: #ephemeral and the per-channel retry topic', () => {
    assert.equal(kafkaTopic('frames'), 'frames');
    assert.equal(kafkaTopic('tail#ephemeral'), 'tail__ephemeral');
    assert.equal(retryTopic('frames', 'detector'), 'conveyor-retry.detector.frames');
  });

  test('connect() routes kafka:// here (an unreachable broker is then a typed error)', async () => {
    await assert.rejects(connect('kafka://127.0.0.1:1?connectTimeoutMs=200&retries=0'), { code: 'ERR_TRANSPORT' });
  });

  test('an unreachable broker is a typed, retryable error', async () => {
    await assert.rejects(KafkaTransport.connect(parseTransportUrl('kafka://127.0.0.1:1?connectTimeoutMs=200&retries=0')), (err: ConveyorError) => {
      return err.code === 'ERR_TRANSPORT' && err.retryable;
    });
  });
});

describe('kafka:// against a broker', { skip: KAFKA_URL ? false : NO_KAFKA }, () => {
  async function open(t: TestContext): Promise<KafkaTransport> {
    const transport = await KafkaTransport.connect(parseTransportUrl(`${KAFKA_URL}${KAFKA_URL!.includes('?') ? '&' : '?'}partitions=2&commitIntervalMs=100`));
    t.after(() => transport.close());
    return transport;
  }

  test('publish → subscribe, headers and id; fan-out over groups; nack → retry topic, attempts + 1', async (t) => {
    const tr = await open(t);
    const topic = uniqueName('kafka');
    const a: Delivery[] = [];
    const b: Delivery[] = [];
    const subA = await tr.subscribe(topic, 'a', { maxInFlight: 10 }, (d) => {
      a.push(d);
      if (d.attempts === 1 && d.id === 'n') d.nack(100);
      else d.ack();
    });
    const subB = await tr.subscribe(topic, 'b', { maxInFlight: 10 }, (d) => {
      b.push(d);
      d.ack();
    });
    t.after(() => Promise.all([subA.close(), subB.close()]));
    await tr.publish(topic, [
      { id: 'n', body: enc('hello'), headers: { 'x-k': 'v' } },
      { id: 'm', body: enc('world') },
    ]);
    await waitFor(() => a.length === 3 && b.length === 2, 'deliveries', 20_000);
    const first = b.find((d) => d.id === 'n')!;
    assert.equal(dec(first.body), 'hello');
    assert.deepEqual({ ...first.headers }, { 'x-k': 'v' });
    assert.deepEqual(
      a.filter((d) => d.id === 'n').map((d) => d.attempts),
      [1, 2],
    );
  });

  test('maxInFlight bounds unacked records; the commit waits for the contiguous run', async (t) => {
    const tr = await open(t);
    const topic = uniqueName('kafka');
    const held: Delivery[] = [];
    let peak = 0;
    const sub = await tr.subscribe(topic, 'c', { maxInFlight: 3 }, (d) => {
      held.push(d);
      peak = Math.max(peak, held.length);
    });
    t.after(() => sub.close());
    await tr.publish(
      topic,
      Array.from({ length: 9 }, (_, i) => ({ id: `r${i}`, body: enc(String(i)) })),
    );
    let acked = 0;
    while (acked < 9) {
      await waitFor(() => held.length > 0, 'records', 20_000);
      await new Promise((r) => setTimeout(r, 50));
      // Ack newest first: out of order within what is held.
      for (const d of held.splice(0).reverse()) {
        d.ack();
        acked++;
      }
    }
    assert.ok(peak <= 3, `peak ${peak}`);
  });
});
