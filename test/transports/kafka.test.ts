import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import { connect } from '../../src/connect.ts';
import type { ConveyorError } from '../../src/core/errors.ts';
import type { Delivery } from '../../src/core/message.ts';
import { parseTransportUrl } from '../../src/core/url.ts';
import { KafkaTransport } from '../../src/transports/kafka/index.ts';
import { checkName, groupId, kafkaTopic, parseKafkaOptions, retryTopic, topicName } from '../../src/transports/kafka/options.ts';
import { uniqueName, waitFor } from '../helpers/index.ts';
import { kafkaSkipReason, kafkaUrl, withOptions } from '../helpers/kafka-mock.ts';

/** Broker cases run against KAFKA_URL, or else librdkafka's mock cluster (test/helpers/kafka-mock.ts). */
const SKIP = kafkaSkipReason();

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
    assert.equal(retryTopic('frames', 'detector'), 'conveyor-retry.6.frames.detector');
    assert.equal(retryTopic('tail#ephemeral', 'c#ephemeral'), 'conveyor-retry.15.tail__ephemeral.c__ephemeral');
  });

  test('retry topics never collide: with each other, nor with any topic Conveyor may use', () => {
    // Before (conveyor-retry.<channel>.<topic>): (b.c, a) and (c, a.b) were both conveyor-retry.a.b.c,
    // and a topic of that very name was a third.
    assert.notEqual(retryTopic('b.c', 'a'), retryTopic('c', 'a.b'));
    const names = ['a', 'a.b', 'b', 'b.a', 'a.retry', 'retry', 'c', '1.a', 'a.1'];
    const seen = new Map<string, string>();
    for (const topic of names) {
      for (const channel of names) {
        const r = retryTopic(topic, channel);
        assert.equal(seen.get(r), undefined, `${r} from (${topic}, ${channel}) and ${seen.get(r)}`);
        seen.set(r, `(${topic}, ${channel})`);
        // The retry topic's prefix is reserved: no Conveyor topic can be named like it.
        assert.throws(() => checkName('topic', r), { code: 'ERR_BAD_NAME' });
      }
    }
    // `x#ephemeral` is written x__ephemeral, so a plain name of that form is refused, not merged with it.
    assert.throws(() => checkName('topic', 'x__ephemeral'), { code: 'ERR_BAD_NAME' });
    assert.throws(() => checkName('channel', 'x__ephemeral'), { code: 'ERR_BAD_NAME' });
    checkName('topic', 'x#ephemeral');
    checkName('channel', 'conveyor-retry.ok');
  });

  test('bind.<topic>= and bind.<topic>:<channel>=, envelope: read, and every bad one reported', () => {
    const o = parseKafkaOptions(parseTransportUrl('kafka://b1?bind.events=datascience&bind.events:archive=consumers&envelope=false'));
    assert.equal(o.envelope, false);
    assert.equal(topicName(o, 'events'), 'datascience');
    assert.equal(topicName(o, 'other'), 'other');
    assert.equal(groupId('events', 'archive', o), 'consumers');
    assert.equal(groupId('events', 'counts', o), 'events:counts');
    const defaults = parseKafkaOptions(parseTransportUrl('kafka://b1'));
    assert.equal(defaults.envelope, true);
    assert.equal(defaults.start, 'latest');
    assert.equal(defaults.rebalanceTimeoutMs, 60_000);
    assert.equal(parseKafkaOptions(parseTransportUrl('kafka://b1?start=earliest')).start, 'earliest');
    assert.throws(
      () =>
        parseKafkaOptions(
          parseTransportUrl('kafka://b1?bind.=x&bind.a:=x&bind.a:b:c=x&bind.a=b%20c&bind.b=conveyor-retry.1.x.y&envelope=maybe&start=soon&rebalanceTimeoutMs=5'),
        ),
      (err: ConveyorError) =>
        err.code === 'ERR_BAD_OPTIONS' &&
        ['bind.:', 'bind.a::', 'bind.a:b:c:', 'bind.a:', 'bind.b:', 'envelope:', 'start:', 'rebalanceTimeoutMs:'].every((k) =>
          (err.details!.bad as string[]).some((b) => b.startsWith(k)),
        ),
    );
  });

  test('a consumer group per topic AND channel (one channel name on two topics is two groups)', () => {
    assert.notEqual(groupId('a', 'same'), groupId('b', 'same'));
    assert.equal(groupId('frames', 'detector'), 'frames:detector');
    // `:` is in no Conveyor name: (a.b, c) and (a, b.c) stay apart.
    assert.notEqual(groupId('a.b', 'c'), groupId('a', 'b.c'));
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

describe('kafka:// against a broker', { skip: SKIP ?? false }, () => {
  async function open(t: TestContext, extra = ''): Promise<KafkaTransport> {
    const transport = await KafkaTransport.connect(parseTransportUrl(withOptions(await kafkaUrl(), `partitions=2&commitIntervalMs=100${extra}`)));
    t.after(() => transport.close());
    return transport;
  }

  test('publish → subscribe, headers and id; fan-out over groups; nack → retry topic, attempts + 1', async (t) => {
    const tr = await open(t);
    const topic = uniqueName('kafka');
    const a: Delivery[] = [];
    const b: Delivery[] = [];
    // Both groups join at once: a join takes ~3 s on the mock cluster.
    const [subA, subB] = await Promise.all([
      tr.subscribe(topic, 'a', { maxInFlight: 10 }, (d) => {
        a.push(d);
        if (d.attempts === 1 && d.id === 'n') d.nack(100);
        else d.ack();
      }),
      tr.subscribe(topic, 'b', { maxInFlight: 10 }, (d) => {
        b.push(d);
        d.ack();
      }),
    ]);
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

  test('one channel name on two topics: each topic delivers all its records to that channel', async (t) => {
    const tr = await open(t);
    const [ta, tb] = [uniqueName('kafka'), uniqueName('kafka')];
    const got: Record<string, string[]> = { [ta]: [], [tb]: [] };
    const subs = await Promise.all(
      [ta, tb].map((topic) =>
        tr.subscribe(topic, 'same', { maxInFlight: 10 }, (d) => {
          got[d.topic]!.push(dec(d.body));
          d.ack();
        }),
      ),
    );
    t.after(() => Promise.all(subs.map((s) => s.close())));
    for (const topic of [ta, tb]) await tr.publish(topic, [0, 1, 2].map((i) => ({ body: enc(`${topic}-${i}`) })));
    await waitFor(() => got[ta]!.length === 3 && got[tb]!.length === 3, `3 + 3 records, got ${JSON.stringify(got)}`, 20_000);
    assert.deepEqual(got[ta]!.sort(), [0, 1, 2].map((i) => `${ta}-${i}`));
  });

  test("a new channel's start is fixed at its first subscribe: unacked records come back after its only member closes", async (t) => {
    // A short session: the mock cluster waits that long for a member that left before it
    // completes the next join.
    const tr = await open(t, '&sessionTimeoutMs=3000&heartbeatIntervalMs=500');
    const topic = uniqueName('kafka');
    const held: Delivery[] = [];
    const first = await tr.subscribe(topic, 'fresh', { maxInFlight: 10 }, (d) => held.push(d));
    await tr.publish(topic, [0, 1, 2, 3, 4].map((i) => ({ id: `h${i}`, body: enc(String(i)) })));
    await waitFor(() => held.length === 5, 'the 5 records, held unacked', 20_000);
    await first.close();
    // Published while the channel has no member: still the channel's.
    await tr.publish(topic, [{ id: 'h5', body: enc('5') }]);
    const again: string[] = [];
    const second = await tr.subscribe(topic, 'fresh', { maxInFlight: 10 }, (d) => {
      again.push(d.id);
      d.ack();
    });
    t.after(() => second.close());
    await waitFor(() => again.length >= 6, `6 records again, got ${again.join(',')}`, 20_000);
    assert.deepEqual([...new Set(again)].sort(), ['h0', 'h1', 'h2', 'h3', 'h4', 'h5']);
  });

  test("a foreign record's id (no conveyor-id header) survives a nack's retry copy", async (t) => {
    const tr = await open(t);
    const topic = uniqueName('kafka');
    const seen: Delivery[] = [];
    const sub = await tr.subscribe(topic, 'r', { maxInFlight: 10 }, (d) => {
      seen.push(d);
      if (d.attempts === 1) d.nack(0);
      else d.ack();
    });
    t.after(() => sub.close());
    await tr.publish(topic, [{ body: enc('foreign') }]); // no id: what kafka-python or kcat sends
    await waitFor(() => seen.length === 2, 'the record and its retry copy', 20_000);
    assert.deepEqual(
      seen.map((d) => d.attempts),
      [1, 2],
    );
    assert.match(seen[0]!.id, new RegExp(`^${topic}/\\d+/\\d+$`));
    assert.equal(seen[1]!.id, seen[0]!.id);
  });

  test('bind.<topic>= uses the Kafka topic as named, bind.<topic>:<channel>= the group; envelope=false sends the value alone', async (t) => {
    const native = `ext-${uniqueName('datascience')}`;
    const group = `consumers-${uniqueName('g')}`;
    const bare = await open(t, `&bind.events=${native}&envelope=false`);
    const reader = await open(t, `&bind.events=${native}&bind.events:archive=${group}`);
    const got: Delivery[] = [];
    const sub = await reader.subscribe('events', 'archive', { maxInFlight: 10 }, (d) => {
      got.push(d);
      d.ack();
    });
    t.after(() => sub.close());
    await bare.publish('events', [{ id: 'mine', body: enc('{"a":1}'), headers: { 'content-type': 'application/json', 'conveyor-version': '2' } }]);
    await waitFor(() => got.length === 1, 'the bare record', 20_000);
    // No header crossed: not the id, not the content type, not the version.
    assert.deepEqual(got[0]!.headers, {});
    assert.match(got[0]!.id, new RegExp(`^${native}/\\d+/\\d+$`), 'the id is made from where it was read');
    assert.equal(dec(got[0]!.body), '{"a":1}');
    // The ack was committed under the bound group's name, on the bound topic's name.
    const { Kafka } = await import('kafkajs');
    const options = parseKafkaOptions(parseTransportUrl(await kafkaUrl()));
    const admin = new Kafka({ brokers: options.brokers, logLevel: 0 }).admin();
    await admin.connect();
    t.after(() => admin.disconnect());
    await waitFor(async () => {
      const [offsets] = await admin.fetchOffsets({ groupId: group, topics: [native] });
      return offsets!.partitions.reduce((n, p) => n + Math.max(0, Number(p.offset)), 0) === 1;
    }, `group ${group} committed past the record on ${native}`, 10_000, 100);
  });

  test('start=earliest: a new channel reads the history already in the topic; the default starts at its end', async (t) => {
    const writer = await open(t);
    const earliest = await open(t, '&start=earliest');
    const topic = uniqueName('kafka');
    await writer.publish(topic, [0, 1, 2].map((n) => ({ id: `old${n}`, body: enc(`${n}`) })));
    const fromStart: string[] = [];
    const fromEnd: string[] = [];
    const [a, b] = await Promise.all([
      earliest.subscribe(topic, 'history', { maxInFlight: 10 }, (d) => {
        fromStart.push(d.id);
        d.ack();
      }),
      writer.subscribe(topic, 'live', { maxInFlight: 10 }, (d) => {
        fromEnd.push(d.id);
        d.ack();
      }),
    ]);
    t.after(() => Promise.all([a.close(), b.close()]));
    await writer.publish(topic, [{ id: 'new', body: enc('3') }]);
    await waitFor(() => fromStart.length >= 4 && fromEnd.length >= 1, 'history and the new record', 20_000);
    assert.deepEqual([...fromStart].sort(), ['new', 'old0', 'old1', 'old2']);
    assert.deepEqual(fromEnd, ['new']);
  });

  test('per subscription: SubscribeOptions.bind names the Kafka topic and group (over the URL); a dead letter stays whole through envelope=false', async (t) => {
    const native = `ext-${uniqueName('orders')}`;
    const group = `billing-${uniqueName('g')}`;
    const bare = await open(t, `&bind.orders=${native}&envelope=false`);
    // This URL binds `orders` elsewhere: the subscription's own binding wins.
    const reader = await open(t, '&bind.orders=somewhere-else');
    assert.equal(reader.features.bind, true);
    await assert.rejects(reader.subscribe('orders', 'c', { maxInFlight: 1, bind: { topic: 'no spaces' } }, () => {}), { code: 'ERR_BAD_OPTIONS' });
    await assert.rejects(reader.subscribe('orders', 'c', { maxInFlight: 1, bind: { channel: 'conveyor-retry.x' } }, () => {}), { code: 'ERR_BAD_OPTIONS' });
    const got: Delivery[] = [];
    const sub = await reader.subscribe('orders', 'billing', { maxInFlight: 10, bind: { topic: native, channel: group } }, (d) => {
      got.push(d);
      d.ack();
    });
    t.after(() => sub.close());
    await bare.publish('orders', [{ id: 'o1', body: enc('plain') }]);
    const dead = { 'conveyor-dead-code': 'ERR_SCHEMA', 'conveyor-dead-reason': 'why' };
    await bare.publish('orders', [{ id: 'o2', body: enc('dead'), headers: dead }]);
    await waitFor(() => got.length === 2, 'both records on the bound topic', 20_000);
    const byBody = new Map(got.map((d) => [dec(d.body), d]));
    assert.deepEqual(byBody.get('plain')!.headers, {});
    assert.deepEqual(byBody.get('dead')!.headers, dead, 'a dead letter keeps its reason through envelope=false');
    assert.equal(byBody.get('dead')!.id, 'o2');
    const { Kafka } = await import('kafkajs');
    const admin = new Kafka({ brokers: parseKafkaOptions(parseTransportUrl(await kafkaUrl())).brokers, logLevel: 0 }).admin();
    await admin.connect();
    t.after(() => admin.disconnect());
    await waitFor(async () => {
      const [offsets] = await admin.fetchOffsets({ groupId: group, topics: [native] });
      return offsets!.partitions.reduce((n, p) => n + Math.max(0, Number(p.offset)), 0) === 2;
    }, `group ${group} committed both on ${native}`, 10_000, 100);
  });
});
